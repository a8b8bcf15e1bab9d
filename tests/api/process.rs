//! The real binary as a process: graceful shutdown on SIGTERM and SIGINT, startup failures,
//! the `token` command, and a scan of everything it logged for the secrets it was sent.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{ACCEPT_BOTH, free_port};

fn key_dir() -> String {
    std::env::temp_dir()
        .join("gatehouse-test-dev-keys")
        .display()
        .to_string()
}

pub(crate) fn gatehouse(vars: &[(&str, &str)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GATEHOUSE_AUTH__DEV_KEY_DIR", key_dir())
        .env("GATEHOUSE_SERVER__WORKERS", "1")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in vars {
        c.env(k, v);
    }
    c
}

pub(crate) async fn wait_up(port: u16) {
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if client
            .get(format!("http://127.0.0.1:{port}/health"))
            .send()
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the server never came up");
}

/// The binary serving on a free port with auth off, once `/health` answers.
async fn serving_without_auth() -> (u16, Child) {
    let port = free_port();
    let child = gatehouse(&[
        ("PORT", &port.to_string()),
        ("GATEHOUSE_AUTH__ENABLED", "false"),
    ])
    .spawn()
    .unwrap();
    wait_up(port).await;
    (port, child)
}

/// SIGTERM, a clean exit, and everything the process wrote to standard error.
fn stop_and_read_log(child: &mut Child) -> String {
    signal(child, "TERM");
    assert!(wait_exit(child, Duration::from_secs(10)).success());
    stderr_of(child)
}

/// Everything an exited process wrote to standard error.
fn stderr_of(child: &mut Child) -> String {
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    log
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(ok.success());
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(start.elapsed() < within, "did not exit in time");
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn drains_on(sig: &str) {
    let (port, mut child) = serving_without_auth().await;
    let body = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fixture_slow","arguments":{"ms":1500}}}).to_string();
    let url = format!("http://127.0.0.1:{port}/mcp");
    let call = actix_web::rt::spawn(async move {
        let r = reqwest::Client::new()
            .post(url)
            .header("accept", ACCEPT_BOTH)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    });
    // The call is in flight once the child has read it; a child process sends no event for
    // that, so the call's own answer later proves it ran (see below).
    tokio::time::sleep(Duration::from_millis(400)).await;
    signal(&child, sig);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // New connections are refused while draining.
    let fresh = std::net::TcpStream::connect(format!("127.0.0.1:{port}"));
    assert!(
        fresh.is_err(),
        "{sig}: the listener should be closed while draining"
    );
    let (status, text) = call.await.unwrap();
    assert_eq!(status, 200, "{sig}");
    assert!(text.contains("done after 1500 ms"), "{sig}: {text}");
    let code = wait_exit(&mut child, Duration::from_secs(10));
    assert!(code.success(), "{sig}: exit {code:?}");
}

#[actix_web::test]
async fn sigterm_drains_in_flight_calls_and_exits_zero() {
    drains_on("TERM").await;
}

#[actix_web::test]
async fn sigint_drains_too() {
    drains_on("INT").await;
}

#[test]
fn bad_configuration_stops_startup_naming_the_setting() {
    for (vars, needle) in [
        (vec![("PORT", "http")], "PORT"),
        (vec![("APP_ENV", "staging")], "APP_ENV"),
        (vec![("PUBLIC_URL", "ftp://x")], "PUBLIC_URL"),
        (
            vec![
                ("APP_ENV", "production"),
                ("PUBLIC_URL", "https://a.example"),
            ],
            "development issuer",
        ),
        (
            vec![("PROTECTED_RESOURCE_METADATA", "{not json")],
            "PROTECTED_RESOURCE_METADATA",
        ),
        (
            vec![
                ("SK_CLIENT_SECRET", "do-not-print-me"),
                ("GATEHOUSE_MCP__PAGE_SIZE", "0"),
            ],
            "mcp.page_size",
        ),
        // admin_action asks the user to confirm: production needs a shared sealing key.
        (
            vec![
                ("APP_ENV", "production"),
                ("PUBLIC_URL", "https://a.example"),
                ("OAUTH_ISSUER", "https://issuer.example"),
                ("OAUTH_JWKS_URI", "https://issuer.example/keys"),
            ],
            "MCP_STATE_KEY",
        ),
        (vec![("MCP_STATE_KEY", "do-not-print-me")], "MCP_STATE_KEY"),
        // The built-in development issuer's paths are not the endpoint's to take.
        (
            vec![("GATEHOUSE_MCP__PATH", "/dev-issuer/keys")],
            "GATEHOUSE_MCP__PATH",
        ),
        (
            vec![("MCP_STATE_KEY_PREVIOUS", "c2hvcnQ=")],
            "MCP_STATE_KEY_PREVIOUS",
        ),
    ] {
        let out = gatehouse(&vars).output().unwrap();
        assert!(!out.status.success(), "{vars:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{vars:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one message: {err}");
        assert!(!err.contains("do-not-print-me"));
    }
}

#[actix_web::test]
async fn logs_of_a_full_run_hold_no_token_or_secret() {
    let port = free_port();
    let secret = "sk-client-secret-7f3a9d";
    let vars = [
        ("PORT", port.to_string()),
        ("SK_CLIENT_SECRET", secret.to_string()),
    ];
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mint = |args: &[&str]| {
        let out = gatehouse(&vars).arg("token").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let admin = mint(&[
        "--sub", "alice", "--scope", "admin", "--org", "acme", "--ttl", "10m",
    ]);
    let plain = mint(&["--sub", "bob"]);
    let expired_like = format!("{}x", &plain[..plain.len() - 1]);
    let mut child = gatehouse(&vars).spawn().unwrap();
    wait_up(port).await;
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/mcp");
    // (Authorization, tool, arguments, expected status, text the answer must hold)
    let bearer = |t: &str| format!("Bearer {t}");
    let calls = [
        (
            bearer(&admin),
            "admin_action",
            json!({"action": "x"}),
            200,
            "",
        ),
        (bearer(&admin), "get_org_data", json!({}), 200, "acme"),
        (
            bearer(&plain),
            "admin_action",
            json!({"action": "x"}),
            403,
            "",
        ),
        (
            bearer(&expired_like),
            "greet_user",
            json!({"name": "a"}),
            401,
            "",
        ),
        (
            "Basic dXNlcjpwYXNzd29yZC1zZWNyZXQ=".to_string(),
            "greet_user",
            json!({"name": "a"}),
            401,
            "",
        ),
        (
            bearer(&admin),
            "fixture_secret",
            json!({"api_key": "api-key-secret-555"}),
            200,
            "18 characters",
        ),
    ];
    for (authorization, tool, args, status, needle) in calls {
        let body = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":tool,"arguments":args}});
        let r = client
            .post(&url)
            .header("accept", ACCEPT_BOTH)
            .header("content-type", "application/json")
            .header("cookie", "session=cookie-secret-123")
            .header("authorization", authorization)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{tool}");
        assert!(r.text().await.unwrap().contains(needle), "{tool}");
    }
    let log = stop_and_read_log(&mut child);
    assert!(
        log.contains("POST /mcp 200"),
        "access log lines are there: {log}"
    );
    assert!(log.contains("sub=alice"));
    // The audit trail: one line per tool call, never its arguments.
    assert!(
        log.lines().any(|l| l.contains("gatehouse::audit")
            && l.contains("subject=alice")
            && l.contains("name=get_org_data")
            && l.contains("organization=acme")
            && l.contains("outcome=ok")),
        "{log}"
    );
    assert!(log.contains("name=admin_action outcome=refused:insufficient_scope"));
    for s in [
        admin.as_str(),
        plain.as_str(),
        expired_like.as_str(),
        secret,
        "cookie-secret-123",
        "dXNlcjpwYXNzd29yZC1zZWNyZXQ=",
        "api-key-secret-555",
    ] {
        let tail = &s[s.len().saturating_sub(24)..];
        assert!(!log.contains(tail), "{tail} was logged");
    }
    // Payload segments (claims) never appear either.
    let claims = admin.split('.').nth(1).unwrap();
    assert!(!log.contains(&claims[..20]));
}

#[actix_web::test]
async fn audit_lines_are_structured_in_json_logs() {
    let port = free_port();
    let vars = [
        ("PORT", port.to_string()),
        ("LOG_FORMAT", "json".to_string()),
    ];
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = gatehouse(&vars)
        .args(["token", "--sub", "jo", "--org", "acme"])
        .output()
        .unwrap();
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let mut child = gatehouse(&vars).spawn().unwrap();
    wait_up(port).await;
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/mcp"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .header("x-request-id", "json-audit-1")
        .body(json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"greet_user","arguments":{"name":"Saif"}}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let log = stop_and_read_log(&mut child);
    let audit: serde_json::Value = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["target"] == "gatehouse::audit")
        .unwrap_or_else(|| panic!("no JSON audit line in {log}"));
    assert_eq!(audit["request_id"], "json-audit-1");
    assert_eq!(audit["subject"], "jo");
    assert_eq!(audit["organization"], "acme");
    assert_eq!(audit["era"], "2025-03-26");
    assert_eq!(audit["method"], "tools/call");
    assert_eq!(audit["name"], "greet_user");
    assert_eq!(audit["outcome"], "ok");
    assert!(audit["duration_ms"].is_number() && audit["time"].is_number());
    assert!(
        !audit.to_string().contains("Saif"),
        "arguments never reach the audit line"
    );
}

#[test]
fn token_command_rejects_bad_flags() {
    let out = gatehouse(&[])
        .args(["token", "--ttl", "forever"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = gatehouse(&[])
        .args(["token", "--bogus", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[actix_web::test]
async fn a_scalekit_style_env_file_is_read_and_json_logs_are_one_object_per_line() {
    let dir = std::env::temp_dir().join(format!("gatehouse-envfile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    // The Express demo's names; the issuer is unreachable, so keys never load.
    std::fs::write(
        dir.join(".env"),
        format!(
            "PORT={port}\nSK_ENV_URL=http://127.0.0.1:9\nSK_CLIENT_ID=skc_1\nSK_CLIENT_SECRET=env-file-secret-xyz\nEXPECTED_AUDIENCE=http://localhost:{port}/\nLOG_FORMAT=json\nGATEHOUSE_AUTH__STARTUP_KEY_WAIT_SECS=0\n"
        ),
    )
    .unwrap();
    let mut child = gatehouse(&[(
        "GATEHOUSE_CONFIG_DIR",
        concat!(env!("CARGO_MANIFEST_DIR"), "/config"),
    )])
    .current_dir(&dir)
    .spawn()
    .unwrap();
    wait_up(port).await;
    let client = reqwest::Client::new();
    let ready = client
        .get(format!("http://127.0.0.1:{port}/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        ready.status(),
        503,
        "keys cannot load from an unreachable issuer"
    );
    let r = client
        .post(format!("http://127.0.0.1:{port}/mcp"))
        .header("accept", ACCEPT_BOTH)
        .header("content-type", "application/json")
        .header(
            "authorization",
            format!(
                "Bearer {}.{}.c2ln",
                crate::issuer::b64(br#"{"alg":"RS256","kid":"k"}"#),
                crate::issuer::b64(b"{}")
            ),
        )
        .body(json!({"jsonrpc":"2.0","id":1,"method":"ping"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("retry-after").is_some());
    let meta: serde_json::Value = client
        .get(format!(
            "http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["authorization_servers"][0], "http://127.0.0.1:9");
    let log = stop_and_read_log(&mut child);
    assert!(!log.is_empty());
    for line in log.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert!(v["level"].is_string() && v["msg"].is_string());
    }
    assert!(!log.contains("env-file-secret-xyz"));
    let _ = std::fs::remove_dir_all(dir);
}

#[actix_web::test]
async fn the_drain_is_bounded_by_the_shutdown_timeout() {
    let port = free_port();
    let mut child = gatehouse(&[
        ("PORT", &port.to_string()),
        ("GATEHOUSE_AUTH__ENABLED", "false"),
        ("GATEHOUSE_SERVER__SHUTDOWN_TIMEOUT_SECS", "1"),
        ("GATEHOUSE_MCP__TOOL_TIMEOUT_SECS", "60"),
    ])
    .spawn()
    .unwrap();
    wait_up(port).await;
    let url = format!("http://127.0.0.1:{port}/mcp");
    let body = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fixture_slow","arguments":{"ms":30000}}}).to_string();
    let call = actix_web::rt::spawn(async move {
        match reqwest::Client::new()
            .post(url)
            .header("accept", ACCEPT_BOTH)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
        {
            Ok(r) => r.text().await.map_err(|_| ()),
            Err(_) => Err(()),
        }
    });
    // The call must be in flight before the signal; a child process sends no event for that,
    // so its answer (cut off, below) proves it was.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let start = Instant::now();
    signal(&child, "TERM");
    let code = wait_exit(&mut child, Duration::from_secs(8));
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "exited after {:?}",
        start.elapsed()
    );
    assert!(code.success(), "{code:?}");
    // The call was in flight (the server logged its start) and was cut off: no answer.
    let log = stderr_of(&mut child);
    assert!(
        log.contains("tools/call fixture_slow arguments"),
        "the call never reached the server: {log}"
    );
    let answer = call.await.unwrap();
    assert!(
        answer.as_ref().is_err() || !answer.as_ref().unwrap().contains("done after"),
        "the call finished instead of being cut off: {answer:?}"
    );
}

#[actix_web::test]
async fn listen_streams_end_with_their_result_on_shutdown() {
    let (port, mut child) = serving_without_auth().await;
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    let body = json!({"jsonrpc": "2.0", "id": "listen-1", "method": "subscriptions/listen",
        "params": {"notifications": {"toolsListChanged": true}, "_meta": meta}});
    let mut resp = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/mcp"))
        .header("accept", ACCEPT_BOTH)
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "subscriptions/listen")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let first = resp.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("notifications/subscriptions/acknowledged"));
    signal(&child, "TERM");
    // The stream ends by itself (well inside the shutdown timeout) with the listen result.
    let mut rest = String::new();
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(chunk)) = resp.chunk().await {
            rest.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await;
    assert!(read.is_ok(), "the stream did not end: {rest}");
    let last: serde_json::Value = serde_json::from_str(
        rest.lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .next_back()
            .expect("a final event"),
    )
    .unwrap();
    assert_eq!(last["id"], "listen-1");
    assert_eq!(last["result"]["resultType"], "complete");
    assert_eq!(
        last["result"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        "listen-1"
    );
    let code = wait_exit(&mut child, Duration::from_secs(10));
    assert!(code.success(), "exit {code:?}");
}

#[actix_web::test]
async fn credentials_in_urls_never_reach_a_log_an_error_or_the_doctor() {
    let secrets = ["hunter2-pw", "sekrit-query", "keyuser", "isuser"];
    let dead = free_port();
    let with_user = format!("http://keyuser:hunter2-pw@127.0.0.1:{dead}/keys?token=sekrit-query");
    let issuer_with_user = format!("http://isuser:hunter2-pw@127.0.0.1:{dead}/?token=sekrit-query");
    // Refused at startup (credentials have no place there), and the error shows the URL
    // without them.
    for (var, url) in [
        ("OAUTH_JWKS_URI", &with_user),
        ("OAUTH_ISSUER", &issuer_with_user),
    ] {
        let plain_issuer = format!("http://127.0.0.1:{dead}");
        let both = [(var, url.as_str()), ("OAUTH_ISSUER", plain_issuer.as_str())];
        // The issuer alone, or a key set URL beside a plain issuer.
        let vars = if var == "OAUTH_ISSUER" {
            &both[..1]
        } else {
            &both[..]
        };
        let out = gatehouse(vars).output().unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(var) && err.contains("http://***@127.0.0.1"),
            "{err}"
        );
        for secret in secrets {
            assert!(!err.contains(secret), "{secret} in {err}");
        }
        let out = gatehouse(vars).arg("doctor").output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("FAIL"), "{text}");
        for secret in secrets {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
    // A query token is allowed in the key set URL, and every fetch log line shows it as `?***`.
    let port = free_port();
    let jwks = format!("http://127.0.0.1:{dead}/keys?token=sekrit-query");
    let mut child = gatehouse(&[
        ("PORT", &port.to_string()),
        ("OAUTH_ISSUER", &format!("http://127.0.0.1:{dead}")),
        ("OAUTH_JWKS_URI", &jwks),
        // Nothing answers there: listen at once rather than after the startup wait for keys.
        ("GATEHOUSE_AUTH__STARTUP_KEY_WAIT_SECS", "0"),
    ])
    .spawn()
    .unwrap();
    wait_up(port).await;
    // The first fetch fails at once (nothing listens there); its retry a quarter second later.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let log = stop_and_read_log(&mut child);
    assert!(log.contains("key set fetch failed"), "{log}");
    assert!(log.contains("/keys?***"), "{log}");
    for secret in secrets {
        assert!(!log.contains(secret), "{secret} in {log}");
    }
    let out = gatehouse(&[
        ("OAUTH_ISSUER", &format!("http://127.0.0.1:{dead}")),
        ("OAUTH_JWKS_URI", &jwks),
    ])
    .arg("doctor")
    .output()
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("COULD NOT BE FETCHED") && text.contains("/keys?***"),
        "{text}"
    );
    assert!(!text.contains("sekrit-query"), "{text}");
}

#[actix_web::test]
async fn anonymous_garbage_writes_no_error_line() {
    let (port, mut child) = serving_without_auth().await;
    tokio::task::spawn_blocking(move || {
        for i in 0..50 {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let junk: &[u8] = match i % 3 {
                0 => b"GET /health HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
                1 => b"POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
                _ => b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage that is no request at all\r\n\r\n",
            };
            use std::io::Write as _;
            let _ = s.write_all(junk);
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
        }
    })
    .await
    .unwrap();
    wait_up(port).await;
    let log = stop_and_read_log(&mut child);
    let errors: Vec<&str> = log.lines().filter(|l| l.contains(" ERROR ")).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // Still seen at debug, for whoever asks for it.
    assert!(log.contains("DEBUG actix_http"), "{log}");
}

#[actix_web::test]
async fn the_token_command_mints_a_machine_clients_token_the_server_accepts() {
    let port = free_port();
    let vars = [("PORT", port.to_string())];
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = gatehouse(&vars)
        .args(["token", "--client", "m2morg_dev", "--org", "acme"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert!(claims.get("sub").is_none(), "{claims}");
    assert_eq!(claims["client_id"], "m2morg_dev");
    let mut child = gatehouse(&vars).spawn().unwrap();
    wait_up(port).await;
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/mcp"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fixture_whoami","arguments":{}}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    let me = &body["result"]["structuredContent"];
    assert_eq!(
        (me["kind"].as_str(), me["subject"].as_str()),
        (Some("client"), Some("m2morg_dev"))
    );
    assert_eq!(me["organization"], "acme");
    stop_and_read_log(&mut child);
}
