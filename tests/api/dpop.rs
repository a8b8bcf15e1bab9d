//! DPoP at the resource server (RFC 9449): a token bound to a client key (`cnf.jkt`) works only
//! under the DPoP scheme with a fresh proof by that key for this request (`htm`, `htu`, `iat`,
//! `ath`, a `jti` never seen); every misuse is a 401 with a `DPoP` challenge and its error
//! code; `auth.dpop` decides what unbound tokens may do; server nonces on request.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::helpers::{Resp, TestApp, spawn_with_issuer};
use crate::issuer::{TestKey, now};

/// A client's DPoP key and the proofs it makes.
pub struct Client {
    pub key: TestKey,
}

impl Client {
    pub fn new() -> Client {
        Client {
            key: TestKey::ec("dpop"),
        }
    }

    /// The public JWK as a proof header carries it.
    pub fn jwk(&self) -> Value {
        let mut jwk = self.key.jwk();
        let o = jwk.as_object_mut().unwrap();
        o.remove("kid");
        o.remove("use");
        jwk
    }

    /// RFC 7638 thumbprint of the key.
    pub fn jkt(&self) -> String {
        let j = self.jwk();
        let canonical = format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            j["crv"].as_str().unwrap(),
            j["x"].as_str().unwrap(),
            j["y"].as_str().unwrap()
        );
        URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            canonical.as_bytes(),
        ))
    }

    /// A proof with these claims over the defaults (POST to `htu`, now, a fresh jti, the
    /// token's hash); `null` members are left out.
    pub fn proof_with(&self, htu: &str, token: &str, over: Value, header_over: Value) -> String {
        let mut claims = json!({
            "jti": format!("{}-{}", now(), fresh()),
            "htm": "POST",
            "htu": htu,
            "iat": now(),
            "ath": ath(token),
        });
        merge(&mut claims, over);
        let mut header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk()});
        merge(&mut header, header_over);
        self.key.sign_raw(&header, &claims)
    }

    pub fn proof(&self, htu: &str, token: &str) -> String {
        self.proof_with(htu, token, json!({}), json!({}))
    }
}

fn merge(into: &mut Value, over: Value) {
    for (k, v) in over.as_object().unwrap() {
        if v.is_null() {
            into.as_object_mut().unwrap().remove(k);
        } else {
            into[k] = v.clone();
        }
    }
}

fn fresh() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

pub fn ath(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        token.as_bytes(),
    ))
}

/// A token of the app's issuer bound to `jkt`.
pub fn bound_token(app: &TestApp, sub: &str, jkt: &str) -> String {
    let mut claims = app.claims(sub, &[]);
    claims["cnf"] = json!({"jkt": jkt});
    app.rsa().sign(&claims)
}

/// A call of `fixture_whoami` with `Authorization: <scheme> <token>` and these DPoP headers.
pub async fn call(app: &TestApp, scheme: &str, token: &str, proofs: &[&str]) -> Resp {
    call_via(&app.client, app, scheme, token, proofs).await
}

/// [`call`] under `scheme` with one fresh proof of `client`'s for `token`.
async fn with_proof(app: &TestApp, scheme: &str, token: &str, client: &Client) -> Resp {
    call(app, scheme, token, &[&client.proof(&app.resource, token)]).await
}

/// [`call`] through `client` (its own connections).
pub async fn call_via(
    client: &reqwest::Client,
    app: &TestApp,
    scheme: &str,
    token: &str,
    proofs: &[&str],
) -> Resp {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "fixture_whoami", "arguments": {}}});
    let mut rb = client
        .post(format!("{}/mcp", app.base))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("authorization", format!("{scheme} {token}"));
    for p in proofs {
        rb = rb.header("dpop", *p);
    }
    app.send(rb.body(body.to_string())).await
}

