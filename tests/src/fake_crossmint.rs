//! A stand-in for Crossmint's orders API that tests start on an OS-chosen
//! port: it answers `POST /api/2022-06-09/orders` the way Crossmint does
//! (201, `clientSecret`, `order.orderId`) and `GET .../orders/{orderId}`
//! with the order object (awaiting payment until a test says it was paid:
//! [`FakeCrossmint::pay`]), checks the `X-API-KEY`, keeps every request it
//! saw, and can be told to fail or to hang. Over plain
//! HTTP, or over HTTPS with a test's certificate ([`FakeCrossmint::start_tls`]),
//! as the real one is.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// The key the fake accepts; visibly not a real one.
pub const FAKE_API_KEY: &str = "sk_staging_fake-key-for-tests";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    Answer,
    /// 500 with a body like Crossmint's errors.
    Fail,
    /// Never answers within any sane timeout.
    Hang,
}

#[derive(Clone)]
struct Shared {
    behaviour: Arc<Mutex<Behaviour>>,
    requests: Arc<Mutex<Vec<Value>>>,
    /// Every order created, by id: the order object GET answers with.
    orders: Arc<Mutex<HashMap<String, Value>>>,
    /// The order ids asked about, in order.
    lookups: Arc<Mutex<Vec<String>>>,
}

pub struct FakeCrossmint {
    /// What `CROSSMINT_API_URL` should be.
    pub api_url: String,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl FakeCrossmint {
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_on("127.0.0.1:0".parse()?).await
    }

    pub async fn start_on(addr: SocketAddr) -> anyhow::Result<Self> {
        Self::start_with(addr, None).await
    }

    /// Over HTTPS on an OS-chosen port, presenting `tls`'s certificate.
    pub async fn start_tls(tls: Arc<rustls::ServerConfig>) -> anyhow::Result<Self> {
        Self::start_with("127.0.0.1:0".parse()?, Some(tls)).await
    }

    async fn start_with(
        addr: SocketAddr,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> anyhow::Result<Self> {
        let shared = Shared {
            behaviour: Arc::new(Mutex::new(Behaviour::Answer)),
            requests: Arc::new(Mutex::new(Vec::new())),
            orders: Arc::new(Mutex::new(HashMap::new())),
            lookups: Arc::new(Mutex::new(Vec::new())),
        };
        let app = Router::new()
            .route("/api/2022-06-09/orders", post(create_order))
            .route("/api/2022-06-09/orders/{order_id}", get(get_order))
            .with_state(shared.clone());
        let listener = TcpListener::bind(addr).await?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let api_url = format!("{scheme}://{}/api", listener.local_addr()?);
        let task = match tls {
            None => tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            }),
            Some(tls) => tokio::spawn(crate::tls::serve(listener, tls, app)),
        };
        Ok(Self {
            api_url,
            shared,
            task,
        })
    }

    pub fn behave(&self, behaviour: Behaviour) {
        *self.shared.behaviour.lock().expect("lock") = behaviour;
    }

    /// The bodies of the create-order requests received so far.
    pub fn requests(&self) -> Vec<Value> {
        self.shared.requests.lock().expect("lock").clone()
    }

    /// Says the order was paid: from now on GET answers `payment.status`
    /// `completed` with `amount` received on the order's chain. Returns
    /// false for an order this fake never created.
    pub fn pay(&self, order_id: &str, amount: &str) -> bool {
        let mut orders = self.shared.orders.lock().expect("lock");
        let Some(order) = orders.get_mut(order_id) else {
            return false;
        };
        let method = order["payment"]["method"].clone();
        order["phase"] = json!("delivery");
        order["payment"]["status"] = json!("completed");
        order["payment"]["received"] = json!({
            "amount": amount,
            "currency": "usdt",
            "chain": method,
            "txId": format!("0xfeed{}", order_id.replace('-', "")),
        });
        true
    }

    /// The order ids GET was asked about, in order.
    pub fn lookups(&self) -> Vec<String> {
        self.shared.lookups.lock().expect("lock").clone()
    }

    /// Serves until the process ends (for the standalone binary).
    pub async fn serve_forever(mut self) {
        let _ = (&mut self.task).await;
    }
}

impl Drop for FakeCrossmint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn create_order(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    if headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some(FAKE_API_KEY) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": true, "message": "Unauthorized"})),
        );
    }
    shared.requests.lock().expect("lock").push(body.clone());
    let behaviour = *shared.behaviour.lock().expect("lock");
    match behaviour {
        Behaviour::Fail => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": true, "message": "Internal server error"})),
        ),
        Behaviour::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            (StatusCode::GATEWAY_TIMEOUT, Json(json!({})))
        }
        Behaviour::Answer => {
            let order_id = uuid::Uuid::new_v4().to_string();
            let price = body["lineItems"]["callData"]["totalPrice"].clone();
            let order = json!({
                "orderId": order_id,
                "phase": "payment",
                "quote": {"status": "valid", "totalPrice": {"amount": price, "currency": "usdt"}},
                "payment": {"status": "awaiting-payment", "method": body["payment"]["method"], "currency": "usdt"},
            });
            shared
                .orders
                .lock()
                .expect("lock")
                .insert(order_id.clone(), order.clone());
            (
                StatusCode::CREATED,
                Json(json!({
                    "clientSecret": format!("fake-client-secret-{order_id}"),
                    "order": order,
                })),
            )
        }
    }
}

async fn get_order(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(order_id): Path<String>,
) -> (StatusCode, Json<Value>) {
    if headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some(FAKE_API_KEY) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": true, "message": "Unauthorized"})),
        );
    }
    shared.lookups.lock().expect("lock").push(order_id.clone());
    let behaviour = *shared.behaviour.lock().expect("lock");
    match behaviour {
        Behaviour::Fail => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"error": true, "message": "Internal server error"})),
            );
        }
        Behaviour::Hang => tokio::time::sleep(Duration::from_secs(3600)).await,
        Behaviour::Answer => {}
    }
    let order = shared.orders.lock().expect("lock").get(&order_id).cloned();
    match order {
        Some(order) => (StatusCode::OK, Json(order)),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": true, "message": "Order not found"})),
        ),
    }
}
