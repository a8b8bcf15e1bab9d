//! Protocol revision 2026-07-28 over HTTP: era decided per request, the `_meta` envelope, the
//! standard headers, `server/discover`, `resultType` and caching hints, removed methods,
//! client capabilities, log and progress notifications, `subscriptions/listen`, and 2025-era
//! clients served alongside on the same endpoint.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{SseStream, TestApp, spawn_open, spawn_with_issuer};

const V: &str = "2026-07-28";

/// A conforming `_meta` with these client capabilities.
pub fn meta(caps: Value) -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": V,
        "io.modelcontextprotocol/clientInfo": {"name": "gatehouse-tests", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": caps,
    })
}

/// `params` with the conforming `_meta` added (unless it brings its own).
pub fn with_meta(mut params: Value) -> Value {
    if params.get("_meta").is_none() {
        params["_meta"] = meta(json!({}));
    }
    params
}

/// A 2026-07-28 request with every standard header, built for further changes.
pub fn modern(
    app: &TestApp,
    token: Option<&str>,
    id: Value,
    method: &str,
    params: &Value,
) -> reqwest::RequestBuilder {
    let mut rb = app
        .mcp(token)
        .header("mcp-protocol-version", V)
        .header("mcp-method", method);
    let name = match method {
        "tools/call" | "prompts/get" => params["name"].as_str(),
        "resources/read" => params["uri"].as_str(),
        _ => None,
    };
    if let Some(n) = name {
        rb = rb.header("mcp-name", n);
    }
    rb.body(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string())
}

pub async fn send(
    app: &TestApp,
    token: Option<&str>,
    method: &str,
    params: Value,
) -> crate::helpers::Resp {
    app.send(modern(app, token, json!(7), method, &with_meta(params)))
        .await
}

fn assert_error(r: &crate::helpers::Resp, status: u16, code: i64) -> Value {
    assert_eq!(r.status, status, "{}", r.text);
    let body = r.json();
    assert_eq!(body["error"]["code"], code, "{}", r.text);
    body
}

