//! Edge rules: CORS, DNS-rebinding checks, rate limits behind proxies, limits, headers, health.

use std::io::{Read, Write};
use std::time::Duration;

use serde_json::json;

use crate::helpers::{spawn_app, spawn_open, spawn_with_issuer};

fn ping() -> String {
    json!({"jsonrpc":"2.0","id":1,"method":"ping"}).to_string()
}

#[actix_web::test]
async fn preflight_succeeds_without_a_token_and_allows_mcp_headers() {
    let app = spawn_with_issuer(&[]).await;
    let r = app
        .send(
            app.client
                .request(reqwest::Method::OPTIONS, format!("{}/mcp", app.base))
                .header("origin", "http://localhost:6274")
                .header("access-control-request-method", "POST")
                .header(
                    "access-control-request-headers",
                    "authorization, content-type, accept, mcp-protocol-version, mcp-session-id, last-event-id, mcp-method, mcp-name, mcp-param-region",
                ),
        )
        .await;
    assert!(r.status == 200 || r.status == 204, "{}", r.status);
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        Some("http://localhost:6274")
    );
    let allowed = r
        .header("access-control-allow-headers")
        .unwrap()
        .to_ascii_lowercase();
    for h in [
        "authorization",
        "content-type",
        "mcp-protocol-version",
        "mcp-session-id",
        "last-event-id",
        "mcp-method",
        "mcp-name",
        "mcp-param-region",
    ] {
        assert!(allowed.contains(h), "{h} not in {allowed}");
    }
    assert!(
        r.header("access-control-allow-methods")
            .unwrap()
            .contains("POST")
    );
    assert!(r.header("access-control-allow-credentials").is_none());
}

#[actix_web::test]
async fn cors_headers_are_on_errors_too() {
    let app = spawn_with_issuer(&[
        ("GATEHOUSE_SERVER__MAX_BODY_BYTES", "1024"),
        ("GATEHOUSE_RATE_LIMIT__TOOL_CALLS_BURST", "1"),
        ("GATEHOUSE_RATE_LIMIT__TOOL_CALLS_PER_MINUTE", "1"),
    ])
    .await;
    let origin = "http://localhost:5173";
    let check = |r: &crate::helpers::Resp, what: &str| {
        assert_eq!(
            r.header("access-control-allow-origin").as_deref(),
            Some(origin),
            "{what}"
        );
        let exposed = r
            .header("access-control-expose-headers")
            .unwrap_or_default()
            .to_ascii_lowercase();
        for h in ["www-authenticate", "mcp-session-id", "mcp-protocol-version"] {
            assert!(exposed.contains(h), "{what}: {h} not exposed");
        }
    };
    let r = app
        .send(app.mcp(None).header("origin", origin).body(ping()))
        .await;
    assert_eq!(r.status, 401);
    check(&r, "401");
    let t = app.token("alice", &[]);
    let r = app
        .send(
            app.mcp(Some(&t))
                .header("origin", origin)
                .body("x".repeat(5000)),
        )
        .await;
    assert_eq!(r.status, 413);
    check(&r, "413");
    let call = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"greet_user","arguments":{"name":"a"}}}).to_string();
    let r = app
        .send(
            app.mcp(Some(&t))
                .header("origin", origin)
                .body(call.clone()),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = app
        .send(
            app.mcp(Some(&t))
                .header("origin", origin)
                .body(call.clone()),
        )
        .await;
    assert_eq!(r.status, 429);
    check(&r, "429");
    let r = app
        .send(
            app.mcp(Some(&app.token("bob", &[])))
                .header("origin", origin)
                .body(call),
        )
        .await;
    assert_eq!(r.status, 200, "budgets are per subject");
    let r = app.send(app.mcp(Some(&t)).header("origin", origin).body(json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"admin_action","arguments":{"action":"x"}}}).to_string())).await;
    assert!(r.status == 403 || r.status == 429);
    check(&r, "403/429");
}

