//! Connection-level protection: how many connections one peer address may hold, and the
//! socket handle kept in actix's per-connection data (so a connection can be shut).

use std::any::Any;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use actix_web::dev::Extensions;

/// Counts open connections per peer address. Shared by every worker.
pub struct ConnectionLimiter {
    per_peer: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One accepted connection, stored in actix's per-connection data. Dropping it (when the
/// connection ends) gives the peer's slot back.
pub struct Connection {
    #[cfg(unix)]
    fd: std::os::fd::RawFd,
    slot: Option<(Arc<ConnectionLimiter>, IpAddr)>,
}

impl ConnectionLimiter {
    /// `per_peer == 0` turns counting off (behind a proxy every connection comes from it).
    pub fn new(per_peer: usize) -> Arc<ConnectionLimiter> {
        Arc::new(ConnectionLimiter {
            per_peer,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// The `HttpServer::on_connect` hook: records the connection, and shuts a peer's connection
    /// down at once when that peer already holds its share.
    pub fn on_connect(self: &Arc<Self>, io: &dyn Any, data: &mut Extensions) {
        let Some(stream) = io.downcast_ref::<actix_web::rt::net::TcpStream>() else {
            return;
        };
        let mut conn = Connection {
            #[cfg(unix)]
            fd: std::os::fd::AsRawFd::as_raw_fd(stream),
            slot: None,
        };
        if self.per_peer > 0
            && let Ok(peer) = stream.peer_addr()
        {
            let ip = crate::edge::bucket(peer.ip());
            let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            let n = open.entry(ip).or_insert(0);
            if *n >= self.per_peer {
                drop(open);
                // Debug, not warn: an attacker must not be able to flood the logs.
                log::debug!(
                    "connection refused: peer already holds {} connections (server.max_connections_per_ip)",
                    self.per_peer
                );
                conn.shutdown(std::net::Shutdown::Both);
                data.insert(conn);
                return;
            }
            *n += 1;
            conn.slot = Some((self.clone(), ip));
        }
        data.insert(conn);
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some((limiter, ip)) = self.slot.take() {
            let mut open = limiter.open.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = open.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    open.remove(&ip);
                }
            }
        }
    }
}

impl Connection {
    #[cfg(unix)]
    pub(crate) fn shutdown(&self, how: std::net::Shutdown) {
        use std::os::fd::FromRawFd;
        // SAFETY: `fd` is the socket of the connection this value belongs to; actix keeps the
        // connection (and so the descriptor) open for as long as its per-connection data, which
        // owns this value, is alive. `ManuallyDrop` keeps the descriptor from being closed here.
        let stream =
            std::mem::ManuallyDrop::new(unsafe { std::net::TcpStream::from_raw_fd(self.fd) });
        let _ = stream.shutdown(how);
    }

    #[cfg(not(unix))]
    pub(crate) fn shutdown(&self, _how: std::net::Shutdown) {}
}
