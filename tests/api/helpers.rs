//! Test harness: `spawn_app` starts the real application on port 0 (optionally in front of a
//! local issuer), a client that speaks HTTP to it, and a log capture that every test can scan
//! for the tokens it sent.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use gatehouse::config::Settings;
use gatehouse::startup::Application;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::issuer::{TestIssuer, TestKey, now};

// ---- log capture ----

struct Capture;

/// A captured line and the label of the test whose servers logged it (`None`: a thread no
/// test's server owns).
type Line = (Option<std::sync::Arc<str>>, String);

fn captured() -> &'static Mutex<Vec<Line>> {
    static LINES: OnceLock<Mutex<Vec<Line>>> = OnceLock::new();
    LINES.get_or_init(|| Mutex::new(Vec::new()))
}

/// The label of the current test: its thread's name (libtest runs each test on a thread of
/// its own, named after it).
fn this_test() -> Option<std::sync::Arc<str>> {
    std::thread::current().name().map(std::sync::Arc::from)
}

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        // Structured fields as env_logger's text format writes them: ` key=value`.
        struct Kv(String);
        impl<'k> log::kv::VisitSource<'k> for Kv {
            fn visit_pair(
                &mut self,
                key: log::kv::Key<'k>,
                value: log::kv::Value<'k>,
            ) -> Result<(), log::kv::Error> {
                self.0.push_str(&format!(" {key}={value}"));
                Ok(())
            }
        }
        let mut kv = Kv(String::new());
        let _ = record.key_values().visit(&mut kv);
        let line = format!(
            "{} {}: {}{}",
            record.level(),
            record.target(),
            record.args(),
            kv.0
        );
        captured()
            .lock()
            .unwrap()
            .push((gatehouse::logging::tag().or_else(this_test), line));
    }
    fn flush(&self) {}
}

/// Installs the capture (once per process) and labels the current thread with this test's
/// name: the servers this test builds pass the label on to their workers, and every line they
/// log is this test's (`log_lines`).
pub fn init_logs() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        log::set_boxed_logger(Box::new(Capture)).unwrap();
        log::set_max_level(log::LevelFilter::Debug);
    });
    gatehouse::logging::set_tag(this_test());
}

/// Every line this test's servers have logged so far (not another test's).
pub fn log_lines() -> Vec<String> {
    let me = this_test();
    captured()
        .lock()
        .unwrap()
        .iter()
        .filter(|(tag, _)| me.is_some() && *tag == me)
        .map(|(_, line)| line.clone())
        .collect()
}

/// Every line any server in this test process has logged.
pub fn all_log_lines() -> Vec<String> {
    captured()
        .lock()
        .unwrap()
        .iter()
        .map(|(_, line)| line.clone())
        .collect()
}

/// Fails if `secret` (or a long piece of it) appears in any captured log line, whichever
/// test's server logged it.
pub fn assert_not_logged(secret: &str) {
    let needle = if secret.len() > 40 {
        &secret[secret.len() - 40..]
    } else {
        secret
    };
    for line in all_log_lines() {
        assert!(!line.contains(needle), "a secret reached the log: {line}");
    }
}

// ---- the app ----

pub struct TestApp {
    pub base: String,
    pub port: u16,
    pub resource: String,
    pub metadata_url: String,
    pub client: reqwest::Client,
    pub issuer: Option<TestIssuer>,
    pub rsa: Option<TestKey>,
    pub ec: Option<TestKey>,
}

pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|_| panic!("not JSON: {:?}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    }

    /// The JSON-RPC messages of an SSE body, in order.
    pub fn events(&self) -> Vec<Value> {
        self.text
            .split("\n\n")
            .filter(|e| !e.trim().is_empty())
            .map(|e| {
                let data: Vec<&str> = e.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
                serde_json::from_str(&data.join("\n")).unwrap()
            })
            .collect()
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn config_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config")
}

pub fn settings(vars: &[(&str, &str)]) -> Settings {
    let key_dir = std::env::temp_dir().join("gatehouse-test-dev-keys");
    let mut env: HashMap<String, String> = HashMap::from([
        ("GATEHOUSE_SERVER__PORT".into(), "0".into()),
        ("GATEHOUSE_SERVER__WORKERS".into(), "1".into()),
        (
            "GATEHOUSE_AUTH__DEV_KEY_DIR".into(),
            key_dir.display().to_string(),
        ),
        // Listen at once, whether or not the issuer's keys are in: tests that meet an issuer
        // that is down or misconfigured would otherwise wait 10 s each. The tests of the wait
        // itself (key_timing) set it.
        ("GATEHOUSE_AUTH__STARTUP_KEY_WAIT_SECS".into(), "0".into()),
    ]);
    for (k, v) in vars {
        env.insert(k.to_string(), v.to_string());
    }
    Settings::load(&env, &config_dir()).expect("test settings load")
}

/// Starts the app with these environment variables (and no issuer unless they name one).
pub async fn spawn_app(vars: &[(&str, &str)]) -> TestApp {
    spawn_settings(settings(vars), None, None, None).await
}

pub async fn spawn_settings(
    settings: Settings,
    issuer: Option<TestIssuer>,
    rsa: Option<TestKey>,
    ec: Option<TestKey>,
) -> TestApp {
    init_logs();
    let app = Application::build(settings).await.expect("app builds");
    let port = app.port();
    let resource = app.resource.clone();
    let metadata_url = app.metadata_url.clone();
    actix_web::rt::spawn(app.run());
    // The server starts when its task is first polled: wait until it answers, so a test that
    // blocks its thread (raw sockets) never races the startup.
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    for _ in 0..400 {
        if client
            .get(format!("http://127.0.0.1:{port}/health"))
            .send()
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    TestApp {
        base: format!("http://127.0.0.1:{port}"),
        port,
        resource,
        metadata_url,
        client: reqwest::Client::builder().no_proxy().build().unwrap(),
        issuer,
        rsa,
        ec,
    }
}

/// An app in front of a fresh local issuer holding an RSA key `rsa-1` and an EC key `ec-1`.
pub async fn spawn_with_issuer(vars: &[(&str, &str)]) -> TestApp {
    let rsa = TestKey::rsa("rsa-1", 0);
    let ec = TestKey::ec("ec-1");
    let issuer = TestIssuer::start(&[&rsa, &ec]).await;
    let mut all: Vec<(&str, &str)> = vec![("OAUTH_ISSUER", issuer.url.as_str())];
    all.extend_from_slice(vars);
    let app = spawn_settings(settings(&all), Some(issuer), Some(rsa), Some(ec)).await;
    app.wait_ready().await;
    app
}

pub const ACCEPT_BOTH: &str = "application/json, text/event-stream";

impl TestApp {
    pub fn issuer(&self) -> &TestIssuer {
        self.issuer.as_ref().expect("this app has an issuer")
    }

    pub fn rsa(&self) -> &TestKey {
        self.rsa.as_ref().unwrap()
    }

    pub fn ec(&self) -> &TestKey {
        self.ec.as_ref().unwrap()
    }

    pub async fn wait_ready(&self) {
        for _ in 0..200 {
            if self.get("/ready").await.status == 200 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("app never became ready");
    }

    /// Valid claims for this app: right issuer and audience, live for 5 minutes.
    pub fn claims(&self, sub: &str, scopes: &[&str]) -> Value {
        let t = now();
        json!({
            "iss": self.issuer().url,
            "sub": sub,
            "aud": self.resource,
            "exp": t + 300,
            "iat": t,
            "nbf": t,
            "scopes": scopes,
            "client_id": "test-client",
        })
    }

    /// A valid RSA-signed token.
    pub fn token(&self, sub: &str, scopes: &[&str]) -> String {
        self.rsa().sign(&self.claims(sub, scopes))
    }

    pub async fn get(&self, path: &str) -> Resp {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        into_resp(r).await
    }

    pub async fn send(&self, rb: reqwest::RequestBuilder) -> Resp {
        into_resp(rb.send().await.unwrap()).await
    }

    /// A POST to the MCP endpoint with the right Accept and Content-Type.
    pub fn mcp(&self, token: Option<&str>) -> reqwest::RequestBuilder {
        let mut rb = self
            .client
            .post(format!("{}/mcp", self.base))
            .header("accept", ACCEPT_BOTH)
            .header("content-type", "application/json");
        if let Some(t) = token {
            rb = rb.header("authorization", format!("Bearer {t}"));
        }
        rb
    }

    pub async fn post(&self, token: Option<&str>, body: &Value) -> Resp {
        let r = self.send(self.mcp(token).body(body.to_string())).await;
        if let Some(t) = token {
            assert_not_logged(t);
        }
        r
    }

    /// One JSON-RPC request; returns the HTTP response.
    pub async fn rpc(&self, token: Option<&str>, method: &str, params: Value) -> Resp {
        self.post(
            token,
            &json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}),
        )
        .await
    }

    pub async fn call_tool(&self, token: Option<&str>, name: &str, args: Value) -> Resp {
        self.rpc(
            token,
            "tools/call",
            json!({"name": name, "arguments": args}),
        )
        .await
    }
}

async fn into_resp(r: reqwest::Response) -> Resp {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap_or_default();
    Resp {
        status,
        headers,
        text,
    }
}

/// An app with auth off (development switch) for protocol tests that are not about auth.
pub async fn spawn_open(vars: &[(&str, &str)]) -> TestApp {
    let mut all: Vec<(&str, &str)> = vec![("GATEHOUSE_AUTH__ENABLED", "false")];
    all.extend_from_slice(vars);
    spawn_app(&all).await
}

/// Reads an SSE response as it arrives: one JSON-RPC message at a time.
pub struct SseStream {
    pub resp: reqwest::Response,
    buf: String,
}

impl SseStream {
    pub fn new(resp: reqwest::Response) -> SseStream {
        SseStream {
            resp,
            buf: String::new(),
        }
    }

    pub fn status(&self) -> u16 {
        self.resp.status().as_u16()
    }

    /// The next message within `wait`; `None` when the stream ends or stays silent.
    pub async fn next(&mut self, wait: std::time::Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let event: String = self.buf.drain(..end + 2).collect();
                let data: Vec<&str> = event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data: "))
                    .collect();
                if data.is_empty() {
                    continue; // a comment (keep-alive)
                }
                return Some(serde_json::from_str(&data.join("\n")).unwrap());
            }
            match tokio::time::timeout_at(deadline, self.resp.chunk()).await {
                Ok(Ok(Some(bytes))) => self.buf.push_str(&String::from_utf8_lossy(&bytes)),
                _ => return None,
            }
        }
    }
}
