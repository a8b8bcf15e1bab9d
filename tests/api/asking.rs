//! Tools that ask the client, over HTTP. 2025 revisions: the question rides the call's event
//! stream and the answer is POSTed back (bound to the subject, bounded by the tool timeout,
//! replayed to the waiting instance with fly-replay). 2026-07-28: input_required rounds with a
//! sealed requestState (several rounds, tampered, expired, another subject's, another
//! instance continuing, key rotation, a client without the capability).

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{ACCEPT_BOTH, SseStream, TestApp, spawn_open, spawn_with_issuer};
use crate::modern::{meta, send};

const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const OTHER_KEY: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";

/// Starts a 2025-11-25 tool call whose answer streams.
async fn legacy_call(app: &TestApp, token: Option<&str>, tool: &str, args: Value) -> SseStream {
    let mut rb = app
        .client
        .post(format!("{}/mcp", app.base))
        .header("accept", ACCEPT_BOTH)
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2025-11-25")
        .body(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": args}}).to_string());
    if let Some(t) = token {
        rb = rb.header("authorization", format!("Bearer {t}"));
    }
    SseStream::new(rb.send().await.unwrap())
}

/// POSTs a client's answer (a JSON-RPC response) to `app`.
async fn answer(
    app: &TestApp,
    token: Option<&str>,
    id: &Value,
    result: Value,
) -> crate::helpers::Resp {
    let rb = app
        .mcp(token)
        .header("mcp-protocol-version", "2025-11-25")
        .body(json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string());
    app.send(rb).await
}

const SECOND: Duration = Duration::from_secs(5);

#[actix_web::test]
async fn a_legacy_question_rides_the_stream_and_its_answer_comes_back_by_post() {
    let app = spawn_open(&[]).await;
    let mut call = legacy_call(
        &app,
        None,
        "test_elicitation",
        json!({"message": "Who are you?"}),
    )
    .await;
    let question = call.next(SECOND).await.expect("a question");
    assert_eq!(question["method"], "elicitation/create");
    assert_eq!(question["params"]["message"], "Who are you?");
    let id = question["id"].clone();
    assert!(id.as_str().unwrap().len() > 30, "an unguessable id: {id}");
    let r = answer(
        &app,
        None,
        &id,
        json!({"action": "accept", "content": {"username": "ada", "email": "ada@example.com"}}),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let result = call.next(SECOND).await.expect("the result");
    assert_eq!(result["id"], 1);
    let text = result["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.starts_with("User response: action=accept"), "{text}");
    assert!(text.contains("ada@example.com"), "{text}");
    // The question is gone: answering again reaches nothing.
    let r = answer(&app, None, &id, json!({"action": "decline"})).await;
    assert_eq!(r.status, 400);
}

#[actix_web::test]
async fn legacy_answers_are_checked_and_client_errors_reported() {
    let app = spawn_open(&[]).await;
    let mut call = legacy_call(&app, None, "test_elicitation", json!({"message": "m"})).await;
    let q = call.next(SECOND).await.unwrap();
    // email is required by the requested schema.
    answer(
        &app,
        None,
        &q["id"],
        json!({"action": "accept", "content": {"username": "ada"}}),
    )
    .await;
    let result = call.next(SECOND).await.unwrap();
    assert_eq!(result["result"]["isError"], true);
    assert!(
        result["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("not valid")
    );

    let mut call = legacy_call(&app, None, "test_sampling", json!({"prompt": "hi"})).await;
    let q = call.next(SECOND).await.unwrap();
    assert_eq!(q["method"], "sampling/createMessage");
    assert_eq!(q["params"]["maxTokens"], 100);
    let r = app
        .send(app.mcp(None).body(json!({"jsonrpc": "2.0", "id": q["id"], "error": {"code": -32601, "message": "no sampling here"}}).to_string()))
        .await;
    assert_eq!(r.status, 202);
    let result = call.next(SECOND).await.unwrap();
    assert_eq!(result["result"]["isError"], true);
    assert!(
        result["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("no sampling here")
    );
}

#[actix_web::test]
async fn answers_from_another_subject_never_reach_the_tool() {
    let app = spawn_with_issuer(&[]).await;
    app.wait_ready().await;
    let alice = app.token("alice", &[]);
    let eve = app.token("eve", &[]);
    let mut call = legacy_call(
        &app,
        Some(&alice),
        "test_elicitation",
        json!({"message": "m"}),
    )
    .await;
    let q = call.next(SECOND).await.unwrap();
    let fake =
        json!({"action": "accept", "content": {"username": "eve", "email": "e@evil.example"}});
    let r = answer(&app, Some(&eve), &q["id"], fake).await;
    assert_eq!(r.status, 400, "another subject's answer is refused");
    // The right instance, a guessed random part.
    let id = q["id"].as_str().unwrap();
    let guessed = format!("{}guess", &id[..id.rfind(':').unwrap() + 1]);
    let r = answer(&app, Some(&alice), &json!(guessed), json!({})).await;
    assert_eq!(r.status, 400, "a guessed id is refused");
    let real =
        json!({"action": "accept", "content": {"username": "alice", "email": "a@example.com"}});
    assert_eq!(answer(&app, Some(&alice), &q["id"], real).await.status, 202);
    let result = call.next(SECOND).await.unwrap();
    let text = result["result"]["content"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("a@example.com") && !text.contains("evil"),
        "{text}"
    );
}

#[actix_web::test]
async fn a_legacy_question_waits_at_most_the_tool_timeout() {
    let app = spawn_open(&[
        ("GATEHOUSE_MCP__TOOL_TIMEOUT_SECS", "1"),
        // The call accepts an event stream: it becomes one, with that stream's own limit.
        ("GATEHOUSE_MCP__STREAMED_TOOL_TIMEOUT_SECS", "1"),
    ])
    .await;
    let started = std::time::Instant::now();
    let mut call = legacy_call(&app, None, "test_sampling", json!({"prompt": "hi"})).await;
    let q = call.next(SECOND).await.unwrap();
    let result = call.next(SECOND).await.expect("a result after the timeout");
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(result["result"]["isError"], true);
    assert!(
        result["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("timed out")
    );
    // The abandoned question no longer takes answers.
    assert_eq!(answer(&app, None, &q["id"], json!({})).await.status, 400);
}

#[actix_web::test]
async fn without_an_event_stream_a_legacy_request_cannot_ask() {
    let app = spawn_open(&[]).await;
    let json_only = || {
        app.client
            .post(format!("{}/mcp", app.base))
            .header("accept", "application/json")
            .header("content-type", "application/json")
    };
    let r = app
        .send(
            json_only()
                .body(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "test_sampling", "arguments": {"prompt": "hi"}}}).to_string()),
        )
        .await;
    let result = &r.json()["result"];
    assert_eq!(result["isError"], true);
    assert!(
        result["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("event stream")
    );
    // admin_action then acts as asked, without a confirmation.
    let r = app
        .send(
            json_only()
                .body(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "admin_action", "arguments": {"action": "reindex"}}}).to_string()),
        )
        .await;
    assert!(
        r.json()["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("performed")
    );
}

#[actix_web::test]
async fn an_answer_reaching_another_instance_is_replayed_to_the_one_waiting() {
    let a = spawn_open(&[("FLY_MACHINE_ID", "machine-a")]).await;
    let b = spawn_open(&[("FLY_MACHINE_ID", "machine-b")]).await;
    let mut call = legacy_call(&a, None, "test_sampling", json!({"prompt": "hi"})).await;
    let q = call.next(SECOND).await.unwrap();
    assert!(q["id"].as_str().unwrap().contains(":machine-a:"));
    let reply =
        json!({"role": "assistant", "content": {"type": "text", "text": "Hello!"}, "model": "m"});
    let r = answer(&b, None, &q["id"], reply.clone()).await;
    assert_eq!(r.status, 421, "{}", r.text);
    assert_eq!(
        r.header("fly-replay").as_deref(),
        Some("instance=machine-a")
    );
    // What Fly's proxy does next: the same request, replayed to machine-a.
    let replayed = a
        .send(
            a.mcp(None)
                .header("fly-replay-src", "instance=machine-b")
                .body(json!({"jsonrpc": "2.0", "id": q["id"], "result": reply}).to_string()),
        )
        .await;
    assert_eq!(replayed.status, 202);
    let result = call.next(SECOND).await.unwrap();
    assert_eq!(
        result["result"]["content"][0]["text"],
        "LLM response: Hello!"
    );
    // A replayed answer nobody waits for is not bounced again.
    let r = b
        .send(
            b.mcp(None)
                .header("fly-replay-src", "instance=machine-a")
                .body(
                    json!({"jsonrpc": "2.0", "id": "gh-ask:machine-c:x", "result": {}}).to_string(),
                ),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.header("fly-replay").is_none());
    // An id crafted to steer the proxy elsewhere (another app) is refused, never echoed.
    let r = b
        .send(
            b.mcp(None).body(
                json!({"jsonrpc": "2.0", "id": "gh-ask:machine-a,app=other:x", "result": {}})
                    .to_string(),
            ),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.header("fly-replay").is_none());
}

/// One 2026-07-28 round: the result member of the response.
async fn round(
    app: &TestApp,
    token: Option<&str>,
    tool: &str,
    extra: Value,
) -> crate::helpers::Resp {
    let mut params = json!({"name": tool, "arguments": {}, "_meta": meta(json!({"elicitation": {}, "sampling": {}, "roots": {}}))});
    if let Value::Object(m) = extra {
        for (k, v) in m {
            params[k] = v;
        }
    }
    send(app, token, "tools/call", params).await
}

fn accept(content: Value) -> Value {
    json!({"action": "accept", "content": content})
}

#[actix_web::test]
async fn several_rounds_carry_earlier_answers_in_the_sealed_state() {
    let app = spawn_open(&[]).await;
    let r1 = round(
        &app,
        None,
        "test_input_required_result_multi_round",
        json!({}),
    )
    .await;
    let r1 = r1.json()["result"].clone();
    assert_eq!(r1["resultType"], "input_required");
    assert_eq!(
        r1["inputRequests"]["step1"]["params"]["message"],
        "Step 1: What is your name?"
    );
    let state1 = r1["requestState"].as_str().unwrap().to_string();
    assert!(!state1.contains("Alice"));
    let r2 = round(
        &app,
        None,
        "test_input_required_result_multi_round",
        json!({
            "inputResponses": {"step1": accept(json!({"name": "Alice"}))},
            "requestState": state1,
        }),
    )
    .await
    .json()["result"]
        .clone();
    assert_eq!(r2["resultType"], "input_required");
    assert!(
        r2["inputRequests"].get("step1").is_none(),
        "the first answer is kept"
    );
    let state2 = r2["requestState"].as_str().unwrap();
    assert!(!state2.contains("Alice"), "the state is encrypted");
    let r3 = round(
        &app,
        None,
        "test_input_required_result_multi_round",
        json!({
            "inputResponses": {"step2": accept(json!({"color": "blue"}))},
            "requestState": state2,
        }),
    )
    .await;
    let r3 = &r3.json()["result"];
    assert_eq!(r3["resultType"], "complete");
    assert_eq!(r3["content"][0]["text"], "Alice likes blue");
}

#[actix_web::test]
async fn missing_answers_are_asked_again_and_invalid_ones_refused() {
    let app = spawn_open(&[]).await;
    let tool = "test_input_required_result_multiple_inputs";
    let first = round(&app, None, tool, json!({})).await.json()["result"].clone();
    assert_eq!(first["inputRequests"].as_object().unwrap().len(), 3);
    // Two of three answers: only the third is asked again.
    let partial = round(
        &app,
        None,
        tool,
        json!({"inputResponses": {
            "user_name": accept(json!({"name": "Ada"})),
            "client_roots": {"roots": [{"uri": "file:///work"}]},
            "unrelated": {"ignored": true}
        }, "requestState": first["requestState"]}),
    )
    .await;
    let partial = partial.json()["result"].clone();
    assert_eq!(partial["resultType"], "input_required");
    let asked: Vec<&String> = partial["inputRequests"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(asked, ["greeting"]);
    let done = round(&app, None, tool, json!({
        "inputResponses": {"greeting": {"role": "assistant", "content": {"type": "text", "text": "Hi"}, "model": "m"}},
        "requestState": partial["requestState"],
    }))
    .await;
    assert_eq!(
        done.json()["result"]["content"][0]["text"],
        "Hi Ada (all three answers received)"
    );
    let tool = "test_input_required_result_elicitation";
    let asked = round(&app, None, tool, json!({})).await.json()["result"].clone();
    let state = &asked["requestState"];
    for bad in [
        json!({"inputResponses": null}),
        json!({"inputResponses": {"user_name": 42}, "requestState": state}),
        json!({"inputResponses": {"user_name": accept(json!({"name": 7}))}, "requestState": state}),
        json!({"requestState": 12}),
    ] {
        let r = round(
            &app,
            None,
            "test_input_required_result_elicitation",
            bad.clone(),
        )
        .await;
        assert_eq!(r.json()["error"]["code"], -32602, "{bad}: {}", r.text);
    }
    // Decline reaches the tool as such (a fresh exchange: the state above was spent by the
    // refused answers).
    let fresh = round(&app, None, tool, json!({})).await.json()["result"].clone();
    let r = round(
        &app,
        None,
        "test_input_required_result_elicitation",
        json!({"inputResponses": {"user_name": {"action": "decline"}}, "requestState": fresh["requestState"]}),
    )
    .await;
    assert_eq!(r.json()["result"]["content"][0]["text"], "Hello, !");
}

#[actix_web::test]
async fn state_that_is_altered_expired_or_someone_elses_is_refused() {
    let app = spawn_with_issuer(&[
        ("MCP_STATE_KEY", KEY),
        ("GATEHOUSE_MCP__STATE_TTL_SECS", "2"),
    ])
    .await;
    app.wait_ready().await;
    let alice = app.token("alice", &[]);
    let bob = app.token("bob", &[]);
    let tool = "test_input_required_result_tampered_state";
    let r1 = round(&app, Some(&alice), tool, json!({})).await.json()["result"].clone();
    let state = r1["requestState"].as_str().unwrap().to_string();
    let answers = json!({"confirm": accept(json!({"ok": true}))});
    let retry = |token: &str, state: String, name: &str| {
        let params = json!({"name": name, "arguments": {}, "_meta": meta(json!({"elicitation": {}})),
            "inputResponses": answers.clone(), "requestState": state});
        let token = token.to_string();
        let app = &app;
        async move { send(app, Some(&token), "tools/call", params).await }
    };
    let tampered = format!("{state}-TAMPERED");
    let mut flipped: Vec<char> = state.chars().collect();
    flipped[20] = if flipped[20] == 'x' { 'y' } else { 'x' };
    for (who, st, name, why) in [
        (&alice, tampered, tool, "tampered"),
        (&alice, flipped.into_iter().collect(), tool, "altered"),
        (&bob, state.clone(), tool, "another subject"),
        (
            &alice,
            state.clone(),
            "test_input_required_result_request_state",
            "another tool",
        ),
    ] {
        let r = retry(who, st, name).await;
        assert_eq!(r.json()["error"]["code"], -32602, "{why}: {}", r.text);
    }
    let ok = retry(&alice, state.clone(), tool).await;
    assert_eq!(ok.json()["result"]["content"][0]["text"], "confirmed");
    // The state expires by the wall clock (whole seconds); no event marks it.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let expired = retry(&alice, state, tool).await;
    assert_eq!(expired.json()["error"]["code"], -32602);
    assert!(
        expired.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
}

#[actix_web::test]
async fn another_instance_with_the_key_continues_the_exchange() {
    let a = spawn_open(&[("MCP_STATE_KEY", KEY)]).await;
    let b = spawn_open(&[("MCP_STATE_KEY", KEY)]).await;
    let stranger = spawn_open(&[("MCP_STATE_KEY", OTHER_KEY)]).await;
    let rotated = spawn_open(&[
        ("MCP_STATE_KEY", OTHER_KEY),
        ("MCP_STATE_KEY_PREVIOUS", KEY),
    ])
    .await;
    let tool = "test_input_required_result_multi_round";
    let r1 = round(&a, None, tool, json!({})).await.json()["result"].clone();
    let next = json!({
        "inputResponses": {"step1": accept(json!({"name": "Bo"}))},
        "requestState": r1["requestState"],
    });
    let on_b = round(&b, None, tool, next.clone()).await;
    assert_eq!(
        on_b.json()["result"]["inputRequests"]["step2"]["method"],
        "elicitation/create"
    );
    let on_stranger = round(&stranger, None, tool, next.clone()).await;
    assert_eq!(on_stranger.json()["error"]["code"], -32602);
    let on_rotated = round(&rotated, None, tool, next).await;
    assert_eq!(
        on_rotated.json()["result"]["resultType"],
        "input_required",
        "{}",
        on_rotated.text
    );
}

#[actix_web::test]
async fn a_client_without_the_capability_gets_the_revision_error() {
    let app = spawn_open(&[]).await;
    let params = json!({"name": "test_input_required_result_elicitation", "arguments": {}, "_meta": meta(json!({"sampling": {}}))});
    let r = send(&app, None, "tools/call", params).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], -32021);
    assert_eq!(
        r.json()["error"]["data"]["requiredCapabilities"],
        json!({"elicitation": {}})
    );
    // A tool that checks first does without.
    let params = json!({"name": "test_input_required_result_capabilities", "arguments": {}, "_meta": meta(json!({"sampling": {}}))});
    let r = send(&app, None, "tools/call", params).await;
    let result = &r.json()["result"];
    assert_eq!(
        result["inputRequests"]["greeting"]["method"],
        "sampling/createMessage"
    );
}

#[actix_web::test]
async fn admin_action_asks_for_confirmation_when_it_can() {
    let app = spawn_open(&[]).await;
    let call = |caps: Value, extra: Value| {
        let mut params =
            json!({"name": "admin_action", "arguments": {"action": "purge"}, "_meta": meta(caps)});
        if let Value::Object(m) = extra {
            for (k, v) in m {
                params[k] = v;
            }
        }
        let app = &app;
        async move { send(app, None, "tools/call", params).await.json()["result"].clone() }
    };
    let asked = call(json!({"elicitation": {}}), json!({})).await;
    assert_eq!(asked["resultType"], "input_required");
    assert_eq!(
        asked["inputRequests"]["confirm"]["params"]["message"],
        "Perform the admin action 'purge'?"
    );
    let yes = call(json!({"elicitation": {}}), json!({"inputResponses": {"confirm": accept(json!({"confirm": true}))}, "requestState": asked["requestState"]})).await;
    assert!(
        yes["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("performed")
    );
    // The confirmed state is spent: replaying it performs nothing.
    let replay = send(
        &app,
        None,
        "tools/call",
        json!({"name": "admin_action", "arguments": {"action": "purge"}, "_meta": meta(json!({"elicitation": {}})),
               "inputResponses": {"confirm": accept(json!({"confirm": true}))}, "requestState": asked["requestState"]}),
    )
    .await
    .json();
    assert_eq!(replay["error"]["code"], -32602, "{replay}");
    assert!(
        replay["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already used")
    );
    // An answer without the state that asked for it counts for nothing: the tool asks.
    let unasked = call(
        json!({"elicitation": {}}),
        json!({"inputResponses": {"confirm": accept(json!({"confirm": true}))}}),
    )
    .await;
    assert_eq!(unasked["resultType"], "input_required");
    let no = call(
        json!({"elicitation": {}}),
        json!({"inputResponses": {"confirm": {"action": "decline"}}, "requestState": unasked["requestState"]}),
    )
    .await;
    assert_eq!(no["isError"], true);
    assert!(
        no["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("not confirmed")
    );
    // A client that cannot elicit is not asked.
    let direct = call(json!({}), json!({})).await;
    assert!(
        direct["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("performed")
    );
}

#[actix_web::test]
async fn a_prompt_asks_too() {
    let app = spawn_open(&[]).await;
    let params = json!({"name": "test_input_required_result_prompt", "_meta": meta(json!({"elicitation": {}}))});
    let r1 = send(&app, None, "prompts/get", params.clone()).await.json()["result"].clone();
    assert_eq!(
        r1["inputRequests"]["user_context"]["method"],
        "elicitation/create"
    );
    let mut retry = params;
    retry["inputResponses"] = json!({"user_context": accept(json!({"context": "billing"}))});
    retry["requestState"] = r1["requestState"].clone();
    let r2 = send(&app, None, "prompts/get", retry).await;
    assert_eq!(
        r2.json()["result"]["messages"][0]["content"]["text"],
        "Context: billing"
    );
}
