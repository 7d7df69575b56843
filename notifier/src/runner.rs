//! The notifier's loop: park the due rows of channels it has no settings
//! for, claim due rows, send them (a few at once), record how each ended as
//! soon as its send does, and look again; an idle notifier looks every
//! `NOTIFY_POLL_MS`.
//!
//! A failed send is retried after a wait that doubles from
//! `NOTIFY_RETRY_INITIAL_MS` to `NOTIFY_RETRY_MAX_MS`; the attempt that
//! spends `NOTIFY_MAX_ATTEMPTS`, or a failure no retry can fix, parks the
//! row with its reason. Recording is after sending, so a crash in between
//! sends that row again (at least once; the email's Message-ID is the same).

use std::time::Duration;

use futures_util::{StreamExt as _, stream};
use ledgerhook_domain::{Channel, GrantFacts, NotifyChannels};
use ledgerhook_runtime::retry::{jittered, random_unit};
use ledgerhook_store::notifications::outbox::{self, Claimed, Outcome};
use sqlx::PgPool;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::chat::ChatHook;
use crate::config::RECORD_TIMEOUT;
use crate::email::Mailer;
use crate::{SendError, metrics, render};

/// How often, at most, the pending and parked gauges are counted.
const COUNT_EVERY: Duration = Duration::from_secs(1);

/// When a failed attempt is tried again.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub initial: Duration,
    pub max: Duration,
}

impl RetryPolicy {
    /// What a failure means after `attempts` attempts (this one included).
    pub fn outcome(&self, attempts: u32, error: SendError) -> Outcome {
        if error.permanent || attempts >= self.max_attempts {
            return Outcome::Park {
                error: error.reason,
            };
        }
        Outcome::Retry {
            delay: jittered(self.delay(attempts), random_unit()),
            error: error.reason,
        }
    }

    /// The wait after the `attempts`-th failure, before jitter.
    pub fn delay(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(30);
        self.initial.saturating_mul(1 << doublings).min(self.max)
    }
}

/// The configured senders.
#[derive(Default)]
pub struct Senders {
    pub email: Option<Mailer>,
    pub discord: Option<ChatHook>,
    pub feishu: Option<ChatHook>,
}

impl Senders {
    pub fn channels(&self) -> NotifyChannels {
        NotifyChannels {
            email: self.email.is_some(),
            discord: self.discord.is_some(),
            feishu: self.feishu.is_some(),
        }
    }

    async fn send(&self, row: &Claimed) -> Result<(), SendError> {
        let facts: GrantFacts = serde_json::from_value(row.facts.clone())
            .map_err(|e| SendError::permanent(format!("unreadable facts: {e}")))?;
        // Claims name only configured channels, so this is a guard, not a
        // path: a row no retry here can send is parked, not retried.
        let not_configured = || {
            SendError::permanent(format!(
                "this notifier has no settings for {}",
                row.channel.map_or("this channel", Channel::as_str)
            ))
        };
        match row.channel {
            Some(Channel::Email) => {
                let recipient = row
                    .recipient
                    .as_deref()
                    .ok_or_else(|| SendError::permanent("an email row without a recipient"))?;
                let mailer = self.email.as_ref().ok_or_else(not_configured)?;
                mailer.send(row.id, recipient, &facts).await
            }
            Some(Channel::Discord) => {
                let hook = self.discord.as_ref().ok_or_else(not_configured)?;
                hook.send(&render::chat(Channel::Discord, &facts)).await
            }
            Some(Channel::Feishu) => {
                let hook = self.feishu.as_ref().ok_or_else(not_configured)?;
                hook.send(&render::chat(Channel::Feishu, &facts)).await
            }
            None => Err(SendError::permanent(
                "a channel this notifier does not know",
            )),
        }
    }
}

pub struct Runner {
    pub pool: PgPool,
    pub senders: Senders,
    pub retry: RetryPolicy,
    pub poll_interval: Duration,
    pub batch_size: u32,
    pub concurrency: usize,
    pub lease: Duration,
}

impl Runner {
    /// Runs until `shutdown`; sends in flight are finished and recorded
    /// first (each is bounded by the send timeout).
    pub async fn run(self, shutdown: CancellationToken) {
        let configured = self.senders.channels();
        let channels = configured.names();
        let unconfigured = unconfigured_reasons(configured);
        if channels.is_empty() {
            tracing::warn!(
                "no notification channel is configured: nothing will be sent, and rows the workers write are parked"
            );
        }
        let mut counted_at: Option<Instant> = None;
        while !shutdown.is_cancelled() {
            if counted_at.is_none_or(|at| at.elapsed() >= COUNT_EVERY) {
                match outbox::counts(&self.pool).await {
                    Ok(counts) => metrics::counts(counts),
                    Err(e) => tracing::warn!(error = %e, "counting notifications"),
                }
                counted_at = Some(Instant::now());
            }
            if !unconfigured.is_empty() {
                match outbox::park_due(&self.pool, &unconfigured).await {
                    Ok(0) => {}
                    Ok(parked) => tracing::warn!(
                        parked,
                        "notifications parked: their channel has no settings in this notifier"
                    ),
                    Err(e) => {
                        tracing::warn!(error = %e, "parking notifications of unconfigured channels");
                    }
                }
            }
            let claimed = if channels.is_empty() {
                0
            } else {
                match self.round(&channels).await {
                    Ok(claimed) => claimed,
                    Err(e) => {
                        tracing::warn!(error = %e, "claiming notifications");
                        0
                    }
                }
            };
            // A full batch means more may be due: look again at once.
            if claimed < self.batch_size as usize {
                tokio::select! {
                    () = tokio::time::sleep(self.poll_interval) => {}
                    () = shutdown.cancelled() => {}
                }
            }
        }
    }

