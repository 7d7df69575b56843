//! What reconcile reads from Stripe's API with our secret key: the events
//! Stripe could not deliver to our endpoint (`GET /v1/events` with
//! `delivery_success=false`, which Stripe keeps for 30 days), and a
//! Checkout Session's state (`GET /v1/checkout/sessions/{id}`).
//!
//! Read only; answers are capped in size like every provider answer.
//! Amounts stay exact: the workspace reads JSON numbers with arbitrary
//! precision, so an event's body written back out has the same figures.

use std::time::Duration;

use reqwest::header::HeaderValue;
use serde_json::Value;

use super::checkout::{self, DEFAULT_STRIPE_API_URL, MAX_ANSWER_BYTES, StripeError};
use crate::capped_answer::{CappedReadError, read_capped};
use ledgerhook_runtime::config::EnvReader;
use ledgerhook_runtime::secret_text::SecretText;

/// Events per page: twenty events of a few kilobytes each stay well inside
/// [`MAX_ANSWER_BYTES`].
const PAGE: usize = 20;

/// Debug shows no key: `SecretText` prints as redacted.
#[derive(Debug, Clone)]
pub struct StripeReads {
    http: reqwest::Client,
    /// `.../v1`.
    base: String,
    secret_key: SecretText,
    timeout: Duration,
}

/// One event as Stripe's API holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEvent {
    pub id: String,
    pub event_type: String,
    /// The event object, as JSON (the body a webhook would have carried).
    pub body: Vec<u8>,
}

impl StripeReads {
    pub fn new(api_url: &str, secret_key: SecretText, timeout: Duration) -> anyhow::Result<Self> {
        let base = format!("{}/v1", api_url.trim_end_matches('/'));
        let url: reqwest::Url = base
            .parse()
            .map_err(|_| anyhow::anyhow!("STRIPE_API_URL is not a URL"))?;
        anyhow::ensure!(
            matches!(url.scheme(), "http" | "https"),
            "STRIPE_API_URL is not an http(s) URL"
        );
        Ok(Self {
            http: reqwest::Client::builder().timeout(timeout).build()?,
            base,
            secret_key,
            timeout,
        })
    }

    /// `STRIPE_SECRET_KEY` (required), `STRIPE_API_URL`, `STRIPE_TIMEOUT_MS`,
    /// as the API reads them.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &mut EnvReader<F>) -> Option<Self> {
        let api_url = env.or_default("STRIPE_API_URL", DEFAULT_STRIPE_API_URL);
        let key = env.required("STRIPE_SECRET_KEY");
        let timeout = Duration::from_millis(env.parsed_or("STRIPE_TIMEOUT_MS", 10_000));
        match Self::new(&api_url, SecretText::from(key?), timeout) {
            Ok(reads) => Some(reads),
            Err(e) => {
                env.invalid(format!("{e:#}"));
                None
            }
        }
    }

    /// The events created since `since` (Unix seconds) that Stripe could not
    /// deliver to us, newest first, at most `max`.
    pub async fn undelivered_events(
        &self,
        since: i64,
        max: usize,
    ) -> Result<Vec<RawEvent>, StripeError> {
        let mut events = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut query = vec![
                ("delivery_success", "false".to_owned()),
                ("created[gte]", since.to_string()),
                ("limit", PAGE.min(max - events.len()).max(1).to_string()),
            ];
            if let Some(after) = &after {
                query.push(("starting_after", after.clone()));
            }
            let page = self
                .get(&format!("{}/events", self.base), &query)
                .await?
                .ok_or(StripeError::Unreadable)?;
            let page: Value = serde_json::from_slice(&page).map_err(|_| StripeError::Unreadable)?;
            let data = page["data"].as_array().ok_or(StripeError::Unreadable)?;
            for event in data {
                let (Some(id), Some(event_type)) = (event["id"].as_str(), event["type"].as_str())
                else {
                    return Err(StripeError::Unreadable);
                };
                events.push(RawEvent {
                    id: id.to_owned(),
                    event_type: event_type.to_owned(),
                    body: serde_json::to_vec(event).map_err(|_| StripeError::Unreadable)?,
                });
            }
            after = events.last().map(|e| e.id.clone());
            if page["has_more"] != Value::Bool(true) || data.is_empty() || events.len() >= max {
                return Ok(events);
            }
        }
    }

    /// The invoice `payment_intent` paid, if it paid one (`GET
    /// /v1/invoice_payments`): an invoice's event need not list its
    /// payments, so a refund may name a PaymentIntent no order holds yet.
    pub async fn invoice_of_payment(
        &self,
        payment_intent: &str,
    ) -> Result<Option<String>, StripeError> {
        if !payment_intent.starts_with("pi_")
            || !payment_intent
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Ok(None);
        }
        let query = [
            ("payment[type]", "payment_intent".to_owned()),
            ("payment[payment_intent]", payment_intent.to_owned()),
            ("limit", "1".to_owned()),
        ];
        let Some(page) = self
            .get(&format!("{}/invoice_payments", self.base), &query)
            .await?
        else {
            return Ok(None);
        };
        let page: Value = serde_json::from_slice(&page).map_err(|_| StripeError::Unreadable)?;
        let invoice = &page["data"][0]["invoice"];
        Ok(invoice
            .as_str()
            .or_else(|| invoice["id"].as_str())
            .filter(|id| id.starts_with("in_"))
            .map(str::to_owned))
    }

    /// Checkout Session `id` as Stripe holds it now (JSON), or `None` when
    /// Stripe has none by that id.
    pub async fn checkout_session(&self, id: &str) -> Result<Option<Vec<u8>>, StripeError> {
        // Ours are `cs_` and letters, digits and underscores; anything else
        // would not name a session, and must not bend the path.
        if !id.starts_with("cs_") || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Ok(None);
        }
        self.get(&format!("{}/checkout/sessions/{id}", self.base), &[])
            .await
    }

    /// A GET's body; `None` for Stripe's 404.
    async fn get(
        &self,
        url: &str,
        query: &[(&str, String)],
    ) -> Result<Option<Vec<u8>>, StripeError> {
        let mut response = self
            .http
            .get(url)
            .query(query)
            .header(reqwest::header::AUTHORIZATION, self.authorization()?)
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
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            let error: Option<Value> = serde_json::from_slice(&body).ok();
            let field = |name: &str| {
                error
                    .as_ref()
                    .and_then(|e| e["error"][name].as_str())
                    .map(str::to_owned)
            };
            return Err(StripeError::Refused {
                status: status.as_u16(),
                kind: field("type").unwrap_or_else(|| "unknown".to_owned()),
                code: field("code"),
            });
        }
        Ok(Some(body))
    }

    fn authorization(&self) -> Result<HeaderValue, StripeError> {
        checkout::bearer(&self.secret_key)
    }

    fn transport_error(&self, error: reqwest::Error) -> StripeError {
        checkout::transport_error(error, self.timeout)
    }
}
