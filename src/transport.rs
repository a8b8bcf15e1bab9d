//! Stateless Streamable HTTP: the `POST /mcp` handler. Checks `Accept`, `Content-Type`,
//! `MCP-Protocol-Version`, body size and JSON shape, hands requests to the dispatcher, and frames
//! the answer as `application/json`, or as `text/event-stream` when notifications come first.
//! This is the one place that maps outcomes to HTTP statuses. Both protocol eras arrive here;
//! `mcp::modern::classify` decides each message's era, and 2026-07-28 requests have their
//! envelope and standard headers (`headers`) checked before they reach the dispatcher.

mod batch;
mod head;
mod headers;
mod sse;

use std::borrow::Cow;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use actix_web::web::{self};
use actix_web::{HttpRequest, HttpResponse};
use futures_util::future::{Either, Ready, ready};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::asking::Delivery;
use crate::auth::Caller;
use crate::auth::challenge::{AuthRefusal, ChallengeContext};
use crate::budget::Budgets;
use crate::edge::{Admitted, hand_over, label_request};
use crate::failure::{Kind, Status};
use crate::jsonrpc::{Id, Invalid, Message, Response, Unreadable, first_byte};
use crate::mcp::model::method_label;
use crate::mcp::model::{Method, Request};
use crate::mcp::modern::{RequestMeta, VersionHeader};
use crate::mcp::result::Reply;
use crate::mcp::{BATCH_VERSION, Call, Era, Handling, McpError, Outcome, Refused, Server};
use crate::metrics::RpcLabels;
use crate::outbox::outbox;
use crate::refusal::Refusal;
use crate::request_id::RequestId;
use batch::batch;
pub use batch::batch_items;
use batch::{charge_batch, charge_owed};
pub use head::{Framing, head_check, negotiate, too_deep};
use head::{body_refusal, read_body};
use sse::{dispatched, finished};

/// Request limits the transport enforces, and the challenge its 403 for scopes carries.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub body_timeout: Duration,
    pub max_json_depth: usize,
    pub challenge: Arc<ChallengeContext>,
}

fn transport_error(kind: Kind, message: impl Into<String>) -> HttpResponse {
    Refusal::transport(kind, message).into_response()
}

/// A JSON-RPC error of the transport (the body's shape or framing) as a whole HTTP response.
/// Always 400: the message is not one the endpoint takes.
fn invalid(id: Option<Id>, e: McpError) -> HttpResponse {
    Refusal::rpc(Status::BadRequest, id, &e).into_response()
}

/// GET, DELETE and every other method on the endpoint: no standalone stream, no sessions.
fn method_not_allowed() -> HttpResponse {
    transport_error(Kind::MethodNotAllowed, "Method not allowed.")
}