    /// One claim, its sends and their records; how many rows were claimed.
    ///
    /// Each row's outcome is recorded as soon as its own send ends, not at
    /// the end of the round, so a row sent early in a slow round is marked
    /// sent long before its lease (`Config::lease`, which covers the whole
    /// round) runs out. The record is spawned so that it never holds one of
    /// the `concurrency` send slots; the round waits for every record
    /// before it ends, so shutdown and the next claim come after them.
    async fn round(&self, channels: &[&str]) -> Result<usize, sqlx::Error> {
        let claimed =
            outbox::claim_due(&self.pool, channels, self.batch_size.into(), self.lease).await?;
        metrics::claimed();
        let count = claimed.len();
        let records: Vec<tokio::task::JoinHandle<()>> = stream::iter(claimed)
            .map(|row| self.attempt(row))
            .buffer_unordered(self.concurrency)
            .map(|(id, outcome)| tokio::spawn(record(self.pool.clone(), id, outcome)))
            .collect()
            .await;
        for record in records {
            if let Err(e) = record.await {
                tracing::error!(error = %e, "recording a notification's outcome panicked");
            }
        }
        Ok(count)
    }

    #[tracing::instrument(skip_all, fields(notification_id = %row.id, channel = row.channel.map(Channel::as_str)))]
    async fn attempt(&self, row: Claimed) -> (Uuid, Outcome) {
        let started = Instant::now();
        let attempts = u32::try_from(row.attempts).unwrap_or(0).saturating_add(1);
        let outcome = match self.senders.send(&row).await {
            Ok(()) => Outcome::Sent,
            Err(error) => self.retry.outcome(attempts, error),
        };
        let channel = row.channel.map_or("unknown", Channel::as_str);
        metrics::attempt(channel, outcome.label(), started.elapsed());
        match &outcome {
            Outcome::Sent => tracing::debug!(attempts, "notification sent"),
            Outcome::Retry { delay, error } => {
                tracing::info!(attempts, ?delay, error = %error, "notification failed; retrying later");
            }
            Outcome::Park { error } => {
                tracing::warn!(attempts, error = %error, "notification parked");
            }
        }
        (row.id, outcome)
    }
}

/// Records one row's outcome, bounded by [`RECORD_TIMEOUT`] (part of the
/// lease's margin). A record that fails or times out leaves the row to be
/// claimed again once its lease runs out: sent again if it was sent (at
/// least once), never lost.
async fn record(pool: PgPool, id: Uuid, outcome: Outcome) {
    let label = outcome.label();
    match tokio::time::timeout(RECORD_TIMEOUT, outbox::settle(&pool, &[(id, outcome)])).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(notification_id = %id, outcome = label, error = %e, "recording a notification's outcome");
        }
        Err(_) => {
            tracing::warn!(notification_id = %id, outcome = label, timeout = ?RECORD_TIMEOUT, "recording a notification's outcome timed out");
        }
    }
}

/// For each channel without settings here, the reason its rows are parked.
fn unconfigured_reasons(configured: NotifyChannels) -> Vec<(Channel, String)> {
    Channel::ALL
        .into_iter()
        .filter(|&c| !configured.has(c))
        .map(|c| {
            (
                c,
                format!(
                    "the notifier has no settings for {c} ({} is unset there): set it, or stop the workers writing {c} rows (NOTIFY_CHANNELS), then resend the parked notifications",
                    c.settings_var()
                ),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        max_attempts: 4,
        initial: Duration::from_secs(1),
        max: Duration::from_secs(3),
    };

    #[test]
    fn waits_double_up_to_the_longest() {
        let delays: Vec<u64> = (1..=5).map(|n| POLICY.delay(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 3, 3, 3]);
        assert_eq!(POLICY.delay(u32::MAX), Duration::from_secs(3));
    }

    #[test]
    fn the_last_attempt_or_a_permanent_failure_parks() {
        let transient = || SendError::transient("down");
        assert_eq!(POLICY.outcome(3, transient()).label(), "retried");
        assert_eq!(
            POLICY.outcome(4, transient()),
            Outcome::Park {
                error: "down".into()
            }
        );
        assert_eq!(
            POLICY.outcome(1, SendError::permanent("gone")).label(),
            "parked"
        );
    }

    #[test]
    fn rows_of_channels_without_settings_are_parked_with_the_variable_named() {
        let reasons = unconfigured_reasons(NotifyChannels {
            email: true,
            discord: false,
            feishu: true,
        });
        assert_eq!(reasons.len(), 1);
        assert_eq!(reasons[0].0, Channel::Discord);
        assert!(
            reasons[0].1.contains("NOTIFY_DISCORD_WEBHOOK_URL"),
            "{}",
            reasons[0].1
        );
        assert_eq!(unconfigured_reasons(NotifyChannels::default()).len(), 3);
    }
}
