//! OAuth 2.1 resource server: who the caller is. Bearer extraction, the key set cache, token
//! validation, the 401/403 challenges, the protected resource metadata document and the built-in
//! development issuer. Handlers only ever see an `Identity`, never the raw token.

pub mod bearer;
pub mod challenge;
pub mod dev_issuer;
pub mod dpop;
pub mod gate;
pub mod introspection;
pub mod jwks;
pub mod metadata;
pub mod validator;
pub mod verifier;

/// The verified caller. Built only by the token checker (`validator`) from a validated token
/// (its fields are private, its constructor is the crate's); holds no token. Unit tests build
/// one with `Identity::for_tests`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    issuer: String,
    subject: String,
    /// A user, or a machine client (its subject is its `client_id`).
    kind: CallerKind,
    /// Union of `scopes` (array), `scope` (space-separated) and `scp`; sorted, unique.
    scopes: Vec<String>,
    /// `oid`, else `org_id`, else `xoid`.
    organization: Option<String>,
    /// `client_id`, else `azp`.
    client_id: Option<String>,
    /// The DPoP key the token is bound to (`cnf.jkt`), if it is.
    confirmation: Option<String>,
    /// How long the token behind this identity stays acceptable.
    validity: Validity,
}

/// Who holds a token: a person (the subject is `sub`) or a machine client using its own
/// credentials (no `sub`; the subject is its `client_id`, as in Scalekit's M2M tokens and the
/// MCP client-credentials extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerKind {
    User,
    Client,
}

/// What a verified token says about its holder, for `Identity::verified`.
pub(crate) struct Claimed {
    pub issuer: String,
    pub subject: String,
    pub kind: CallerKind,
    pub scopes: Vec<String>,
    pub organization: Option<String>,
    pub client_id: Option<String>,
    pub confirmation: Option<String>,
}

/// What keeps a verified token acceptable: the time it expires (`exp` plus the leeway) and the
/// key that verified it. A long-lived stream asks `Identity::lapsed` as it goes, so it ends
/// when either is gone, as a new request with the same token would be refused.
#[derive(Clone)]
pub struct Validity {
    /// Unix seconds from which the token is refused; `u64::MAX`: never.
    pub expires_at: u64,
    /// The verifying key's fingerprint and the store it must stay in.
    pub key: Option<(u64, std::sync::Arc<jwks::KeyStore>)>,
}

impl std::fmt::Debug for Validity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validity")
            .field("expires_at", &self.expires_at)
            .field("key", &self.key.as_ref().map(|(id, _)| id))
            .finish()
    }
}

impl PartialEq for Validity {
    fn eq(&self, other: &Validity) -> bool {
        self.expires_at == other.expires_at
            && self.key.as_ref().map(|(id, _)| id) == other.key.as_ref().map(|(id, _)| id)
    }
}

impl Eq for Validity {}

impl Validity {
    /// Acceptable for ever (tests, and identities not made from a token).
    pub const FOREVER: Validity = Validity {
        expires_at: u64::MAX,
        key: None,
    };
}

/// Why an identity stopped being acceptable while a stream ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lapse {
    /// The token's `exp` (plus the leeway) has passed.
    Expired,
    /// The key that verified the token left the issuer's key set (or no key set is in force).
    KeyWithdrawn,
}

impl Identity {
    /// The identity a token checker found in a verified token, acceptable for `validity`.
    pub(crate) fn verified(claimed: Claimed, validity: Validity) -> Identity {
        let Claimed {
            issuer,
            subject,
            kind,
            scopes,
            organization,
            client_id,
            confirmation,
        } = claimed;
        Identity {
            issuer,
            subject,
            kind,
            scopes,
            organization,
            client_id,
            confirmation,
            validity,
        }
    }

    /// An identity for unit tests: `subject` with `scopes` and `organization`, issued by
    /// `https://issuer.test`, acceptable for ever.
    #[cfg(test)]
    pub(crate) fn for_tests(
        subject: &str,
        scopes: &[&str],
        organization: Option<&str>,
    ) -> Identity {
        Identity::verified(
            Claimed {
                issuer: "https://issuer.test".into(),
                subject: subject.into(),
                kind: CallerKind::User,
                scopes: scopes.iter().map(|s| s.to_string()).collect(),
                organization: organization.map(str::to_string),
                client_id: None,
                confirmation: None,
            },
            Validity::FOREVER,
        )
    }