/// The MCP endpoint: `POST /mcp`, and 405 for every other method.
///
/// actix moves this handler's future into a new box on every request, so its size is a cost:
/// the batch path, the shared-store charges and the dispatch itself are awaited through boxes
/// of their own, and what is read from the body is scoped to end before the dispatch's wait,
/// which keeps this future within the allocator's small size classes (over 1 KiB, mimalloc
/// takes its generic path, and the whole future is copied into the box; see bench/README.md).
pub async fn post(
    req: HttpRequest,
    payload: web::Payload,
    server: web::Data<Server>,
    limits: web::Data<Limits>,
    budgets: web::Data<Budgets>,
) -> HttpResponse {
    // The endpoint's only route has no method guard (see `routes::app`).
    if req.method() != actix_web::http::Method::POST {
        return method_not_allowed();
    }
    let framing = match head_check(req.headers(), &limits) {
        Ok(framing) => framing,
        Err(refusal) => return (*refusal).into_response(),
    };
    // The era is decided once the body is read (the body's `_meta` may claim one), so that a
    // refusal can echo the request's id.
    let version = VersionHeader::read(
        req.headers()
            .get_all(crate::edge::MCP_PROTOCOL_VERSION)
            .map(HeaderValue::as_bytes),
    );
    let body = match read_body(payload, &limits).await {
        Ok(b) => b,
        Err(e) => return body_refusal(e, &limits),
    };
    if let Some(refusal) = screen(&body, &limits, &server, version) {
        return refusal;
    }
    // What the auth gate admitted, read once.
    let (request_id, admitted) = hand_over(&req);
    let Some(admitted) = admitted else {
        log::error!("no caller on an MCP request: the auth gate is not installed");
        return Refusal::internal(
            request_id.as_str().to_string(),
            crate::telemetry::trace_id(),
        )
        .into_response();
    };
    let server = server.into_inner();
    if first_byte(&body) == Some(b'[') {
        let to = Endpoint {
            server: &server,
            limits: &limits,
            budgets: &budgets,
        };
        return Box::pin(serve_batch(
            &req,
            &body,
            to,
            &admitted,
            &request_id,
            version,
        ))
        .await;
    }
    // What is read from the body lives in this block only, so none of it is kept in this
    // future (which actix boxes and copies per request) across the dispatch's wait.
    let (request, call) = {
        let Some(message) = read_message(&body) else {
            return not_json();
        };
        // A verified subject's request budget, left owed by the auth gate.
        let mut tool_budget_charged = false;
        if admitted.owed {
            let owed = charge_owed(&budgets, &admitted, &server, &limits, tool_call(&message));
            match Box::pin(owed).await {
                Ok(charged) => tool_budget_charged = charged,
                Err(refusal) => return refusal,
            }
        }
        let caller = admitted.caller;
        match message {
            Err(bad) => return invalid(bad.id.clone(), bad.into()),
            Ok(Read::Notification(method, params)) => {
                return notified(&req, &server, &caller, version, &method, params);
            }
            Ok(Read::Response(id, outcome)) => {
                let era = match version.classify(None) {
                    Ok(era) => era,
                    Err(e) => return refused(None, e),
                };
                label(&req, era, "response");
                return answer(&req, &server, &caller, era, &id, outcome);
            }
            Ok(Read::Request(request)) => {
                let call = Call::new(caller, request_id, tool_budget_charged);
                match prepare(&req, request, call, version, &server, &limits, framing) {
                    Prepared::Dispatch(request, call) => (request, call),
                    Prepared::Delivery(response) => return response,
                }
            }
        }
    };
    one_request(request, server, &limits, call, framing).await
}

/// The id of a tool call, whose owed charge pays its tool-call budget too.
fn tool_call<'a>(message: &'a Result<Read<'_>, Invalid>) -> Option<&'a Id> {
    match message {
        Ok(Read::Request(r)) if r.method == "tools/call" => Some(&r.id),
        _ => None,
    }
}

/// The request counter's era and method labels for an MCP message.
fn label(req: &HttpRequest, era: Era, method: &'static str) {
    label_request(
        req,
        RpcLabels {
            era: era.version(),
            method,
        },
    );
}

/// The refusal of what the body's shape shows before it is parsed: JSON nested too deep, or
/// a batch with too many items (whatever the revision).
fn screen(
    body: &[u8],
    limits: &Limits,
    server: &Server,
    version: VersionHeader<'_>,
) -> Option<HttpResponse> {
    if too_deep(body, limits.max_json_depth) {
        return Some(invalid(
            None,
            McpError::InvalidRequest(format!(
                "Invalid Request: JSON nested deeper than {} levels",
                limits.max_json_depth
            )),
        ));
    }
    let max_items = server.settings.max_batch_items;
    if let Some(n) = batch_items(body)
        && n > max_items
    {
        let message = match version.classify(None) {
            Err(e) => return Some(refused(None, e)),
            Ok(Era::Legacy(BATCH_VERSION)) => format!(
                "Invalid Request: a batch holds at most {max_items} messages (mcp.max_batch_items); this one holds {n}"
            ),
            Ok(era) => batches_unsupported(era),
        };
        return Some(invalid(None, McpError::InvalidRequest(message)));
    }
    None
}

fn not_json() -> HttpResponse {
    invalid(
        None,
        McpError::ParseError("Parse error: the body is not valid JSON".into()),
    )
}

/// What a batch is served with.
#[derive(Clone, Copy)]
struct Endpoint<'a> {
    server: &'a Arc<Server>,
    limits: &'a Limits,
    budgets: &'a Budgets,
}

