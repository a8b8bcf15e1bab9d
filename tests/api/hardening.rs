//! The holes hostile testing found, each reproduced as the attack and now refused: connection
//! holding, unbounded batches, path aliases and absolute-form targets, key removal and
//! staleness, redirects, scope prefixes, claim ambiguity, kid-less tokens, and the smaller ones.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::helpers::{
    ACCEPT_BOTH, TestApp, log_lines, settings, spawn_open, spawn_settings, spawn_with_issuer,
};
use crate::issuer::{TestIssuer, TestKey, now};

// ---- raw sockets ----

async fn connect_from(port: u16, source: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket
        .connect(format!("127.0.0.1:{port}").parse().unwrap())
        .await
        .unwrap()
}

/// Reads until the server closes the connection or `limit` passes: what arrived, and when the
/// connection ended (`None`: still open at the limit).
async fn read_until_closed(s: &mut TcpStream, limit: Duration) -> (String, Option<Duration>) {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let left = limit.saturating_sub(start.elapsed());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Err(_) => return (String::from_utf8_lossy(&got).into(), None),
            Ok(Ok(0)) | Ok(Err(_)) => {
                return (String::from_utf8_lossy(&got).into(), Some(start.elapsed()));
            }
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

fn head(token: Option<&str>, framing: &str) -> String {
    let mut h = format!(
        "POST /mcp HTTP/1.1\r\nHost: localhost\r\nAccept: {ACCEPT_BOTH}\r\nContent-Type: application/json\r\n{framing}\r\n"
    );
    if let Some(t) = token {
        h.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    h.push_str("\r\n");
    h
}

/// Sends a head and the start of a body, then nothing more.
async fn half_body(port: u16, token: Option<&str>, chunked: bool) -> TcpStream {
    let mut s = connect_from(port, "127.0.0.1").await;
    let (framing, start) = if chunked {
        ("Transfer-Encoding: chunked", "5\r\n{\"jso\r\n")
    } else {
        ("Content-Length: 100", "{\"jso")
    };
    s.write_all(format!("{}{start}", head(token, framing)).as_bytes())
        .await
        .unwrap();
    s
}

// ---- 1. connection holding ----

#[actix_web::test]
async fn an_early_refusal_closes_a_connection_whose_body_never_ends() {
    let app = spawn_with_issuer(&[("GATEHOUSE_SERVER__BODY_TIMEOUT_MS", "700")]).await;
    let t = app.token("alice", &[]);
    for chunked in [true, false] {
        // No token: 401 at once, and the connection ends with it.
        let mut s = half_body(app.port, None, chunked).await;
        let (text, closed) = read_until_closed(&mut s, Duration::from_secs(5)).await;
        assert!(text.starts_with("HTTP/1.1 401"), "{text}");
        assert!(text.contains("connection: close"), "{text}");
        assert!(text.contains("www-authenticate"), "{text}");
        let closed = closed.unwrap_or_else(|| panic!("401 left open (chunked={chunked})"));
        assert!(closed < Duration::from_secs(2), "{closed:?}");
        // A token: 408 after the body timeout, then closed.
        let mut s = half_body(app.port, Some(&t), chunked).await;
        let (text, closed) = read_until_closed(&mut s, Duration::from_secs(5)).await;
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
        let closed = closed.unwrap_or_else(|| panic!("408 left open (chunked={chunked})"));
        assert!(closed < Duration::from_secs(2), "{closed:?}");
    }
    // Other early refusals with a pending body: 406 (Accept), 415 (Content-Type).
    for (bad, status) in [
        ("Accept: text/html", "406"),
        (
            &format!("Accept: {ACCEPT_BOTH}\r\nContent-Type: text/plain") as &str,
            "415",
        ),
    ] {
        let mut s = connect_from(app.port, "127.0.0.1").await;
        let req = format!(
            "POST /mcp HTTP/1.1\r\nHost: localhost\r\n{bad}\r\nAuthorization: Bearer {t}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{{\"jso\r\n"
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let (text, closed) = read_until_closed(&mut s, Duration::from_secs(5)).await;
        assert!(text.starts_with(&format!("HTTP/1.1 {status}")), "{text}");
        assert!(closed.is_some(), "{status} left the connection open");
    }
}

#[actix_web::test]
async fn a_fully_read_refusal_keeps_the_connection() {
    let app = spawn_open(&[]).await;
    let mut s = connect_from(app.port, "127.0.0.1").await;
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"nope"}"#;
    for _ in 0..2 {
        let req = format!(
            "{}{body}",
            head(None, &format!("Content-Length: {}", body.len()))
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = s.read(&mut buf).await.unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(!text.contains("connection: close"), "{text}");
    }
}

/// Sends `body` (whole) on `s` and reads one response: (head and body text, connection closed?).
async fn exchange(s: &mut TcpStream, token: Option<&str>, body: &str) -> (String, bool) {
    let req = format!(
        "{}{body}",
        head(token, &format!("Content-Length: {}", body.len()))
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut text = String::new();
    let mut buf = vec![0u8; 8192];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("a response within 5 s")
            .unwrap_or(0);
        if n == 0 {
            return (text, true);
        }
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
        // Every refusal here has a Content-Length body: stop once all of it is in.
        if let Some((head, rest)) = text.split_once("\r\n\r\n")
            && let Some(len) = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|v| v.trim().parse::<usize>().ok())
            && rest.len() >= len
        {
            return (text, false);
        }
    }
}

/// A kept connection remembers its last verified token (to skip the digest): each token sent
/// on one connection still gets its own identity, and a remembered token stops working at its
/// `exp` like any other.
#[actix_web::test]
async fn a_kept_connection_tells_its_tokens_apart_and_forgets_one_at_its_expiry() {
    let app = spawn_with_issuer(&[("GATEHOUSE_AUTH__LEEWAY_SECS", "0")]).await;
    let token = |sub: &str, ttl: i64| {
        let mut c = app.claims(sub, &["admin"]);
        c["exp"] = json!(now() + ttl);
        app.rsa().sign(&c)
    };
    let started = Instant::now();
    let alice = token("alice", 2);
    let bob = token("bob", 300);
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin_action","arguments":{"action":"x"}}}"#;
    let mut s = connect_from(app.port, "127.0.0.1").await;
    // First sight, the shared cache (which fills the memo), the memo; the same for bob; then
    // alice again, found in the shared cache while the memo holds bob, and from the memo.
    let order = [&alice, &alice, &alice, &bob, &bob, &bob, &alice, &alice];
    for t in order {
        let who = if t == &alice { "alice" } else { "bob" };
        let (text, closed) = exchange(&mut s, Some(t), call).await;
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(
            text.contains(&format!("performed by {who}")),
            "{who}: {text}"
        );
        assert!(!closed, "the connection was kept");
    }
    // At or past alice's `exp` (whole seconds, at most two after `started`; RFC 7519 4.1.4:
    // valid only before it), on the same connection.
    tokio::time::sleep(Duration::from_millis(2100).saturating_sub(started.elapsed())).await;
    let (text, closed) = exchange(&mut s, Some(&alice), call).await;
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
    assert!(text.contains("invalid_token"), "{text}");
    assert!(!closed);
    let (text, _) = exchange(&mut s, Some(&bob), call).await;
    assert!(text.contains("performed by bob"), "{text}");
}

#[actix_web::test]
async fn refusals_of_complete_small_bodies_keep_the_connection() {
    let app = spawn_with_issuer(&[]).await;
    let ping = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    // 401 without a token, twice on one connection: the body was read, the connection stays.
    let mut s = connect_from(app.port, "127.0.0.1").await;
    for _ in 0..3 {
        let (text, closed) = exchange(&mut s, None, ping).await;
        assert!(text.starts_with("HTTP/1.1 401"), "{text}");
        assert!(!text.contains("connection: close"), "{text}");
        assert!(!closed, "a 401 to a complete body closed the connection");
    }
    // A complete body larger than what a refusal reads (64 KiB) still ends the connection.
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"pad":"{}"}}}}"#,
        "x".repeat(100 * 1024)
    );
    let (text, closed) = exchange(&mut s, None, &big).await;
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
    assert!(text.contains("connection: close"), "{text}");
    assert!(
        closed
            || read_until_closed(&mut s, Duration::from_secs(2))
                .await
                .1
                .is_some()
    );
    // 429 once the subject's budget is spent: the connection stays too.
    let app = spawn_with_issuer(&[
        ("GATEHOUSE_RATE_LIMIT__REQUESTS_PER_MINUTE", "1"),
        ("GATEHOUSE_RATE_LIMIT__REQUESTS_BURST", "1"),
    ])
    .await;
    let t = app.token("alice", &[]);
    let mut s = connect_from(app.port, "127.0.0.2").await;
    // (The token's first request is charged to the address, its second to the subject.)
    let mut refused = 0;
    for _ in 0..5 {
        let (text, closed) = exchange(&mut s, Some(&t), ping).await;
        assert!(!closed && !text.contains("connection: close"), "{text}");
        if text.starts_with("HTTP/1.1 429") {
            assert!(text.contains("retry-after"), "{text}");
            refused += 1;
        }
    }
    assert!(refused >= 3, "{refused} of 5 refused");
}

