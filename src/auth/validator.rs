//! Token validation (RFC 8725, RFC 9068 §4, OAuth 2.1 §5.2): shape and size first, then the key
//! chosen by `kid` and bound to one algorithm, the signature, then every claim rule. The token's
//! header never picks the algorithm, and no URL in it is ever fetched.

use std::collections::BTreeMap;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, Validation};
use serde_json::Value;

use super::jwks::{KeySet, KeyStore};
use super::{CallerKind, Claimed, Identity, Validity};
use crate::auth::asymmetric_algorithm;

/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Why a token was refused. Logged (as the variant name and the audience values only for
/// `WrongAudience`); never sent to the client, which always gets the same `invalid_token`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    TooLong,
    NotCompactJws,
    BadHeader,
    CriticalHeader,
    WrongType,
    AlgorithmNotAllowed,
    UnknownKey,
    KeysUnavailable,
    BadSignatureOrClaims(String),
    WrongIssuer,
    WrongAudience {
        expected: Vec<String>,
        received: Vec<String>,
    },
    IssuedInFuture,
    BadClaimType(&'static str),
    /// The header or the claims repeat a member name (which value counts would be ambiguous).
    DuplicateMember,
    /// No `kid`, and not exactly one usable key of the token's algorithm.
    AmbiguousKey,
    /// `exp` lies further ahead than `auth.max_token_lifetime_secs`.
    LifetimeTooLong,
    /// The token's `iss` names no trusted issuer (nothing was fetched).
    UnknownIssuer,
    /// The introspection endpoint says the token is not active (RFC 7662 `active: false`).
    Inactive,
    /// The introspection endpoint failed or timed out: the token is not known to be bad.
    IntrospectionUnavailable,
}

impl Rejection {
    /// The refusal counter's `reason` label: the causes an operator acts on, else `invalid`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Rejection::WrongAudience { .. } => "audience",
            Rejection::WrongIssuer => "issuer",
            Rejection::BadSignatureOrClaims(kind) if kind == "expired" => "expired",
            Rejection::KeysUnavailable | Rejection::IntrospectionUnavailable => "keys_unavailable",
            Rejection::UnknownIssuer => "issuer",
            Rejection::Inactive => "inactive",
            _ => "invalid",
        }
    }

    /// A short reason for logs. Holds no token material.
    pub fn log_reason(&self) -> String {
        match self {
            Rejection::WrongAudience { expected, received } => {
                let slash_hint = expected.iter().any(|e| {
                    received
                        .iter()
                        .any(|r| e.trim_end_matches('/') == r.trim_end_matches('/'))
                });
                format!(
                    "audience mismatch: expected one of {expected:?}, token has {received:?}{}",
                    if slash_hint {
                        " (they differ only by a trailing slash: make EXPECTED_AUDIENCE match the token exactly)"
                    } else {
                        " (check EXPECTED_AUDIENCE and PUBLIC_URL; a trailing slash counts)"
                    }
                )
            }
            Rejection::BadSignatureOrClaims(kind) => {
                format!("signature or claims rejected ({kind})")
            }
            Rejection::BadClaimType("sub") => {
                "no subject: the first of auth.subject_claims (sub, then client_id by default) the token has is blank (only white space, control or invisible characters) or not a string, or it has none".into()
            }
            Rejection::BadClaimType(c) => format!("claim {c} is missing or has the wrong JSON type"),
            Rejection::TooLong => format!("the token is longer than {MAX_TOKEN_BYTES} bytes"),
            Rejection::NotCompactJws => {
                "not a JWT: expected three base64url parts separated by dots".into()
            }
            Rejection::BadHeader => {
                "the token's header is not a JSON object with a string alg (and a kid, if any, of at most 256 characters)".into()
            }
            Rejection::CriticalHeader => {
                "the token's header has a crit member, which this server does not support".into()
            }
            Rejection::WrongType => {
                "the token's typ is not at+jwt (nor JWT, which only auth.require_at_jwt_typ = false accepts)".into()
            }
            Rejection::AlgorithmNotAllowed => {
                "the token's alg is not accepted (auth.algorithms) or is not its key's algorithm".into()
            }
            Rejection::UnknownKey => {
                "no key in the issuer's key set has the token's kid (or the signature does not verify)".into()
            }
            Rejection::KeysUnavailable => {
                "the issuer's keys are unavailable: the key set could not be fetched".into()
            }
            Rejection::WrongIssuer => {
                "iss is not the configured issuer (auth.issuer / OAUTH_ISSUER)".into()
            }
            Rejection::IssuedInFuture => {
                "iat lies in the future (check the issuer's clock, or auth.leeway_secs)".into()
            }
            Rejection::DuplicateMember => {
                "the token's header or claims name a member twice".into()
            }
            Rejection::AmbiguousKey => {
                "the token has no kid and the key set holds more than one key of its algorithm".into()
            }
            Rejection::LifetimeTooLong => {
                "exp lies further ahead than auth.max_token_lifetime_secs allows".into()
            }
            Rejection::UnknownIssuer => {
                "iss names no trusted issuer (auth.issuer, auth.issuers, OAUTH_ISSUERS)".into()
            }
            Rejection::Inactive => {
                "the issuer's introspection endpoint says the token is not active (revoked, expired or unknown)".into()
            }
            Rejection::IntrospectionUnavailable => {
                "the issuer's introspection endpoint failed or timed out".into()
            }
        }
    }

    /// Which of `gatehouse doctor`'s claim hints explains this rejection (`None`: none does).
    pub fn hint(&self) -> Option<&'static str> {
        Some(match self {
            Rejection::AlgorithmNotAllowed => "alg",
            Rejection::UnknownKey => "kid",
            Rejection::WrongIssuer | Rejection::UnknownIssuer => "iss",
            Rejection::WrongAudience { .. } => "aud",
            Rejection::BadClaimType(_) => "missing",
            Rejection::BadSignatureOrClaims(k) if k == "missing required claim" => "missing",
            Rejection::BadSignatureOrClaims(k) if k == "expired" => "exp",
            Rejection::BadSignatureOrClaims(k) if k == "not yet valid" => "nbf",
            _ => return None,
        })
    }
}

