//! The OAuth resource server, attacked and used from the outside: a local issuer serves a JWKS
//! over HTTP, tokens are signed with real RSA and EC test keys.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{
    TestApp, assert_not_logged, log_lines, settings, spawn_app, spawn_settings, spawn_with_issuer,
};
use crate::issuer::{TestIssuer, TestKey, b64, hs256, now};

async fn ping(app: &TestApp, token: &str) -> crate::helpers::Resp {
    app.rpc(Some(token), "ping", json!({})).await
}

fn assert_invalid_token(r: &crate::helpers::Resp, what: &str) {
    assert_eq!(r.status, 401, "{what}: {}", r.text);
    let h = r.header("www-authenticate").unwrap();
    assert!(h.starts_with("Bearer "), "{what}");
    assert!(h.contains("error=\"invalid_token\""), "{what}: {h}");
    assert!(h.contains("resource_metadata=\""), "{what}: {h}");
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    let b = r.json();
    assert_eq!(b["error"], "invalid_token");
    assert_eq!(
        b["error_description"],
        "The access token is invalid, expired, or not meant for this server"
    );
}

#[actix_web::test]
async fn valid_rsa_and_ec_tokens_are_accepted() {
    let app = spawn_with_issuer(&[]).await;
    let rsa = app.token("alice", &[]);
    let r = ping(&app, &rsa).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    let ec = app.ec().sign(&app.claims("bob", &[]));
    assert_eq!(ping(&app, &ec).await.status, 200);
    // typ JWT and no typ are fine outside strict mode; audience as an array too.
    let mut c = app.claims("carol", &[]);
    c["aud"] = json!(["other", app.resource]);
    let t = app
        .rsa()
        .sign_raw(&json!({"alg":"RS256","kid":"rsa-1"}), &c);
    assert_eq!(ping(&app, &t).await.status, 200);
}

#[actix_web::test]
async fn missing_token_gets_a_challenge_without_error() {
    let app = spawn_with_issuer(&[("GATEHOUSE_AUTH__BASE_SCOPES", "mcp:tools")]).await;
    let r = app.rpc(None, "ping", json!({})).await;
    assert_eq!(r.status, 401);
    let h = r.header("www-authenticate").unwrap();
    assert_eq!(
        h,
        format!(
            "Bearer resource_metadata=\"{}\", scope=\"mcp:tools\"",
            app.metadata_url
        )
    );
    assert!(!h.contains("error="));
    assert!(
        app.metadata_url
            .ends_with("/.well-known/oauth-protected-resource/mcp")
    );
    let b = r.json();
    assert!(b["error"].is_string() && b["error_description"].is_string());
}

#[actix_web::test]
async fn tokens_are_read_only_from_the_authorization_header() {
    let app = spawn_with_issuer(&[]).await;
    let t = app.token("alice", &[]);
    let r = app
        .send(
            app.mcp(None)
                .query(&[("access_token", t.as_str())])
                .body(json!({"jsonrpc":"2.0","id":1,"method":"ping"}).to_string()),
        )
        .await;
    assert_eq!(r.status, 401);
    let r = app
        .send(
            app.mcp(None).body(
                json!({"jsonrpc":"2.0","id":1,"method":"ping","access_token": t}).to_string(),
            ),
        )
        .await;
    assert_eq!(r.status, 401);
    // Scheme is case-insensitive.
    let r = app
        .send(
            app.mcp(None)
                .header("authorization", format!("bEaReR {t}"))
                .body(json!({"jsonrpc":"2.0","id":1,"method":"ping"}).to_string()),
        )
        .await;
    assert_eq!(r.status, 200);
}

