//! Fuzz target: the whole token validator against a real signing key (the development
//! issuer's). Invariants: a token the target mints for the fuzzer's subject validates (unless
//! the subject is blank, which must be refused) and names that subject; the same token with any
//! one byte changed never validates; and an arbitrary string never validates.
//!
//! Input: a first byte 0 means "the rest is a token as is"; otherwise the next two bytes pick
//! the byte to change and the rest is the subject.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use gatehouse::auth::dev_issuer::{DevIssuer, TokenRequest};
use gatehouse::auth::jwks::KeyStore;
use gatehouse::auth::validator::{TokenValidator, ValidatorOptions};
use gatehouse::auth::verifier::{TrustedCheck, Verifier};
use gatehouse::config::Introspection;
use jsonwebtoken::Algorithm;
use libfuzzer_sys::fuzz_target;

const ISSUER: &str = "https://issuer.test";
const AUDIENCE: &str = "https://mcp.test/mcp";

struct Fixture {
    issuer: DevIssuer,
    validator: Verifier,
    rt: tokio::runtime::Runtime,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("gatehouse-fuzz-key-{}", std::process::id()));
        let issuer = DevIssuer::load_or_create(&dir, ISSUER.into()).unwrap();
        let validator = TokenValidator::new(ValidatorOptions {
            issuer: ISSUER.into(),
            audiences: vec![AUDIENCE.into()],
            algorithms: vec![Algorithm::RS256, Algorithm::ES256],
            leeway: 30,
            require_at_jwt_typ: false,
            keys: KeyStore::new_static(issuer.key_set()),
            max_lifetime: 0,
            scope_implies: Default::default(),
            subject_claims: vec!["sub".into(), "client_id".into()],
        });
        let validator = Verifier::new(
            vec![TrustedCheck {
                validator,
                introspector: None,
            }],
            Introspection::Off,
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        Fixture {
            issuer,
            validator,
            rt,
        }
    })
}

/// Characters a token is made of; a changed byte takes the next one (never itself).
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    match data {
        [0, rest @ ..] => {
            if let Ok(token) = std::str::from_utf8(rest) {
                assert!(f.rt.block_on(f.validator.validate(token)).is_err());
            }
        }
        [_, a, b, rest @ ..] => {
            let subject: String = String::from_utf8_lossy(rest).chars().take(64).collect();
            let token = f.issuer.mint(&TokenRequest {
                subject: &subject,
                client: None,
                scopes: &["admin".to_string()],
                organization: None,
                audience: &[AUDIENCE.to_string()],
                ttl: Duration::from_secs(300),
            });
            let verdict = f.rt.block_on(f.validator.validate(&token));
            if gatehouse::text::blank(&subject) {
                assert!(verdict.is_err(), "a blank subject validated");
            } else {
                let identity = verdict.expect("a token minted by the trusted key validates");
                assert_eq!(identity.subject(), subject);
            }
            let mut changed = token.into_bytes();
            let at = usize::from(u16::from_le_bytes([*a, *b])) % changed.len();
            let i = ALPHABET
                .iter()
                .position(|c| *c == changed[at])
                .unwrap_or(0);
            changed[at] = ALPHABET[(i + 1) % ALPHABET.len()];
            let changed = String::from_utf8(changed).unwrap();
            assert!(
                f.rt.block_on(f.validator.validate(&changed)).is_err(),
                "a token with byte {at} changed validated"
            );
        }
        _ => {}
    }
});
