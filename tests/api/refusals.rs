//! The refusal matrix: every refusal the README lists, checked the way a client sees it: the
//! status, the body's shape (a JSON-RPC error on the MCP endpoint, RFC 6750's
//! `{"error", "error_description"}` for the bearer check and other paths), `Cache-Control:
//! no-store`, the challenge or `Retry-After` where the README promises one, and, for refusals
//! that leave a body unread, what happens to the connection. Plus `/%6Dcp`, which must meet the
//! budget and the token check as `/mcp` does.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{ACCEPT_BOTH, Resp, TestApp, spawn_with_issuer};

const PING: &str = r#"{"jsonrpc":"2.0","id":9,"method":"ping"}"#;

/// What a refusal must look like.
struct Expect {
    status: u16,
    /// `rpc`: a JSON-RPC error (with its code); `oauth`: `{"error": <name>, ...}`.
    body: Body,
    challenge: Option<&'static str>,
    retry_after: bool,
    allow: Option<&'static str>,
}

enum Body {
    Rpc(i64),
    OAuth(&'static str),
}

fn check(case: &str, r: &Resp, e: &Expect) {
    assert_eq!(r.status, e.status, "{case}: {}", r.text);
    assert_eq!(
        r.header("cache-control").as_deref(),
        Some("no-store"),
        "{case}: no-store"
    );
    assert!(r.header("x-request-id").is_some(), "{case}: request id");
    let body: Value =
        serde_json::from_str(&r.text).unwrap_or_else(|_| panic!("{case}: {}", r.text));
    match e.body {
        Body::Rpc(code) => {
            assert_eq!(body["jsonrpc"], "2.0", "{case}: {body}");
            assert_eq!(body["error"]["code"], code, "{case}: {body}");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty())
            );
            assert!(body.get("result").is_none());
        }
        Body::OAuth(name) => {
            assert_eq!(body["error"], name, "{case}: {body}");
            assert!(
                body["error_description"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty()),
                "{case}: {body}"
            );
        }
    }
    match e.challenge {
        Some(error) => {
            let c = r
                .header("www-authenticate")
                .unwrap_or_else(|| panic!("{case}: a challenge"));
            assert!(c.starts_with("Bearer "), "{case}: {c}");
            assert!(c.contains("resource_metadata=\""), "{case}: {c}");
            if !error.is_empty() {
                assert!(c.contains(&format!("error=\"{error}\"")), "{case}: {c}");
            }
        }
        None => assert!(
            r.header("www-authenticate").is_none(),
            "{case}: no challenge"
        ),
    }
    assert_eq!(
        r.header("retry-after").is_some(),
        e.retry_after,
        "{case}: Retry-After"
    );
    if let Some(allow) = e.allow {
        assert_eq!(r.header("allow").as_deref(), Some(allow), "{case}");
    }
}

fn rpc(status: u16, code: i64) -> Expect {
    Expect {
        status,
        body: Body::Rpc(code),
        challenge: None,
        retry_after: false,
        allow: None,
    }
}

fn post(app: &TestApp, path: &str) -> reqwest::RequestBuilder {
    post_as(app, path, ACCEPT_BOTH, "application/json")
}

/// A POST with exactly one `Accept` and one `Content-Type` (reqwest adds headers; it does not
/// replace them).
fn post_as(app: &TestApp, path: &str, accept: &str, content_type: &str) -> reqwest::RequestBuilder {
    app.client
        .post(format!("{}{path}", app.base))
        .header("accept", accept)
        .header("content-type", content_type)
}

