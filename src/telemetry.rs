//! Traces (OpenTelemetry): the tracer built from `[telemetry]`, spans exported over OTLP/HTTP
//! from a bounded queue by a thread of their own (a slow, down or refusing collector drops
//! spans, counted, and never delays a request), W3C trace context read from headers and
//! `_meta`, and the helpers the rest of the code starts its spans with. Off (no endpoint):
//! every helper returns at its first branch.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use opentelemetry::context::FutureExt as _;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{
    SpanKind, Status, TraceContextExt as _, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    Sampler as SdkSampler, SdkTracer, SdkTracerProvider, SpanData, SpanExporter as _, SpanProcessor,
};

use crate::config::{Export, Sampler, TelemetrySettings};
use crate::metrics::METRICS;

static ENABLED: AtomicBool = AtomicBool::new(false);
static TRACER: RwLock<Option<SdkTracer>> = RwLock::new(None);
static PROVIDER: Mutex<Option<SdkTracerProvider>> = Mutex::new(None);

/// Spans exported per batch (the longest a span waits for its batch is
/// `telemetry.schedule_delay_ms`).
const BATCH: usize = 512;

/// Whether spans are made at all.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Builds the tracer when an endpoint is configured (the process's one: a later call replaces
/// it, which only tests do).
pub fn init(settings: &TelemetrySettings, instance_id: &str) -> Result<(), String> {
    let Some(export) = &settings.export else {
        return Ok(());
    };
    let mut exporter = exporter(export)?;
    let mut attributes: Vec<KeyValue> = export
        .resource
        .iter()
        .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
        .collect();
    attributes.push(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    attributes.push(KeyValue::new(
        "service.instance.id",
        instance_id.to_string(),
    ));
    let resource = Resource::builder()
        .with_attributes(attributes)
        .with_service_name(settings.service_name.clone())
        .build();
    exporter.set_resource(&resource);
    let provider = SdkTracerProvider::builder()
        .with_sampler(sampler(export.sampler))
        .with_resource(resource)
        .with_span_processor(Queue::start(
            exporter,
            settings.max_queue_size as usize,
            export.schedule_delay,
        ))
        .build();
    let tracer = provider.tracer("gatehouse");
    *TRACER.write().unwrap_or_else(|e| e.into_inner()) = Some(tracer);
    if let Some(old) = PROVIDER
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .replace(provider)
    {
        let _ = old.shutdown_with_timeout(Duration::from_millis(100));
    }
    ENABLED.store(true, Ordering::Relaxed);
    log::info!(
        "traces export to {} ({})",
        crate::text::redact_urls(export.url.as_str()),
        if export.json {
            "http/json"
        } else {
            "http/protobuf"
        }
    );
    Ok(())
}

/// Exports what is queued, waiting at most `timeout` (the drain period at shutdown).
pub fn flush(timeout: Duration) {
    if !enabled() {
        return;
    }
    let provider = PROVIDER.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if let Some(p) = provider {
        let done = std::sync::mpsc::channel::<()>();
        let tx = done.0;
        std::thread::spawn(move || {
            let _ = p.force_flush();
            let _ = tx.send(());
        });
        let _ = done.1.recv_timeout(timeout);
    }
}

fn sampler(s: Sampler) -> SdkSampler {
    match s {
        Sampler::AlwaysOn => SdkSampler::AlwaysOn,
        Sampler::AlwaysOff => SdkSampler::AlwaysOff,
        Sampler::Ratio(r) => SdkSampler::TraceIdRatioBased(r),
        Sampler::ParentBasedAlwaysOn => SdkSampler::ParentBased(Box::new(SdkSampler::AlwaysOn)),
        Sampler::ParentBasedAlwaysOff => SdkSampler::ParentBased(Box::new(SdkSampler::AlwaysOff)),
        Sampler::ParentBasedRatio(r) => {
            SdkSampler::ParentBased(Box::new(SdkSampler::TraceIdRatioBased(r)))
        }
    }
}

fn exporter(export: &Export) -> Result<opentelemetry_otlp::SpanExporter, String> {
    let headers: HashMap<String, String> = export
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.expose().to_string()))
        .collect();
    let client = crate::outbound::client(export.timeout)
        .build()
        .map_err(|e| format!("the OTLP client: {e}"))?;
    opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(Client(client))
        .with_endpoint(export.url.as_str())
        .with_protocol(if export.json {
            Protocol::HttpJson
        } else {
            Protocol::HttpBinary
        })
        .with_timeout(export.timeout)
        .with_headers(headers)
        .build()
        .map_err(|e| format!("the OTLP exporter: {e}"))
}

