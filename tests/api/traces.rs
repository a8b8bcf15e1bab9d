//! Traces over OTLP/HTTP, checked at a local receiver that decodes what gatehouse exports: the
//! request's server span continuing the client's `traceparent`, the message span (MCP semantic
//! conventions) and the tool's run as its children, `_meta`'s context winning over the
//! headers', the trace id in the access and audit lines and in 500 bodies, nothing secret in
//! the export, and a dead or hanging collector that changes no response.
//!
//! The tracer is the process's one: these tests take turns (`TURN`), and find their own spans
//! by trace id among whatever other tests' apps send meanwhile.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use serde_json::{Value, json};

use crate::helpers::{TestApp, log_lines, spawn_with_issuer};

static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What the receiver got: every span (with its resource's service name), and the raw bodies.
#[derive(Default)]
struct Received {
    spans: Vec<(String, Span)>,
    bodies: Vec<Vec<u8>>,
    json_bodies: usize,
}

/// A local OTLP/HTTP receiver (`POST /v1/traces`, protobuf or JSON), or one that never answers.
struct Receiver {
    url: String,
    got: Arc<Mutex<Received>>,
    _handle: actix_web::dev::ServerHandle,
}

async fn receive(
    got: web::Data<Mutex<Received>>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let json = req
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let mut g = got.lock().unwrap();
    g.bodies.push(body.to_vec());
    if json {
        g.json_bodies += 1;
        return HttpResponse::Ok().json(json!({}));
    }
    let Ok(export) = ExportTraceServiceRequest::decode(body.as_ref()) else {
        return HttpResponse::BadRequest().finish();
    };
    for rs in export.resource_spans {
        let service = rs
            .resource
            .iter()
            .flat_map(|r| r.attributes.iter())
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| text(kv.value.as_ref()?.value.as_ref()?))
            .unwrap_or_default();
        for ss in rs.scope_spans {
            for span in ss.spans {
                g.spans.push((service.clone(), span));
            }
        }
    }
    HttpResponse::Ok()
        .content_type("application/x-protobuf")
        .finish()
}

fn text(v: &Any) -> Option<String> {
    match v {
        Any::StringValue(s) => Some(s.clone()),
        Any::IntValue(i) => Some(i.to_string()),
        Any::BoolValue(b) => Some(b.to_string()),
        Any::DoubleValue(d) => Some(d.to_string()),
        _ => None,
    }
}

impl Receiver {
    async fn start(hang: bool) -> Receiver {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let got = Arc::new(Mutex::new(Received::default()));
        let data = web::Data::from(got.clone());
        let server = HttpServer::new(move || {
            let app = App::new().app_data(data.clone());
            if hang {
                app.route(
                    "/v1/traces",
                    web::post().to(|| async {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        HttpResponse::Ok().finish()
                    }),
                )
            } else {
                app.route("/v1/traces", web::post().to(receive))
            }
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Receiver {
            url,
            got,
            _handle: handle,
        }
    }

    /// The spans of trace `trace` (hex), once `n` of them arrived (within 10 s).
    async fn trace(&self, trace: &str, n: usize) -> Vec<Span> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let spans: Vec<Span> = self
                .got
                .lock()
                .unwrap()
                .spans
                .iter()
                .filter(|(_, s)| hex(&s.trace_id) == trace)
                .map(|(_, s)| s.clone())
                .collect();
            if spans.len() >= n || Instant::now() > deadline {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn attr(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| text(kv.value.as_ref()?.value.as_ref()?))
}

fn named<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span {name:?} in {:?}", names(spans)))
}

fn names(spans: &[Span]) -> Vec<&str> {
    spans.iter().map(|s| s.name.as_str()).collect()
}

/// A random 32-hex-digit trace id and a 16-digit span id.
fn ids() -> (String, String) {
    let mut b = [0u8; 24];
    aws_lc_rs::rand::fill(&mut b).unwrap();
    (hex(&b[..16]), hex(&b[16..]))
}

/// POSTs `body` to the MCP endpoint with a fresh `traceparent`: the response and the trace
/// and parent span ids it named.
async fn send_traced(
    app: &TestApp,
    token: Option<&str>,
    body: &Value,
) -> (crate::helpers::Resp, String, String) {
    let (trace, parent) = ids();
    let r = app
        .send(
            app.mcp(token)
                .header("traceparent", format!("00-{trace}-{parent}-01"))
                .body(body.to_string()),
        )
        .await;
    (r, trace, parent)
}

async fn traced_app(receiver: &Receiver, more: &[(&str, &str)]) -> TestApp {
    let mut vars = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url.as_str()),
        ("OTEL_SERVICE_NAME", "gatehouse-test"),
        // Batches leave at once: each test waits for its spans, not for a schedule.
        ("OTEL_BSP_SCHEDULE_DELAY", "20"),
    ];
    vars.extend_from_slice(more);
    spawn_with_issuer(&vars).await
}

