//! A small TCP balancer for tests: round-robin over backends, skipping one
//! that refuses the connection (as haproxy does with a failed server). Two
//! ingesters behind it: one killed, new connections go to the other.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

/// How long a backend may take to accept before the next is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

pub struct Balancer {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Balancer {
    pub async fn start(backends: Vec<SocketAddr>) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let backends = Arc::new(backends);
        let next = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let (backends, next) = (backends.clone(), next.clone());
                tokio::spawn(async move {
                    let start = next.fetch_add(1, Ordering::Relaxed);
                    for offset in 0..backends.len() {
                        let backend = backends[(start + offset) % backends.len()];
                        let connected =
                            tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(backend))
                                .await;
                        if let Ok(Ok(mut server)) = connected {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                            return;
                        }
                    }
                    // No backend: the client's connection closes unanswered.
                });
            }
        });
        Ok(Self { addr, task })
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
