//! The tasks extension (2026-07-28) on one instance: a call that becomes a task, `tasks/get`,
//! `tasks/update`, `tasks/cancel`, who may see a task, limits, expiry, deadlines, results too
//! large, `notifications/tasks` on a listen stream; and 2025-era long calls kept alive on their
//! event stream through a router that cuts silent requests.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{Resp, SseStream, TestApp, spawn_open, spawn_with_issuer};
use crate::modern::meta;

pub const EXT: &str = "io.modelcontextprotocol/tasks";

/// Client capabilities declaring the tasks extension (and elicitation).
pub fn with_tasks() -> Value {
    json!({"elicitation": {}, "extensions": {EXT: {}}})
}

/// A 2026-07-28 request with its standard headers (`Mcp-Name` from `name`).
pub async fn rpc(
    app: &TestApp,
    token: Option<&str>,
    method: &str,
    name: Option<&str>,
    mut params: Value,
    caps: Value,
) -> Resp {
    params["_meta"] = meta(caps);
    let mut rb = app
        .mcp(token)
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method);
    if let Some(n) = name {
        rb = rb.header("mcp-name", n);
    }
    app.send(
        rb.body(json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string()),
    )
    .await
}

pub async fn call(
    app: &TestApp,
    token: Option<&str>,
    tool: &str,
    args: Value,
    caps: Value,
) -> Resp {
    rpc(
        app,
        token,
        "tools/call",
        Some(tool),
        json!({"name": tool, "arguments": args}),
        caps,
    )
    .await
}

/// `tasks/get|update|cancel` of `id` with the extension declared.
pub async fn task(
    app: &TestApp,
    token: Option<&str>,
    method: &str,
    id: &str,
    extra: Value,
) -> Resp {
    let mut params = json!({"taskId": id});
    if let Value::Object(m) = extra {
        for (k, v) in m {
            params[k] = v;
        }
    }
    rpc(app, token, method, Some(id), params, with_tasks()).await
}

