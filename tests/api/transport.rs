//! Streamable HTTP and JSON-RPC framing: statuses, headers, codes and ids a client sees.

use serde_json::json;

use crate::helpers::{ACCEPT_BOTH, spawn_open, spawn_with_issuer};

fn init(version: &str) -> serde_json::Value {
    json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
        "protocolVersion": version, "capabilities": {}, "clientInfo": {"name":"t","version":"1"}}})
}

#[actix_web::test]
async fn initialize_answers_the_requested_supported_version() {
    let app = spawn_open(&[]).await;
    for v in ["2025-03-26", "2025-06-18", "2025-11-25"] {
        let r = app.post(None, &init(v)).await;
        assert_eq!(r.status, 200);
        assert!(
            r.header("content-type")
                .unwrap()
                .starts_with("application/json")
        );
        assert!(
            r.header("mcp-session-id").is_none(),
            "stateless: no session id"
        );
        let b = r.json();
        assert_eq!(b["id"], 1);
        assert_eq!(b["result"]["protocolVersion"], v);
        assert_eq!(b["result"]["serverInfo"]["name"], "gatehouse");
        assert_eq!(
            b["result"]["serverInfo"]["version"],
            env!("CARGO_PKG_VERSION")
        );
        assert!(b["result"]["serverInfo"]["title"].is_string());
        assert!(b["result"]["capabilities"]["tools"].is_object());
    }
}

#[actix_web::test]
async fn initialize_with_an_unknown_version_gets_the_latest() {
    let app = spawn_open(&[]).await;
    let b = app.post(None, &init("1999-01-01")).await.json();
    assert_eq!(b["result"]["protocolVersion"], "2025-11-25");
}

#[actix_web::test]
async fn instructions_come_from_configuration() {
    let app = spawn_open(&[(
        "GATEHOUSE_MCP__INSTRUCTIONS",
        "Use greet_user to say hello.",
    )])
    .await;
    let b = app.post(None, &init("2025-11-25")).await.json();
    assert_eq!(b["result"]["instructions"], "Use greet_user to say hello.");
    let plain = spawn_open(&[]).await;
    assert!(
        plain.post(None, &init("2025-11-25")).await.json()["result"]
            .get("instructions")
            .is_none()
    );
}

#[actix_web::test]
async fn notifications_get_202_and_stray_answers_400() {
    let app = spawn_open(&[]).await;
    for body in [
        json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
        json!({"jsonrpc":"2.0","method":"notifications/whatever","params":{}}),
    ] {
        let r = app.post(None, &body).await;
        assert_eq!(r.status, 202, "{body}");
        assert!(r.text.is_empty());
    }
    // Answers to questions nobody asked never reach anything.
    for body in [
        json!({"jsonrpc":"2.0","id":5,"result":{}}),
        json!({"jsonrpc":"2.0","id":"x","error":{"code":1,"message":"m"}}),
    ] {
        let r = app.post(None, &body).await;
        assert_eq!(r.status, 400, "{body}");
        assert_eq!(r.json()["error"]["code"], -32600);
    }
}

#[actix_web::test]
async fn ping_and_unknown_methods() {
    let app = spawn_open(&[]).await;
    let b = app
        .post(None, &json!({"jsonrpc":"2.0","id":"p-1","method":"ping"}))
        .await
        .json();
    assert_eq!(b, json!({"jsonrpc":"2.0","id":"p-1","result":{}}));
    let b = app
        .post(None, &json!({"jsonrpc":"2.0","id":9,"method":"no/such"}))
        .await
        .json();
    assert_eq!(b["error"]["code"], -32601);
    assert_eq!(b["id"], 9);
}

#[actix_web::test]
async fn ids_are_echoed_exactly() {
    let app = spawn_open(&[]).await;
    for id in [
        json!(0),
        json!(-5),
        json!("abc"),
        json!(""),
        json!(9007199254740993u64),
        json!("1"),
    ] {
        let b = app
            .post(None, &json!({"jsonrpc":"2.0","id":id,"method":"ping"}))
            .await;
        assert_eq!(b.json()["id"], id);
        assert!(b.text.contains(&format!("\"id\":{id}")), "{}", b.text);
    }
}

