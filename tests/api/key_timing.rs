//! When keys arrive, as a soak with faults found it mattered: a key the issuer just published is
//! accepted within one fetch whatever the key-set TTL (only fetches for unknown key ids count
//! against the cooldown), and a starting instance binds its port only once the first key-set
//! fetch succeeded, or after `auth.startup_key_wait_secs` when the issuer does not answer.

use std::time::{Duration, Instant};

use crate::helpers::{settings, spawn_settings, spawn_with_issuer};
use crate::issuer::{TestIssuer, TestKey};

const PING: &str = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;

#[actix_web::test]
async fn a_newly_published_key_is_accepted_within_one_fetch_whatever_the_ttl() {
    // The TTL (10 s) is shorter than the cooldown (60 s): the periodic refresh must not use up
    // the early refetch an unknown key id is owed.
    let app = spawn_with_issuer(&[
        ("GATEHOUSE_AUTH__JWKS_TTL_SECS", "10"),
        ("GATEHOUSE_AUTH__JWKS_COOLDOWN_SECS", "60"),
    ])
    .await;
    let rsa2 = TestKey::rsa("rsa-2", 1);
    app.issuer().set_keys(&[app.rsa(), &rsa2]);
    let before = app.issuer().key_fetches();
    let fresh = rsa2.sign(&app.claims("new-key-user", &[]));
    let r = app.send(app.mcp(Some(&fresh)).body(PING)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(app.issuer().key_fetches(), before + 1);
    // That refetch was for an unknown key id: the next one waits for the cooldown (or the
    // periodic refresh), so forged key ids cannot make this instance hammer the issuer.
    let rsa3 = TestKey::rsa("rsa-3", 0);
    app.issuer().set_keys(&[app.rsa(), &rsa2, &rsa3]);
    let other = rsa3.sign(&app.claims("newer-key-user", &[]));
    assert_eq!(app.send(app.mcp(Some(&other)).body(PING)).await.status, 401);
    assert_eq!(app.issuer().key_fetches(), before + 1);
}

#[actix_web::test]
async fn the_port_is_bound_after_the_first_key_fetch() {
    let rsa = TestKey::rsa("rsa-1", 0);
    let issuer = TestIssuer::start(&[&rsa]).await;
    // A slow issuer: without the wait, the first requests would meet an instance without keys.
    issuer.set_delay(Duration::from_millis(500));
    let url = issuer.url.clone();
    let started = Instant::now();
    let app = spawn_settings(
        settings(&[
            ("OAUTH_ISSUER", url.as_str()),
            ("GATEHOUSE_AUTH__STARTUP_KEY_WAIT_SECS", "10"),
        ]),
        Some(issuer),
        Some(rsa),
        None,
    )
    .await;
    assert!(started.elapsed() >= Duration::from_millis(450));
    // No wait for readiness: the first request is served.
    let token = app.token("first-in-line", &[]);
    let r = app.send(app.mcp(Some(&token)).body(PING)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(app.get("/ready").await.status, 200);
}

#[actix_web::test]
async fn an_issuer_that_does_not_answer_delays_the_bind_only_so_long() {
    let rsa = TestKey::rsa("rsa-1", 0);
    let issuer = TestIssuer::start(&[&rsa]).await;
    issuer.set_down(true);
    let url = issuer.url.clone();
    let started = Instant::now();
    let app = spawn_settings(
        settings(&[
            ("OAUTH_ISSUER", url.as_str()),
            ("GATEHOUSE_AUTH__STARTUP_KEY_WAIT_SECS", "1"),
        ]),
        Some(issuer),
        Some(rsa),
        None,
    )
    .await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(950) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    // Bound after the wait, answering 503 as before until the keys come.
    let ready = app.get("/ready").await;
    assert_eq!(ready.status, 503);
    let token = app.token("too-early", &[]);
    let r = app.send(app.mcp(Some(&token)).body(PING)).await;
    assert_eq!(r.status, 503);
    assert!(r.header("retry-after").is_some());
    app.issuer().set_down(false);
    app.wait_ready().await;
    assert_eq!(app.send(app.mcp(Some(&token)).body(PING)).await.status, 200);
}
