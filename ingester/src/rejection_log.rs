//! The last requests we refused, kept for the operator ("the provider says
//! we answer 401": what did it send?): time, provider, status, reason,
//! headers and the body's size, never the body. Off the request path and
//! bounded three ways, so that a flood of bad requests costs us a counter:
//! - at most `per_second` notes per ingester (a token bucket; the rest are
//!   only counted);
//! - a channel of [`QUEUE`] notes to the one writer task (full: counted,
//!   dropped; the refusal never waits on the database);
//! - in the table, a ring of `kept` rows per reason (`store::rejected`).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use ledgerhook_domain::Provider;
use sqlx::PgPool;
use tokio::sync::mpsc;

use ledgerhook_runtime::http::CREDENTIAL_HEADERS;

use crate::delivery::declared_length;
use crate::metrics;
use crate::rejection::Rejection;

/// Notes waiting for the writer.
const QUEUE: usize = 64;
/// Headers kept of one request, and bytes of each value.
const MAX_HEADERS: usize = 64;
const MAX_VALUE_BYTES: usize = 256;

/// One refusal on its way to the table.
struct Note {
    reason: &'static str,
    at: DateTime<Utc>,
    provider: Provider,
    status: u16,
    headers: String,
    body_bytes: Option<i64>,
}

/// Cloned with the ingester's state for every request: one reference
/// count, nothing else.
#[derive(Clone)]
pub struct RejectionLog(Arc<Inner>);

struct Inner {
    /// `None` when keeping is off (`REJECTED_REQUESTS_KEPT=0`).
    sender: Option<mpsc::Sender<Note>>,
    bucket: Mutex<Bucket>,
}

impl RejectionLog {
    /// Starts the writer task; `kept` rows per reason (0: keep none),
    /// `per_second` notes at most.
    pub fn start(pool: PgPool, kept: u32, per_second: u32) -> Self {
        let sender = (kept > 0).then(|| {
            let (sender, receiver) = mpsc::channel(QUEUE);
            tokio::spawn(write(pool, receiver, i64::from(kept)));
            sender
        });
        Self(Arc::new(Inner {
            sender,
            bucket: Mutex::new(Bucket::new(per_second)),
        }))
    }

    /// Notes a refusal if the rate allows and the writer keeps up; never
    /// waits. The storage's own failure is not noted (it could not be).
    pub fn note(&self, provider: Provider, rejection: Rejection, headers: &HeaderMap) {
        let Some(sender) = &self.0.sender else {
            return;
        };
        if rejection == Rejection::StorageUnavailable {
            return;
        }
        let allowed = self
            .0
            .bucket
            .lock()
            .map(|mut bucket| bucket.take(Instant::now()))
            .unwrap_or(false);
        if !allowed {
            metrics::rejection_noted(metrics::NOTE_RATE_LIMITED);
            return;
        }
        let note = Note {
            reason: rejection.code(),
            at: Utc::now(),
            provider,
            status: rejection.status().as_u16(),
            headers: bounded_headers(headers),
            body_bytes: declared_length(headers).and_then(|n| i64::try_from(n).ok()),
        };
        if sender.try_send(note).is_err() {
            metrics::rejection_noted(metrics::NOTE_DROPPED);
        }
    }
}

async fn write(pool: PgPool, mut receiver: mpsc::Receiver<Note>, kept: i64) {
    while let Some(note) = receiver.recv().await {
        let noted = ledgerhook_store::rejected::note(
            &pool,
            &ledgerhook_store::rejected::Rejected {
                reason: note.reason,
                at: note.at,
                provider: note.provider.as_str(),
                status: i16::try_from(note.status).unwrap_or(i16::MAX),
                headers: &note.headers,
                body_bytes: note.body_bytes,
            },
            kept,
        )
        .await;
        match noted {
            Ok(()) => metrics::rejection_noted(metrics::NOTE_WRITTEN),
            Err(e) => {
                metrics::rejection_noted(metrics::NOTE_FAILED);
                tracing::debug!(error = %e, "could not note a refused request");
            }
        }
    }
}

