//! A TCP forwarder a test can sever and restore: every connection through it
//! drops at once and new ones are refused, as if the server behind it had
//! gone away, without touching the server other tests share.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub struct Severable {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    accept: JoinHandle<()>,
}

struct State {
    open: bool,
    connections: Vec<JoinHandle<()>>,
    /// Connections refused while severed: clients trying to reconnect.
    refused: usize,
}

impl Severable {
    /// Forwards a fresh port on 127.0.0.1 to `target`.
    pub async fn to(target: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State {
            open: true,
            connections: Vec::new(),
            refused: 0,
        }));
        let accept = tokio::spawn({
            let state = state.clone();
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    {
                        let mut state = state.lock().expect("state lock");
                        if !state.open {
                            state.refused += 1;
                            continue; // dropped: refused
                        }
                    }
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        continue;
                    };
                    let forward = tokio::spawn(async move {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    });
                    state.lock().expect("state lock").connections.push(forward);
                }
            }
        });
        Ok(Self {
            addr,
            state,
            accept,
        })
    }

    /// Drops every connection and refuses new ones.
    pub fn sever(&self) {
        let mut state = self.state.lock().expect("state lock");
        state.open = false;
        for connection in state.connections.drain(..) {
            connection.abort();
        }
    }

    /// How many connections were refused while severed so far.
    pub fn refused(&self) -> usize {
        self.state.lock().expect("state lock").refused
    }

    pub fn restore(&self) {
        self.state.lock().expect("state lock").open = true;
    }
}

impl Drop for Severable {
    fn drop(&mut self) {
        self.sever();
        self.accept.abort();
    }
}
