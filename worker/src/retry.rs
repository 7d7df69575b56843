//! The retry schedule for messages that may succeed later (a payment whose
//! order is not known yet), kept in RabbitMQ itself.
//!
//! A message to retry is published to a wait queue, one per step, whose TTL
//! dead-letters it back to the work queue when its delay is over. Waiting
//! therefore holds no worker slot, blocks no other message, and survives a
//! worker restart. After the last attempt the message is parked (the
//! dead-letter queue) with its reason and attempt count.

use std::time::Duration;

/// Up to this fraction of each delay is added or removed at random, so
/// messages that failed together do not all come back together.
pub const JITTER: f64 = ledgerhook_shared::amqp::MAX_JITTER;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    /// Attempts in all, the first included; at least 1.
    pub attempts: u32,
    /// Wait before the second attempt.
    pub initial: Duration,
    /// Each wait is this many times the previous one.
    pub multiplier: u32,
}

impl RetrySchedule {
    /// Whether a message that has had `attempt` attempts gets another.
    pub fn should_retry(&self, attempt: u32) -> bool {
        attempt < self.attempts
    }

    /// The wait after attempt `attempt` (1-based) failed.
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let factor = self.multiplier.saturating_pow(attempt.saturating_sub(1));
        self.initial.saturating_mul(factor)
    }

    /// Every distinct wait the schedule uses, for declaring the wait queues.
    pub fn delays(&self) -> Vec<Duration> {
        let mut delays: Vec<Duration> = (1..self.attempts).map(|a| self.delay_after(a)).collect();
        delays.dedup();
        delays
    }

    /// `delay` with up to ±[`JITTER`] of it, from a random `unit` in [0, 1).
    pub fn jittered(delay: Duration, unit: f64) -> Duration {
        delay.mul_f64(1.0 - JITTER + 2.0 * JITTER * unit.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> RetrySchedule {
        RetrySchedule {
            attempts: 5,
            initial: Duration::from_secs(1),
            multiplier: 4,
        }
    }

    #[test]
    fn waits_grow_by_the_multiplier() {
        let s = schedule();
        assert_eq!(s.delay_after(1), Duration::from_secs(1));
        assert_eq!(s.delay_after(2), Duration::from_secs(4));
        assert_eq!(s.delay_after(4), Duration::from_secs(64));
        assert_eq!(s.delays(), [1, 4, 16, 64].map(Duration::from_secs));
    }

    #[test]
    fn the_last_attempt_gets_no_retry() {
        let s = schedule();
        assert!(s.should_retry(1));
        assert!(s.should_retry(4));
        assert!(!s.should_retry(5));
        let once = RetrySchedule {
            attempts: 1,
            ..schedule()
        };
        assert!(!once.should_retry(1));
        assert!(once.delays().is_empty());
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        let d = Duration::from_secs(10);
        assert_eq!(RetrySchedule::jittered(d, 0.0), Duration::from_secs(9));
        assert_eq!(RetrySchedule::jittered(d, 0.5), Duration::from_secs(10));
        assert!(RetrySchedule::jittered(d, 0.999) <= Duration::from_secs(11));
    }
}