#[actix_web::test]
async fn a_silent_connection_is_closed_within_the_request_timeout() {
    let app = spawn_open(&[("GATEHOUSE_SERVER__CLIENT_REQUEST_TIMEOUT_MS", "500")]).await;
    let mut s = connect_from(app.port, "127.0.0.1").await;
    let (_, closed) = read_until_closed(&mut s, Duration::from_secs(5)).await;
    // The README's promise: the timeout is a floor, at most 500 ms more (actix's clock step),
    // plus 300 ms for a loaded test machine.
    let closed = closed.expect("closed");
    assert!(closed >= Duration::from_millis(500), "{closed:?}");
    assert!(closed < Duration::from_millis(1300), "{closed:?}");
}

#[actix_web::test]
async fn a_prompt_request_is_never_timed_out_even_with_a_short_request_timeout() {
    // actix sets the head deadline from a clock refreshed every 500 ms; taken as given, a
    // 300 ms timeout answered 408 to about 4 in 10 of these. The setting is a floor.
    let app = spawn_open(&[("GATEHOUSE_SERVER__CLIENT_REQUEST_TIMEOUT_MS", "300")]).await;
    let mut statuses = Vec::new();
    for i in 0..30u64 {
        let mut s = connect_from(app.port, "127.0.0.1").await;
        // Spread over the clock's 500 ms step, and let the server poll the connection first.
        tokio::time::sleep(Duration::from_millis(20 + i * 17 % 50)).await;
        s.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let (text, _) = read_until_closed(&mut s, Duration::from_secs(5)).await;
        statuses.push(text.get(9..12).unwrap_or("none").to_string());
    }
    assert!(statuses.iter().all(|s| s == "200"), "{statuses:?}");
}