/// What a validator checks against.
pub struct ValidatorOptions {
    pub issuer: String,
    pub audiences: Vec<String>,
    pub algorithms: Vec<Algorithm>,
    pub leeway: u64,
    pub require_at_jwt_typ: bool,
    pub keys: Arc<KeyStore>,
    /// `auth.max_token_lifetime_secs`; 0 = no limit.
    pub max_lifetime: u64,
    /// `auth.scope_implies`, already closed transitively: scope -> the scopes it also grants.
    pub scope_implies: BTreeMap<String, Vec<String>>,
    /// `auth.subject_claims`: the claims that name the subject, the first present wins.
    pub subject_claims: Vec<String>,
}

/// Checks tokens for one issuer and audience set.
pub struct TokenValidator {
    issuer: String,
    audiences: Vec<String>,
    algorithms: Vec<Algorithm>,
    leeway: u64,
    require_at_jwt_typ: bool,
    keys: Arc<KeyStore>,
    max_lifetime: u64,
    scope_implies: BTreeMap<String, Vec<String>>,
    subject_claims: Vec<String>,
}

/// A token that passed every check: who it names, until when (`exp`, Unix seconds), and the
/// generation of the key set that verified it (0: no key set, an introspection answer).
pub struct Checked {
    pub identity: Arc<Identity>,
    pub until: u64,
    pub generation: u64,
}

/// Largest time claim accepted: 2^53, the largest integer every JSON implementation reads
/// exactly.
const MAX_TIME_CLAIM: u64 = 1 << 53;

/// A time claim's value, when it lies in 0..=2^53. An integer is compared as written (2^53 + 1
/// becomes 2^53 as a float, so a float comparison would let it through); a fraction as a float,
/// which must lie below 2^53 (above it, floats cannot tell 2^53 from 2^53 + 1).
fn time_claim(n: &serde_json::Number) -> Option<f64> {
    if let Some(i) = n.as_u64() {
        return (i <= MAX_TIME_CLAIM).then_some(i as f64);
    }
    if n.is_i64() {
        return None; // negative
    }
    n.as_f64()
        .filter(|t| (0.0..MAX_TIME_CLAIM as f64).contains(t))
}

/// A non-empty base64url segment (no padding).
pub fn is_segment(s: &str) -> bool {
    const BASE64URL: [bool; 256] = super::bearer::alphanumeric_and(b"-_");
    !s.is_empty() && s.bytes().all(|b| BASE64URL[b as usize])
}

