//! Fuzz target: key set documents. Never panics, never yields an HMAC key, never a key outside
//! the allowed algorithms.
#![no_main]

use gatehouse::auth::jwks::parse_jwks;
use jsonwebtoken::{Algorithm, AlgorithmFamily};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let allowed = [Algorithm::RS256, Algorithm::ES256];
    if let Ok(set) = parse_jwks(data, &allowed) {
        for k in &set.keys {
            assert!(allowed.contains(&k.alg));
            assert_ne!(k.key.family(), AlgorithmFamily::Hmac);
        }
    }
});
