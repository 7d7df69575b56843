//! Creating Checkout Sessions (`POST {STRIPE_API_URL}/v1/checkout/sessions`,
//! the secret key as a Bearer token, a form-encoded body): the API starts a
//! card payment for one package with it.
//!
//! The session carries our metadata (`userId`, `packageId`, on the session
//! and on its PaymentIntent, and the user as `client_reference_id`), so a
//! webhook can be attributed even if the API's own record of the order were
//! missing. `ui_mode` is not sent: its values changed in API version
//! 2026-03-25, and leaving it out means the hosted page on every version.
//!
//! Each create carries an `Idempotency-Key` chosen by the caller: Stripe
//! answers a repeated key with the first session instead of making another.
//!
//! Like the Crossmint client, every call is bounded by a timeout and an
//! answer size, and no error carries the URL or the key.

use std::time::Duration;

use reqwest::header::HeaderValue;
use serde::Deserialize;

use crate::capped_answer::{CappedReadError, read_capped};
use ledgerhook_domain::{Package, Plan};
use ledgerhook_runtime::secret_text::SecretText;

/// Stripe's API.
pub const DEFAULT_STRIPE_API_URL: &str = "https://api.stripe.com";
/// Stripe's bound on `client_reference_id`; a longer user id (tokens allow
/// 256 bytes) is left out of it, and travels in the metadata alone (values
/// up to 500 characters).
const MAX_CLIENT_REFERENCE_CHARS: usize = 200;
/// The most of an answer read: a Checkout Session is a few kilobytes.
pub const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// Debug shows no key: `SecretText` prints as redacted.
#[derive(Debug, Clone)]
pub struct CheckoutApi {
    http: reqwest::Client,
    /// `.../v1/checkout/sessions`.
    sessions_url: reqwest::Url,
    secret_key: SecretText,
    timeout: Duration,
}

/// Where Stripe sends the buyer after paying or giving up. Passed through
/// verbatim, so Stripe's `{CHECKOUT_SESSION_ID}` placeholder works.
#[derive(Debug, Clone)]
pub struct ReturnUrls {
    pub success_url: String,
    pub cancel_url: String,
}

/// One session to create.
#[derive(Debug, Clone, Copy)]
pub struct NewSession<'a> {
    pub user_id: &'a str,
    pub package: &'a Package,
    /// Stripe's `Idempotency-Key`: the same for every attempt at one order.
    pub idempotency_key: &'a str,
    /// When the hosted page stops taking payment (Unix seconds): the
    /// order's payment timeout, so that a buyer cannot pay an order the
    /// worker has already expired (see [`session_lifetime`]).
    pub expires_at: i64,
}

/// One subscription to start: a Checkout Session in subscription mode.
#[derive(Debug, Clone, Copy)]
pub struct NewSubscription<'a> {
    pub user_id: &'a str,
    pub plan: &'a Plan,
    /// Stripe's `Idempotency-Key`: the same for every attempt.
    pub idempotency_key: &'a str,
}

/// A subscription moving to another plan.
#[derive(Debug, Clone, Copy)]
pub struct PlanChange<'a> {
    pub subscription: &'a str,
    /// Its item (`si_...`) and the item's product (`prod_...`).
    pub item: &'a str,
    pub product: &'a str,
    pub plan: &'a Plan,
    pub idempotency_key: &'a str,
}

/// Stripe takes `expires_at` between 30 minutes and 24 hours after
/// creation; the payment timeout, brought into that range.
pub fn session_lifetime(payment_timeout: Duration) -> Duration {
    payment_timeout.clamp(
        Duration::from_secs(30 * 60),
        Duration::from_secs(24 * 60 * 60),
    )
}