/// The JSON of a base64url token segment, read without any check (for reporting only).
pub fn b64_json(segment: &str) -> Option<Value> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(segment)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Decodes a base64url JSON segment, refusing any object (at any depth) that repeats a member
/// name: `Ok(None)` when the segment is not JSON, `Err` on a duplicate.
fn b64_json_unique(segment: &str) -> Result<Option<Value>, Rejection> {
    use base64::Engine;
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(segment) else {
        return Ok(None);
    };
    match serde_json::from_slice::<unique::Unique>(&bytes) {
        Ok(unique::Unique(v)) => Ok(Some(v)),
        Err(e) if e.to_string().starts_with(unique::DUPLICATE) => Err(Rejection::DuplicateMember),
        Err(_) => Ok(None),
    }
}

/// A JSON value read with one extra rule: no object repeats a member name.
mod unique {
    use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
    use serde_json::{Map, Number, Value};

    pub const DUPLICATE: &str = "duplicate member";

    pub struct Unique(pub Value);

    impl<'de> Deserialize<'de> for Unique {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(V).map(Unique)
        }
    }

    struct V;

    impl<'de> Visitor<'de> for V {
        type Value = Value;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_unit<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
            Ok(Value::Bool(b))
        }
        fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
            Ok(Value::from(n))
        }
        fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
            Ok(Value::from(n))
        }
        fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
            Ok(Number::from_f64(n).map_or(Value::Null, Value::Number))
        }
        fn visit_str<E>(self, s: &str) -> Result<Value, E> {
            Ok(Value::String(s.to_string()))
        }
        fn visit_string<E>(self, s: String) -> Result<Value, E> {
            Ok(Value::String(s))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            let mut out = Vec::new();
            while let Some(Unique(v)) = seq.next_element()? {
                out.push(v);
            }
            Ok(Value::Array(out))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            let mut out = Map::new();
            while let Some(key) = map.next_key::<String>()? {
                let Unique(v) = map.next_value()?;
                if out.insert(key, v).is_some() {
                    return Err(de::Error::custom(DUPLICATE));
                }
            }
            Ok(Value::Object(out))
        }
    }
}

impl TokenValidator {
    pub fn new(o: ValidatorOptions) -> TokenValidator {
        TokenValidator {
            issuer: o.issuer,
            audiences: o.audiences,
            algorithms: o.algorithms,
            leeway: o.leeway,
            require_at_jwt_typ: o.require_at_jwt_typ,
            keys: o.keys,
            max_lifetime: o.max_lifetime,
            scope_implies: o.scope_implies,
            subject_claims: o.subject_claims,
        }
    }

    pub fn keys(&self) -> &Arc<KeyStore> {
        &self.keys
    }

    /// The issuer this validator trusts (`iss`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The accepted audiences.
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// Checks a compact JWS (its shape already checked): header, key, signature, claims.
    pub async fn check(&self, token: &str) -> Result<Checked, Rejection> {
        let parts: Vec<&str> = token.split('.').collect();
        if parts.len() != 3 || !parts.iter().all(|p| is_segment(p)) {
            return Err(Rejection::NotCompactJws);
        }
        self.verify(token, &parts).await
    }

    /// Checks an introspection answer (RFC 7662 section 2.2) like a JWT's claims: `active`
    /// true, `iss` (when present) this issuer, `aud` one of ours, `exp` (when present) ahead,
    /// `nbf` passed, a subject, and the same scope, organization and binding claims. `None`
    /// for `exp`: the answer gives none (the cache time then bounds it).
    pub fn check_introspected(
        &self,
        mut answer: serde_json::Map<String, Value>,
        max_until: u64,
    ) -> Result<Checked, Rejection> {
        if answer.get("active") != Some(&Value::Bool(true)) {
            return Err(Rejection::Inactive);
        }
        let now = jsonwebtoken::get_current_timestamp();
        match answer.get("iss") {
            None => {
                answer.insert("iss".into(), Value::String(self.issuer.clone()));
            }
            Some(Value::String(iss)) if *iss == self.issuer => {}
            Some(_) => return Err(Rejection::WrongIssuer),
        }
        let received = string_list(answer.get("aud"));
        if !received.iter().any(|a| self.audiences.contains(a)) {
            return Err(Rejection::WrongAudience {
                expected: self.audiences.clone(),
                received: received.into_iter().take(10).collect(),
            });
        }
        let stated_exp = answer.contains_key("exp");
        if !stated_exp {
            answer.insert("exp".into(), Value::from(max_until));
        }
        if let Some(Value::Number(n)) = answer.get("nbf")
            && time_claim(n).is_some_and(|nbf| nbf > (now + self.leeway) as f64)
        {
            return Err(Rejection::BadSignatureOrClaims("not yet valid".into()));
        }
        let (claimed, exp) = self.check_claims(&Value::Object(answer))?;
        let expires_at = if stated_exp {
            exp.saturating_add(self.leeway)
        } else {
            u64::MAX
        };
        let identity = Identity::verified(
            claimed,
            Validity {
                expires_at,
                key: None,
            },
        );
        Ok(Checked {
            identity: Arc::new(identity),
            until: exp.min(max_until),
            generation: 0,
        })
    }

