//! Fuzz target: arbitrary strings through the whole token validator with a fixed key set.
//! Invariant: nothing the fuzzer builds ever validates.
#![no_main]

use std::sync::OnceLock;

use gatehouse::auth::jwks::{KeyStore, parse_jwks};
use gatehouse::auth::validator::{TokenValidator, ValidatorOptions};
use jsonwebtoken::Algorithm;
use libfuzzer_sys::fuzz_target;

// The P-256 public key of RFC 7515 appendix A.3 (an arbitrary fixed key).
const JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;

fn validator() -> &'static (TokenValidator, tokio::runtime::Runtime) {
    static V: OnceLock<(TokenValidator, tokio::runtime::Runtime)> = OnceLock::new();
    V.get_or_init(|| {
        let set = parse_jwks(JWKS.as_bytes(), &[Algorithm::ES256]).unwrap();
        let v = TokenValidator::new(ValidatorOptions {
            issuer: "https://issuer.test".into(),
            audiences: vec!["https://mcp.test/mcp".into()],
            algorithms: vec![Algorithm::RS256, Algorithm::ES256],
            leeway: 30,
            require_at_jwt_typ: false,
            keys: KeyStore::new_static(set),
            max_lifetime: 0,
            scope_implies: Default::default(),
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        (v, rt)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let (v, rt) = validator();
    assert!(rt.block_on(v.validate(token)).is_err());
});