/// What the frontend needs to send the buyer to the hosted page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedSession {
    /// `cs_...`: the order's provider id.
    pub id: String,
    pub url: String,
    pub payment_status: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StripeError {
    #[error("Stripe did not answer within {0:?}")]
    Timeout(Duration),
    /// The cause is in the source chain; the error carries no URL.
    #[error("Stripe could not be reached")]
    Unreachable(#[source] reqwest::Error),
    /// Stripe's own error object: `kind` is its `error.type`
    /// (`api_error`, `card_error`, `idempotency_error`,
    /// `invalid_request_error`, ...), `code` its `error.code` if any.
    #[error("Stripe answered {status} ({kind}{})", code.as_deref().map(|c| format!(", {c}")).unwrap_or_default())]
    Refused {
        status: u16,
        kind: String,
        code: Option<String>,
    },
    #[error("Stripe's answer could not be read")]
    Unreadable,
    #[error("Stripe's answer was larger than {MAX_ANSWER_BYTES} bytes")]
    TooLarge,
    #[error("STRIPE_SECRET_KEY cannot be sent as an HTTP header")]
    UnusableKey,
}

impl StripeError {
    /// Every [`Self::reason`], so each can be counted from zero.
    pub const REASONS: [&'static str; 12] = [
        "timeout",
        "unreachable",
        "api_error",
        "card_error",
        "idempotency_error",
        "authentication",
        "invalid_request_error",
        "rate_limited",
        "refused",
        "unreadable",
        "too_large",
        "unusable_key",
    ];

    /// The metric label: Stripe's error type for a refusal (a known,
    /// bounded set; anything else is `refused`), else how the call failed.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "timeout",
            Self::Unreachable(_) => "unreachable",
            Self::Refused { kind, status, .. } => match kind.as_str() {
                "api_error" => "api_error",
                "card_error" => "card_error",
                "idempotency_error" => "idempotency_error",
                "invalid_request_error" if *status == 401 => "authentication",
                "invalid_request_error" => "invalid_request_error",
                _ if *status == 429 => "rate_limited",
                _ => "refused",
            },
            Self::Unreadable => "unreadable",
            Self::TooLarge => "too_large",
            Self::UnusableKey => "unusable_key",
        }
    }
}

#[derive(Deserialize)]
struct SessionAnswer {
    id: String,
    url: Option<String>,
    payment_status: String,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    error: ErrorObject,
}

#[derive(Deserialize)]
struct ErrorObject {
    #[serde(rename = "type")]
    kind: String,
    code: Option<String>,
}

impl CheckoutApi {
    /// Fails on a URL that is not http(s), or when no root certificate
    /// could be loaded: better at start than on every call.
    pub fn new(api_url: &str, secret_key: SecretText, timeout: Duration) -> anyhow::Result<Self> {
        let sessions_url: reqwest::Url =
            format!("{}/v1/checkout/sessions", api_url.trim_end_matches('/'))
                .parse()
                .map_err(|_| anyhow::anyhow!("STRIPE_API_URL is not a URL"))?;
        anyhow::ensure!(
            matches!(sessions_url.scheme(), "http" | "https"),
            "STRIPE_API_URL is not an http(s) URL"
        );
        Ok(Self {
            http: reqwest::Client::builder().timeout(timeout).build()?,
            sessions_url,
            secret_key,
            timeout,
        })
    }

    /// Creates a hosted Checkout Session paying for `session.package` in
    /// US dollars (its price in whole cents).
    pub async fn create_session(
        &self,
        session: NewSession<'_>,
        urls: &ReturnUrls,
    ) -> Result<CreatedSession, StripeError> {
        let form = session_form(session, urls);
        let created = self
            .post_session(self.sessions_url.clone(), session.idempotency_key, &form)
            .await?;
        tracing::debug!(session = %created.id, package = session.package.id, "Checkout Session created");
        Ok(created)
    }

    /// Creates a hosted Checkout Session in subscription mode for `plan`:
    /// its price every interval, with the user and plan in the
    /// subscription's metadata, which Stripe copies onto every invoice of
    /// it (`parent.subscription_details.metadata`), so each paid period
    /// names its buyer and plan.
    pub async fn create_subscription_session(
        &self,
        session: NewSubscription<'_>,
        urls: &ReturnUrls,
    ) -> Result<CreatedSession, StripeError> {
        let form = subscription_form(session, urls);
        let created = self
            .post_session(self.sessions_url.clone(), session.idempotency_key, &form)
            .await?;
        tracing::debug!(session = %created.id, plan = session.plan.id, "subscription Checkout Session created");
        Ok(created)
    }

