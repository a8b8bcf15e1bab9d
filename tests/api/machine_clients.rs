//! Tokens of machine clients (client credentials): Scalekit's M2M tokens carry `client_id`,
//! `oid`, `scopes`, `iss`, `aud`, `exp` and no `sub`. The subject is the first of
//! `auth.subject_claims` (`sub`, then `client_id`) the token has; the tool context says whether
//! the caller is a user or a client; budgets and audit lines key on that subject.

use serde_json::{Value, json};

use crate::helpers::{TestApp, log_lines, spawn_with_issuer};
use crate::issuer::now;

/// Scalekit's client-credentials token shape.
fn m2m_claims(app: &TestApp, client: &str) -> Value {
    let t = now();
    json!({
        "iss": app.issuer().url,
        "aud": app.resource,
        "client_id": client,
        "oid": "org_59615193906282635",
        "scopes": ["reports:read"],
        "iat": t,
        "nbf": t,
        "exp": t + 300,
        "jti": "tkn_69388798603395524"
    })
}

fn whoami(body: &Value) -> Value {
    body["result"]["structuredContent"].clone()
}

#[actix_web::test]
async fn a_machine_clients_token_without_sub_is_accepted_as_a_client() {
    let app = spawn_with_issuer(&[("GATEHOUSE_MCP__TOOL_TIMEOUT_SECS", "5")]).await;
    let m2m = app
        .rsa()
        .sign(&m2m_claims(&app, "m2morg_69038819013296423"));
    let r = app.call_tool(Some(&m2m), "fixture_whoami", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let me = whoami(&r.json());
    assert_eq!(me["subject"], "m2morg_69038819013296423");
    assert_eq!(me["kind"], "client");
    assert_eq!(me["client_id"], "m2morg_69038819013296423");
    assert_eq!(me["organization"], "org_59615193906282635");
    // Its scopes work as a user's do.
    let r = app
        .call_tool(Some(&m2m), "fixture_scoped_task", json!({"ms": 0}))
        .await;
    assert_ne!(r.status, 403, "{}", r.text);
    // A user's token says user, with its client id too.
    let user = app.token("ada", &[]);
    let me = whoami(
        &app.call_tool(Some(&user), "fixture_whoami", json!({}))
            .await
            .json(),
    );
    assert_eq!(
        (me["kind"].as_str(), me["subject"].as_str()),
        (Some("user"), Some("ada"))
    );
    assert_eq!(me["client_id"], "test-client");
    // The audit line names the client as the subject.
    assert!(log_lines().iter().any(|l| l.contains("gatehouse::audit")
        && l.contains("subject=m2morg_69038819013296423")
        && l.contains("name=fixture_whoami")));
}

#[actix_web::test]
async fn a_token_with_no_subject_claim_is_refused_and_the_claims_are_configurable() {
    let app = spawn_with_issuer(&[]).await;
    let mut none = m2m_claims(&app, "x");
    none.as_object_mut().unwrap().remove("client_id");
    let r = app
        .rpc(Some(&app.rsa().sign(&none)), "ping", json!({}))
        .await;
    assert_eq!(r.status, 401, "{}", r.text);
    // A blank client_id names no one either.
    let blank = app.rsa().sign(&m2m_claims(&app, " \u{200b} "));
    assert_eq!(app.rpc(Some(&blank), "ping", json!({})).await.status, 401);
    // `sub` comes first: a token with both is its user's.
    let mut both = m2m_claims(&app, "m2morg_1");
    both["sub"] = json!("usr_1");
    let me = whoami(
        &app.call_tool(Some(&app.rsa().sign(&both)), "fixture_whoami", json!({}))
            .await
            .json(),
    );
    assert_eq!(
        (me["subject"].as_str(), me["kind"].as_str()),
        (Some("usr_1"), Some("user"))
    );
    // A deployment that serves users only says so, and machine tokens are refused.
    let users_only = spawn_with_issuer(&[("GATEHOUSE_AUTH__SUBJECT_CLAIMS", "sub")]).await;
    let m2m = users_only.rsa().sign(&m2m_claims(&users_only, "m2morg_2"));
    assert_eq!(
        users_only.rpc(Some(&m2m), "ping", json!({})).await.status,
        401
    );
}

#[actix_web::test]
async fn a_machine_client_has_its_own_tool_budget() {
    let app = spawn_with_issuer(&[
        ("GATEHOUSE_RATE_LIMIT__TOOL_CALLS_PER_MINUTE", "2"),
        ("GATEHOUSE_RATE_LIMIT__TOOL_CALLS_BURST", "2"),
    ])
    .await;
    let a = app.rsa().sign(&m2m_claims(&app, "m2morg_a"));
    let b = app.rsa().sign(&m2m_claims(&app, "m2morg_b"));
    for _ in 0..2 {
        assert_eq!(
            app.call_tool(Some(&a), "fixture_whoami", json!({}))
                .await
                .status,
            200
        );
    }
    assert_eq!(
        app.call_tool(Some(&a), "fixture_whoami", json!({}))
            .await
            .status,
        429
    );
    // Another client is another subject.
    assert_eq!(
        app.call_tool(Some(&b), "fixture_whoami", json!({}))
            .await
            .status,
        200
    );
}