#[actix_web::test]
async fn one_client_cannot_hold_more_than_its_share_of_connections() {
    // Each held connection is seen served once (so the server has certainly counted it), then
    // kept open: keep-alive outlasts the test.
    let app = spawn_open(&[
        ("GATEHOUSE_SERVER__MAX_CONNECTIONS_PER_IP", "5"),
        ("GATEHOUSE_SERVER__KEEP_ALIVE_SECS", "120"),
    ])
    .await;
    let mut held = Vec::new();
    for _ in 0..5 {
        let mut s = connect_from(app.port, "127.0.0.1").await;
        s.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !got.ends_with(b"}") {
            let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
                .await
                .expect("a held connection is answered")
                .unwrap();
            assert!(n > 0, "a held connection was closed");
            got.extend_from_slice(&buf[..n]);
        }
        assert!(got.starts_with(b"HTTP/1.1 200"));
        held.push(s);
    }
    // The sixth from the same address is shut at once.
    let mut extra = connect_from(app.port, "127.0.0.1").await;
    let _ = extra
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await;
    let (text, closed) = read_until_closed(&mut extra, Duration::from_secs(3)).await;
    assert!(closed.is_some() && !text.contains("200 OK"), "{text}");
    // Another client is served.
    let mut other = connect_from(app.port, "127.0.0.2").await;
    other
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (text, _) = read_until_closed(&mut other, Duration::from_secs(3)).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    // Once the held connections go, the first client gets its slots back (as soon as the
    // server has seen them close: asked until it answers, for at most 3 s).
    drop(held);
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    loop {
        let mut again = connect_from(app.port, "127.0.0.1").await;
        let _ = again
            .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await;
        let (text, _) = read_until_closed(&mut again, Duration::from_secs(1)).await;
        if text.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the slots did not come back: {text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
async fn half_sent_bodies_do_not_lock_out_health_checks() {
    let app = spawn_open(&[
        ("GATEHOUSE_SERVER__MAX_CONNECTIONS", "25"),
        ("GATEHOUSE_AUTH__ENABLED", "true"),
    ])
    .await;
    let mut held = Vec::new();
    for _ in 0..60 {
        held.push(half_body(app.port, None, true).await);
    }
    // The server reads each head on its own time and no signal says it has: a short pause
    // lets the half-sent requests reach their handlers before the health check.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = tokio::time::timeout(Duration::from_secs(3), app.get("/health")).await;
    assert_eq!(r.expect("health answers").status, 200);
}

// ---- 2. batches ----

fn pings(n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| json!({"jsonrpc":"2.0","id":i,"method":"ping"}))
            .collect(),
    )
}

#[actix_web::test]
async fn batches_are_bounded_in_items_and_counted_against_the_budget() {
    let app = spawn_open(&[
        ("GATEHOUSE_RATE_LIMIT__REQUESTS_BURST", "30"),
        ("GATEHOUSE_RATE_LIMIT__REQUESTS_PER_MINUTE", "1"),
    ])
    .await;
    let r = app.post(None, &pings(21)).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], -32600);
    let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(
        msg.contains("mcp.max_batch_items") && msg.contains("20"),
        "{msg}"
    );
    // A 1 MiB batch of 20,000 calls is refused before it is parsed.
    let started = Instant::now();
    let big = app.post(None, &pings(20_000)).await;
    assert_eq!(big.status, 400);
    assert!(big.text.len() < 1024);
    assert!(started.elapsed() < Duration::from_secs(2));
    // 20 items pass and cost 20 requests: with 30 in the budget (2 spent above), the next
    // batch of 20 is over it.
    let ok = app.post(None, &pings(20)).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json().as_array().unwrap().len(), 20);
    let over = app.post(None, &pings(20)).await;
    assert_eq!(over.status, 429);
    assert!(over.header("retry-after").is_some());
}