/// A batch (2025-03-26 only): its items' texts, each read as one message by the batch, after
/// the request budget has paid for the items beyond the first.
async fn serve_batch(
    req: &HttpRequest,
    body: &[u8],
    to: Endpoint<'_>,
    admitted: &Admitted,
    request_id: &RequestId,
    version: VersionHeader<'_>,
) -> HttpResponse {
    let Endpoint {
        server,
        limits,
        budgets,
    } = to;
    let Ok(items) = serde_json::from_slice::<Vec<&RawValue>>(body) else {
        return not_json();
    };
    let era = match version.classify(None) {
        Ok(era) => era,
        Err(e) => return refused(None, e),
    };
    if era != Era::Legacy(BATCH_VERSION) {
        return invalid(None, McpError::InvalidRequest(batches_unsupported(era)));
    }
    if let Some(refusal) = charge_batch(budgets, admitted, items.len()).await {
        return refusal;
    }
    label(req, era, "batch");
    batch(
        items,
        server,
        limits,
        admitted.caller.clone(),
        era,
        request_id,
    )
    .await
}

/// The common request in one pass; anything else as `Message::parse` reads it (the same
/// request either way: `Request::read_in_one_pass`). `None` when the body is not JSON.
fn read_message(body: &[u8]) -> Option<Result<Read<'_>, Invalid>> {
    let fast = std::str::from_utf8(body)
        .ok()
        .and_then(Request::read_in_one_pass);
    if let Some(request) = fast {
        return Some(Ok(Read::Request(request)));
    }
    match Message::parse(body) {
        // The params, typed once from the body's text.
        Ok(Message::Request(request)) => Some(Ok(Read::Request(Request::new(request)))),
        Ok(Message::Notification { method, params }) => {
            Some(Ok(Read::Notification(method, params)))
        }
        Ok(Message::ClientResponse { id, outcome }) => Some(Ok(Read::Response(id, outcome))),
        Err(Unreadable::NotJson) => None,
        Err(Unreadable::Invalid(bad)) => Some(Err(bad)),
    }
}

/// A client notification: 202. 2026-07-28 defines no client notifications over HTTP (closing
/// a stream cancels): they are accepted and ignored.
fn notified(
    req: &HttpRequest,
    server: &Server,
    caller: &Caller,
    version: VersionHeader<'_>,
    method: &str,
    params: Option<&RawValue>,
) -> HttpResponse {
    let params = notification_params(params);
    let meta = params.get("_meta").and_then(Value::as_object);
    let era = match version.classify(meta) {
        Ok(era) => era,
        Err(e) => return refused(None, e),
    };
    label(req, era, method_label(method));
    if era != Era::Modern {
        server.notify(caller, method, &params);
    }
    HttpResponse::Accepted().finish()
}

/// What `prepare` decided for a request.
enum Prepared {
    Dispatch(Request, Call),
    /// Delivery already: a refusal before dispatch, or a `subscriptions/listen` stream.
    Delivery(HttpResponse),
}

/// A request's era, then (2026-07-28) its envelope and standard headers, checked before
/// anything is dispatched; a listen request opens its stream here.
fn prepare(
    req: &HttpRequest,
    request: Request,
    mut call: Call,
    version: VersionHeader<'_>,
    server: &Arc<Server>,
    limits: &Limits,
    framing: Framing,
) -> Prepared {
    let id = Some(request.id.clone());
    call.era = match version.classify(request.meta()) {
        Ok(era) => era,
        Err(e) => return Prepared::Delivery(refused(id, e)),
    };
    label(req, call.era, method_label(&request.method));
    if call.era != Era::Modern {
        return Prepared::Dispatch(request, call);
    }
    let meta = RequestMeta::from_meta(request.meta())
        .and_then(|meta| headers::check(req, &request).map(|()| meta));
    match meta {
        Ok(meta) => call.meta = Some(meta),
        Err(e) => return Prepared::Delivery(refused(id, e)),
    }
    if request.method == "tools/call" {
        call.param_headers = headers::params(req);
    }
    if request.method == "subscriptions/listen" {
        let stream = sse::subscribe(request, server.clone(), limits, &call, framing);
        return Prepared::Delivery(stream);
    }
    Prepared::Dispatch(request, call)
}

