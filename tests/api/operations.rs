//! Operability: Prometheus metrics on their own listener (never the public port), with bounded
//! labels; and the audit trail of tool calls, prompt gets and resource reads.

use serde_json::json;

use crate::helpers::{free_port, log_lines, spawn_with_issuer};

/// The value of the sample whose line holds every fragment, if any.
fn sample(text: &str, name: &str, fragments: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(name) && fragments.iter().all(|f| l.contains(f)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .next()
}

#[actix_web::test]
async fn metrics_are_served_on_their_own_port_with_bounded_labels() {
    let mp = free_port();
    let mp_text = mp.to_string();
    let app = spawn_with_issuer(&[("METRICS_PORT", mp_text.as_str())]).await;
    let alice = app.token("alice-metrics-subject", &[]);
    assert_eq!(
        app.call_tool(Some(&alice), "greet_user", json!({"name": "a"}))
            .await
            .status,
        200
    );
    app.call_tool(Some(&alice), "fixture_fail", json!({})).await;
    assert_eq!(
        app.call_tool(Some(&alice), "admin_action", json!({"action": "x"}))
            .await
            .status,
        403
    );
    assert_eq!(app.rpc(None, "ping", json!({})).await.status, 401);
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}).to_string();
    let r = app
        .send(app.mcp(None).header("authorization", "Bearer").body(ping))
        .await;
    assert_eq!(r.status, 400);
    let mut c = app.claims("alice", &[]);
    c["exp"] = json!(crate::issuer::now() - 3600);
    assert_eq!(
        app.rpc(Some(&app.rsa().sign(&c)), "ping", json!({}))
            .await
            .status,
        401
    );
    let mut c = app.claims("alice", &[]);
    c["aud"] = json!("https://elsewhere.example/mcp");
    assert_eq!(
        app.rpc(Some(&app.rsa().sign(&c)), "ping", json!({}))
            .await
            .status,
        401
    );

    // Not on the public port.
    assert_eq!(app.get("/metrics").await.status, 404);
    let text = app
        .client
        .get(format!("http://127.0.0.1:{mp}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let at_least_one = |name: &str, fragments: &[&str]| {
        let v = sample(&text, name, fragments)
            .unwrap_or_else(|| panic!("no {name} {fragments:?} in\n{text}"));
        assert!(v >= 1.0, "{name} {fragments:?} = {v}");
    };
    at_least_one(
        "gatehouse_requests_total",
        &[
            r#"era="2025-03-26""#,
            r#"method="tools/call""#,
            r#"status="200""#,
        ],
    );
    at_least_one("gatehouse_requests_total", &[r#"status="401""#]);
    at_least_one(
        "gatehouse_tool_calls_total",
        &[r#"tool="greet_user""#, r#"outcome="ok""#],
    );
    at_least_one(
        "gatehouse_tool_calls_total",
        &[r#"tool="fixture_fail""#, r#"outcome="tool_error""#],
    );
    at_least_one(
        "gatehouse_tool_calls_total",
        &[r#"tool="admin_action""#, r#"outcome="refused""#],
    );
    at_least_one(
        "gatehouse_tool_call_duration_seconds_count",
        &[r#"tool="greet_user""#],
    );
    for reason in ["no_token", "malformed", "expired", "audience", "scope"] {
        at_least_one(
            "gatehouse_auth_refusals_total",
            &[&format!(r#"reason="{reason}""#)],
        );
    }
    at_least_one("gatehouse_jwks_fetches_total", &[r#"result="ok""#]);
    assert_eq!(
        sample(&text, "gatehouse_jwks_keys", &[]),
        Some(2.0),
        "{text}"
    );
    assert!(sample(&text, "gatehouse_jwks_age_seconds", &[]).is_some());
    assert!(sample(&text, "gatehouse_in_flight_requests", &[]).is_some());
    assert!(sample(&text, "gatehouse_open_streams", &[]).is_some());
    // Labels never carry subjects or raw paths.
    assert!(!text.contains("alice-metrics-subject"));
    assert!(!text.contains("/mcp"));
}

#[actix_web::test]
async fn rate_limit_refusals_are_counted() {
    let mp = free_port();
    let mp_text = mp.to_string();
    let app = spawn_with_issuer(&[
        ("METRICS_PORT", mp_text.as_str()),
        ("GATEHOUSE_RATE_LIMIT__REQUESTS_PER_MINUTE", "1"),
        ("GATEHOUSE_RATE_LIMIT__REQUESTS_BURST", "1"),
    ])
    .await;
    app.rpc(None, "ping", json!({})).await;
    assert_eq!(app.rpc(None, "ping", json!({})).await.status, 429);
    let text = reqwest::get(format!("http://127.0.0.1:{mp}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        sample(
            &text,
            "gatehouse_rate_limited_total",
            &[r#"budget="requests""#]
        )
        .unwrap()
            >= 1.0
    );
}

#[test]
fn the_metrics_port_must_differ_from_the_public_one() {
    let env = std::collections::HashMap::from([
        ("PORT".to_string(), "8181".to_string()),
        ("METRICS_PORT".to_string(), "8181".to_string()),
    ]);
    let err = gatehouse::config::Settings::load(&env, &crate::helpers::config_dir())
        .unwrap_err()
        .to_string();
    assert!(err.contains("METRICS_PORT"), "{err}");
}

#[actix_web::test]
async fn every_tool_call_prompt_get_and_resource_read_is_audited() {
    let app = spawn_with_issuer(&[]).await;
    let mut c = app.claims("auditor-7", &[]);
    c["oid"] = json!("org-audit");
    let t = app.rsa().sign(&c);
    let rid = "audit-req-123";
    let call = |tool: &str, args: serde_json::Value| {
        app.mcp(Some(&t))
            .header("x-request-id", rid)
            .body(json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":tool,"arguments":args}}).to_string())
    };
    app.send(call("greet_user", json!({"name": "ArgumentSecret42"})))
        .await;
    app.send(call("fixture_fail", json!({}))).await;
    app.send(call("admin_action", json!({"action": "x"}))).await;
    app.send(call("no_such_tool", json!({}))).await;
    app.rpc(
        Some(&t),
        "prompts/get",
        json!({"name": "test_simple_prompt"}),
    )
    .await;
    app.rpc(
        Some(&t),
        "resources/read",
        json!({"uri": "test://static-text"}),
    )
    .await;
    let lines: Vec<String> = log_lines()
        .into_iter()
        .filter(|l| l.contains("gatehouse::audit") && l.contains("subject=auditor-7"))
        .collect();
    let find = |fragments: &[&str]| {
        lines
            .iter()
            .find(|l| fragments.iter().all(|f| l.contains(f)))
            .unwrap_or_else(|| panic!("no audit line with {fragments:?} in {lines:#?}"))
            .clone()
    };
    let ok = find(&["name=greet_user", "outcome=ok"]);
    for field in [
        "time=",
        &format!("request_id={rid}"),
        "organization=org-audit",
        "client_id=test-client",
        "era=2025-03-26",
        "method=tools/call",
        "duration_ms=",
    ] {
        assert!(ok.contains(field), "{field} missing: {ok}");
    }
    find(&["name=fixture_fail", "outcome=tool_error"]);
    find(&["name=admin_action", "outcome=refused:insufficient_scope"]);
    find(&["name=no_such_tool", "outcome=refused:unknown_name"]);
    find(&[
        "method=prompts/get",
        "name=test_simple_prompt",
        "outcome=ok",
    ]);
    find(&[
        "method=resources/read",
        "name=test://static-text",
        "outcome=ok",
    ]);
    // Never arguments or results.
    assert!(lines.iter().all(|l| !l.contains("ArgumentSecret42")));
    assert!(lines.iter().all(|l| !l.contains("Hi ")));
}

#[actix_web::test]
async fn each_test_reads_the_lines_its_own_servers_logged() {
    // Another test's server, on a thread of its own: its lines are not this test's.
    let other = std::thread::Builder::new()
        .name("another-test".into())
        .spawn(|| {
            actix_web::rt::System::new().block_on(async {
                let app = crate::helpers::spawn_open(&[]).await;
                app.call_tool(None, "no_such_tool_logged_elsewhere", json!({}))
                    .await;
            })
        })
        .unwrap();
    other.join().unwrap();
    let app = crate::helpers::spawn_open(&[]).await;
    app.call_tool(None, "no_such_tool_logged_here", json!({}))
        .await;
    let mine = log_lines();
    assert!(
        mine.iter()
            .any(|l| l.contains("name=no_such_tool_logged_here"))
    );
    assert!(
        !mine
            .iter()
            .any(|l| l.contains("no_such_tool_logged_elsewhere"))
    );
    let all = crate::helpers::all_log_lines();
    assert!(
        all.iter()
            .any(|l| l.contains("name=no_such_tool_logged_elsewhere"))
    );
}
