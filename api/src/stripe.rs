//! The API's use of Stripe Checkout: a hosted Checkout Session per order,
//! with the return URLs of `STRIPE_SUCCESS_URL` / `STRIPE_CANCEL_URL`. The
//! client itself is `ledgerhook_providers::stripe::checkout`.
//!
//! Stripe's `Idempotency-Key` is the order attempt: with the caller's own
//! `Idempotency-Key`, the reservation this request holds (so concurrent
//! requests with one key, of which only one holds it, make one session, and
//! a replay never reaches Stripe); without one, this request. It is not
//! derived from the caller's key alone, because Stripe replays whatever it
//! first answered a key, a 500 included, for 24 hours: a buyer whose order
//! failed would then fail again on every retry. The cost: an attempt that
//! timed out, or whose holder died, may leave a session behind that nobody
//! was shown; it is never paid, and Stripe expires it.

use ledgerhook_domain::{Package, Plan};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ledgerhook_providers::stripe::checkout::{
    CheckoutApi, NewSession, NewSubscription, PlanChange, ReturnUrls, session_lifetime,
};
pub use ledgerhook_providers::stripe::checkout::{CreatedSession, StripeError};

use crate::config::StripeConfig;
use crate::order_keys::Reservation;

#[derive(Clone)]
pub struct Stripe {
    checkout: CheckoutApi,
    return_urls: ReturnUrls,
    /// How long a session takes payment: the payment timeout, in Stripe's range.
    session_lifetime: Duration,
    /// Where the customer portal sends the user back.
    portal_return_url: String,
}

impl Stripe {
    pub fn new(config: &StripeConfig) -> anyhow::Result<Self> {
        Ok(Self {
            checkout: CheckoutApi::new(&config.api_url, config.secret_key.clone(), config.timeout)?,
            return_urls: config.return_urls.clone(),
            session_lifetime: session_lifetime(config.payment_timeout),
            portal_return_url: config.portal_return_url.clone(),
        })
    }

    /// A subscription-mode session for `plan`; the same idempotency as an
    /// order's.
    pub async fn create_subscription_session(
        &self,
        user_id: &str,
        plan: &Plan,
        reservation: Option<&Reservation>,
    ) -> Result<CreatedSession, StripeError> {
        let idempotency_key = stripe_idempotency_key(reservation);
        self.checkout
            .create_subscription_session(
                NewSubscription {
                    user_id,
                    plan,
                    idempotency_key: &idempotency_key,
                },
                &self.return_urls,
            )
            .await
    }

    /// Moves `subscription` to `plan` from its next period.
    pub async fn change_plan(
        &self,
        subscription: &str,
        item: &str,
        product: &str,
        plan: &Plan,
    ) -> Result<(), StripeError> {
        // One change per subscription and plan: a retry is the same change.
        let idempotency_key = format!("ledgerhook-plan-{subscription}-{}", plan.id);
        self.checkout
            .change_plan(PlanChange {
                subscription,
                item,
                product,
                plan,
                idempotency_key: &idempotency_key,
            })
            .await
    }

    /// The customer portal's URL for `customer`, returning to the shop.
    pub async fn portal(&self, customer: &str) -> Result<String, StripeError> {
        self.checkout
            .portal_session(customer, &self.portal_return_url)
            .await
    }

    pub async fn create_session(
        &self,
        user_id: &str,
        package: &Package,
        reservation: Option<&Reservation>,
    ) -> Result<CreatedSession, StripeError> {
        let idempotency_key = stripe_idempotency_key(reservation);
        self.checkout
            .create_session(
                NewSession {
                    user_id,
                    package,
                    idempotency_key: &idempotency_key,
                    expires_at: expires_at(self.session_lifetime),
                },
                &self.return_urls,
            )
            .await
    }
}

/// Unix seconds `lifetime` from now.
fn expires_at(lifetime: Duration) -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from((now + lifetime).as_secs()).unwrap_or(i64::MAX)
}

/// Stripe's `Idempotency-Key` for this attempt: ours, never the caller's
/// text (which Stripe need not see).
fn stripe_idempotency_key(reservation: Option<&Reservation>) -> String {
    let attempt = reservation.map_or_else(uuid::Uuid::now_v7, Reservation::attempt);
    format!("ledgerhook-order-{attempt}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_attempt_without_a_reservation_is_its_own_stripe_key() {
        let first = stripe_idempotency_key(None);
        assert!(first.starts_with("ledgerhook-order-"), "{first}");
        assert!(first.len() <= 255);
        assert_ne!(first, stripe_idempotency_key(None));
    }
}
