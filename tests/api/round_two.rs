//! The second hardening round: each finding reproduced as the attack it was, from the outside.
//! Streams that outlive their token, confirmations supplied unasked or replayed, a repeated
//! `MCP-Protocol-Version`, invisible characters in claims, time claims past 2^53, the metrics
//! listener, `Expect: 100-continue`, operations details, and MCP served at the root.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{ACCEPT_BOTH, SseStream, free_port, log_lines, spawn_open};
use crate::helpers::{spawn_app, spawn_with_issuer};
use crate::issuer::{TestKey, now};
use crate::modern::{listen, meta, send};

const PING: &str = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;

/// The listen stream's acknowledgement, then the request's own result as its end, within `by`.
async fn ends_with_its_result(stream: &mut SseStream, id: &str, by: Duration) {
    let ack = stream.next(Duration::from_secs(5)).await.expect("an ack");
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    let end = stream
        .next(by)
        .await
        .expect("the stream ends with its result");
    assert_eq!(end["id"], id, "{end}");
    assert!(end.get("result").is_some(), "{end}");
    assert!(stream.next(Duration::from_secs(1)).await.is_none());
}

// ---- 1. streams end with what opened them ----

#[actix_web::test]
async fn a_listen_stream_ends_when_its_token_expires() {
    let app = spawn_with_issuer(&[("GATEHOUSE_AUTH__LEEWAY_SECS", "1")]).await;
    let mut c = app.claims("stream-expiry", &[]);
    c["exp"] = json!(now() + 2);
    let token = app.rsa().sign(&c);
    let opened = Instant::now();
    let mut s = listen(
        &app,
        Some(&token),
        json!("l-exp"),
        json!({"toolsListChanged": true}),
    )
    .await;
    assert_eq!(s.status(), 200);
    ends_with_its_result(&mut s, "l-exp", Duration::from_secs(8)).await;
    // At exp + leeway (3 s from now, to the second), not before and not long after.
    let lived = opened.elapsed();
    assert!(lived >= Duration::from_millis(1500), "{lived:?}");
    assert!(lived < Duration::from_millis(5500), "{lived:?}");
    assert_eq!(app.send(app.mcp(Some(&token)).body(PING)).await.status, 401);
}

#[actix_web::test]
async fn a_listen_stream_ends_when_its_signing_key_leaves_the_key_set() {
    let app = spawn_with_issuer(&[("GATEHOUSE_AUTH__JWKS_COOLDOWN_SECS", "1")]).await;
    let token = app.token("stream-key", &[]);
    let mut s = listen(
        &app,
        Some(&token),
        json!("l-key"),
        json!({"toolsListChanged": true}),
    )
    .await;
    assert_eq!(s.status(), 200);
    // The issuer rotates: rsa-1 is gone, rsa-2 is new. A token signed by rsa-2 makes this
    // instance refetch at once (past the 1 s cooldown).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let rsa2 = TestKey::rsa("rsa-2", 1);
    app.issuer().set_keys(&[&rsa2, app.ec()]);
    let fresh = rsa2.sign(&app.claims("someone-else", &[]));
    assert_eq!(app.send(app.mcp(Some(&fresh)).body(PING)).await.status, 200);
    let withdrawn = Instant::now();
    ends_with_its_result(&mut s, "l-key", Duration::from_secs(4)).await;
    assert!(withdrawn.elapsed() < Duration::from_secs(3));
    assert_eq!(app.send(app.mcp(Some(&token)).body(PING)).await.status, 401);
}

#[actix_web::test]
async fn a_listen_stream_ends_after_mcp_max_stream_secs() {
    let app = spawn_open(&[("GATEHOUSE_MCP__MAX_STREAM_SECS", "2")]).await;
    let opened = Instant::now();
    let mut s = listen(
        &app,
        None,
        json!("l-max"),
        json!({"toolsListChanged": true}),
    )
    .await;
    ends_with_its_result(&mut s, "l-max", Duration::from_secs(6)).await;
    let lived = opened.elapsed();
    assert!(
        lived >= Duration::from_millis(1900) && lived < Duration::from_secs(4),
        "{lived:?}"
    );
}