#[actix_web::test]
async fn a_traced_tool_call_is_one_trace_with_the_clients_parent() {
    let _turn = TURN.lock().await;
    let receiver = Receiver::start(false).await;
    let app = traced_app(&receiver, &[]).await;
    let token = app.token("ada", &[]);
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "greet_user", "arguments": {"name": "Zq-private-argument"}}});
    let (r, trace, parent) = send_traced(&app, Some(&token), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let spans = receiver.trace(&trace, 3).await;
    let http = named(&spans, "POST /mcp");
    assert_eq!(
        hex(&http.parent_span_id),
        parent,
        "continues the client's span"
    );
    assert_eq!(http.kind, 2, "a server span");
    assert_eq!(attr(http, "http.request.method").as_deref(), Some("POST"));
    assert_eq!(attr(http, "http.route").as_deref(), Some("/mcp"));
    assert_eq!(
        attr(http, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(attr(http, "client.address").as_deref(), Some("127.0.0.1"));
    let message = named(&spans, "tools/call greet_user");
    assert_eq!(message.parent_span_id, http.span_id);
    assert_eq!(message.kind, 2);
    assert_eq!(
        attr(message, "mcp.method.name").as_deref(),
        Some("tools/call")
    );
    assert_eq!(attr(message, "jsonrpc.request.id").as_deref(), Some("7"));
    assert_eq!(
        attr(message, "mcp.protocol.version").as_deref(),
        Some("2025-03-26")
    );
    assert_eq!(
        attr(message, "gen_ai.tool.name").as_deref(),
        Some("greet_user")
    );
    assert_eq!(
        attr(message, "gen_ai.operation.name").as_deref(),
        Some("execute_tool")
    );
    assert_eq!(attr(message, "error.type"), None);
    let run = named(&spans, "execute_tool greet_user");
    assert_eq!(run.parent_span_id, message.span_id);
    // The resource names the service; nothing secret is anywhere in the export.
    let got = receiver.got.lock().unwrap();
    assert!(
        got.spans
            .iter()
            .any(|(service, s)| service == "gatehouse-test" && hex(&s.trace_id) == trace)
    );
    let all: Vec<u8> = got.bodies.concat();
    let signature = token.rsplit('.').next().unwrap();
    for secret in [signature, "Zq-private-argument", "Hi Zq"] {
        assert!(
            !all.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} was exported"
        );
    }
    drop(got);
    // The access and audit lines carry the trace id.
    let lines = log_lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("gatehouse::access") && l.contains(&format!("trace_id={trace}"))),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("gatehouse::audit") && l.contains(&trace)),
        "{lines:?}"
    );
}

