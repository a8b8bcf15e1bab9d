//! Prometheus metrics: the one registry and the metrics gatehouse records (served by
//! `metrics_endpoint`, off by default, never the public port). Every
//! label value is bounded: eras and methods from fixed lists, tool names from the registry,
//! reasons from enums; never subjects or raw paths.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::LazyLock;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

use crate::hashing::BuildFold;

/// Every metric gatehouse records.
pub struct Metrics {
    registry: Registry,
    /// MCP endpoint requests by protocol era (revision or `-`), JSON-RPC method and status.
    pub requests: IntCounterVec,
    /// Tool calls by tool and outcome (`ok`, `tool_error`, `input_required`, `error`, `refused`,
    /// `cancelled`).
    pub tool_calls: IntCounterVec,
    /// Tool call latency by tool.
    pub tool_seconds: HistogramVec,
    /// Authentication and authorization refusals by reason.
    pub auth_refusals: IntCounterVec,
    /// Key set fetches by result (`ok`, `error`).
    pub jwks_fetches: IntCounterVec,
    /// Token introspection calls by result (active, inactive, error).
    pub introspections: IntCounterVec,
    /// Spans not exported, by reason (the queue was full, the collector failed).
    pub spans_dropped: IntCounterVec,
    /// Seconds since the key set in force was fetched (set at scrape time).
    pub jwks_age: IntGauge,
    /// Usable keys in force (set at scrape time).
    pub jwks_keys: IntGauge,
    /// Rate-limit refusals by budget (`requests`, `tool_calls`).
    pub rate_limited: IntCounterVec,
    /// Requests being handled now.
    pub in_flight: IntGauge,
    /// SSE response streams open now.
    pub open_streams: IntGauge,
    /// 1 while the shared store (REDIS_URL) answers, 0 while budgets fall back.
    pub shared_store_up: IntGauge,
    /// Budget checks the shared store did not answer in time.
    pub shared_store_fallbacks: IntCounter,
    /// Tasks created (2026-07-28 tasks extension).
    pub tasks_created: IntCounter,
    /// Tasks that ended, by terminal status, with their duration from creation.
    pub task_seconds: HistogramVec,
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("metric definition");
    r.register(Box::new(c.clone()))
        .expect("metric registers once");
    c
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("metric definition");
    r.register(Box::new(g.clone()))
        .expect("metric registers once");
    g
}

/// The process-wide metrics.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let r = Registry::new();
    let tool_seconds = HistogramVec::new(
        HistogramOpts::new("gatehouse_tool_call_duration_seconds", "Tool call latency").buckets(
            vec![
                0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0,
            ],
        ),
        &["tool"],
    )
    .expect("metric definition");
    r.register(Box::new(tool_seconds.clone()))
        .expect("metric registers once");
    let task_seconds = HistogramVec::new(
        HistogramOpts::new(
            "gatehouse_task_duration_seconds",
            "Tasks that ended, by terminal status, from creation",
        )
        .buckets(vec![
            1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0,
        ]),
        &["status"],
    )
    .expect("metric definition");
    r.register(Box::new(task_seconds.clone()))
        .expect("metric registers once");
    let tasks_created = IntCounter::new("gatehouse_tasks_created_total", "Tasks created")
        .expect("metric definition");
    r.register(Box::new(tasks_created.clone()))
        .expect("metric registers once");
    let m = Metrics {
        tasks_created,
        task_seconds,
        requests: counter(
            &r,
            "gatehouse_requests_total",
            "MCP endpoint requests by protocol era, JSON-RPC method and HTTP status",
            &["era", "method", "status"],
        ),
        tool_calls: counter(
            &r,
            "gatehouse_tool_calls_total",
            "Tool calls by tool and outcome",
            &["tool", "outcome"],
        ),
        tool_seconds,
        auth_refusals: counter(
            &r,
            "gatehouse_auth_refusals_total",
            "Requests refused by authentication or authorization, by reason",
            &["reason"],
        ),
        jwks_fetches: counter(
            &r,
            "gatehouse_jwks_fetches_total",
            "Key set fetches by result",
            &["result"],
        ),
        introspections: counter(
            &r,
            "gatehouse_introspections_total",
            "Token introspection calls by result",
            &["result"],
        ),
        spans_dropped: counter(
            &r,
            "gatehouse_spans_dropped_total",
            "Trace spans not exported, by reason (queue_full, export_failed)",
            &["reason"],
        ),
        jwks_age: gauge(
            &r,
            "gatehouse_jwks_age_seconds",
            "Seconds since the key set in force was fetched",
        ),
        jwks_keys: gauge(&r, "gatehouse_jwks_keys", "Usable keys in force"),
        rate_limited: counter(
            &r,
            "gatehouse_rate_limited_total",
            "Requests refused by a rate budget",
            &["budget"],
        ),
        in_flight: gauge(&r, "gatehouse_in_flight_requests", "Requests being handled"),
        open_streams: gauge(&r, "gatehouse_open_streams", "Open SSE response streams"),
        shared_store_up: IntGauge::new(
            "gatehouse_shared_store_up",
            "1 while the shared store (REDIS_URL) answers, 0 while budgets fall back",
        )
        .expect("metric definition"),
        // Registered only once a shared store is configured (`shared_store_configured`): an
        // instance without REDIS_URL has no store to report as down.
        shared_store_fallbacks: IntCounter::new(
            "gatehouse_shared_store_fallbacks_total",
            "Budget checks the shared store did not answer in time",
        )
        .expect("metric definition"),
        registry: r,
    };
    // Families whose labels are known are present from the first scrape, at 0, so a rate over
    // them means something before the first refusal.
    for reason in AUTH_REFUSAL_REASONS {
        m.auth_refusals.with_label_values(&[reason]);
    }
    for budget in BUDGETS {
        m.rate_limited.with_label_values(&[budget]);
    }
    for status in ["completed", "failed", "cancelled"] {
        m.task_seconds.with_label_values(&[status]);
    }
    m
});

