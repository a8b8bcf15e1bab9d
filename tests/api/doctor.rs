//! `gatehouse doctor` as a process against real issuers and misconfigurations: what it prints,
//! its exit code, and that it never prints a token.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::json;

use crate::issuer::{TestIssuer, TestKey, now};

/// Runs `gatehouse doctor [--token -]` with these variables; returns (exit code, stdout).
async fn doctor(vars: Vec<(String, String)>, token: Option<String>) -> (i32, String) {
    tokio::task::spawn_blocking(move || {
        let key_dir = std::env::temp_dir().join("gatehouse-test-dev-keys");
        let mut c = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
        c.current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("GATEHOUSE_AUTH__DEV_KEY_DIR", key_dir)
            .arg("doctor")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &vars {
            c.env(k, v);
        }
        if token.is_some() {
            c.args(["--token", "-"]);
        }
        let mut child = c.spawn().unwrap();
        if let Some(t) = &token {
            child.stdin.take().unwrap().write_all(t.as_bytes()).unwrap();
        } else {
            drop(child.stdin.take());
        }
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        (out.status.code().unwrap_or(-1), text)
    })
    .await
    .unwrap()
}

fn vars(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const RESOURCE: &str = "https://mcp.example.com/mcp";

fn claims(issuer: &str, aud: &str, exp: i64) -> serde_json::Value {
    json!({"iss": issuer, "sub": "alice", "aud": aud, "exp": exp, "iat": now() - 10,
           "scopes": ["reports:read"], "oid": "org-7", "client_id": "c1"})
}

#[actix_web::test]
async fn doctor_reports_a_working_setup_and_explains_a_good_token() {
    let rsa = TestKey::rsa("rsa-1", 0);
    let issuer = TestIssuer::start(&[&rsa]).await;
    let env = vars(&[
        ("OAUTH_ISSUER", &issuer.url),
        ("PUBLIC_URL", "https://mcp.example.com"),
    ]);
    let (code, out) = doctor(env.clone(), None).await;
    assert_eq!(code, 0, "{out}");
    for needle in [
        "profile:",
        "development",
        &format!("MCP endpoint:         {RESOURCE}"),
        "https://mcp.example.com/.well-known/oauth-protected-resource/mcp",
        &format!("{}/keys", issuer.url),
        "1 usable key(s): rsa-1 RS256",
        &format!("accepted audiences:   {RESOURCE}"),
        "RS256, ES256",
        "allowed hosts:",
        "trusted proxy:        none",
        "rate limits:",
        "OK: serving would work",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in\n{out}");
    }
    let token = rsa.sign(&claims(&issuer.url, RESOURCE, now() + 300));
    let (code, out) = doctor(env, Some(token.clone())).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("ACCEPTED"), "{out}");
    assert!(out.contains("subject:          alice"), "{out}");
    assert!(out.contains("organization:     org-7"), "{out}");
    assert!(
        out.contains("may call:") && out.contains("greet_user"),
        "{out}"
    );
    assert!(
        out.contains("may not call:     admin_action (needs admin)"),
        "{out}"
    );
    let signature = token.rsplit('.').next().unwrap();
    assert!(
        !out.contains(signature) && !out.contains(&token[..40]),
        "{out}"
    );
}