#[actix_web::test]
async fn every_refusal_has_its_status_body_and_headers() {
    let app = spawn_with_issuer(&[]).await;
    let token = app.token("matrix", &[]);
    let bad_token = format!("{}AAAA", &token[..token.len() - 4]);
    let cases: Vec<(&str, reqwest::RequestBuilder, Expect)> = vec![
        (
            "400 malformed bearer",
            post(&app, "/mcp")
                .header("authorization", "Bearer")
                .body(PING),
            Expect {
                status: 400,
                body: Body::OAuth("invalid_request"),
                challenge: Some("invalid_request"),
                retry_after: false,
                allow: None,
            },
        ),
        (
            "401 no token",
            post(&app, "/mcp").body(PING),
            Expect {
                status: 401,
                body: Body::OAuth("unauthorized"),
                challenge: Some(""),
                retry_after: false,
                allow: None,
            },
        ),
        (
            "401 bad signature",
            post(&app, "/mcp").bearer_auth(&bad_token).body(PING),
            Expect {
                status: 401,
                body: Body::OAuth("invalid_token"),
                challenge: Some("invalid_token"),
                retry_after: false,
                allow: None,
            },
        ),
        (
            "401 through /%6Dcp",
            post(&app, "/%6Dcp").body(PING),
            Expect {
                status: 401,
                body: Body::OAuth("unauthorized"),
                challenge: Some(""),
                retry_after: false,
                allow: None,
            },
        ),
        (
            "403 Origin",
            post(&app, "/mcp")
                .bearer_auth(&token)
                .header("origin", "https://evil.example")
                .body(PING),
            rpc(403, -32000),
        ),
        (
            "403 Host",
            post(&app, "/mcp")
                .bearer_auth(&token)
                .header("host", "evil.example")
                .body(PING),
            rpc(403, -32000),
        ),
        (
            "403 scope",
            post(&app, "/mcp").bearer_auth(&token).body(
                json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
                       "params": {"name": "admin_action", "arguments": {"action": "x"}}})
                .to_string(),
            ),
            Expect {
                status: 403,
                body: Body::OAuth("insufficient_scope"),
                challenge: Some("insufficient_scope"),
                retry_after: false,
                allow: None,
            },
        ),
        (
            "404 another path",
            app.client.get(format!("{}/nowhere", app.base)),
            Expect {
                status: 404,
                body: Body::OAuth("not_found"),
                challenge: None,
                retry_after: false,
                allow: None,
            },
        ),
        (
            "405 GET on the endpoint",
            app.client
                .get(format!("{}/mcp", app.base))
                .bearer_auth(&token),
            Expect {
                allow: Some("POST"),
                ..rpc(405, -32000)
            },
        ),
        (
            "406 Accept",
            post_as(&app, "/mcp", "text/plain", "application/json")
                .bearer_auth(&token)
                .body(PING),
            rpc(406, -32000),
        ),
        (
            "413 body",
            post(&app, "/mcp")
                .bearer_auth(&token)
                .body(format!(r#"{{"pad":"{}"}}"#, "x".repeat(2 << 20))),
            rpc(413, -32000),
        ),
        (
            "415 Content-Type",
            post_as(&app, "/mcp", ACCEPT_BOTH, "text/plain")
                .bearer_auth(&token)
                .body(PING),
            rpc(415, -32000),
        ),
        (
            "421 an answer another instance waits for",
            post(&app, "/mcp")
                .bearer_auth(&token)
                .header("mcp-protocol-version", "2025-06-18")
                .body(r#"{"jsonrpc":"2.0","id":"gh-ask:machine-b:q1","result":{}}"#),
            rpc(421, -32000),
        ),
        (
            "500 a failing handler",
            app.client.get(format!("{}/__fixtures/fail", app.base)),
            Expect {
                status: 500,
                body: Body::OAuth("internal_error"),
                challenge: None,
                retry_after: false,
                allow: None,
            },
        ),
        (
            "431 head",
            post(&app, "/mcp")
                .bearer_auth(&token)
                .header("x-pad", "y".repeat(20_000))
                .body(PING),
            rpc(431, -32000),
        ),
    ];
    for (case, request, expect) in cases {
        let r = app.send(request).await;
        check(case, &r, &expect);
        if case.starts_with("421") {
            assert_eq!(
                r.header("fly-replay").as_deref(),
                Some("instance=machine-b"),
                "{case}"
            );
        }
        if case.starts_with("500") {
            let body: Value = serde_json::from_str(&r.text).unwrap();
            assert_eq!(
                body["request_id"].as_str(),
                r.header("x-request-id").as_deref(),
                "{case}: the body quotes the request id"
            );
            assert!(!r.text.contains("internal-detail"), "{case}: {}", r.text);
        }
    }
}

#[actix_web::test]
async fn budget_refusals_have_retry_after_on_every_spelling() {
    let app = spawn_with_issuer(&[
        ("GATEHOUSE_RATE_LIMIT__REQUESTS_PER_MINUTE", "1"),
        ("GATEHOUSE_RATE_LIMIT__REQUESTS_BURST", "1"),
        ("GATEHOUSE_RATE_LIMIT__FIRST_VERIFICATIONS_BURST", "1"),
        ("GATEHOUSE_RATE_LIMIT__FIRST_VERIFICATIONS_PER_MINUTE", "1"),
    ])
    .await;
    // The address's one request, then 429 on every spelling of the endpoint, before any
    // token check (none is sent).
    assert_eq!(app.send(post(&app, "/mcp").body(PING)).await.status, 401);
    for path in ["/mcp", "/%6Dcp"] {
        let r = app.send(post(&app, path).body(PING)).await;
        check(
            &format!("429 requests on {path}"),
            &r,
            &Expect {
                retry_after: true,
                ..rpc(429, -32000)
            },
        );
    }
}

#[actix_web::test]
async fn the_tool_budget_refuses_with_retry_after() {
    let app = spawn_with_issuer(&[
        ("GATEHOUSE_RATE_LIMIT__TOOL_CALLS_PER_MINUTE", "1"),
        ("GATEHOUSE_RATE_LIMIT__TOOL_CALLS_BURST", "1"),
    ])
    .await;
    let token = app.token("tool-budget", &[]);
    let call = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
                      "params": {"name": "greet_user", "arguments": {"name": "a"}}})
    .to_string();
    assert_eq!(
        app.send(post(&app, "/mcp").bearer_auth(&token).body(call.clone()))
            .await
            .status,
        200
    );
    let r = app
        .send(post(&app, "/mcp").bearer_auth(&token).body(call))
        .await;
    check(
        "429 tool calls",
        &r,
        &Expect {
            retry_after: true,
            ..rpc(429, -32600)
        },
    );
}

