//! The API's use of Stripe Checkout: a hosted Checkout Session per order,
//! with the return URLs of `STRIPE_SUCCESS_URL` / `STRIPE_CANCEL_URL`. The
//! client itself is `ledgerhook_shared::stripe::checkout`.
//!
//! Stripe's `Idempotency-Key` ties each session to one order attempt: with
//! the caller's own `Idempotency-Key` it is derived from (user, key,
//! package), so a request that takes over a reservation whose holder died
//! after Stripe answered gets that same session back instead of a second
//! one; without it, each request is its own attempt.

use ledgerhook_shared::domain::Package;
use ledgerhook_shared::stripe::checkout::{CheckoutApi, NewSession, ReturnUrls};
pub use ledgerhook_shared::stripe::checkout::{CreatedSession, StripeError};
use sha2::{Digest as _, Sha256};

use crate::config::StripeConfig;
use crate::order_keys::IdempotencyKey;

#[derive(Clone)]
pub struct Stripe {
    checkout: CheckoutApi,
    return_urls: ReturnUrls,
}

impl Stripe {
    pub fn new(config: &StripeConfig) -> anyhow::Result<Self> {
        Ok(Self {
            checkout: CheckoutApi::new(&config.api_url, config.secret_key.clone(), config.timeout)?,
            return_urls: config.return_urls.clone(),
        })
    }

    pub async fn create_session(
        &self,
        user_id: &str,
        package: &Package,
        key: Option<&IdempotencyKey>,
    ) -> Result<CreatedSession, StripeError> {
        let idempotency_key = stripe_idempotency_key(user_id, package, key);
        self.checkout
            .create_session(
                NewSession {
                    user_id,
                    package,
                    idempotency_key: &idempotency_key,
                },
                &self.return_urls,
            )
            .await
    }
}

/// Stripe's `Idempotency-Key` for this attempt: a hash, so neither the
/// user id nor the caller's key is shown to Stripe in the header, and the
/// length stays within Stripe's 255 characters whatever the inputs.
fn stripe_idempotency_key(
    user_id: &str,
    package: &Package,
    key: Option<&IdempotencyKey>,
) -> String {
    let Some(key) = key else {
        return format!("ledgerhook-{}", uuid::Uuid::now_v7());
    };
    let mut hash = Sha256::new();
    for part in [user_id, key.as_str(), package.id] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    let digest: String = hash
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("ledgerhook-{digest}")
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue};
    use ledgerhook_shared::domain::find_package;

    use super::*;

    fn key(text: &str) -> IdempotencyKey {
        let mut headers = HeaderMap::new();
        headers.insert("idempotency-key", HeaderValue::from_str(text).unwrap());
        IdempotencyKey::from_headers(&headers).unwrap().unwrap()
    }

    #[test]
    fn one_caller_key_is_one_stripe_key_per_user_and_package() {
        let pro = find_package("pro").unwrap();
        let vip = find_package("vip").unwrap();
        let a = stripe_idempotency_key("u1", pro, Some(&key("k1")));
        assert_eq!(a, stripe_idempotency_key("u1", pro, Some(&key("k1"))));
        assert_ne!(a, stripe_idempotency_key("u2", pro, Some(&key("k1"))));
        assert_ne!(a, stripe_idempotency_key("u1", vip, Some(&key("k1"))));
        assert_ne!(a, stripe_idempotency_key("u1", pro, Some(&key("k2"))));
        assert!(!a.contains("u1") && !a.contains("k1"));
        assert_ne!(
            stripe_idempotency_key("u1", pro, None),
            stripe_idempotency_key("u1", pro, None)
        );
    }
}
