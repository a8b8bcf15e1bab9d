//! Opaque tokens checked by the issuer's introspection endpoint (RFC 7662), found by discovery
//! and called with client_secret_basic: the answer checked like a JWT's claims, answers cached
//! by the token's hash, one call in flight per token, 503 when the endpoint fails, and a flood
//! of made-up tokens held by the address budget before any call.

use serde_json::{Value, json};

use crate::helpers::{TestApp, log_lines, spawn_with_issuer};
use crate::issuer::{INTROSPECTION_CLIENT, now};

async fn introspecting(mode: &str, more: &[(&str, &str)]) -> TestApp {
    let mut vars = vec![
        ("GATEHOUSE_AUTH__INTROSPECTION", mode),
        ("SK_CLIENT_ID", INTROSPECTION_CLIENT.0),
        ("SK_CLIENT_SECRET", INTROSPECTION_CLIENT.1),
    ];
    vars.extend_from_slice(more);
    spawn_with_issuer(&vars).await
}

/// An active answer for a user of the app's issuer and audience.
fn active(app: &TestApp, sub: &str) -> Value {
    json!({
        "active": true,
        "iss": app.issuer().url,
        "aud": app.resource,
        "sub": sub,
        "scope": "reports:read admin",
        "client_id": "client-7",
        "oid": "org_1",
        "exp": now() + 300,
        "token_type": "Bearer",
    })
}

fn whoami(r: &crate::helpers::Resp) -> Value {
    r.json()["result"]["structuredContent"].clone()
}

#[actix_web::test]
async fn an_active_opaque_token_works_end_to_end_and_is_cached() {
    let app = introspecting("opaque", &[]).await;
    let token = "opq_Zx81-kQ.~+/aa==";
    app.issuer().set_answer(token, active(&app, "ada"));
    let r = app
        .call_tool(Some(token), "fixture_whoami", json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let me = whoami(&r);
    assert_eq!(me["subject"], "ada");
    assert_eq!(me["kind"], "user");
    assert_eq!(me["client_id"], "client-7");
    assert_eq!(me["organization"], "org_1");
    // Its scopes (the `scope` string) reach the scope check: admin's tool is callable.
    let r = app.rpc(Some(token), "tools/list", json!({})).await;
    assert!(r.text.contains("fixture_whoami"));
    // Cached: later requests make no call.
    let calls = app.issuer().introspections();
    assert_eq!(calls, 1);
    for _ in 0..3 {
        assert_eq!(app.rpc(Some(token), "ping", json!({})).await.status, 200);
    }
    assert_eq!(app.issuer().introspections(), 1);
    // A reference token with dots whose first part is no JWT header is opaque too.
    let dotted = "ref.a1b2c3.d4e5f6";
    app.issuer().set_answer(dotted, active(&app, "dot"));
    let r = app
        .call_tool(Some(dotted), "fixture_whoami", json!({}))
        .await;
    assert_eq!(whoami(&r)["subject"], "dot", "{}", r.text);
    assert_eq!(app.issuer().introspections(), 2);
    // JWTs still take the signature path, with no call.
    let jwt = app.token("bob", &[]);
    assert_eq!(app.rpc(Some(&jwt), "ping", json!({})).await.status, 200);
    assert_eq!(app.issuer().introspections(), 2);
    // Neither the token nor the answer is logged.
    for l in log_lines() {
        assert!(
            !l.contains("opq_Zx81") && !l.contains("reports:read admin"),
            "{l}"
        );
    }
}

#[actix_web::test]
async fn inactive_foreign_expired_and_premature_answers_are_refused() {
    let app = introspecting("opaque", &[]).await;
    let mut cases = Vec::new();
    cases.push(("inactive", json!({"active": false})));
    let mut aud = active(&app, "ada");
    aud["aud"] = json!("https://other.example/mcp");
    cases.push(("wrong-audience", aud));
    let mut no_aud = active(&app, "ada");
    no_aud.as_object_mut().unwrap().remove("aud");
    cases.push(("no-audience", no_aud));
    let mut expired = active(&app, "ada");
    expired["exp"] = json!(now() - 3600);
    cases.push(("expired", expired));
    let mut early = active(&app, "ada");
    early["nbf"] = json!(now() + 3600);
    cases.push(("not-yet", early));
    let mut iss = active(&app, "ada");
    iss["iss"] = json!("https://attacker.example");
    cases.push(("wrong-issuer", iss));
    let mut no_sub = active(&app, "ada");
    no_sub.as_object_mut().unwrap().remove("sub");
    no_sub.as_object_mut().unwrap().remove("client_id");
    cases.push(("no-subject", no_sub));
    for (name, answer) in cases {
        let token = format!("opq-{name}");
        app.issuer().set_answer(&token, answer);
        let r = app.rpc(Some(&token), "ping", json!({})).await;
        assert_eq!(r.status, 401, "{name}: {}", r.text);
        let challenge = r.header("www-authenticate").unwrap();
        assert!(
            challenge.contains("error=\"invalid_token\""),
            "{name}: {challenge}"
        );
    }
    // An answer whose `active` is not a boolean is the endpoint's fault: 503, not 401.
    app.issuer()
        .set_answer("opq-active-string", json!({"active": "true", "sub": "x"}));
    let r = app.rpc(Some("opq-active-string"), "ping", json!({})).await;
    assert_eq!(r.status, 503, "{}", r.text);
    // An unknown token is inactive: refused, and the refusal is cached briefly.
    let before = app.issuer().introspections();
    for _ in 0..3 {
        assert_eq!(
            app.rpc(Some("opq-unknown"), "ping", json!({})).await.status,
            401
        );
    }
    assert_eq!(app.issuer().introspections(), before + 1);
}

#[actix_web::test]
async fn one_call_in_flight_per_token() {
    let app = introspecting("opaque", &[]).await;
    let token = "opq-burst";
    app.issuer().set_answer(token, active(&app, "ada"));
    app.issuer()
        .set_delay(std::time::Duration::from_millis(400));
    let requests = (0..8).map(|_| app.rpc(Some(token), "ping", json!({})));
    let statuses: Vec<u16> = futures_util::future::join_all(requests)
        .await
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, vec![200; 8]);
    assert_eq!(app.issuer().introspections(), 1);
}