#[actix_web::test]
async fn accept_is_negotiated_as_http_does() {
    let app = spawn_open(&[]).await;
    let body = json!({"jsonrpc":"2.0","id":1,"method":"ping"}).to_string();
    let send = |accept: Option<&'static str>, body: String| {
        let mut rb = app
            .client
            .post(format!("{}/mcp", app.base))
            .header("content-type", "application/json");
        if let Some(a) = accept {
            rb = rb.header("accept", a);
        }
        rb.body(body)
    };
    // JSON answers: no Accept, wildcards, application/json, both.
    for accept in [
        None,
        Some("*/*"),
        Some("application/*"),
        Some("application/json"),
        Some("application/json, text/event-stream;q=0"),
        Some("text/event-stream; q=0.5, application/json"),
        Some("text/html, */*;q=0.1"),
    ] {
        let r = app.send(send(accept, body.clone())).await;
        assert_eq!(r.status, 200, "{accept:?}");
        assert!(
            r.header("content-type")
                .unwrap()
                .starts_with("application/json"),
            "{accept:?}"
        );
        assert_eq!(r.json()["result"], json!({}), "{accept:?}");
    }
    // text/event-stream alone (or anything but JSON): SSE, even for a plain result.
    for accept in ["text/event-stream", "application/json;q=0, */*"] {
        let r = app.send(send(Some(accept), body.clone())).await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("content-type").unwrap(),
            "text/event-stream",
            "{accept}"
        );
        assert_eq!(r.events()[0]["result"], json!({}));
    }
    // Neither admitted: 406 naming both types.
    for accept in [
        "text/html",
        "application/json;q=0",
        "application/json;q=0, text/event-stream;q=0",
        "image/png, text/plain",
    ] {
        let r = app.send(send(Some(accept), body.clone())).await;
        assert_eq!(r.status, 406, "{accept}");
        assert_eq!(r.json()["error"]["code"], -32000);
        let m = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(
            m.contains("application/json") && m.contains("text/event-stream"),
            "{m}"
        );
    }
    // A JSON-only client asking for progress gets the result as JSON, the notifications dropped.
    let slow = json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"fixture_slow","arguments":{"ms":50},"_meta":{"progressToken":"p"}}});
    let r = app.send(send(Some("*/*"), slow.to_string())).await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(r.json()["result"]["content"][0]["text"], "done after 50 ms");
    let r = app.send(send(Some(ACCEPT_BOTH), slow.to_string())).await;
    assert_eq!(r.header("content-type").unwrap(), "text/event-stream");
}

#[actix_web::test]
async fn the_seed_curl_line_works_verbatim() {
    // curl sends `Accept: */*` unless told otherwise.
    let app = spawn_with_issuer(&[]).await;
    let t = app.token("saif", &[]);
    let r = app
        .send(
            app.client
                .post(format!("{}/mcp", app.base))
                .header("authorization", format!("Bearer {t}"))
                .header("content-type", "application/json")
                .header("accept", "*/*")
                .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"greet_user","arguments":{"name":"Saif"}}}"#),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.json()["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("Saif")
    );
}

#[actix_web::test]
async fn content_type_must_be_json() {
    let app = spawn_open(&[]).await;
    let body = json!({"jsonrpc":"2.0","id":1,"method":"ping"}).to_string();
    for ct in [
        None,
        Some("text/plain"),
        Some("application/jsonx"),
        Some("multipart/form-data"),
    ] {
        let mut rb = app
            .client
            .post(format!("{}/mcp", app.base))
            .header("accept", ACCEPT_BOTH);
        if let Some(c) = ct {
            rb = rb.header("content-type", c);
        }
        let r = app.send(rb.body(body.clone())).await;
        assert_eq!(r.status, 415, "{ct:?}");
    }
}

#[actix_web::test]
async fn get_and_delete_get_405_with_allow_post() {
    let app = spawn_open(&[]).await;
    for m in [
        reqwest::Method::GET,
        reqwest::Method::DELETE,
        reqwest::Method::PUT,
        reqwest::Method::PATCH,
    ] {
        let r = app
            .send(
                app.client
                    .request(m.clone(), format!("{}/mcp", app.base))
                    .header("accept", ACCEPT_BOTH),
            )
            .await;
        assert_eq!(r.status, 405, "{m}");
        assert_eq!(r.header("allow").as_deref(), Some("POST"));
    }
}

#[actix_web::test]
async fn get_is_405_even_without_a_token_when_auth_is_on() {
    let app = crate::helpers::spawn_app(&[]).await;
    let r = app
        .send(
            app.client
                .get(format!("{}/mcp", app.base))
                .header("accept", "text/event-stream"),
        )
        .await;
    assert_eq!(r.status, 405);
}

