//! Server-sent event streams: the wait of one dispatched request and its response stream
//! (notifications, then the result last; or the answer alone, as JSON or as a stream, when
//! nothing was streamed before it) and the long-lived `subscriptions/listen` stream of the
//! 2026-07-28 revision.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::HttpResponse;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue};
use actix_web::web::Bytes;
use futures_util::future::{AbortHandle, Abortable, Aborted};
use tokio::sync::{broadcast, watch};

use super::{
    Cap, Framing, Limits, RESULT_RESERVE, outcome_event, outcome_response, transport_error,
};
use crate::auth::{Caller, Lapse};
use crate::changes::Change;
use crate::failure::{Kind, Status};
use crate::jsonrpc::{Id, Response};
use crate::mcp::listen::{self, Filter};
use crate::mcp::model::{Params, Parsed, Request};
use crate::mcp::{Call, Era, InFlightGuard, ListenerGuard, McpError, Outcome, Server};
use crate::metrics::{GaugeGuard, METRICS};
use crate::outbox::Inbox;
use crate::refusal::Refusal;

/// The events of one SSE response, framed, with the bytes they take counted: a notification
/// that would take the stream past `mcp.max_response_bytes` is dropped, and a result that would
/// is replaced by an error, so no stream exceeds the limit.
pub(super) struct Events {
    pub(super) queue: VecDeque<Bytes>,
    used: usize,
    cap: Cap,
}