#[actix_web::test]
async fn a_2025_call_stream_ends_with_an_error_when_its_token_expires() {
    let app = spawn_with_issuer(&[("GATEHOUSE_AUTH__LEEWAY_SECS", "0")]).await;
    let mut c = app.claims("call-expiry", &[]);
    c["exp"] = json!(now() + 2);
    let token = app.rsa().sign(&c);
    let body = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
        "name": "fixture_slow", "arguments": {"ms": 10000}, "_meta": {"progressToken": "p"}}});
    let started = Instant::now();
    let resp = app
        .mcp(Some(&token))
        .header("mcp-protocol-version", "2025-06-18")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut s = SseStream::new(resp);
    let mut last = Value::Null;
    while let Some(m) = s.next(Duration::from_secs(8)).await {
        last = m;
        if last.get("id").is_some() {
            break;
        }
    }
    assert_eq!(last["id"], 3, "{last}");
    assert_eq!(last["error"]["code"], -32000, "{last}");
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("access token expired"),
        "{last}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

// ---- 2. answers count only beside the state that asked, once ----

#[actix_web::test]
async fn a_confirmation_cannot_be_supplied_unasked_or_replayed() {
    let app = spawn_with_issuer(&[
        ("GATEHOUSE_RATE_LIMIT__TOOL_CALLS_BURST", "200"),
        ("GATEHOUSE_RATE_LIMIT__REQUESTS_BURST", "200"),
    ])
    .await;
    let token = app.token("confirm-replay-5", &["admin"]);
    let params = |extra: Value| {
        let mut p = json!({"name": "admin_action", "arguments": {"action": "drop"},
                           "_meta": meta(json!({"elicitation": {}}))});
        if let Value::Object(m) = extra {
            for (k, v) in m {
                p[k] = v;
            }
        }
        p
    };
    let yes = json!({"confirm": {"action": "accept", "content": {"confirm": true}}});
    // Supplied unasked: the answer alone does nothing; the tool asks.
    let unasked = send(
        &app,
        Some(&token),
        "tools/call",
        params(json!({"inputResponses": yes})),
    )
    .await
    .json();
    assert_eq!(
        unasked["result"]["resultType"], "input_required",
        "{unasked}"
    );
    // The round that asked is audited as such, not as an execution.
    let audited = log_lines().into_iter().any(|l| {
        l.contains("gatehouse::audit")
            && l.contains("subject=confirm-replay-5")
            && l.contains("outcome=input_required")
    });
    assert!(audited);
    // One confirmed state, replayed 40 times at once: performed once.
    let state = unasked["result"]["requestState"].clone();
    let replays = (0..40).map(|_| {
        send(
            &app,
            Some(&token),
            "tools/call",
            params(json!({"inputResponses": yes, "requestState": state})),
        )
    });
    let answers = futures_util::future::join_all(replays).await;
    let performed = answers
        .iter()
        .filter(|r| r.text.contains("performed by confirm-replay-5"))
        .count();
    assert_eq!(performed, 1);
    for r in answers.iter().filter(|r| !r.text.contains("performed")) {
        assert_eq!(r.json()["error"]["code"], -32602, "{}", r.text);
    }
}

// ---- 6. one MCP-Protocol-Version ----

#[actix_web::test]
async fn a_repeated_protocol_version_header_is_refused() {
    let app = spawn_open(&[]).await;
    let legacy = app
        .send(
            app.mcp(None)
                .header("mcp-protocol-version", "2025-06-18")
                .header("mcp-protocol-version", "2025-03-26")
                .body(PING),
        )
        .await;
    assert_eq!(legacy.status, 400, "{}", legacy.text);
    assert_eq!(legacy.json()["error"]["code"], -32600);
    assert_eq!(legacy.json()["id"], 1);
    let body = json!({"jsonrpc": "2.0", "id": 2, "method": "server/discover", "params": {"_meta": meta(json!({}))}});
    let modern = app
        .send(
            app.mcp(None)
                .header("mcp-protocol-version", "2026-07-28")
                .header("mcp-protocol-version", "2026-07-28")
                .header("mcp-method", "server/discover")
                .body(body.to_string()),
        )
        .await;
    assert_eq!(modern.status, 400, "{}", modern.text);
    assert_eq!(modern.json()["error"]["code"], -32020);
    assert!(modern.text.contains("must appear once"));
}

