//! The outbox of one request: the messages its handler sends before its answer (progress, log
//! messages, a 2025 question on the stream), queued for the transport that streams them.
//!
//! One allocation per request that may send anything (a tool call, a prompt, a resource read),
//! where a channel took three. Both sides run on the request's own task in the common case, so
//! the lock is never contended there; a handler may still hand its context to another task.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};

#[derive(Default)]
struct State {
    queue: VecDeque<String>,
    /// The transport's task, when it waits for a message.
    waker: Option<Waker>,
    /// The transport is gone (the response is done or the client left): sends fail.
    closed: bool,
    /// The last progress value sent: values that do not increase are dropped.
    last_progress: Option<f64>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// The handler's side: cheap to clone (a reference count).
#[derive(Clone)]
pub struct Outbox(Arc<Mutex<State>>);

/// The transport's side.
pub struct Inbox(Arc<Mutex<State>>);

/// The transport no longer reads this request's messages.
#[derive(Debug, PartialEq, Eq)]
pub struct Closed;

/// A new outbox and the inbox that reads it.
pub fn outbox() -> (Outbox, Inbox) {
    let state = Arc::new(Mutex::new(State::default()));
    (Outbox(state.clone()), Inbox(state))
}

impl Outbox {
    /// Queues `message` (a JSON-RPC message's text) for the stream.
    pub fn send(&self, message: String) -> Result<(), Closed> {
        let waker = {
            let mut state = lock(&self.0);
            if state.closed {
                return Err(Closed);
            }
            state.queue.push_back(message);
            state.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// Records `progress` if it is finite and above every value recorded before; says whether
    /// it was (and so may be sent).
    pub fn advance_progress(&self, progress: f64) -> bool {
        let mut state = lock(&self.0);
        if !progress.is_finite() || state.last_progress.is_some_and(|l| progress <= l) {
            return false;
        }
        state.last_progress = Some(progress);
        true
    }
}

impl Inbox {
    /// The oldest queued message, if any.
    pub fn try_recv(&mut self) -> Option<String> {
        lock(&self.0).queue.pop_front()
    }

    /// The next message, waiting for one. Cancel-safe: a message is taken only when returned.
    /// Never ends by itself (the transport stops reading when the handler is done).
    pub async fn recv(&mut self) -> String {
        poll_fn(|cx| {
            let mut state = lock(&self.0);
            match state.queue.pop_front() {
                Some(message) => Poll::Ready(message),
                None => {
                    if !state
                        .waker
                        .as_ref()
                        .is_some_and(|w| w.will_wake(cx.waker()))
                    {
                        state.waker = Some(cx.waker().clone());
                    }
                    Poll::Pending
                }
            }
        })
        .await
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        let mut state = lock(&self.0);
        state.closed = true;
        state.queue.clear();
        state.waker = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn messages_arrive_in_order_and_wake_the_reader() {
        let (tx, mut rx) = outbox();
        assert_eq!(rx.try_recv(), None);
        let sender = tx.clone();
        let task = tokio::spawn(async move {
            tokio::task::yield_now().await;
            sender.send("a".into()).unwrap();
            sender.send("b".into()).unwrap();
        });
        assert_eq!(rx.recv().await, "a");
        task.await.unwrap();
        assert_eq!(rx.try_recv().as_deref(), Some("b"));
        assert_eq!(rx.try_recv(), None);
        drop(rx);
        assert_eq!(tx.send("c".into()), Err(Closed));
    }

    #[test]
    fn progress_only_increases() {
        let (tx, _rx) = outbox();
        assert!(tx.advance_progress(1.0));
        assert!(!tx.advance_progress(1.0));
        assert!(!tx.advance_progress(0.5));
        assert!(!tx.advance_progress(f64::NAN));
        assert!(!tx.advance_progress(f64::INFINITY));
        assert!(tx.clone().advance_progress(2.0));
        assert!(!tx.advance_progress(1.5));
    }
}