#[actix_web::test]
async fn requests_without_origin_skip_cors_but_keep_its_vary() {
    let app = spawn_with_issuer(&[]).await;
    let vary = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers";
    let t = app.token("alice", &[]);
    for (r, what) in [
        (app.send(app.mcp(None).body(ping())).await, "401"),
        (app.send(app.mcp(Some(&t)).body(ping())).await, "200"),
        (app.get("/health").await, "/health"),
        (app.get("/nowhere").await, "404"),
    ] {
        assert_eq!(r.header("vary").as_deref(), Some(vary), "{what}");
        assert!(
            r.headers
                .keys()
                .all(|k| !k.as_str().starts_with("access-control-")),
            "{what}: {:?}",
            r.headers
        );
    }
    // The same request from a page gets the CORS headers, and the same Vary.
    let origin = "http://localhost:5173";
    let r = app
        .send(app.mcp(Some(&t)).header("origin", origin).body(ping()))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("vary").as_deref(), Some(vary));
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        Some(origin)
    );
    assert!(r.header("access-control-expose-headers").is_some());
    // An OPTIONS without Origin is still actix-cors's to answer (not a preflight: passed on).
    let r = app
        .send(
            app.client
                .request(reqwest::Method::OPTIONS, format!("{}/mcp", app.base)),
        )
        .await;
    assert_eq!(r.header("vary").as_deref(), Some(vary));
}

#[actix_web::test]
async fn tool_calls_over_budget_get_429_with_retry_after() {
    let app = spawn_with_issuer(&[
        ("GATEHOUSE_RATE_LIMIT__TOOL_CALLS_BURST", "3"),
        ("GATEHOUSE_RATE_LIMIT__TOOL_CALLS_PER_MINUTE", "6"),
    ])
    .await;
    let t = app.token("alice", &[]);
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let r = app
            .call_tool(Some(&t), "greet_user", json!({"name": "x"}))
            .await;
        statuses.push(r.status);
        if r.status == 429 {
            let secs: u64 = r.header("retry-after").unwrap().parse().unwrap();
            assert!((1..=60).contains(&secs));
            assert_eq!(r.json()["id"], 1);
        }
    }
    assert_eq!(statuses, vec![200, 200, 200, 429, 429]);
    // Other methods are not tool calls.
    assert_eq!(app.rpc(Some(&t), "tools/list", json!({})).await.status, 200);
}

#[actix_web::test]
async fn hostile_origin_is_403_without_id_and_absent_origin_is_fine() {
    let app = spawn_open(&[]).await;
    for origin in [
        "http://evil.example",
        "null",
        "http://localhost.evil.example:80",
        "https://127.0.0.1.nip.io",
    ] {
        let r = app
            .send(app.mcp(None).header("origin", origin).body(ping()))
            .await;
        assert_eq!(r.status, 403, "{origin}");
        let b = r.json();
        assert_eq!(b["jsonrpc"], "2.0");
        assert!(b.get("id").is_none());
        assert!(b["error"]["code"].is_i64());
    }
    assert_eq!(app.send(app.mcp(None).body(ping())).await.status, 200);
    assert_eq!(
        app.send(
            app.mcp(None)
                .header("origin", "http://localhost:6274")
                .body(ping())
        )
        .await
        .status,
        200
    );
    let prod_like = spawn_open(&[("ALLOWED_ORIGINS", "https://app.example.com")]).await;
    assert_eq!(
        prod_like
            .send(
                prod_like
                    .mcp(None)
                    .header("origin", "https://app.example.com")
                    .body(ping())
            )
            .await
            .status,
        200
    );
    assert_eq!(
        prod_like
            .send(
                prod_like
                    .mcp(None)
                    .header("origin", "http://localhost:6274")
                    .body(ping())
            )
            .await
            .status,
        403
    );
}

#[actix_web::test]
async fn hostile_host_is_403() {
    let app = spawn_open(&[]).await;
    for host in [
        "evil.example.com",
        "evil.example.com:80",
        "localhost.evil",
        "127.0.0.2",
    ] {
        let r = app
            .send(app.mcp(None).header("host", host).body(ping()))
            .await;
        assert_eq!(r.status, 403, "{host}");
    }
    for host in [
        format!("localhost:{}", app.port),
        format!("127.0.0.1:{}", app.port),
        "[::1]:1".to_string(),
    ] {
        let r = app
            .send(app.mcp(None).header("host", host.as_str()).body(ping()))
            .await;
        assert_eq!(r.status, 200, "{host}");
    }
    // Health probes come by IP and must not be refused.
    let r = app
        .send(
            app.client
                .get(format!("{}/health", app.base))
                .header("host", "10.1.2.3:8080"),
        )
        .await;
    assert_eq!(r.status, 200);
    let custom = spawn_open(&[("ALLOWED_HOSTS", "mcp.example.com")]).await;
    assert_eq!(
        custom
            .send(
                custom
                    .mcp(None)
                    .header("host", "mcp.example.com")
                    .body(ping())
            )
            .await
            .status,
        200
    );
    assert_eq!(custom.send(custom.mcp(None).body(ping())).await.status, 403);
}