// ---- 7. invisible characters and blank subjects ----

#[actix_web::test]
async fn invisible_characters_in_claims_are_escaped_and_blank_subjects_refused() {
    let app = spawn_with_issuer(&[]).await;
    let mut c = app.claims("ev\u{202E}il\u{200B}-7", &[]);
    c["oid"] = json!("org\u{061C}\u{FEFF}");
    c["client_id"] = json!("cl\u{2028}ient");
    let token = app.rsa().sign(&c);
    let r = app
        .call_tool(Some(&token), "greet_user", json!({"name": "a"}))
        .await;
    assert_eq!(r.status, 200);
    let lines: Vec<String> = log_lines()
        .into_iter()
        .filter(|l| l.contains("ev\\u{202e}il\\u{200b}-7"))
        .collect();
    assert!(lines.iter().any(|l| l.contains("gatehouse::audit")));
    assert!(lines.iter().any(|l| l.contains("gatehouse::access")));
    let audit = lines
        .iter()
        .find(|l| l.contains("gatehouse::audit"))
        .unwrap();
    assert!(
        audit.contains("organization=org\\u{61c}\\u{feff}"),
        "{audit}"
    );
    assert!(audit.contains("client_id=cl\\u{2028}ient"), "{audit}");
    for line in log_lines() {
        for c in ['\u{202E}', '\u{200B}', '\u{061C}', '\u{FEFF}', '\u{2028}'] {
            assert!(!line.contains(c), "raw U+{:04X} in {line:?}", c as u32);
        }
    }
    for blank in ["", " \t ", "\u{200B}\u{FEFF}", "\u{7}\u{202E}", "\u{3000}"] {
        let token = app.rsa().sign(&app.claims(blank, &[]));
        let r = app.send(app.mcp(Some(&token)).body(PING)).await;
        assert_eq!(r.status, 401, "{blank:?}");
        assert!(
            r.header("www-authenticate")
                .unwrap()
                .contains("invalid_token")
        );
    }
}

// ---- 10. time claims past 2^53 ----

#[actix_web::test]
async fn a_time_claim_past_2_to_the_53_is_refused_as_written() {
    let app = spawn_with_issuer(&[]).await;
    for (exp, status) in [
        (json!(9_007_199_254_740_992u64), 200),
        (json!(9_007_199_254_740_993u64), 401),
        (json!(18_446_744_073_709_551_615u64), 401),
    ] {
        let mut c = app.claims("huge-exp", &[]);
        c["exp"] = exp.clone();
        let r = app
            .send(app.mcp(Some(&app.rsa().sign(&c))).body(PING))
            .await;
        assert_eq!(r.status, status, "exp {exp}");
    }
    let mut c = app.claims("huge-nbf", &[]);
    c["nbf"] = json!(9_007_199_254_740_993u64);
    let r = app
        .send(app.mcp(Some(&app.rsa().sign(&c))).body(PING))
        .await;
    assert_eq!(r.status, 401);
}

// ---- 4 and 11. the metrics listener ----

