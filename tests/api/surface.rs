//! Resources, prompts, completions, logging, progress over SSE, and cancellation.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::spawn_open;

#[actix_web::test]
async fn capabilities_declare_what_is_registered() {
    let app = spawn_open(&[]).await;
    let b = app
        .rpc(None, "initialize", json!({"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}))
        .await
        .json();
    let caps = &b["result"]["capabilities"];
    for k in ["tools", "resources", "prompts", "logging", "completions"] {
        assert!(caps[k].is_object(), "{k}: {caps}");
    }
    assert_eq!(caps["resources"]["subscribe"], true);
}

#[actix_web::test]
async fn resources_list_read_and_templates() {
    let app = spawn_open(&[]).await;
    let b = app.rpc(None, "resources/list", json!({})).await.json();
    let list = b["result"]["resources"].as_array().unwrap();
    assert!(
        list.iter()
            .all(|r| r["uri"].is_string() && r["name"].is_string())
    );
    let b = app
        .rpc(None, "resources/read", json!({"uri": "test://static-text"}))
        .await
        .json();
    assert_eq!(
        b["result"]["contents"][0]["text"],
        "This is the content of the static text resource."
    );
    assert_eq!(b["result"]["contents"][0]["mimeType"], "text/plain");
    let b = app
        .rpc(
            None,
            "resources/read",
            json!({"uri": "test://static-binary"}),
        )
        .await
        .json();
    assert!(
        b["result"]["contents"][0]["blob"]
            .as_str()
            .unwrap()
            .starts_with("iVBOR")
    );
    let b = app
        .rpc(None, "resources/templates/list", json!({}))
        .await
        .json();
    assert_eq!(
        b["result"]["resourceTemplates"][0]["uriTemplate"],
        "test://template/{id}/data"
    );
    let b = app
        .rpc(
            None,
            "resources/read",
            json!({"uri": "test://template/123/data"}),
        )
        .await
        .json();
    let text: Value =
        serde_json::from_str(b["result"]["contents"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(text["id"], "123");
}

#[actix_web::test]
async fn resource_errors() {
    let app = spawn_open(&[]).await;
    let b = app
        .rpc(None, "resources/read", json!({"uri": "test://nonexistent"}))
        .await
        .json();
    assert_eq!(b["error"]["code"], -32002);
    assert_eq!(b["error"]["data"]["uri"], "test://nonexistent");
    for p in [json!({}), json!({"uri": 5}), json!({"uri": "not a uri"})] {
        let b = app.rpc(None, "resources/read", p.clone()).await.json();
        assert_eq!(b["error"]["code"], -32602, "{p}");
    }
    for m in ["resources/subscribe", "resources/unsubscribe"] {
        let b = app
            .rpc(None, m, json!({"uri": "test://watched-resource"}))
            .await
            .json();
        assert_eq!(b["result"], json!({}), "{m}");
        let b = app.rpc(None, m, json!({"uri": "test://nope"})).await.json();
        assert_eq!(b["error"]["code"], -32002, "{m}");
    }
}

#[actix_web::test]
async fn prompts_list_get_and_errors() {
    let app = spawn_open(&[]).await;
    let b = app.rpc(None, "prompts/list", json!({})).await.json();
    let prompts = b["result"]["prompts"].as_array().unwrap();
    assert!(
        prompts
            .iter()
            .all(|p| p["description"].as_str().is_some_and(|d| !d.is_empty()))
    );
    let b = app
        .rpc(None, "prompts/get", json!({"name": "test_simple_prompt"}))
        .await
        .json();
    assert_eq!(b["result"]["messages"][0]["role"], "user");
    let b = app
        .rpc(
            None,
            "prompts/get",
            json!({"name": "test_prompt_with_arguments", "arguments": {"arg1": "x", "arg2": "y"}}),
        )
        .await
        .json();
    assert_eq!(
        b["result"]["messages"][0]["content"]["text"],
        "Prompt with arguments: arg1='x', arg2='y'"
    );
    let b = app
        .rpc(
            None,
            "prompts/get",
            json!({"name": "test_prompt_with_arguments", "arguments": {"arg1": "x"}}),
        )
        .await
        .json();
    assert_eq!(b["error"]["code"], -32602);
    let b = app
        .rpc(None, "prompts/get", json!({"name": "nope"}))
        .await
        .json();
    assert_eq!(b["error"]["code"], -32602);
    let b = app
        .rpc(
            None,
            "prompts/get",
            json!({"name": "test_prompt_with_arguments", "arguments": {"arg1": 1, "arg2": "y"}}),
        )
        .await
        .json();
    assert_eq!(b["error"]["code"], -32602);
    let b = app
        .rpc(
            None,
            "prompts/get",
            json!({"name": "test_prompt_with_image"}),
        )
        .await
        .json();
    assert_eq!(b["result"]["messages"][0]["content"]["type"], "image");
}

#[actix_web::test]
async fn completion_complete() {
    let app = spawn_open(&[]).await;
    let b = app
        .rpc(None, "completion/complete", json!({"ref": {"type": "ref/prompt", "name": "test_prompt_with_arguments"}, "argument": {"name": "arg1", "value": "te"}}))
        .await
        .json();
    assert_eq!(
        b["result"]["completion"]["values"],
        json!(["test", "testing"])
    );
    let b = app
        .rpc(None, "completion/complete", json!({"ref": {"type": "ref/prompt", "name": "nope"}, "argument": {"name": "a", "value": ""}}))
        .await
        .json();
    assert_eq!(b["error"]["code"], -32602);
    let b = app
        .rpc(
            None,
            "completion/complete",
            json!({"ref": {"type": "ref/other"}, "argument": {"name": "a", "value": ""}}),
        )
        .await
        .json();
    assert_eq!(b["error"]["code"], -32602);
}

#[actix_web::test]
async fn set_level_filters_log_notifications() {
    let app = spawn_open(&[]).await;
    let b = app
        .rpc(None, "logging/setLevel", json!({"level": "loud"}))
        .await
        .json();
    assert_eq!(b["error"]["code"], -32602);
    let b = app
        .rpc(None, "logging/setLevel", json!({"level": "warning"}))
        .await
        .json();
    assert_eq!(b["result"], json!({}));
    let r = app.call_tool(None, "fixture_log", json!({})).await;
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events = r.events();
    let levels: Vec<&str> = events
        .iter()
        .filter(|e| e["method"] == "notifications/message")
        .map(|e| e["params"]["level"].as_str().unwrap())
        .collect();
    assert_eq!(
        levels,
        vec!["warning", "error", "critical", "alert", "emergency"]
    );
    assert_eq!(
        events.last().unwrap()["result"]["content"][0]["text"],
        "logged"
    );
    app.rpc(None, "logging/setLevel", json!({"level": "debug"}))
        .await;
    let n = app
        .call_tool(None, "fixture_log", json!({}))
        .await
        .events()
        .len();
    assert_eq!(n, 9);
}

#[actix_web::test]
async fn progress_streams_as_sse_in_order_with_the_result_last() {
    let app = spawn_open(&[]).await;
    let r = app
        .post(None, &json!({"jsonrpc":"2.0","id":"req-7","method":"tools/call","params":{"name":"fixture_slow","arguments":{"ms":250},"_meta":{"progressToken":"tok-1"}}}))
        .await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert!(r.text.contains("event: message\ndata: "));
    let events = r.events();
    assert_eq!(events.len(), 6);
    let mut last = 0.0;
    for e in &events[..5] {
        assert_eq!(e["method"], "notifications/progress");
        assert_eq!(e["params"]["progressToken"], "tok-1");
        let p = e["params"]["progress"].as_f64().unwrap();
        assert!(p > last);
        last = p;
        assert_eq!(e["params"]["total"], 5.0);
    }
    assert_eq!(events[5]["id"], "req-7");
    assert_eq!(
        events[5]["result"]["content"][0]["text"],
        "done after 250 ms"
    );
    // Without a progress token the same call is plain JSON.
    let r = app.call_tool(None, "fixture_slow", json!({"ms": 50})).await;
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(r.json()["result"]["content"][0]["text"], "done after 50 ms");
    // An integer token is echoed as an integer.
    let r = app
        .post(None, &json!({"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"fixture_slow","arguments":{"ms":50},"_meta":{"progressToken":42}}}))
        .await;
    assert_eq!(r.events()[0]["params"]["progressToken"], 42);
}

#[actix_web::test]
async fn cancellation_stops_the_tool_and_sends_nothing_for_it() {
    let app = spawn_open(&[]).await;
    let rb = app.mcp(None).body(
        json!({"jsonrpc":"2.0","id":77,"method":"tools/call","params":{"name":"fixture_slow","arguments":{"ms":5000}}}).to_string(),
    );
    let started = Instant::now();
    let call = actix_web::rt::spawn(async move {
        let r = rb.send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    });
    // A JSON-framed call sends nothing until it ends: no event says it is in flight, so it
    // is given time to arrive before it is cancelled.
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Another request id is unaffected; cancelling an unknown id is harmless.
    let r = app.post(None, &json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId": 999}})).await;
    assert_eq!(r.status, 202);
    let r = app.post(None, &json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId": 77, "reason": "user"}})).await;
    assert_eq!(r.status, 202);
    let (status, body) = call.await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the tool was stopped"
    );
    assert_eq!(status, 200);
    assert!(
        !body.contains("\"id\":77"),
        "nothing is sent for a cancelled request: {body:?}"
    );
    assert!(!body.contains("result"));
}

/// One body shape per kind of endpoint (refusal.rs): a JSON-RPC error on the MCP endpoint,
/// `{error, error_description}` for OAuth refusals and every other path; all `no-store`.
#[actix_web::test]
async fn refusals_have_one_body_shape_per_kind_of_endpoint() {
    let app = crate::helpers::spawn_with_issuer(&[]).await;
    let oauth_shaped = |r: &crate::helpers::Resp, error: &str| {
        let b = r.json();
        assert_eq!(b["error"], error, "{}", r.text);
        assert!(
            b["error_description"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "{}",
            r.text
        );
        assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    };
    // Any other path.
    let r = app.get("/nope").await;
    assert_eq!(r.status, 404);
    oauth_shaped(&r, "not_found");
    let r = app
        .send(
            app.client
                .post(format!("{}/.well-known/oauth-protected-resource", app.base)),
        )
        .await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow").as_deref(), Some("GET, HEAD"));
    oauth_shaped(&r, "method_not_allowed");
    // The bearer check (RFC 6750).
    let r = app.rpc(None, "ping", json!({})).await;
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").is_some());
    oauth_shaped(&r, "unauthorized");
    let token = app.token("ada", &[]);
    let r = app
        .call_tool(Some(&token), "admin_action", json!({"action": "x"}))
        .await;
    assert_eq!(r.status, 403);
    assert!(
        r.header("www-authenticate")
            .is_some_and(|h| h.contains("insufficient_scope"))
    );
    oauth_shaped(&r, "insufficient_scope");
    // The MCP endpoint's own refusals: JSON-RPC errors, id null when it was not read.
    // One Content-Type, text/plain (the helper's own would make it two).
    let r = app
        .send(
            app.client
                .post(format!("{}/mcp", app.base))
                .bearer_auth(&token)
                .header("accept", crate::helpers::ACCEPT_BOTH)
                .header("content-type", "text/plain")
                .body("{}"),
        )
        .await;
    assert_eq!(r.status, 415);
    let b = r.json();
    assert_eq!(b["jsonrpc"], "2.0");
    assert_eq!(b["id"], Value::Null);
    assert_eq!(b["error"]["code"], -32000);
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    let r = app.send(app.mcp(Some(&token)).body("{not json")).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], -32700);
}
