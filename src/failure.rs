//! The failure vocabulary, at the bottom of the house: every way a request can fail, each with
//! its status in a table. `McpError`: the one place that picks JSON-RPC codes (`to_error`),
//! words an error for its era (`for_era`) and says which are answered at the HTTP level
//! (`status`, `retry_after`); `Kind`: the HTTP layer's refusals (status, fixed header);
//! `AuthRefusal`: the bearer check's. Statuses are `Status`, not an HTTP library's type: only
//! `refusal` turns one into HTTP, for the transport and the edge.

use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::jsonrpc::{ErrorCode, ErrorObject};
use crate::revision::{ALL_VERSIONS, Era};

/// Every way a request can fail. `to_error` is the one place that picks JSON-RPC codes;
/// `InsufficientScope` and `RateLimited` are HTTP-level answers instead.
#[derive(Debug, Clone, PartialEq)]
pub enum McpError {
    /// The body is not JSON (-32700).
    ParseError(String),
    /// The body is JSON but not a request this endpoint takes (-32600).
    InvalidRequest(String),
    /// Refused by the HTTP layer before any JSON-RPC processing (-32000): the message says why
    /// (Host, Origin, sizes, media types, methods, the request budget, the shared store).
    Transport(String),
    /// The caller's share of `subscriptions/listen` streams is in use (-32600).
    TooManyListenStreams(usize),
    MethodNotFound(String),
    InvalidParams(String),
    UnknownTool(String),
    UnknownPrompt(String),
    ResourceNotFound(String),
    Internal,
    /// A response over `mcp.max_response_bytes` (the limit).
    ResponseTooLarge(usize),
    InsufficientScope(Vec<String>),
    RateLimited(Duration),
    /// The shared budget store does not answer and `rate_limit.redis_down = "refuse"` (503).
    StoreDown,
    /// 2026-07-28: a required `_meta` member is missing or malformed (400, -32602).
    InvalidEnvelope(String),
    /// A header disagrees with the body, or a required one is missing (400, -32020).
    HeaderMismatch(String),
    /// The client's `clientCapabilities` lack these, which the request needs (400, -32021).
    MissingCapabilities(Vec<String>),
    /// The requested revision is not one this server speaks (400, -32022).
    UnsupportedVersion(String),
    /// 2026-07-28's answer for an unknown resource: -32602 with `data.uri`.
    UnknownResource(String),
    /// An event stream outlived what it was opened with (-32000): the reason, worded for the
    /// client (the token expired, its key was withdrawn, `mcp.max_stream_secs` passed).
    StreamEnded(&'static str),
    /// The request needs an extension the client did not declare in its `clientCapabilities`
    /// (400, -32021 with `requiredCapabilities.extensions`).
    MissingExtension(&'static str),
    /// No task of this caller has that id (any more): -32602, the same for another caller's.
    TaskNotFound,
    /// The caller has `mcp.max_tasks_per_subject` unfinished tasks (429).
    TooManyTasks(usize),
    /// A task's run failed for a reason the server states (-32603 with it): its time ran out,
    /// its result was too large.
    TaskFailed(String),
}

/// A message that is not a JSON-RPC request: -32600 with the reason.
impl From<crate::jsonrpc::Invalid> for McpError {
    fn from(bad: crate::jsonrpc::Invalid) -> McpError {
        McpError::InvalidRequest(format!("Invalid Request: {}", bad.reason))
    }
}

/// `Retry-After` of a refused task: tasks end when their work does, so a guess.
const TASK_RETRY_SECS: u64 = 5;

/// Whole seconds for a `Retry-After` header: rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

/// Client-supplied text echoed in an error, cut to a sane length.
fn clip(s: &str) -> String {
    const MAX: usize = 128;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        format!("{}...", s.chars().take(MAX).collect::<String>())
    }
}

impl McpError {
    pub fn to_error(&self) -> ErrorObject {
        match self {
            McpError::ParseError(why) => ErrorObject::new(ErrorCode::PARSE_ERROR, why.clone()),
            McpError::InvalidRequest(why) => {
                ErrorObject::new(ErrorCode::INVALID_REQUEST, why.clone())
            }
            McpError::Transport(why) => ErrorObject::new(ErrorCode::TRANSPORT, why.clone()),
            McpError::TooManyListenStreams(max) => ErrorObject::new(
                ErrorCode::INVALID_REQUEST,
                format!(
                    "Too many open subscriptions/listen streams: at most {max} per caller (mcp.max_listen_streams); close one first"
                ),
            ),
            McpError::MethodNotFound(m) => ErrorObject::new(
                ErrorCode::METHOD_NOT_FOUND,
                format!("Method not found: {}", clip(m)),
            ),
            McpError::InvalidParams(why) => {
                ErrorObject::new(ErrorCode::INVALID_PARAMS, format!("Invalid params: {why}"))
            }
            McpError::UnknownTool(name) => ErrorObject::new(
                ErrorCode::INVALID_PARAMS,
                format!("Unknown tool: {}", clip(name)),
            ),
            McpError::UnknownPrompt(name) => ErrorObject::new(
                ErrorCode::INVALID_PARAMS,
                format!("Unknown prompt: {}", clip(name)),
            ),
            McpError::ResourceNotFound(uri) => {
                ErrorObject::new(ErrorCode::RESOURCE_NOT_FOUND, "Resource not found")
                    .with_data(json!({"uri": uri}))
            }
            McpError::Internal => ErrorObject::new(ErrorCode::INTERNAL_ERROR, "Internal error"),
            McpError::ResponseTooLarge(limit) => ErrorObject::new(
                ErrorCode::INTERNAL_ERROR,
                format!(
                    "Response too large: it would exceed this server's limit of {limit} bytes (mcp.max_response_bytes)"
                ),
            ),
            McpError::InsufficientScope(_) => {
                ErrorObject::new(ErrorCode::INVALID_REQUEST, "Insufficient scope")
            }
            McpError::RateLimited(wait) => ErrorObject::new(
                ErrorCode::INVALID_REQUEST,
                format!(
                    "Too many tool calls; retry in {} s",
                    retry_after_secs(*wait)
                ),
            ),
            McpError::StoreDown => ErrorObject::new(
                ErrorCode::INTERNAL_ERROR,
                "Service unavailable: the shared rate-limit store does not answer; retry shortly",
            ),
            McpError::InvalidEnvelope(why) => {
                ErrorObject::new(ErrorCode::INVALID_PARAMS, format!("Invalid params: {why}"))
            }
            McpError::HeaderMismatch(why) => ErrorObject::new(
                ErrorCode::HEADER_MISMATCH,
                format!("Header mismatch: {why}"),
            ),
            McpError::MissingCapabilities(caps) => {
                let required: Map<String, Value> =
                    caps.iter().map(|c| (c.clone(), json!({}))).collect();
                ErrorObject::new(
                    ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY,
                    format!(
                        "Missing required client capability: {} (declare it in _meta io.modelcontextprotocol/clientCapabilities)",
                        caps.join(", ")
                    ),
                )
                .with_data(json!({ "requiredCapabilities": required }))
            }
            McpError::UnsupportedVersion(requested) => {
                let shown = clip(
                    &requested
                        .chars()
                        .filter(|c| !c.is_control())
                        .collect::<String>(),
                );
                ErrorObject::new(
                    ErrorCode::UNSUPPORTED_PROTOCOL_VERSION,
                    format!(
                        "Unsupported protocol version: {shown} (supported versions: {})",
                        ALL_VERSIONS.join(", ")
                    ),
                )
                .with_data(json!({"supported": ALL_VERSIONS, "requested": shown}))
            }
            McpError::UnknownResource(uri) => {
                ErrorObject::new(ErrorCode::INVALID_PARAMS, "Resource not found")
                    .with_data(json!({"uri": uri}))
            }
            McpError::MissingExtension(_)
            | McpError::TaskNotFound
            | McpError::TaskFailed(_)
            | McpError::TooManyTasks(_)
            | McpError::StreamEnded(_) => self.late_error(),
        }
    }