async fn burst_statuses(
    app: &crate::helpers::TestApp,
    headers: &[(&str, &str)],
    n: usize,
) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..n {
        let mut rb = app.mcp(None);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        out.push(app.send(rb.body(ping())).await.status);
    }
    out
}

#[actix_web::test]
async fn spoofed_forwarded_for_cannot_choose_the_bucket() {
    let budget = [
        ("GATEHOUSE_RATE_LIMIT__REQUESTS_BURST", "2"),
        ("GATEHOUSE_RATE_LIMIT__REQUESTS_PER_MINUTE", "1"),
    ];
    // none: the peer address; headers are ignored.
    let app = spawn_open(&[budget[0], budget[1], ("TRUSTED_PROXY", "none")]).await;
    assert_eq!(
        burst_statuses(&app, &[("x-forwarded-for", "1.1.1.1")], 2).await,
        vec![200, 200]
    );
    let r = app
        .send(
            app.mcp(None)
                .header("x-forwarded-for", "2.2.2.2")
                .header("fly-client-ip", "3.3.3.3")
                .body(ping()),
        )
        .await;
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);

    // heroku: the right-most X-Forwarded-For entry (added by the router) is the client.
    let app = spawn_open(&[budget[0], budget[1], ("TRUSTED_PROXY", "heroku")]).await;
    assert_eq!(
        burst_statuses(&app, &[("x-forwarded-for", "6.6.6.6, 203.0.113.9")], 2).await,
        vec![200, 200]
    );
    assert_eq!(
        burst_statuses(&app, &[("x-forwarded-for", "7.7.7.7, 203.0.113.9")], 1).await,
        vec![429],
        "a spoofed left entry does not reset the bucket"
    );
    assert_eq!(
        burst_statuses(&app, &[("x-forwarded-for", "203.0.113.10")], 1).await,
        vec![200],
        "another client has its own bucket"
    );

    // fly: Fly-Client-IP; X-Forwarded-For is ignored.
    let app = spawn_open(&[budget[0], budget[1], ("TRUSTED_PROXY", "fly")]).await;
    assert_eq!(
        burst_statuses(
            &app,
            &[
                ("fly-client-ip", "198.51.100.1"),
                ("x-forwarded-for", "9.9.9.9")
            ],
            2
        )
        .await,
        vec![200, 200]
    );
    assert_eq!(
        burst_statuses(
            &app,
            &[
                ("fly-client-ip", "198.51.100.1"),
                ("x-forwarded-for", "8.8.8.8")
            ],
            1
        )
        .await,
        vec![429]
    );
    assert_eq!(
        burst_statuses(&app, &[("fly-client-ip", "198.51.100.2")], 1).await,
        vec![200]
    );
}

