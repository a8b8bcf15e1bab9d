//! The token check the gate runs: which trusted issuer a token belongs to, a JWT checked by that
//! issuer's validator (with that issuer's keys only) or a token introspected at its issuer
//! (RFC 7662), and the caches of tokens that passed (shared, and per connection).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::Identity;
use super::introspection::{Failure, Introspector};
use super::validator::{Checked, MAX_TOKEN_BYTES, Rejection, TokenValidator, b64_json, is_segment};
use crate::config::Introspection;
use crate::hashing::BuildDigest;

/// One trusted issuer: its validator (keys, audiences, algorithms) and, when introspection is
/// on and it has credentials, its introspection client.
pub struct TrustedCheck {
    pub validator: TokenValidator,
    pub introspector: Option<Introspector>,
}

/// Every trusted issuer and the caches in front of them.
pub struct Verifier {
    issuers: Vec<TrustedCheck>,
    introspection: Introspection,
    verified: VerifiedCache,
}

impl Verifier {
    pub fn new(issuers: Vec<TrustedCheck>, introspection: Introspection) -> Verifier {
        assert!(!issuers.is_empty(), "at least one trusted issuer");
        Verifier {
            issuers,
            introspection,
            verified: VerifiedCache {
                entries: Mutex::new(HashMap::default()),
            },
        }
    }

    pub fn issuers(&self) -> &[TrustedCheck] {
        &self.issuers
    }

    /// Some issuer's keys are in force: the instance can serve its users (`/ready`). Tokens
    /// of an issuer whose keys are unavailable get 503 each.
    pub fn keys_ready(&self) -> bool {
        self.issuers.iter().any(|i| i.validator.keys().is_ready())
            || self.issuers.iter().any(|i| i.introspector.is_some())
    }

    /// The identity of `token` if it already passed (and is still valid): the connection's
    /// memo, else a hash lookup (which then fills the memo); no signature check, no call.
    pub fn already_verified(
        &self,
        token: &[u8],
        memo: Option<&TokenMemo>,
    ) -> Option<Arc<Identity>> {
        if token.len() > MAX_TOKEN_BYTES {
            return None;
        }
        let now = jsonwebtoken::get_current_timestamp();
        if let Some(identity) = memo.and_then(|m| m.recall(token, now)) {
            return Some(identity);
        }
        let (identity, until, generation) = self.verified.get(&token_digest(token), now)?;
        if let Some(memo) = memo {
            memo.keep(token, &identity, until, generation);
        }
        Some(identity)
    }

    /// The full check of a token not found in the caches.
    pub async fn validate(&self, token: &str) -> Result<Arc<Identity>, Rejection> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Rejection::TooLong);
        }
        let digest = token_digest(token.as_bytes());
        let now = jsonwebtoken::get_current_timestamp();
        if let Some((identity, _, _)) = self.verified.get(&digest, now) {
            return Ok(identity);
        }
        // With introspection on, a token shaped like a JWT whose header is not JSON (some
        // providers' reference tokens have dots) is opaque too.
        let jwt = is_compact_jws(token)
            && (self.introspection == Introspection::Off || has_json_header(token));
        let checked = match (jwt, self.introspection) {
            (false, Introspection::Off) => return Err(Rejection::NotCompactJws),
            (false, _) => self.introspect_opaque(token, &digest).await?,
            (true, mode) => {
                let issuer = self.issuer_of(token)?;
                match (&issuer.introspector, mode) {
                    (Some(i), Introspection::Always) => {
                        introspect_at(issuer, i, token, &digest).await?
                    }
                    _ => issuer.validator.check(token).await?,
                }
            }
        };
        let identity = checked.identity.clone();
        let until = checked.until.min(now + CACHE_MAX_AGE_SECS);
        if until > now {
            self.verified.put(digest, Checked { until, ..checked }, now);
        }
        Ok(identity)
    }

    /// The issuer a JWT names in `iss`. With one issuer, that one (its validator refuses any
    /// other `iss`); with several, the one whose URL equals `iss` exactly, or a refusal before
    /// any key is looked at or fetched.
    pub fn issuer_of(&self, token: &str) -> Result<&TrustedCheck, Rejection> {
        if let [only] = self.issuers.as_slice() {
            return Ok(only);
        }
        let payload = token.split('.').nth(1).unwrap_or("");
        let iss = b64_json(payload).and_then(|p| match p.get("iss") {
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        });
        iss.and_then(|iss| self.issuers.iter().find(|i| i.validator.issuer() == iss))
            .ok_or(Rejection::UnknownIssuer)
    }

    /// An opaque token: introspected at each issuer that introspects, in configuration order,
    /// until one says it is active. 503 when none said so and one could not answer.
    async fn introspect_opaque(
        &self,
        token: &str,
        digest: &[u8; 32],
    ) -> Result<Checked, Rejection> {
        let mut last = Rejection::NotCompactJws;
        for issuer in &self.issuers {
            let Some(introspector) = &issuer.introspector else {
                continue;
            };
            match introspect_at(issuer, introspector, token, digest).await {
                Ok(checked) => return Ok(checked),
                Err(Rejection::IntrospectionUnavailable) => {
                    last = Rejection::IntrospectionUnavailable
                }
                Err(r) if last != Rejection::IntrospectionUnavailable => last = r,
                Err(_) => {}
            }
        }
        Err(last)
    }
}