    /// The errors of long-running calls: streams that ended, and the tasks extension's.
    fn late_error(&self) -> ErrorObject {
        match self {
            McpError::StreamEnded(why) => {
                ErrorObject::new(ErrorCode::TRANSPORT, format!("Stream ended: {why}"))
            }
            McpError::MissingExtension(extension) => ErrorObject::new(
                ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY,
                format!(
                    "Missing required client capability: the extension {extension} (declare it under extensions in _meta io.modelcontextprotocol/clientCapabilities)"
                ),
            )
            .with_data(json!({"requiredCapabilities": {"extensions": {*extension: {}}}})),
            McpError::TaskNotFound => ErrorObject::new(
                ErrorCode::INVALID_PARAMS,
                "Failed to retrieve task: Task not found (unknown, or expired)",
            ),
            McpError::TaskFailed(why) => ErrorObject::new(ErrorCode::INTERNAL_ERROR, why.clone()),
            McpError::TooManyTasks(max) => ErrorObject::new(
                ErrorCode::INVALID_REQUEST,
                format!(
                    "Too many unfinished tasks: at most {max} per caller (mcp.max_tasks_per_subject); wait for one to finish or cancel one"
                ),
            ),
            _ => ErrorObject::new(ErrorCode::INTERNAL_ERROR, "Internal error"),
        }
    }

