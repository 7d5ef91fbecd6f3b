//! A TCP relay to PostgreSQL that a test can cut (every relayed connection closed, new
//! ones refused) and restore on the same local port: the store going away and coming back.
//! Shared by `faults.rs` here and the fleet tests of the `ficus` crate.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// A TCP relay to PostgreSQL on a fixed local port that can be cut (closing every relayed
/// connection and the listener) and restored.
pub struct Relay {
    pub addr: SocketAddr,
    target: SocketAddr,
    tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Relay {
    pub async fn start(target: SocketAddr) -> Relay {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let r = Relay {
            addr: l.local_addr().unwrap(),
            target,
            tasks: Arc::default(),
        };
        r.serve(l);
        r
    }

    fn serve(&self, l: tokio::net::TcpListener) {
        let (target, tasks) = (self.target, self.tasks.clone());
        let inner = tasks.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut a, _)) = l.accept().await else {
                    continue;
                };
                let conn = tokio::spawn(async move {
                    if let Ok(mut b) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
                    }
                });
                inner.lock().unwrap().push(conn);
            }
        });
        tasks.lock().unwrap().push(accept);
    }

    pub fn cut(&self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    pub async fn restore(&self) {
        let l = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        self.serve(l);
    }
}
