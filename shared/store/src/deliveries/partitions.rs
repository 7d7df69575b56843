//! `webhook_deliveries`' monthly partitions: made ahead of time, rows that
//! landed in the default partition moved into their month, and old months
//! dropped once nothing personal is left in them (retention).
//!
//! A row's id carries its month (`delivery_row_base` in the migration: the
//! months since 1999-12 in the bits above the 40 of a sequence), and the
//! table is partitioned by id: `webhook_deliveries_yYYYYmMM` holds one
//! month, `webhook_deliveries_legacy` the ids recorded before partitioning
//! (all below 2^40), `webhook_deliveries_default` whatever has no month
//! yet, so an insert never fails for want of a partition.
//!
//! DDL on a partition takes locks the hot paths wait behind: attaching a
//! month takes SHARE UPDATE EXCLUSIVE on the table (no wait for the
//! ingester or the worker) and ACCESS EXCLUSIVE on the default partition;
//! dropping one takes ACCESS EXCLUSIVE on the table for an instant. Each is
//! done under [`DDL_LOCK_TIMEOUT`], so a busy table makes it give up (the
//! next run tries again) rather than hold everyone up behind it.

use chrono::{DateTime, Datelike as _, Months, NaiveDate, Utc};
use sqlx::PgConnection;

/// The longest a partition's DDL waits for its lock (and everyone queued
/// behind it waits with it).
pub const DDL_LOCK_TIMEOUT: &str = "1s";

/// Ids below this are the legacy partition's (recorded before partitioning).
pub const LEGACY_END: i64 = 1 << 40;

const PREFIX: &str = "webhook_deliveries_";
const LEGACY: &str = "webhook_deliveries_legacy";

/// A partition that can be dropped: a month, or the legacy rows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Partition {
    pub name: String,
    /// The first day of its month; `None` for the legacy partition.
    pub month: Option<NaiveDate>,
}

impl Partition {
    /// Its ids: `[low, high)`.
    fn ids(&self) -> (i64, i64) {
        match self.month {
            Some(month) => (row_base(month), row_base(next_month(month))),
            None => (i64::MIN, LEGACY_END),
        }
    }

    /// Whether every row it can hold was received before `horizon`.
    fn wholly_before(&self, horizon: DateTime<Utc>) -> bool {
        match self.month {
            Some(month) => next_month(month) <= horizon.date_naive(),
            // Its rows' times are read from them (see `droppable`).
            None => true,
        }
    }
}

/// The first row id of `month` (its first day), as `delivery_row_base`.
pub fn row_base(month: NaiveDate) -> i64 {
    let months = (i64::from(month.year()) - 2000) * 12 + i64::from(month.month());
    months << 40
}

/// The month a row id belongs to (`None` for a legacy id).
pub fn month_of_row(row: i64) -> Option<NaiveDate> {
    let months = row >> 40;
    if months <= 0 {
        return None;
    }
    let year = i32::try_from(2000 + (months - 1) / 12).ok()?;
    let month = u32::try_from((months - 1) % 12 + 1).ok()?;
    NaiveDate::from_ymd_opt(year, month, 1)
}

/// The first day of `at`'s month (UTC).
pub fn month_start(at: DateTime<Utc>) -> NaiveDate {
    at.date_naive()
        .with_day(1)
        .expect("every month has a first day")
}

fn next_month(month: NaiveDate) -> NaiveDate {
    month + Months::new(1)
}

fn month_of_name(name: &str) -> Option<NaiveDate> {
    let rest = name.strip_prefix(PREFIX)?.strip_prefix('y')?;
    let (year, month) = rest.split_once('m')?;
    NaiveDate::from_ymd_opt(year.parse().ok()?, month.parse().ok()?, 1)
}

/// Creates the partition of `month` (its first day) unless it exists,
/// moving in any of its rows that wait in the default partition. True when
/// it was created.
pub async fn ensure_month(conn: &mut PgConnection, month: NaiveDate) -> Result<bool, sqlx::Error> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    sqlx::query(&format!("set local lock_timeout = '{DDL_LOCK_TIMEOUT}'"))
        .execute(&mut *tx)
        .await?;
    let created: bool = sqlx::query_scalar("select ensure_delivery_month($1)")
        .bind(month)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(created)
}

/// The months of rows waiting in the default partition (normally none:
/// only when the months ahead were not made in time). Reads the default
/// partition alone, which is empty or nearly.
pub async fn months_in_default(conn: &mut PgConnection) -> Result<Vec<NaiveDate>, sqlx::Error> {
    let codes: Vec<i64> =
        sqlx::query_scalar("select distinct id >> 40 from webhook_deliveries_default order by 1")
            .fetch_all(&mut *conn)
            .await?;
    Ok(codes
        .into_iter()
        .filter_map(|code| month_of_row(code << 40))
        .collect())
}