#[actix_web::test]
async fn doctor_explains_an_audience_mismatch_and_an_expired_token() {
    let rsa = TestKey::rsa("rsa-1", 0);
    let issuer = TestIssuer::start(&[&rsa]).await;
    let env = vars(&[
        ("OAUTH_ISSUER", &issuer.url),
        ("PUBLIC_URL", "https://mcp.example.com"),
    ]);
    let slash = rsa.sign(&claims(
        &issuer.url,
        "https://mcp.example.com/mcp/",
        now() + 300,
    ));
    let (code, out) = doctor(env.clone(), Some(slash)).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("REFUSED"), "{out}");
    assert!(
        out.contains(r#"received ["https://mcp.example.com/mcp/"]"#),
        "{out}"
    );
    assert!(out.contains("trailing slash"), "{out}");
    let expired = rsa.sign(&claims(&issuer.url, RESOURCE, now() - 3600));
    let (code, out) = doctor(env.clone(), Some(expired)).await;
    assert_eq!(code, 1);
    assert!(out.contains("expired 36"), "{out}");
    let stranger = TestKey::rsa("rsa-x", 1).sign(&claims(&issuer.url, RESOURCE, now() + 300));
    let (_, out) = doctor(env.clone(), Some(stranger)).await;
    assert!(
        out.contains(r#"kid "rsa-x" is not in the issuer's key set"#),
        "{out}"
    );
    let wrong_iss = rsa.sign(&claims("https://other.example", RESOURCE, now() + 300));
    let (_, out) = doctor(env, Some(wrong_iss)).await;
    assert!(
        out.contains(&format!(
            r#"iss: expected "{}", received "https://other.example""#,
            issuer.url
        )),
        "{out}"
    );
    // An audience configured with a trailing slash is warned about before any token is seen.
    let (_, out) = doctor(
        vars(&[
            ("OAUTH_ISSUER", &issuer.url),
            ("PUBLIC_URL", "https://mcp.example.com"),
            ("EXPECTED_AUDIENCE", "https://mcp.example.com/mcp/"),
        ]),
        None,
    )
    .await;
    assert!(
        out.contains("warning: audience") && out.contains("trailing slash"),
        "{out}"
    );
}

#[actix_web::test]
async fn doctor_fails_on_missing_or_malformed_metadata() {
    let rsa = TestKey::rsa("rsa-1", 0);
    let issuer = TestIssuer::start(&[&rsa]).await;
    // The issuer's metadata is not where discovery looks.
    let (code, out) = doctor(
        vars(&[(
            "OAUTH_ISSUER",
            &format!("{}/tenant-without-metadata", issuer.url),
        )]),
        None,
    )
    .await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("COULD NOT BE FETCHED"), "{out}");
    assert!(out.contains("FAIL"), "{out}");
    // Malformed protected resource metadata stops before anything else, naming the setting.
    let (code, out) = doctor(
        vars(&[
            ("OAUTH_ISSUER", &issuer.url),
            ("PROTECTED_RESOURCE_METADATA", "{not json"),
        ]),
        None,
    )
    .await;
    assert_eq!(code, 1);
    assert!(
        out.contains("FAIL") && out.contains("PROTECTED_RESOURCE_METADATA"),
        "{out}"
    );
    // Metadata naming another resource is warned about.
    let doc =
        json!({"resource": "https://elsewhere.example/mcp", "authorization_servers": [issuer.url]})
            .to_string();
    let (_, out) = doctor(
        vars(&[
            ("OAUTH_ISSUER", &issuer.url),
            ("PROTECTED_RESOURCE_METADATA", &doc),
        ]),
        None,
    )
    .await;
    assert!(
        out.contains("warning: PROTECTED_RESOURCE_METADATA names resource"),
        "{out}"
    );
    // A key set URL that redirects is named as the setting to fix.
    let (code, out) = doctor(
        vars(&[
            ("OAUTH_ISSUER", &issuer.url),
            ("OAUTH_JWKS_URI", &format!("{}/moved-keys", issuer.url)),
        ]),
        None,
    )
    .await;
    assert_eq!(code, 1);
    assert!(
        out.contains("redirect") && out.contains("OAUTH_JWKS_URI"),
        "{out}"
    );
}

