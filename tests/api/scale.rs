//! Several instances sharing one Redis (REDIS_URL): budgets that hold across instances, the
//! fallback while Redis is down or paused (never a request held past the timeout), the refuse
//! policy, and list changes reaching listen streams on other instances. Needs `redis-server`,
//! so every test here is `#[ignore]`d: a plain `cargo test` reports them as ignored, and
//! `cargo test --test api -- --ignored scale` runs them (`.ci/run` installs Redis and does).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{TestApp, free_port, settings, spawn_app, spawn_settings};
use crate::issuer::{TestIssuer, TestKey};
use crate::modern::{modern, send, with_meta};

/// A redis-server of its own on a loopback port, stopped when dropped.
pub struct Redis {
    child: Child,
    pub port: u16,
}

impl Redis {
    pub fn start() -> Redis {
        Redis::start_on(free_port())
    }

    /// A redis-server on `port`; panics when it cannot start (these tests are ignored by a
    /// plain `cargo test` and run only where Redis is installed, so they never pass unrun).
    fn start_on(port: u16) -> Redis {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
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
            .unwrap_or_else(|e| panic!("redis-server is required by this test: {e}"));
        let r = Redis { child, port };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return r;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("redis-server did not start");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn signal(&self, sig: &str) {
        Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const AUDIENCE: &str = "https://gatehouse.test/mcp";

/// `n` instances behind one issuer and one Redis, accepting the same tokens.
pub async fn instances(
    n: usize,
    redis: &Redis,
    extra: &[(&str, &str)],
) -> (Vec<TestApp>, TestKey, TestIssuer) {
    let key = TestKey::rsa("rsa-1", 0);
    let issuer = TestIssuer::start(&[&key]).await;
    let url = redis.url();
    let mut apps = Vec::new();
    for _ in 0..n {
        let mut vars: Vec<(&str, &str)> = vec![
            ("OAUTH_ISSUER", issuer.url.as_str()),
            ("EXPECTED_AUDIENCE", AUDIENCE),
            ("REDIS_URL", url.as_str()),
        ];
        vars.extend_from_slice(extra);
        let app = spawn_settings(settings(&vars), None, None, None).await;
        for _ in 0..200 {
            if app.get("/ready").await.status == 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        apps.push(app);
    }
    (apps, key, issuer)
}

pub fn token(key: &TestKey, issuer: &TestIssuer, sub: &str) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    key.sign(&json!({"iss": issuer.url, "sub": sub, "aud": AUDIENCE, "exp": t + 300, "iat": t, "scopes": []}))
}

async fn greet(app: &TestApp, token: Option<&str>) -> crate::helpers::Resp {
    app.call_tool(token, "greet_user", json!({"name": "Ada"}))
        .await
}

#[actix_web::test]
#[ignore = "needs redis-server: cargo test --test api -- --ignored scale (.ci/run runs them)"]
async fn a_subjects_tool_budget_holds_across_three_instances() {
    let redis = Redis::start();
    let (apps, key, issuer) = instances(
        3,
        &redis,
        &[
            ("GATEHOUSE_RATE_LIMIT__TOOL_CALLS_PER_MINUTE", "6"),
            ("GATEHOUSE_RATE_LIMIT__TOOL_CALLS_BURST", "3"),
        ],
    )
    .await;
    let t = token(&key, &issuer, "alice");
    let mut allowed = 0;
    let mut refused = Vec::new();
    for i in 0..12 {
        let r = greet(&apps[i % 3], Some(&t)).await;
        match r.status {
            200 => allowed += 1,
            429 => refused.push(r),
            other => panic!("unexpected {other}: {}", r.text),
        }
    }
    // The burst (3), plus at most one cell refilled while the test runs: not 3 x 3.
    assert!(
        (3..=4).contains(&allowed),
        "{allowed} calls allowed across three instances"
    );
    let retry: u64 = refused[0].header("retry-after").unwrap().parse().unwrap();
    assert!(
        (1..=10).contains(&retry),
        "Retry-After from the shared state: {retry}"
    );
    // Another subject has its own budget.
    assert_eq!(
        greet(&apps[1], Some(&token(&key, &issuer, "bob")))
            .await
            .status,
        200
    );
}

/// Script calls Redis has served so far.
fn script_calls(redis: &Redis) -> u64 {
    let out = Command::new("redis-cli")
        .args(["-p", &redis.port.to_string(), "INFO", "commandstats"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
        .filter_map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

#[actix_web::test]
#[ignore = "needs redis-server: cargo test --test api -- --ignored scale (.ci/run runs them)"]
async fn a_tool_call_costs_one_round_trip() {
    let redis = Redis::start();
    let (apps, key, issuer) = instances(1, &redis, &[]).await;
    let t = token(&key, &issuer, "erin");
    // The token's first request is keyed by address (not verified yet); later ones by subject.
    assert_eq!(greet(&apps[0], Some(&t)).await.status, 200);
    let before = script_calls(&redis);
    for _ in 0..5 {
        assert_eq!(greet(&apps[0], Some(&t)).await.status, 200);
    }
    assert_eq!(
        script_calls(&redis) - before,
        5,
        "both budgets in one call per request"
    );
}

#[actix_web::test]
#[ignore = "needs redis-server: cargo test --test api -- --ignored scale (.ci/run runs them)"]
async fn the_per_address_budget_holds_across_instances_too() {
    let redis = Redis::start();
    let (apps, _, _) = instances(
        3,
        &redis,
        &[
            ("GATEHOUSE_RATE_LIMIT__REQUESTS_PER_MINUTE", "6"),
            ("GATEHOUSE_RATE_LIMIT__REQUESTS_BURST", "4"),
        ],
    )
    .await;
    let mut statuses = Vec::new();
    for i in 0..12 {
        // No token: keyed by the client address (127.0.0.1 here).
        statuses.push(greet(&apps[i % 3], None).await.status);
    }
    let passed = statuses.iter().filter(|s| **s == 401).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert!((4..=5).contains(&passed), "{statuses:?}");
    assert_eq!(passed + limited, 12, "{statuses:?}");
}

#[actix_web::test]
#[ignore = "needs redis-server: cargo test --test api -- --ignored scale (.ci/run runs them)"]
async fn without_redis_requests_fall_back_within_the_timeout_and_share_again_after() {
    let redis = Redis::start();
    let port = redis.port;
    let (apps, key, issuer) = instances(
        1,
        &redis,
        &[
            ("GATEHOUSE_RATE_LIMIT__TOOL_CALLS_PER_MINUTE", "60"),
            ("GATEHOUSE_RATE_LIMIT__TOOL_CALLS_BURST", "50"),
            ("GATEHOUSE_RATE_LIMIT__REDIS_TIMEOUT_MS", "100"),
        ],
    )
    .await;
    let app = &apps[0];
    let t = token(&key, &issuer, "carol");
    assert_eq!(greet(app, Some(&t)).await.status, 200);
    assert_eq!(app.get("/ready").await.json()["shared_store"], "up");

    // Paused (as if swapped out): no request waits much longer than the timeout.
    redis.signal("STOP");
    for _ in 0..5 {
        let started = Instant::now();
        let r = greet(app, Some(&t)).await;
        assert_eq!(r.status, 200, "served by the local fallback");
        assert!(
            started.elapsed() < Duration::from_millis(600),
            "{:?}",
            started.elapsed()
        );
    }
    assert!(
        app.get("/ready").await.json()["shared_store"]
            .as_str()
            .unwrap()
            .starts_with("down")
    );
    redis.signal("CONT");

    // Stopped for good, then back on the same port.
    drop(redis);
    for _ in 0..3 {
        let started = Instant::now();
        assert_eq!(greet(app, Some(&t)).await.status, 200);
        assert!(started.elapsed() < Duration::from_millis(600));
    }
    let _back = Redis::start_on(port);
    let mut shared_again = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        greet(app, Some(&t)).await;
        if app.get("/ready").await.json()["shared_store"] == "up" {
            shared_again = true;
            break;
        }
    }
    assert!(
        shared_again,
        "the shared budget applies again once Redis is back"
    );
}

#[actix_web::test]
#[ignore = "needs redis-server: cargo test --test api -- --ignored scale (.ci/run runs them)"]
async fn the_refuse_policy_answers_503_while_redis_is_down() {
    let redis = Redis::start();
    let (apps, key, issuer) =
        instances(1, &redis, &[("GATEHOUSE_RATE_LIMIT__REDIS_DOWN", "refuse")]).await;
    let t = token(&key, &issuer, "dave");
    assert_eq!(greet(&apps[0], Some(&t)).await.status, 200);
    drop(redis);
    let r = greet(&apps[0], Some(&t)).await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(r.header("retry-after").as_deref(), Some("1"));
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    let body = r.json();
    assert_eq!(body["jsonrpc"], "2.0", "{body}");
    assert_eq!(body["error"]["code"], -32000, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("shared rate-limit store"),
        "{body}"
    );
    assert_eq!(apps[0].get("/ready").await.status, 503);
}

#[actix_web::test]
#[ignore = "needs redis-server: cargo test --test api -- --ignored scale (.ci/run runs them)"]
async fn a_list_change_on_one_instance_reaches_listen_streams_on_another() {
    let redis = Redis::start();
    let url = redis.url();
    let a = spawn_app(&[
        ("GATEHOUSE_AUTH__ENABLED", "false"),
        ("REDIS_URL", url.as_str()),
    ])
    .await;
    let b = spawn_app(&[
        ("GATEHOUSE_AUTH__ENABLED", "false"),
        ("REDIS_URL", url.as_str()),
    ])
    .await;
    let mut stream = crate::helpers::SseStream::new(
        modern(
            &b,
            None,
            json!("on-b"),
            "subscriptions/listen",
            &with_meta(json!({"notifications": {"toolsListChanged": true}})),
        )
        .send()
        .await
        .unwrap(),
    );
    let ack = stream.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    // The relay subscribes in the background; publish until B has heard once.
    let mut heard: Option<Value> = None;
    for _ in 0..20 {
        send(
            &a,
            None,
            "tools/call",
            json!({"name": "test_trigger_tool_change", "arguments": {}}),
        )
        .await;
        if let Some(n) = stream.next(Duration::from_millis(250)).await {
            heard = Some(n);
            break;
        }
    }
    let n = heard.expect("B's stream hears A's change");
    assert_eq!(n["method"], "notifications/tools/list_changed");
    assert_eq!(
        n["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        "on-b"
    );
    // Once per change: one more announcement, one more notification.
    while stream.next(Duration::from_millis(300)).await.is_some() {}
    send(
        &a,
        None,
        "tools/call",
        json!({"name": "test_trigger_tool_change", "arguments": {}}),
    )
    .await;
    assert!(stream.next(Duration::from_secs(2)).await.is_some());
    assert!(
        stream.next(Duration::from_millis(500)).await.is_none(),
        "delivered once"
    );
    // A change made on B itself reaches B's stream once too (not echoed back through Redis).
    send(
        &b,
        None,
        "tools/call",
        json!({"name": "test_trigger_tool_change", "arguments": {}}),
    )
    .await;
    assert!(stream.next(Duration::from_secs(2)).await.is_some());
    assert!(
        stream.next(Duration::from_millis(500)).await.is_none(),
        "no echo"
    );
}

#[actix_web::test]
#[ignore = "needs redis-server: cargo test --test api -- --ignored scale (.ci/run runs them)"]
async fn a_confirmation_is_accepted_once_across_instances() {
    let redis = Redis::start();
    let (apps, key, issuer) = instances(
        2,
        &redis,
        &[(
            "MCP_STATE_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        )],
    )
    .await;
    let t = {
        let now = crate::issuer::now();
        key.sign(
            &json!({"iss": issuer.url, "sub": "root", "aud": AUDIENCE, "exp": now + 300,
                         "iat": now, "scopes": ["admin"]}),
        )
    };
    let params = |extra: Value| {
        let mut p = json!({"name": "admin_action", "arguments": {"action": "wipe"},
                           "_meta": crate::modern::meta(json!({"elicitation": {}}))});
        if let Value::Object(m) = extra {
            for (k, v) in m {
                p[k] = v;
            }
        }
        p
    };
    let asked = send(&apps[0], Some(&t), "tools/call", params(json!({})))
        .await
        .json();
    let state = asked["result"]["requestState"].clone();
    assert!(state.is_string(), "{asked}");
    let yes = json!({"inputResponses": {"confirm": {"action": "accept", "content": {"confirm": true}}},
                     "requestState": state});
    let done = send(&apps[1], Some(&t), "tools/call", params(yes.clone())).await;
    assert!(done.text.contains("performed by root"), "{}", done.text);
    // Replayed to the instance that asked, and to the one that performed it: refused on both.
    for app in &apps {
        let replay = send(app, Some(&t), "tools/call", params(yes.clone()))
            .await
            .json();
        assert_eq!(replay["error"]["code"], -32602, "{replay}");
    }
}

/// The wait a budget names when it refuses.
fn wait_of(r: Result<(), gatehouse::budget::Refused>) -> Duration {
    match r {
        Err(gatehouse::budget::Refused::Wait(w)) => w,
        other => panic!("expected a wait, got {other:?}"),
    }
}

#[actix_web::test]
#[ignore = "needs redis-server: cargo test --test api -- --ignored scale (.ci/run runs them)"]
async fn the_shared_and_the_local_limiter_enforce_the_same_rate() {
    use gatehouse::budget::{Budget, Shared};
    use std::sync::Arc;
    let redis = Redis::start();
    // Rates that 60,000 does not divide, and rates above 1,000 a second, up to the largest the
    // settings accept: after the burst is spent, taking a whole burst again must wait
    // burst x 60 s / rate in both, to within 1%.
    for (per_minute, burst) in [
        (7_000u32, 100u32),
        (59_999, 1_000),
        (120_000, 2_000),
        (600_000, 10_000),
        (1_000_000, 20_000),
    ] {
        let store =
            gatehouse::shared_store::SharedStore::new(&redis.url(), Duration::from_secs(1), false)
                .unwrap();
        let shared = Budget::new(
            "rate_compare",
            per_minute,
            burst,
            Some(Arc::new(Shared {
                store,
                when_down: gatehouse::config::RedisDown::Local,
            })),
        );
        let memory = Budget::new("rate_compare", per_minute, burst, None);
        let expected = 60.0 * f64::from(burst) / f64::from(per_minute);
        let key = format!("subject-{per_minute}");
        for (name, budget) in [("shared", &shared), ("local", &memory)] {
            budget.take(&key, burst).await.unwrap();
            let waited = wait_of(budget.take(&key, burst).await).as_secs_f64();
            let off = (waited - expected).abs() / expected;
            assert!(
                off < 0.01,
                "{name} at {per_minute}/min: waits {waited} s for {burst} cells, expected {expected} s"
            );
        }
    }
}

#[actix_web::test]
#[ignore = "needs redis-server: cargo test --test api -- --ignored scale (.ci/run runs them)"]
async fn a_dpop_proof_replayed_to_another_instance_is_refused() {
    let redis = Redis::start();
    let (apps, key, issuer) =
        instances(2, &redis, &[("PUBLIC_URL", "https://gatehouse.test")]).await;
    let client = crate::dpop::Client::new();
    let t = crate::issuer::now();
    let token = key.sign(
        &json!({"iss": issuer.url, "sub": "ada", "aud": AUDIENCE, "exp": t + 300,
        "iat": t, "scopes": [], "cnf": {"jkt": client.jkt()}}),
    );
    let proof = client.proof(AUDIENCE, &token);
    let r = crate::dpop::call(&apps[0], "DPoP", &token, &[&proof]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // The same proof at the other instance: its jti is already taken in Redis.
    let r = crate::dpop::call(&apps[1], "DPoP", &token, &[&proof]).await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(r.json()["error"], "invalid_dpop_proof");
    // A fresh proof works there.
    let r = crate::dpop::call(&apps[1], "DPoP", &token, &[&client.proof(AUDIENCE, &token)]).await;
    assert_eq!(r.status, 200, "{}", r.text);
}