/// Polls `tasks/get` until `done` holds for the task (at most `within`).
pub async fn until(
    app: &TestApp,
    token: Option<&str>,
    id: &str,
    within: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        let r = task(app, token, "tasks/get", id, json!({})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let t = r.json()["result"].clone();
        if done(&t) {
            return t;
        }
        assert!(start.elapsed() < within, "the task never got there: {t}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn terminal(t: &Value) -> bool {
    ["completed", "failed", "cancelled"].contains(&t["status"].as_str().unwrap_or(""))
}

/// A task created by calling `tool`: its id (the response must be a `CreateTaskResult`).
pub async fn created(app: &TestApp, token: Option<&str>, tool: &str, args: Value) -> String {
    let r = call(app, token, tool, args, with_tasks()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let result = r.json()["result"].clone();
    assert_eq!(result["resultType"], "task", "{result}");
    result["taskId"].as_str().unwrap().to_string()
}

#[actix_web::test]
async fn a_call_still_running_becomes_a_task_whose_result_tasks_get_returns() {
    let app = spawn_open(&[("GATEHOUSE_MCP__TASK_AFTER_MS", "200")]).await;
    // Advertised in server/discover.
    let d = rpc(&app, None, "server/discover", None, json!({}), json!({})).await;
    assert_eq!(
        d.json()["result"]["capabilities"]["extensions"][EXT],
        json!({})
    );
    let started = Instant::now();
    let r = call(
        &app,
        None,
        "slow_compute",
        json!({"seconds": 1, "label": "a"}),
        with_tasks(),
    )
    .await;
    // Answered at mcp.task_after_ms (200 ms here), long before the work ends.
    assert!(started.elapsed() < Duration::from_millis(900));
    let created = r.json()["result"].clone();
    assert_eq!(created["resultType"], "task");
    assert_eq!(created["status"], "working");
    let id = created["taskId"].as_str().unwrap();
    assert_eq!(id.len(), 32, "192 random bits, base64url");
    for member in ["createdAt", "lastUpdatedAt"] {
        assert!(
            created[member].as_str().unwrap().ends_with('Z'),
            "{created}"
        );
    }
    assert!(created["ttlMs"].as_u64().unwrap() > 3_600_000);
    assert_eq!(created["pollIntervalMs"], 1000);
    for absent in ["result", "error", "inputRequests", "requestState"] {
        assert!(created.get(absent).is_none(), "{created}");
    }
    // Stored before the answer: found at once.
    let now = task(&app, None, "tasks/get", id, json!({})).await.json();
    assert_eq!(now["result"]["resultType"], "complete");
    assert_eq!(now["result"]["status"], "working");
    let done = until(&app, None, id, Duration::from_secs(5), terminal).await;
    assert_eq!(done["status"], "completed");
    assert_eq!(done["result"]["content"][0]["text"], "Computed a in 1 s");
    assert_ne!(done["result"]["isError"], true);
    assert!(done.get("requestState").is_none());
}

#[actix_web::test]
async fn clients_without_the_extension_get_answers_in_the_request_or_32021() {
    let app = spawn_open(&[]).await;
    // An optional task tool answers in the request.
    let r = call(&app, None, "slow_compute", json!({"seconds": 0}), json!({})).await;
    let result = r.json()["result"].clone();
    assert_eq!(result["resultType"], "complete");
    assert!(result.get("taskId").is_none());
    // A task-only tool is refused, naming the extension.
    let r = call(&app, None, "failing_job", json!({}), json!({})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let error = r.json()["error"].clone();
    assert_eq!(error["code"], -32021);
    assert_eq!(
        error["data"]["requiredCapabilities"]["extensions"][EXT],
        json!({})
    );
    // And so are the tasks methods, before any lookup.
    for method in ["tasks/get", "tasks/update", "tasks/cancel"] {
        let r = rpc(
            &app,
            None,
            method,
            Some("x"),
            json!({"taskId": "x", "inputResponses": {}}),
            json!({}),
        )
        .await;
        assert_eq!(r.json()["error"]["code"], -32021, "{method}: {}", r.text);
    }
    // A 2025 client has no tasks: the same task-only tool is refused there too.
    let r = app.call_tool(None, "failing_job", json!({})).await;
    let body = if r.text.starts_with('{') {
        r.json()
    } else {
        r.events().pop().unwrap()
    };
    assert_eq!(body["error"]["code"], -32021, "{}", r.text);
    // The removed methods of the 2025-11-25 experiment are unknown.
    for method in ["tasks/result", "tasks/list"] {
        let r = rpc(
            &app,
            None,
            method,
            None,
            json!({"taskId": "x"}),
            with_tasks(),
        )
        .await;
        assert_eq!(r.json()["error"]["code"], -32601, "{method}");
    }
}

#[actix_web::test]
async fn a_task_belongs_to_its_subject_and_its_tools_scopes_are_checked_on_every_request() {
    let app = spawn_with_issuer(&[]).await;
    let alice = app.token("alice", &["reports:read"]);
    let id = created(
        &app,
        Some(&alice),
        "fixture_scoped_task",
        json!({"ms": 30000}),
    )
    .await;
    let unknown = task(
        &app,
        Some(&alice),
        "tasks/get",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        json!({}),
    )
    .await;
    assert_eq!(unknown.status, 200);
    assert_eq!(unknown.json()["error"]["code"], -32602);
    // Another subject: exactly as an unknown id, for every method.
    let mallory = app.token("mallory", &["reports:read"]);
    for method in ["tasks/get", "tasks/update", "tasks/cancel"] {
        let r = task(
            &app,
            Some(&mallory),
            method,
            &id,
            json!({"inputResponses": {}}),
        )
        .await;
        assert_eq!(r.status, unknown.status);
        assert_eq!(r.json()["error"], unknown.json()["error"], "{method}");
    }
    // Alice without the tool's scope: a 403 step-up, as for the call.
    let narrow = app.token("alice", &[]);
    let r = task(&app, Some(&narrow), "tasks/get", &id, json!({})).await;
    assert_eq!(r.status, 403, "{}", r.text);
    let challenge = r.header("www-authenticate").unwrap();
    assert!(challenge.contains("insufficient_scope") && challenge.contains("reports:read"));
    // Mallory's cancel did nothing; Alice's does.
    let t = task(&app, Some(&alice), "tasks/get", &id, json!({}))
        .await
        .json();
    assert_eq!(t["result"]["status"], "working");
    let ack = task(&app, Some(&alice), "tasks/cancel", &id, json!({}))
        .await
        .json();
    assert_eq!(ack["result"]["resultType"], "complete");
    let t = until(&app, Some(&alice), &id, Duration::from_secs(3), terminal).await;
    assert_eq!(t["status"], "cancelled");
}

#[actix_web::test]
async fn a_task_that_asks_waits_in_input_required_until_tasks_update_answers() {
    let app = spawn_open(&[]).await;
    let id = created(&app, None, "confirm_delete", json!({"filename": "a.txt"})).await;
    let t = until(&app, None, &id, Duration::from_secs(3), |t| {
        t["status"] == "input_required"
    })
    .await;
    let q = &t["inputRequests"]["confirm"];
    assert_eq!(q["method"], "elicitation/create");
    assert_eq!(q["params"]["message"], "Delete a.txt?");
    // Still asked on the next poll; answers to other keys are ignored.
    let ack = task(
        &app,
        None,
        "tasks/update",
        &id,
        json!({"inputResponses": {"other": {"action": "accept"}}}),
    )
    .await;
    assert_eq!(
        ack.json()["result"],
        json!({"resultType": "complete", "_meta": ack.json()["result"]["_meta"]})
    );
    let again = task(&app, None, "tasks/get", &id, json!({})).await.json();
    assert_eq!(again["result"]["status"], "input_required");
    let answer = json!({"confirm": {"action": "accept", "content": {"confirm": true}}});
    task(
        &app,
        None,
        "tasks/update",
        &id,
        json!({"inputResponses": answer}),
    )
    .await;
    let done = until(&app, None, &id, Duration::from_secs(3), terminal).await;
    assert_eq!(done["status"], "completed");
    assert_eq!(done["result"]["content"][0]["text"], "Deleted a.txt");
    assert!(done.get("inputRequests").is_none());
}

#[actix_web::test]
async fn cancel_fires_the_handlers_signal_and_the_task_stays_cancelled_until_its_ttl() {
    let app = spawn_open(&[
        ("GATEHOUSE_MCP__TASK_TTL_SECS", "1"),
        ("GATEHOUSE_MCP__TASK_AFTER_MS", "200"),
    ])
    .await;
    let id = created(
        &app,
        None,
        "slow_compute",
        json!({"seconds": 60, "label": "c"}),
    )
    .await;
    task(&app, None, "tasks/cancel", &id, json!({})).await;
    let t = until(&app, None, &id, Duration::from_secs(2), terminal).await;
    assert_eq!(t["status"], "cancelled");
    // The handler saw its signal (its own error is not what the client reads: cancelled wins).
    // (No event says the handler returned: a short wait, well inside the TTL.)
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = task(&app, None, "tasks/get", &id, json!({})).await.json();
    assert_eq!(t["result"]["status"], "cancelled");
    assert!(t["result"].get("result").is_none());
    // Cancelling again is the same acknowledgement.
    let ack = task(&app, None, "tasks/cancel", &id, json!({})).await;
    assert_eq!(ack.json()["result"]["resultType"], "complete");
    // Past mcp.task_ttl_secs the task is gone.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let gone = task(&app, None, "tasks/get", &id, json!({})).await.json();
    assert_eq!(gone["error"]["code"], -32602, "{gone}");
}

#[actix_web::test]
async fn a_subject_has_at_most_max_tasks_per_subject_unfinished_tasks() {
    let app = spawn_open(&[
        ("GATEHOUSE_MCP__MAX_TASKS_PER_SUBJECT", "2"),
        ("GATEHOUSE_MCP__TASK_AFTER_MS", "200"),
    ])
    .await;
    let a = created(&app, None, "confirm_delete", json!({"filename": "1"})).await;
    created(&app, None, "confirm_delete", json!({"filename": "2"})).await;
    let r = call(
        &app,
        None,
        "confirm_delete",
        json!({"filename": "3"}),
        with_tasks(),
    )
    .await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert!(r.header("retry-after").is_some());
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("mcp.max_tasks_per_subject")
    );
    // An optional task tool over the limit answers in its request instead.
    let r = call(
        &app,
        None,
        "slow_compute",
        json!({"seconds": 0.5, "label": "in-request"}),
        with_tasks(),
    )
    .await;
    assert_eq!(
        r.json()["result"]["content"][0]["text"],
        "Computed in-request in 0.5 s",
        "{}",
        r.text
    );
    // A finished task frees its slot.
    task(&app, None, "tasks/cancel", &a, json!({})).await;
    created(&app, None, "confirm_delete", json!({"filename": "4"})).await;
}

#[actix_web::test]
async fn a_task_past_its_timeout_or_with_a_result_too_large_fails_saying_so() {
    let app = spawn_open(&[
        ("GATEHOUSE_MCP__TASK_TIMEOUT_SECS", "1"),
        ("GATEHOUSE_MCP__MAX_RESPONSE_BYTES", "16384"),
    ])
    .await;
    let id = created(&app, None, "fixture_scoped_task", json!({"ms": 5000})).await;
    let t = until(&app, None, &id, Duration::from_secs(4), terminal).await;
    assert_eq!(t["status"], "failed");
    assert_eq!(t["error"]["code"], -32603);
    assert!(
        t["error"]["message"]
            .as_str()
            .unwrap()
            .contains("mcp.task_timeout_secs"),
        "{t}"
    );
    assert!(t.get("result").is_none());
    let id = created(&app, None, "fixture_task_big", json!({"bytes": 20000})).await;
    let t = until(&app, None, &id, Duration::from_secs(3), terminal).await;
    assert_eq!(t["status"], "failed");
    assert!(
        t["statusMessage"]
            .as_str()
            .unwrap()
            .contains("mcp.max_response_bytes"),
        "{t}"
    );
    // A panicking handler fails its task with -32603, and the server keeps serving.
    let id = created(&app, None, "protocol_error_job", json!({})).await;
    let t = until(&app, None, &id, Duration::from_secs(3), terminal).await;
    assert_eq!(
        (t["status"].as_str(), t["error"]["code"].as_i64()),
        (Some("failed"), Some(-32603))
    );
}

#[actix_web::test]
async fn progress_becomes_the_status_message_and_a_listen_stream_hears_the_task_end() {
    let metrics_port = crate::helpers::free_port().to_string();
    let app = spawn_with_issuer(&[
        ("METRICS_PORT", metrics_port.as_str()),
        ("GATEHOUSE_MCP__TASK_AFTER_MS", "200"),
    ])
    .await;
    let claims = {
        let mut c = app.claims("ann-tasks", &[]);
        c["oid"] = json!("acme");
        c
    };
    let ann = app.rsa().sign(&claims);
    let id = created(
        &app,
        Some(&ann),
        "export_report",
        json!({"sections": 3, "seconds_per_section": 0.3}),
    )
    .await;
    let t = until(&app, Some(&ann), &id, Duration::from_secs(3), |t| {
        t["statusMessage"]
            .as_str()
            .is_some_and(|m| m.starts_with("Built section"))
    })
    .await;
    assert_eq!(t["status"], "working");
    // A listen stream that names the task hears its status, up to its question.
    let mut params = json!({"notifications": {"taskIds": [id, "not-a-task-of-anyone"]}});
    params["_meta"] = meta(with_tasks());
    let resp = app
        .mcp(Some(&ann))
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "subscriptions/listen")
        .body(json!({"jsonrpc": "2.0", "id": "l1", "method": "subscriptions/listen", "params": params}).to_string())
        .send()
        .await
        .unwrap();
    let mut stream = SseStream::new(resp);
    let ack = stream.next(Duration::from_secs(2)).await.unwrap();
    assert_eq!(
        ack["params"]["notifications"]["taskIds"],
        json!([id]),
        "{ack}"
    );
    let mut asked = None;
    while let Some(n) = stream.next(Duration::from_secs(5)).await {
        assert_eq!(n["method"], "notifications/tasks");
        assert_eq!(n["params"]["taskId"], id.as_str());
        if n["params"]["status"] == "input_required" {
            asked = Some(n["params"].clone());
            break;
        }
    }
    let asked = asked.expect("the task asked whether to publish");
    assert!(
        asked["inputRequests"]["publish"]["params"]["message"]
            .as_str()
            .unwrap()
            .contains("acme")
    );
    let answer = json!({"publish": {"action": "accept", "content": {"publish": true}}});
    task(
        &app,
        Some(&ann),
        "tasks/update",
        &id,
        json!({"inputResponses": answer}),
    )
    .await;
    let mut last = Value::Null;
    while let Some(n) = stream.next(Duration::from_secs(3)).await {
        last = n;
        if terminal(&last["params"]) {
            break;
        }
    }
    assert_eq!(last["params"]["status"], "completed", "{last}");
    assert_eq!(
        last["params"]["result"]["structuredContent"]["published"],
        true
    );
}

/// A platform router in front of `upstream`, scaled down: a response whose first byte takes
/// longer than `first_byte` is cut (the client gets 503, as Heroku's H12), and so is one that
/// then stays silent longer than `idle`.
async fn router(upstream: u16, first_byte: Duration, idle: Duration) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let server = tokio::net::TcpStream::connect(("127.0.0.1", upstream))
                    .await
                    .unwrap();
                let (mut from_client, mut to_client) = client.into_split();
                let (mut from_server, mut to_server) = server.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut from_client, &mut to_server).await;
                });
                let mut buf = [0u8; 8192];
                let mut limit = first_byte;
                let mut sent = false;
                loop {
                    match tokio::time::timeout(limit, from_server.read(&mut buf)).await {
                        Ok(Ok(0) | Err(_)) => break,
                        Ok(Ok(n)) => {
                            if to_client.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                            sent = true;
                            limit = idle;
                        }
                        Err(_) => {
                            if !sent {
                                let _ = to_client
                                    .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                                    .await;
                            }
                            break;
                        }
                    }
                }
            });
        }
    });
    port
}

