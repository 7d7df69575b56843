//! A sign-in provider's key endpoint for tests: serves a JWKS document over
//! HTTPS with a test CA's certificate, counts the fetches, and can publish
//! a new document (a key rotation) or go away (an outage).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::tls::ServerCert;

pub const PATH: &str = "/.well-known/jwks.json";

#[derive(Clone, Default)]
struct Shared {
    document: Arc<Mutex<Option<Value>>>,
    fetches: Arc<AtomicUsize>,
}

pub struct JwksServer {
    /// `https://127.0.0.1:PORT/.well-known/jwks.json`
    pub url: String,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl JwksServer {
    /// Serves `document` (`None`: answers 503 until one is published).
    pub async fn start(cert: &ServerCert, document: Option<Value>) -> anyhow::Result<Self> {
        let shared = Shared::default();
        *shared.document.lock().expect("lock") = document;
        let app = Router::new()
            .route(PATH, get(serve_document))
            .with_state(shared.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("https://{}{PATH}", listener.local_addr()?);
        let task = tokio::spawn(crate::tls::serve(listener, cert.rustls_config()?, app));
        Ok(Self { url, shared, task })
    }

    pub fn publish(&self, document: Value) {
        *self.shared.document.lock().expect("lock") = Some(document);
    }

    /// How many times the document was asked for.
    pub fn fetches(&self) -> usize {
        self.shared.fetches.load(Ordering::SeqCst)
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_document(State(shared): State<Shared>) -> Response {
    shared.fetches.fetch_add(1, Ordering::SeqCst);
    match shared.document.lock().expect("lock").clone() {
        Some(document) => axum::Json(document).into_response(),
        None => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}
