//! Tasks on several instances sharing one Redis: a task created on one instance is read,
//! answered and cancelled on another (the handler keeps running where it started), and a task
//! whose instance is killed is reported failed within three heartbeats, never `working`
//! forever. Needs `redis-server`: `#[ignore]`d like `scale`, run by `.ci/run`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{TestApp, free_port, settings, spawn_settings};
use crate::scale::{Redis, instances, token};
use crate::tasks::{created, task, terminal, until};

#[actix_web::test]
#[ignore = "needs redis-server: cargo test --test api -- --ignored scale (.ci/run runs them)"]
async fn a_task_created_on_one_instance_is_answered_and_cancelled_on_another() {
    let redis = Redis::start();
    let (apps, key, issuer) = instances(2, &redis, &[]).await;
    let (a, b) = (&apps[0], &apps[1]);
    let alice = token(&key, &issuer, "alice");
    let alice = Some(alice.as_str());
    // Created on A, asked on A, answered on B.
    let id = created(
        a,
        alice,
        "confirm_delete",
        json!({"filename": "shared.txt"}),
    )
    .await;
    let t = until(b, alice, &id, Duration::from_secs(5), |t| {
        t["status"] == "input_required"
    })
    .await;
    assert_eq!(
        t["inputRequests"]["confirm"]["method"],
        "elicitation/create"
    );
    let answer = json!({"confirm": {"action": "accept", "content": {"confirm": true}}});
    let ack = task(
        b,
        alice,
        "tasks/update",
        &id,
        json!({"inputResponses": answer}),
    )
    .await;
    assert_eq!(ack.json()["result"]["resultType"], "complete");
    let done = until(a, alice, &id, Duration::from_secs(5), terminal).await;
    assert_eq!(done["status"], "completed");
    assert_eq!(done["result"]["content"][0]["text"], "Deleted shared.txt");
    // Another subject on B: exactly an unknown id.
    let mallory = token(&key, &issuer, "mallory");
    let r = task(b, Some(&mallory), "tasks/get", &id, json!({})).await;
    assert_eq!(r.json()["error"]["code"], -32602);
    // Cancelled on B: the handler on A hears it (its signal fires) at once, not at a heartbeat.
    let id = created(
        a,
        alice,
        "slow_compute",
        json!({"seconds": 60, "label": "x"}),
    )
    .await;
    let asked = Instant::now();
    task(b, alice, "tasks/cancel", &id, json!({})).await;
    let t = until(a, alice, &id, Duration::from_secs(3), terminal).await;
    assert_eq!(t["status"], "cancelled");
    assert!(asked.elapsed() < Duration::from_secs(2));
}

/// The real binary with auth off, sharing `redis_url`, once it answers `/health` (its output
/// is not read: a pipe nobody drains would stall it).
async fn binary(redis_url: &str, vars: &[(&str, &str)]) -> (std::process::Child, TestApp) {
    let port = free_port();
    let port_text = port.to_string();
    let mut all = vec![
        ("PORT", port_text.as_str()),
        ("GATEHOUSE_AUTH__ENABLED", "false"),
        ("REDIS_URL", redis_url),
        ("RUST_LOG", "warn"),
    ];
    all.extend_from_slice(vars);
    let child = crate::process::gatehouse(&all)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    crate::process::wait_up(port).await;
    let app = TestApp {
        base: format!("http://127.0.0.1:{port}"),
        port,
        resource: String::new(),
        metadata_url: String::new(),
        client: reqwest::Client::builder().no_proxy().build().unwrap(),
        issuer: None,
        rsa: None,
        ec: None,
    };
    (child, app)
}

#[actix_web::test]
#[ignore = "needs redis-server: cargo test --test api -- --ignored scale (.ci/run runs them)"]
async fn at_sigterm_running_tasks_get_the_drain_period_then_fail() {
    let redis = Redis::start();
    let url = redis.url();
    let (mut a_process, a) =
        binary(&url, &[("GATEHOUSE_SERVER__SHUTDOWN_TIMEOUT_SECS", "3")]).await;
    let b = spawn_settings(
        settings(&[("GATEHOUSE_AUTH__ENABLED", "false"), ("REDIS_URL", &url)]),
        None,
        None,
        None,
    )
    .await;
    let short = created(
        &a,
        None,
        "slow_compute",
        json!({"seconds": 2, "label": "short"}),
    )
    .await;
    let long = created(
        &a,
        None,
        "slow_compute",
        json!({"seconds": 60, "label": "long"}),
    )
    .await;
    let ok = Command::new("kill")
        .args(["-TERM", &a_process.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let stopped = Instant::now();
    let status = loop {
        if let Some(s) = a_process.try_wait().unwrap() {
            break s;
        }
        assert!(stopped.elapsed() < Duration::from_secs(8), "A did not exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success());
    // The short task finished within the drain period; the long one failed after it.
    let t = task(&b, None, "tasks/get", &short, json!({})).await.json();
    assert_eq!(t["result"]["status"], "completed", "{t}");
    let t = task(&b, None, "tasks/get", &long, json!({})).await.json();
    assert_eq!(t["result"]["status"], "failed", "{t}");
    assert!(
        t["result"]["statusMessage"]
            .as_str()
            .unwrap()
            .contains("shut down")
    );
}

#[actix_web::test]
#[ignore = "needs redis-server: cargo test --test api -- --ignored scale (.ci/run runs them)"]
async fn a_task_whose_instance_is_killed_fails_within_three_heartbeats() {
    let redis = Redis::start();
    let url = redis.url();
    let heartbeat = ("GATEHOUSE_MCP__TASK_HEARTBEAT_SECS", "1");
    // Instance A is the real binary, so that it can be killed outright.
    let (mut a_process, a) = binary(&url, &[heartbeat]).await;
    let b = spawn_settings(
        settings(&[
            ("GATEHOUSE_AUTH__ENABLED", "false"),
            ("REDIS_URL", &url),
            heartbeat,
        ]),
        None,
        None,
        None,
    )
    .await;
    let id = created(
        &a,
        None,
        "slow_compute",
        json!({"seconds": 120, "label": "k"}),
    )
    .await;
    // B reads it working while A renews its lease.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let t = task(&b, None, "tasks/get", &id, json!({})).await.json();
    assert_eq!(t["result"]["status"], "working", "{t}");
    a_process.kill().unwrap();
    a_process.wait().unwrap();
    let killed = Instant::now();
    let t = until(&b, None, &id, Duration::from_secs(6), terminal).await;
    let within = killed.elapsed();
    assert_eq!(t["status"], "failed");
    assert!(
        within < Duration::from_millis(3200),
        "failed after {within:?}"
    );
    assert!(
        t["statusMessage"].as_str().unwrap().contains("stopped"),
        "{t}"
    );
    assert_eq!(t["error"]["code"], -32603);
    // And it stays failed.
    let again = task(&b, None, "tasks/get", &id, json!({})).await.json();
    assert_eq!(again["result"]["status"], "failed");
}