/// One issuer's introspection answer, checked by its validator.
async fn introspect_at(
    issuer: &TrustedCheck,
    introspector: &Introspector,
    token: &str,
    digest: &[u8; 32],
) -> Result<Checked, Rejection> {
    let now = jsonwebtoken::get_current_timestamp();
    match introspector.introspect(token, digest).await {
        Ok(answer) => issuer
            .validator
            .check_introspected((*answer).clone(), now + introspector.cache_secs()),
        Err(Failure::Inactive) => Err(Rejection::Inactive),
        Err(Failure::Unavailable) => Err(Rejection::IntrospectionUnavailable),
    }
}

/// Whether the first segment of `token` decodes to a JSON object (a JWT's header).
fn has_json_header(token: &str) -> bool {
    let header = token.split('.').next().unwrap_or("");
    b64_json(header).is_some_and(|h| h.is_object())
}

/// Three non-empty base64url segments: the shape of a JWT (anything else is opaque).
fn is_compact_jws(token: &str) -> bool {
    let mut n = 0;
    for part in token.split('.') {
        n += 1;
        if n > 3 || !is_segment(part) {
            return false;
        }
    }
    n == 3
}

/// The generation of the key set in force for the key that verified `identity` (0: it was not
/// verified by a key, an introspection answer).
fn generation_of(identity: &Identity) -> u64 {
    identity
        .validity()
        .key
        .as_ref()
        .map_or(0, |(_, keys)| keys.generation())
}

/// Tokens that passed every check, keyed by their SHA-256, so a client reusing its token does
/// not pay for a signature check (or an introspection call) on every request. An entry lives
/// until the token's `exp` (without leeway), at most five minutes (an introspection answer at
/// most `auth.introspection_cache_secs`), and only while the key set it was verified against is
/// current: a key removed at a refresh stops validating.
struct VerifiedCache {
    entries: Mutex<HashMap<[u8; 32], Checked, BuildDigest>>,
}

const CACHE_CAPACITY: usize = 10_000;
const CACHE_MAX_AGE_SECS: u64 = 300;

impl VerifiedCache {
    fn get(&self, key: &[u8; 32], now: u64) -> Option<(Arc<Identity>, u64, u64)> {
        let map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        map.get(key)
            .filter(|v| now < v.until && v.generation == generation_of(&v.identity))
            .map(|v| (v.identity.clone(), v.until, v.generation))
    }

    fn put(&self, key: [u8; 32], entry: Checked, now: u64) {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= CACHE_CAPACITY {
            map.retain(|_, v| now < v.until && v.generation == generation_of(&v.identity));
            if map.len() >= CACHE_CAPACITY {
                map.clear();
            }
        }
        map.insert(key, entry);
    }
}

/// One connection's memo of the last token it presented that was found verified (kept in
/// actix's per-connection data, put there by `startup`): a client that keeps its connection and
/// its token (every MCP client does) is recognised by comparing bytes, without the SHA-256 of
/// the shared cache (the largest cost of an authenticated request when it was measured). It
/// ends with the connection, and obeys the same `until` and key generation as the shared cache
/// entry it was copied from. Behind a proxy that pools connections, several callers can share
/// one: the memo then holds whichever token came last and the others use the shared cache; the
/// comparison takes the same time whatever bytes match, so no caller learns another's token.
#[derive(Default)]
pub struct TokenMemo(std::cell::RefCell<Option<Remembered>>);

struct Remembered {
    token: Box<[u8]>,
    identity: Arc<Identity>,
    until: u64,
    generation: u64,
}

impl TokenMemo {
    fn recall(&self, token: &[u8], now: u64) -> Option<Arc<Identity>> {
        let memo = self.0.try_borrow().ok()?;
        let r = memo.as_ref()?;
        (now < r.until && r.generation == generation_of(&r.identity) && same_bytes(&r.token, token))
            .then(|| r.identity.clone())
    }

    fn keep(&self, token: &[u8], identity: &Arc<Identity>, until: u64, generation: u64) {
        if let Ok(mut memo) = self.0.try_borrow_mut() {
            *memo = Some(Remembered {
                token: token.into(),
                identity: identity.clone(),
                until,
                generation,
            });
        }
    }
}

/// Equal slices, compared in time that depends on their lengths only (an accumulated xor, no
/// early exit).
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

/// The SHA-256 of a token: the key of every cache (a token is never kept as a key).
pub fn token_digest(token: &[u8]) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::{is_compact_jws, same_bytes};

    #[test]
    fn same_bytes_compares_whole_slices() {
        assert!(same_bytes(b"abc", b"abc"));
        assert!(same_bytes(b"", b""));
        assert!(!same_bytes(b"abc", b"abd"));
        assert!(!same_bytes(b"xbc", b"abc"));
        assert!(!same_bytes(b"abc", b"ab"));
    }

    #[test]
    fn only_three_segments_look_like_a_jwt() {
        assert!(is_compact_jws("a.b.c"));
        assert!(!is_compact_jws("a.b"));
        assert!(!is_compact_jws("a.b.c.d"));
        assert!(!is_compact_jws("a..c"));
        assert!(!is_compact_jws("opaque-token_123"));
        assert!(!is_compact_jws("a.b.c="));
    }
}
