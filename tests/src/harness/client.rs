//! Talking to the ingester as Crossmint (through Svix) does: signed
//! deliveries, raw requests, and what came back. The API's client is
//! [`crate::api_client::Api`].

use anyhow::Context as _;
use serde_json::Value;

use super::processes::Service;
use crate::webhook::{new_delivery_id, svix_headers, test_secret};

/// The ingester and a client for it.
pub struct Ingester {
    pub service: Service,
    pub url: String,
    pub base: String,
    http: reqwest::Client,
}

/// What an HTTP endpoint answered.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub retry_after: Option<String>,
    pub headers: reqwest::header::HeaderMap,
}

impl Answer {
    pub async fn read(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let retry_after = headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = response.text().await.unwrap_or_default();
        Self {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
            retry_after,
            headers,
        }
    }

    /// A response header as text, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Ingester {
    pub(super) fn new(service: Service, http: reqwest::Client) -> anyhow::Result<Self> {
        let addr = service
            .http_addr
            .context("the ingester reports its address")?;
        Ok(Self {
            url: format!("http://{addr}/webhooks/crossmint"),
            base: format!("http://{addr}"),
            service,
            http,
        })
    }

    /// Sends `body` correctly signed under a fresh delivery id.
    pub async fn send(&self, body: &Value) -> Answer {
        self.send_as(&new_delivery_id(), body).await
    }

    /// Sends `body` correctly signed under `delivery_id`.
    pub async fn send_as(&self, delivery_id: &str, body: &Value) -> Answer {
        let bytes = serde_json::to_vec(body).expect("serialising a body");
        let headers = svix_headers(&test_secret(), delivery_id, &bytes);
        self.send_raw(
            &headers
                .iter()
                .map(|(k, v)| (*k, v.clone()))
                .collect::<Vec<_>>(),
            bytes,
        )
        .await
    }

    /// Sends exactly these headers and bytes.
    pub async fn send_raw(&self, headers: &[(&str, String)], body: Vec<u8>) -> Answer {
        let mut request = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        Answer::read(request.send().await.expect("the ingester answers")).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("the ingester answers");
        Answer::read(response).await
    }
}
