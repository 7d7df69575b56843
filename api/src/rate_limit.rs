//! Per-user rate limits that hold across every API instance: a sliding
//! window kept in PostgreSQL (the times of the user's recent allowed
//! requests), checked and updated in one statement
//! (`ledgerhook_store::rate_limits`).
//!
//! Exact, unlike a token bucket: never more than `limit` allowed requests in
//! any `window`. A refused request is not recorded, so a client that keeps
//! knocking is not locked out longer than the window.

use std::time::Duration;

use ledgerhook_store::rate_limits;
use sqlx::PgPool;

#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    pub action: &'static str,
    pub limit: u32,
    pub window: Duration,
}

impl RateLimit {
    /// `Ok(())` when allowed (and counted); `Err(seconds)` to wait otherwise.
    pub async fn check(
        &self,
        pool: &PgPool,
        user_id: &str,
    ) -> Result<Result<(), u64>, sqlx::Error> {
        rate_limits::hit(pool, user_id, self.action, self.limit, self.window).await
    }
}