#[actix_web::test]
async fn protocol_version_header_is_checked() {
    let app = spawn_open(&[]).await;
    let ping = json!({"jsonrpc":"2.0","id":1,"method":"ping"}).to_string();
    for (v, status, code) in [
        ("2025-06-18", 200, None),
        ("2025-11-25", 200, None),
        ("2025-03-26", 200, None),
        ("2024-11-05", 400, Some(-32022)),
        ("garbage", 400, Some(-32022)),
        // The stateless revision needs its _meta envelope, which a 2025 ping lacks.
        ("2026-07-28", 400, Some(-32602)),
    ] {
        let r = app
            .send(
                app.mcp(None)
                    .header("mcp-protocol-version", v)
                    .body(ping.clone()),
            )
            .await;
        assert_eq!(r.status, status, "{v}");
        if let Some(code) = code {
            let body = r.json();
            assert_eq!(body["error"]["code"], code, "{v}");
            // The id could be read, so it is echoed.
            assert_eq!(body["id"], 1, "{v}");
            if code == -32022 {
                assert_eq!(body["error"]["data"]["requested"], v);
                assert!(
                    body["error"]["data"]["supported"]
                        .as_array()
                        .unwrap()
                        .contains(&json!("2026-07-28"))
                );
            }
        }
    }
}

#[actix_web::test]
async fn batches_only_for_2025_03_26() {
    let app = spawn_open(&[]).await;
    let batch = json!([
        {"jsonrpc":"2.0","id":1,"method":"ping"},
        {"jsonrpc":"2.0","method":"notifications/initialized"},
        {"jsonrpc":"2.0","id":"b","method":"nope"},
        {"jsonrpc":"2.0","id":null,"method":"ping"}
    ])
    .to_string();
    // No header means 2025-03-26.
    let r = app.send(app.mcp(None).body(batch.clone())).await;
    assert_eq!(r.status, 200);
    let arr = r.json();
    let arr = arr.as_array().unwrap();
    assert_eq!(arr.len(), 3, "notifications are omitted: {arr:?}");
    assert_eq!(arr[0]["id"], 1);
    assert_eq!(arr[1]["id"], "b");
    assert_eq!(arr[1]["error"]["code"], -32601);
    assert_eq!(arr[2]["error"]["code"], -32600);
    let only_notes = json!([{"jsonrpc":"2.0","method":"notifications/initialized"}]).to_string();
    let r = app
        .send(
            app.mcp(None)
                .header("mcp-protocol-version", "2025-03-26")
                .body(only_notes),
        )
        .await;
    assert_eq!(r.status, 202);
    for v in ["2025-06-18", "2025-11-25"] {
        let r = app
            .send(
                app.mcp(None)
                    .header("mcp-protocol-version", v)
                    .body(batch.clone()),
            )
            .await;
        assert_eq!(r.status, 400);
        assert_eq!(r.json()["error"]["code"], -32600);
    }
    let r = app.send(app.mcp(None).body("[]")).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], -32600);
}

#[actix_web::test]
async fn invalid_json_is_a_parse_error() {
    let app = spawn_open(&[]).await;
    for body in ["{", "not json", "{\"jsonrpc\":\"2.0\",}", "\u{0}", ""] {
        let r = app.send(app.mcp(None).body(body)).await;
        assert_eq!(r.status, 400, "{body:?}");
        let b = r.json();
        assert_eq!(b["error"]["code"], -32700);
        assert!(b.get("id").is_none());
    }
}

#[actix_web::test]
async fn json_that_is_not_a_message_is_an_invalid_request() {
    let app = spawn_open(&[]).await;
    for (body, id) in [
        (json!(42), None),
        (json!("ping"), None),
        (json!({"foo": 1}), None),
        (json!({"jsonrpc":"2.0","id":null,"method":"ping"}), None),
        (json!({"jsonrpc":"2.0","id":1.5,"method":"ping"}), None),
        (
            json!({"jsonrpc":"1.0","id":3,"method":"ping"}),
            Some(json!(3)),
        ),
        (json!({"jsonrpc":"2.0","id":4,"method":7}), Some(json!(4))),
        (
            json!({"jsonrpc":"2.0","id":"s","method":"ping","params":[1]}),
            Some(json!("s")),
        ),
    ] {
        let r = app.post(None, &body).await;
        assert_eq!(r.status, 400, "{body}");
        let b = r.json();
        assert_eq!(b["error"]["code"], -32600, "{body}");
        assert_eq!(b.get("id").cloned(), id, "{body}");
    }
}

