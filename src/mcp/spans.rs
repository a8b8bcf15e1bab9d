//! The dispatcher's spans (OpenTelemetry's MCP semantic conventions): one server span per
//! JSON-RPC message, continued from its `_meta` trace context when it has one (else from the
//! HTTP request's span), and an internal span for a tool's run. Attributes name methods, ids,
//! tools, prompts and resources; never an argument, a result or a token.

use opentelemetry::trace::{Link, SpanKind, TraceContextExt as _};
use opentelemetry::{Context, KeyValue};

use super::Outcome;
use super::model::Request;
use crate::jsonrpc::{Id, Response};
use crate::revision::Era;
use crate::telemetry;

/// The server span of one message, when traces are on.
pub fn message(req: &Request, era: Era) -> Option<Context> {
    if !telemetry::enabled() {
        return None;
    }
    let method = req.method.as_ref();
    let id = match &req.id {
        Id::Str(s) => s.chars().take(256).collect::<String>(),
        Id::Int(n) => n.to_string(),
    };
    let mut attributes = vec![
        KeyValue::new(
            "mcp.method.name",
            method.chars().take(64).collect::<String>(),
        ),
        KeyValue::new("jsonrpc.request.id", id),
        KeyValue::new("mcp.protocol.version", era.version()),
        KeyValue::new("jsonrpc.protocol.version", "2.0"),
    ];
    let target = match method {
        "tools/call" => req.name("name").inspect(|n| {
            attributes.push(KeyValue::new("gen_ai.tool.name", n.to_string()));
            attributes.push(KeyValue::new("gen_ai.operation.name", "execute_tool"));
        }),
        "prompts/get" => req.name("name").inspect(|n| {
            attributes.push(KeyValue::new("gen_ai.prompt.name", n.to_string()));
        }),
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
            req.name("uri").inspect(|u| {
                attributes.push(KeyValue::new("mcp.resource.uri", u.to_string()));
            })
        }
        _ => None,
    };
    let name = match target {
        Some(t) => format!("{method} {}", t.chars().take(128).collect::<String>()),
        None => method.chars().take(64).collect(),
    };
    // `_meta`'s context wins over the HTTP headers' (it names the client's own span for this
    // message); the HTTP request's span is then linked.
    let current = Context::current();
    let (parent, links) = match req.meta().and_then(telemetry::from_meta) {
        Some(meta) => {
            let http = current.span().span_context().clone();
            let links = if http.is_valid() {
                vec![Link::with_context(http)]
            } else {
                Vec::new()
            };
            (meta, links)
        }
        None => (current, Vec::new()),
    };
    telemetry::start(name, SpanKind::Server, &parent, attributes, links)
}

/// Ends a message's span with what its outcome says went wrong (the JSON-RPC error code as
/// `error.type`), unless the audit already said so.
pub fn end(cx: &Context, outcome: &Outcome) {
    let code = match outcome {
        Outcome::Response(Response::Error { error, .. }) => Some(error.code.0.to_string()),
        Outcome::Refused(r) => Some(r.error.to_error().code.0.to_string()),
        Outcome::Response(_) => None,
    };
    if let Some(code) = code {
        cx.span()
            .set_attribute(KeyValue::new("rpc.response.status_code", code.clone()));
        telemetry::end(cx, Some(&code));
    } else {
        telemetry::end(cx, None);
    }
}

/// An internal span for a tool's run (its handler, the questions it asks, its task's life),
/// child of the current message span.
pub fn tool_run(tool: &str) -> Option<Context> {
    if !telemetry::enabled() {
        return None;
    }
    telemetry::start(
        format!("execute_tool {tool}"),
        SpanKind::Internal,
        &Context::current(),
        vec![
            KeyValue::new("gen_ai.tool.name", tool.to_string()),
            KeyValue::new("gen_ai.operation.name", "execute_tool"),
        ],
        Vec::new(),
    )
}

/// A message's work, polled with its span current, and the span ended with its outcome.
pub struct Spanned<F> {
    work: std::pin::Pin<Box<opentelemetry::context::WithContext<F>>>,
    cx: Context,
}

impl<F: std::future::Future<Output = Outcome>> Spanned<F> {
    pub fn new(work: F, cx: Context) -> Spanned<F> {
        use opentelemetry::context::FutureExt as _;
        Spanned {
            work: Box::pin(work.with_context(cx.clone())),
            cx,
        }
    }
}

impl<F: std::future::Future<Output = Outcome>> std::future::Future for Spanned<F> {
    type Output = Outcome;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        task: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Outcome> {
        let outcome = std::task::ready!(self.work.as_mut().poll(task));
        end(&self.cx, &outcome);
        std::task::Poll::Ready(outcome)
    }
}
