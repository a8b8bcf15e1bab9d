//! The request log layer, the outermost middleware inside CORS: the request id, the guard
//! (431, Host), timing, `nosniff`, the generic 500, settling an unread body, the request
//! counter and the access line. A hand-written `Transform` whose future holds the inner
//! service's future in place: no boxed future per request (`from_fn` boxes the inner call).

use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{Error, HttpMessage, HttpRequest};
use futures_util::future::LocalBoxFuture;

use super::{GenericError, RequestNote, X_REQUEST_ID, guard, status_label};
use crate::body::{SharedBody, announces_body, settle_body};
use crate::metrics::{GaugeGuard, METRICS, count_request};
use crate::refusal::Refusal;
use crate::request_id::RequestId;
use crate::text::log_safe;

/// Assigns the request id, refuses what [`guard`] refuses, times the request, writes one
/// access-log line, adds security headers, and replaces the body of any 500 with a generic
/// message. Never logs headers, query strings or bodies.
pub struct RequestLog;

impl<S, B> Transform<S, ServiceRequest> for RequestLog
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    S::Future: Unpin,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = Error;
    type Transform = RequestLogService<S>;
    type InitError = ();
    type Future = Ready<Result<RequestLogService<S>, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequestLogService { service }))
    }
}

pub struct RequestLogService<S> {
    service: S,
}

impl<S, B> Service<ServiceRequest> for RequestLogService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    S::Future: Unpin,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = Error;
    type Future = Logged<S::Future>;

    forward_ready!(service);

    fn call(&self, mut req: ServiceRequest) -> Logged<S::Future> {
        // Timed only when an access line can be written (its levels are Info and Debug).
        let start =
            log::log_enabled!(target: "gatehouse::access", log::Level::Info).then(Instant::now);
        let in_flight = GaugeGuard::new(&METRICS.in_flight);
        let id = req
            .headers()
            .get(X_REQUEST_ID)
            .and_then(|v| RequestId::from_caller(v.as_bytes()))
            .unwrap_or_else(RequestId::fresh);
        req.extensions_mut().insert(RequestNote::new(id.clone()));
        let body = announces_body(req.headers()).then(|| SharedBody::install(&mut req));
        let trace = crate::telemetry::enabled()
            .then(|| request_span(&req))
            .flatten();
        let state = match guard(&req) {
            Some(refusal) => State::Answered(Some(refusal.respond(req))),
            None => State::Inner(self.service.call(req)),
        };
        Logged {
            state,
            after: Some(After {
                start,
                _in_flight: in_flight,
                id,
                body,
                trace,
            }),
        }
    }
}

/// The future of one request through the layer.
pub struct Logged<F> {
    state: State<F>,
    /// What the response is finished with; taken when it is.
    after: Option<After>,
}

enum State<F> {
    /// The rest of the application is answering.
    Inner(F),
    /// The guard answered.
    Answered(Option<ServiceResponse<BoxBody>>),
    /// The request's body was not read to its end: reading the rest, or closing (rare).
    Settling(LocalBoxFuture<'static, ServiceResponse<BoxBody>>),
}

struct After {
    start: Option<Instant>,
    _in_flight: GaugeGuard,
    id: RequestId,
    body: Option<SharedBody>,
    /// The request's server span, when traces are on: current while the rest answers.
    trace: Option<opentelemetry::Context>,
}

/// ` trace_id=<id>` at the end of an access line when the request is traced; nothing when not.
struct TraceField(Option<String>);

impl std::fmt::Display for TraceField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(id) => write!(f, " trace_id={id}"),
            None => Ok(()),
        }
    }
}

/// Ends a request's span with its status and, when the router matched one, its route.
fn end_request_span(trace: &opentelemetry::Context, req: &HttpRequest, status: u16) {
    use opentelemetry::KeyValue;
    use opentelemetry::trace::TraceContextExt as _;
    let span = trace.span();
    span.set_attribute(KeyValue::new(
        "http.response.status_code",
        i64::from(status),
    ));
    if let Some(route) = req.match_pattern() {
        span.update_name(format!("{} {route}", req.method()));
        span.set_attribute(KeyValue::new("http.route", route));
    }
    let error = (status >= 500).then(|| status.to_string());
    crate::telemetry::end(trace, error.as_deref());
}

