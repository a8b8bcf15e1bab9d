//! DPoP at the resource server (RFC 9449): the proof a request carries in its `DPoP` header
//! checked (type, algorithm, a public `jwk`, signature, `htm`, `htu`, `iat`, `ath`, an optional
//! server nonce), its `jti` accepted once (in Redis when there is one, so a proof replayed to
//! another instance is refused), and the token's binding (`cnf.jkt`) compared with the proof
//! key's RFC 7638 thumbprint. Which tokens must be bound is `auth.dpop`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};

use super::Identity;
use super::bearer::Scheme;
use super::validator::{b64_json, is_segment};
use crate::budget::Shared;
use crate::config::{DpopMode, RedisDown};

/// A proof longer than this is refused before parsing.
const MAX_PROOF_BYTES: usize = 8 * 1024;
/// Proof `jti`s remembered in memory at most (past it, the oldest expired ones go first).
const MAX_SEEN: usize = 200_000;

/// Why a request's DPoP proof or binding is refused: each becomes a 401 with a `DPoP`
/// challenge carrying its `error` code (RFC 9449 section 7.1), or a 503.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DpopRefusal {
    /// The proof is missing, malformed, or does not match the request (`invalid_dpop_proof`).
    InvalidProof(&'static str),
    /// The token's binding does not allow this use (`invalid_token`).
    Binding(&'static str),
    /// The proof lacks the current server nonce (`use_dpop_nonce`, with a `DPoP-Nonce`).
    UseNonce(String),
    /// The shared store did not answer and `rate_limit.redis_down = refuse`.
    StoreDown,
}

/// The resource server's DPoP policy and its memory of proofs already used.
pub struct Dpop {
    mode: DpopMode,
    algorithms: Vec<Algorithm>,
    max_age: u64,
    leeway: u64,
    /// The public URL of the MCP endpoint, as `htu` must name it.
    htu: url::Url,
    nonce_key: Option<[u8; 32]>,
    seen: Mutex<HashMap<u128, u64>>,
    shared: Option<Arc<Shared>>,
}

/// What building the policy needs.
pub struct DpopOptions {
    pub mode: DpopMode,
    pub algorithms: Vec<Algorithm>,
    pub max_age: u64,
    pub leeway: u64,
    pub htu: url::Url,
    /// `auth.dpop_nonce`: nonces derived from this secret (shared by every instance when it is
    /// `mcp.state_key`), one per `max_age` window.
    pub nonce: Option<Vec<u8>>,
    pub shared: Option<Arc<Shared>>,
}

impl Dpop {
    pub fn new(o: DpopOptions) -> Dpop {
        let nonce_key = o.nonce.map(|secret| {
            let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
            ctx.update(b"gatehouse dpop nonce\0");
            ctx.update(&secret);
            let mut key = [0u8; 32];
            key.copy_from_slice(ctx.finish().as_ref());
            key
        });
        Dpop {
            mode: o.mode,
            algorithms: o.algorithms,
            max_age: o.max_age,
            leeway: o.leeway,
            htu: o.htu,
            nonce_key,
            seen: Mutex::new(HashMap::new()),
            shared: o.shared,
        }
    }

    pub fn mode(&self) -> DpopMode {
        self.mode
    }

    /// `algs` of the `DPoP` challenge: the accepted proof algorithms, space-separated.
    pub fn algs(&self) -> String {
        let names: Vec<String> = self.algorithms.iter().map(|a| format!("{a:?}")).collect();
        names.join(" ")
    }

    /// What an identity presented under `scheme` needs: `Ok(false)` nothing more, `Ok(true)`
    /// a valid proof by its key, `Err` refused whatever the proof (a bound token as Bearer, an
    /// unbound one where binding is required or under the DPoP scheme).
    pub fn needs_proof(&self, identity: &Identity, scheme: Scheme) -> Result<bool, DpopRefusal> {
        let bound = identity.confirmation().is_some();
        match (self.mode, scheme, bound) {
            (DpopMode::Off, Scheme::Bearer, false) => Ok(false),
            (DpopMode::Off, _, _) => Err(DpopRefusal::Binding(
                "This server does not accept DPoP-bound tokens",
            )),
            (DpopMode::Allowed, Scheme::Bearer, false) => Ok(false),
            (_, Scheme::Bearer, true) => Err(DpopRefusal::Binding(
                "A DPoP-bound token must be sent with the DPoP scheme and a DPoP proof",
            )),
            (DpopMode::Required, Scheme::Bearer, false) => Err(DpopRefusal::Binding(
                "This server requires DPoP-bound tokens",
            )),
            (_, Scheme::Dpop, false) => Err(DpopRefusal::Binding(
                "The token is not DPoP-bound: send it with the Bearer scheme",
            )),
            (_, Scheme::Dpop, true) => Ok(true),
        }
    }

    /// The current server nonce, when `auth.dpop_nonce` is on (for the `DPoP-Nonce` header).
    pub fn current_nonce(&self) -> Option<String> {
        let now = jsonwebtoken::get_current_timestamp();
        self.nonce_key
            .map(|key| nonce_for(&key, now / self.max_age))
    }

    /// Checks `proof` (the request's one `DPoP` header) for a request with `method` carrying
    /// `token`, bound to `identity`'s key; then accepts its `jti` once.
    pub async fn check(
        &self,
        proof: Option<&str>,
        method: &str,
        token: &str,
        identity: &Identity,
    ) -> Result<(), DpopRefusal> {
        let proof = proof.ok_or(DpopRefusal::InvalidProof("A DPoP proof is required"))?;
        let now = jsonwebtoken::get_current_timestamp();
        let (jkt, name) = self.verify(proof, method, token, now)?;
        if identity.confirmation() != Some(jkt.as_str()) {
            return Err(DpopRefusal::Binding(
                "The DPoP proof's key is not the key the token is bound to",
            ));
        }
        self.first_use(name, now).await
    }

    /// Whether this instance accepted the proof named `name` within its window.
    fn seen_here(&self, name: u128, now: u64) -> bool {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.get(&name).is_some_and(|u| *u > now)
    }

    /// Everything about a proof but its `jti`'s novelty on the other instances: its key's
    /// thumbprint and its name among used proofs ([`proof_name`]). A proof this instance
    /// already accepted is refused before its signature is checked (a replay costs a lookup,
    /// not a verification).
    fn verify(
        &self,
        proof: &str,
        method: &str,
        token: &str,
        now: u64,
    ) -> Result<(String, u128), DpopRefusal> {
        let bad = DpopRefusal::InvalidProof;
        if proof.len() > MAX_PROOF_BYTES {
            return Err(bad("The DPoP proof is too long"));
        }
        let parts: Vec<&str> = proof.split('.').collect();
        if parts.len() != 3 || !parts.iter().all(|p| is_segment(p)) {
            return Err(bad("The DPoP proof is not a JWT"));
        }
        let Some(Value::Object(header)) = b64_json(parts[0]) else {
            return Err(bad("The DPoP proof's header is not a JSON object"));
        };
        let typ = header.get("typ").and_then(Value::as_str);
        if !typ.is_some_and(|t| t.eq_ignore_ascii_case("dpop+jwt")) || header.contains_key("crit") {
            return Err(bad("The DPoP proof's typ must be dpop+jwt"));
        }
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .and_then(crate::auth::asymmetric_algorithm)
            .filter(|a| self.algorithms.contains(a))
            .ok_or(bad("The DPoP proof's alg is not accepted"))?;
        let Some(Value::Object(jwk)) = header.get("jwk") else {
            return Err(bad("The DPoP proof's header has no jwk"));
        };
        let (key, jkt) = public_key(jwk, alg).ok_or(bad(
            "The DPoP proof's jwk is not a public key of its alg (private members are refused)",
        ))?;
        let Some(Value::Object(claims)) = b64_json(parts[1]) else {
            return Err(bad("The DPoP proof's claims are not a JSON object"));
        };
        let text = |name: &str| claims.get(name).and_then(Value::as_str);
        let jti = text("jti")
            .filter(|j| !j.is_empty() && j.len() <= 256)
            .ok_or(bad("The DPoP proof has no usable jti"))?;
        let name = proof_name(&jkt, jti);
        if self.seen_here(name, now) {
            return Err(bad(REPLAYED));
        }
        let (signed, signature) = proof.rsplit_once('.').expect("three segments");
        if !jsonwebtoken::crypto::verify(signature, signed.as_bytes(), &key, alg).unwrap_or(false) {
            return Err(bad("The DPoP proof's signature does not verify"));
        }
        if text("htm") != Some(method) {
            return Err(bad("The DPoP proof's htm is not this request's method"));
        }
        if !text("htu").is_some_and(|u| self.same_target(u)) {
            return Err(bad("The DPoP proof's htu is not this endpoint's URL"));
        }
        let iat = claims
            .get("iat")
            .and_then(Value::as_f64)
            .filter(|t| (0.0..1e15).contains(t))
            .ok_or(bad("The DPoP proof has no iat"))? as u64;
        if iat + self.max_age < now || iat > now + self.leeway {
            return Err(bad("The DPoP proof's iat is outside the accepted window"));
        }
        if text("ath") != Some(ath(token).as_str()) {
            return Err(bad(
                "The DPoP proof's ath is not the hash of the access token",
            ));
        }
        if let Some(key) = &self.nonce_key {
            let window = now / self.max_age;
            let accepted = [
                nonce_for(key, window),
                nonce_for(key, window.saturating_sub(1)),
            ];
            if !text("nonce").is_some_and(|n| accepted.iter().any(|a| a == n)) {
                return Err(DpopRefusal::UseNonce(accepted[0].clone()));
            }
        }
        Ok((jkt, name))
    }

    /// `htu` names this endpoint: scheme, host, port and path equal after RFC 3986 syntax
    /// normalization; any query or fragment ignored.
    fn same_target(&self, htu: &str) -> bool {
        let Ok(u) = url::Url::parse(htu) else {
            return false;
        };
        let path = |u: &url::Url| u.path().trim_end_matches('/').to_string();
        u.scheme() == self.htu.scheme()
            && u.host_str() == self.htu.host_str()
            && u.port_or_known_default() == self.htu.port_or_known_default()
            && path(&u) == path(&self.htu)
    }

    /// Accepts a proof's `jti` once within the proof window: on every instance through the
    /// shared store when there is one (its own memory when the store is down and the policy
    /// allows), else in this instance's memory.
    async fn first_use(&self, name: u128, now: u64) -> Result<(), DpopRefusal> {
        let until = now + self.max_age + self.leeway + 1;
        let replayed = DpopRefusal::InvalidProof(REPLAYED);
        if let Some(shared) = &self.shared {
            let ttl = Duration::from_secs(until - now);
            match shared
                .store
                .first_use(&format!("dpop:{name:032x}"), ttl)
                .await
            {
                Ok(true) => {}
                Ok(false) => return Err(replayed),
                Err(_) if shared.when_down == RedisDown::Refuse => {
                    return Err(DpopRefusal::StoreDown);
                }
                Err(_) => {}
            }
        }
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.get(&name).is_some_and(|u| *u > now) {
            return Err(replayed);
        }
        if seen.len() >= MAX_SEEN {
            seen.retain(|_, u| *u > now);
            if seen.len() >= MAX_SEEN {
                return Err(DpopRefusal::InvalidProof(
                    "Too many DPoP proofs: retry shortly",
                ));
            }
        }
        seen.insert(name, until);
        Ok(())
    }

    /// Forgets proofs whose window has passed.
    pub fn purge(&self) {
        let now = jsonwebtoken::get_current_timestamp();
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, u| *u > now);
    }
}

