//! The benchmark's issuer: the black-box tests' local OAuth issuer (RSA-2048 and P-256 keys, a
//! JWKS over HTTP) plus bulk token minting, so `bench/run.sh` can measure first-seen tokens
//! (a signature check per request) and a cache flooded with distinct valid tokens.
//!
//! `issuer OUT_DIR AUDIENCE ES256_COUNT RS256_COUNT`: writes `OUT_DIR/url`, `OUT_DIR/es256.txt`
//! and `OUT_DIR/rs256.txt` (one token per line, each with its own subject), then serves the key
//! set until killed.

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
    let [_, dir, audience, es, rs] = args.as_slice() else {
        eprintln!("usage: issuer OUT_DIR AUDIENCE ES256_COUNT RS256_COUNT");
        std::process::exit(2);
    };
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
    std::fs::write(dir.join("url"), &server.url).unwrap();
    std::future::pending::<()>().await;
}