#[actix_web::test]
async fn two_authorization_headers_or_a_malformed_one_are_invalid_request() {
    let app = spawn_with_issuer(&[]).await;
    let t = app.token("alice", &[]);
    let body = json!({"jsonrpc":"2.0","id":1,"method":"ping"}).to_string();
    let r = app
        .send(
            app.mcp(None)
                .header("authorization", format!("Bearer {t}"))
                .header("authorization", format!("Bearer {t}"))
                .body(body.clone()),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("error=\"invalid_request\"")
    );
    assert_eq!(r.json()["error"], "invalid_request");
    for h in ["Bearer", "Bearer a b c", "Bearer \"quoted\""] {
        let r = app
            .send(app.mcp(None).header("authorization", h).body(body.clone()))
            .await;
        assert_eq!(r.status, 400, "{h}");
    }
    // Another scheme is simply no bearer credentials.
    let r = app
        .send(
            app.mcp(None)
                .header("authorization", "Basic dXNlcjpwYXNz")
                .body(body),
        )
        .await;
    assert_eq!(r.status, 401);
    assert!(!r.header("www-authenticate").unwrap().contains("error="));
}

#[actix_web::test]
async fn claim_rules_are_enforced() {
    let app = spawn_with_issuer(&[]).await;
    let t = now();
    let base = app.claims("alice", &[]);
    let with = |k: &str, v: Value| {
        let mut c = base.clone();
        c[k] = v;
        c
    };
    let without = |k: &str| {
        let mut c = base.clone();
        c.as_object_mut().unwrap().remove(k);
        c
    };
    let cases: Vec<(&str, Value)> = vec![
        ("expired", with("exp", json!(t - 120))),
        ("expired beyond the leeway", with("exp", json!(t - 36))),
        // RFC 7519 4.1.4: "before" exp (plus the leeway), so not in the second it names.
        ("at the leeway's end", with("exp", json!(t - 30))),
        ("not yet valid", with("nbf", json!(t + 120))),
        ("issued in the future", with("iat", json!(t + 300))),
        ("wrong issuer", with("iss", json!("https://evil.example"))),
        (
            "issuer with trailing slash",
            with("iss", json!(format!("{}/", app.issuer().url))),
        ),
        ("issuer as array", with("iss", json!([app.issuer().url]))),
        (
            "wrong audience",
            with("aud", json!("https://other.example/mcp")),
        ),
        (
            "audience with trailing slash",
            with("aud", json!(format!("{}/", app.resource))),
        ),
        ("audience as number", with("aud", json!(7))),
        ("missing aud", without("aud")),
        ("missing exp", without("exp")),
        ("missing iss", without("iss")),
        // No subject at all: neither `sub` nor a machine client's `client_id` (a token with
        // only `client_id` is a machine client's: machine_clients.rs).
        ("missing sub and client_id", {
            let mut c = without("sub");
            c.as_object_mut().unwrap().remove("client_id");
            c
        }),
        ("sub not a string", with("sub", json!(12))),
        ("empty sub", with("sub", json!(""))),
        ("exp as string", with("exp", json!(format!("{}", t + 300)))),
        ("nbf as string", with("nbf", json!(format!("{}", t)))),
        ("iat as bool", with("iat", json!(true))),
        ("scopes as string", with("scopes", json!("admin"))),
        ("scope as array of numbers", with("scp", json!([1, 2]))),
        ("oid as number", with("oid", json!(5))),
    ];
    for (what, claims) in cases {
        let token = app.rsa().sign(&claims);
        assert_invalid_token(&ping(&app, &token).await, what);
    }
    // Inside the leeway is accepted.
    let ok = app.rsa().sign(&with("exp", json!(t - 5)));
    assert_eq!(ping(&app, &ok).await.status, 200);
    let ok = app.rsa().sign(&with("nbf", json!(t + 5)));
    assert_eq!(ping(&app, &ok).await.status, 200);
}

