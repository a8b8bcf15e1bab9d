//! Request bodies: the body shared by the handler and the edge (`SharedBody`), what happens to
//! a connection whose body was left unread by an early refusal (the rest is read and discarded
//! when it is small and arrives promptly, so refused clients keep their connection; otherwise
//! the connection is closed, so a client cannot park a socket by sending half a body), and the
//! timeout both body reads share (`within_after_a_turn`).

use std::cell::{Cell, RefCell};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::HttpMessage;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::ConnectionType;
use actix_web::http::header::{CONTENT_LENGTH, HeaderMap, TRANSFER_ENCODING};
use actix_web::web::Bytes;
use futures_util::Stream;

use crate::conn::Connection;

/// At most this much of a refused request's body is read to keep its connection.
pub const DRAIN_MAX_BYTES: usize = 64 * 1024;
/// And only what arrives within this long after the refusal.
pub const DRAIN_DEADLINE: Duration = Duration::from_millis(100);

/// Does the request announce a body (chunked, or a non-zero `Content-Length`)?
pub fn announces_body(headers: &HeaderMap) -> bool {
    if headers.contains_key(TRANSFER_ENCODING) {
        return true;
    }
    headers
        .get(CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes().trim_ascii() != b"0")
}

/// A request body shared by the handler (which reads it as the request's payload) and the edge
/// (which, after the handler or a middleware refused the request without reading it, reads what
/// is left so that the connection can serve the client's next request).
#[derive(Clone)]
pub struct SharedBody(Rc<SharedInner>);

struct SharedInner {
    payload: RefCell<Payload>,
    finished: Cell<bool>,
}

impl SharedBody {
    /// Puts the request's payload behind a shared handle, returned to the caller.
    pub fn install(req: &mut ServiceRequest) -> SharedBody {
        let shared = SharedBody(Rc::new(SharedInner {
            payload: RefCell::new(req.take_payload()),
            finished: Cell::new(false),
        }));
        req.set_payload(Payload::Stream {
            payload: Box::pin(shared.clone()),
        });
        shared
    }

    /// Reads and discards the rest of the body: at most `DRAIN_MAX_BYTES`, for at most
    /// `DRAIN_DEADLINE`. True when the body ended within both.
    async fn drain(&self) -> bool {
        let mut seen = 0usize;
        let read_all = async {
            while let Some(chunk) = futures_util::StreamExt::next(&mut self.clone()).await {
                match chunk {
                    Ok(bytes) => {
                        seen += bytes.len();
                        if seen > DRAIN_MAX_BYTES {
                            return false;
                        }
                    }
                    Err(_) => return false,
                }
            }
            true
        };
        within_after_a_turn(DRAIN_DEADLINE, read_all)
            .await
            .unwrap_or(false)
    }
}

impl Stream for SharedBody {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.0.finished.get() {
            return Poll::Ready(None);
        }
        // One reader at a time: the handler while the request runs, the edge after it.
        let Ok(mut payload) = self.0.payload.try_borrow_mut() else {
            return Poll::Ready(Some(Err(PayloadError::Incomplete(None))));
        };
        let next = Pin::new(&mut *payload).poll_next(cx);
        if let Poll::Ready(None) = next {
            self.0.finished.set(true);
        }
        next
    }
}

impl SharedBody {
    /// The body was read to its end: nothing is left to settle.
    pub fn finished(&self) -> bool {
        self.0.finished.get()
    }
}

/// After a response whose request announced a body that was not read to its end (every early
/// refusal: 401, 403, 406, 413, 415, 429, a body timeout; see [`SharedBody::finished`]):
/// reads the rest if it is small and prompt (the connection then stays open for the client's
/// next request), and otherwise closes the connection after this response. Closing shuts the
/// read side at once, so actix stops waiting for (or draining) the rest of the body; the
/// response is still written. Rare, so the request log boxes this future.
pub async fn settle_body<B>(mut res: ServiceResponse<B>, body: SharedBody) -> ServiceResponse<B> {
    if body.drain().await {
        return res;
    }
    res.response_mut()
        .head_mut()
        .set_connection_type(ConnectionType::Close);
    if let Some(conn) = res.request().conn_data::<Connection>() {
        conn.shutdown(std::net::Shutdown::Read);
    }
    res
}

/// Runs `fut` under `limit`, the timer armed only when `fut` is not done a turn of the
/// connection's task later (arming and cancelling one is two trips to the runtime's timer
/// wheel). actix polls a handler before it feeds the body that came in with the head, in the
/// same turn: a body read a turn later is usually all there and needs no timer. `None` when
/// the limit passed.
pub async fn within_after_a_turn<F: Future>(limit: Duration, fut: F) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let mut turned = false;
    let first = std::future::poll_fn(|cx| {
        if !std::mem::replace(&mut turned, true) {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Ready(fut.as_mut().poll(cx))
    })
    .await;
    match first {
        Poll::Ready(out) => Some(out),
        Poll::Pending => tokio::time::timeout(limit, fut).await.ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn work_done_within_a_turn_or_the_limit_is_returned_and_late_work_is_cut() {
        let limit = Duration::from_millis(50);
        assert_eq!(within_after_a_turn(limit, async { 7 }).await, Some(7));
        // Done on its second poll (after the turn), then after a wait inside the limit.
        let mut polls = 0;
        let second = std::future::poll_fn(|cx| {
            polls += 1;
            if polls < 3 {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Poll::Ready(polls)
        });
        assert_eq!(within_after_a_turn(limit, second).await, Some(3));
        let slow = async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            1
        };
        assert_eq!(within_after_a_turn(limit, slow).await, Some(1));
        let start = std::time::Instant::now();
        let never = std::future::pending::<()>();
        assert_eq!(within_after_a_turn(limit, never).await, None);
        assert!(start.elapsed() >= limit);
    }
}