/// A single message as `post` serves it.
enum Read<'a> {
    Request(Request),
    Notification(Cow<'a, str>, Option<&'a RawValue>),
    /// The client's answer to a question a handler asked: its id, its `result` or `error`.
    Response(Id, Result<Value, Value>),
}

/// A notification's params as a map (empty when absent or unreadable: notifications are
/// answered 202 whatever they hold).
pub(crate) fn notification_params(params: Option<&RawValue>) -> Map<String, Value> {
    params
        .and_then(|raw| serde_json::from_str(raw.get()).ok())
        .unwrap_or_default()
}

/// A client's answer to a question a handler asked on a 2025 response stream: delivered to the
/// waiting handler (202), replayed by Fly's proxy to the instance that waits (421 with
/// `fly-replay`), or refused (400) when no question of this caller waits under that id.
fn answer(
    req: &HttpRequest,
    server: &Server,
    caller: &Caller,
    era: Era,
    id: &Id,
    outcome: Result<Value, Value>,
) -> HttpResponse {
    if era == Era::Modern {
        return invalid(None,
            McpError::InvalidRequest("Invalid Request: in protocol revision 2026-07-28 answers travel in the retried request's inputResponses, never as a response".into()),
        );
    }
    let subject = caller.subject().unwrap_or("");
    let unknown = || {
        invalid(
            None,
            McpError::InvalidRequest(
                "Invalid Request: no question of this caller is waiting for an answer with this id"
                    .into(),
            ),
        )
    };
    match server.pending.answer(subject, id, outcome) {
        Delivery::Delivered => HttpResponse::Accepted().finish(),
        Delivery::Unknown => unknown(),
        // Already replayed once: the instance named does not wait for it either.
        Delivery::Elsewhere(_) if req.headers().contains_key("fly-replay-src") => unknown(),
        Delivery::Elsewhere(instance) => {
            log::debug!("an answer for instance {instance} is replayed to it");
            let mut r = Refusal::transport(
                Kind::Misdirected,
                format!(
                    "Misdirected Request: another instance ({instance}) is waiting for this answer; on Fly.io the proxy replays it there"
                ),
            );
            if let Ok(v) = HeaderValue::from_str(&format!("instance={instance}")) {
                r = r.with_header(HeaderName::from_static("fly-replay"), v);
            }
            r.into_response()
        }
    }
}

/// A refusal made before dispatch (era, envelope, headers): always 400.
fn refused(id: Option<Id>, e: McpError) -> HttpResponse {
    invalid(id, e)
}

fn batches_unsupported(era: Era) -> String {
    format!(
        "Invalid Request: JSON-RPC batches are not supported in protocol revision {}",
        era.version()
    )
}

/// The response size limit (`mcp.max_response_bytes`) and whether the request was a tool call,
/// whose own oversized result becomes a tool error rather than a protocol error.
#[derive(Clone)]
struct Cap {
    limit: usize,
    /// For the `insufficient_scope` challenge of a 403.
    challenge: Arc<ChallengeContext>,
    /// A tool call: the server and era that write the replacement tool error.
    tool_call: Option<(Arc<Server>, Era)>,
}

impl Cap {
    /// Anything but a tool call.
    fn plain(server: &Server, limits: &Limits) -> Cap {
        Cap {
            limit: server.settings.max_response_bytes,
            challenge: limits.challenge.clone(),
            tool_call: None,
        }
    }

    fn new(server: &Arc<Server>, limits: &Limits, request: &Request, era: Era) -> Cap {
        Cap {
            limit: server.settings.max_response_bytes,
            challenge: limits.challenge.clone(),
            tool_call: (request.method == "tools/call").then(|| (server.clone(), era)),
        }
    }
}

