//! Protocol tests without a socket: the same `routes::app` the server runs, called through
//! actix's in-process test service. Where a socket adds nothing (no connection behaviour, no
//! timing), this is how a protocol test can be written.

use actix_web::test::{self, TestRequest};
use gatehouse::auth::dev_issuer::TokenRequest;
use gatehouse::routes::app;
use gatehouse::state::{AppState, public_urls};
use serde_json::{Value, json};

use crate::helpers::settings;

fn post(body: Value) -> TestRequest {
    TestRequest::post()
        .uri("/mcp")
        .peer_addr("127.0.0.1:50000".parse().unwrap())
        .insert_header(("host", "localhost:8080"))
        .insert_header(("content-type", "application/json"))
        .insert_header(("accept", "application/json, text/event-stream"))
        .insert_header(("mcp-protocol-version", "2025-06-18"))
        .set_payload(body.to_string())
}

fn state(vars: &[(&str, &str)]) -> AppState {
    let settings = settings(vars);
    let urls = public_urls(&settings, 8080).unwrap();
    AppState::new(&settings, &urls).unwrap()
}

#[actix_web::test]
async fn tools_list_and_call_answer_in_process() {
    let svc = test::init_service(app(state(&[("GATEHOUSE_AUTH__ENABLED", "false")]))).await;
    let list: Value = test::call_and_read_body_json(
        &svc,
        post(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})).to_request(),
    )
    .await;
    assert!(
        list["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "greet_user")
    );
    let call: Value = test::call_and_read_body_json(
        &svc,
        post(json!({"jsonrpc": "2.0", "id": "c", "method": "tools/call",
            "params": {"name": "greet_user", "arguments": {"name": "Ada"}}}))
        .to_request(),
    )
    .await;
    assert_eq!(call["id"], "c");
    assert_eq!(call["result"]["content"][0]["text"], "Hi Ada, welcome!");
}

#[actix_web::test]
async fn the_auth_path_works_in_process_with_the_development_issuer() {
    let st = state(&[]);
    let dev = st
        .dev_issuer
        .clone()
        .expect("development profile has its issuer");
    let svc = test::init_service(app(st)).await;
    // No token: 401 with the challenge.
    let r = test::call_service(
        &svc,
        post(json!({"jsonrpc": "2.0", "id": 1, "method": "ping"})).to_request(),
    )
    .await;
    assert_eq!(r.status(), 401);
    let challenge = r
        .headers()
        .get("www-authenticate")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(challenge.contains("resource_metadata="), "{challenge}");
    // A token of the built-in issuer: served.
    let token = dev.mint(&TokenRequest {
        subject: "ada",
        client: None,
        scopes: &[],
        organization: None,
        audience: &["http://localhost:8080/mcp".to_string()],
        ttl: std::time::Duration::from_secs(60),
    });
    let r: Value = test::call_and_read_body_json(
        &svc,
        post(json!({"jsonrpc": "2.0", "id": 2, "method": "ping"}))
            .insert_header(("authorization", format!("Bearer {token}")))
            .to_request(),
    )
    .await;
    assert_eq!(r, json!({"jsonrpc": "2.0", "id": 2, "result": {}}));
}

/// The one refusal no TCP client can provoke: a request whose client address is unknown (no
/// peer address, and no trusted proxy header) cannot be charged to a budget, and is refused.
#[actix_web::test]
async fn a_request_without_a_client_address_is_400() {
    let svc = test::init_service(app(state(&[("GATEHOUSE_AUTH__ENABLED", "false")]))).await;
    let req = TestRequest::post()
        .uri("/mcp")
        .insert_header(("host", "localhost:8080"))
        .insert_header(("content-type", "application/json"))
        .insert_header(("accept", "application/json, text/event-stream"))
        .set_payload(json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}).to_string())
        .to_request();
    let resp = test::call_service(&svc, req).await;
    assert_eq!(resp.status().as_u16(), 400);
    assert_eq!(resp.headers().get("cache-control").unwrap(), "no-store");
    let body: Value = test::read_body_json(resp).await;
    assert_eq!(body["jsonrpc"], "2.0");
    assert_eq!(
        body["error"]["message"],
        "Bad Request: the client address cannot be determined"
    );
}
