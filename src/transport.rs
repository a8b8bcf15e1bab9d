//! Stateless Streamable HTTP: the `POST /mcp` handler. Checks `Accept`, `Content-Type`,
//! `MCP-Protocol-Version`, body size and JSON shape, hands requests to the dispatcher, and frames
//! the answer as `application/json`, or as `text/event-stream` when notifications come first.
//! This is the one place that maps outcomes to HTTP statuses. Both protocol eras arrive here;
//! `mcp::modern::classify` decides each message's era, and 2026-07-28 requests have their
//! envelope and standard headers (`headers`) checked before they reach the dispatcher.

mod batch;
mod headers;
mod sse;

use std::borrow::Cow;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{
    ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue,
};
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use futures_util::StreamExt;
use futures_util::future::{Either, Ready, ready};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::asking::Answered;
use crate::auth::Caller;
use crate::auth::challenge::{AuthRefusal, ChallengeContext};
use crate::budget::Budgets;
use crate::edge::{hand_over, label_request};
use crate::jsonrpc::{Id, Message, Response, Unreadable, first_byte};
use crate::mcp::model::{Method, Request};
use crate::mcp::modern::{RequestMeta, VersionHeader};
use crate::mcp::result::Reply;
use crate::mcp::{BATCH_VERSION, Call, Era, Handling, McpError, Outcome, Refused, Server};
use crate::metrics::{RpcLabels, method_label};
use crate::outbox::outbox;
use crate::refusal::Refusal;
use batch::batch;
pub use batch::batch_items;
use batch::{charge_batch, charge_owed};
use sse::{dispatched, finished};

/// Request limits the transport enforces, and the challenge its 403 for scopes carries.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub body_timeout: Duration,
    pub max_json_depth: usize,
    pub challenge: Arc<ChallengeContext>,
}

fn transport_error(status: StatusCode, message: impl Into<String>) -> HttpResponse {
    Refusal::transport(status, message).into_response()
}

/// A JSON-RPC error of the transport (the body's shape or framing) as a whole HTTP response.
fn invalid(status: StatusCode, id: Option<Id>, e: McpError) -> HttpResponse {
    Refusal::rpc(status, id, &e).into_response()
}

/// GET, DELETE and every other method on the endpoint: no standalone stream, no sessions.
fn method_not_allowed() -> HttpResponse {
    Refusal::transport(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed.")
        .with_allow("POST")
        .into_response()
}

/// How a response may be framed, from the request's `Accept` (negotiated as HTTP does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Both listed (what MCP clients send): JSON, or SSE when notifications come first.
    Either,
    /// JSON only (no `Accept`, `*/*`, `application/*`, `application/json`): notifications that
    /// would need a stream are dropped.
    JsonOnly,
    /// `text/event-stream` without JSON: every answer is an event stream.
    SseOnly,
}

/// Negotiates the framing; `None` when `Accept` admits neither type (406). Quality values
/// count: a range with `q=0` refuses, and the most specific range that matches a type decides
/// its quality (`application/json;q=0, */*` refuses JSON).
pub fn negotiate(req: &HttpRequest) -> Option<Framing> {
    negotiate_headers(req.headers())
}

/// [`negotiate`] from the headers alone.
fn negotiate_headers(headers: &HeaderMap) -> Option<Framing> {
    // What MCP clients send, settled without parsing (the same answer the parse gives).
    let mut values = headers.get_all(ACCEPT);
    if let (Some(v), None) = (values.next(), values.next())
        && matches!(
            v.as_bytes(),
            b"application/json, text/event-stream" | b"text/event-stream, application/json"
        )
    {
        return Some(Framing::Either);
    }
    // (quality, how specific: 3 exact, 2 `type/*`, 1 `*/*`) of the best-matching range so far.
    let mut json: Option<(f32, u8)> = None;
    let mut sse: Option<(f32, u8)> = None;
    let mut present = false;
    for value in headers.get_all(ACCEPT) {
        let Ok(v) = value.to_str() else { continue };
        for range in v.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim();
            if media.is_empty() {
                continue;
            }
            present = true;
            let q = parts
                .filter_map(|p| {
                    let p = p.trim();
                    let (name, value) = p.split_once('=')?;
                    name.trim()
                        .eq_ignore_ascii_case("q")
                        .then(|| value.trim().parse::<f32>().unwrap_or(0.0))
                })
                .next()
                .unwrap_or(1.0);
            let is = |s: &str| media.eq_ignore_ascii_case(s);
            let note = |slot: &mut Option<(f32, u8)>, specificity: u8| {
                if slot.is_none_or(|(_, s)| specificity > s) {
                    *slot = Some((q, specificity));
                }
            };
            if is("application/json") {
                note(&mut json, 3);
            } else if is("text/event-stream") {
                note(&mut sse, 3);
            } else if is("application/*") {
                note(&mut json, 2);
            } else if is("text/*") {
                note(&mut sse, 2);
            } else if is("*/*") {
                note(&mut json, 1);
                note(&mut sse, 1);
            }
        }
    }
    // No Accept (or an empty one) accepts anything: JSON.
    if !present {
        return Some(Framing::JsonOnly);
    }
    let json_ok = json.is_some_and(|(q, _)| q > 0.0);
    let (sse_ok, sse_explicit) = sse.map_or((false, false), |(q, s)| (q > 0.0, s == 3));
    match (json_ok, sse_ok) {
        (true, true) if sse_explicit => Some(Framing::Either),
        (true, _) => Some(Framing::JsonOnly),
        (false, true) => Some(Framing::SseOnly),
        (false, false) => None,
    }
}

