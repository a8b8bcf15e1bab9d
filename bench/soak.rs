//! The soak with faults: two gatehouse instances sharing a local redis-server and the
//! benchmark's issuer (the tests' local issuer, whose keys this program adds and drops), load on
//! both in both protocol eras, side traffic of new subjects, listen streams and asking rounds
//! that cross instances, and faults on a schedule: a key added, a key dropped, Redis paused,
//! Redis stopped, the issuer down, SIGTERM to one instance under load. Loopback only, bounded
//! by `SOAK_MINUTES` (default 10). Prints one table and exits non-zero when a 5xx came outside a
//! fault window, a valid token was refused, an invalid one accepted, or an ERROR line was
//! logged.
//!
//! `soak GATEHOUSE_BIN` (`bench/soak.sh` builds both and runs it).

#[path = "../tests/api/issuer.rs"]
#[allow(dead_code)]
mod issuer;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use issuer::{TestIssuer, TestKey, now};
use serde_json::{Value, json};

const AUDIENCE: &str = "http://gatehouse.soak/mcp";
const STATE_KEY: &str = "c29hay1zdGF0ZS1rZXktMDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3";
const MODERN: &str = "2026-07-28";

/// Where a fault's effects may show: from its start to its end plus the time it took to be
/// absorbed (and a two-second grace for requests already on their way).
#[derive(Clone)]
struct Fault {
    name: &'static str,
    start: Duration,
    end: Duration,
    absorbed: Option<Duration>,
}

impl Fault {
    fn covers(&self, at: Duration) -> bool {
        let until = self.end + self.absorbed.unwrap_or(Duration::from_secs(30)) + GRACE;
        at + GRACE >= self.start && at <= until
    }
}

const GRACE: Duration = Duration::from_secs(2);

/// Outcomes by (second of the run, instance, what happened).
#[derive(Default)]
struct Tally(Mutex<BTreeMap<(u64, usize, String), u64>>);

impl Tally {
    fn add(&self, at: Duration, instance: usize, what: impl Into<String>) {
        *self
            .0
            .lock()
            .unwrap()
            .entry((at.as_secs(), instance, what.into()))
            .or_default() += 1;
    }
}

/// One gatehouse process, restartable.
struct Instance {
    name: &'static str,
    port: u16,
    child: Mutex<Option<Child>>,
    log: PathBuf,
    env: Vec<(String, String)>,
    bin: String,
    /// (incarnation name, pid) of every process it ran.
    pids: Mutex<Vec<(String, u32)>>,
}