#[actix_web::test]
async fn header_tricks_never_validate() {
    let app = spawn_with_issuer(&[]).await;
    let claims = app.claims("mallory", &["admin"]);
    let payload = b64(claims.to_string().as_bytes());
    let mut attacks: Vec<(String, String)> = Vec::new();
    for none in ["none", "None", "NONE", "nOnE"] {
        let h = b64(json!({"alg": none, "kid": "rsa-1"}).to_string().as_bytes());
        attacks.push((
            format!("alg {none}, empty signature"),
            format!("{h}.{payload}."),
        ));
        attacks.push((
            format!("alg {none}, junk signature"),
            format!("{h}.{payload}.AAAA"),
        ));
    }
    // RS256 -> HS256 key confusion with the public key as the HMAC secret (CVE-2016-10555).
    let pub_bytes = app.rsa().public_der();
    attacks.push((
        "HS256 with the RSA public key".into(),
        hs256(&json!({"alg":"HS256","kid":"rsa-1"}), &claims, &pub_bytes),
    ));
    attacks.push((
        "HS256 with an empty secret".into(),
        hs256(&json!({"alg":"HS256"}), &claims, b""),
    ));
    // A valid RS256 signature relabelled as PS256 / ES256.
    let good = app.token("mallory", &["admin"]);
    let sig = good.rsplit('.').next().unwrap();
    for alg in ["PS256", "ES256", "RS512"] {
        let h = b64(json!({"alg": alg, "kid": "rsa-1"}).to_string().as_bytes());
        attacks.push((
            format!("alg relabelled {alg}"),
            format!("{h}.{payload}.{sig}"),
        ));
    }
    // Embedded jwk (CVE-2018-0114), jku and x5u pointing at the attacker.
    let attacker = TestKey::ec("attacker");
    let hit = format!("{}/attacker/jwks.json", app.issuer().url);
    for (name, extra) in [
        ("embedded jwk", json!({"jwk": attacker.jwk()})),
        ("jku", json!({"jku": hit})),
        ("x5u", json!({"x5u": hit})),
        ("x5c", json!({"x5c": ["MIIB"]})),
    ] {
        let mut h = json!({"alg": "ES256", "kid": "attacker"});
        for (k, v) in extra.as_object().unwrap() {
            h[k] = v.clone();
        }
        attacks.push((name.into(), attacker.sign_raw(&h, &claims)));
    }
    // crit header, even with a good signature.
    attacks.push((
        "crit".into(),
        app.rsa().sign_raw(
            &json!({"alg":"RS256","kid":"rsa-1","crit":["exp"]}),
            &claims,
        ),
    ));
    // kid injections, signed with a key the issuer does not publish.
    for kid in [
        "",
        "../../../../../../dev/null",
        "/dev/null",
        "x' UNION SELECT '1';--",
        "|sleep 10",
        "rsa-1\u{0}",
    ] {
        let h = json!({"alg": "ES256", "kid": kid});
        attacks.push((format!("kid {kid:?}"), attacker.sign_raw(&h, &claims)));
    }
    // Wrong key for the kid.
    attacks.push((
        "EC key under the RSA kid".into(),
        attacker.sign_raw(&json!({"alg":"ES256","kid":"rsa-1"}), &claims),
    ));
    // Strict typing outside strict mode still refuses nonsense types.
    attacks.push((
        "typ JWE".into(),
        app.rsa()
            .sign_raw(&json!({"alg":"RS256","kid":"rsa-1","typ":"JWE"}), &claims),
    ));
    // Shape: too long, too many segments, non-base64 characters.
    attacks.push((
        "9 KiB token".into(),
        format!(
            "{}.{}.{}",
            "a".repeat(3000),
            "b".repeat(3000),
            "c".repeat(3300)
        ),
    ));
    attacks.push(("four segments".into(), format!("{good}.x")));
    attacks.push(("padding".into(), format!("{good}==")));
    for (what, token) in attacks {
        let r = ping(&app, &token).await;
        assert_invalid_token(&r, &what);
        assert!(
            !r.text.contains(&token[..token.len().min(30)]),
            "{what}: token echoed"
        );
    }
    assert_eq!(
        app.issuer().attacker_hits(),
        0,
        "no URL from a token header is ever fetched"
    );
}