    /// Whether the token's holder is a user or a machine client (`auth.subject_claims`).
    pub fn kind(&self) -> CallerKind {
        self.kind
    }

    /// The issuer that signed the token (`iss`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The token's subject (`sub`).
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The scopes granted, sorted and unique (with `auth.scope_implies` applied).
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The organization (`oid`, else `org_id`, else `xoid`).
    pub fn organization(&self) -> Option<&str> {
        self.organization.as_deref()
    }

    /// The client the token was issued to (`client_id`, else `azp`).
    pub fn client_id(&self) -> Option<&str> {
        self.client_id.as_deref()
    }

    /// The DPoP key's RFC 7638 thumbprint the token is bound to (`cnf.jkt`), if it is.
    pub fn confirmation(&self) -> Option<&str> {
        self.confirmation.as_deref()
    }

    /// How long the token behind this identity stays acceptable.
    pub fn validity(&self) -> &Validity {
        &self.validity
    }

    /// Why the token behind this identity would be refused now, if it would.
    pub fn lapsed(&self, now: u64) -> Option<Lapse> {
        if now >= self.validity.expires_at {
            return Some(Lapse::Expired);
        }
        match &self.validity.key {
            Some((id, keys)) if !keys.current().is_some_and(|set| set.holds(*id)) => {
                Some(Lapse::KeyWithdrawn)
            }
            _ => None,
        }
    }

    /// Does the caller hold `scope`? Scopes are opaque strings (RFC 6749 section 3.3) compared
    /// exactly: `mcp` does not satisfy `mcp:admin`. Implications come only from
    /// `auth.scope_implies`, applied when the identity is built.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// Who is calling: an authenticated identity, or nobody when auth is turned off (development).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// Shared: the verified-token cache, the rate limiter and the request hold the same one.
    Authenticated(std::sync::Arc<Identity>),
    Anonymous,
}

impl Caller {
    /// The scopes from `required` the caller lacks (none when auth is off).
    pub fn missing_scopes<'a>(&self, required: &[&'a str]) -> Vec<&'a str> {
        match self {
            Caller::Anonymous => Vec::new(),
            Caller::Authenticated(id) => required
                .iter()
                .copied()
                .filter(|s| !id.has_scope(s))
                .collect(),
        }
    }

    /// When the caller's token expires (Unix seconds), if it does.
    pub fn expires_at(&self) -> Option<u64> {
        match self {
            Caller::Authenticated(id) if id.validity.expires_at != u64::MAX => {
                Some(id.validity.expires_at)
            }
            _ => None,
        }
    }

    /// Why the caller's token would be refused now (never, without auth).
    pub fn lapsed(&self, now: u64) -> Option<Lapse> {
        match self {
            Caller::Authenticated(id) => id.lapsed(now),
            Caller::Anonymous => None,
        }
    }

    pub fn subject(&self) -> Option<&str> {
        match self {
            Caller::Authenticated(id) => Some(&id.subject),
            Caller::Anonymous => None,
        }
    }
}

/// The asymmetric JWS algorithm with this exact (case-sensitive) name. HMAC and `none` have no
/// entry: they are never accepted, whatever the configuration says.
pub fn asymmetric_algorithm(name: &str) -> Option<jsonwebtoken::Algorithm> {
    Some(match name {
        "RS256" => jsonwebtoken::Algorithm::RS256,
        "RS384" => jsonwebtoken::Algorithm::RS384,
        "RS512" => jsonwebtoken::Algorithm::RS512,
        "PS256" => jsonwebtoken::Algorithm::PS256,
        "PS384" => jsonwebtoken::Algorithm::PS384,
        "PS512" => jsonwebtoken::Algorithm::PS512,
        "ES256" => jsonwebtoken::Algorithm::ES256,
        "ES384" => jsonwebtoken::Algorithm::ES384,
        "EdDSA" => jsonwebtoken::Algorithm::EdDSA,
        _ => return None,
    })
}

/// RFC 6749 scope-token: printable ASCII except space, `"` and `\`.
pub fn valid_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_match_exactly() {
        let id = Identity::for_tests("s", &["todo", "admin"], None);
        assert!(!id.has_scope("todo:read"));
        assert!(!id.has_scope("admin:x"));
        assert!(id.has_scope("admin"));
        assert!(!id.has_scope("todox"));
        assert!(!id.has_scope("adm"));
        assert_eq!(
            Caller::Authenticated(std::sync::Arc::new(id)).missing_scopes(&["admin", "x"]),
            vec!["x"]
        );
    }
}