fn is_json_content(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(CONTENT_TYPE);
    let (Some(v), None) = (values.next(), values.next()) else {
        return false;
    };
    if v.as_bytes() == b"application/json" {
        return true;
    }
    v.to_str()
        .ok()
        .and_then(|s| s.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

/// Calls `f` with every byte of `body` that lies outside JSON strings, and with the `"` that
/// opens each string; stops when `f` returns false. Both pre-parse checks walk the body with it.
fn outside_strings(body: &[u8], mut f: impl FnMut(u8) -> bool) {
    let mut in_string = false;
    let mut escaped = false;
    for &b in body {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        in_string = b == b'"';
        if !f(b) {
            return;
        }
    }
}

/// True when brackets nest deeper than `max` (strings are skipped). Runs before parsing so a
/// deeply nested body never reaches the parser's recursion.
pub fn too_deep(body: &[u8], max: usize) -> bool {
    // Depth never exceeds the count of opening brackets, a count the compiler vectorizes (in
    // byte lanes, hence chunks of at most 255): it settles most bodies without the
    // byte-by-byte walk.
    let openers: usize = body
        .chunks(255)
        .map(|chunk| {
            let n = chunk
                .iter()
                .fold(0u8, |n, &b| n + u8::from(b == b'[' || b == b'{'));
            usize::from(n)
        })
        .sum();
    if openers <= max {
        return false;
    }
    let mut depth = 0usize;
    let mut deep = false;
    outside_strings(body, |b| {
        match b {
            b'[' | b'{' => {
                depth += 1;
                deep = depth > max;
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        !deep
    });
    deep
}

enum BodyError {
    TooLarge,
    Timeout,
    Broken,
}

async fn read_body(mut payload: web::Payload, limits: &Limits) -> Result<Bytes, BodyError> {
    let read = async {
        // A body that comes in one chunk (nearly every body) is that chunk, not a copy of it.
        let mut first: Option<Bytes> = None;
        let mut buf = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|_| BodyError::Broken)?;
            let held = first.as_ref().map_or(buf.len(), Bytes::len);
            if held + chunk.len() > limits.max_body_bytes {
                return Err(BodyError::TooLarge);
            }
            match first.take() {
                None if buf.is_empty() => first = Some(chunk),
                Some(f) => {
                    buf.extend_from_slice(&f);
                    buf.extend_from_slice(&chunk);
                }
                None => buf.extend_from_slice(&chunk),
            }
        }
        Ok(first.unwrap_or_else(|| buf.freeze()))
    };
    crate::body::within_after_a_turn(limits.body_timeout, read)
        .await
        .unwrap_or(Err(BodyError::Timeout))
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
    let version_header = VersionHeader::read(
        req.headers()
            .get_all(crate::edge::MCP_PROTOCOL_VERSION)
            .map(HeaderValue::as_bytes),
    );
    let header_era = || version_header.classify(None);
    // The request counter's era and method labels, once the message is read.
    let label = |era: Era, method: &'static str| {
        label_request(
            &req,
            RpcLabels {
                era: era.version(),
                method,
            },
        )
    };
    let body = match read_body(payload, &limits).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => return too_large(&limits).into_response(),
        Err(BodyError::Timeout) => {
            return transport_error(
                StatusCode::REQUEST_TIMEOUT,
                "Request Timeout: the body arrived too slowly",
            );
        }
        Err(BodyError::Broken) => {
            return transport_error(StatusCode::BAD_REQUEST, "Bad Request: unreadable body");
        }
    };
    if too_deep(&body, limits.max_json_depth) {
        return invalid(
            StatusCode::BAD_REQUEST,
            None,
            McpError::InvalidRequest(format!(
                "Invalid Request: JSON nested deeper than {} levels",
                limits.max_json_depth
            )),
        );
    }
    // An oversized batch is refused before it is parsed, whatever the revision.
    let max_items = server.settings.max_batch_items;
    if let Some(n) = batch_items(&body)
        && n > max_items
    {
        let message = match header_era() {
            Err(e) => return refused(None, e),
            Ok(Era::Legacy(BATCH_VERSION)) => format!(
                "Invalid Request: a batch holds at most {max_items} messages (mcp.max_batch_items); this one holds {n}"
            ),
            Ok(era) => batches_unsupported(era),
        };
        return invalid(
            StatusCode::BAD_REQUEST,
            None,
            McpError::InvalidRequest(message),
        );
    }
    let not_json = || {
        invalid(
            StatusCode::BAD_REQUEST,
            None,
            McpError::ParseError("Parse error: the body is not valid JSON".into()),
        )
    };
    // What the auth gate admitted, read once.
    let (request_id, admitted) = hand_over(&req);
    let Some(admitted) = admitted else {
        log::error!("no caller on an MCP request: the auth gate is not installed");
        return Refusal::internal(request_id.as_str().to_string()).into_response();
    };
    let caller = admitted.caller.clone();
    let server = server.into_inner();
    if first_byte(&body) == Some(b'[') {
        // A batch: its items' texts, each read as one message by the batch.
        let Ok(items) = serde_json::from_slice::<Vec<&RawValue>>(&body) else {
            return not_json();
        };
        let era = match header_era() {
            Ok(era) => era,
            Err(e) => return refused(None, e),
        };
        if era != Era::Legacy(BATCH_VERSION) {
            return invalid(
                StatusCode::BAD_REQUEST,
                None,
                McpError::InvalidRequest(batches_unsupported(era)),
            );
        }
        if let Some(refusal) = Box::pin(charge_batch(&budgets, &admitted, items.len())).await {
            return refusal;
        }
        label(era, "batch");
        return Box::pin(batch(items, &server, &limits, caller, era, &request_id)).await;
    }
    // What is read from the body lives in this block only, so none of it is kept in this
    // future (which actix boxes and copies per request) across the dispatch's wait.
    let (request, call) = {
        // The common request in one pass; anything else as `Message::parse` reads it (the same
        // request either way: `Request::read_in_one_pass`).
        let fast = std::str::from_utf8(&body)
            .ok()
            .and_then(Request::read_in_one_pass);
        let message = match fast {
            Some(request) => Ok(Read::Request(request)),
            None => match Message::parse(&body) {
                // The params, typed once from the body's text.
                Ok(Message::Request(request)) => Ok(Read::Request(Request::new(request))),
                Ok(Message::Notification { method, params }) => {
                    Ok(Read::Notification(method, params))
                }
                Ok(Message::ClientResponse { id, outcome }) => Ok(Read::Response(id, outcome)),
                Err(Unreadable::NotJson) => return not_json(),
                Err(Unreadable::Invalid(bad)) => Err(bad),
            },
        };
        // A verified subject's request budget, left owed by the auth gate.
        let mut tool_budget_charged = false;
        if admitted.owed {
            let tool_call = match &message {
                Ok(Read::Request(r)) if r.method == "tools/call" => Some(&r.id),
                _ => None,
            };
            let owed = charge_owed(&budgets, &admitted, &server, &limits, tool_call);
            match Box::pin(owed).await {
                Ok(charged) => tool_budget_charged = charged,
                Err(refusal) => return refusal,
            }
        }
        match message {
            Err(bad) => return invalid(StatusCode::BAD_REQUEST, bad.id.clone(), bad.into()),
            Ok(Read::Notification(method, params)) => {
                let params = notification_params(params);
                let meta = params.get("_meta").and_then(Value::as_object);
                let era = match version_header.classify(meta) {
                    Ok(era) => era,
                    Err(e) => return refused(None, e),
                };
                label(era, method_label(&method));
                // 2026-07-28 defines no client notifications over HTTP (closing a stream
                // cancels): they are accepted and ignored.
                if era != Era::Modern {
                    server.notify(&caller, &method, &params);
                }
                return HttpResponse::Accepted().finish();
            }
            Ok(Read::Response(id, outcome)) => {
                let era = match header_era() {
                    Ok(era) => era,
                    Err(e) => return refused(None, e),
                };
                label(era, "response");
                return answer(&req, &server, &caller, era, &id, outcome);
            }
            Ok(Read::Request(request)) => {
                let id = Some(request.id.clone());
                let era = match version_header.classify(request.meta()) {
                    Ok(era) => era,
                    Err(e) => return refused(id, e),
                };
                label(era, method_label(&request.method));
                let mut call = Call {
                    caller,
                    era,
                    meta: None,
                    param_headers: Vec::new(),
                    tx: None,
                    request_id,
                    tool_budget_charged,
                };
                if era == Era::Modern {
                    // The envelope, then the standard headers, before anything is dispatched.
                    let meta = RequestMeta::from_meta(request.meta())
                        .and_then(|meta| headers::check(&req, &request).map(|()| meta));
                    match meta {
                        Ok(meta) => call.meta = Some(meta),
                        Err(e) => return refused(id, e),
                    }
                    if request.method == "tools/call" {
                        call.param_headers = headers::params(&req);
                    }
                    if request.method == "subscriptions/listen" {
                        return sse::subscribe(request, server, &limits, &call, framing);
                    }
                }
                (request, call)
            }
        }
    };
    one_request(request, server, &limits, call, framing).await
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
        return invalid(
            StatusCode::BAD_REQUEST,
            None,
            McpError::InvalidRequest("Invalid Request: in protocol revision 2026-07-28 answers travel in the retried request's inputResponses, never as a response".into()),
        );
    }
    let subject = caller.subject().unwrap_or("");
    let unknown = || {
        invalid(
            StatusCode::BAD_REQUEST,
            None,
            McpError::InvalidRequest(
                "Invalid Request: no question of this caller is waiting for an answer with this id"
                    .into(),
            ),
        )
    };
    match server.pending.answer(subject, id, outcome) {
        Answered::Delivered => HttpResponse::Accepted().finish(),
        Answered::Unknown => unknown(),
        // Already replayed once: the instance named does not wait for it either.
        Answered::Elsewhere(_) if req.headers().contains_key("fly-replay-src") => unknown(),
        Answered::Elsewhere(instance) => {
            log::debug!("an answer for instance {instance} is replayed to it");
            let mut r = Refusal::transport(
                StatusCode::MISDIRECTED_REQUEST,
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
    invalid(StatusCode::BAD_REQUEST, id, e)
}

fn batches_unsupported(era: Era) -> String {
    format!(
        "Invalid Request: JSON-RPC batches are not supported in protocol revision {}",
        era.version()
    )
}

fn too_large(limits: &Limits) -> Refusal {
    Refusal::transport(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "Payload Too Large: the limit is {} bytes",
            limits.max_body_bytes
        ),
    )
}

/// What the transport refuses from a POST's head alone, in its order: 406 (`Accept`), 415
/// (`Content-Type`), 413 (a declared `Content-Length` over the limit); else the framing. The
/// `Expect: 100-continue` check asks it too, before any body is invited.
pub fn head_check(headers: &HeaderMap, limits: &Limits) -> Result<Framing, Box<Refusal>> {
    let Some(framing) = negotiate_headers(headers) else {
        return Err(Box::new(Refusal::transport(
            StatusCode::NOT_ACCEPTABLE,
            "Not Acceptable: Accept must admit application/json or text/event-stream (MCP clients send both)",
        )));
    };
    if !is_json_content(headers) {
        return Err(Box::new(Refusal::transport(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Media Type: Content-Type must be application/json",
        )));
    }
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body_bytes as u64) {
        return Err(Box::new(too_large(limits)));
    }
    Ok(framing)
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
            Handling::Answered(outcome) => {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_brackets_outside_strings() {
        assert!(!too_deep(br#"{"a":[[1]]}"#, 3));
        assert!(too_deep(br#"{"a":[[[1]]]}"#, 3));
        assert!(!too_deep(br#"{"a":"[[[[[[[[["}"#, 2));
        assert!(!too_deep(br#"{"a":"\"[[[[[[[["}"#, 2));
        assert!(too_deep(&[b'['; 10_000], 64));
        // Counted in chunks of 255: brackets on both sides of a chunk's edge, and in strings.
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(!too_deep(nested(64).as_bytes(), 64));
        assert!(too_deep(nested(65).as_bytes(), 64));
        let quoted = format!(r#"{{"a":"{}","b":{}}}"#, "[".repeat(600), nested(60));
        assert!(!too_deep(quoted.as_bytes(), 64));
    }

    fn framing(accept: &[&str]) -> Option<Framing> {
        let mut r = actix_web::test::TestRequest::default();
        for a in accept {
            r = r.append_header((ACCEPT, *a));
        }
        negotiate(&r.to_http_request())
    }

    #[test]
    fn what_clients_send_is_settled_as_the_parse_would() {
        let cases: [(&[&str], Option<Framing>); 7] = [
            (
                &["application/json, text/event-stream"],
                Some(Framing::Either),
            ),
            (
                &["text/event-stream, application/json"],
                Some(Framing::Either),
            ),
            (
                &["application/json,text/event-stream"],
                Some(Framing::Either),
            ),
            (
                &["application/json, text/event-stream;q=0"],
                Some(Framing::JsonOnly),
            ),
            (&["text/event-stream"], Some(Framing::SseOnly)),
            (&[], Some(Framing::JsonOnly)),
            (&["text/html"], None),
        ];
        for (accept, expected) in cases {
            assert_eq!(framing(accept), expected, "Accept: {accept:?}");
        }
    }
}