#[actix_web::test]
async fn meta_trace_context_wins_over_the_headers_and_links_the_request() {
    let _turn = TURN.lock().await;
    let receiver = Receiver::start(false).await;
    let app = traced_app(&receiver, &[]).await;
    let (header_trace, header_parent) = ids();
    let (meta_trace, meta_parent) = ids();
    let token = app.token("ada", &[]);
    let body = json!({"jsonrpc": "2.0", "id": "m-1", "method": "tools/call",
        "params": {"name": "greet_user", "arguments": {"name": "Ada"},
                   "_meta": {"traceparent": format!("00-{meta_trace}-{meta_parent}-01")}}});
    let r = app
        .send(
            app.mcp(Some(&token))
                .header(
                    "traceparent",
                    format!("00-{header_trace}-{header_parent}-01"),
                )
                .body(body.to_string()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let message = receiver.trace(&meta_trace, 2).await;
    let span = named(&message, "tools/call greet_user");
    assert_eq!(hex(&span.parent_span_id), meta_parent);
    assert_eq!(attr(span, "jsonrpc.request.id").as_deref(), Some("m-1"));
    named(&message, "execute_tool greet_user");
    let http = receiver.trace(&header_trace, 1).await;
    let http = named(&http, "POST /mcp");
    assert_eq!(hex(&http.parent_span_id), header_parent);
    assert!(
        span.links.iter().any(|l| l.span_id == http.span_id),
        "the message span links the request's"
    );
}

#[actix_web::test]
async fn failures_carry_error_type() {
    let _turn = TURN.lock().await;
    let receiver = Receiver::start(false).await;
    let app = traced_app(&receiver, &[]).await;
    let token = app.token("ada", &["admin"]);
    let mut traces = Vec::new();
    for (name, args) in [
        ("no_such_tool", json!({})),
        ("greet_user", json!({"name": 5})),
    ] {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": name, "arguments": args}});
        let (r, trace, _) = send_traced(&app, Some(&token), &body).await;
        assert_eq!(r.status, 200, "{}", r.text);
        traces.push((name, trace));
    }
    let unknown = receiver.trace(&traces[0].1, 2).await;
    let span = named(&unknown, "tools/call no_such_tool");
    assert_eq!(attr(span, "error.type").as_deref(), Some("-32602"));
    let invalid = receiver.trace(&traces[1].1, 2).await;
    let span = named(&invalid, "tools/call greet_user");
    assert_eq!(attr(span, "error.type").as_deref(), Some("tool_error"));
    assert_eq!(span.status.as_ref().map(|s| s.code), Some(2));
}

#[actix_web::test]
async fn json_export_works_too() {
    let _turn = TURN.lock().await;
    let receiver = Receiver::start(false).await;
    let app = traced_app(&receiver, &[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]).await;
    let token = app.token("ada", &[]);
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    let (r, trace, _) = send_traced(&app, Some(&token), &ping).await;
    assert_eq!(r.status, 200);
    // Other tests' servers share the process's tracer: find the batch that holds this trace.
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        let found = {
            let got = receiver.got.lock().unwrap();
            got.bodies
                .iter()
                .rev()
                .find(|b| String::from_utf8_lossy(b).contains(&trace))
                .cloned()
        };
        match found {
            Some(b) => break b,
            None if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            None => panic!("no JSON batch holds trace {trace}"),
        }
    };
    assert!(receiver.got.lock().unwrap().json_bodies > 0);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert!(body["resourceSpans"].is_array(), "{body}");
    assert!(body.to_string().contains("\"ping\""), "{body}");
}

#[actix_web::test]
async fn a_dead_or_hanging_collector_changes_no_response() {
    let _turn = TURN.lock().await;
    let hanging = Receiver::start(true).await;
    let dead = format!("http://127.0.0.1:{}", crate::helpers::free_port());
    for url in [hanging.url.as_str(), dead.as_str()] {
        let app = spawn_with_issuer(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", url),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "4"),
            ("OTEL_BSP_SCHEDULE_DELAY", "20"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "30000"),
            ("GATEHOUSE_RATE_LIMIT__ENABLED", "false"),
        ])
        .await;
        let token = app.token("ada", &[]);
        for i in 0..40 {
            if i == 20 {
                // By now the export thread waits on the collector (its first batch was due
                // 20 ms after the first span; a clock, since a dead collector sends no
                // event): the queue of 4 fills, and more spans are dropped.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let started = Instant::now();
            let r = app
                .call_tool(Some(&token), "greet_user", json!({"name": "Ada"}))
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            assert!(r.text.contains("Hi Ada"));
            // Export waits on nothing a request does: far under the export's 30 s timeout.
            assert!(started.elapsed() < Duration::from_secs(2), "{url}");
        }
    }
    // The full queue dropped spans, and said so.
    let r = crate::helpers::spawn_app(&[("GATEHOUSE_SERVER__METRICS_PORT", "0")]).await;
    let _ = r;
    let text = gatehouse::metrics::text();
    let dropped: f64 = text
        .lines()
        .filter(|l| l.starts_with("gatehouse_spans_dropped_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(dropped > 0.0, "{text}");
}

#[actix_web::test]
async fn a_500_body_names_the_trace() {
    let _turn = TURN.lock().await;
    let receiver = Receiver::start(false).await;
    let app = traced_app(&receiver, &[]).await;
    let (trace, parent) = ids();
    let r = app
        .send(
            app.client
                .get(format!("{}/__fixtures/fail", app.base))
                .header("traceparent", format!("00-{trace}-{parent}-01")),
        )
        .await;
    assert_eq!(r.status, 500);
    assert_eq!(r.json()["trace_id"], trace, "{}", r.text);
    assert_eq!(
        r.json()["request_id"],
        r.header("x-request-id").unwrap().as_str()
    );
    let spans = receiver.trace(&trace, 1).await;
    let span = named(&spans, "GET /__fixtures/fail");
    assert_eq!(attr(span, "error.type").as_deref(), Some("500"));
}

#[actix_web::test]
async fn a_tool_reads_its_trace_and_adds_spans_and_the_gates_work_is_traced() {
    let _turn = TURN.lock().await;
    let receiver = Receiver::start(false).await;
    let app = traced_app(
        &receiver,
        &[
            ("GATEHOUSE_AUTH__INTROSPECTION", "opaque"),
            ("SK_CLIENT_ID", crate::issuer::INTROSPECTION_CLIENT.0),
            ("SK_CLIENT_SECRET", crate::issuer::INTROSPECTION_CLIENT.1),
        ],
    )
    .await;
    let opaque = "opq-traced-token";
    app.issuer().set_answer(
        opaque,
        json!({"active": true, "iss": app.issuer().url, "aud": app.resource, "sub": "ada",
               "exp": crate::issuer::now() + 300}),
    );
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "fixture_whoami", "arguments": {}}});
    let (r, trace, _) = send_traced(&app, Some(opaque), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let me = r.json()["result"]["structuredContent"].clone();
    assert_eq!(me["trace_id"], trace);
    let spans = receiver.trace(&trace, 5).await;
    let http = named(&spans, "POST /mcp");
    let introspection = named(&spans, "POST token introspection");
    assert_eq!(introspection.parent_span_id, http.span_id);
    let run = named(&spans, "execute_tool fixture_whoami");
    let step = named(&spans, "fixture step");
    assert_eq!(step.parent_span_id, run.span_id);
    // The tool's traceparent names its run; inside its own span, that span.
    assert_eq!(
        me["traceparent"],
        format!("00-{trace}-{}-01", hex(&run.span_id))
    );
    assert_eq!(
        me["step_traceparent"],
        format!("00-{trace}-{}-01", hex(&step.span_id))
    );
    // A key set refetch for an unknown kid is traced inside the request that caused it.
    let mut header = app.rsa().header();
    header["kid"] = json!("kid-nobody-has");
    let stranger = app.rsa().sign_raw(&header, &app.claims("eve", &[]));
    let ping = json!({"jsonrpc": "2.0", "id": 2, "method": "ping"});
    let (r, trace, _) = send_traced(&app, Some(&stranger), &ping).await;
    assert_eq!(r.status, 401);
    let spans = receiver.trace(&trace, 2).await;
    let http = named(&spans, "POST /mcp");
    assert_eq!(
        attr(http, "http.response.status_code").as_deref(),
        Some("401")
    );
    let fetch = named(&spans, "GET key set");
    assert_eq!(fetch.parent_span_id, http.span_id);
}

/// The request counter's `method` label comes from the dispatcher's one list of methods: every
/// method served, in its era, is counted under its own name (never `other`).
#[actix_web::test]
async fn every_served_method_has_its_metric_label() {
    use gatehouse::mcp::model::Method;
    let app = spawn_with_issuer(&[("GATEHOUSE_RATE_LIMIT__ENABLED", "false")]).await;
    let token = app.token("ada", &["admin"]);
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    for m in Method::ALL {
        let name = m.name();
        let rb = if m.in_modern_era() {
            crate::modern::modern(
                &app,
                Some(&token),
                json!(1),
                name,
                &crate::modern::with_meta(json!({})),
            )
        } else {
            app.mcp(Some(&token))
                .body(json!({"jsonrpc": "2.0", "id": 1, "method": name, "params": {}}).to_string())
        };
        // A listen request answers with a stream that stays open: headers are enough.
        let rb = client
            .request(reqwest::Method::POST, format!("{}/mcp", app.base))
            .headers(rb.build().unwrap().headers().clone());
        let body = if m.in_modern_era() {
            json!({"jsonrpc": "2.0", "id": 1, "method": name, "params": crate::modern::with_meta(json!({}))})
        } else {
            json!({"jsonrpc": "2.0", "id": 1, "method": name, "params": {}})
        };
        let _ = rb.body(body.to_string()).send().await;
    }
    let text = gatehouse::metrics::text();
    for m in Method::ALL {
        let label = format!("method=\"{}\"", m.name());
        assert!(
            text.lines()
                .any(|l| l.starts_with("gatehouse_requests_total") && l.contains(&label)),
            "{label} missing:\n{}",
            text.lines()
                .filter(|l| l.starts_with("gatehouse_requests_total"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

#[actix_web::test]
async fn a_question_is_an_event_on_the_tools_span() {
    let _turn = TURN.lock().await;
    let receiver = Receiver::start(false).await;
    let app = traced_app(&receiver, &[]).await;
    let token = app.token("ada", &[]);
    let (trace, parent) = ids();
    let params = json!({
        "name": "test_input_required_result_multi_round", "arguments": {},
        "_meta": crate::modern::meta(json!({"elicitation": {}}))
    });
    let r = app
        .send(
            crate::modern::modern(&app, Some(&token), json!(3), "tools/call", &params)
                .header("traceparent", format!("00-{trace}-{parent}-01")),
        )
        .await;
    assert_eq!(
        r.json()["result"]["resultType"],
        "input_required",
        "{}",
        r.text
    );
    let spans = receiver.trace(&trace, 3).await;
    let run = named(
        &spans,
        "execute_tool test_input_required_result_multi_round",
    );
    let event = run
        .events
        .iter()
        .find(|e| e.name == "question asked")
        .expect("the question is an event");
    assert!(event.attributes.iter().any(|kv| {
        kv.key == "mcp.method.name"
            && kv
                .value
                .as_ref()
                .and_then(|v| text(v.value.as_ref()?))
                .as_deref()
                == Some("elicitation/create")
    }));
    let message = named(&spans, "tools/call test_input_required_result_multi_round");
    assert_eq!(
        attr(message, "mcp.protocol.version").as_deref(),
        Some("2026-07-28")
    );
}

/// The voluntary context switches of the process's export thread (`gatehouse-otlp`).
fn export_thread_wakeups(pid: u32) -> u64 {
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let dir = task.unwrap().path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() == "gatehouse-otlp" {
            let status = std::fs::read_to_string(dir.join("status")).unwrap();
            return status
                .lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap();
        }
    }
    panic!("no gatehouse-otlp thread in process {pid}");
}

#[actix_web::test]
async fn an_idle_instance_export_thread_sleeps() {
    // A process of its own: the in-process tracer is shared with the other tests.
    let receiver = Receiver::start(false).await;
    let port = crate::helpers::free_port();
    let mut child = crate::process::gatehouse(&[
        ("PORT", &port.to_string()),
        ("GATEHOUSE_AUTH__ENABLED", "false"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.url),
        ("OTEL_BSP_SCHEDULE_DELAY", "10"),
    ])
    .spawn()
    .unwrap();
    crate::process::wait_up(port).await;
    let ping = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/mcp"))
        .header("content-type", "application/json")
        .header("accept", crate::helpers::ACCEPT_BOTH)
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(ping.status(), 200);
    // Its spans leave within the delay; then nothing is waiting.
    let deadline = Instant::now() + Duration::from_secs(10);
    while receiver.got.lock().unwrap().spans.is_empty() {
        assert!(Instant::now() < deadline, "the ping's spans never came");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = export_thread_wakeups(child.id());
    // Idleness is the absence of events: it takes a clock. Waking every 10 ms would be 50.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = export_thread_wakeups(child.id());
    let _ = child.kill();
    let _ = child.wait();
    assert!(after - before <= 2, "{} wakeups while idle", after - before);
}
