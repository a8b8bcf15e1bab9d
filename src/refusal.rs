//! The one refusal type. Every "no" the stack gives instead of an answer (guard, rate limit,
//! auth, transport, dispatcher) is a `Refusal` holding its HTTP status, its body and its headers
//! (challenge, `Retry-After`, `Allow`); `into_response` is the one place that turns one into an
//! HTTP response. One body shape per kind of endpoint:
//!
//! - **the MCP endpoint**: a JSON-RPC error response (`jsonrpc::Response`; the request's id when
//!   it was read, else `null`), its code picked by `McpError::to_error`;
//! - **OAuth refusals** of the bearer check (RFC 6750 section 3: 400, 401, 403, 503) **and every
//!   other path** (404, 405, 500): `{"error": "<code>", "error_description": "<text>"}`, plus
//!   `request_id` on a 500.
//!
//! Every refusal is `Cache-Control: no-store`.

use std::borrow::Cow;
use std::cell::RefCell;
use std::time::Duration;

use actix_web::HttpResponse;
use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{
    ALLOW, CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE,
};
use actix_web::web::Bytes;
use serde::Serialize;

use crate::failure::{Kind, McpError, Refused, Status, retry_after_secs};
use crate::jsonrpc::{ErrorObject, Id, Response};

/// A refusal: status, body, headers. Build one with the constructors, answer with
/// `into_response` (or `respond` in a middleware).
#[derive(Debug)]
pub struct Refusal {
    status: StatusCode,
    body: Body,
    /// Challenge, `Retry-After`, `Allow`, `fly-replay`: whatever the refusal tells the client
    /// beyond its body.
    headers: Vec<(HeaderName, HeaderValue)>,
}

#[derive(Debug)]
enum Body {
    Rpc(Response),
    OAuth {
        error: &'static str,
        description: Cow<'static, str>,
        request_id: Option<String>,
        trace_id: Option<String>,
        /// What the refusal says inside an event stream whose status is already sent.
        in_band: Option<ErrorObject>,
    },
    /// A body rendered ahead of time: the two OAuth 401s of the auth gate (at start-up) and
    /// the gate's 429 (per thread, by its delay). Both are answered before any event stream
    /// opens, so `into_message` never carries one.
    Rendered(Bytes),
}

/// The body of an OAuth-shaped refusal, written straight from borrowed strings.
#[derive(Serialize)]
struct OAuthBody<'a> {
    error: &'a str,
    error_description: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace_id: Option<&'a str>,
}

impl OAuthBody<'_> {
    fn render(
        error: &str,
        description: &str,
        request_id: Option<&str>,
        trace_id: Option<&str>,
    ) -> Bytes {
        let body = OAuthBody {
            error,
            error_description: description,
            request_id,
            trace_id,
        };
        Bytes::from(serde_json::to_vec(&body).expect("strings always serialize"))
    }
}

impl Refusal {
    /// A JSON-RPC error on the MCP endpoint.
    pub fn rpc(status: Status, id: Option<Id>, error: &McpError) -> Refusal {
        Refusal::rpc_response(status, Response::error(id, error.to_error()))
    }

    /// A failure the dispatcher or the transport answers at the HTTP level, with the status
    /// and `Retry-After` its table (`McpError::status`) gives it. (A 403 for scopes carries the
    /// OAuth body and challenge instead: the transport asks `auth::challenge` for it.)
    pub fn failed(refused: Refused) -> Refusal {
        let retry_after = refused.error.retry_after();
        let r = Refusal::rpc(refused.status, refused.id, &refused.error);
        match retry_after {
            Some(secs) => r.with_retry_after(secs),
            None => r,
        }
    }

    /// An error response already built (2026-07-28 rejections, worded for their era).
    pub fn rpc_response(status: Status, response: Response) -> Refusal {
        Refusal {
            status: http(status),
            body: Body::Rpc(response),
            headers: Vec::new(),
        }
    }

    /// A refusal of the HTTP layer on the MCP endpoint, before any JSON-RPC processing: its
    /// kind gives the status and any fixed header (`failure::Kind`).
    pub fn transport(kind: Kind, message: impl Into<String>) -> Refusal {
        let r = Refusal::rpc(kind.status(), None, &McpError::Transport(message.into()));
        match kind.allow() {
            Some(allow) => r.with_allow(allow),
            None => r,
        }
    }

    /// An OAuth-style refusal: `{"error": error, "error_description": description}`.
    pub fn oauth(
        status: Status,
        error: &'static str,
        description: impl Into<Cow<'static, str>>,
    ) -> Refusal {
        Refusal {
            status: http(status),
            body: Body::OAuth {
                error,
                description: description.into(),
                request_id: None,
                trace_id: None,
                in_band: None,
            },
            headers: Vec::new(),
        }
    }

    /// A refusal whose body was rendered ahead of time (`oauth_body`, or a JSON-RPC error).
    pub fn rendered(status: Status, body: Bytes) -> Refusal {
        Refusal {
            status: http(status),
            body: Body::Rendered(body),
            headers: Vec::new(),
        }
    }

    /// The body of an OAuth-style refusal, rendered once for `rendered`.
    pub fn oauth_body(error: &str, description: &str) -> Bytes {
        OAuthBody::render(error, description, None, None)
    }

