//! A stand-in for Crossmint's orders API that tests start on an OS-chosen
//! port: it answers `POST /api/2022-06-09/orders` the way Crossmint does
//! (201, `clientSecret`, `order.orderId`), checks the `X-API-KEY`, keeps
//! every request it saw, and can be told to fail or to hang.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
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
        let shared = Shared {
            behaviour: Arc::new(Mutex::new(Behaviour::Answer)),
            requests: Arc::new(Mutex::new(Vec::new())),
        };
        let app = Router::new()
            .route("/api/2022-06-09/orders", post(create_order))
            .with_state(shared.clone());
        let listener = TcpListener::bind(addr).await?;
        let api_url = format!("http://{}/api", listener.local_addr()?);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
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
            (
                StatusCode::CREATED,
                Json(json!({
                    "clientSecret": format!("fake-client-secret-{order_id}"),
                    "order": {
                        "orderId": order_id,
                        "phase": "payment",
                        "quote": {"status": "valid", "totalPrice": {"amount": price, "currency": "usdt"}},
                        "payment": {"status": "awaiting-payment", "method": body["payment"]["method"], "currency": "usdt"},
                    },
                })),
            )
        }
    }
}