impl Instance {
    fn start(&self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut c = Command::new(&self.bin);
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PORT", self.port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        for (k, v) in &self.env {
            c.env(k, v);
        }
        let child = c.spawn().expect("gatehouse starts");
        let mut pids = self.pids.lock().unwrap();
        let n = pids.len();
        let label = if n == 0 {
            self.name.to_string()
        } else {
            format!("{}{}", self.name, "'".repeat(n))
        };
        pids.push((label, child.id()));
        *self.child.lock().unwrap() = Some(child);
    }

    fn pid(&self) -> Option<u32> {
        self.child.lock().unwrap().as_ref().map(Child::id)
    }

    fn signal(&self, sig: &str) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .args([format!("-{sig}"), pid.to_string()])
                .status();
        }
    }

    /// SIGTERM, then waits for the drain to end.
    fn stop(&self) {
        self.signal("TERM");
        if let Some(mut c) = self.child.lock().unwrap().take() {
            let deadline = Instant::now() + Duration::from_secs(40);
            while Instant::now() < deadline {
                if c.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// A redis-server of its own, restartable on the same port.
struct Redis {
    port: u16,
    child: Mutex<Option<Child>>,
}

impl Redis {
    fn start(&self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts (install it: apt-get install redis-server)");
        *self.child.lock().unwrap() = Some(child);
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn signal(&self, sig: &str) {
        if let Some(c) = self.child.lock().unwrap().as_ref() {
            let _ = Command::new("kill")
                .args([format!("-{sig}"), c.id().to_string()])
                .status();
        }
    }

    fn stop(&self) {
        if let Some(mut c) = self.child.lock().unwrap().take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The run's shared view: the clock, the keys in force, and whether the run is over.
struct World {
    started: Instant,
    issuer: TestIssuer,
    rsa1: TestKey,
    rsa2: TestKey,
    ec: TestKey,
    /// 0: rsa-1 and ec; 1: rsa-2 added; 2: rsa-1 dropped.
    keys: AtomicU64,
    /// Once the drop is absorbed, an rsa-1 token must be refused everywhere.
    drop_absorbed: AtomicBool,
    subjects: AtomicU64,
    over: AtomicBool,
    tally: Tally,
    instances: Vec<Instance>,
}

impl World {
    fn at(&self) -> Duration {
        self.started.elapsed()
    }

    fn token_with(&self, key: &TestKey, sub: &str) -> String {
        let t = now();
        key.sign(
            &json!({"iss": self.issuer.url, "sub": sub, "aud": AUDIENCE, "exp": t + 3600,
                         "iat": t, "scopes": ["admin"], "oid": "soak"}),
        )
    }

    /// A key in force now, for a new token.
    fn live_key(&self, n: u64) -> &TestKey {
        match (self.keys.load(Ordering::SeqCst), n % 2) {
            (0, 0) => &self.rsa1,
            (1, 0) => &self.rsa2,
            (2, 0) => &self.rsa2,
            _ => &self.ec,
        }
    }

    /// A fresh subject's token (side traffic: a signature check on first sight).
    fn new_subject(&self) -> String {
        let n = self.subjects.fetch_add(1, Ordering::SeqCst);
        self.token_with(self.live_key(n), &format!("soak-{n}"))
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// One tools/call in the 2025-03-26 era or in 2026-07-28 (`modern`).
async fn call(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    modern: bool,
) -> Result<(u16, String), ()> {
    let mut rb = http
        .post(format!("{base}/mcp"))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json");
    let params = if modern {
        rb = rb
            .header("mcp-protocol-version", MODERN)
            .header("mcp-method", "tools/call")
            .header("mcp-name", "greet_user");
        json!({"name": "greet_user", "arguments": {"name": "soak"}, "_meta": meta()})
    } else {
        json!({"name": "greet_user", "arguments": {"name": "soak"}})
    };
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params});
    let r = rb.body(body.to_string()).send().await.map_err(|_| ())?;
    let status = r.status().as_u16();
    Ok((status, r.text().await.unwrap_or_default()))
}

fn meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientInfo": {"name": "soak", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}},
    })
}

fn outcome(status: u16) -> String {
    match status {
        200..=299 => "2xx".into(),
        500..=599 => format!("5xx:{status}"),
        s => s.to_string(),
    }
}

/// Steady load on one instance: a fixed set of subjects, both eras.
async fn load(world: Arc<World>, instance: usize, worker: u64) {
    let http = client();
    let base = world.instances[instance].url();
    let mut tokens: Vec<String> = (0..8)
        .map(|i| world.token_with(&world.ec, &format!("steady-{instance}-{worker}-{i}")))
        .collect();
    let mut n = 0u64;
    while !world.over.load(Ordering::SeqCst) {
        n += 1;
        if n.is_multiple_of(5000) {
            // Now and then a steady subject gets a token from the key in force.
            let i = (n / 5000) as usize % tokens.len();
            tokens[i] = world.token_with(
                world.live_key(n),
                &format!("steady-{instance}-{worker}-{i}"),
            );
        }
        let token = &tokens[n as usize % tokens.len()];
        match call(&http, &base, token, n.is_multiple_of(2)).await {
            Ok((s, _)) => world.tally.add(world.at(), instance, outcome(s)),
            Err(()) => {
                world.tally.add(world.at(), instance, "connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// New subjects, one every 50 ms per instance, each on a token never seen before.
async fn side_traffic(world: Arc<World>, instance: usize) {
    let http = client();
    let base = world.instances[instance].url();
    while !world.over.load(Ordering::SeqCst) {
        let token = world.new_subject();
        match call(&http, &base, &token, false).await {
            Ok((401, _)) => world.tally.add(world.at(), instance, "valid-token-refused"),
            Ok((s, _)) => world.tally.add(world.at(), instance, outcome(s)),
            Err(()) => world.tally.add(world.at(), instance, "connection"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Once the dropped key is gone everywhere, its tokens must be refused: one probe a second.
async fn dropped_key_probe(world: Arc<World>) {
    let http = client();
    let token = world.token_with(&world.rsa1, "dropped-key-probe");
    while !world.over.load(Ordering::SeqCst) {
        if world.drop_absorbed.load(Ordering::SeqCst) {
            for (i, inst) in world.instances.iter().enumerate() {
                if let Ok((s, _)) = call(&http, &inst.url(), &token, false).await {
                    let what = if s == 200 {
                        "invalid-token-accepted"
                    } else {
                        "dropped-key-refused"
                    };
                    world.tally.add(world.at(), i, what);
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Listen streams (2026-07-28), reopened whenever one ends.
async fn listener(world: Arc<World>, instance: usize, slot: u64) {
    let http = client();
    let base = world.instances[instance].url();
    while !world.over.load(Ordering::SeqCst) {
        let token = world.token_with(&world.ec, &format!("listener-{instance}-{slot}"));
        let body = json!({"jsonrpc": "2.0", "id": format!("l{slot}"), "method": "subscriptions/listen",
                          "params": {"notifications": {"toolsListChanged": true}, "_meta": meta()}});
        let sent = http
            .post(format!("{base}/mcp"))
            .bearer_auth(&token)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header("mcp-protocol-version", MODERN)
            .header("mcp-method", "subscriptions/listen")
            .timeout(Duration::from_secs(24 * 3600))
            .body(body.to_string())
            .send()
            .await;
        match sent {
            Ok(mut r) => {
                world.tally.add(
                    world.at(),
                    instance,
                    format!("listen:{}", outcome(r.status().as_u16())),
                );
                while !world.over.load(Ordering::SeqCst) {
                    match tokio::time::timeout(Duration::from_secs(1), r.chunk()).await {
                        Ok(Ok(Some(_))) | Err(_) => {}
                        Ok(_) => break,
                    }
                }
            }
            Err(_) => world.tally.add(world.at(), instance, "listen:connection"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Asking rounds across instances: asked on one, confirmed on the other (2026-07-28).
async fn asking(world: Arc<World>) {
    let http = client();
    let mut n = 0u64;
    while !world.over.load(Ordering::SeqCst) {
        n += 1;
        let (a, b) = ((n % 2) as usize, ((n + 1) % 2) as usize);
        let token = world.token_with(&world.ec, &format!("asker-{}", n % 16));
        let round = |base: String, extra: Value| {
            let mut params = json!({"name": "admin_action", "arguments": {"action": format!("soak-{n}")}, "_meta": meta()});
            if let Value::Object(m) = extra {
                for (k, v) in m {
                    params[k] = v;
                }
            }
            http.post(format!("{base}/mcp"))
                .bearer_auth(&token)
                .header("accept", "application/json, text/event-stream")
                .header("content-type", "application/json")
                .header("mcp-protocol-version", MODERN)
                .header("mcp-method", "tools/call")
                .header("mcp-name", "admin_action")
                .body(
                    json!({"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": params})
                        .to_string(),
                )
                .send()
        };
        let asked = match round(world.instances[a].url(), json!({})).await {
            Ok(r) => r.json::<Value>().await.ok(),
            Err(_) => None,
        };
        let state = asked
            .as_ref()
            .and_then(|v| v["result"]["requestState"].as_str().map(str::to_string));
        let what = match state {
            None => "ask:not-asked".to_string(),
            Some(state) => {
                let yes = json!({"inputResponses": {"confirm": {"action": "accept", "content": {"confirm": true}}},
                                 "requestState": state});
                match round(world.instances[b].url(), yes).await {
                    Ok(r) if r.status().is_success() => {
                        let text = r.text().await.unwrap_or_default();
                        if text.contains("performed by") {
                            "ask:performed".into()
                        } else {
                            "ask:not-performed".into()
                        }
                    }
                    Ok(r) => format!("ask:{}", outcome(r.status().as_u16())),
                    Err(_) => "ask:connection".into(),
                }
            }
        };
        world.tally.add(world.at(), b, what);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// RssAnon (KiB), descriptors and threads of a process.
fn sample(pid: u32) -> Option<(u64, u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some((field("RssAnon:")?, fds, field("Threads:")?))
}

/// Per process: (start, peak, end) of each figure.
type Samples = Mutex<BTreeMap<String, [(u64, u64, u64); 3]>>;

/// Per process: RssAnon (KiB) at each tenth of the run, to show where it levels off.
type Curve = Mutex<BTreeMap<String, BTreeMap<u64, u64>>>;

async fn sampler(world: Arc<World>, samples: Arc<Samples>, curve: Arc<Curve>, total: Duration) {
    while !world.over.load(Ordering::SeqCst) {
        let tenth = (world.at().as_secs_f64() / total.as_secs_f64() * 10.0).ceil() as u64;
        for inst in &world.instances {
            let Some((label, pid)) = inst.pids.lock().unwrap().last().cloned() else {
                continue;
            };
            if let Some(s) = sample(pid) {
                let mut all = samples.lock().unwrap();
                let e = all.entry(label.clone()).or_insert([s, s, s]);
                e[1] = (e[1].0.max(s.0), e[1].1.max(s.1), e[1].2.max(s.2));
                e[2] = s;
                // The last sample within each tenth stands for it.
                curve
                    .lock()
                    .unwrap()
                    .entry(label)
                    .or_default()
                    .insert(tenth.clamp(1, 10), s.0);
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Polls until `check` holds (at most `limit`): how long it took.
async fn absorbed<F, Fut>(limit: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

async fn all_accept(world: &World, token: &str, want: u16) -> bool {
    let http = client();
    for inst in &world.instances {
        match call(&http, &inst.url(), token, false).await {
            Ok((s, _)) if s == want => {}
            _ => return false,
        }
    }
    true
}

async fn store_up_everywhere(world: &World) -> bool {
    let http = client();
    for inst in &world.instances {
        let Ok(r) = http.get(format!("{}/ready", inst.url())).send().await else {
            return false;
        };
        if !r
            .text()
            .await
            .unwrap_or_default()
            .contains(r#""shared_store":"up""#)
        {
            return false;
        }
    }
    true
}

async fn ready(base: &str) -> bool {
    client()
        .get(format!("{base}/ready"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

/// The fault schedule, each at its share of the run; returns the windows.
async fn faults(world: Arc<World>, redis: Arc<Redis>, total: Duration) -> Vec<Fault> {
    let at = |share: f64| total.mul_f64(share);
    let pause = (total / 60).clamp(Duration::from_secs(3), Duration::from_secs(20));
    let issuer_down = (total / 10).clamp(Duration::from_secs(5), Duration::from_secs(60));
    let limit = Duration::from_secs(60);
    let mut done = Vec::new();
    let until = |t: Duration| {
        let world = world.clone();
        async move {
            while world.at() < t {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };

    until(at(0.10)).await;
    let start = world.at();
    world
        .issuer
        .set_keys(&[&world.rsa1, &world.rsa2, &world.ec]);
    world.keys.store(1, Ordering::SeqCst);
    let probe = world.token_with(&world.rsa2, "key-added-probe");
    let took = absorbed(limit, || all_accept(&world, &probe, 200)).await;
    done.push(Fault {
        name: "key added",
        start,
        end: start,
        absorbed: took,
    });

    until(at(0.25)).await;
    let start = world.at();
    world.issuer.set_keys(&[&world.rsa2, &world.ec]);
    world.keys.store(2, Ordering::SeqCst);
    let probe = world.token_with(&world.rsa1, "key-dropped-probe");
    let took = absorbed(limit, || all_accept(&world, &probe, 401)).await;
    world.drop_absorbed.store(true, Ordering::SeqCst);
    done.push(Fault {
        name: "key dropped",
        start,
        end: start,
        absorbed: took,
    });

    until(at(0.40)).await;
    let start = world.at();
    redis.signal("STOP");
    tokio::time::sleep(pause).await;
    redis.signal("CONT");
    let end = world.at();
    let took = absorbed(limit, || store_up_everywhere(&world)).await;
    done.push(Fault {
        name: "Redis paused",
        start,
        end,
        absorbed: took,
    });

    until(at(0.50)).await;
    let start = world.at();
    redis.stop();
    tokio::time::sleep(pause).await;
    redis.start();
    let end = world.at();
    let took = absorbed(limit, || store_up_everywhere(&world)).await;
    done.push(Fault {
        name: "Redis stopped",
        start,
        end,
        absorbed: took,
    });

    until(at(0.60)).await;
    let start = world.at();
    world.issuer.set_down(true);
    tokio::time::sleep(issuer_down).await;
    world.issuer.set_down(false);
    let end = world.at();
    let probe = world.new_subject();
    let took = absorbed(limit, || all_accept(&world, &probe, 200)).await;
    done.push(Fault {
        name: "issuer down",
        start,
        end,
        absorbed: took,
    });

    until(at(0.80)).await;
    let start = world.at();
    let b = &world.instances[1];
    tokio::task::block_in_place(|| b.stop());
    b.start();
    let end = world.at();
    let base = b.url();
    let took = absorbed(limit, || ready(&base)).await;
    done.push(Fault {
        name: "SIGTERM to B",
        start,
        end,
        absorbed: took,
    });
    done
}

/// The settings `SOAK_SERVER_ENV` adds to every instance.
fn extra_env() -> Vec<(String, String)> {
    std::env::var("SOAK_SERVER_ENV")
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let bin = std::env::args().nth(1).expect("usage: soak GATEHOUSE_BIN");
    let minutes: f64 = std::env::var("SOAK_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(10.0);
    let workers: u64 = std::env::var("SOAK_WORKERS")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(8);
    let total = Duration::from_secs_f64(minutes * 60.0);
    let dir = std::env::temp_dir().join(format!("gatehouse-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let redis = Arc::new(Redis {
        port: free_port(),
        child: Mutex::new(None),
    });
    redis.start();
    let (rsa1, rsa2, ec) = (
        TestKey::rsa("rsa-1", 0),
        TestKey::rsa("rsa-2", 1),
        TestKey::ec("ec-1"),
    );
    // The issuer is an actix-web server: it runs on an actix system of its own thread.
    let (tx, rx) = std::sync::mpsc::channel();
    let jwks = vec![rsa1.jwk(), ec.jwk()];
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let issuer = TestIssuer::start(&[]).await;
            issuer.set_jwks(json!({"keys": jwks}));
            tx.send(issuer).unwrap();
            std::future::pending::<()>().await;
        })
    });
    let issuer = rx.recv().unwrap();
    let env = |name: &str| -> Vec<(String, String)> {
        [
            ("OAUTH_ISSUER", issuer.url.clone()),
            ("EXPECTED_AUDIENCE", AUDIENCE.into()),
            ("REDIS_URL", format!("redis://127.0.0.1:{}", redis.port)),
            ("MCP_STATE_KEY", STATE_KEY.into()),
            ("RUST_LOG", "warn".into()),
            ("GATEHOUSE_SERVER__WORKERS", "1".into()),
            ("GATEHOUSE_SERVER__INSTANCE_ID", name.into()),
            ("GATEHOUSE_AUTH__JWKS_TTL_SECS", "10".into()),
            ("GATEHOUSE_AUTH__JWKS_COOLDOWN_SECS", "5".into()),
            (
                "GATEHOUSE_RATE_LIMIT__REQUESTS_PER_MINUTE",
                "1000000".into(),
            ),
            ("GATEHOUSE_RATE_LIMIT__REQUESTS_BURST", "1000000".into()),
            (
                "GATEHOUSE_RATE_LIMIT__TOOL_CALLS_PER_MINUTE",
                "1000000".into(),
            ),
            ("GATEHOUSE_RATE_LIMIT__TOOL_CALLS_BURST", "1000000".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        // SOAK_SERVER_ENV (space-separated NAME=value) adds settings to both instances:
        // .ci/run's negative control breaks them with it and expects the soak to fail.
        .chain(extra_env())
        .collect()
    };
    let instances = ["A", "B"]
        .into_iter()
        .map(|name| Instance {
            name,
            port: free_port(),
            child: Mutex::new(None),
            log: dir.join(format!("{name}.log")),
            env: env(name),
            bin: bin.clone(),
            pids: Mutex::new(Vec::new()),
        })
        .collect();
    let world = Arc::new(World {
        started: Instant::now(),
        issuer,
        rsa1,
        rsa2,
        ec,
        keys: AtomicU64::new(0),
        drop_absorbed: AtomicBool::new(false),
        subjects: AtomicU64::new(0),
        over: AtomicBool::new(false),
        tally: Tally::default(),
        instances,
    });
    for inst in &world.instances {
        inst.start();
    }
    for inst in &world.instances {
        let base = inst.url();
        absorbed(Duration::from_secs(30), || ready(&base))
            .await
            .expect("instance ready");
    }
    let samples: Arc<Samples> = Arc::default();
    let mut tasks = Vec::new();
    for i in 0..2 {
        for w in 0..workers {
            tasks.push(tokio::spawn(load(world.clone(), i, w)));
        }
        tasks.push(tokio::spawn(side_traffic(world.clone(), i)));
        for s in 0..4 {
            tasks.push(tokio::spawn(listener(world.clone(), i, s)));
        }
    }
    tasks.push(tokio::spawn(asking(world.clone())));
    tasks.push(tokio::spawn(dropped_key_probe(world.clone())));
    let curve: Arc<Curve> = Arc::default();
    tasks.push(tokio::spawn(sampler(
        world.clone(),
        samples.clone(),
        curve.clone(),
        total,
    )));
    let windows = faults(world.clone(), redis.clone(), total).await;
    while world.at() < total {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    world.over.store(true, Ordering::SeqCst);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(25), t).await;
    }
    for inst in &world.instances {
        tokio::task::block_in_place(|| inst.stop());
    }
    redis.stop();
    let failed = report(&world, &windows, &samples, &curve, total);
    std::process::exit(i32::from(failed));
}

/// Prints the table; true when a rule was broken.
fn report(
    world: &World,
    windows: &[Fault],
    samples: &Samples,
    curve: &Curve,
    total: Duration,
) -> bool {
    let tally = world.tally.0.lock().unwrap();
    let explained = |sec: u64| {
        windows
            .iter()
            .filter(|f| f.covers(Duration::from_secs(sec)))
            .map(|f| f.name)
            .collect::<Vec<_>>()
    };
    println!(
        "soak: {:.1} minutes, two instances, one Redis, one issuer\n",
        total.as_secs_f64() / 60.0
    );
    println!(
        "| instance | requests | 2xx | non-2xx in fault windows | non-2xx outside | 5xx outside |"
    );
    println!("| --- | ---: | ---: | --- | ---: | ---: |");
    let mut broken = false;
    let mut outside_detail: BTreeMap<String, u64> = BTreeMap::new();
    for (i, inst) in world.instances.iter().enumerate() {
        let (mut all, mut ok, mut out, mut five) = (0u64, 0u64, 0u64, 0u64);
        let mut inside: BTreeMap<String, u64> = BTreeMap::new();
        for ((sec, at, what), n) in tally.iter() {
            if *at != i || what.starts_with("listen:") || what.starts_with("ask:") {
                continue;
            }
            if what == "dropped-key-refused" {
                continue;
            }
            all += n;
            if what == "2xx" {
                ok += n;
                continue;
            }
            let faults = explained(*sec);
            if faults.is_empty() || what == "invalid-token-accepted" {
                out += n;
                *outside_detail
                    .entry(format!("{} {what}", inst.name))
                    .or_default() += n;
                if what.starts_with("5xx") {
                    five += n;
                }
            } else {
                *inside
                    .entry(format!("{what} ({})", faults.join(", ")))
                    .or_default() += n;
            }
        }
        let inside: Vec<String> = inside.iter().map(|(k, n)| format!("{n} {k}")).collect();
        println!(
            "| {} | {all} | {ok} | {} | {out} | {five} |",
            inst.name,
            if inside.is_empty() {
                "-".into()
            } else {
                inside.join("; ")
            }
        );
        broken |= out > 0;
    }
    for (what, n) in &outside_detail {
        println!("  outside any fault window: {n} x {what}");
    }
    // Listen streams that could not open and asking rounds that did not complete count too.
    for ((sec, i, what), n) in tally.iter() {
        let failed = (what.starts_with("listen:") && what != "listen:2xx")
            || (what.starts_with("ask:") && what != "ask:performed");
        if failed && explained(*sec).is_empty() {
            let name = world.instances[*i].name;
            *outside_detail.entry(format!("{name} {what}")).or_default() += n;
            broken = true;
        }
    }
    let count = |prefix: &str| -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for ((_, _, what), n) in tally.iter() {
            if let Some(rest) = what.strip_prefix(prefix) {
                *m.entry(rest.to_string()).or_default() += n;
            }
        }
        m
    };
    println!("\nlisten streams opened: {:?}", count("listen:"));
    println!("asking rounds across instances: {:?}", count("ask:"));
    let probes: u64 = tally
        .iter()
        .filter(|((_, _, w), _)| w == "dropped-key-refused")
        .map(|(_, n)| n)
        .sum();
    println!("dropped-key probes refused: {probes}");
    println!(
        "distinct new subjects: {}",
        world.subjects.load(Ordering::SeqCst)
    );
    println!("\n| fault | at (s) | lasted (s) | absorbed after (s) |");
    println!("| --- | ---: | ---: | ---: |");
    for f in windows {
        println!(
            "| {} | {:.1} | {:.1} | {} |",
            f.name,
            f.start.as_secs_f64(),
            (f.end - f.start).as_secs_f64(),
            f.absorbed.map_or("NOT ABSORBED".to_string(), |d| format!(
                "{:.2}",
                d.as_secs_f64()
            ))
        );
        broken |= f.absorbed.is_none();
    }
    println!("\n| process | RssAnon KiB start / peak / end | descriptors | threads |");
    println!("| --- | --- | --- | --- |");
    for (label, [s, p, e]) in samples.lock().unwrap().iter() {
        println!(
            "| {label} | {} / {} / {} | {} / {} / {} | {} / {} / {} |",
            s.0, p.0, e.0, s.1, p.1, e.1, s.2, p.2, e.2
        );
    }
    println!("\n| process | RssAnon KiB at each tenth of the run |");
    println!("| --- | --- |");
    for (label, points) in curve.lock().unwrap().iter() {
        let row: Vec<String> = points
            .iter()
            .map(|(t, kib)| format!("{}0%: {kib}", t))
            .collect();
        println!("| {label} | {} |", row.join(", "));
    }
    let mut errors = 0;
    for inst in &world.instances {
        let log = std::fs::read_to_string(&inst.log).unwrap_or_default();
        errors += log.lines().filter(|l| l.contains(" ERROR ")).count();
    }
    println!("\nERROR lines logged: {errors}");
    broken |= errors > 0;
    println!("{}", if broken { "SOAK FAILED" } else { "soak passed" });
    broken
}
