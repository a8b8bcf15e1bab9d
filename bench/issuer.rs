//! The benchmark's issuer: the black-box tests' local OAuth issuer (RSA-2048 and P-256 keys, a
//! JWKS over HTTP) plus bulk token minting, so `bench/run.sh` can measure first-seen tokens
//! (a signature check per request) and a cache flooded with distinct valid tokens.
//!
//! `issuer OUT_DIR AUDIENCE ES256_COUNT RS256_COUNT [EXTRA_COUNT]`: writes `OUT_DIR/url`,
//! `OUT_DIR/es256.txt` and `OUT_DIR/rs256.txt` (one token per line, each with its own subject),
//! and, for the token-kind cases, `OUT_DIR/opaque.txt` (EXTRA_COUNT opaque tokens, each active
//! at the issuer's introspection endpoint), `OUT_DIR/bound.txt` (one token bound to a DPoP
//! key), `OUT_DIR/proofs.txt` (EXTRA_COUNT fresh DPoP proofs for it, `htu` = AUDIENCE) and
//! `OUT_DIR/stranger.txt` (a token whose `iss` no server trusts); then serves the key set and
//! the introspection endpoint until killed.

#[path = "../tests/api/issuer.rs"]
#[allow(dead_code)]
mod issuer;

use issuer::{TestIssuer, TestKey, now};
use serde_json::json;

fn mint(key: &TestKey, url: &str, audience: &str, prefix: &str, count: usize) -> String {
    let exp = now() + 3600;
    let mut out = String::with_capacity(count * 400);
    for i in 0..count {
        out.push_str(&key.sign(&json!({
            "iss": url, "sub": format!("{prefix}-{i}"), "aud": audience,
            "iat": now(), "exp": exp, "scopes": ["admin"], "oid": "bench",
        })));
        out.push('\n');
    }
    out
}

#[actix_web::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (dir, audience, es, rs, extra) = match args.as_slice() {
        [_, dir, audience, es, rs] => (dir, audience, es, rs, "0"),
        [_, dir, audience, es, rs, extra] => (dir, audience, es, rs, extra.as_str()),
        _ => {
            eprintln!("usage: issuer OUT_DIR AUDIENCE ES256_COUNT RS256_COUNT [EXTRA_COUNT]");
            std::process::exit(2);
        }
    };
    let extra: usize = extra.parse().unwrap();
    let (es, rs): (usize, usize) = (es.parse().unwrap(), rs.parse().unwrap());
    let rsa = TestKey::rsa("bench-rs", 0);
    let ec = TestKey::ec("bench-es");
    let server = TestIssuer::start(&[&rsa, &ec]).await;
    let dir = std::path::Path::new(dir);
    std::fs::write(
        dir.join("es256.txt"),
        mint(&ec, &server.url, audience, "es", es),
    )
    .unwrap();
    std::fs::write(
        dir.join("rs256.txt"),
        mint(&rsa, &server.url, audience, "rs", rs),
    )
    .unwrap();
    token_kinds(&server, &ec, dir, audience, extra);
    std::fs::write(dir.join("url"), &server.url).unwrap();
    std::future::pending::<()>().await;
}

/// The token-kind cases' files: opaque tokens (active at the endpoint), a DPoP-bound token
/// with its proofs, and a token from an issuer nobody trusts.
fn token_kinds(
    server: &TestIssuer,
    ec: &TestKey,
    dir: &std::path::Path,
    audience: &str,
    count: usize,
) {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let sha =
        |s: &str| b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, s.as_bytes()).as_ref());
    let exp = now() + 3600;
    let mut opaque = String::new();
    for i in 0..count.max(1) {
        let token = format!("opq-bench-{i}-{}", now());
        server.set_answer(
            &token,
            json!({"active": true, "iss": server.url, "aud": audience, "sub": format!("op-{i}"),
                   "scope": "admin", "exp": exp}),
        );
        opaque.push_str(&token);
        opaque.push('\n');
    }
    std::fs::write(dir.join("opaque.txt"), opaque).unwrap();
    let client = TestKey::ec("bench-dpop");
    let mut jwk = client.jwk();
    jwk.as_object_mut()
        .unwrap()
        .retain(|k, _| ["kty", "crv", "x", "y"].contains(&k.as_str()));
    let canonical = format!(
        r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
        jwk["x"].as_str().unwrap(),
        jwk["y"].as_str().unwrap()
    );
    let bound = ec.sign(&json!({
        "iss": server.url, "sub": "dpop-user", "aud": audience, "iat": now(), "exp": exp,
        "scopes": ["admin"], "cnf": {"jkt": sha(&canonical)},
    }));
    let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk});
    let mut proofs = String::new();
    for i in 0..count.max(1) {
        proofs.push_str(&client.sign_raw(
            &header,
            &json!({"jti": format!("p{i}-{}", now()), "htm": "POST", "htu": audience,
                    "iat": now(), "ath": sha(&bound)}),
        ));
        proofs.push('\n');
    }
    std::fs::write(dir.join("bound.txt"), format!("{bound}\n")).unwrap();
    std::fs::write(dir.join("proofs.txt"), proofs).unwrap();
    let stranger = ec.sign(&json!({
        "iss": "https://stranger.example", "sub": "x", "aud": audience, "iat": now(), "exp": exp,
    }));
    std::fs::write(dir.join("stranger.txt"), format!("{stranger}\n")).unwrap();
}
