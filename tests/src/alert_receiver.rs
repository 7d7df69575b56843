//! The team's end of an alert: an HTTP endpoint on an OS-chosen loopback
//! port that keeps every notification Alertmanager's webhook receiver POSTs
//! to it (Alertmanager's webhook format: `{"status", "alerts": [{"labels",
//! "annotations", ...}], ...}`).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::Value;
use tokio::net::TcpListener;

/// The path the receiver answers on; anything else is 404.
pub const PATH: &str = "/ledgerhook";

pub struct AlertReceiver {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Value>>>,
    task: tokio::task::JoinHandle<()>,
}

impl AlertReceiver {
    pub async fn start() -> anyhow::Result<Self> {
        let received = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .route(PATH, post(keep))
            .with_state(received.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            addr,
            received,
            task,
        })
    }

    /// The URL to put in Alertmanager's `webhook_configs`.
    pub fn url(&self) -> String {
        format!("http://{}{PATH}", self.addr)
    }

    /// Every notification received so far, in order.
    pub fn notifications(&self) -> Vec<Value> {
        self.received.lock().expect("receiver lock").clone()
    }
}

async fn keep(State(received): State<Arc<Mutex<Vec<Value>>>>, Json(body): Json<Value>) {
    received.lock().expect("receiver lock").push(body);
}

impl Drop for AlertReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}