#[actix_web::test]
async fn symmetric_and_weak_keys_are_dropped_from_the_key_set() {
    let rsa = TestKey::rsa("rsa-1", 0);
    let issuer = TestIssuer::start(&[&rsa]).await;
    issuer.set_jwks(json!({"keys": [
        {"kty": "oct", "kid": "hmac", "k": b64(b"shared-secret"), "alg": "HS256"},
        {"kty": "RSA", "kid": "weak", "n": b64(&[0xC1; 128]), "e": "AQAB"},
        rsa.jwk(),
    ]}));
    let app = spawn_settings(
        settings(&[("OAUTH_ISSUER", issuer.url.as_str())]),
        Some(issuer),
        Some(rsa),
        None,
    )
    .await;
    app.wait_ready().await;
    let claims = app.claims("m", &[]);
    let t = hs256(
        &json!({"alg":"HS256","kid":"hmac"}),
        &claims,
        b"shared-secret",
    );
    assert_invalid_token(&ping(&app, &t).await, "HS256 with a JWKS oct key");
    let t = app
        .rsa()
        .sign_raw(&json!({"alg":"RS256","kid":"weak"}), &claims);
    assert_invalid_token(&ping(&app, &t).await, "kid of a weak RSA key");
    assert_eq!(ping(&app, &app.token("ok", &[])).await.status, 200);
}

#[actix_web::test]
async fn an_unknown_kid_storm_causes_at_most_one_fetch() {
    let app = spawn_with_issuer(&[]).await;
    let before = app.issuer().key_fetches();
    let attacker = TestKey::ec("x");
    let mut handles = Vec::new();
    for i in 0..60 {
        let h = json!({"alg": "ES256", "kid": format!("unknown-{i}")});
        let token = attacker.sign_raw(&h, &app.claims("m", &[]));
        let rb = app
            .mcp(Some(&token))
            .body(json!({"jsonrpc":"2.0","id":i,"method":"ping"}).to_string());
        handles.push(actix_web::rt::spawn(async move {
            rb.send().await.unwrap().status().as_u16()
        }));
    }
    for h in handles {
        assert_eq!(h.await.unwrap(), 401);
    }
    let fetched = app.issuer().key_fetches() - before;
    assert!(fetched <= 1, "{fetched} fetches for one storm");
}

#[actix_web::test]
async fn key_rotation_is_picked_up_and_removed_keys_stop_validating() {
    let app = spawn_with_issuer(&[("GATEHOUSE_AUTH__JWKS_COOLDOWN_SECS", "1")]).await;
    let old = app.token("alice", &[]);
    assert_eq!(ping(&app, &old).await.status, 200);
    // Past the cooldown since the startup fetch.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // The issuer rotates: a new key, the old one gone.
    let new = TestKey::rsa("rsa-2", 1);
    app.issuer().set_keys(&[&new]);
    let t = new.sign(&app.claims("alice", &[]));
    assert_eq!(
        ping(&app, &t).await.status,
        200,
        "unknown kid triggers a refetch"
    );
    assert_invalid_token(&ping(&app, &old).await, "key removed at the last refresh");
}

#[actix_web::test]
async fn issuer_down_at_startup_gives_503_until_keys_arrive() {
    let rsa = TestKey::rsa("rsa-1", 0);
    let issuer = TestIssuer::start(&[&rsa]).await;
    issuer.set_down(true);
    let url = issuer.url.clone();
    // Listening at once, as an instance whose startup wait for keys has run out does.
    let app = spawn_settings(
        settings(&[
            ("OAUTH_ISSUER", url.as_str()),
            ("GATEHOUSE_AUTH__STARTUP_KEY_WAIT_SECS", "0"),
        ]),
        Some(issuer),
        Some(rsa),
        None,
    )
    .await;
    assert_eq!(app.get("/health").await.status, 200);
    let ready = app.get("/ready").await;
    assert_eq!(ready.status, 503);
    assert_eq!(
        app.get("/.well-known/oauth-protected-resource/mcp")
            .await
            .status,
        200
    );
    let t = app.token("alice", &[]);
    let r = ping(&app, &t).await;
    assert_eq!(r.status, 503);
    assert!(r.header("retry-after").is_some());
    app.issuer().set_down(false);
    app.wait_ready().await;
    assert_eq!(ping(&app, &t).await.status, 200);
}

