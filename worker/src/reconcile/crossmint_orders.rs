//! Asking Crossmint about one order: `GET {CROSSMINT_API_URL}/2022-06-09/orders/{orderId}`
//! with the server key in `X-API-KEY`. The answer's exact bytes are what
//! reconcile records, so they are returned untouched.

use std::time::Duration;

use bytes::Bytes;
use ledgerhook_shared::config::{DEFAULT_CROSSMINT_API_URL, EnvReader};
use ledgerhook_shared::secret_text::SecretText;
use reqwest::header::HeaderValue;

/// The most of an answer we read: an order object is a few kilobytes.
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// Debug shows no key: `SecretText` prints as redacted.
#[derive(Debug, Clone)]
pub struct CrossmintOrders {
    http: reqwest::Client,
    /// `.../2022-06-09/orders`, checked to take path segments.
    orders_url: reqwest::Url,
    api_key: SecretText,
    timeout: Duration,
}

/// Crossmint's answer, as received.
#[derive(Debug, Clone)]
pub struct Answer {
    pub body: Bytes,
    /// Every response header as `[[name, value], ...]`, as the ingester
    /// stores a webhook's request headers.
    pub headers: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("Crossmint did not answer within {0:?}")]
    Timeout(Duration),
    /// The cause is in the source chain; the error carries no URL.
    #[error("Crossmint could not be reached")]
    Unreachable(#[source] reqwest::Error),
    #[error("Crossmint answered {status}")]
    Refused { status: u16 },
    #[error("Crossmint's answer was larger than {MAX_ANSWER_BYTES} bytes")]
    TooLarge,
    #[error("CROSSMINT_SERVER_API_KEY cannot be sent as an HTTP header")]
    UnusableKey,
}

impl LookupError {
    /// The metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "timeout",
            Self::Unreachable(_) => "unreachable",
            Self::Refused { .. } => "refused",
            Self::TooLarge => "too_large",
            Self::UnusableKey => "unusable_key",
        }
    }
}

impl CrossmintOrders {
    /// The API's variables: `CROSSMINT_API_URL` (default: Crossmint's
    /// staging API), `CROSSMINT_SERVER_API_KEY` (required) and
    /// `CROSSMINT_TIMEOUT_MS` (default 10000). `None` when one is missing or
    /// unusable; the reader has recorded why.
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

    pub async fn get_order(&self, crossmint_order_id: &str) -> Result<Answer, LookupError> {
        let mut key =
            HeaderValue::from_str(self.api_key.expose()).map_err(|_| LookupError::UnusableKey)?;
        // Marked sensitive, so reqwest and hyper never print it.
        key.set_sensitive(true);
        // The id is ours (recorded from Crossmint's own answer), but it goes
        // into a path: one encoded segment, whatever it holds.
        let mut url = self.orders_url.clone();
        url.path_segments_mut()
            .expect("checked in new: the URL takes path segments")
            .push(crossmint_order_id);
        let mut response = self
            .http
            .get(url)
            .header("X-API-KEY", key)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(LookupError::Refused {
                status: status.as_u16(),
            });
        }
        let headers = serde_json::Value::Array(
            response
                .headers()
                .iter()
                .map(|(name, value)| {
                    serde_json::json!([name.as_str(), String::from_utf8_lossy(value.as_bytes())])
                })
                .collect(),
        );
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(e))?
        {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(LookupError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer {
            body: Bytes::from(body),
            headers,
        })
    }

    fn transport_error(&self, error: reqwest::Error) -> LookupError {
        if error.is_timeout() {
            LookupError::Timeout(self.timeout)
        } else {
            LookupError::Unreachable(error.without_url())
        }
    }
}