/// Every `WWW-Authenticate` field of a response.
fn challenges(r: &Resp) -> Vec<String> {
    r.headers
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

/// A 401 whose DPoP challenge carries `error`.
fn assert_dpop_401(r: &Resp, error: &str, what: &str) {
    assert_eq!(r.status, 401, "{what}: {}", r.text);
    let all = challenges(r);
    assert!(
        all.iter()
            .any(|c| c.starts_with("DPoP ") && c.contains(&format!("error=\"{error}\""))),
        "{what}: {all:?}"
    );
    assert!(
        all.iter()
            .any(|c| c.starts_with("Bearer ") && c.contains("resource_metadata=")),
        "{what}: {all:?}"
    );
    assert_eq!(r.json()["error"], error, "{what}");
}

#[actix_web::test]
async fn a_bound_token_with_a_valid_proof_works_and_each_proof_is_accepted_once() {
    let app = spawn_with_issuer(&[]).await;
    let client = Client::new();
    let token = bound_token(&app, "ada", &client.jkt());
    let proof = client.proof(&app.resource, &token);
    let r = call(&app, "DPoP", &token, &[&proof]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["result"]["structuredContent"]["subject"], "ada");
    // The token is known now; a fresh proof still works, the same proof again does not.
    let r = with_proof(&app, "DPoP", &token, &client).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = call(&app, "DPoP", &token, &[&proof]).await;
    assert_dpop_401(&r, "invalid_dpop_proof", "replayed proof");
    // A new connection, the same replayed proof: still refused.
    let other = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = call_via(&other, &app, "DPoP", &token, &[&proof]).await;
    assert_dpop_401(&r, "invalid_dpop_proof", "replayed proof, new connection");
}

#[actix_web::test]
async fn proofs_that_do_not_match_the_request_are_refused() {
    let app = spawn_with_issuer(&[]).await;
    let client = Client::new();
    let token = bound_token(&app, "ada", &client.jkt());
    let other_url = app.resource.replace("/mcp", "/other");
    let cases: Vec<(&str, String)> = vec![
        (
            "wrong htm",
            client.proof_with(&app.resource, &token, json!({"htm": "GET"}), json!({})),
        ),
        (
            "wrong htu",
            client.proof_with(&other_url, &token, json!({}), json!({})),
        ),
        (
            "wrong ath",
            client.proof_with(
                &app.resource,
                &token,
                json!({"ath": ath("another")}),
                json!({}),
            ),
        ),
        (
            "no ath",
            client.proof_with(&app.resource, &token, json!({"ath": null}), json!({})),
        ),
        (
            "stale iat",
            client.proof_with(
                &app.resource,
                &token,
                json!({"iat": now() - 3600}),
                json!({}),
            ),
        ),
        (
            "future iat",
            client.proof_with(
                &app.resource,
                &token,
                json!({"iat": now() + 3600}),
                json!({}),
            ),
        ),
        (
            "no jti",
            client.proof_with(&app.resource, &token, json!({"jti": null}), json!({})),
        ),
        (
            "wrong typ",
            client.proof_with(&app.resource, &token, json!({}), json!({"typ": "JWT"})),
        ),
        (
            "hmac alg",
            client.proof_with(&app.resource, &token, json!({}), json!({"alg": "HS256"})),
        ),
        ("private jwk", {
            let mut jwk = client.jwk();
            jwk["d"] = json!("c2VjcmV0");
            client.proof_with(&app.resource, &token, json!({}), json!({"jwk": jwk}))
        }),
        (
            "no jwk",
            client.proof_with(&app.resource, &token, json!({}), json!({"jwk": null})),
        ),
        ("not a JWT", "not-a-proof".to_string()),
    ];
    for (what, proof) in &cases {
        let r = call(&app, "DPoP", &token, &[proof]).await;
        assert_dpop_401(&r, "invalid_dpop_proof", what);
    }
    // A proof with a query and fragment on htu names the same endpoint.
    let with_query = format!("{}?x=1#f", app.resource);
    let r = call(&app, "DPoP", &token, &[&client.proof(&with_query, &token)]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // No proof, two proofs.
    assert_dpop_401(
        &call(&app, "DPoP", &token, &[]).await,
        "invalid_dpop_proof",
        "no proof",
    );
    let (a, b) = (
        client.proof(&app.resource, &token),
        client.proof(&app.resource, &token),
    );
    assert_dpop_401(
        &call(&app, "DPoP", &token, &[&a, &b]).await,
        "invalid_dpop_proof",
        "two proofs",
    );
    // A valid proof by another key than the one the token is bound to.
    let thief = Client::new();
    let r = call(&app, "DPoP", &token, &[&thief.proof(&app.resource, &token)]).await;
    assert_dpop_401(&r, "invalid_token", "someone else's key");
}

#[actix_web::test]
async fn a_bound_token_as_bearer_is_refused_and_an_unbound_one_is_not_dpop() {
    let app = spawn_with_issuer(&[]).await;
    let client = Client::new();
    let token = bound_token(&app, "ada", &client.jkt());
    // As Bearer, first sight and after the token is known.
    let r = call(&app, "Bearer", &token, &[]).await;
    assert_dpop_401(&r, "invalid_token", "bound token as Bearer");
    assert_eq!(with_proof(&app, "DPoP", &token, &client).await.status, 200);
    let r = with_proof(&app, "Bearer", &token, &client).await;
    assert_dpop_401(&r, "invalid_token", "known bound token as Bearer");
    // An unbound token is fine as Bearer (auth.dpop = allowed), not under the DPoP scheme.
    let plain = app.token("bob", &[]);
    assert_eq!(call(&app, "Bearer", &plain, &[]).await.status, 200);
    let r = with_proof(&app, "DPoP", &plain, &client).await;
    assert_dpop_401(&r, "invalid_token", "unbound token as DPoP");
}

#[actix_web::test]
async fn required_mode_refuses_unbound_tokens_and_says_so_in_the_metadata() {
    let app = spawn_with_issuer(&[("GATEHOUSE_AUTH__DPOP", "required")]).await;
    let plain = app.token("bob", &[]);
    let r = call(&app, "Bearer", &plain, &[]).await;
    assert_dpop_401(&r, "invalid_token", "unbound token in required mode");
    let client = Client::new();
    let token = bound_token(&app, "ada", &client.jkt());
    let r = with_proof(&app, "DPoP", &token, &client).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let doc = app
        .get("/.well-known/oauth-protected-resource/mcp")
        .await
        .json();
    assert_eq!(doc["dpop_bound_access_tokens_required"], true);
    assert_eq!(
        doc["dpop_signing_alg_values_supported"],
        json!(["ES256", "RS256", "EdDSA"])
    );
}

#[actix_web::test]
async fn every_401_offers_both_schemes_and_cors_lets_browsers_use_dpop() {
    let app = spawn_with_issuer(&[("ALLOWED_ORIGINS", "https://app.example")]).await;
    let r = app.rpc(None, "ping", json!({})).await;
    assert_eq!(r.status, 401);
    let all = challenges(&r);
    assert!(
        all.iter()
            .any(|c| c.starts_with("Bearer ") && c.contains("resource_metadata=")),
        "{all:?}"
    );
    assert!(
        all.iter().any(|c| c == "DPoP algs=\"ES256 RS256 EdDSA\""),
        "{all:?}"
    );
    let doc = app
        .get("/.well-known/oauth-protected-resource/mcp")
        .await
        .json();
    assert_eq!(doc["dpop_bound_access_tokens_required"], false);
    // A preflight for a DPoP request is allowed, and the nonce header is readable.
    let pre = app
        .send(
            app.client
                .request(reqwest::Method::OPTIONS, format!("{}/mcp", app.base))
                .header("origin", "https://app.example")
                .header("access-control-request-method", "POST")
                .header(
                    "access-control-request-headers",
                    "authorization, dpop, content-type",
                ),
        )
        .await;
    assert_eq!(pre.status, 200, "{}", pre.text);
    let allowed = pre
        .header("access-control-allow-headers")
        .unwrap()
        .to_ascii_lowercase();
    assert!(allowed.contains("dpop"), "{allowed}");
    let r = app
        .send(
            app.mcp(None)
                .header("origin", "https://app.example")
                .body("{}"),
        )
        .await;
    let exposed = r
        .header("access-control-expose-headers")
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        exposed.contains("dpop-nonce") && exposed.contains("www-authenticate"),
        "{exposed}"
    );
    // With DPoP off, no DPoP challenge and no DPoP metadata.
    let off = spawn_with_issuer(&[("GATEHOUSE_AUTH__DPOP", "off")]).await;
    let r = off.rpc(None, "ping", json!({})).await;
    assert_eq!(challenges(&r).len(), 1);
    let doc = off
        .get("/.well-known/oauth-protected-resource/mcp")
        .await
        .json();
    assert!(doc.get("dpop_signing_alg_values_supported").is_none());
    let client = Client::new();
    let token = bound_token(&off, "ada", &client.jkt());
    let r = with_proof(&off, "DPoP", &token, &client).await;
    assert_eq!(r.status, 401);
}

#[actix_web::test]
async fn server_nonces_are_asked_for_then_accepted() {
    let app = spawn_with_issuer(&[("GATEHOUSE_AUTH__DPOP_NONCE", "true")]).await;
    let client = Client::new();
    let token = bound_token(&app, "ada", &client.jkt());
    let r = with_proof(&app, "DPoP", &token, &client).await;
    assert_dpop_401(&r, "use_dpop_nonce", "no nonce");
    let nonce = r.header("dpop-nonce").expect("a DPoP-Nonce header");
    let proof = client.proof_with(&app.resource, &token, json!({"nonce": nonce}), json!({}));
    let r = call(&app, "DPoP", &token, &[&proof]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.header("dpop-nonce").is_some());
    let wrong = client.proof_with(
        &app.resource,
        &token,
        json!({"nonce": "made-up"}),
        json!({}),
    );
    assert_dpop_401(
        &call(&app, "DPoP", &token, &[&wrong]).await,
        "use_dpop_nonce",
        "wrong nonce",
    );
}