#[actix_web::test]
async fn a_2025_call_longer_than_the_routers_first_byte_limit_completes_on_its_stream() {
    let app = spawn_open(&[("GATEHOUSE_MCP__STREAM_AFTER_MS", "150")]).await;
    // Heroku's 30 s and 55 s, as 0.6 s and 2 s.
    let port = router(app.port, Duration::from_millis(600), Duration::from_secs(2)).await;
    // One connection per request: the router's first-byte rule applies to each.
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "fixture_slow", "arguments": {"ms": 1200}}})
    .to_string();
    let send = |accept: &'static str| {
        client
            .post(format!("http://127.0.0.1:{port}/mcp"))
            .header("accept", accept)
            .header("content-type", "application/json")
            .header("mcp-protocol-version", "2025-06-18")
            .body(body.clone())
            .send()
    };
    // A client that accepts an event stream: the head and a comment go out at 150 ms, the
    // result follows on the stream.
    let r = send("application/json, text/event-stream").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let text = r.text().await.unwrap();
    assert!(text.starts_with(": "), "a comment first: {text}");
    let data = text
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .expect("the result event");
    let result: Value = serde_json::from_str(data).unwrap();
    assert_eq!(result["id"], 1);
    assert!(result["result"]["content"].is_array(), "{result}");
    // A client that takes JSON only is answered when the call ends: the router has cut it.
    let r = send("application/json").await.unwrap();
    assert_eq!(
        r.status(),
        503,
        "as documented: plain JSON answers must beat the router"
    );
}

