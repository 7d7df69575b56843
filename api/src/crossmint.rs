//! Creating an order with Crossmint's Headless Checkout API
//! (`POST {CROSSMINT_API_URL}/2022-06-09/orders`, `X-API-KEY` header).
//!
//! Crossmint's REST orders carry no metadata of ours, so the order row we
//! record (Crossmint order id -> user, package, price) is what attributes
//! the payment when its webhook arrives.

use std::time::Duration;

use ledgerhook_shared::domain::Package;
use ledgerhook_shared::secret_text::SecretText;
use reqwest::header::HeaderValue;
use serde::Deserialize;
use serde_json::json;

#[derive(Clone)]
pub struct Crossmint {
    http: reqwest::Client,
    orders_url: String,
    api_key: SecretText,
    collection_id: String,
    timeout: Duration,
}

/// What the frontend needs to run the checkout.
#[derive(Debug, Clone)]
pub struct CreatedOrder {
    pub order_id: String,
    /// The checkout's secret for this order, handed to the buyer's browser.
    pub client_secret: SecretText,
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
    #[error("Crossmint's answer had no order id or client secret")]
    Unreadable,
    #[error("CROSSMINT_SERVER_API_KEY cannot be sent as an HTTP header")]
    UnusableKey,
}

impl CrossmintError {
    /// The metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "timeout",
            Self::Unreachable(_) => "unreachable",
            Self::Refused { .. } => "refused",
            Self::Unreadable => "unreadable",
            Self::UnusableKey => "unusable_key",
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateOrderAnswer {
    client_secret: String,
    order: AnswerOrder,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AnswerOrder {
    order_id: String,
}

impl Crossmint {
    /// Fails when no root certificate could be loaded (say `SSL_CERT_FILE`
    /// names a file without one): better at start than on every order.
    pub fn new(
        api_url: &str,
        api_key: &SecretText,
        collection_id: &str,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: reqwest::Client::builder().timeout(timeout).build()?,
            orders_url: format!("{api_url}/2022-06-09/orders"),
            api_key: api_key.clone(),
            collection_id: collection_id.to_owned(),
            timeout,
        })
    }

    /// Creates the order for one package paid in USDT. `payer_address`,
    /// when the frontend knows the buyer's wallet, lets Crossmint prepare
    /// the payment transaction at once; otherwise the checkout asks for it.
    pub async fn create_order(
        &self,
        package: &Package,
        payer_address: Option<&str>,
    ) -> Result<CreatedOrder, CrossmintError> {
        let mut payment = json!({
            "method": package.chain,
            "currency": "usdt",
        });
        if let Some(address) = payer_address {
            payment["payerAddress"] = json!(address);
        }
        let body = json!({
            "payment": payment,
            "lineItems": {
                "collectionLocator": format!("crossmint:{}", self.collection_id),
                "callData": { "totalPrice": package.price.to_string(), "quantity": 1 },
            },
        });
        let response = self
            .http
            .post(&self.orders_url)
            .header("X-API-KEY", self.api_key_header()?)
            .json(&body)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(CrossmintError::Refused {
                status: status.as_u16(),
            });
        }
        let answer: CreateOrderAnswer = response.json().await.map_err(|e| {
            if e.is_timeout() {
                self.transport_error(e)
            } else {
                CrossmintError::Unreadable
            }
        })?;
        if answer.order.order_id.trim().is_empty() || answer.client_secret.is_empty() {
            return Err(CrossmintError::Unreadable);
        }
        Ok(CreatedOrder {
            order_id: answer.order.order_id,
            client_secret: answer.client_secret.into(),
        })
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