    /// The full check: header, key, signature, claims. Returns the identity, `exp` as `until`,
    /// and the generation of the key set that verified the signature.
    async fn verify(&self, token: &str, parts: &[&str]) -> Result<Checked, Rejection> {
        let (alg, kid) = self.read_header(parts)?;
        let kid = kid.as_deref();
        // No key in force (never loaded, or stale past auth.jwks_max_stale_secs): try a fetch,
        // at most once per cooldown whatever the traffic.
        let mut set = match self.keys.current() {
            Some(set) => set,
            None => self
                .keys
                .refresh_for_unknown_kid()
                .await
                .ok_or(Rejection::KeysUnavailable)?,
        };
        if let Some(kid) = kid
            && !set.has_kid(kid)
        {
            set = self
                .keys
                .refresh_for_unknown_kid()
                .await
                .ok_or(Rejection::KeysUnavailable)?;
        }
        let (claims, verified_by) = self.signature(token, parts, &set, alg, kid)?;
        let (claimed, exp) = self.check_claims(&claims)?;
        let identity = Identity::verified(
            claimed,
            Validity {
                expires_at: exp.saturating_add(self.leeway),
                key: Some((verified_by, self.keys.clone())),
            },
        );
        Ok(Checked {
            identity: Arc::new(identity),
            until: exp,
            generation: set.generation,
        })
    }