const REPLAYED: &str = "The DPoP proof was already used";

/// A proof's name in the memory of used proofs: 128 bits of the SHA-256 of its key's
/// thumbprint and its `jti`.
fn proof_name(jkt: &str, jti: &str) -> u128 {
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("{jkt}.{jti}").as_bytes(),
    );
    u128::from_be_bytes(digest.as_ref()[..16].try_into().expect("16 bytes"))
}

/// `ath`: the base64url SHA-256 of the access token (RFC 9449 section 4.2).
pub fn ath(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        token.as_bytes(),
    ))
}

fn nonce_for(key: &[u8; 32], window: u64) -> String {
    let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    let tag = aws_lc_rs::hmac::sign(&k, &window.to_be_bytes());
    URL_SAFE_NO_PAD.encode(&tag.as_ref()[..18])
}

/// The verification key a proof's `jwk` holds for `alg`, and its RFC 7638 thumbprint; `None`
/// for a private key (any private member), a key of another type or curve than `alg` needs, or
/// an RSA key under 2048 bits.
pub fn public_key(jwk: &Map<String, Value>, alg: Algorithm) -> Option<(DecodingKey, String)> {
    const PRIVATE: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
    if PRIVATE.iter().any(|m| jwk.contains_key(*m)) {
        return None;
    }
    let s = |name: &str| {
        jwk.get(name)
            .and_then(Value::as_str)
            .filter(|v| is_segment(v))
    };
    use Algorithm::*;
    let (key, canonical) = match (s("kty")?, alg) {
        ("RSA", RS256 | RS384 | RS512 | PS256 | PS384 | PS512) => {
            let (n, e) = (s("n")?, s("e")?);
            let modulus = URL_SAFE_NO_PAD.decode(n).ok()?;
            if modulus.iter().skip_while(|b| **b == 0).count() * 8 < 2048 {
                return None;
            }
            let key = DecodingKey::from_rsa_components(n, e).ok()?;
            (key, format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#))
        }
        ("EC", ES256 | ES384) => {
            let crv = if alg == ES256 { "P-256" } else { "P-384" };
            if s("crv")? != crv {
                return None;
            }
            let (x, y) = (s("x")?, s("y")?);
            let key = DecodingKey::from_ec_components(x, y).ok()?;
            (
                key,
                format!(r#"{{"crv":"{crv}","kty":"EC","x":"{x}","y":"{y}"}}"#),
            )
        }
        ("OKP", EdDSA) => {
            if s("crv")? != "Ed25519" {
                return None;
            }
            let x = s("x")?;
            let key = DecodingKey::from_ed_components(x).ok()?;
            (key, format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#))
        }
        _ => return None,
    };
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes());
    Some((key, URL_SAFE_NO_PAD.encode(digest)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_matches_rfc_7638_example() {
        // RFC 7638 section 3.1.
        let jwk: Map<String, Value> = serde_json::from_str(r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#).unwrap();
        let (_, jkt) = public_key(&jwk, Algorithm::RS256).unwrap();
        assert_eq!(jkt, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
        // The same key is refused for another algorithm family, or with a private member.
        assert!(public_key(&jwk, Algorithm::ES256).is_none());
        let mut private = jwk.clone();
        private.insert("d".into(), Value::String("AAAA".into()));
        assert!(public_key(&private, Algorithm::RS256).is_none());
    }

    #[test]
    fn nonces_change_with_the_window_and_the_key() {
        let (a, b) = ([1u8; 32], [2u8; 32]);
        assert_eq!(nonce_for(&a, 7), nonce_for(&a, 7));
        assert_ne!(nonce_for(&a, 7), nonce_for(&a, 8));
        assert_ne!(nonce_for(&a, 7), nonce_for(&b, 7));
    }
}
