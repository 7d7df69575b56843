//! Waiting for something to be observed, instead of sleeping and hoping.
//!
//! A test says what it waits for as a check: an async closure that looks
//! once (a row count, a metric, a readiness answer, a log line) and returns
//! `Ok` with what it found, or `Err` with what it saw instead. [`eventually`]
//! retries it until it passes; when time runs out, the failure names the
//! last observation, so a timeout says what the world looked like.
//!
//! ```ignore
//! let balance = eventually(WAIT, async || {
//!     let balance = env.balance("user").await;
//!     seen(balance, balance == 9600)
//! })
//! .await;
//! ```

use std::fmt::{Debug, Display};
use std::time::Duration;

use tokio::time::Instant;

/// How long to wait between two looks: short at first (most waits are
/// brief), then longer, so a long wait does not hammer what it polls.
const FIRST_PAUSE: Duration = Duration::from_millis(5);
const LONGEST_PAUSE: Duration = Duration::from_millis(50);

/// Retries `check` until it returns `Ok` (its value is returned) or `timeout`
/// has passed; then panics with the last observation. A look that is itself
/// still running at the timeout is abandoned and reported as such.
pub async fn eventually<T, E: Display>(
    timeout: Duration,
    check: impl AsyncFnMut() -> Result<T, E>,
) -> T {
    match within(timeout, check).await {
        Ok(value) => value,
        Err(e) => panic!("{e}"),
    }
}

/// [`eventually`] as a `Result`, for code that reports rather than panics
/// (starting a process, say).
pub async fn within<T, E: Display>(
    timeout: Duration,
    mut check: impl AsyncFnMut() -> Result<T, E>,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + timeout;
    let mut pause = FIRST_PAUSE;
    let mut last = None;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining, check()).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(seen)) => last = Some(seen.to_string()),
            Err(_) => {
                let seen = last.map_or_else(String::new, |s| format!("; before that: {s}"));
                anyhow::bail!("not so within {timeout:?}: the last look was still running{seen}");
            }
        }
        if Instant::now() + pause > deadline {
            let seen = last.unwrap_or_default();
            anyhow::bail!("not so within {timeout:?}; last seen: {seen}");
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}

/// A check's answer: `Ok(observation)` when `ok`, else the observation
/// (`Debug`-printed) as what was seen instead.
pub fn seen<T: Debug>(observation: T, ok: bool) -> Result<T, String> {
    if ok {
        Ok(observation)
    } else {
        Err(format!("{observation:?}"))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{eventually, seen, within};

    #[tokio::test]
    async fn returns_what_the_passing_look_found() {
        let mut looks = 0;
        let found = eventually(Duration::from_secs(5), async || {
            looks += 1;
            seen(looks, looks == 3)
        })
        .await;
        assert_eq!(found, 3);
    }

    #[tokio::test]
    async fn a_timeout_names_the_last_observation() {
        let mut looks = 0;
        let error = within(Duration::from_millis(50), async || {
            looks += 1;
            seen(format!("look {looks}"), false)
        })
        .await
        .unwrap_err()
        .to_string();
        assert!(error.contains(&format!("look {looks}")), "{error}");
        assert!(error.contains("50ms"), "{error}");
    }

    #[tokio::test]
    async fn a_look_that_hangs_past_the_timeout_is_reported() {
        let error = within(Duration::from_millis(50), async || {
            std::future::pending::<()>().await;
            seen((), true)
        })
        .await
        .unwrap_err()
        .to_string();
        assert!(error.contains("still running"), "{error}");
    }
}
