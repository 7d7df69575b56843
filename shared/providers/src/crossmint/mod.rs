//! Crossmint: its order webhooks ([`webhook`], signed with Svix), and its
//! Headless Checkout orders API (`{CROSSMINT_API_URL}/2022-06-09/orders`,
//! the server key in `X-API-KEY`): the API creates orders with it
//! ([`OrdersApi::create_order`]), reconcile asks about them
//! ([`OrdersApi::get_order`]). One client, so the key handling, the timeout
//! and the errors (never with the URL or the key) are written once.

mod create;
mod lookup;
pub mod order_answer;
pub mod webhook;

use std::time::Duration;

use reqwest::header::HeaderValue;

use ledgerhook_runtime::config::{DEFAULT_CROSSMINT_API_URL, EnvReader};
use ledgerhook_runtime::secret_text::SecretText;

pub use create::CreatedOrder;
pub use lookup::{Answer, MAX_ANSWER_BYTES};

/// Debug shows no key: `SecretText` prints as redacted.
#[derive(Debug, Clone)]
pub struct OrdersApi {
    http: reqwest::Client,
    /// `.../2022-06-09/orders`, checked to take path segments.
    orders_url: reqwest::Url,
    api_key: SecretText,
    timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum CrossmintError {
    #[error("Crossmint did not answer within {0:?}")]
    Timeout(Duration),
    /// The cause is in the source chain (a refused connection, an
    /// untrusted certificate, ...); the error carries no URL.
    #[error("Crossmint could not be reached")]
    Unreachable(#[source] reqwest::Error),
    #[error("Crossmint answered {status}")]
    Refused { status: u16 },
    #[error("Crossmint's answer could not be read")]
    Unreadable,
    #[error("Crossmint's answer was larger than {MAX_ANSWER_BYTES} bytes")]
    TooLarge,
    #[error("CROSSMINT_SERVER_API_KEY cannot be sent as an HTTP header")]
    UnusableKey,
}

impl CrossmintError {
    /// Every [`Self::reason`], so each can be counted from zero.
    pub const REASONS: [&'static str; 6] = [
        "timeout",
        "unreachable",
        "refused",
        "unreadable",
        "too_large",
        "unusable_key",
    ];

    /// The metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "timeout",
            Self::Unreachable(_) => "unreachable",
            Self::Refused { .. } => "refused",
            Self::Unreadable => "unreadable",
            Self::TooLarge => "too_large",
            Self::UnusableKey => "unusable_key",
        }
    }
}

impl OrdersApi {
    /// Fails on a URL that is not http(s), or when no root certificate
    /// could be loaded (say `SSL_CERT_FILE` names a file without one):
    /// better at start than on every call. Every call is bounded by
    /// `timeout`.
    pub fn new(api_url: &str, api_key: SecretText, timeout: Duration) -> anyhow::Result<Self> {
        let orders_url: reqwest::Url =
            format!("{}/2022-06-09/orders", api_url.trim_end_matches('/'))
                .parse()
                .map_err(|_| anyhow::anyhow!("CROSSMINT_API_URL is not a URL"))?;
        anyhow::ensure!(
            !orders_url.cannot_be_a_base(),
            "CROSSMINT_API_URL is not an http(s) URL"
        );
        Ok(Self {
            http: reqwest::Client::builder().timeout(timeout).build()?,
            orders_url,
            api_key,
            timeout,
        })
    }

    /// The API's variables: `CROSSMINT_API_URL` (default: Crossmint's
    /// staging API), `CROSSMINT_SERVER_API_KEY` (required) and
    /// `CROSSMINT_TIMEOUT_MS` (default 10000). `None` when one is missing or
    /// unusable; the reader has recorded why (never with the key).
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &mut EnvReader<F>) -> Option<Self> {
        let api_url = env.or_default("CROSSMINT_API_URL", DEFAULT_CROSSMINT_API_URL);
        let api_key = env.required("CROSSMINT_SERVER_API_KEY");
        let timeout = Duration::from_millis(env.parsed_or("CROSSMINT_TIMEOUT_MS", 10_000));
        match Self::new(&api_url, SecretText::from(api_key?), timeout) {
            Ok(orders) => Some(orders),
            Err(e) => {
                env.invalid(format!("{e:#}"));
                None
            }
        }
    }

    /// Marked sensitive, so reqwest and hyper never print it either.
    fn api_key_header(&self) -> Result<HeaderValue, CrossmintError> {
        let mut value = HeaderValue::from_str(self.api_key.expose())
            .map_err(|_| CrossmintError::UnusableKey)?;
        value.set_sensitive(true);
        Ok(value)
    }

    fn transport_error(&self, error: reqwest::Error) -> CrossmintError {
        if error.is_timeout() {
            CrossmintError::Timeout(self.timeout)
        } else {
            // Without the URL: it is ours, not the caller's business, and
            // reqwest's text can include it.
            CrossmintError::Unreachable(error.without_url())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_that_takes_no_path_is_refused_at_start() {
        let key = SecretText::from("sk_test_visibly_fake".to_owned());
        assert!(
            OrdersApi::new(
                "mailto:ops@example.com",
                key.clone(),
                Duration::from_secs(1)
            )
            .is_err()
        );
        assert!(OrdersApi::new("not a url", key.clone(), Duration::from_secs(1)).is_err());
        let api = OrdersApi::new(
            "https://crossmint.example/api/",
            key,
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(
            api.orders_url.as_str(),
            "https://crossmint.example/api/2022-06-09/orders"
        );
        assert!(!format!("{api:?}").contains("visibly_fake"));
    }
}