    /// The error as the request's era words it (2026-07-28 reports an unknown resource as
    /// invalid params, never -32002).
    pub fn for_era(self, era: Era) -> McpError {
        match (self, era) {
            (McpError::ResourceNotFound(uri), Era::Modern) => McpError::UnknownResource(uri),
            (e, _) => e,
        }
    }

    /// The one table of HTTP-level answers: `None` for an error that travels as a JSON-RPC
    /// error on a 200 (or inside an event stream); otherwise its status. Scopes, budgets and the
    /// shared store are refused at the HTTP level in every era; 2026-07-28's pre-dispatch
    /// failures carry a status of their own (404 unknown method, 400 envelope and headers).
    pub fn status(&self, era: Era) -> Option<Status> {
        match self {
            McpError::InsufficientScope(_) => Some(Status::Forbidden),
            McpError::RateLimited(_) | McpError::TooManyTasks(_) => Some(Status::TooManyRequests),
            McpError::StoreDown => Some(Status::ServiceUnavailable),
            McpError::MethodNotFound(_) if era == Era::Modern => Some(Status::NotFound),
            McpError::InvalidEnvelope(_)
            | McpError::HeaderMismatch(_)
            | McpError::MissingCapabilities(_)
            | McpError::MissingExtension(_)
            | McpError::UnsupportedVersion(_)
                if era == Era::Modern =>
            {
                Some(Status::BadRequest)
            }
            _ => None,
        }
    }

    /// The `Retry-After` seconds an HTTP-level answer carries.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            McpError::RateLimited(wait) => Some(retry_after_secs(*wait)),
            McpError::StoreDown => Some(1),
            McpError::TooManyTasks(_) => Some(TASK_RETRY_SECS),
            _ => None,
        }
    }
}

/// The HTTP statuses a refusal can carry: named here, turned into HTTP by `refusal` alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    NotAcceptable,
    RequestTimeout,
    PayloadTooLarge,
    UnsupportedMediaType,
    Misdirected,
    TooManyRequests,
    HeadersTooLarge,
    Internal,
    ServiceUnavailable,
}

impl Status {
    pub fn code(self) -> u16 {
        match self {
            Status::BadRequest => 400,
            Status::Unauthorized => 401,
            Status::Forbidden => 403,
            Status::NotFound => 404,
            Status::MethodNotAllowed => 405,
            Status::NotAcceptable => 406,
            Status::RequestTimeout => 408,
            Status::PayloadTooLarge => 413,
            Status::UnsupportedMediaType => 415,
            Status::Misdirected => 421,
            Status::TooManyRequests => 429,
            Status::HeadersTooLarge => 431,
            Status::Internal => 500,
            Status::ServiceUnavailable => 503,
        }
    }
}