/// The exporter's HTTP client: the reqwest this binary already has (the exporter's own would
/// bring another version), run by the export thread's runtime.
#[derive(Debug)]
struct Client(reqwest::Client);

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for Client {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let (parts, body) = request.into_parts();
        let url = parts.uri.to_string();
        let mut req = self.0.request(parts.method, url).body(body);
        for (name, value) in &parts.headers {
            req = req.header(name, value);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.bytes().await?;
        let mut out = http::Response::builder().status(status);
        for (name, value) in &headers {
            out = out.header(name, value);
        }
        Ok(out.body(body)?)
    }
}

/// What the export thread is sent.
enum Message {
    Span(Box<SpanData>),
    Flush(std::sync::mpsc::Sender<()>),
}

/// The span processor: ended spans go into a bounded queue (full: dropped and counted, never
/// waited on); a thread exports them in batches of [`BATCH`] or once the oldest has waited the
/// schedule delay.
#[derive(Debug)]
struct Queue {
    tx: SyncSender<Message>,
}

impl Queue {
    fn start(
        exporter: opentelemetry_otlp::SpanExporter,
        capacity: usize,
        delay: Duration,
    ) -> Queue {
        let (tx, rx) = std::sync::mpsc::sync_channel(capacity);
        std::thread::Builder::new()
            .name("gatehouse-otlp".into())
            .spawn(move || export_loop(exporter, rx, delay))
            .expect("the export thread starts");
        Queue { tx }
    }
}

fn dropped(reason: &'static str, n: usize) {
    METRICS
        .spans_dropped
        .with_label_values(&[reason])
        .inc_by(n as u64);
}

impl SpanProcessor for Queue {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        match self.tx.try_send(Message::Span(Box::new(span))) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => dropped("queue_full", 1),
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        let (tx, rx) = std::sync::mpsc::channel();
        if self.tx.send(Message::Flush(tx)).is_ok() {
            let _ = rx.recv();
        }
        Ok(())
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let (tx, rx) = std::sync::mpsc::channel();
        if self.tx.try_send(Message::Flush(tx)).is_ok() {
            let _ = rx.recv_timeout(timeout);
        }
        Ok(())
    }

    fn set_resource(&mut self, _resource: &Resource) {}
}

/// The export thread: batches spans and exports each batch on a runtime of its own; a batch
/// the collector refuses or does not take in time is dropped (counted).
fn export_loop(exporter: opentelemetry_otlp::SpanExporter, rx: Receiver<Message>, delay: Duration) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        log::error!("the trace export thread has no runtime: spans are dropped");
        return;
    };
    let mut batch: Vec<SpanData> = Vec::with_capacity(BATCH);
    // When the oldest waiting span's batch is due; none waits, the thread sleeps until one
    // comes (an idle instance's export thread never wakes).
    let mut due: Option<Instant> = None;
    loop {
        let message = match due {
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
        };
        let flush = match message {
            Ok(Message::Span(span)) => {
                due.get_or_insert_with(|| Instant::now() + delay);
                batch.push(*span);
                batch.len() >= BATCH
            }
            Ok(Message::Flush(ack)) => {
                send(&rt, &exporter, &mut batch);
                due = None;
                let _ = ack.send(());
                continue;
            }
            Err(RecvTimeoutError::Timeout) => true,
            Err(RecvTimeoutError::Disconnected) => {
                send(&rt, &exporter, &mut batch);
                return;
            }
        };
        if flush {
            send(&rt, &exporter, &mut batch);
            due = None;
        }
    }
}