#[actix_web::test]
async fn with_redis_down_a_task_is_refused_or_kept_in_memory_as_configured() {
    // Nothing listens on this port: the store never answers.
    let dead = format!("redis://127.0.0.1:{}", crate::helpers::free_port());
    let refuse = spawn_open(&[
        ("REDIS_URL", dead.as_str()),
        ("GATEHOUSE_RATE_LIMIT__ENABLED", "false"),
        ("GATEHOUSE_RATE_LIMIT__REDIS_DOWN", "refuse"),
    ])
    .await;
    let started = Instant::now();
    let r = call(
        &refuse,
        None,
        "confirm_delete",
        json!({"filename": "x"}),
        with_tasks(),
    )
    .await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(r.header("retry-after").as_deref(), Some("1"));
    assert!(started.elapsed() < Duration::from_secs(2));
    let local = spawn_open(&[
        ("REDIS_URL", dead.as_str()),
        ("GATEHOUSE_RATE_LIMIT__ENABLED", "false"),
    ])
    .await;
    let id = created(&local, None, "confirm_delete", json!({"filename": "y"})).await;
    let t = until(&local, None, &id, Duration::from_secs(3), |t| {
        t["status"] == "input_required"
    })
    .await;
    assert_eq!(
        t["inputRequests"]["confirm"]["method"],
        "elicitation/create"
    );
    let answer = json!({"confirm": {"action": "decline"}});
    task(
        &local,
        None,
        "tasks/update",
        &id,
        json!({"inputResponses": answer}),
    )
    .await;
    let t = until(&local, None, &id, Duration::from_secs(3), terminal).await;
    assert_eq!(t["result"]["content"][0]["text"], "Kept y");
}
