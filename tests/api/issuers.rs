//! Several trusted issuers side by side (`OAUTH_ISSUERS`, `[[auth.issuers]]`): each token is
//! checked only against the issuer its `iss` names, with that issuer's keys; an unknown issuer
//! costs no fetch; the metadata lists every authorization server.

use serde_json::{Value, json};

use crate::helpers::{TestApp, config_dir, log_lines, spawn_settings, spawn_with_issuer};
use crate::issuer::{TestIssuer, TestKey, now};

fn claims(iss: &str, aud: &str, sub: &str) -> Value {
    let t = now();
    json!({"iss": iss, "sub": sub, "aud": aud, "exp": t + 300, "iat": t, "scopes": []})
}

fn subject(r: &crate::helpers::Resp) -> Value {
    r.json()["result"]["structuredContent"]["subject"].clone()
}

/// An app trusting its own issuer (keys `rsa-1` slot 0, `ec-1`) and a second one whose RSA key
/// has the same `kid` but other key material (`rsa-1` slot 1).
async fn two_issuers() -> (TestApp, TestIssuer, TestKey) {
    let other_key = TestKey::rsa("rsa-1", 1);
    let other = TestIssuer::start(&[&other_key]).await;
    let app = spawn_with_issuer(&[("OAUTH_ISSUERS", other.url.as_str())]).await;
    (app, other, other_key)
}

#[actix_web::test]
async fn tokens_of_two_issuers_work_side_by_side_each_with_its_own_keys() {
    let (app, other, other_key) = two_issuers().await;
    let first = app
        .rsa()
        .sign(&claims(&app.issuer().url, &app.resource, "ada"));
    let second = other_key.sign(&claims(&other.url, &app.resource, "bob"));
    let r = app
        .call_tool(Some(&first), "fixture_whoami", json!({}))
        .await;
    assert_eq!((r.status, subject(&r)), (200, json!("ada")), "{}", r.text);
    let r = app
        .call_tool(Some(&second), "fixture_whoami", json!({}))
        .await;
    assert_eq!((r.status, subject(&r)), (200, json!("bob")), "{}", r.text);

    // The kid both issuers use names a different key at each: a token claiming one issuer but
    // signed by the other's key of that kid is refused, both ways.
    let crossed = app
        .rsa()
        .sign(&claims(&other.url, &app.resource, "mallory"));
    let r = app.rpc(Some(&crossed), "ping", json!({})).await;
    assert_eq!(r.status, 401, "{}", r.text);
    let crossed = other_key.sign(&claims(&app.issuer().url, &app.resource, "mallory"));
    assert_eq!(app.rpc(Some(&crossed), "ping", json!({})).await.status, 401);
}

#[actix_web::test]
async fn an_unknown_issuer_is_refused_without_any_fetch() {
    let (app, other, _) = two_issuers().await;
    // Both key sets are in (the first request of each issuer fetched nothing more).
    let warm = app.token("ada", &[]);
    assert_eq!(app.rpc(Some(&warm), "ping", json!({})).await.status, 200);
    let before = (
        app.issuer().key_fetches() + app.issuer().discovery_fetches(),
        other.key_fetches() + other.discovery_fetches(),
    );
    let stranger = TestIssuer::start(&[]).await;
    for iss in [stranger.url.as_str(), "https://attacker.example", ""] {
        let t = app.rsa().sign(&claims(iss, &app.resource, "eve"));
        let r = app.rpc(Some(&t), "ping", json!({})).await;
        assert_eq!(r.status, 401, "{iss}: {}", r.text);
        assert!(
            r.header("www-authenticate")
                .unwrap()
                .contains("error=\"invalid_token\"")
        );
    }
    // A token with an unknown kid from an unknown issuer fetches nothing either.
    let mut header = app.rsa().header();
    header["kid"] = json!("never-seen");
    let t = app.rsa().sign_raw(
        &header,
        &claims("https://attacker.example", &app.resource, "eve"),
    );
    assert_eq!(app.rpc(Some(&t), "ping", json!({})).await.status, 401);
    let after = (
        app.issuer().key_fetches() + app.issuer().discovery_fetches(),
        other.key_fetches() + other.discovery_fetches(),
    );
    assert_eq!(before, after);
    assert_eq!(stranger.key_fetches() + stranger.discovery_fetches(), 0);
    assert_eq!(stranger.attacker_hits(), 0);
    assert!(
        log_lines()
            .iter()
            .any(|l| l.contains("iss names no trusted issuer"))
    );
}