fn send(
    rt: &tokio::runtime::Runtime,
    exporter: &opentelemetry_otlp::SpanExporter,
    batch: &mut Vec<SpanData>,
) {
    if batch.is_empty() {
        return;
    }
    let spans = std::mem::take(batch);
    let n = spans.len();
    if let Err(e) = rt.block_on(exporter.export(spans)) {
        dropped("export_failed", n);
        log::debug!("a batch of {n} spans was not exported: {e}");
    }
}

// ---- context ----

/// W3C trace context from HTTP headers.
struct Headers<'a>(&'a actix_web::http::header::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// W3C trace context from a request's `_meta` (`traceparent`, `tracestate`).
struct Meta<'a>(&'a serde_json::Map<String, serde_json::Value>);

impl Extractor for Meta<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.as_str())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// The context a request's `traceparent`/`tracestate` headers continue (empty without them).
pub fn from_headers(headers: &actix_web::http::header::HeaderMap) -> Context {
    TraceContextPropagator::new().extract(&Headers(headers))
}

/// The context a message's `_meta` continues, when it carries a valid `traceparent`.
pub fn from_meta(meta: &serde_json::Map<String, serde_json::Value>) -> Option<Context> {
    meta.get("traceparent")?;
    let cx = TraceContextPropagator::new().extract(&Meta(meta));
    cx.span().span_context().is_valid().then_some(cx)
}

/// A span started as a child of `parent` (or a root span), as the context that holds it.
pub fn start(
    name: impl Into<Cow<'static, str>>,
    kind: SpanKind,
    parent: &Context,
    attributes: Vec<KeyValue>,
    links: Vec<opentelemetry::trace::Link>,
) -> Option<Context> {
    if !enabled() {
        return None;
    }
    let guard = TRACER.read().unwrap_or_else(|e| e.into_inner());
    let tracer = guard.as_ref()?;
    let span = tracer
        .span_builder(name)
        .with_kind(kind)
        .with_attributes(attributes)
        .with_links(links)
        .start_with_context(tracer, parent);
    Some(parent.with_span(span))
}

/// Ends the span `cx` holds, marking it failed with `error` (`error.type`) when given.
pub fn end(cx: &Context, error: Option<&str>) {
    let span = cx.span();
    if let Some(error) = error {
        span.set_attribute(KeyValue::new("error.type", error.to_string()));
        span.set_status(Status::error(error.to_string()));
    }
    span.end();
}

/// Marks the current span failed with `error_type` (`error.type`), without ending it.
pub fn mark_error(error_type: &str) {
    let cx = Context::current();
    let span = cx.span();
    span.set_attribute(KeyValue::new("error.type", error_type.to_string()));
    span.set_status(Status::error(error_type.to_string()));
}

/// Adds an event naming an MCP method (`mcp.method.name`) to the current span.
pub fn event(name: &'static str, method: &'static str) {
    Context::current()
        .span()
        .add_event(name, vec![KeyValue::new("mcp.method.name", method)]);
}

/// Runs `work` in an internal child span of the current context named `name`; the span ends
/// with it, failed when it returns `Err` (its `error_type`). Its `attributes` are built only
/// when traces are on.
pub async fn traced<T, E, F>(
    name: &'static str,
    attributes: impl FnOnce() -> Vec<KeyValue>,
    work: F,
    error_type: impl Fn(&E) -> String,
) -> Result<T, E>
where
    F: std::future::Future<Output = Result<T, E>>,
{
    if !enabled() {
        return work.await;
    }
    let Some(cx) = start(
        name,
        SpanKind::Client,
        &Context::current(),
        attributes(),
        Vec::new(),
    ) else {
        return work.await;
    };
    let out = work.with_context(cx.clone()).await;
    end(&cx, out.as_ref().err().map(&error_type).as_deref());
    out
}

/// The current trace id (32 hex digits), when a span is being recorded.
pub fn trace_id() -> Option<String> {
    if !enabled() {
        return None;
    }
    trace_id_of(&Context::current())
}

/// The trace id of `cx`'s span, when it has a valid one.
pub fn trace_id_of(cx: &Context) -> Option<String> {
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid().then(|| sc.trace_id().to_string())
}

/// The current span as a W3C `traceparent` value, for a tool's outgoing calls.
pub fn traceparent() -> Option<String> {
    if !enabled() {
        return None;
    }
    let cx = Context::current();
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        )
    })
}
