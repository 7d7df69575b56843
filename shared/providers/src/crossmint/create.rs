//! Creating an order for one package (the API, when a buyer starts a
//! checkout). Crossmint's REST orders carry no metadata of ours, so the
//! order row the API records (Crossmint order id -> user, package, price)
//! is what attributes the payment when its webhook arrives.

use serde::Deserialize;
use serde_json::json;

use super::{CrossmintError, OrdersApi};
use ledgerhook_domain::Package;
use ledgerhook_runtime::secret_text::SecretText;

/// What the frontend needs to run the checkout.
#[derive(Debug, Clone)]
pub struct CreatedOrder {
    pub order_id: String,
    /// The checkout's secret for this order, handed to the buyer's browser.
    pub client_secret: SecretText,
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

impl OrdersApi {
    /// Creates the order for one package of `collection_id`, paid in USDT.
    /// `payer_address`, when the frontend knows the buyer's wallet, lets
    /// Crossmint prepare the payment transaction at once; otherwise the
    /// checkout asks for it.
    pub async fn create_order(
        &self,
        collection_id: &str,
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
                "collectionLocator": format!("crossmint:{collection_id}"),
                "callData": { "totalPrice": package.price.to_string(), "quantity": 1 },
            },
        });
        let response = self
            .http
            .post(self.orders_url.clone())
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
}