#[actix_web::test]
async fn oversized_bodies_get_413() {
    let app = spawn_open(&[("GATEHOUSE_SERVER__MAX_BODY_BYTES", "2048")]).await;
    let big = json!({"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"x".repeat(4000)}});
    let r = app.post(None, &big).await;
    assert_eq!(r.status, 413);
    // Chunked, without a Content-Length, too.
    let chunks: Vec<Result<String, std::io::Error>> =
        vec![Ok("x".repeat(1500)), Ok("y".repeat(1500))];
    let r = app
        .send(
            app.mcp(None)
                .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                    chunks,
                ))),
        )
        .await;
    assert_eq!(r.status, 413);
    // The server keeps serving.
    assert_eq!(
        app.post(None, &json!({"jsonrpc":"2.0","id":1,"method":"ping"}))
            .await
            .status,
        200
    );
}

#[actix_web::test]
async fn deeply_nested_json_is_refused() {
    let app = spawn_open(&[]).await;
    let body = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{{\"a\":{}{}}}}}",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let r = app.send(app.mcp(None).body(body)).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], -32600);
}

/// A small deterministic fuzz pass over the whole endpoint: mutated and random bodies never get
/// a 5xx, always get a JSON body (or none, for 202), and ids come back intact when echoed.
#[actix_web::test]
async fn hostile_bodies_never_get_a_server_error() {
    let app = spawn_open(&[]).await;
    let seeds = [
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"greet_user","arguments":{"name":"x"}}}"#,
        r#"{"jsonrpc":"2.0","id":"a","method":"initialize","params":{"protocolVersion":"2025-11-25"}}"#,
        r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/initialized"}]"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"test://template/1/data"}}"#,
        r#"{"jsonrpc":"2.0","id":3,"method":"prompts/get","params":{"name":"test_prompt_with_arguments","arguments":{"arg1":"a","arg2":"b"}}}"#,
        r#"{"jsonrpc":"2.0","id":4,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"test_prompt_with_arguments"},"argument":{"name":"arg1","value":"t"}}}"#,
    ];
    // xorshift: deterministic, no extra crate.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let specials: &[&[u8]] = &[
        b"\"", b"{", b"}", b"[", b"]", b":", b",", b"null", b"-1e999", b"\\u0000", b"\xff", b"1.5",
        b"true",
    ];
    for round in 0..400 {
        let seed = seeds[round % seeds.len()].as_bytes();
        let mut body = seed.to_vec();
        for _ in 0..(1 + next() % 4) {
            let pos = (next() as usize) % (body.len() + 1);
            match next() % 3 {
                0 if pos < body.len() => {
                    body.remove(pos);
                }
                1 => {
                    let s = specials[(next() as usize) % specials.len()];
                    body.splice(pos..pos, s.iter().copied());
                }
                _ if pos < body.len() => body[pos] = (next() % 256) as u8,
                _ => {}
            }
        }
        let r = app.send(app.mcp(None).body(body.clone())).await;
        assert!(
            r.status < 500,
            "{} for {:?}",
            r.status,
            String::from_utf8_lossy(&body)
        );
        if r.status != 202 {
            let ct = r.header("content-type").unwrap_or_default();
            if ct.starts_with("application/json") {
                let _: serde_json::Value = serde_json::from_str(&r.text)
                    .unwrap_or_else(|_| panic!("bad JSON {:?}", r.text));
            } else {
                assert!(ct.starts_with("text/event-stream"), "{ct}");
            }
        }
    }
}

#[actix_web::test]
async fn the_body_is_read_as_written_once() {
    let app = spawn_open(&[]).await;
    let send = |body: &'static str| app.send(app.mcp(None).body(body));
    // Escapes and white space are read as JSON reads them.
    let r = send(
        r#" { "params" : { "arguments" : { "name" : "A\u00e9" } , "name" : "greet_\u0075ser" } ,
             "method" : "tools\/call" , "id" : "x" , "jsonrpc" : "2.0" } "#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let body = r.json();
    assert_eq!(body["id"], "x");
    let text = body["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("Aé"), "{text}");
    // A member named twice is refused, whichever copy a parser would keep.
    let r = send(r#"{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/list"}"#).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.json()["error"]["code"], -32600);
    // Params of the wrong shape for their method: -32602 naming the member, without the
    // position in the text.
    let r = send(r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":7}}"#).await;
    let body = r.json();
    assert_eq!(body["error"]["code"], -32602, "{}", r.text);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("expected a string"), "{message}");
    assert!(!message.contains("line 1"), "{message}");
    // An unknown method is -32601 whatever its params hold.
    let r = send(r#"{"jsonrpc":"2.0","id":3,"method":"tools/nope","params":{"n":1e999}}"#).await;
    assert_eq!(r.json()["error"]["code"], -32601, "{}", r.text);
}