    /// A customer-portal session for `customer` (`cus_...`): the URL where
    /// the user manages or cancels their subscription.
    pub async fn portal_session(
        &self,
        customer: &str,
        return_url: &str,
    ) -> Result<String, StripeError> {
        let url = self
            .sessions_url
            .join("../billing_portal/sessions")
            .map_err(|_| StripeError::Unreadable)?;
        let form = [
            ("customer", customer.to_owned()),
            ("return_url", return_url.to_owned()),
        ];
        let body = self.post(url, None, &form).await?;
        #[derive(Deserialize)]
        struct Portal {
            url: String,
        }
        let portal: Portal = serde_json::from_slice(&body).map_err(|_| StripeError::Unreadable)?;
        Ok(portal.url)
    }

    /// Moves subscription `subscription` to `plan` from its next period:
    /// its item gets the plan's price (on the item's own product), its
    /// metadata names the plan (so the next invoice does), and nothing is
    /// prorated now.
    pub async fn change_plan(&self, change: PlanChange<'_>) -> Result<(), StripeError> {
        let safe = |id: &str| id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !change.subscription.starts_with("sub_") || !safe(change.subscription) {
            return Err(StripeError::Unreadable);
        }
        let url = self
            .sessions_url
            .join(&format!("../subscriptions/{}", change.subscription))
            .map_err(|_| StripeError::Unreadable)?;
        let plan = change.plan;
        let form = [
            ("items[0][id]", change.item.to_owned()),
            ("items[0][price_data][currency]", "usd".to_owned()),
            (
                "items[0][price_data][unit_amount]",
                plan.period.price.cents().to_string(),
            ),
            (
                "items[0][price_data][recurring][interval]",
                plan.interval.as_str().to_owned(),
            ),
            ("items[0][price_data][product]", change.product.to_owned()),
            ("proration_behavior", "none".to_owned()),
            ("metadata[planId]", plan.id.to_owned()),
        ];
        self.post(url, Some(change.idempotency_key), &form).await?;
        Ok(())
    }