#[actix_web::test]
async fn issuer_down_later_keeps_cached_keys_working() {
    let app = spawn_with_issuer(&[("GATEHOUSE_AUTH__JWKS_COOLDOWN_SECS", "1")]).await;
    app.issuer().set_down(true);
    // Past the 1 s cooldown since the startup fetch: a clock, not an event.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // An unknown kid makes the store refetch; the fetch fails, the cached keys stay.
    let stranger = TestKey::rsa("rsa-2", 1);
    let before = app.issuer().key_fetches();
    assert_invalid_token(
        &ping(&app, &stranger.sign(&app.claims("alice", &[]))).await,
        "unknown key",
    );
    assert!(app.issuer().key_fetches() > before, "a refetch was tried");
    let t = app.token("alice", &[]);
    assert_eq!(ping(&app, &t).await.status, 200);
    assert_eq!(app.get("/ready").await.status, 200);
}

#[actix_web::test]
async fn insufficient_scope_is_403_with_a_step_up_challenge() {
    let app = spawn_with_issuer(&[]).await;
    let t = app.token("alice", &["reports:read"]);
    let r = app
        .call_tool(Some(&t), "admin_action", json!({"action": "x"}))
        .await;
    assert_eq!(r.status, 403);
    let h = r.header("www-authenticate").unwrap();
    assert!(h.starts_with("Bearer error=\"insufficient_scope\""), "{h}");
    assert!(h.contains("scope=\"admin\""), "{h}");
    assert!(
        h.contains(&format!("resource_metadata=\"{}\"", app.metadata_url)),
        "{h}"
    );
    assert_eq!(r.json()["error"], "insufficient_scope");
    // All scopes the call needs, in one challenge.
    let r = app.call_tool(Some(&t), "fixture_scoped", json!({})).await;
    assert_eq!(r.status, 403);
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("scope=\"reports:read reports:write\"")
    );
    // Scopes from `scope` (space-separated) and `scp` count too.
    let mut c = app.claims("alice", &[]);
    c["scope"] = json!("reports:read other");
    c["scp"] = json!(["reports:write"]);
    let t2 = app.rsa().sign(&c);
    let r = app.call_tool(Some(&t2), "fixture_scoped", json!({})).await;
    assert_eq!(r.json()["result"]["content"][0]["text"], "scoped ok");
    // Scopes are opaque: a broader-looking one implies nothing (see hardening.rs for
    // auth.scope_implies).
    let t3 = app.token("alice", &["reports"]);
    let r = app.call_tool(Some(&t3), "fixture_scoped", json!({})).await;
    assert_eq!(r.status, 403);
    let admin = app.token("root", &["admin"]);
    let r = app
        .call_tool(Some(&admin), "admin_action", json!({"action": "reindex"}))
        .await;
    assert_eq!(
        r.json()["result"]["content"][0]["text"],
        "Admin action 'reindex' performed by root."
    );
}