impl Events {
    pub(super) fn new(cap: Cap) -> Events {
        Events {
            queue: VecDeque::new(),
            used: 0,
            cap,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    fn push(&mut self, event: Bytes) {
        self.used += event.len();
        self.queue.push_back(event);
    }

    /// A comment line (ignored by clients): the stream's first bytes when a call outlives
    /// `mcp.stream_after_ms`, and its keep-alives.
    fn comment(&mut self, line: &'static [u8]) {
        self.push(Bytes::from_static(line));
    }

    pub(super) fn notification(&mut self, json: String) {
        let event = sse_event(json.as_bytes());
        // Room is kept for the result's error, whatever happens to the notifications.
        if self.used + event.len() + RESULT_RESERVE <= self.cap.limit {
            self.push(event);
        } else {
            log::debug!("a notification was dropped: the stream is at mcp.max_response_bytes");
        }
    }

    pub(super) fn result(&mut self, outcome: Outcome, id: &Id) {
        const FRAMING: usize = "event: message\ndata: \n\n".len();
        let text = outcome_event(outcome, id, self.used + FRAMING, &self.cap);
        self.push(sse_event(&text));
    }
}

/// How often a stream asks whether the key that verified its caller's token is still in the
/// issuer's key set.
const KEY_CHECK: Duration = Duration::from_secs(1);

/// When an event stream must end, as a new request would be refused: at its caller's token
/// expiry (`exp` plus the leeway), when the key that verified the token leaves the key set, and
/// in any case after `mcp.max_stream_secs`.
pub(super) struct Lifetime {
    pub(super) caller: Caller,
    deadline: tokio::time::Instant,
    /// What the deadline is: the token's expiry, or `mcp.max_stream_secs`.
    at_deadline: &'static str,
    /// Only for a caller whose token a key verified.
    check: Option<tokio::time::Interval>,
}

impl Lifetime {
    pub(super) fn new(caller: Caller, max: Duration) -> Lifetime {
        let to_expiry = caller.expires_at().map(|at| {
            (UNIX_EPOCH + Duration::from_secs(at))
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO)
        });
        let (life, at_deadline) = match to_expiry {
            Some(d) if d <= max => (d, lapse_reason(Lapse::Expired)),
            _ => (max, "it reached mcp.max_stream_secs; open a new one"),
        };
        let check = matches!(&caller, Caller::Authenticated(id) if id.validity().key.is_some())
            .then(|| {
                let mut i =
                    tokio::time::interval_at(tokio::time::Instant::now() + KEY_CHECK, KEY_CHECK);
                i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                i
            });
        Lifetime {
            caller,
            deadline: tokio::time::Instant::now() + life,
            at_deadline,
            check,
        }
    }

    /// Resolves when the stream must end, with the reason the client reads. Cancel-safe.
    pub(super) async fn over(&mut self) -> &'static str {
        loop {
            let tick = async {
                match &mut self.check {
                    Some(i) => {
                        i.tick().await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tokio::time::sleep_until(self.deadline) => return self.at_deadline,
                _ = tick => {
                    if let Some(lapse) = self.caller.lapsed(unix_now()) {
                        return lapse_reason(lapse);
                    }
                }
            }
        }
    }
}

fn lapse_reason(lapse: Lapse) -> &'static str {
    match lapse {
        Lapse::Expired => "the access token expired; retry with a fresh token",
        Lapse::KeyWithdrawn => {
            "the key that signed the access token was withdrawn by its issuer; retry with a fresh token"
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub(super) struct StreamState {
    pub(super) _open: GaugeGuard,
    pub(super) events: Events,
    pub(super) running: Option<Running>,
    pub(super) rx: Inbox,
    pub(super) id: Id,
    pub(super) guard: Option<InFlightGuard>,
    pub(super) lifetime: Lifetime,
    /// A comment every `KEEPALIVE` while the handler runs, so routers keep the stream open.
    pub(super) keepalive: tokio::time::Interval,
}

/// Yields queued notifications, then the result last; ends after the result (or silently if the
/// request was cancelled).
pub(super) async fn next_event(
    mut st: StreamState,
) -> Option<(Result<Bytes, actix_web::Error>, StreamState)> {
    loop {
        if let Some(e) = st.events.queue.pop_front() {
            return Some((Ok(e), st));
        }
        let running = st.running.as_mut()?;
        tokio::select! {
            biased;
            done = running => {
                st.running = None;
                st.guard = None;
                while let Some(n) = st.rx.try_recv() {
                    st.events.notification(n);
                }
                match done {
                    Ok(outcome) => st.events.result(outcome, &st.id),
                    Err(Aborted) => st.events.queue.clear(),
                }
            }
            n = st.rx.recv() => st.events.notification(n),
            _ = st.keepalive.tick() => st.events.comment(KEEPALIVE_COMMENT),
            why = st.lifetime.over() => {
                // The handler is stopped (its future dropped) and the stream ends with an
                // error as its result.
                log::debug!("a request's event stream ended: {why}");
                st.running = None;
                st.guard = None;
                while let Some(n) = st.rx.try_recv() {
                    st.events.notification(n);
                }
                let error = Response::error(Some(st.id.clone()), McpError::StreamEnded(why).to_error());
                st.events.result(Outcome::Response(error), &st.id);
            }
        }
    }
}

fn sse_event(json: &[u8]) -> Bytes {
    const HEAD: &[u8] = b"event: message\ndata: ";
    let mut event = Vec::with_capacity(HEAD.len() + json.len() + 2);
    event.extend_from_slice(HEAD);
    event.extend_from_slice(json);
    event.extend_from_slice(b"\n\n");
    Bytes::from(event)
}

pub(super) type EventStream =
    Pin<Box<dyn futures_util::Stream<Item = Result<Bytes, actix_web::Error>>>>;

pub(super) fn sse_response(events: EventStream) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, HeaderValue::from_static("text/event-stream")))
        .insert_header((CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .insert_header((
            HeaderName::from_static("x-accel-buffering"),
            HeaderValue::from_static("no"),
        ))
        .streaming(events)
}

/// How often an idle stream (a listen stream, or a call's while its handler runs) sends a
/// comment line, so proxies and platform routers (which close connections idle for about a
/// minute; Heroku's after 55 s) keep it open.
const KEEPALIVE: Duration = Duration::from_secs(20);
const KEEPALIVE_COMMENT: &[u8] = b": keepalive\n\n";
/// The first bytes of a call's stream opened because the call outlived `mcp.stream_after_ms`.
const STILL_RUNNING_COMMENT: &[u8] = b": the call is still running; its result follows\n\n";

struct ListenState {
    _open: GaugeGuard,
    _slot: ListenerGuard,
    server: Arc<Server>,
    id: Id,
    filter: Filter,
    changes: broadcast::Receiver<Change>,
    closing: watch::Receiver<bool>,
    keepalive: tokio::time::Interval,
    lifetime: Lifetime,
    queue: VecDeque<Bytes>,
    used: usize,
    done: bool,
    /// Tasks the stream follows (`taskIds`), once its acknowledgement is sent.
    tasks: Option<TaskFollow>,
}

/// What a listen stream that follows tasks keeps: the task changes it hears of, and a digest
/// of the status it last sent for each task (so an unchanged task is not sent again).
struct TaskFollow {
    events: broadcast::Receiver<String>,
    caller: Caller,
    sent: std::collections::HashMap<String, u64>,
    /// The acknowledgement waits until every task asked for is checked to be the caller's.
    acknowledged: bool,
}

impl ListenState {
    fn push(&mut self, json: &str) {
        let event = sse_event(json.as_bytes());
        // A stream that would pass mcp.max_response_bytes ends with its result instead; the
        // client opens a new one.
        if self.used + event.len() + RESULT_RESERVE > self.server.settings.max_response_bytes {
            self.finish();
            return;
        }
        self.used += event.len();
        self.queue.push_back(event);
    }

    /// Queues the listen request's result: the stream ends gracefully after it.
    fn finish(&mut self) {
        if !self.done {
            self.done = true;
            self.queue
                .push_back(sse_event(listen::closed(&self.server, &self.id).as_bytes()));
        }
    }

    /// Checks the tasks asked for (the caller's only; others are left out of the
    /// acknowledgement, as unknown ids are), acknowledges, and sends each task's status.
    async fn acknowledge_tasks(&mut self) {
        let Some(follow) = &self.tasks else { return };
        let mut agreed = Vec::new();
        for id in &self.filter.tasks {
            if crate::mcp::tasks::visible(&self.server, id, &follow.caller)
                .await
                .is_ok()
            {
                agreed.push(id.clone());
            }
        }
        self.filter.tasks = agreed;
        let ack = listen::acknowledged(&self.id, &self.filter);
        self.push(&ack);
        if let Some(follow) = &mut self.tasks {
            follow.acknowledged = true;
        }
        for id in self.filter.tasks.clone() {
            self.task_changed(&id).await;
        }
    }

    /// Sends the status of task `id` if the stream follows it and it changed since last sent.
    async fn task_changed(&mut self, id: &str) {
        if !self.filter.tasks.iter().any(|t| t == id) {
            return;
        }
        let Some(follow) = &self.tasks else { return };
        let poll = self.server.settings.task_poll_interval_ms;
        let text = match crate::mcp::tasks::visible(&self.server, id, &follow.caller).await {
            Ok(stored) => {
                let view = crate::mcp::tasks::view(&stored.record, &stored.answers, poll);
                listen::task_status(&self.id, &view)
            }
            // Expired (or no longer reachable): nothing more to say about it.
            Err(_) => return,
        };
        let digest = {
            use std::hash::Hasher;
            let mut h = crate::hashing::Fold::default();
            h.write(text.as_bytes());
            h.finish()
        };
        let Some(follow) = &mut self.tasks else {
            return;
        };
        if follow.sent.insert(id.to_string(), digest) != Some(digest) {
            self.push(&text);
        }
    }

    fn announce(&mut self, change: &Change) {
        if self.filter.wants(change) {
            let text = listen::announcement(&self.id, change);
            self.push(&text);
        }
    }
}

/// The `subscriptions/listen` stream: the acknowledgement first, then every announcement the
/// filter agreed to, tagged with the subscription id; it ends with the request's result when the
/// server shuts down, the stream reaches `mcp.max_response_bytes`, or its `Lifetime` is over
/// (the token expired, its key was withdrawn, `mcp.max_stream_secs`), and silently when the
/// client goes away.
pub(super) fn listen(
    server: Arc<Server>,
    id: Id,
    filter: Filter,
    slot: ListenerGuard,
    caller: Caller,
) -> HttpResponse {
    let changes = server.changes.subscribe();
    let closing = server.changes.closing();
    let mut st = ListenState {
        _open: GaugeGuard::new(&METRICS.open_streams),
        _slot: slot,
        changes,
        closing,
        keepalive: tokio::time::interval_at(tokio::time::Instant::now() + KEEPALIVE, KEEPALIVE),
        lifetime: Lifetime::new(caller, server.settings.max_stream),
        queue: VecDeque::new(),
        used: 0,
        done: false,
        tasks: None,
        id,
        filter,
        server,
    };
    if st.filter.tasks.is_empty() {
        let ack = listen::acknowledged(&st.id, &st.filter);
        st.push(&ack);
    } else {
        // Subscribed before the tasks are checked, so no change falls in between.
        st.tasks = Some(TaskFollow {
            events: st.server.tasks.subscribe(),
            caller: st.lifetime.caller.clone(),
            sent: Default::default(),
            acknowledged: false,
        });
    }
    sse_response(Box::pin(futures_util::stream::unfold(
        st,
        next_listen_event,
    )))
}

async fn next_listen_event(
    mut st: ListenState,
) -> Option<(Result<Bytes, actix_web::Error>, ListenState)> {
    loop {
        if st.tasks.as_ref().is_some_and(|f| !f.acknowledged) {
            st.acknowledge_tasks().await;
        }
        if let Some(e) = st.queue.pop_front() {
            return Some((Ok(e), st));
        }
        if st.done {
            return None;
        }
        enum Next {
            Close,
            Change(Result<Change, broadcast::error::RecvError>),
            Task(Result<String, broadcast::error::RecvError>),
            Tick,
            Over(&'static str),
        }
        let task = async {
            match &mut st.tasks {
                Some(follow) => follow.events.recv().await,
                None => std::future::pending().await,
            }
        };
        let next = tokio::select! {
            biased;
            _ = st.closing.wait_for(|closing| *closing) => Next::Close,
            why = st.lifetime.over() => Next::Over(why),
            change = st.changes.recv() => Next::Change(change),
            id = task => Next::Task(id),
            _ = st.keepalive.tick() => Next::Tick,
        };
        match next {
            Next::Close | Next::Change(Err(broadcast::error::RecvError::Closed)) => st.finish(),
            Next::Over(why) => {
                log::debug!("a subscriptions/listen stream ended: {why}");
                st.finish();
            }
            Next::Change(Ok(c)) => st.announce(&c),
            // Fell behind: say that everything it follows changed, so nothing is lost.
            Next::Change(Err(broadcast::error::RecvError::Lagged(_))) => {
                for c in st.filter.everything() {
                    st.announce(&c);
                }
            }
            Next::Task(Ok(id)) => st.task_changed(&id).await,
            Next::Task(Err(broadcast::error::RecvError::Lagged(_))) => {
                for id in st.filter.tasks.clone() {
                    st.task_changed(&id).await;
                }
            }
            // The hub lives as long as the server: never closed while a stream is open.
            Next::Task(Err(broadcast::error::RecvError::Closed)) => st.tasks = None,
            Next::Tick => st.queue.push_back(Bytes::from_static(KEEPALIVE_COMMENT)),
        }
    }
}

/// The response to a request whose handler is done before any notification was streamed:
/// its queued notifications (if any) and its result, as JSON or as an event stream.
pub(super) fn finished(
    done: Result<Outcome, Aborted>,
    rx: Option<&mut Inbox>,
    cap: &Cap,
    framing: Framing,
    id: &Id,
) -> HttpResponse {
    let mut queued = Events::new(cap.clone());
    if let Some(rx) = rx {
        while let Some(n) = rx.try_recv() {
            queued.notification(n);
        }
    }
    match done {
        Err(Aborted) => sse_response(Box::pin(futures_util::stream::empty())),
        // HTTP-level refusals (403, 429) keep their status whatever the framing.
        Ok(outcome)
            if queued.is_empty()
                && (framing != Framing::SseOnly || !matches!(outcome, Outcome::Response(_))) =>
        {
            outcome_response(outcome, id, cap)
        }
        Ok(outcome) => {
            queued.result(outcome, id);
            let events = futures_util::stream::iter(queued.queue.into_iter().map(Ok));
            sse_response(Box::pin(events))
        }
    }
}

/// `subscriptions/listen` (2026-07-28): a stream of announcements, not one answer.
pub(super) fn subscribe(
    request: Request,
    server: Arc<Server>,
    limits: &Limits,
    call: &Call,
    framing: Framing,
) -> HttpResponse {
    let id = request.id;
    let cap = Cap::plain(&server, limits);
    if framing == Framing::JsonOnly {
        return transport_error(
            Kind::NotAcceptable,
            "Not Acceptable: subscriptions/listen answers with a stream; Accept must admit text/event-stream",
        );
    }
    let params = match request.params {
        Parsed::Typed(p) => match *p {
            Params::Listen(p) => Ok(p),
            _ => Err(McpError::Internal),
        },
        Parsed::Untyped { error: Some(e), .. } => Err(e),
        _ => Err(McpError::Internal),
    };
    let filter = match params.and_then(|p| listen::agree(&server, &p, call)) {
        Ok(f) => f,
        Err(e) => {
            return outcome_response(server.refusal(Era::Modern, Some(id.clone()), e), &id, &cap);
        }
    };
    let Some(slot) = server.open_listener(&call.caller) else {
        METRICS
            .rate_limited
            .with_label_values(&["listen_streams"])
            .inc();
        return Refusal::rpc(
            Status::TooManyRequests,
            Some(id),
            &McpError::TooManyListenStreams(server.settings.max_listen_streams),
        )
        .with_retry_after(LISTEN_RETRY_SECS)
        .into_response();
    };
    listen(server, id, filter, slot, call.caller.clone())
}

/// `Retry-After` of a refused listen stream: streams end only when clients close them.
const LISTEN_RETRY_SECS: u64 = 5;

/// A request's dispatch still running after its first poll: boxed once, made abortable then.
pub(super) type Running = Abortable<Pin<Box<dyn std::future::Future<Output = Outcome>>>>;

/// The wait for a dispatched request, from its first poll.
pub(super) async fn dispatched(
    mut first: Pin<Box<dyn std::future::Future<Output = Outcome>>>,
    server: Arc<Server>,
    caller: Caller,
    id: Id,
    cap: Cap,
    mut rx: Option<Inbox>,
    framing: Framing,
) -> HttpResponse {
    // A request that is done on its first poll can never be cancelled: only one still running
    // after it is made abortable and registered for `notifications/cancelled` (an abort
    // handle, a lock, a hash and a clone of the id; `caller`, cloned by `one_request`, is moved
    // into the entry). The boxed future moves into the `Abortable` as it is (a `Pin<Box<_>>`).
    if let Poll::Ready(outcome) =
        std::future::poll_fn(|cx| Poll::Ready(first.as_mut().poll(cx))).await
    {
        return finished(Ok(outcome), rx.as_mut(), &cap, framing, &id);
    }
    let (abort, registration) = AbortHandle::new_pair();
    // Only a request that may stream needs its caller again, to end the stream in time.
    let watched = rx.as_ref().map(|_| caller.clone());
    let guard = server.track(caller, &id, abort);
    let mut running: Running = Abortable::new(first, registration);
    let (Some(mut rx), Some(watched)) = (rx, watched) else {
        // Nothing can be streamed: the answer alone.
        let done = running.await;
        drop(guard);
        return finished(done, None, &cap, framing, &id);
    };
    // The response becomes a stream at its first notification, or when the call outlives
    // `mcp.stream_after_ms`: its head and a comment go out then, so a router that wants a first
    // byte within 30 s keeps the call.
    let first = tokio::select! {
        biased;
        done = &mut running => {
            drop(guard);
            return finished(done, Some(&mut rx), &cap, framing, &id);
        }
        n = rx.recv() => Some(n),
        _ = tokio::time::sleep(server.settings.stream_point()) => None,
    };
    let mut events = Events::new(cap);
    match first {
        Some(n) => events.notification(n),
        None => events.comment(STILL_RUNNING_COMMENT),
    }
    let state = StreamState {
        keepalive: tokio::time::interval_at(tokio::time::Instant::now() + KEEPALIVE, KEEPALIVE),
        _open: GaugeGuard::new(&METRICS.open_streams),
        events,
        running: Some(running),
        rx,
        id,
        guard: Some(guard),
        lifetime: Lifetime::new(watched, server.settings.max_stream),
    };
    sse_response(Box::pin(futures_util::stream::unfold(state, next_event)))
}