    async fn post_session(
        &self,
        url: reqwest::Url,
        idempotency_key: &str,
        form: &[(&'static str, String)],
    ) -> Result<CreatedSession, StripeError> {
        let body = self.post(url, Some(idempotency_key), form).await?;
        let answer: SessionAnswer =
            serde_json::from_slice(&body).map_err(|_| StripeError::Unreadable)?;
        let url = answer.url.unwrap_or_default();
        if !answer.id.starts_with("cs_") || url.is_empty() {
            return Err(StripeError::Unreadable);
        }
        Ok(CreatedSession {
            id: answer.id,
            url,
            payment_status: answer.payment_status,
        })
    }

    /// A form POST with our key; the body of a 2xx answer.
    async fn post(
        &self,
        url: reqwest::Url,
        idempotency_key: Option<&str>,
        form: &[(&'static str, String)],
    ) -> Result<Vec<u8>, StripeError> {
        let mut request = self
            .http
            .post(url)
            .header(reqwest::header::AUTHORIZATION, self.authorization()?);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        let mut response = request
            .form(form)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = response.status();
        let body = read_capped(&mut response, MAX_ANSWER_BYTES)
            .await
            .map_err(|e| match e {
                CappedReadError::TooLarge => StripeError::TooLarge,
                CappedReadError::Transport(e) => self.transport_error(e),
            })?;
        if !status.is_success() {
            let error = serde_json::from_slice::<ErrorAnswer>(&body).ok();
            return Err(StripeError::Refused {
                status: status.as_u16(),
                kind: error
                    .as_ref()
                    .map_or_else(|| "unknown".to_owned(), |e| e.error.kind.clone()),
                code: error.and_then(|e| e.error.code),
            });
        }
        Ok(body)
    }

    fn authorization(&self) -> Result<HeaderValue, StripeError> {
        bearer(&self.secret_key)
    }

    fn transport_error(&self, error: reqwest::Error) -> StripeError {
        transport_error(error, self.timeout)
    }
}

/// The secret key as Stripe takes it; marked sensitive, so reqwest and
/// hyper never print it either.
pub(super) fn bearer(secret_key: &SecretText) -> Result<HeaderValue, StripeError> {
    let mut value = HeaderValue::from_str(&format!("Bearer {}", secret_key.expose()))
        .map_err(|_| StripeError::UnusableKey)?;
    value.set_sensitive(true);
    Ok(value)
}

/// A failed call, without its URL (ours, not the caller's business).
pub(super) fn transport_error(error: reqwest::Error, timeout: Duration) -> StripeError {
    if error.is_timeout() {
        StripeError::Timeout(timeout)
    } else {
        StripeError::Unreachable(error.without_url())
    }
}

/// The create request's form fields, in Stripe's bracket notation. The
/// price is whole cents, from the exact amount: no float on the way.
/// The subscription session's form: the plan's price every interval
/// (`price_data` with `recurring`, so no Price needs creating first), the
/// user and plan on the session and on the subscription.
fn subscription_form(
    session: NewSubscription<'_>,
    urls: &ReturnUrls,
) -> Vec<(&'static str, String)> {
    let plan = session.plan;
    let mut form = vec![
        ("mode", "subscription".to_owned()),
        ("line_items[0][price_data][currency]", "usd".to_owned()),
        (
            "line_items[0][price_data][unit_amount]",
            plan.period.price.cents().to_string(),
        ),
        (
            "line_items[0][price_data][recurring][interval]",
            plan.interval.as_str().to_owned(),
        ),
        (
            "line_items[0][price_data][product_data][name]",
            plan.period.name.to_owned(),
        ),
        ("line_items[0][quantity]", "1".to_owned()),
        ("success_url", urls.success_url.clone()),
        ("cancel_url", urls.cancel_url.clone()),
        ("metadata[userId]", session.user_id.to_owned()),
        ("metadata[planId]", plan.id.to_owned()),
        (
            "subscription_data[metadata][userId]",
            session.user_id.to_owned(),
        ),
        ("subscription_data[metadata][planId]", plan.id.to_owned()),
    ];
    if session.user_id.chars().count() <= MAX_CLIENT_REFERENCE_CHARS {
        form.push(("client_reference_id", session.user_id.to_owned()));
    }
    form
}

fn session_form(session: NewSession<'_>, urls: &ReturnUrls) -> Vec<(&'static str, String)> {
    let package = session.package;
    let mut form = vec![
        ("mode", "payment".to_owned()),
        ("line_items[0][price_data][currency]", "usd".to_owned()),
        (
            "line_items[0][price_data][unit_amount]",
            package.price.cents().to_string(),
        ),
        (
            "line_items[0][price_data][product_data][name]",
            package.name.to_owned(),
        ),
        ("line_items[0][quantity]", "1".to_owned()),
        ("success_url", urls.success_url.clone()),
        ("cancel_url", urls.cancel_url.clone()),
        ("expires_at", session.expires_at.to_string()),
        ("metadata[userId]", session.user_id.to_owned()),
        ("metadata[packageId]", package.id.to_owned()),
        (
            "payment_intent_data[metadata][userId]",
            session.user_id.to_owned(),
        ),
        (
            "payment_intent_data[metadata][packageId]",
            package.id.to_owned(),
        ),
    ];
    if session.user_id.chars().count() <= MAX_CLIENT_REFERENCE_CHARS {
        form.push(("client_reference_id", session.user_id.to_owned()));
    }
    form
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_is_listed_for_counting_from_zero() {
        let mut errors = vec![
            StripeError::Timeout(Duration::from_secs(1)),
            StripeError::Unreadable,
            StripeError::TooLarge,
            StripeError::UnusableKey,
        ];
        for (status, kind) in [
            (500, "api_error"),
            (402, "card_error"),
            (400, "idempotency_error"),
            (401, "invalid_request_error"),
            (400, "invalid_request_error"),
            (429, "something_new"),
            (400, "something_new"),
        ] {
            errors.push(StripeError::Refused {
                status,
                kind: kind.to_owned(),
                code: None,
            });
        }
        let mut reasons: Vec<&str> = errors.iter().map(StripeError::reason).collect();
        reasons.push("unreachable"); // needs a reqwest::Error to build
        reasons.sort_unstable();
        let mut listed = StripeError::REASONS.to_vec();
        listed.sort_unstable();
        assert_eq!(reasons, listed);
    }
    use ledgerhook_domain::find_package;

    #[test]
    fn a_session_lives_as_long_as_the_payment_timeout_within_stripes_range() {
        let minutes = |m: u64| Duration::from_secs(m * 60);
        assert_eq!(session_lifetime(minutes(45)), minutes(45));
        assert_eq!(session_lifetime(minutes(5)), minutes(30));
        assert_eq!(session_lifetime(minutes(48 * 60)), minutes(24 * 60));
    }

    #[test]
    fn the_form_holds_the_price_in_whole_cents_and_the_metadata() {
        let urls = ReturnUrls {
            success_url: "https://shop.example/ok?s={CHECKOUT_SESSION_ID}".to_owned(),
            cancel_url: "https://shop.example/cancel".to_owned(),
        };
        let package = find_package("pro").unwrap();
        let form = session_form(
            NewSession {
                user_id: "buyer-1",
                package,
                idempotency_key: "k",
                expires_at: 1_764_000_000,
            },
            &urls,
        );
        let field = |name: &str| {
            form.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(
            field("line_items[0][price_data][unit_amount]"),
            Some("5000")
        );
        assert_eq!(field("line_items[0][price_data][currency]"), Some("usd"));
        assert_eq!(field("metadata[packageId]"), Some("pro"));
        assert_eq!(
            field("payment_intent_data[metadata][userId]"),
            Some("buyer-1")
        );
        assert_eq!(field("client_reference_id"), Some("buyer-1"));
        assert_eq!(
            field("success_url"),
            Some("https://shop.example/ok?s={CHECKOUT_SESSION_ID}")
        );
        assert_eq!(field("ui_mode"), None);

        let long_user = "u".repeat(MAX_CLIENT_REFERENCE_CHARS + 1);
        let form = session_form(
            NewSession {
                user_id: &long_user,
                package,
                idempotency_key: "k",
                expires_at: 1_764_000_000,
            },
            &urls,
        );
        assert!(form.iter().all(|(k, _)| *k != "client_reference_id"));
        assert!(form.contains(&("metadata[userId]", long_user.clone())));
    }

    #[test]
    fn a_url_that_is_not_http_is_refused_and_the_key_never_shows() {
        let key = SecretText::from("sk_test_visibly_fake".to_owned());
        assert!(
            CheckoutApi::new(
                "mailto:ops@example.com",
                key.clone(),
                Duration::from_secs(1)
            )
            .is_err()
        );
        assert!(CheckoutApi::new("not a url", key.clone(), Duration::from_secs(1)).is_err());
        let api = CheckoutApi::new("https://stripe.example/", key, Duration::from_secs(1)).unwrap();
        assert_eq!(
            api.sessions_url.as_str(),
            "https://stripe.example/v1/checkout/sessions"
        );
        assert!(!format!("{api:?}").contains("visibly_fake"));
    }

    #[test]
    fn stripe_error_types_become_bounded_reasons() {
        let refused = |status, kind: &str| StripeError::Refused {
            status,
            kind: kind.to_owned(),
            code: None,
        };
        assert_eq!(refused(500, "api_error").reason(), "api_error");
        assert_eq!(
            refused(401, "invalid_request_error").reason(),
            "authentication"
        );
        assert_eq!(refused(429, "whatever").reason(), "rate_limited");
        assert_eq!(refused(418, "brand_new_type").reason(), "refused");
    }
}