#[actix_web::test]
async fn the_metadata_lists_every_authorization_server() {
    let (app, other, _) = two_issuers().await;
    let doc = app
        .get("/.well-known/oauth-protected-resource/mcp")
        .await
        .json();
    assert_eq!(
        doc["authorization_servers"],
        json!([app.issuer().url, other.url])
    );
}

/// A copy of the configuration folder whose development profile adds these lines.
fn config_with(extra: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "gatehouse-config-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["default.toml", "development.toml", "production.toml"] {
        std::fs::copy(config_dir().join(name), dir.join(name)).unwrap();
    }
    let dev = dir.join("development.toml");
    let mut text = std::fs::read_to_string(&dev).unwrap();
    text.push_str(extra);
    std::fs::write(&dev, text).unwrap();
    dir
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

#[actix_web::test]
async fn issuer_tables_give_each_issuer_its_own_audiences_and_algorithms() {
    let ec = TestKey::ec("shared-kid");
    let second = TestIssuer::start(&[&ec]).await;
    let rsa = TestKey::rsa("rsa-1", 0);
    let first = TestIssuer::start(&[&rsa]).await;
    let dir = config_with(&format!(
        "\n[[auth.issuers]]\nissuer = \"{}\"\njwks_uri = \"{}/keys\"\naudiences = [\"urn:tenant-b\"]\nalgorithms = [\"ES256\"]\n",
        second.url, second.url
    ));
    let s = gatehouse::config::Settings::load(
        &[
            ("OAUTH_ISSUER", first.url.as_str()),
            ("GATEHOUSE_SERVER__PORT", "0"),
            ("GATEHOUSE_SERVER__WORKERS", "1"),
            ("GATEHOUSE_AUTH__STARTUP_KEY_WAIT_SECS", "0"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        &dir,
    )
    .expect("settings with an issuer table load");
    let app = spawn_settings(s, Some(first), Some(rsa), None).await;

    // The table's issuer takes only its own audience, and ES256.
    let ok = ec.sign(&claims(&second.url, "urn:tenant-b", "bea"));
    let r = app.call_tool(Some(&ok), "fixture_whoami", json!({})).await;
    assert_eq!((r.status, subject(&r)), (200, json!("bea")), "{}", r.text);
    let wrong_aud = ec.sign(&claims(&second.url, &app.resource, "bea"));
    assert_eq!(
        app.rpc(Some(&wrong_aud), "ping", json!({})).await.status,
        401
    );
    // The single issuer keeps the shared audience (the resource) and refuses the table's.
    let first_ok = app
        .rsa()
        .sign(&claims(&app.issuer().url, &app.resource, "ada"));
    assert_eq!(
        app.rpc(Some(&first_ok), "ping", json!({})).await.status,
        200
    );
    let first_b = app
        .rsa()
        .sign(&claims(&app.issuer().url, "urn:tenant-b", "ada"));
    assert_eq!(app.rpc(Some(&first_b), "ping", json!({})).await.status, 401);
    let doc = app
        .get("/.well-known/oauth-protected-resource/mcp")
        .await
        .json();
    assert_eq!(
        doc["authorization_servers"],
        json!([app.issuer().url, second.url])
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_issuer_named_twice_or_a_bad_table_is_a_startup_error() {
    let dir = config_with("\n[[auth.issuers]]\nissuer = \"https://a.example\"\n");
    let env = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let e = gatehouse::config::Settings::load(&env(&[("OAUTH_ISSUER", "https://a.example")]), &dir)
        .unwrap_err();
    assert!(e.setting.contains("auth.issuers[0].issuer"), "{e}");
    assert!(e.problem.contains("already a trusted issuer"), "{e}");
    let _ = std::fs::remove_dir_all(dir);
    let dir = config_with(
        "\n[[auth.issuers]]\nissuer = \"https://b.example\"\nalgorithms = [\"HS256\"]\n",
    );
    let e = gatehouse::config::Settings::load(&env(&[]), &dir).unwrap_err();
    assert!(e.setting.contains("auth.issuers[0].algorithms"), "{e}");
    let _ = std::fs::remove_dir_all(dir);
    // Only issuers from the list, in production: no single issuer needed.
    let dir = config_with("");
    let s = gatehouse::config::Settings::load(
        &env(&[
            ("APP_ENV", "production"),
            ("OAUTH_ISSUERS", "https://a.example, https://b.example/"),
            ("PUBLIC_URL", "https://mcp.example"),
        ]),
        &dir,
    )
    .unwrap();
    let names: Vec<&str> = s.auth.trusted.iter().map(|t| t.issuer.as_str()).collect();
    assert_eq!(names, ["https://a.example", "https://b.example/"]);
    let _ = std::fs::remove_dir_all(dir);
}