    /// The token's header, read by us: only `alg`, `kid`, `typ` and `crit` matter, and `jwk`,
    /// `jku`, `x5u`, `x5c` are deliberately never looked at. Also refuses claims with a repeated
    /// member before anything reads them. The algorithm and the `kid`.
    fn read_header(&self, parts: &[&str]) -> Result<(Algorithm, Option<String>), Rejection> {
        // Read the header ourselves: only `alg`, `kid`, `typ` and `crit` matter, and `jwk`,
        // `jku`, `x5u`, `x5c` are deliberately never looked at.
        let Some(Value::Object(header)) = b64_json_unique(parts[0])? else {
            return Err(Rejection::BadHeader);
        };
        // The claims are read by jsonwebtoken after the signature check; a repeated member
        // must be refused before anything reads them.
        if b64_json_unique(parts[1])?.is_none() {
            return Err(Rejection::BadSignatureOrClaims("malformed".into()));
        }
        if header.contains_key("crit") {
            return Err(Rejection::CriticalHeader);
        }
        let alg = match header.get("alg") {
            // none (any case), HS*, and anything unknown have no entry.
            Some(Value::String(a)) => {
                asymmetric_algorithm(a).ok_or(Rejection::AlgorithmNotAllowed)?
            }
            _ => return Err(Rejection::BadHeader),
        };
        if !self.algorithms.contains(&alg) {
            return Err(Rejection::AlgorithmNotAllowed);
        }
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(k)) if k.len() <= 256 => Some(k.clone()),
            Some(_) => return Err(Rejection::BadHeader),
        };
        match (header.get("typ"), self.require_at_jwt_typ) {
            (None, false) => {}
            (Some(Value::String(t)), strict) => {
                let t = t.to_ascii_lowercase();
                let at = t == "at+jwt" || t == "application/at+jwt";
                let plain_jwt = t == "jwt" || t == "application/jwt";
                // Strict mode (RFC 9068) takes only at+jwt; otherwise plain JWT is fine too.
                if !at && (strict || !plain_jwt) {
                    return Err(Rejection::WrongType);
                }
            }
            _ => return Err(Rejection::WrongType),
        }

        Ok((alg, kid))
    }

    /// The signature checked against the key set's candidates (with jsonwebtoken's `exp`,
    /// `nbf`, `iss` and `aud` checks): the claims, and the fingerprint of the key that verified
    /// them.
    fn signature(
        &self,
        token: &str,
        parts: &[&str],
        set: &KeySet,
        alg: Algorithm,
        kid: Option<&str>,
    ) -> Result<(Value, u64), Rejection> {
        let mut validation = Validation::new(alg);
        validation.algorithms = vec![alg];
        validation.leeway = self.leeway;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        // `sub` is checked with the other subject claims (`auth.subject_claims`).
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.set_issuer(&[self.issuer.as_str()]);
        validation.set_audience(&self.audiences);

        // A token without `kid` names no key: it is checked only when exactly one usable key of
        // its algorithm is loaded, so an attacker never gets to pick how many checks run.
        if kid.is_none() && set.candidates(None, alg).nth(1).is_some() {
            return Err(Rejection::AmbiguousKey);
        }
        let mut last = Rejection::UnknownKey;
        let mut claims = None;
        let mut verified_by = 0;
        for key in set.candidates(kid, alg) {
            if key.alg != alg {
                // One key, one algorithm: a token claiming another alg for this key is forged.
                last = Rejection::AlgorithmNotAllowed;
                continue;
            }
            match jsonwebtoken::decode::<Value>(token, &key.key, &validation) {
                Ok(data) => {
                    claims = Some(data.claims);
                    verified_by = key.id;
                    break;
                }
                Err(e) => {
                    use jsonwebtoken::errors::ErrorKind;
                    last = match e.kind() {
                        ErrorKind::InvalidAudience => Rejection::WrongAudience {
                            expected: self.audiences.clone(),
                            received: audiences_of(parts[1]),
                        },
                        ErrorKind::InvalidIssuer => Rejection::WrongIssuer,
                        other => Rejection::BadSignatureOrClaims(kind_name(other)),
                    };
                }
            }
        }
        claims.map(|c| (c, verified_by)).ok_or(last)
    }

    /// The subject: the first of `auth.subject_claims` present. One nobody can read (empty, or
    /// only white space, controls and invisible characters) names no one: budgets, audit lines
    /// and bindings key on it. A subject from `client_id` is a machine client's.
    fn subject(
        &self,
        c: &serde_json::Map<String, Value>,
    ) -> Result<(String, CallerKind), Rejection> {
        for claim in &self.subject_claims {
            if let Some(value) = c.get(claim.as_str()) {
                let s = value
                    .as_str()
                    .filter(|s| !crate::text::blank(s))
                    .ok_or(Rejection::BadClaimType("sub"))?;
                let kind = if claim == "client_id" {
                    CallerKind::Client
                } else {
                    CallerKind::User
                };
                return Ok((s.to_string(), kind));
            }
        }
        Err(Rejection::BadClaimType("sub"))
    }

    /// Rules jsonwebtoken does not enforce: exact JSON types, `iss` a string equal to ours,
    /// `iat` not in the future.
    fn check_claims(&self, claims: &Value) -> Result<(Claimed, u64), Rejection> {
        let Value::Object(c) = claims else {
            return Err(Rejection::BadClaimType("payload"));
        };
        let string = |name: &'static str| -> Result<Option<String>, Rejection> {
            match c.get(name) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(Rejection::BadClaimType(name)),
            }
        };
        // Time claims: JSON numbers from 0 to 2^53.
        let number = |name: &'static str| -> Result<Option<f64>, Rejection> {
            match c.get(name) {
                None => Ok(None),
                Some(Value::Number(n)) => {
                    time_claim(n).map(Some).ok_or(Rejection::BadClaimType(name))
                }
                Some(_) => Err(Rejection::BadClaimType(name)),
            }
        };
        match string("iss")? {
            Some(iss) if iss == self.issuer => {}
            _ => return Err(Rejection::WrongIssuer),
        }
        let (subject, kind) = self.subject(c)?;
        let now = jsonwebtoken::get_current_timestamp() as f64;
        let exp = number("exp")?.ok_or(Rejection::BadClaimType("exp"))?;
        // RFC 7519 section 4.1.4: the current time must be before `exp`. jsonwebtoken also
        // accepts a token during the second `exp` names; the cache (`now < until`) does not.
        if now >= exp + self.leeway as f64 {
            return Err(Rejection::BadSignatureOrClaims("expired".into()));
        }
        if self.max_lifetime > 0 && exp - now > self.max_lifetime as f64 {
            return Err(Rejection::LifetimeTooLong);
        }
        number("nbf")?;
        if let Some(iat) = number("iat")?
            && iat > now + self.leeway as f64
        {
            return Err(Rejection::IssuedInFuture);
        }
        match c.get("aud") {
            Some(Value::String(_)) => {}
            Some(Value::Array(a)) if a.iter().all(Value::is_string) => {}
            _ => return Err(Rejection::BadClaimType("aud")),
        }
        let mut scopes = claimed_scopes(c)?;
        // Scopes are opaque strings compared exactly; one implies others only by configuration.
        let implied: Vec<String> = scopes
            .iter()
            .filter_map(|s| self.scope_implies.get(s))
            .flatten()
            .cloned()
            .collect();
        scopes.extend(implied);
        scopes.sort();
        scopes.dedup();
        let organization = match string("oid")? {
            Some(o) => Some(o),
            None => match string("org_id")? {
                Some(o) => Some(o),
                None => string("xoid")?,
            },
        };
        let client_id = match string("client_id")? {
            Some(c) => Some(c),
            None => string("azp")?,
        };
        if self.require_at_jwt_typ && client_id.is_none() {
            return Err(Rejection::BadClaimType("client_id"));
        }
        let claimed = Claimed {
            issuer: self.issuer.clone(),
            subject,
            kind,
            scopes,
            organization,
            client_id,
            confirmation: confirmation(c)?,
        };
        Ok((claimed, exp.max(0.0) as u64))
    }
}

