//! Asking about one order (`GET .../orders/{orderId}`; reconcile). The
//! answer's exact bytes are what reconcile records, so they are returned
//! untouched.

use bytes::Bytes;

use super::{CrossmintError, OrdersApi};
use crate::capped_answer::{CappedReadError, read_capped};

/// The most of an answer read: an order object is a few kilobytes.
pub const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// Crossmint's answer, as received.
#[derive(Debug, Clone)]
pub struct Answer {
    pub body: Bytes,
    /// Every response header as `[[name, value], ...]`, as the ingester
    /// stores a webhook's request headers.
    pub headers: serde_json::Value,
}

impl OrdersApi {
    pub async fn get_order(&self, provider_order_id: &str) -> Result<Answer, CrossmintError> {
        // The id is ours (recorded from Crossmint's own answer), but it goes
        // into a path: one encoded segment, whatever it holds.
        let mut url = self.orders_url.clone();
        url.path_segments_mut()
            .expect("checked in new: the URL takes path segments")
            .push(provider_order_id);
        let mut response = self
            .http
            .get(url)
            .header("X-API-KEY", self.api_key_header()?)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(CrossmintError::Refused {
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
        let body = read_capped(&mut response, MAX_ANSWER_BYTES)
            .await
            .map_err(|e| match e {
                CappedReadError::TooLarge => CrossmintError::TooLarge,
                CappedReadError::Transport(e) => self.transport_error(e),
            })?;
        Ok(Answer {
            body: Bytes::from(body),
            headers,
        })
    }
}