#[actix_web::test]
async fn discover_describes_the_server() {
    let app = spawn_open(&[("GATEHOUSE_MCP__INSTRUCTIONS", "Use greet_user to greet.")]).await;
    let r = send(&app, None, "server/discover", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let body = r.json();
    assert_eq!(body["id"], 7);
    let result = &body["result"];
    assert_eq!(result["resultType"], "complete");
    assert_eq!(
        result["supportedVersions"],
        json!(["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"])
    );
    assert_eq!(result["capabilities"]["tools"]["listChanged"], true);
    assert_eq!(result["capabilities"]["prompts"]["listChanged"], true);
    assert_eq!(result["capabilities"]["resources"]["subscribe"], true);
    assert!(result["capabilities"]["completions"].is_object());
    let info = &result["_meta"]["io.modelcontextprotocol/serverInfo"];
    assert_eq!(info["name"], "gatehouse");
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(result["instructions"], "Use greet_user to greet.");
    assert_eq!(result["cacheScope"], "public");
    assert_eq!(result["ttlMs"], 60000);

    // 2025 clients still get the handshake, with list changes not promised (no stream).
    let init = app
        .rpc(
            None,
            "initialize",
            json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
        )
        .await;
    let init = init.json();
    assert_eq!(init["result"]["protocolVersion"], "2025-11-25");
    assert_eq!(
        init["result"]["capabilities"]["tools"]["listChanged"],
        false
    );
    assert!(init["result"].get("resultType").is_none());
}

#[actix_web::test]
async fn the_envelope_is_required_on_every_request() {
    let app = spawn_open(&[]).await;
    let bad_metas = [
        None,
        Some(json!({"io.modelcontextprotocol/clientCapabilities": {}})),
        Some(json!({"io.modelcontextprotocol/protocolVersion": V})),
        Some(
            json!({"io.modelcontextprotocol/protocolVersion": V, "io.modelcontextprotocol/clientCapabilities": "all"}),
        ),
        Some(
            json!({"io.modelcontextprotocol/protocolVersion": V, "io.modelcontextprotocol/clientCapabilities": {}, "io.modelcontextprotocol/logLevel": "chatty"}),
        ),
    ];
    for m in bad_metas {
        let params = match &m {
            Some(m) => json!({"_meta": m}),
            None => json!({}),
        };
        let r = app
            .send(modern(&app, None, json!("probe-1"), "tools/list", &params))
            .await;
        let body = assert_error(&r, 400, -32602);
        assert_eq!(body["id"], "probe-1", "a readable id is echoed: {m:?}");
    }
    // clientInfo is optional.
    let r = app
        .send(modern(
            &app,
            None,
            json!(1),
            "tools/list",
            &json!({"_meta": {"io.modelcontextprotocol/protocolVersion": V, "io.modelcontextprotocol/clientCapabilities": {}}}),
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[actix_web::test]
async fn the_version_header_and_the_body_must_agree() {
    let app = spawn_open(&[]).await;
    let params = with_meta(json!({}));
    let rb = |version: Option<&str>, claim: &str| {
        let mut p = params.clone();
        p["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!(claim);
        let mut rb = app.mcp(None).header("mcp-method", "tools/list").body(
            json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": p}).to_string(),
        );
        if let Some(v) = version {
            rb = rb.header("mcp-protocol-version", v);
        }
        rb
    };
    for (header, claim, code) in [
        (Some("2025-11-25"), V, -32020),
        (None, V, -32020),
        (Some(V), "v999.0.0", -32020),
        (Some("v999.0.0"), "v999.0.0", -32022),
    ] {
        let r = app.send(rb(header, claim)).await;
        let body = assert_error(&r, 400, code);
        assert_eq!(body["id"], 3);
        if code == -32022 {
            assert_eq!(body["error"]["data"]["requested"], "v999.0.0");
            assert!(
                body["error"]["data"]["supported"]
                    .as_array()
                    .unwrap()
                    .contains(&json!(V))
            );
        }
    }
}

#[actix_web::test]
async fn removed_and_unknown_methods_are_not_found() {
    let app = spawn_open(&[]).await;
    for method in [
        "initialize",
        "ping",
        "logging/setLevel",
        "resources/subscribe",
        "resources/unsubscribe",
        "unknown/method",
    ] {
        let r = send(
            &app,
            None,
            method,
            json!({"uri": "test://static-text", "level": "info"}),
        )
        .await;
        let body = assert_error(&r, 404, -32601);
        assert_eq!(body["id"], 7, "{method}");
    }
    // The same methods keep working for 2025 clients.
    let r = app.rpc(None, "ping", json!({})).await;
    assert_eq!(r.json()["result"], json!({}));
}

#[actix_web::test]
async fn standard_headers_must_mirror_the_body() {
    let app = spawn_open(&[]).await;
    let call = with_meta(json!({"name": "greet_user", "arguments": {"name": "Ada"}}));
    let body =
        json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": call}).to_string();
    let base = || {
        app.mcp(None)
            .header("mcp-protocol-version", V)
            .body(body.clone())
    };
    let cases: Vec<(&str, reqwest::RequestBuilder, u16)> = vec![
        (
            "all headers",
            base()
                .header("mcp-method", "tools/call")
                .header("mcp-name", "greet_user"),
            200,
        ),
        (
            "lower-case names",
            base()
                .header("mcp-method", "tools/call")
                .header("MCP-NAME", "greet_user"),
            200,
        ),
        (
            "whitespace",
            base()
                .header("mcp-method", " tools/call\t")
                .header("mcp-name", "  greet_user "),
            200,
        ),
        (
            "base64 name",
            base()
                .header("mcp-method", "tools/call")
                .header("mcp-name", "=?base64?Z3JlZXRfdXNlcg==?="),
            200,
        ),
        (
            "no Mcp-Method",
            base().header("mcp-name", "greet_user"),
            400,
        ),
        (
            "other method",
            base()
                .header("mcp-method", "tools/list")
                .header("mcp-name", "greet_user"),
            400,
        ),
        (
            "value case",
            base()
                .header("mcp-method", "TOOLS/CALL")
                .header("mcp-name", "greet_user"),
            400,
        ),
        (
            "twice",
            base()
                .header("mcp-method", "tools/call")
                .header("mcp-method", "tools/call")
                .header("mcp-name", "greet_user"),
            400,
        ),
        (
            "no Mcp-Name",
            base().header("mcp-method", "tools/call"),
            400,
        ),
        (
            "other name",
            base()
                .header("mcp-method", "tools/call")
                .header("mcp-name", "admin_action"),
            400,
        ),
        (
            "bad base64",
            base()
                .header("mcp-method", "tools/call")
                .header("mcp-name", "=?base64?Z3JlZXRfdXNlcg?="),
            400,
        ),
    ];
    for (what, rb, status) in cases {
        let r = app.send(rb).await;
        assert_eq!(r.status, status, "{what}: {}", r.text);
        if status == 400 {
            let body = r.json();
            assert_eq!(body["error"]["code"], -32020, "{what}");
            assert_eq!(body["id"], 9, "{what}");
        }
    }
}

#[actix_web::test]
async fn mirrored_tool_parameters_are_checked() {
    let app = spawn_open(&[]).await;
    let call = |region: &str| {
        with_meta(json!({"name": "test_header_param", "arguments": {"region": region}}))
    };
    let cases = [
        ("eu-west", Some("eu-west"), 200),
        ("Hello", Some("=?base64?SGVsbG8=?="), 200),
        ("SGVsbG8=", Some("SGVsbG8="), 200),
        ("eu-west", Some("EU-WEST"), 400),
        ("eu-west", None, 400),
        ("Hello", Some("=?base64?SGVsbG8?="), 400),
        ("Hello", Some("=?base64?SGVs!!!bG8=?="), 400),
    ];
    for (region, header, status) in cases {
        let mut rb = modern(&app, None, json!(4), "tools/call", &call(region));
        if let Some(h) = header {
            rb = rb.header("Mcp-Param-Region", h);
        }
        let r = app.send(rb).await;
        assert_eq!(r.status, status, "{region} / {header:?}: {}", r.text);
        if status == 200 {
            assert_eq!(
                r.json()["result"]["content"][0]["text"],
                format!("region {region}")
            );
        } else {
            assert_eq!(r.json()["error"]["code"], -32020);
        }
    }
}

#[actix_web::test]
async fn results_carry_their_type_and_caching_hints() {
    let app = spawn_open(&[
        ("GATEHOUSE_MCP__LIST_TTL_MS", "1234"),
        ("GATEHOUSE_MCP__READ_TTL_MS", "5"),
    ])
    .await;
    // Tools are filtered by scope (admin_action needs admin): private. Prompts and resources
    // here need no scope: the same for everyone, public.
    for (method, params, ttl, scope) in [
        ("tools/list", json!({}), 1234, "private"),
        ("prompts/list", json!({}), 1234, "public"),
        ("resources/list", json!({}), 1234, "public"),
        ("resources/templates/list", json!({}), 1234, "public"),
        (
            "resources/read",
            json!({"uri": "test://static-text"}),
            5,
            "private",
        ),
    ] {
        let r = send(&app, None, method, params).await;
        assert_eq!(r.status, 200, "{method}: {}", r.text);
        let result = &r.json()["result"];
        assert_eq!(result["resultType"], "complete", "{method}");
        assert_eq!(result["ttlMs"], ttl, "{method}");
        assert_eq!(result["cacheScope"], scope, "{method}");
        assert_eq!(
            result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
            "gatehouse"
        );
    }
    let r = send(
        &app,
        None,
        "tools/call",
        json!({"name": "greet_user", "arguments": {"name": "Ada"}}),
    )
    .await;
    let result = &r.json()["result"];
    assert_eq!(result["resultType"], "complete");
    assert!(result.get("ttlMs").is_none());
    // Tool errors are results too.
    let r = send(
        &app,
        None,
        "tools/call",
        json!({"name": "fixture_fail", "arguments": {}}),
    )
    .await;
    assert_eq!(r.json()["result"]["isError"], true);
    assert_eq!(r.json()["result"]["resultType"], "complete");
    // Handler errors stay in-band on 200, with the id.
    let r = send(
        &app,
        None,
        "tools/call",
        json!({"name": "no_such_tool", "arguments": {}}),
    )
    .await;
    let body = assert_error(&r, 200, -32602);
    assert_eq!(body["id"], 7);
}

#[actix_web::test]
async fn an_unknown_resource_is_invalid_params_naming_the_uri() {
    let app = spawn_open(&[]).await;
    let uri = "test://nonexistent-resource-for-conformance-testing";
    let r = send(&app, None, "resources/read", json!({"uri": uri})).await;
    let body = assert_error(&r, 200, -32602);
    assert_eq!(body["error"]["data"]["uri"], uri);
    // 2025 clients keep -32002.
    let r = app.rpc(None, "resources/read", json!({"uri": uri})).await;
    assert_eq!(r.json()["error"]["code"], -32002);
}

#[actix_web::test]
async fn a_tool_needing_an_undeclared_capability_is_refused() {
    let app = spawn_open(&[]).await;
    let params = |caps: Value| json!({"name": "test_missing_capability", "arguments": {}, "_meta": meta(caps)});
    let r = send(&app, None, "tools/call", params(json!({"elicitation": {}}))).await;
    let body = assert_error(&r, 400, -32021);
    assert_eq!(
        body["error"]["data"]["requiredCapabilities"],
        json!({"sampling": {}})
    );
    assert_eq!(body["id"], 7);
    let r = send(&app, None, "tools/call", params(json!({"sampling": {}}))).await;
    // Declared: the tool runs, and asks the model through an input_required result.
    assert_eq!(r.status, 200, "{}", r.text);
    let result = &r.json()["result"];
    assert_eq!(result["resultType"], "input_required", "{}", r.text);
    assert_eq!(
        result["inputRequests"]["reply"]["method"],
        "sampling/createMessage"
    );
}

#[actix_web::test]
async fn log_messages_only_when_the_request_asks() {
    let app = spawn_open(&[]).await;
    // No logLevel: no notifications/message, so a plain JSON answer.
    let r = send(
        &app,
        None,
        "tools/call",
        json!({"name": "fixture_log", "arguments": {}}),
    )
    .await;
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(r.json()["result"]["content"][0]["text"], "logged");
    // logLevel warning: warning and above, on the call's own stream, result last.
    let mut m = meta(json!({}));
    m["io.modelcontextprotocol/logLevel"] = json!("warning");
    let r = send(
        &app,
        None,
        "tools/call",
        json!({"name": "fixture_log", "arguments": {}, "_meta": m}),
    )
    .await;
    let events = r.events();
    let levels: Vec<&str> = events
        .iter()
        .filter(|e| e["method"] == "notifications/message")
        .map(|e| e["params"]["level"].as_str().unwrap())
        .collect();
    assert_eq!(
        levels,
        ["warning", "error", "critical", "alert", "emergency"]
    );
    assert_eq!(events.last().unwrap()["result"]["resultType"], "complete");
    // The per-subject level of the 2025 era does not leak in.
    assert!(
        events
            .iter()
            .all(|e| e.get("id").is_none() || e.get("result").is_some())
    );
}

#[actix_web::test]
async fn progress_rides_the_call_stream_and_no_request_ever_does() {
    let app = spawn_open(&[]).await;
    let mut m = meta(json!({"elicitation": {}}));
    m["progressToken"] = json!("p-1");
    let r = send(
        &app,
        None,
        "tools/call",
        json!({"name": "test_tool_with_progress", "arguments": {}, "_meta": m.clone()}),
    )
    .await;
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("text/event-stream")
    );
    let events = r.events();
    let progress: Vec<f64> = events
        .iter()
        .filter(|e| e["method"] == "notifications/progress")
        .map(|e| {
            assert_eq!(e["params"]["progressToken"], "p-1");
            e["params"]["progress"].as_f64().unwrap()
        })
        .collect();
    assert_eq!(progress, [0.0, 50.0, 100.0]);
    assert_eq!(events.last().unwrap()["id"], 7);
    let r = send(
        &app,
        None,
        "tools/call",
        json!({"name": "test_streaming_elicitation", "arguments": {}, "_meta": m}),
    )
    .await;
    for e in r.events() {
        let method = e["method"].as_str().unwrap_or("notifications/");
        assert!(
            method.starts_with("notifications/"),
            "a request on the stream: {e}"
        );
    }
}

#[actix_web::test]
async fn batches_are_not_part_of_the_revision() {
    let app = spawn_open(&[]).await;
    let item =
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": with_meta(json!({}))});
    let r = app
        .send(
            app.mcp(None)
                .header("mcp-protocol-version", V)
                .header("mcp-method", "tools/list")
                .body(json!([item]).to_string()),
        )
        .await;
    assert_error(&r, 400, -32600);
}

/// Opens a `subscriptions/listen` stream with this filter.
pub async fn listen(app: &TestApp, token: Option<&str>, id: Value, filter: Value) -> SseStream {
    SseStream::new(
        modern(
            app,
            token,
            id,
            "subscriptions/listen",
            &with_meta(json!({"notifications": filter})),
        )
        .send()
        .await
        .unwrap(),
    )
}

#[actix_web::test]
async fn listen_streams_acknowledge_then_deliver_what_they_asked_for() {
    let app = spawn_open(&[]).await;
    let mut stream = listen(
        &app,
        None,
        json!("sub-1"),
        json!({
            "toolsListChanged": true,
            "resourceSubscriptions": ["test://static-text", "test://not-registered"]
        }),
    )
    .await;
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.resp.headers()["content-type"], "text/event-stream");
    let ack = stream
        .next(Duration::from_secs(5))
        .await
        .expect("an acknowledgement");
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    assert_eq!(
        ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        "sub-1"
    );
    // Only what exists is agreed to.
    assert_eq!(
        ack["params"]["notifications"],
        json!({"toolsListChanged": true, "resourceSubscriptions": ["test://static-text"]})
    );
    // A prompt change is not asked for; a tool change is.
    for tool in ["test_trigger_prompt_change", "test_trigger_tool_change"] {
        let r = send(
            &app,
            None,
            "tools/call",
            json!({"name": tool, "arguments": {}}),
        )
        .await;
        assert_eq!(r.status, 200);
    }
    let n = stream
        .next(Duration::from_secs(5))
        .await
        .expect("a notification");
    assert_eq!(n["method"], "notifications/tools/list_changed");
    assert_eq!(
        n["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        "sub-1"
    );
    assert!(
        stream.next(Duration::from_millis(300)).await.is_none(),
        "nothing else"
    );
}

#[actix_web::test]
async fn listen_streams_are_bounded_per_subject_and_need_an_event_stream() {
    let app = spawn_open(&[("GATEHOUSE_MCP__MAX_LISTEN_STREAMS", "1")]).await;
    let first = listen(&app, None, json!(1), json!({"toolsListChanged": true})).await;
    assert_eq!(first.status(), 200);
    let second = listen(&app, None, json!(2), json!({"toolsListChanged": true})).await;
    assert_eq!(second.status(), 429);
    assert_eq!(second.resp.headers()["retry-after"], "5");
    drop(first);
    let mut reopened = 0;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let again = listen(&app, None, json!(3), json!({"toolsListChanged": true})).await;
        if again.status() == 200 {
            reopened += 1;
            break;
        }
    }
    assert_eq!(reopened, 1, "a closed stream gives its slot back");
    // A JSON-only client cannot hold a stream.
    let json_only = app
        .client
        .post(format!("{}/mcp", app.base))
        .header("accept", "application/json")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", V)
        .header("mcp-method", "subscriptions/listen")
        .body(json!({"jsonrpc": "2.0", "id": 5, "method": "subscriptions/listen", "params": with_meta(json!({"notifications": {}}))}).to_string());
    assert_eq!(app.send(json_only).await.status, 406);
    // A malformed filter is invalid params.
    let r = send(&app, None, "subscriptions/listen", json!({})).await;
    assert_error(&r, 200, -32602);
}

#[actix_web::test]
async fn legacy_and_modern_clients_interleave_on_one_server() {
    let app = spawn_open(&[]).await;
    let mut tasks = Vec::new();
    for i in 0..10 {
        let legacy = i % 2 == 0;
        let app = &app;
        tasks.push(async move {
            let r = if legacy {
                app.send(
                    app.mcp(None)
                        .header("mcp-protocol-version", "2025-11-25")
                        .body(json!({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": "greet_user", "arguments": {"name": format!("L{i}")}}}).to_string()),
                )
                .await
            } else {
                app.send(modern(
                    app,
                    None,
                    json!(i),
                    "tools/call",
                    &with_meta(json!({"name": "greet_user", "arguments": {"name": format!("M{i}")}})),
                ))
                .await
            };
            (legacy, i, r)
        });
    }
    for (legacy, i, r) in futures_util::future::join_all(tasks).await {
        assert_eq!(r.status, 200, "{}", r.text);
        let body = r.json();
        assert_eq!(body["id"], i);
        let text = body["result"]["content"][0]["text"].as_str().unwrap();
        let who = if legacy {
            format!("L{i}")
        } else {
            format!("M{i}")
        };
        assert!(text.contains(&who), "{text}");
        assert_eq!(
            body["result"].get("resultType").is_some(),
            !legacy,
            "{}",
            r.text
        );
    }
}

#[actix_web::test]
async fn authentication_and_scopes_apply_to_the_modern_era() {
    let app = spawn_with_issuer(&[]).await;
    app.wait_ready().await;
    let r = send(&app, None, "server/discover", json!({})).await;
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").unwrap().starts_with("Bearer "));
    let token = app.token("user-1", &[]);
    let r = send(&app, Some(&token), "server/discover", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = send(
        &app,
        Some(&token),
        "tools/call",
        json!({"name": "admin_action", "arguments": {"action": "x"}}),
    )
    .await;
    assert_eq!(r.status, 403);
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("insufficient_scope")
    );
    let admin = app.token("user-2", &["admin"]);
    let r = send(&app, Some(&admin), "tools/list", json!({})).await;
    let body = r.json();
    let names: Vec<&str> = body["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"admin_action"));
    assert_eq!(r.json()["result"]["cacheScope"], "private");
}

#[actix_web::test]
async fn browsers_may_send_the_standard_headers() {
    let app = spawn_open(&[("ALLOWED_ORIGINS", "https://app.example")]).await;
    let r = app
        .send(
            app.client
                .request(reqwest::Method::OPTIONS, format!("{}/mcp", app.base))
                .header("origin", "https://app.example")
                .header("access-control-request-method", "POST")
                .header(
                    "access-control-request-headers",
                    "authorization,content-type,mcp-protocol-version,mcp-method,mcp-name,mcp-param-region",
                ),
        )
        .await;
    assert!(r.status < 300, "{}", r.status);
    let allowed = r
        .header("access-control-allow-headers")
        .unwrap()
        .to_ascii_lowercase();
    for h in [
        "mcp-method",
        "mcp-name",
        "mcp-param-region",
        "mcp-protocol-version",
    ] {
        assert!(allowed.contains(h), "{h} in {allowed}");
    }
}

#[actix_web::test]
async fn an_oversized_tool_result_becomes_a_complete_tool_error() {
    let app = spawn_open(&[("GATEHOUSE_MCP__MAX_RESPONSE_BYTES", "16384")]).await;
    let r = send(
        &app,
        None,
        "tools/call",
        json!({"name": "fixture_big", "arguments": {"bytes": 100_000}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.len() <= 16384);
    let result = &r.json()["result"];
    assert_eq!(result["isError"], true, "{}", r.text);
    assert_eq!(result["resultType"], "complete", "{}", r.text);
    assert_eq!(
        result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "gatehouse",
        "{}",
        r.text
    );
}