/// The headers as `[[name, value], ...]` JSON text: at most
/// [`MAX_HEADERS`], each value cut to [`MAX_VALUE_BYTES`] (on a character
/// boundary), so one request is at most about 20 KiB however it was built.
fn bounded_headers(headers: &HeaderMap) -> String {
    let pairs: Vec<[String; 2]> = headers
        .iter()
        .take(MAX_HEADERS)
        .map(|(name, value)| {
            if CREDENTIAL_HEADERS.contains(&name.as_str()) {
                return [name.as_str().to_owned(), "(hidden)".to_owned()];
            }
            let text = String::from_utf8_lossy(value.as_bytes());
            let mut cut = text.len().min(MAX_VALUE_BYTES);
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            [name.as_str().to_owned(), text[..cut].to_owned()]
        })
        .collect();
    serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".to_owned())
}

/// A token bucket: `per_second` tokens a second, up to `per_second` held
/// (a burst of one second's worth). Refills from the nanoseconds elapsed,
/// and moves its clock only by the time the added tokens account for, so a
/// flood of calls nanoseconds apart still refills at the rate.
struct Bucket {
    tokens: u64,
    capacity: u64,
    per_second: u64,
    last: Option<Instant>,
}

impl Bucket {
    fn new(per_second: u32) -> Self {
        Self {
            tokens: u64::from(per_second),
            capacity: u64::from(per_second),
            per_second: u64::from(per_second),
            last: None,
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        if self.per_second == 0 {
            return false;
        }
        match self.last {
            None => self.last = Some(now),
            Some(last) => {
                let elapsed = now.saturating_duration_since(last);
                let nanos_per_token = 1_000_000_000 / self.per_second;
                let earned =
                    u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX) / nanos_per_token;
                if self.tokens + earned >= self.capacity {
                    self.tokens = self.capacity;
                    self.last = Some(now);
                } else if earned > 0 {
                    self.tokens += earned;
                    self.last =
                        Some(last + std::time::Duration::from_nanos(earned * nanos_per_token));
                }
            }
        }
        if self.tokens > 0 {
            self.tokens -= 1;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_bucket_allows_a_burst_then_its_rate() {
        let mut bucket = Bucket::new(10);
        let start = Instant::now();
        let burst = (0..100).filter(|_| bucket.take(start)).count();
        assert_eq!(burst, 10);
        // Half a second later: five more.
        let later = start + Duration::from_millis(500);
        assert_eq!((0..100).filter(|_| bucket.take(later)).count(), 5);
        assert!(!Bucket::new(0).take(start), "0 per second notes nothing");
    }

    #[test]
    fn a_flood_of_calls_microseconds_apart_still_refills_at_the_rate() {
        let mut bucket = Bucket::new(10);
        let start = Instant::now();
        // Two seconds of calls 10 µs apart: the burst, then 10 a second.
        let allowed = (0..200_000)
            .filter(|i| bucket.take(start + Duration::from_micros(i * 10)))
            .count();
        assert!((29..=31).contains(&allowed), "{allowed}");
    }

    #[test]
    fn credential_headers_keep_their_names_only() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Basic c2VjcmV0".parse().unwrap());
        headers.insert("svix-id", "msg_1".parse().unwrap());
        let text = bounded_headers(&headers);
        assert!(
            !text.contains("c2VjcmV0") && text.contains("(hidden)") && text.contains("msg_1"),
            "{text}"
        );
    }

    #[test]
    fn headers_are_bounded_in_count_and_length() {
        let mut headers = HeaderMap::new();
        for i in 0..100 {
            headers.insert(
                axum::http::HeaderName::try_from(format!("x-h{i}")).unwrap(),
                "é".repeat(300).parse().unwrap(),
            );
        }
        let text = bounded_headers(&headers);
        let pairs: Vec<[String; 2]> = serde_json::from_str(&text).unwrap();
        assert_eq!(pairs.len(), MAX_HEADERS);
        assert!(pairs.iter().all(|[_, v]| v.len() <= MAX_VALUE_BYTES));
    }
}