#[actix_web::test]
async fn unavailable_keys_are_503_with_the_oauth_body_and_retry_after() {
    let rsa = crate::issuer::TestKey::rsa("rsa-1", 0);
    let issuer = crate::issuer::TestIssuer::start(&[&rsa]).await;
    issuer.set_down(true);
    let url = issuer.url.clone();
    let app = crate::helpers::spawn_settings(
        crate::helpers::settings(&[
            ("OAUTH_ISSUER", url.as_str()),
            ("GATEHOUSE_AUTH__STARTUP_KEY_WAIT_SECS", "0"),
        ]),
        Some(issuer),
        Some(rsa),
        None,
    )
    .await;
    let token = app.token("keys-down", &[]);
    let r = app
        .send(post(&app, "/mcp").bearer_auth(&token).body(PING))
        .await;
    check(
        "503 keys",
        &r,
        &Expect {
            status: 503,
            body: Body::OAuth("temporarily_unavailable"),
            challenge: None,
            retry_after: true,
            allow: None,
        },
    );
}

/// A POST to `/mcp` on its own socket: the head with `extra` headers and a declared length,
/// then `sent` (perhaps less than declared), then every byte the server writes until it closes
/// the connection (`true`) or is silent for 5 s (`false`).
async fn raw_post(port: u16, extra: String, declared: usize, sent: Vec<u8>) -> (String, bool) {
    tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(
            s,
            "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nAccept: {ACCEPT_BOTH}\r\nContent-Length: {declared}\r\n{extra}\r\n"
        )
        .unwrap();
        let _ = s.write_all(&sent);
        let mut all = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match s.read(&mut buf) {
                Ok(0) => return (String::from_utf8_lossy(&all).into_owned(), true),
                Ok(n) => all.extend_from_slice(&buf[..n]),
                Err(_) => return (String::from_utf8_lossy(&all).into_owned(), false),
            }
        }
    })
    .await
    .unwrap()
}