#[actix_web::test]
async fn the_metrics_listener_checks_host_and_token_and_reports_only_what_exists() {
    let mp = free_port();
    let mp_text = mp.to_string();
    let secret = "metrics-secret-0123456789";
    let app = spawn_with_issuer(&[
        ("METRICS_PORT", mp_text.as_str()),
        ("METRICS_TOKEN", secret),
    ])
    .await;
    assert!(
        log_lines()
            .iter()
            .any(|l| l.contains(&format!("metrics on 127.0.0.1:{mp}")))
    );
    let url = format!("http://127.0.0.1:{mp}/metrics");
    let rebound = app
        .client
        .get(&url)
        .header("host", "evil.example")
        .bearer_auth(secret)
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), 403);
    let anonymous = app.client.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(
        anonymous.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let wrong = app
        .client
        .get(&url)
        .bearer_auth("metrics-secret-0123456780")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let ok = app
        .client
        .get(&url)
        .bearer_auth(secret)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let text = ok.text().await.unwrap();
    for family in [
        r#"gatehouse_auth_refusals_total{reason="keys_unavailable"}"#,
        r#"gatehouse_auth_refusals_total{reason="issuer"}"#,
        r#"gatehouse_rate_limited_total{budget="listen_streams"}"#,
    ] {
        assert!(text.contains(family), "{family} missing");
    }
    // No shared store is configured in this process's tests unless one names it (in any test:
    // the metrics are the process's); when none is, none is reported down.
    if !crate::helpers::all_log_lines()
        .iter()
        .any(|l| l.contains("shared store"))
    {
        assert!(!text.contains("gatehouse_shared_store_up"), "{text}");
    }
    // An address that is not one is refused at startup, naming the variable.
    let err = gatehouse::config::Settings::load(
        &std::collections::HashMap::from([(
            "METRICS_HOST".to_string(),
            "metrics.example".to_string(),
        )]),
        &crate::helpers::config_dir(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("METRICS_HOST"), "{err}");
}

// ---- 9. Expect: 100-continue ----

/// Sends a head (and, after a `100 Continue`, the body); returns everything read back.
fn expecting(port: u16, extra: &str, body: &str, declared: usize) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nAccept: {ACCEPT_BOTH}\r\nContent-Length: {declared}\r\nExpect: 100-continue\r\n{extra}\r\n"
    )
    .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).unwrap_or(0);
    got.extend_from_slice(&buf[..n]);
    if got.starts_with(b"HTTP/1.1 100") {
        s.write_all(body.as_bytes()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !String::from_utf8_lossy(&got).contains("\r\n\r\n{") && Instant::now() < deadline {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[actix_web::test]
async fn expect_continue_is_answered_with_the_final_refusal_first() {
    let app = spawn_with_issuer(&[]).await;
    let port = app.port;
    let token = app.token("expecting", &[]);
    let auth = format!("Authorization: Bearer {token}\r\n");
    let stale = app.rsa().sign(&{
        let mut c = app.claims("expecting", &[]);
        c["exp"] = json!(now() - 600);
        c
    });
    let stale = format!("Authorization: Bearer {stale}\r\n");
    let cases = [
        ("", 1_000, "HTTP/1.1 401"),
        (stale.as_str(), 1_000, "HTTP/1.1 401"),
        ("Authorization: Bearer\r\n", 1_000, "HTTP/1.1 400"),
        ("Origin: https://evil.example\r\n", 1_000, "HTTP/1.1 403"),
        (auth.as_str(), 64 << 20, "HTTP/1.1 413"),
    ];
    for (extra, declared, status) in cases {
        let (extra, status) = (extra.to_string(), status.to_string());
        let got = tokio::task::spawn_blocking(move || expecting(port, &extra, PING, declared))
            .await
            .unwrap();
        assert!(got.starts_with(&status), "{status}: {got}");
        assert!(!got.contains("100 Continue"), "{got}");
        assert!(
            got.to_ascii_lowercase().contains("connection: close"),
            "{got}"
        );
        let lower = got.to_ascii_lowercase();
        for header in [
            "cache-control: no-store",
            "x-request-id: ",
            "x-content-type-options: nosniff",
        ] {
            assert!(lower.contains(header), "{header}: {got}");
        }
    }
    // Past every check: 100 Continue, then the answer.
    let got = tokio::task::spawn_blocking(move || expecting(port, &auth, PING, PING.len()))
        .await
        .unwrap();
    assert!(
        got.starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200"),
        "{got}"
    );
    assert!(got.contains(r#""result":{}"#), "{got}");
}

/// A refusal sent before the body is counted in `gatehouse_requests_total` like any other
/// (checked in a process of its own, whose counters no other test moves).
#[actix_web::test]
async fn refusals_before_the_body_are_counted() {
    let (port, metrics) = (free_port(), free_port());
    let mut child = crate::process::gatehouse(&[
        ("PORT", &port.to_string()),
        ("METRICS_PORT", &metrics.to_string()),
        ("GATEHOUSE_AUTH__ENABLED", "false"),
    ])
    .spawn()
    .unwrap();
    crate::process::wait_up(port).await;
    let count = |text: &str, status: &str| -> u64 {
        let series =
            format!("gatehouse_requests_total{{era=\"-\",method=\"-\",status=\"{status}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(series.as_str())?.trim().parse().ok())
            .unwrap_or(0)
    };
    let scrape = || async move {
        reqwest::get(format!("http://127.0.0.1:{metrics}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let before = scrape().await;
    let got = tokio::task::spawn_blocking(move || {
        [
            expecting(port, "Origin: https://evil.example\r\n", PING, 1_000),
            expecting(port, "", PING, 64 << 20),
        ]
    })
    .await
    .unwrap();
    assert!(got[0].starts_with("HTTP/1.1 403"), "{}", got[0]);
    assert!(got[1].starts_with("HTTP/1.1 413"), "{}", got[1]);
    let after = scrape().await;
    assert_eq!(count(&after, "403"), count(&before, "403") + 1, "{after}");
    assert_eq!(count(&after, "413"), count(&before, "413") + 1, "{after}");
    let _ = child.kill();
    let _ = child.wait();
}

// ---- 11. operations details ----

#[actix_web::test]
async fn placeholder_or_repeated_state_keys_are_warned_about() {
    let zeros = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let _app = spawn_app(&[
        ("GATEHOUSE_AUTH__ENABLED", "false"),
        ("MCP_STATE_KEY", zeros),
        ("MCP_STATE_KEY_PREVIOUS", zeros),
    ])
    .await;
    let lines = log_lines();
    assert!(lines.iter().any(|l| l.starts_with("WARN")
        && l.contains("MCP_STATE_KEY (mcp.state_key) is one byte repeated")));
    assert!(lines.iter().any(|l| l.starts_with("WARN")
        && l.contains("MCP_STATE_KEY_PREVIOUS (mcp.state_key_previous) equals MCP_STATE_KEY")));
    assert!(!lines.iter().any(|l| l.contains(zeros)));
}

// ---- MCP at the root ----

#[actix_web::test]
async fn mcp_can_be_served_at_the_root() {
    let app = spawn_with_issuer(&[("GATEHOUSE_MCP__PATH", "/")]).await;
    let base = app.base.clone();
    assert_eq!(app.resource, base.replace("127.0.0.1", "localhost"));
    let token = app.token("rooted", &[]);
    let post = |path: &str| {
        app.client
            .post(format!("{base}{path}"))
            .header("accept", ACCEPT_BOTH)
            .header("content-type", "application/json")
    };
    let r = app.send(post("/").bearer_auth(&token).body(PING)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app.send(post("/").body(PING)).await;
    assert_eq!(r.status, 401);
    let challenge = r.header("www-authenticate").unwrap();
    assert!(
        challenge.contains("/.well-known/oauth-protected-resource\""),
        "{challenge}"
    );
    let r = app
        .send(
            post("/")
                .bearer_auth(&token)
                .header("origin", "https://evil.example")
                .body(PING),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(app.get("/").await.status, 405);
    assert_eq!(app.get("/health").await.status, 200);
    assert_eq!(app.get("/ready").await.status, 200);
    let prm = app.get("/.well-known/oauth-protected-resource").await;
    assert_eq!(prm.status, 200);
    assert_eq!(prm.json()["resource"], app.resource.as_str());
    assert_eq!(
        app.get("/.well-known/oauth-protected-resource/")
            .await
            .status,
        404
    );
    // The old path is nothing now.
    let r = app.send(post("/mcp").bearer_auth(&token).body(PING)).await;
    assert_eq!(r.status, 404);
}