/// Every `reason` label of `gatehouse_auth_refusals_total`.
pub const AUTH_REFUSAL_REASONS: [&str; 10] = [
    "no_token",
    "malformed",
    "invalid",
    "inactive",
    "dpop",
    "expired",
    "audience",
    "issuer",
    "keys_unavailable",
    "scope",
];

/// Every `budget` label of `gatehouse_rate_limited_total`.
pub const BUDGETS: [&str; 4] = ["requests", "tool_calls", "listen_streams", "tasks"];

impl Metrics {
    /// A shared store is configured: its gauge and fallback counter join the exposition (once,
    /// however many stores a process builds).
    pub fn shared_store_configured(&self) {
        for c in [
            Box::new(self.shared_store_up.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(self.shared_store_fallbacks.clone()),
        ] {
            match self.registry.register(c) {
                Ok(()) | Err(prometheus::Error::AlreadyReg) => {}
                Err(e) => log::warn!("a shared store metric did not register: {e}"),
            }
        }
    }

    /// A task reached `status` (terminal) after `secs`.
    pub fn task_ended(&self, status: &'static str, secs: f64) {
        self.task_seconds.with_label_values(&[status]).observe(secs);
    }
}

/// What the transport learned about an MCP request, for the request counter.
#[derive(Debug, Clone, Copy)]
pub struct RpcLabels {
    pub era: &'static str,
    pub method: &'static str,
}

/// Counts one MCP endpoint request under its era, method and status label.
pub fn count_request(era: &'static str, method: &'static str, status: &'static str) {
    count(&METRICS.requests, [era, method, status]);
}

/// Counts one in a counter vector under static labels (at most three). Each thread keeps the
/// counters it has resolved, keyed by the vector's address and the labels' addresses and
/// lengths: the vector's own lookup hashes every label with SipHash and takes its lock on
/// every call, and these counters are counted on every request. The key space is bounded by
/// the label lists.
pub fn count<const N: usize>(vec: &'static IntCounterVec, labels: [&'static str; N]) {
    const { assert!(N <= 3, "at most three labels") };
    type Key = [usize; 7];
    thread_local! {
        static RESOLVED: RefCell<HashMap<Key, IntCounter, BuildFold>> =
            RefCell::new(HashMap::default());
    }
    let mut key: Key = [0; 7];
    key[0] = std::ptr::from_ref(vec) as usize;
    for (i, label) in labels.iter().enumerate() {
        key[1 + 2 * i] = label.as_ptr() as usize;
        key[2 + 2 * i] = label.len();
    }
    RESOLVED.with_borrow_mut(|resolved| {
        resolved
            .entry(key)
            .or_insert_with(|| vec.with_label_values(&labels))
            .inc()
    });
}

/// Observes one tool call's duration in `gatehouse_tool_seconds`, through a per-thread cache
/// of resolved histograms keyed by the tool's registered (static) name, as `count` does.
pub fn observe_tool_seconds(tool: &'static str, secs: f64) {
    thread_local! {
        static RESOLVED: RefCell<HashMap<[usize; 2], Histogram, BuildFold>> =
            RefCell::new(HashMap::default());
    }
    RESOLVED.with_borrow_mut(|resolved| {
        resolved
            .entry([tool.as_ptr() as usize, tool.len()])
            .or_insert_with(|| METRICS.tool_seconds.with_label_values(&[tool]))
            .observe(secs)
    });
}

/// Counts a gauge up while alive.
pub struct GaugeGuard(&'static IntGauge);

impl GaugeGuard {
    pub fn new(g: &'static IntGauge) -> GaugeGuard {
        g.inc();
        GaugeGuard(g)
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The text exposition of every metric.
pub fn text() -> String {
    let mut out = Vec::new();
    let _ = TextEncoder::new().encode(&METRICS.registry.gather(), &mut out);
    String::from_utf8(out).unwrap_or_default()
}