#[actix_web::test]
async fn batched_tool_calls_draw_on_the_tool_call_budget() {
    let app = spawn_with_issuer(&[
        ("GATEHOUSE_RATE_LIMIT__TOOL_CALLS_BURST", "3"),
        ("GATEHOUSE_RATE_LIMIT__TOOL_CALLS_PER_MINUTE", "1"),
    ])
    .await;
    let t = app.token("alice", &[]);
    let calls: Vec<Value> = (0..5)
        .map(|i| json!({"jsonrpc":"2.0","id":i,"method":"tools/call","params":{"name":"greet_user","arguments":{"name":"a"}}}))
        .collect();
    let r = app.post(Some(&t), &Value::Array(calls)).await;
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_some());
}

#[actix_web::test]
async fn no_response_exceeds_max_response_bytes() {
    let app = spawn_open(&[("GATEHOUSE_MCP__MAX_RESPONSE_BYTES", "16384")]).await;
    // A tool result over the limit becomes a tool error saying so.
    let r = app
        .call_tool(None, "fixture_big", json!({"bytes": 100_000}))
        .await;
    assert_eq!(r.status, 200);
    assert!(r.text.len() <= 16384);
    let v = r.json();
    assert_eq!(v["result"]["isError"], true);
    let text = v["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("mcp.max_response_bytes"), "{text}");
    // Under the limit it passes.
    let r = app
        .call_tool(None, "fixture_big", json!({"bytes": 1000}))
        .await;
    assert_eq!(
        r.json()["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .len(),
        1000
    );
    // A batch whose answers together would exceed it: later items become errors.
    let calls: Vec<Value> = (0..4)
        .map(|i| json!({"jsonrpc":"2.0","id":i,"method":"tools/call","params":{"name":"fixture_big","arguments":{"bytes":6000}}}))
        .collect();
    let r = app.post(None, &Value::Array(calls)).await;
    assert_eq!(r.status, 200);
    assert!(r.text.len() <= 16384, "{}", r.text.len());
    let items = r.json();
    assert_eq!(items.as_array().unwrap().len(), 4);
    assert_eq!(items[3]["error"]["code"], -32603);
}

// ---- 3. path aliases and absolute-form targets ----

async fn raw_exchange(port: u16, request: &str) -> String {
    let mut s = connect_from(port, "127.0.0.1").await;
    s.write_all(request.as_bytes()).await.unwrap();
    read_until_closed(&mut s, Duration::from_secs(5)).await.0
}

#[actix_web::test]
async fn every_spelling_of_the_endpoint_gets_the_origin_check() {
    let app = spawn_with_issuer(&[]).await;
    let t = app.token("root", &["admin"]);
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin_action","arguments":{"action":"x"}}}"#;
    for path in ["/mcp", "/%6Dcp", "/%6dcp", "/%6D%63%70"] {
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nOrigin: https://evil.example\r\nAuthorization: Bearer {t}\r\nAccept: {ACCEPT_BOTH}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let text = raw_exchange(app.port, &req).await;
        assert!(text.starts_with("HTTP/1.1 403"), "{path}: {text}");
        assert!(!text.contains("performed"), "{path}: {text}");
    }
}

#[actix_web::test]
async fn an_absolute_form_target_is_checked_by_its_authority() {
    let app = spawn_open(&[]).await;
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let send = |target: String, host: &str| {
        format!(
            "POST {target} HTTP/1.1\r\nHost: {host}\r\nAccept: {ACCEPT_BOTH}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let text = raw_exchange(
        app.port,
        &send("http://evil.example/mcp".into(), "localhost"),
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 403"), "{text}");
    let text = raw_exchange(
        app.port,
        &send(format!("http://localhost:{}/mcp", app.port), "evil.example"),
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
}

// ---- 4 and 5. key removal, staleness, redirects ----

async fn ping(app: &TestApp, t: &str) -> crate::helpers::Resp {
    app.rpc(Some(t), "ping", json!({})).await
}

#[actix_web::test]
async fn a_fetched_key_set_is_authoritative_even_when_empty() {
    let app = spawn_with_issuer(&[("GATEHOUSE_AUTH__JWKS_COOLDOWN_SECS", "1")]).await;
    let old = app.token("alice", &[]);
    assert_eq!(ping(&app, &old).await.status, 200);
    // Past the 1 s refetch cooldown: a clock, not an event.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // The issuer withdraws every key; an unknown kid makes the store refetch.
    app.issuer().set_keys(&[]);
    let stranger = TestKey::rsa("rsa-9", 1);
    assert_eq!(
        ping(&app, &stranger.sign(&app.claims("alice", &[])))
            .await
            .status,
        401
    );
    // The old (cached) token stops at once, and the server is not ready.
    assert_eq!(ping(&app, &old).await.status, 401);
    assert_eq!(app.get("/ready").await.status, 503);
    assert!(
        log_lines()
            .iter()
            .any(|l| l.starts_with("ERROR") && l.contains("no usable signature key"))
    );
}

#[actix_web::test]
async fn a_failed_fetch_keeps_keys_only_up_to_the_stale_limit() {
    let app = spawn_with_issuer(&[
        ("GATEHOUSE_AUTH__JWKS_COOLDOWN_SECS", "1"),
        ("GATEHOUSE_AUTH__JWKS_TTL_SECS", "10"),
        ("GATEHOUSE_AUTH__JWKS_MAX_STALE_SECS", "10"),
    ])
    .await;
    let loaded = Instant::now();
    let t = app.token("alice", &[]);
    assert_eq!(ping(&app, &t).await.status, 200);
    // Malformed JSON is a failed fetch: the cached keys stay.
    app.issuer().set_jwks(json!("not a key set"));
    // Past the 1 s refetch cooldown: a clock, not an event.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let stranger = TestKey::rsa("rsa-9", 1);
    assert_eq!(
        ping(&app, &stranger.sign(&app.claims("a", &[])))
            .await
            .status,
        401
    );
    assert_eq!(ping(&app, &t).await.status, 200);
    // Past the stale limit: 503 with Retry-After, even for the cached token.
    app.issuer().set_down(true);
    tokio::time::sleep(Duration::from_secs(11).saturating_sub(loaded.elapsed())).await;
    let r = ping(&app, &t).await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert!(r.header("retry-after").is_some());
    assert_eq!(app.get("/ready").await.status, 503);
    // The issuer is back: the next request's fetch restores service.
    let rsa = app.rsa().jwk();
    let ec = app.ec().jwk();
    app.issuer().set_jwks(json!({"keys": [rsa, ec]}));
    app.issuer().set_down(false);
    // Past the 1 s refetch cooldown: a clock, not an event.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(ping(&app, &t).await.status, 200);
    assert_eq!(app.get("/ready").await.status, 200);
}

#[actix_web::test]
async fn key_set_redirects_are_never_followed() {
    for path in ["moved-keys", "moved-away"] {
        let rsa = TestKey::rsa("rsa-1", 0);
        let issuer = TestIssuer::start(&[&rsa]).await;
        let jwks = format!("{}/{path}", issuer.url);
        let url = issuer.url.clone();
        let app = spawn_settings(
            settings(&[("OAUTH_ISSUER", url.as_str()), ("OAUTH_JWKS_URI", &jwks)]),
            Some(issuer),
            Some(rsa),
            None,
        )
        .await;
        // The start-up fetch is over once it has logged the redirect it refused.
        let refused = || {
            log_lines()
                .iter()
                .any(|l| l.contains(&jwks) && l.contains("redirect") && l.contains("auth.jwks_uri"))
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !refused() {
            assert!(
                std::time::Instant::now() < deadline,
                "no refused redirect logged"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(app.get("/ready").await.status, 503);
        assert_eq!(
            app.issuer().key_fetches(),
            0,
            "the redirect was not followed"
        );
        assert_eq!(app.issuer().attacker_hits(), 0);
        let t = app.token("alice", &[]);
        assert_eq!(ping(&app, &t).await.status, 503);
    }
}

// ---- 6. scopes ----

#[actix_web::test]
async fn a_scope_implies_another_only_by_configuration() {
    let plain = spawn_with_issuer(&[]).await;
    for broad in ["reports", "admin"] {
        let t = plain.token("alice", &[broad]);
        let r = plain.call_tool(Some(&t), "fixture_scoped", json!({})).await;
        assert_eq!(r.status, 403, "{broad} must not imply reports:read/write");
    }
    let app = spawn_with_issuer(&[(
        "GATEHOUSE_AUTH__SCOPE_IMPLIES",
        "admin=reports:read reports:write",
    )])
    .await;
    let t = app.token("root", &["admin"]);
    let r = app.call_tool(Some(&t), "fixture_scoped", json!({})).await;
    assert_eq!(r.json()["result"]["content"][0]["text"], "scoped ok");
    let t = app.token("alice", &["reports"]);
    assert_eq!(
        app.call_tool(Some(&t), "fixture_scoped", json!({}))
            .await
            .status,
        403
    );
}

// ---- 7. claim ambiguity ----

#[actix_web::test]
async fn repeated_members_and_absurd_times_are_refused() {
    let app = spawn_with_issuer(&[("GATEHOUSE_AUTH__MAX_TOKEN_LIFETIME_SECS", "3600")]).await;
    let claims = app.claims("alice", &["mcp:read"]);
    let text = claims.to_string();
    let header = app.rsa().header().to_string();
    // Repeated claim.
    let dup = text.replacen('{', r#"{"scope":"mcp:read","scope":"admin","#, 1);
    let r = ping(&app, &app.rsa().sign_text(&header, &dup)).await;
    assert_eq!(r.status, 401);
    // Repeated member in a nested object, and in the header.
    let nested = text.replacen('{', r#"{"ext":{"a":1,"a":2},"#, 1);
    assert_eq!(
        ping(&app, &app.rsa().sign_text(&header, &nested))
            .await
            .status,
        401
    );
    let dup_header = header.replacen('{', r#"{"kid":"zzz","#, 1);
    assert_eq!(
        ping(&app, &app.rsa().sign_text(&dup_header, &text))
            .await
            .status,
        401
    );
    // The same token without repetition passes.
    assert_eq!(
        ping(&app, &app.rsa().sign_text(&header, &text))
            .await
            .status,
        200
    );
    // exp beyond 2^53, and beyond the configured lifetime.
    for exp in [
        json!(18446744073709551615u64),
        json!(9007199254740993u64),
        json!(now() + 7200),
    ] {
        let mut c = app.claims("alice", &[]);
        c["exp"] = exp.clone();
        assert_eq!(
            ping(&app, &app.rsa().sign(&c)).await.status,
            401,
            "exp {exp}"
        );
    }
    let mut c = app.claims("alice", &[]);
    c["nbf"] = json!(1e300);
    assert_eq!(ping(&app, &app.rsa().sign(&c)).await.status, 401);
}

// ---- 8. tokens without kid ----

#[actix_web::test]
async fn a_token_without_kid_needs_exactly_one_key_of_its_algorithm() {
    let app = spawn_with_issuer(&[("GATEHOUSE_AUTH__JWKS_COOLDOWN_SECS", "1")]).await;
    let header = json!({"alg": "RS256", "typ": "at+jwt"});
    let t = app.rsa().sign_raw(&header, &app.claims("alice", &[]));
    assert_eq!(ping(&app, &t).await.status, 200, "one RS256 key: accepted");
    // A second RSA key appears (picked up by a refetch): kid-less tokens are now ambiguous.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = TestKey::rsa("rsa-2", 1);
    app.issuer().set_keys(&[app.rsa(), app.ec(), &second]);
    let s = second.sign(&app.claims("bob", &[]));
    assert_eq!(ping(&app, &s).await.status, 200);
    let t2 = app.rsa().sign_raw(&header, &app.claims("carol", &[]));
    assert_eq!(ping(&app, &t2).await.status, 401);
}

// ---- 10. the smaller ones ----

#[actix_web::test]
async fn long_ids_are_invalid_requests() {
    let app = spawn_open(&[]).await;
    let r = app
        .post(
            None,
            &json!({"jsonrpc":"2.0","id":"x".repeat(257),"method":"ping"}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], -32600);
    let r = app
        .post(
            None,
            &json!({"jsonrpc":"2.0","id":"x".repeat(256),"method":"ping"}),
        )
        .await;
    assert_eq!(r.status, 200);
}

#[actix_web::test]
async fn requests_sharing_an_id_do_not_unregister_each_other() {
    let app = spawn_open(&[]).await;
    let slow = app.mcp(None).body(
        json!({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"fixture_slow","arguments":{"ms":5000}}}).to_string(),
    );
    let started = Instant::now();
    let call =
        actix_web::rt::spawn(async move { slow.send().await.unwrap().text().await.unwrap() });
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A second request with the same id finishes first...
    let r = app
        .post(None, &json!({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"fixture_slow","arguments":{"ms":10}}}))
        .await;
    assert_eq!(r.status, 200);
    assert!(r.text.contains("done after 10 ms"));
    // ...and the first can still be cancelled.
    let c = app
        .post(
            None,
            &json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":5}}),
        )
        .await;
    assert_eq!(c.status, 202);
    let body = call.await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(4), "cancelled");
    assert!(!body.contains("result"), "{body}");
}

#[actix_web::test]
async fn a_caller_cannot_cancel_another_callers_request() {
    let app = spawn_with_issuer(&[]).await;
    let (alice, bob) = (app.token("alice", &[]), app.token("bob", &[]));
    let cancel =
        json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":9}});
    // Alice's slow call with id 9, then a cancel of id 9 from `canceller`: the answer's body
    // and how long the call took.
    let run = |canceller: String| {
        let call = app.mcp(Some(&alice)).body(
            json!({"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"fixture_slow","arguments":{"ms":1500}}}).to_string(),
        );
        let (app, cancel) = (&app, &cancel);
        async move {
            let started = Instant::now();
            let hers =
                actix_web::rt::spawn(
                    async move { call.send().await.unwrap().text().await.unwrap() },
                );
            tokio::time::sleep(Duration::from_millis(200)).await;
            assert_eq!(app.post(Some(&canceller), cancel).await.status, 202);
            (hers.await.unwrap(), started.elapsed())
        }
    };
    // Bob names the id of Alice's request: hers runs to its end.
    let (body, took) = run(bob).await;
    assert!(body.contains("done after 1500 ms"), "{body}");
    assert!(took >= Duration::from_millis(1500));
    // Alice cancels her own.
    let (body, took) = run(alice.clone()).await;
    assert!(took < Duration::from_millis(1400), "cancelled");
    assert!(!body.contains("result"), "{body}");
}

#[actix_web::test]
async fn the_subject_in_access_logs_is_escaped() {
    let app = spawn_with_issuer(&[]).await;
    let sub = "mallory 200 x\nINFO gatehouse::access: POST /mcp 200";
    let t = app.token(sub, &[]);
    assert_eq!(ping(&app, &t).await.status, 200);
    let lines = log_lines();
    let line = lines
        .iter()
        .find(|l| l.contains("sub=mallory"))
        .expect("access line");
    assert!(line.contains(r"sub=mallory\x20200\x20x\u{a}INFO"), "{line}");
    assert!(!line.contains('\n'));
}