/// The server span of a request (HTTP semantic conventions), continuing the client's
/// `traceparent`; probes and metadata documents get none.
fn request_span(req: &ServiceRequest) -> Option<opentelemetry::Context> {
    use opentelemetry::KeyValue;
    let path = req.path();
    if matches!(path, "/health" | "/ready") || path.starts_with("/.well-known/") {
        return None;
    }
    let proxy = req
        .app_data::<actix_web::web::Data<super::GuardSettings>>()
        .map(|g| g.trusted_proxy);
    let client = proxy.and_then(|p| super::client_ip(req, p));
    let mut attributes = vec![
        KeyValue::new("http.request.method", req.method().as_str().to_string()),
        KeyValue::new("url.path", path.chars().take(200).collect::<String>()),
        KeyValue::new("network.protocol.version", "1.1"),
    ];
    if let Some(ip) = client {
        attributes.push(KeyValue::new("client.address", ip.to_string()));
    }
    let parent = crate::telemetry::from_headers(req.headers());
    crate::telemetry::start(
        req.method().as_str().to_string(),
        opentelemetry::trace::SpanKind::Server,
        &parent,
        attributes,
        Vec::new(),
    )
}

impl<F, B> Future for Logged<F>
where
    F: Future<Output = Result<ServiceResponse<B>, Error>> + Unpin,
    B: MessageBody + 'static,
{
    type Output = Result<ServiceResponse<BoxBody>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let _current = this
            .after
            .as_ref()
            .and_then(|a| a.trace.clone())
            .map(|t| t.attach());
        let mut res = match &mut this.state {
            State::Inner(f) => match Pin::new(f).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(res)) => res.map_into_boxed_body(),
            },
            State::Answered(res) => res.take().expect("a finished request is not polled"),
            State::Settling(f) => match f.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(res) => {
                    let after = this.after.take().expect("a finished request is not polled");
                    return Poll::Ready(Ok(after.finish(res)));
                }
            },
        };
        let after = this
            .after
            .as_mut()
            .expect("a finished request is not polled");
        if res.status() == StatusCode::INTERNAL_SERVER_ERROR
            && res.response().extensions().get::<GenericError>().is_none()
        {
            let (http, _) = res.into_parts();
            let trace_id = after.trace.as_ref().and_then(crate::telemetry::trace_id_of);
            let mut generic =
                Refusal::internal(after.id.as_str().to_string(), trace_id).into_response();
            generic.extensions_mut().insert(GenericError);
            res = ServiceResponse::new(http, generic);
        }
        if let Some(body) = after.body.take().filter(|b| !b.finished()) {
            this.state = State::Settling(Box::pin(settle_body(res, body)));
            // Polled at once: the drain may be done already.
            return Pin::new(this).poll(cx);
        }
        let after = this.after.take().expect("taken only here");
        Poll::Ready(Ok(after.finish(res)))
    }
}

impl After {
    /// Security headers, the request id, the request counter and the access line.
    fn finish(self, mut res: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
        let headers = res.headers_mut();
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        if let Ok(id) = HeaderValue::from_maybe_shared(self.id.bytes()) {
            headers.insert(X_REQUEST_ID, id);
        }
        let status = res.status().as_u16();
        self.record(res.request(), status);
        if let Some(trace) = &self.trace {
            end_request_span(trace, res.request(), status);
        }
        res
    }

    /// The request counter and the access line.
    fn record(&self, req: &HttpRequest, status: u16) {
        let extensions = req.extensions();
        let note = extensions.get::<RequestNote>();
        let labels = note.and_then(RequestNote::labels);
        let (era, rpc_method) = labels.map_or(("-", "-"), |l| (l.era, l.method));
        count_request(era, rpc_method, status_label(status));
        let level = if matches!(req.path(), "/health" | "/ready") {
            log::Level::Debug
        } else {
            log::Level::Info
        };
        // The line is built only when it will be written.
        if let Some(start) = self.start
            && log::log_enabled!(target: "gatehouse::access", level)
        {
            let ms = start.elapsed().as_secs_f64() * 1000.0;
            let subject = note
                .and_then(|n| n.caller()?.subject().map(log_safe))
                .unwrap_or_else(|| "-".into());
            let method = req.method();
            let path: String = req.path().chars().take(200).collect();
            let id = self.id.as_str();
            let trace = TraceField(self.trace.as_ref().and_then(crate::telemetry::trace_id_of));
            log::log!(
                target: "gatehouse::access",
                level,
                "{method} {path} {status} {ms:.1}ms request_id={id} sub={subject}{trace}"
            );
        }
    }
}