#[actix_web::test]
async fn a_failing_endpoint_is_503_with_retry_after_not_401() {
    let app = introspecting("opaque", &[]).await;
    // Keys are in first, so only the endpoint is down.
    assert_eq!(
        app.rpc(Some(&app.token("k", &[])), "ping", json!({}))
            .await
            .status,
        200
    );
    app.issuer().set_down(true);
    let r = app.rpc(Some("opq-while-down"), "ping", json!({})).await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert!(r.header("retry-after").is_some());
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    // A failure is not cached: once the endpoint is back, the token works.
    app.issuer().set_down(false);
    app.issuer()
        .set_answer("opq-while-down", active(&app, "ada"));
    assert_eq!(
        app.rpc(Some("opq-while-down"), "ping", json!({}))
            .await
            .status,
        200
    );
}

#[actix_web::test]
async fn a_flood_of_made_up_tokens_is_held_by_the_address_budget() {
    let app = introspecting(
        "opaque",
        &[
            ("GATEHOUSE_RATE_LIMIT__REQUESTS_BURST", "5"),
            ("GATEHOUSE_RATE_LIMIT__REQUESTS_PER_MINUTE", "1"),
            ("GATEHOUSE_RATE_LIMIT__FIRST_VERIFICATIONS_BURST", "2"),
            ("GATEHOUSE_RATE_LIMIT__FIRST_VERIFICATIONS_PER_MINUTE", "1"),
        ],
    )
    .await;
    let mut statuses = Vec::new();
    for i in 0..40 {
        statuses.push(
            app.rpc(Some(&format!("made-up-{i}")), "ping", json!({}))
                .await
                .status,
        );
    }
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
    assert!(
        statuses.iter().filter(|s| **s == 429).count() >= 30,
        "{statuses:?}"
    );
    // Calls reached the endpoint only for what the budget let through (5 + 2).
    assert!(
        app.issuer().introspections() <= 7,
        "{}",
        app.issuer().introspections()
    );
}

#[actix_web::test]
async fn always_mode_introspects_jwts_so_a_revocation_bites() {
    let app = introspecting("always", &[]).await;
    let jwt = app.token("ada", &[]);
    // The issuer says it is revoked (inactive), although its signature is fine.
    let r = app.rpc(Some(&jwt), "ping", json!({})).await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(app.issuer().introspections(), 1);
    let jwt = app.token("bea", &[]);
    app.issuer().set_answer(&jwt, active(&app, "bea"));
    let r = app.call_tool(Some(&jwt), "fixture_whoami", json!({})).await;
    assert_eq!(
        (r.status, whoami(&r)["subject"].clone()),
        (200, json!("bea"))
    );
}

#[actix_web::test]
async fn without_introspection_an_opaque_token_is_401() {
    let app = spawn_with_issuer(&[]).await;
    let r = app.rpc(Some("opq-anything"), "ping", json!({})).await;
    assert_eq!(r.status, 401);
    assert_eq!(app.issuer().introspections(), 0);
}

#[test]
fn introspection_needs_client_credentials() {
    let load = |pairs: &[(&str, &str)]| {
        let env = [
            ("OAUTH_ISSUER", "https://a.example"),
            ("GATEHOUSE_AUTH__INTROSPECTION", "opaque"),
        ]
        .iter()
        .chain(pairs)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        gatehouse::config::Settings::load(&env, &crate::helpers::config_dir()).unwrap_err()
    };
    let e = load(&[]);
    assert!(e.setting.contains("auth.introspection"), "{e}");
    assert!(e.problem.contains("client_id"), "{e}");
    // A client id without its secret would be refused by the endpoint at every call.
    let e = load(&[("SK_CLIENT_ID", "client-7")]);
    assert!(e.setting.contains("SK_CLIENT_SECRET"), "{e}");
}
