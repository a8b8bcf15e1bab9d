//! Connection-level protection: how many connections one peer address may hold, and closing a
//! connection whose request body was left unread after an early refusal (so a client cannot
//! park a socket by sending half a body and then nothing).

use std::any::Any;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use actix_web::dev::{Extensions, ServiceResponse};
use actix_web::http::ConnectionType;
use actix_web::http::header::{CONTENT_LENGTH, HeaderMap, TRANSFER_ENCODING};
use actix_web::{HttpMessage, HttpRequest};

/// Marks a request whose body the handler read to the end: its connection may be kept alive.
#[derive(Debug, Clone, Copy)]
pub struct BodyRead;

/// Does the request announce a body (chunked, or a non-zero `Content-Length`)?
pub fn announces_body(headers: &HeaderMap) -> bool {
    if headers.contains_key(TRANSFER_ENCODING) {
        return true;
    }
    headers
        .get(CONTENT_LENGTH)
        .is_some_and(|v| v.to_str().map_or(true, |s| s.trim() != "0"))
}

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
    fn shutdown(&self, how: std::net::Shutdown) {
        use std::os::fd::FromRawFd;
        // SAFETY: `fd` is the socket of the connection this value belongs to; actix keeps the
        // connection (and so the descriptor) open for as long as its per-connection data, which
        // owns this value, is alive. `ManuallyDrop` keeps the descriptor from being closed here.
        let stream =
            std::mem::ManuallyDrop::new(unsafe { std::net::TcpStream::from_raw_fd(self.fd) });
        let _ = stream.shutdown(how);
    }

    #[cfg(not(unix))]
    fn shutdown(&self, _how: std::net::Shutdown) {}
}

/// Closes the connection after this response when the request announced a body that was not
/// read to the end (every early refusal: 401, 403, 406, 413, 415, 429, a body timeout). The read
/// side is shut at once, so actix stops waiting for (or draining) the rest of the body; the
/// response is still written, then the connection ends.
pub fn close_if_body_unread<B>(res: &mut ServiceResponse<B>, announced_body: bool) {
    if !announced_body || body_was_read(res.request()) {
        return;
    }
    res.response_mut()
        .head_mut()
        .set_connection_type(ConnectionType::Close);
    if let Some(conn) = res.request().conn_data::<Connection>() {
        conn.shutdown(std::net::Shutdown::Read);
    }
}

fn body_was_read(req: &HttpRequest) -> bool {
    req.extensions().get::<BodyRead>().is_some()
}