#[actix_web::test]
async fn slow_clients_time_out_and_do_not_block_others() {
    let app = spawn_open(&[
        ("GATEHOUSE_SERVER__CLIENT_REQUEST_TIMEOUT_MS", "500"),
        ("GATEHOUSE_SERVER__BODY_TIMEOUT_MS", "700"),
    ])
    .await;
    let addr = format!("127.0.0.1:{}", app.port);
    // A client that never finishes its request head.
    let mut slow_head = std::net::TcpStream::connect(&addr).unwrap();
    slow_head
        .write_all(b"POST /mcp HTTP/1.1\r\nHost: localhost\r\n")
        .unwrap();
    // A client that announces a body and trickles it.
    let mut slow_body = std::net::TcpStream::connect(&addr).unwrap();
    slow_body
        .write_all(b"POST /mcp HTTP/1.1\r\nHost: localhost\r\nAccept: application/json, text/event-stream\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"js")
        .unwrap();
    // Hundreds of idle connections that never send a byte.
    let idle: Vec<std::net::TcpStream> = (0..300)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    // Others are served meanwhile.
    for _ in 0..5 {
        assert_eq!(app.send(app.mcp(None).body(ping())).await.status, 200);
    }
    // Each read below waits (at most 3 s) for the server to close the slow connection.
    for (name, mut s) in [("head", slow_head), ("body", slow_body)] {
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut buf = String::new();
        // The server must have closed the connection (EOF), not merely stayed silent.
        let closed = s.read_to_string(&mut buf);
        assert!(closed.is_ok(), "{name}: the connection was left open");
        assert!(
            buf.is_empty() || buf.starts_with("HTTP/1.1 408"),
            "{name}: {buf:?}"
        );
    }
    assert_eq!(app.send(app.mcp(None).body(ping())).await.status, 200);
    drop(idle);
}

#[actix_web::test]
async fn security_headers_request_ids_and_generic_errors() {
    let app = spawn_open(&[]).await;
    let r = app
        .send(app.mcp(None).header("x-request-id", "abc-123").body(ping()))
        .await;
    assert_eq!(
        r.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
    assert_eq!(r.header("x-request-id").as_deref(), Some("abc-123"));
    let r = app
        .send(
            app.mcp(None)
                .header("x-request-id", "bad id with spaces")
                .body(ping()),
        )
        .await;
    let id = r.header("x-request-id").unwrap();
    assert!(!id.contains(' ') && id.len() >= 16);
    let r = app.get("/nope").await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
}

#[actix_web::test]
async fn oversized_headers_get_431() {
    let app = spawn_open(&[("GATEHOUSE_SERVER__MAX_HEADER_BYTES", "2048")]).await;
    let r = app
        .send(
            app.mcp(None)
                .header("x-padding", "p".repeat(4000))
                .body(ping()),
        )
        .await;
    assert_eq!(r.status, 431);
}

#[actix_web::test]
async fn health_and_ready() {
    let app = spawn_app(&[]).await;
    let r = app.get("/health").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!({"status": "healthy", "version": env!("CARGO_PKG_VERSION")})
    );
    assert_eq!(app.get("/ready").await.status, 200);
}

#[actix_web::test]
async fn verified_subjects_get_their_own_request_budget() {
    let app = spawn_with_issuer(&[
        ("GATEHOUSE_RATE_LIMIT__REQUESTS_BURST", "2"),
        ("GATEHOUSE_RATE_LIMIT__REQUESTS_PER_MINUTE", "1"),
        ("GATEHOUSE_RATE_LIMIT__FIRST_VERIFICATIONS_BURST", "2"),
        ("GATEHOUSE_RATE_LIMIT__FIRST_VERIFICATIONS_PER_MINUTE", "1"),
    ])
    .await;
    let alice = app.token("alice", &[]);
    let bob = app.token("bob", &[]);
    let mut seen = Vec::new();
    for t in [&alice, &alice, &alice, &alice, &bob, &bob] {
        seen.push(app.send(app.mcp(Some(t)).body(ping())).await.status);
    }
    // alice's first request is keyed by IP (her token is not verified yet), then by subject.
    assert_eq!(seen, vec![200, 200, 200, 429, 200, 200]);
    // The IP budget is spent; unauthenticated requests from it are refused before the token check.
    let r = app.send(app.mcp(None).body(ping())).await;
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_some());
    // A user behind the same address (a NAT) still signs in: a token not verified yet gets a
    // first verification from the address's own small allowance (2 here).
    let carol = app.token("carol", &[]);
    assert_eq!(
        app.send(app.mcp(Some(&carol)).body(ping())).await.status,
        200
    );
    // A forged token naming alice gets no subject bucket: it spends the allowance's last
    // verification (401), and a flood of them beyond it is refused before any check (429).
    let forged = format!("{}x", &alice[..alice.len() - 1]);
    assert_eq!(
        app.send(app.mcp(Some(&forged)).body(ping())).await.status,
        401
    );
    for _ in 0..3 {
        let r = app.send(app.mcp(Some(&forged)).body(ping())).await;
        assert_eq!(r.status, 429);
        assert!(r.header("retry-after").is_some());
    }
    // carol's token, verified now, is keyed by her subject: the spent address does not matter.
    assert_eq!(
        app.send(app.mcp(Some(&carol)).body(ping())).await.status,
        200
    );
}