#[actix_web::test]
async fn tools_list_shows_only_callable_tools() {
    let app = spawn_with_issuer(&[("GATEHOUSE_MCP__PAGE_SIZE", "1000")]).await;
    let names = |b: Value| -> Vec<String> {
        b["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    };
    let plain = names(
        app.rpc(Some(&app.token("a", &[])), "tools/list", json!({}))
            .await
            .json(),
    );
    assert!(!plain.contains(&"admin_action".to_string()));
    assert!(plain.contains(&"greet_user".to_string()));
    let admin = names(
        app.rpc(Some(&app.token("a", &["admin"])), "tools/list", json!({}))
            .await
            .json(),
    );
    assert!(admin.contains(&"admin_action".to_string()));
    // Listings are serialized once per set of visible tools and shared: each caller still
    // gets the one for its own scopes, in any order of arrival, on every request.
    for (scopes, sees_admin) in [(&[][..], false), (&["admin"][..], true), (&[][..], false)] {
        let seen = names(
            app.rpc(Some(&app.token("b", scopes)), "tools/list", json!({}))
                .await
                .json(),
        );
        assert_eq!(
            seen.contains(&"admin_action".to_string()),
            sees_admin,
            "{scopes:?}"
        );
    }
    let unfiltered = spawn_with_issuer(&[
        ("GATEHOUSE_AUTH__FILTER_TOOLS_BY_SCOPE", "false"),
        ("GATEHOUSE_MCP__PAGE_SIZE", "1000"),
    ])
    .await;
    let all = names(
        unfiltered
            .rpc(Some(&unfiltered.token("a", &[])), "tools/list", json!({}))
            .await
            .json(),
    );
    assert!(all.contains(&"admin_action".to_string()));
}

#[actix_web::test]
async fn get_org_data_serves_the_callers_organization_only() {
    let app = spawn_with_issuer(&[]).await;
    for (claim, value) in [("oid", "org_1"), ("org_id", "org_2"), ("xoid", "org_3")] {
        let mut c = app.claims("alice", &[]);
        c[claim] = json!(value);
        let r = app
            .call_tool(Some(&app.rsa().sign(&c)), "get_org_data", json!({}))
            .await
            .json();
        assert_eq!(
            r["result"]["structuredContent"]["organization"], value,
            "{claim}"
        );
        let text: Value =
            serde_json::from_str(r["result"]["content"][0]["text"].as_str().unwrap()).unwrap();
        assert_eq!(text, r["result"]["structuredContent"]);
    }
    let r = app
        .call_tool(
            Some(&app.token("alice", &[])),
            "get_org_data",
            json!({"organization": "org_1"}),
        )
        .await
        .json();
    assert_eq!(r["result"]["isError"], true);
}

#[actix_web::test]
async fn protected_resource_metadata_is_public_and_exact() {
    let app = spawn_with_issuer(&[("GATEHOUSE_AUTH__EXTRA_SCOPES", "mcp:basic")]).await;
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let r = app.get(path).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(
            r.header("access-control-allow-origin").as_deref(),
            Some("*")
        );
        let d = r.json();
        assert_eq!(d["resource"], app.resource);
        assert_eq!(d["authorization_servers"], json!([app.issuer().url]));
        assert_eq!(d["bearer_methods_supported"], json!(["header"]));
        let scopes = d["scopes_supported"].as_array().unwrap();
        assert!(scopes.contains(&json!("admin")) && scopes.contains(&json!("mcp:basic")));
    }
    let r = app
        .send(
            app.client
                .post(format!("{}/.well-known/oauth-protected-resource", app.base)),
        )
        .await;
    assert_eq!(r.status, 405);
}

#[actix_web::test]
async fn metadata_url_comes_from_public_url_never_from_request_headers() {
    let app = spawn_with_issuer(&[
        ("PUBLIC_URL", "https://mcp.example.com"),
        ("ALLOWED_HOSTS", "*"),
    ])
    .await;
    let r = app
        .send(
            app.mcp(None)
                .header("x-forwarded-host", "evil.example")
                .header("x-forwarded-proto", "http")
                .body(json!({"jsonrpc":"2.0","id":1,"method":"ping"}).to_string()),
        )
        .await;
    assert_eq!(
        r.header("www-authenticate").unwrap(),
        "Bearer resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\""
    );
    let d = app
        .get("/.well-known/oauth-protected-resource/mcp")
        .await
        .json();
    assert_eq!(d["resource"], "https://mcp.example.com/mcp");
}

#[actix_web::test]
async fn verbatim_metadata_is_served_as_given() {
    let doc = json!({"resource": "https://mcp.example.com", "authorization_servers": ["https://env.scalekit.dev/resources/res_1"], "scopes_supported": ["todo:read"]});
    let text = doc.to_string();
    let app = spawn_with_issuer(&[("PROTECTED_RESOURCE_METADATA", text.as_str())]).await;
    assert_eq!(
        app.get("/.well-known/oauth-protected-resource/mcp")
            .await
            .json(),
        doc
    );
}

#[actix_web::test]
async fn a_scalekit_env_file_works_unchanged() {
    let rsa = TestKey::rsa("snk_1", 2);
    let issuer = TestIssuer::start(&[&rsa]).await;
    let vars = [
        ("SK_ENV_URL", issuer.url.as_str()),
        ("SK_CLIENT_ID", "skc_123"),
        ("SK_CLIENT_SECRET", "test-client-secret-value-123"),
        ("EXPECTED_AUDIENCE", "http://localhost:3002/"),
        (
            "PROTECTED_RESOURCE_METADATA",
            r#"{"resource":"http://localhost:3002/","authorization_servers":["https://x.scalekit.dev/resources/res_1"],"bearer_methods_supported":["header"]}"#,
        ),
    ];
    let s = settings(&vars);
    let app = spawn_settings(s, Some(issuer), Some(rsa), None).await;
    app.wait_ready().await;
    assert!(
        app.issuer().key_fetches() >= 1,
        "keys come from ${{SK_ENV_URL}}/keys"
    );
    assert_eq!(app.issuer().discovery_fetches(), 0);
    let t = now();
    let claims = json!({
        "iss": app.issuer().url, "sub": "usr_1", "aud": ["http://localhost:3002/", "res_1"],
        "exp": t + 300, "iat": t, "nbf": t, "oid": "org_9", "scopes": ["admin"], "client_id": "skc_123"
    });
    let token = app
        .rsa()
        .sign_raw(&json!({"alg":"RS256","kid":"snk_1","typ":"JWT"}), &claims);
    let r = app
        .call_tool(Some(&token), "admin_action", json!({"action": "sync"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app
        .call_tool(Some(&token), "get_org_data", json!({}))
        .await
        .json();
    assert_eq!(r["result"]["structuredContent"]["organization"], "org_9");
    // Audience without the trailing slash is a mismatch, and the log says so (no token in it).
    let mut c = claims.clone();
    c["aud"] = json!("http://localhost:3002");
    let bad = app
        .rsa()
        .sign_raw(&json!({"alg":"RS256","kid":"snk_1"}), &c);
    assert_eq!(ping(&app, &bad).await.status, 401);
    // The hint that belongs to this case (the two differ only by a trailing slash), on the
    // line that names this token's audience (the log buffer is the whole process's).
    let lines = log_lines();
    assert!(lines.iter().any(|l| {
        l.contains(r#"token has ["http://localhost:3002"]"#)
            && l.contains("they differ only by a trailing slash: make EXPECTED_AUDIENCE match the token exactly")
    }));
    assert_not_logged("test-client-secret-value-123");
    assert_not_logged(&bad);
}

#[actix_web::test]
async fn scalekit_metadata_names_the_resource_authorization_server() {
    let rsa = TestKey::rsa("snk_1", 2);
    let issuer = TestIssuer::start(&[&rsa]).await;
    let url = issuer.url.clone();
    let s = settings(&[("SK_ENV_URL", url.as_str()), ("MCP_SERVER_ID", "res_77")]);
    let app = spawn_settings(s, Some(issuer), Some(rsa), None).await;
    let d = app
        .get("/.well-known/oauth-protected-resource/mcp")
        .await
        .json();
    assert_eq!(
        d["authorization_servers"],
        json!([format!("{url}/resources/res_77")])
    );
    // Tokens are still issued by the environment URL.
    app.wait_ready().await;
    assert_eq!(ping(&app, &app.token("usr_1", &[])).await.status, 200);
}

#[actix_web::test]
async fn discovery_finds_the_key_set_for_a_generic_issuer() {
    let app = spawn_with_issuer(&[]).await;
    assert!(app.issuer().discovery_fetches() >= 1);
    assert_eq!(ping(&app, &app.token("a", &[])).await.status, 200);
}

#[actix_web::test]
async fn strict_mode_requires_at_jwt() {
    let app = spawn_with_issuer(&[("GATEHOUSE_AUTH__REQUIRE_AT_JWT_TYP", "true")]).await;
    let c = app.claims("a", &[]);
    assert_eq!(ping(&app, &app.rsa().sign(&c)).await.status, 200);
    let t = app
        .rsa()
        .sign_raw(&json!({"alg":"RS256","kid":"rsa-1","typ":"JWT"}), &c);
    assert_invalid_token(&ping(&app, &t).await, "typ JWT in strict mode");
    let t = app
        .rsa()
        .sign_raw(&json!({"alg":"RS256","kid":"rsa-1"}), &c);
    assert_invalid_token(&ping(&app, &t).await, "no typ in strict mode");
}

#[actix_web::test]
async fn the_development_issuer_works_end_to_end() {
    let app = spawn_app(&[]).await;
    let keys = app.get("/dev-issuer/keys").await.json();
    assert_eq!(keys["keys"][0]["kty"], "EC");
    assert!(
        keys["keys"][0].get("d").is_none(),
        "private key material never served"
    );
    let r = app.rpc(None, "ping", json!({})).await;
    assert_eq!(r.status, 401);
    let d = app
        .get("/.well-known/oauth-protected-resource/mcp")
        .await
        .json();
    assert_eq!(
        d["authorization_servers"][0],
        format!("http://localhost:{}/dev-issuer", app.port)
    );
}

mod properties {
    use std::sync::Arc;

    use gatehouse::auth::jwks::{KeyStore, parse_jwks};
    use gatehouse::auth::validator::{TokenValidator, ValidatorOptions};
    use gatehouse::auth::verifier::{TrustedCheck, Verifier};
    use gatehouse::config::Introspection;
    use jsonwebtoken::Algorithm;
    use proptest::prelude::*;
    use serde_json::json;

    use crate::issuer::{TestKey, now};

    fn validator(key: &TestKey) -> Verifier {
        let doc = json!({"keys": [key.jwk()]}).to_string();
        let set = parse_jwks(doc.as_bytes(), &[Algorithm::RS256, Algorithm::ES256]).unwrap();
        let validator = TokenValidator::new(ValidatorOptions {
            issuer: "https://issuer.test".into(),
            audiences: vec!["https://mcp.test/mcp".into()],
            algorithms: vec![Algorithm::RS256, Algorithm::ES256],
            leeway: 30,
            require_at_jwt_typ: false,
            keys: KeyStore::new_static(set),
            max_lifetime: 0,
            scope_implies: Default::default(),
            subject_claims: vec!["sub".into(), "client_id".into()],
        });
        let check = TrustedCheck {
            validator,
            introspector: None,
        };
        Verifier::new(vec![check], Introspection::Off)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn a_mutated_token_never_validates(pos in any::<usize>(), byte in any::<u8>(), cut in any::<bool>()) {
            static KEY: std::sync::OnceLock<(Arc<Verifier>, String)> = std::sync::OnceLock::new();
            let (v, token) = KEY.get_or_init(|| {
                let k = TestKey::ec("p");
                let t = now();
                let token = k.sign(&json!({"iss":"https://issuer.test","sub":"s","aud":"https://mcp.test/mcp","exp":t+600,"iat":t}));
                (Arc::new(validator(&k)), token)
            });
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            prop_assert!(rt.block_on(v.validate(token)).is_ok());
            let mut bytes = token.clone().into_bytes();
            let i = pos % bytes.len();
            if cut {
                bytes.truncate(i);
            } else {
                prop_assume!(bytes[i] != byte);
                bytes[i] = byte;
            }
            let mutated = String::from_utf8_lossy(&bytes).to_string();
            prop_assume!(&mutated != token);
            prop_assert!(rt.block_on(v.validate(&mutated)).is_err(), "mutated token validated: {mutated}");
        }

        #[test]
        fn arbitrary_input_never_validates(s in ".{0,200}") {
            static V: std::sync::OnceLock<Arc<Verifier>> = std::sync::OnceLock::new();
            let v = V.get_or_init(|| Arc::new(validator(&TestKey::ec("q"))));
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            prop_assert!(rt.block_on(v.validate(&s)).is_err());
        }
    }
}

#[actix_web::test]
async fn a_token_accepted_once_is_refused_after_it_expires() {
    let app = spawn_with_issuer(&[("GATEHOUSE_AUTH__LEEWAY_SECS", "0")]).await;
    let mut c = app.claims("alice", &[]);
    c["exp"] = json!(now() + 2);
    let t = app.rsa().sign(&c);
    assert_eq!(ping(&app, &t).await.status, 200);
    assert_eq!(ping(&app, &t).await.status, 200);
    // Past `exp` (whole seconds of the wall clock): no event marks a token's expiry.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_invalid_token(&ping(&app, &t).await, "expired after it was first accepted");
}