/// The partitions there are, but the default one, oldest first.
pub async fn list(conn: &mut PgConnection) -> Result<Vec<Partition>, sqlx::Error> {
    let names: Vec<String> = sqlx::query_scalar(
        "select c.relname::text from pg_inherits i join pg_class c on c.oid = i.inhrelid
         where i.inhparent = 'webhook_deliveries'::regclass",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut partitions: Vec<Partition> = names
        .into_iter()
        .filter_map(|name| {
            if name == LEGACY {
                return Some(Partition { name, month: None });
            }
            month_of_name(&name).map(|month| Partition {
                name,
                month: Some(month),
            })
        })
        .collect();
    partitions.sort_by_key(|p| p.month);
    Ok(partitions)
}

/// The partitions whose every row was received before `horizon` and is
/// scrubbed already (or that hold none): dropping them loses nothing
/// retention would have kept. A partition holding an unprocessed, parked or
/// held delivery stays until that one is settled and scrubbed.
///
/// Each candidate is read until its first row still holding a body; a
/// month entirely scrubbed is read whole (its rows are small by then).
pub async fn droppable(
    conn: &mut PgConnection,
    horizon: DateTime<Utc>,
) -> Result<Vec<Partition>, sqlx::Error> {
    let mut found = Vec::new();
    for partition in list(conn).await? {
        if !partition.wholly_before(horizon) {
            continue;
        }
        if nothing_kept(conn, &partition.name, horizon).await? {
            found.push(partition);
        }
    }
    Ok(found)
}

async fn nothing_kept(
    conn: &mut PgConnection,
    name: &str,
    horizon: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    // `name` comes from the catalogue (`list`), quoted as an identifier.
    sqlx::query_scalar(&format!(
        "select not exists (select 1 from \"{name}\"
                            where scrubbed_at is null or received_at >= $1)"
    ))
    .bind(horizon)
    .fetch_one(&mut *conn)
    .await
}

/// Drops `partition` if it is still droppable once locked, with its rows'
/// leftover outbox rows (a processed delivery whose publish was never
/// confirmed). Their keys stay in `delivery_keys`. False if it changed
/// meanwhile and was kept.
pub async fn drop_partition(
    conn: &mut PgConnection,
    partition: &Partition,
    horizon: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    sqlx::query(&format!("set local lock_timeout = '{DDL_LOCK_TIMEOUT}'"))
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!(
        "lock table \"{}\" in access exclusive mode",
        partition.name
    ))
    .execute(&mut *tx)
    .await?;
    if !nothing_kept(&mut tx, &partition.name, horizon).await? {
        return Ok(false);
    }
    let (low, high) = partition.ids();
    sqlx::query("delete from delivery_outbox where delivery_row >= $1 and delivery_row < $2")
        .bind(low)
        .bind(high)
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!("drop table \"{}\"", partition.name))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rows_month_is_read_back_from_its_id() {
        let december = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        assert_eq!(row_base(december), 324 << 40);
        assert_eq!(month_of_row(row_base(december) + 12_345), Some(december));
        let january = NaiveDate::from_ymd_opt(2027, 1, 1).unwrap();
        assert_eq!(month_of_row(row_base(january)), Some(january));
        assert_eq!(month_of_row(row_base(january) - 1), Some(december));
        assert_eq!(month_of_row(17), None, "a legacy id has no month");
        // Exact as a JavaScript number for centuries.
        assert!(row_base(NaiveDate::from_ymd_opt(2600, 12, 1).unwrap()) < 1 << 53);
    }

    #[test]
    fn partition_names_give_their_month() {
        assert_eq!(
            month_of_name("webhook_deliveries_y2027m03"),
            NaiveDate::from_ymd_opt(2027, 3, 1)
        );
        assert_eq!(month_of_name("webhook_deliveries_default"), None);
        assert_eq!(month_of_name("webhook_deliveries_legacy"), None);
    }

    #[test]
    fn a_month_is_wholly_before_the_horizon_only_once_it_has_ended() {
        let march = Partition {
            name: "webhook_deliveries_y2027m03".into(),
            month: NaiveDate::from_ymd_opt(2027, 3, 1),
        };
        let at = |text: &str| text.parse::<DateTime<Utc>>().unwrap();
        assert!(!march.wholly_before(at("2027-03-31T23:00:00Z")));
        assert!(march.wholly_before(at("2027-04-01T00:00:00Z")));
    }
}
