//! The notifier's loop: claim due rows, send them (a few at once), record
//! how each ended in one statement, and look again; an idle notifier looks
//! every `NOTIFY_POLL_MS`.
//!
//! A failed send is retried after a wait that doubles from
//! `NOTIFY_RETRY_INITIAL_MS` to `NOTIFY_RETRY_MAX_MS`; the attempt that
//! spends `NOTIFY_MAX_ATTEMPTS`, or a failure no retry can fix, parks the
//! row with its reason. Recording is after sending, so a crash in between
//! sends that row again (at least once; the email's Message-ID is the same).

use std::time::Duration;

use futures_util::{StreamExt as _, stream};
use ledgerhook_shared::notifications::outbox::{self, Claimed, Outcome};
use ledgerhook_shared::notifications::{Channel, GrantFacts, NotifyChannels};
use ledgerhook_shared::retry::{jittered, random_unit};
use sqlx::PgPool;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::chat::ChatHook;
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
        let not_configured = || SendError::transient("the channel is not configured here");
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
                hook.send(&render::chat(&facts)).await
            }
            Some(Channel::Feishu) => {
                let hook = self.feishu.as_ref().ok_or_else(not_configured)?;
                hook.send(&render::chat(&facts)).await
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
        let channels = self.senders.channels().names();
        if channels.is_empty() {
            tracing::warn!("no notification channel is configured: nothing will be sent");
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
            let claimed = if channels.is_empty() {
                0
            } else {
                match self.round(&channels).await {
                    Ok(claimed) => claimed,
                    Err(e) => {
                        tracing::warn!(error = %e, "claiming or recording notifications");
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

    /// One claim, its sends and their record; how many rows were claimed.
    async fn round(&self, channels: &[&str]) -> Result<usize, sqlx::Error> {
        let claimed =
            outbox::claim_due(&self.pool, channels, self.batch_size.into(), self.lease).await?;
        metrics::claimed();
        let count = claimed.len();
        let outcomes: Vec<(Uuid, Outcome)> = stream::iter(claimed)
            .map(|row| self.attempt(row))
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        outbox::settle(&self.pool, &outcomes).await?;
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
}