#[actix_web::test]
async fn doctor_gives_readable_reasons_and_only_the_hint_that_belongs_to_them() {
    let rsa = TestKey::rsa("rsa-1", 0);
    let issuer = TestIssuer::start(&[&rsa]).await;
    let env = vars(&[
        ("OAUTH_ISSUER", &issuer.url),
        ("PUBLIC_URL", "https://mcp.example.com"),
    ]);
    // Wrong issuer and wrong audience at once: the server refuses for the issuer, and only
    // the issuer's hint is printed.
    let both = rsa.sign(&claims(
        "https://other.example",
        "https://elsewhere.example",
        now() + 300,
    ));
    let (code, out) = doctor(env.clone(), Some(both)).await;
    assert_eq!(code, 1);
    assert!(
        out.contains("REFUSED: iss is not the configured issuer"),
        "{out}"
    );
    assert!(out.contains("- iss: expected"), "{out}");
    assert!(!out.contains("- aud:"), "{out}");
    let too_long = format!(
        "{}.{}.{}",
        "a".repeat(4000),
        "b".repeat(4000),
        "c".repeat(400)
    );
    let (_, out) = doctor(env.clone(), Some(too_long)).await;
    assert!(
        out.contains("REFUSED: the token is longer than 8192 bytes"),
        "{out}"
    );
    for type_name in [
        "TooLong",
        "WrongIssuer",
        "NotCompactJws",
        "BadHeader",
        "UnknownKey",
    ] {
        assert!(!out.contains(type_name), "{out}");
    }
    let no_sub = {
        let mut c = claims(&issuer.url, RESOURCE, now() + 300);
        c["sub"] = json!("\u{200B}");
        rsa.sign(&c)
    };
    let (_, out) = doctor(env, Some(no_sub)).await;
    assert!(
        out.contains("REFUSED: no subject") && out.contains("blank"),
        "{out}"
    );
}

#[actix_web::test]
async fn doctor_lists_every_issuer_and_explains_opaque_and_bound_tokens() {
    use crate::issuer::INTROSPECTION_CLIENT;
    let rsa = TestKey::rsa("rsa-1", 0);
    let issuer = TestIssuer::start(&[&rsa]).await;
    let other = TestIssuer::start(&[&TestKey::ec("ec-9")]).await;
    let env = vars(&[
        ("OAUTH_ISSUER", &issuer.url),
        ("OAUTH_ISSUERS", &other.url),
        ("PUBLIC_URL", "https://mcp.example.com"),
        ("GATEHOUSE_AUTH__INTROSPECTION", "opaque"),
        ("SK_CLIENT_ID", INTROSPECTION_CLIENT.0),
        ("SK_CLIENT_SECRET", INTROSPECTION_CLIENT.1),
    ]);
    let (code, out) = doctor(env.clone(), None).await;
    assert_eq!(code, 0, "{out}");
    for needle in [
        format!("issuers:              {}, {}", issuer.url, other.url),
        format!("{}/keys", other.url),
        "1 usable key(s): ec-9 ES256".into(),
        format!("introspection:        {}/introspect: answers", issuer.url),
        "credentials accepted".into(),
        "opaque tokens by introspection".into(),
    ] {
        assert!(out.contains(&needle), "missing {needle:?} in\n{out}");
    }
    assert!(!out.contains(INTROSPECTION_CLIENT.1), "{out}");
    // An opaque token: what the endpoint said, then who it is.
    issuer.set_answer(
        "opaque-doctor-token",
        json!({"active": true, "iss": issuer.url, "aud": RESOURCE, "sub": "alice",
               "scope": "reports:read", "exp": now() + 300}),
    );
    let (code, out) = doctor(env.clone(), Some("opaque-doctor-token".into())).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("an opaque token, checked by introspection"),
        "{out}"
    );
    assert!(
        out.contains("active=true") && out.contains("sub=\"alice\""),
        "{out}"
    );
    assert!(
        out.contains("ACCEPTED") && out.contains("subject:          alice"),
        "{out}"
    );
    let (code, out) = doctor(env.clone(), Some("revoked-token".into())).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("active false") && out.contains("not active"),
        "{out}"
    );
    // A DPoP-bound JWT, and a machine client's token without sub.
    let mut bound = claims(&issuer.url, RESOURCE, now() + 300);
    bound["cnf"] = json!({"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"});
    let (code, out) = doctor(env.clone(), Some(rsa.sign(&bound))).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("DPoP-bound:       to key 0ZcOCORZNYy"),
        "{out}"
    );
    let mut m2m = claims(&issuer.url, RESOURCE, now() + 300);
    m2m.as_object_mut().unwrap().remove("sub");
    let (_, out) = doctor(env, Some(rsa.sign(&m2m))).await;
    assert!(
        out.contains("a machine client (no sub; its client_id)"),
        "{out}"
    );
}