/// A refusal that leaves a large body unread closes the connection: the next read sees its end.
#[actix_web::test]
async fn refusals_that_leave_a_body_unread_close_the_connection() {
    let app = spawn_with_issuer(&[]).await;
    let port = app.port;
    let token = app.token("closer", &[]);
    for (name, extra, declared) in [
        ("401", String::new(), 1 << 20),
        (
            "403 Origin",
            format!("Authorization: Bearer {token}\r\nOrigin: https://evil.example\r\n"),
            1 << 20,
        ),
        ("413", format!("Authorization: Bearer {token}\r\n"), 8 << 20),
    ] {
        // A first slice of the body, the rest never sent.
        let got = raw_post(port, extra, declared, vec![b' '; 70_000]).await;
        let (text, closed) = got;
        assert!(
            text.starts_with(&format!("HTTP/1.1 {}", &name[..3])),
            "{name}: {text}"
        );
        assert!(closed, "{name}: the connection stayed open: {text}");
    }
}

/// Discovery fetches follow no redirect either: an issuer whose metadata document redirects
/// never gets its keys loaded from where the redirect points.
#[actix_web::test]
async fn discovery_redirects_are_never_followed() {
    let rsa = crate::issuer::TestKey::rsa("rsa-1", 0);
    let issuer = crate::issuer::TestIssuer::start(&[&rsa]).await;
    let url = format!("{}/redirecting", issuer.url);
    let app = crate::helpers::spawn_settings(
        crate::helpers::settings(&[("OAUTH_ISSUER", url.as_str())]),
        Some(issuer),
        Some(rsa),
        None,
    )
    .await;
    // The first discovery has run (and failed) once the issuer's other pages were asked for.
    for _ in 0..80 {
        if app.issuer().attacker_hits() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(app.issuer().attacker_hits() > 0, "discovery never ran");
    assert_eq!(
        app.issuer().discovery_fetches(),
        0,
        "the redirect was followed"
    );
    assert_eq!(app.issuer().key_fetches(), 0);
    let token = app.token("redirected", &[]);
    let r = app
        .send(post(&app, "/mcp").bearer_auth(&token).body(PING))
        .await;
    assert_eq!(r.status, 503);
}

/// The rows that need a setting of their own: 503 while the shared store does not answer and
/// the policy refuses, and 408 for a body that arrives too slowly (read off the socket: the
/// connection closes with it). (The 400 for an unknown client address needs a request without
/// a peer address, which no TCP client can send: behind a proxy whose header is missing, the
/// peer's address is the key.)
#[actix_web::test]
async fn refusals_of_a_store_and_a_slow_body() {
    // A shared store nobody answers at, with the policy to refuse.
    let dead = crate::helpers::free_port();
    let url = format!("redis://127.0.0.1:{dead}");
    let stored = spawn_with_issuer(&[
        ("REDIS_URL", url.as_str()),
        ("GATEHOUSE_RATE_LIMIT__REDIS_DOWN", "refuse"),
        ("GATEHOUSE_RATE_LIMIT__REDIS_TIMEOUT_MS", "200"),
    ])
    .await;
    let r = stored.send(post(&stored, "/mcp").body(PING)).await;
    check(
        "503 shared store",
        &r,
        &Expect {
            retry_after: true,
            ..rpc(503, -32000)
        },
    );
    assert_eq!(r.header("retry-after").as_deref(), Some("1"));

    let slow = spawn_with_issuer(&[("GATEHOUSE_SERVER__BODY_TIMEOUT_MS", "300")]).await;
    let (port, token) = (slow.port, slow.token("slow", &[]));
    let auth = format!("Authorization: Bearer {token}\r\n");
    let (text, _) = raw_post(port, auth, 200, br#"{"jsonrpc""#.to_vec()).await;
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    let lower = text.to_ascii_lowercase();
    assert!(lower.contains("cache-control: no-store"), "{text}");
    assert!(lower.contains("connection: close"), "{text}");
    let body: Value = serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap_or("")).unwrap();
    assert_eq!(body["error"]["code"], -32000, "{text}");
}
