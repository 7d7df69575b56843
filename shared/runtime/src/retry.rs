//! Waiting before trying again: jitter, exponential delays, and the one
//! reconnect loop every long-lived link to a peer (the ingester's publisher,
//! the worker's consumer) runs in.

use std::time::Duration;

use backon::{BackoffBuilder as _, ExponentialBackoff, ExponentialBuilder};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The largest fraction by which a delay is lengthened or shortened at
/// random, so that peers which failed together do not all come back together.
pub const MAX_JITTER: f64 = 0.1;

/// `delay` with up to ±[`MAX_JITTER`] of it, from a random `unit` in [0, 1).
pub fn jittered(delay: Duration, unit: f64) -> Duration {
    delay.mul_f64(1.0 - MAX_JITTER + 2.0 * MAX_JITTER * unit.clamp(0.0, 1.0))
}

/// A random number in [0, 1) for jitter, from a v4 UUID's random bits.
pub fn random_unit() -> f64 {
    let (bits, _) = uuid::Uuid::new_v4().as_u64_pair();
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// Endless delays that double from `initial` up to `max`, each jittered by
/// up to ±[`MAX_JITTER`]. An iterator, so `backon` takes it as a backoff.
#[derive(Debug)]
pub struct Backoff {
    delays: ExponentialBackoff,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        let delays = ExponentialBuilder::default()
            .with_min_delay(initial)
            .with_max_delay(max)
            .with_factor(2.0)
            .without_max_times()
            .build();
        Self { delays }
    }
}

impl Iterator for Backoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        self.delays
            .next()
            .map(|delay| jittered(delay, random_unit()))
    }
}

/// First wait before reconnecting to a peer that went away.
pub const RECONNECT_INITIAL_DELAY: Duration = Duration::from_millis(100);
/// Longest wait between two connection attempts. A session that lasted
/// longer than this was healthy, and the waits after it start over.
pub const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(10);

/// Why [`reconnect`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// A session returned Ok: its work is over.
    Finished,
    /// `shutdown` fired while waiting to reconnect.
    Shutdown,
}

/// Runs `session` (one connection's worth of work) again and again until
/// one returns Ok, waiting [`Backoff`] delays between attempts (from
/// [`RECONNECT_INITIAL_DELAY`] to [`RECONNECT_MAX_DELAY`], jittered) and
/// giving up the wait when `shutdown` fires. A session says itself, in its
/// own words, why it failed; the error is only passed through.
pub async fn reconnect<S, F>(shutdown: &CancellationToken, mut session: S) -> Ended
where
    S: FnMut() -> F,
    F: Future<Output = anyhow::Result<()>>,
{
    let mut delays = reconnect_delays();
    loop {
        let started = Instant::now();
        if session().await.is_ok() {
            return Ended::Finished;
        }
        if started.elapsed() > RECONNECT_MAX_DELAY {
            delays = reconnect_delays();
        }
        let delay = delays.next().unwrap_or(RECONNECT_MAX_DELAY);
        tracing::debug!(?delay, "waiting before reconnecting");
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shutdown.cancelled() => return Ended::Shutdown,
        }
    }
}

fn reconnect_delays() -> Backoff {
    Backoff::new(RECONNECT_INITIAL_DELAY, RECONNECT_MAX_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_ten_percent() {
        let d = Duration::from_secs(10);
        assert_eq!(jittered(d, 0.0), Duration::from_secs(9));
        assert_eq!(jittered(d, 0.5), Duration::from_secs(10));
        assert!(jittered(d, 0.999) <= Duration::from_secs(11));
        for _ in 0..1000 {
            let unit = random_unit();
            assert!((0.0..1.0).contains(&unit), "{unit}");
        }
    }

    #[test]
    fn delays_double_up_to_the_maximum_with_jitter() {
        let delays: Vec<Duration> =
            Backoff::new(Duration::from_millis(100), Duration::from_secs(1))
                .take(8)
                .collect();
        let expected = [100, 200, 400, 800, 1000, 1000, 1000, 1000];
        for (delay, expected) in delays.iter().zip(expected) {
            let expected = Duration::from_millis(expected);
            assert!(
                *delay >= expected.mul_f64(0.9) && *delay <= expected.mul_f64(1.1),
                "{delays:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn reconnect_retries_until_a_session_finishes() {
        let shutdown = CancellationToken::new();
        let mut sessions = 0;
        let ended = reconnect(&shutdown, || {
            sessions += 1;
            let failed = sessions < 4;
            async move {
                if failed {
                    anyhow::bail!("lost")
                }
                Ok(())
            }
        })
        .await;
        assert_eq!((ended, sessions), (Ended::Finished, 4));
    }

    #[tokio::test(start_paused = true)]
    async fn reconnect_stops_waiting_at_shutdown() {
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        let ended = reconnect(&shutdown, || async { anyhow::bail!("unreachable") }).await;
        assert_eq!(ended, Ended::Shutdown);
    }
}