/// The refusals of the HTTP layer (the edge, the auth gate's budget, the transport), made
/// before any JSON-RPC processing: each a JSON-RPC error (`-32000`, the code of
/// `McpError::Transport`) whose message the refusing layer words, with the status and the
/// header this table gives it. (The bearer check's refusals are OAuth-shaped: `AuthRefusal`,
/// below; the dispatcher's are `McpError`s, whose table is `McpError::status`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The client address cannot be determined behind the trusted proxy (400).
    ClientAddressUnknown,
    /// The body could not be read, or its framing or shape is refused before parsing (400).
    BadRequest,
    /// `Host` (or an absolute-form target's authority) or `Origin` not allowed (403).
    Forbidden,
    /// A method other than POST on the MCP endpoint (405, `Allow: POST`).
    MethodNotAllowed,
    /// `Accept` admits neither JSON nor an event stream, as the answer needs (406).
    NotAcceptable,
    /// The body arrived too slowly (408).
    RequestTimeout,
    /// The body is over `server.max_body_bytes` (413).
    PayloadTooLarge,
    /// `Content-Type` is not JSON (415).
    UnsupportedMediaType,
    /// Another instance waits for this answer (421, `fly-replay`).
    Misdirected,
    /// Over the request budget (429, `Retry-After`).
    TooManyRequests,
    /// The request head is over `server.max_header_bytes` (431).
    HeadersTooLarge,
    /// The shared store does not answer and the policy refuses (503, `Retry-After`).
    Unavailable,
    /// The metrics listener's token is missing or wrong (401).
    MetricsToken,
}

impl Kind {
    pub fn status(self) -> Status {
        match self {
            Kind::ClientAddressUnknown | Kind::BadRequest => Status::BadRequest,
            Kind::Forbidden => Status::Forbidden,
            Kind::MethodNotAllowed => Status::MethodNotAllowed,
            Kind::NotAcceptable => Status::NotAcceptable,
            Kind::RequestTimeout => Status::RequestTimeout,
            Kind::PayloadTooLarge => Status::PayloadTooLarge,
            Kind::UnsupportedMediaType => Status::UnsupportedMediaType,
            Kind::Misdirected => Status::Misdirected,
            Kind::TooManyRequests => Status::TooManyRequests,
            Kind::HeadersTooLarge => Status::HeadersTooLarge,
            Kind::Unavailable => Status::ServiceUnavailable,
            Kind::MetricsToken => Status::Unauthorized,
        }
    }

    /// The header the kind always carries (`Allow` of the endpoint's one method).
    pub fn allow(self) -> Option<&'static str> {
        (self == Kind::MethodNotAllowed).then_some("POST")
    }
}

/// The refusals of the bearer check, OAuth-shaped (RFC 6750 section 3: `{"error",
/// "error_description"}` and a `WWW-Authenticate` challenge, which `auth::challenge` writes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthRefusal {
    /// No bearer credentials: 401 without an error code.
    NoToken,
    /// Malformed or duplicated Authorization header: 400 `invalid_request`.
    BadRequest(&'static str),
    /// Any token failure: 401 `invalid_token`.
    InvalidToken,
    /// Missing scopes for this call: 403 `insufficient_scope`, naming every scope it needs.
    InsufficientScope(Vec<String>),
    /// The issuer's key set has not been loaded yet: 503.
    KeysUnavailable,
    /// DPoP (RFC 9449 section 7.1): the proof is missing or bad (`invalid_dpop_proof`), the
    /// token's binding forbids this use (`invalid_token`), or the proof lacks the server's
    /// nonce (`use_dpop_nonce`, which carries it): 401 with a `DPoP` challenge.
    Dpop {
        error: &'static str,
        description: &'static str,
        nonce: Option<String>,
    },
}

impl AuthRefusal {
    pub fn status(&self) -> Status {
        match self {
            AuthRefusal::NoToken | AuthRefusal::InvalidToken | AuthRefusal::Dpop { .. } => {
                Status::Unauthorized
            }
            AuthRefusal::BadRequest(_) => Status::BadRequest,
            AuthRefusal::InsufficientScope(_) => Status::Forbidden,
            AuthRefusal::KeysUnavailable => Status::ServiceUnavailable,
        }
    }
}

/// A failure answered at the HTTP level: the request's id (when it was read), the error (its
/// JSON-RPC body, and its only content inside an event stream) and the status.
#[derive(Debug)]
pub struct Refused {
    pub id: Option<crate::jsonrpc::Id>,
    pub error: McpError,
    pub status: Status,
}