/// The key a token is bound to (RFC 9449 section 6: `cnf.jkt`, the JWK SHA-256 thumbprint of
/// the client's DPoP key). A `cnf` that binds the token some other way (an mTLS certificate,
/// RFC 8705) cannot be checked here: the token is refused rather than accepted unbound.
fn confirmation(c: &serde_json::Map<String, Value>) -> Result<Option<String>, Rejection> {
    match c.get("cnf") {
        None => Ok(None),
        Some(Value::Object(cnf)) => match cnf.get("jkt") {
            Some(Value::String(jkt)) if is_segment(jkt) && jkt.len() == 43 => Ok(Some(jkt.clone())),
            _ => Err(Rejection::BadClaimType("cnf")),
        },
        Some(_) => Err(Rejection::BadClaimType("cnf")),
    }
}

/// The scopes a claim set grants: `scopes` (array), `scope` (space-separated) and `scp`
/// (either form), in that order, before any configured implication.
pub fn claimed_scopes(c: &serde_json::Map<String, Value>) -> Result<Vec<String>, Rejection> {
    let mut scopes = Vec::new();
    for name in ["scopes", "scope", "scp"] {
        match (name, c.get(name)) {
            (_, None) => {}
            ("scopes" | "scp", Some(Value::Array(a))) => {
                for s in a {
                    scopes.push(s.as_str().ok_or(Rejection::BadClaimType(name))?.to_string());
                }
            }
            ("scope" | "scp", Some(Value::String(s))) => {
                scopes.extend(s.split(' ').filter(|s| !s.is_empty()).map(str::to_string))
            }
            (_, Some(_)) => return Err(Rejection::BadClaimType(name)),
        }
    }
    Ok(scopes)
}

/// A claim that is a string or an array of strings, as a list (other members are skipped).
pub fn string_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// The `aud` values of a payload segment, for the audience-mismatch log line only.
fn audiences_of(payload: &str) -> Vec<String> {
    let mut auds = string_list(b64_json(payload).as_ref().and_then(|p| p.get("aud")));
    auds.truncate(10);
    auds
}

fn kind_name(kind: &jsonwebtoken::errors::ErrorKind) -> String {
    use jsonwebtoken::errors::ErrorKind as K;
    match kind {
        K::InvalidSignature => "bad signature",
        K::ExpiredSignature => "expired",
        K::ImmatureSignature => "not yet valid",
        K::MissingRequiredClaim(_) => "missing required claim",
        K::InvalidAlgorithm => "algorithm mismatch",
        K::InvalidToken => "malformed",
        K::Json(_) | K::Base64(_) | K::Utf8(_) => "malformed",
        _ => "rejected",
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn time_claims_are_compared_as_written() {
        let n = |s: &str| serde_json::from_str::<serde_json::Number>(s).unwrap();
        assert_eq!(
            super::time_claim(&n("9007199254740992")),
            Some(9007199254740992.0)
        );
        assert_eq!(super::time_claim(&n("9007199254740993")), None);
        assert_eq!(super::time_claim(&n("18446744073709551615")), None);
        assert_eq!(super::time_claim(&n("-1")), None);
        assert_eq!(super::time_claim(&n("1700000000.5")), Some(1700000000.5));
        assert_eq!(super::time_claim(&n("9007199254740993.0")), None);
        assert_eq!(super::time_claim(&n("1e300")), None);
    }
}