    /// 429 for a request over its request budget, whichever store keeps it.
    ///
    /// A client over its budget tends to keep asking, and is told the same number of seconds
    /// for a second on end: each thread keeps the last body it rendered, by that number.
    pub fn too_many_requests(wait: Duration) -> Refusal {
        thread_local! {
            static LAST: RefCell<Option<(u64, Bytes)>> = const { RefCell::new(None) };
        }
        let secs = retry_after_secs(wait);
        let body = LAST.with_borrow_mut(|last| match last {
            Some((s, body)) if *s == secs => body.clone(),
            _ => {
                let message = format!("Too many requests; retry in {secs} s");
                let body = Bytes::from(
                    Response::error(None, McpError::Transport(message).to_error()).to_json_bytes(),
                );
                *last = Some((secs, body.clone()));
                body
            }
        });
        Refusal::rendered(Status::TooManyRequests, body).with_retry_after(secs)
    }

    /// 503 while the shared budget store does not answer and `rate_limit.redis_down = "refuse"`.
    pub fn store_down() -> Refusal {
        Refusal::transport(
            Kind::Unavailable,
            "Service Unavailable: the shared rate-limit store does not answer; retry shortly",
        )
        .with_retry_after(1)
    }

    /// 404 on a path this server does not serve.
    pub fn not_found() -> Refusal {
        Refusal::oauth(
            Status::NotFound,
            "not_found",
            "Nothing is served at this path",
        )
    }

    /// 405 on a path that serves other methods.
    pub fn method_not_allowed(allow: &'static str) -> Refusal {
        Refusal::oauth(
            Status::MethodNotAllowed,
            "method_not_allowed",
            "This method is not served at this path",
        )
        .with_allow(allow)
    }

    /// The generic 500: never the cause, only the request id (and the trace id, when the
    /// request is traced) to quote.
    pub fn internal(request_id: String, trace_id: Option<String>) -> Refusal {
        let mut r = Refusal::oauth(Status::Internal, "internal_error", "Internal server error");
        if let Body::OAuth {
            request_id: rid,
            trace_id: tid,
            ..
        } = &mut r.body
        {
            *rid = Some(request_id);
            *tid = trace_id;
        }
        r
    }

    /// A `WWW-Authenticate` challenge, rendered and checked by `auth::challenge`.
    pub fn with_challenge(self, challenge: HeaderValue) -> Refusal {
        self.with_header(WWW_AUTHENTICATE, challenge)
    }

    pub fn with_retry_after(self, secs: u64) -> Refusal {
        self.with_header(RETRY_AFTER, HeaderValue::from(secs))
    }

    pub fn with_allow(self, allow: &'static str) -> Refusal {
        self.with_header(ALLOW, HeaderValue::from_static(allow))
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Refusal {
        self.headers.push((name, value));
        self
    }

    /// The JSON-RPC error an OAuth-shaped refusal becomes inside an event stream.
    pub fn with_in_band(mut self, error: ErrorObject) -> Refusal {
        if let Body::OAuth { in_band, .. } = &mut self.body {
            *in_band = Some(error);
        }
        self
    }

    /// The one rendering of a refusal. The headers go straight into the map: every value is
    /// already a checked `HeaderValue`, and the fixed ones are static.
    pub fn into_response(self) -> HttpResponse {
        let body = match self.body {
            Body::Rendered(bytes) => bytes,
            Body::Rpc(r) => Bytes::from(r.to_json_bytes()),
            Body::OAuth {
                error,
                description,
                request_id,
                trace_id,
                ..
            } => OAuthBody::render(
                error,
                &description,
                request_id.as_deref(),
                trace_id.as_deref(),
            ),
        };
        let mut res = HttpResponse::with_body(self.status, body).map_into_boxed_body();
        let headers = res.headers_mut();
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        // Appended: a 401 may carry two challenges (Bearer and DPoP) as two fields.
        for (name, value) in self.headers {
            headers.append(name, value);
        }
        res
    }

    /// Answers `req` with this refusal (for middleware).
    pub fn respond(self, req: ServiceRequest) -> ServiceResponse<BoxBody> {
        let (http, _) = req.into_parts();
        ServiceResponse::new(http, self.into_response())
    }

    /// The refusal as the JSON-RPC message an event stream carries for request `id` (its HTTP
    /// status is already sent, so only the error travels).
    pub fn into_message(self, id: &Id) -> Response {
        match self.body {
            Body::Rpc(r) => r,
            Body::OAuth {
                in_band: Some(error),
                ..
            } => Response::error(Some(id.clone()), error),
            Body::OAuth { .. } | Body::Rendered(_) => {
                Response::error(Some(id.clone()), McpError::Internal.to_error())
            }
        }
    }
}

/// The HTTP status of a status the failure vocabulary names.
fn http(status: Status) -> StatusCode {
    StatusCode::from_u16(status.code()).expect("the failure table names valid statuses")
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    fn body_of(r: Refusal) -> (StatusCode, Option<String>, serde_json::Value) {
        let res = r.into_response();
        let retry = res
            .headers()
            .get(RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_owned());
        let status = res.status();
        let bytes = match res.into_body().try_into_bytes() {
            Ok(b) => b,
            Err(_) => panic!("a refusal's body is in memory"),
        };
        (status, retry, serde_json::from_slice(&bytes).unwrap())
    }

    /// The 429 body is kept per thread by its delay: the same delay gives the same body, a
    /// new one a body that says so.
    #[test]
    fn too_many_requests_says_its_own_delay() {
        for secs in [7, 7, 8, 7, 60] {
            let (status, retry, body) = body_of(Refusal::too_many_requests(Duration::from_millis(
                secs * 1000 - 300,
            )));
            assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(retry.as_deref(), Some(secs.to_string().as_str()));
            assert_eq!(body["jsonrpc"], "2.0");
            assert_eq!(body["id"], serde_json::Value::Null);
            assert_eq!(
                body["error"]["message"],
                format!("Too many requests; retry in {secs} s")
            );
        }
    }
}