/// The JSON text of a response, or a replacement when the text would take the body past the
/// limit (`used` bytes are already sent): a tool result that is too large on its own becomes a
/// tool error saying so; anything else a -32603 error. No response ever exceeds the limit.
fn capped(r: &Response, id: &Id, used: usize, cap: &Cap) -> Vec<u8> {
    let text = r.to_json_bytes();
    if used.saturating_add(text.len()) <= cap.limit {
        return text;
    }
    let limit = cap.limit;
    log::warn!(
        "a response of {} bytes was replaced by an error: over mcp.max_response_bytes ({limit})",
        text.len()
    );
    let too_large_alone = text.len().saturating_add(RESULT_RESERVE) > limit;
    let too_large = McpError::ResponseTooLarge(limit);
    let replacement = match (r, &cap.tool_call) {
        (Response::Success { .. }, Some((server, era))) if too_large_alone => {
            let error = Reply::tool_error(format!(
                "The tool returned a result of {} bytes, over this server's limit of {limit} bytes per response (mcp.max_response_bytes)",
                text.len()
            ));
            let answer = server.answer(Method::ToolsCall, *era, error);
            Response::success(id.clone(), Arc::new(answer))
        }
        _ => Response::error(Some(id.clone()), too_large.to_error()),
    };
    replacement.to_json_bytes()
}

/// Bytes a stream keeps free for its final result (enough for any error response).
const RESULT_RESERVE: usize = 1024;

/// Maps an outcome to an HTTP response (JSON framing): the one place a dispatcher outcome
/// becomes an HTTP status.
fn outcome_response(outcome: Outcome, id: &Id, cap: &Cap) -> HttpResponse {
    match outcome {
        Outcome::Response(r) => HttpResponse::Ok()
            .insert_header((CONTENT_TYPE, HeaderValue::from_static("application/json")))
            .body(capped(&r, id, 0, cap)),
        Outcome::Refused(refused) => failed(refused, &cap.challenge).into_response(),
    }
}

/// A failure answered at the HTTP level: a 403 for scopes is the OAuth refusal with its
/// `insufficient_scope` challenge (its JSON-RPC error kept for an event stream); the rest are
/// JSON-RPC errors with the failure table's status.
fn failed(refused: Refused, challenge: &ChallengeContext) -> Refusal {
    match &refused.error {
        McpError::InsufficientScope(scopes) => AuthRefusal::InsufficientScope(scopes.clone())
            .refusal(challenge)
            .with_in_band(refused.error.to_error()),
        _ => Refusal::failed(refused),
    }
}

/// The text of an outcome sent inside an event stream (the HTTP status is already sent, so
/// HTTP-level refusals travel as their JSON-RPC errors).
fn outcome_event(outcome: Outcome, id: &Id, used: usize, cap: &Cap) -> Vec<u8> {
    let r = match outcome {
        Outcome::Response(r) => r,
        Outcome::Refused(refused) => Response::error(Some(id.clone()), refused.error.to_error()),
    };
    capped(&r, id, used, cap)
}

/// Serves one request. The work before the first wait is done here, outside any future: the
/// future returned holds only what the wait needs (not the request or its `Call`, which the
/// dispatch took), and it is part of `post`'s, which actix boxes and copies per request.
fn one_request(
    request: Request,
    server: Arc<Server>,
    limits: &Limits,
    mut call: Call,
    framing: Framing,
) -> Either<Ready<HttpResponse>, impl std::future::Future<Output = HttpResponse>> {
    let id = request.id.clone();
    let cap = Cap::new(&server, limits, &request, call.era);
    // A JSON-only client gets no notifications (nothing is produced for it), and a method
    // that runs no author code has none to send: neither gets a channel.
    let mut rx = None;
    if framing != Framing::JsonOnly && request.may_notify() {
        let (tx, receiver) = outbox();
        call.tx = Some(tx);
        rx = Some(receiver);
    }
    let caller = call.caller.clone();
    let first: Pin<Box<dyn std::future::Future<Output = Outcome>>> =
        match server.handle(request, call) {
            // Nothing to wait for (`tools/list`, an unserved method): no future at all.
            Handling::Ready(outcome) => {
                return Either::Left(ready(finished(
                    Ok(outcome),
                    rx.as_mut(),
                    &cap,
                    framing,
                    &id,
                )));
            }
            Handling::Running(f) => Box::pin(f),
        };
    Either::Right(dispatched(first, server, caller, id, cap, rx, framing))
}
