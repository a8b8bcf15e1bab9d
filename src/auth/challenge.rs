//! The HTTP answers of the auth layer: 401/403/400 with `WWW-Authenticate` (RFC 6750 §3,
//! RFC 9728 §5.1) and 503 while the key set is unavailable. Descriptions are fixed strings: no
//! token, claim or library error text ever reaches a response.

use actix_web::http::header::HeaderValue;
use actix_web::web::Bytes;

use crate::refusal::Refusal;

/// The header carrying a server-provided DPoP nonce (RFC 9449 section 9).
pub const DPOP_NONCE: actix_web::http::header::HeaderName =
    actix_web::http::header::HeaderName::from_static("dpop-nonce");

pub use crate::failure::AuthRefusal;

const NO_TOKEN_DESCRIPTION: &str =
    "Authorization required: send Authorization: Bearer <access token>";

pub const INVALID_TOKEN_DESCRIPTION: &str =
    "The access token is invalid, expired, or not meant for this server";

/// Quotes a value for an auth-param: escapes `\` and `"`, drops control characters.
fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() || !c.is_ascii() => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Builds a `WWW-Authenticate: Bearer ...` value from ordered auth-params.
pub fn www_authenticate(params: &[(&str, &str)]) -> HeaderValue {
    scheme_challenge("Bearer", params)
}

/// Builds a `WWW-Authenticate: <scheme> ...` value from ordered auth-params.
fn scheme_challenge(scheme: &str, params: &[(&str, &str)]) -> HeaderValue {
    HeaderValue::try_from(challenge_text(scheme, params))
        .expect("auth-params are quoted and stripped of control and non-ASCII characters")
}

/// The text of a `WWW-Authenticate: <scheme> ...` value.
fn challenge_text(scheme: &str, params: &[(&str, &str)]) -> String {
    let parts: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", quote(v)))
        .collect();
    if parts.is_empty() {
        scheme.to_string()
    } else {
        format!("{scheme} {}", parts.join(", "))
    }
}

/// What a challenge needs to know about this server, and the two 401 challenges, which depend
/// on nothing else and so are written once.
#[derive(Debug, Clone)]
pub struct ChallengeContext {
    /// The public metadata URL (from PUBLIC_URL, never from request headers).
    resource_metadata: String,
    no_token: HeaderValue,
    no_token_body: Bytes,
    invalid_token: HeaderValue,
    invalid_token_body: Bytes,
    /// `DPoP algs="..."`, beside every 401's Bearer challenge while DPoP is accepted.
    dpop_algs: Option<String>,
    dpop: Option<HeaderValue>,
}

impl ChallengeContext {
    /// `resource_metadata`: the public metadata URL (from PUBLIC_URL, never from request
    /// headers); `base_scopes`: the 401 `scope` parameter.
    pub fn new(resource_metadata: String, base_scopes: &[String]) -> ChallengeContext {
        let base = base_scopes.join(" ");
        let rm = resource_metadata.as_str();
        let scope = (!base.is_empty()).then_some(("scope", base.as_str()));
        let challenge = |params: &[(&str, &str)]| {
            let params: Vec<_> = params.iter().copied().chain(scope).collect();
            www_authenticate(&params)
        };
        ChallengeContext {
            no_token: challenge(&[("resource_metadata", rm)]),
            no_token_body: Refusal::oauth_body("unauthorized", NO_TOKEN_DESCRIPTION),
            invalid_token: challenge(&[
                ("error", "invalid_token"),
                ("error_description", INVALID_TOKEN_DESCRIPTION),
                ("resource_metadata", rm),
            ]),
            invalid_token_body: Refusal::oauth_body("invalid_token", INVALID_TOKEN_DESCRIPTION),
            resource_metadata,
            dpop_algs: None,
            dpop: None,
        }
    }

    /// DPoP is accepted with these proof algorithms (`algs`, space-separated): every 401 also
    /// carries a `DPoP` challenge (RFC 9449 section 7.1).
    pub fn with_dpop(mut self, algs: String) -> ChallengeContext {
        self.dpop = Some(scheme_challenge("DPoP", &[("algs", algs.as_str())]));
        self.dpop_algs = Some(algs);
        self
    }

    /// The `DPoP` challenge beside a 401's Bearer one, when DPoP is accepted.
    fn beside(&self, refusal: Refusal) -> Refusal {
        match &self.dpop {
            Some(dpop) => refusal.with_challenge(dpop.clone()),
            None => refusal,
        }
    }
}

impl AuthRefusal {
    /// The refusal as a response: RFC 6750 body and `WWW-Authenticate` challenge.
    pub fn refusal(&self, ctx: &ChallengeContext) -> Refusal {
        let rm = ctx.resource_metadata.as_str();
        let status = self.status();
        match self {
            // The two 401s: every request without a valid token gets one, written once.
            AuthRefusal::NoToken => ctx.beside(
                Refusal::rendered(status, ctx.no_token_body.clone())
                    .with_challenge(ctx.no_token.clone()),
            ),
            AuthRefusal::InvalidToken => ctx.beside(
                Refusal::rendered(status, ctx.invalid_token_body.clone())
                    .with_challenge(ctx.invalid_token.clone()),
            ),
            AuthRefusal::Dpop {
                error,
                description,
                nonce,
            } => {
                let algs = ctx.dpop_algs.as_deref().unwrap_or("");
                let mut params = vec![("error", *error), ("error_description", *description)];
                if !algs.is_empty() {
                    params.push(("algs", algs));
                }
                // The Bearer challenge still names the metadata (clients find it there).
                let refusal = Refusal::oauth(status, error, *description)
                    .with_challenge(scheme_challenge("DPoP", &params))
                    .with_challenge(www_authenticate(&[("resource_metadata", rm)]));
                match nonce.as_deref().and_then(|n| HeaderValue::from_str(n).ok()) {
                    Some(n) => refusal.with_header(DPOP_NONCE, n),
                    None => refusal,
                }
            }
            AuthRefusal::BadRequest(why) => Refusal::oauth(status, "invalid_request", *why)
                .with_challenge(www_authenticate(&[
                    ("error", "invalid_request"),
                    ("error_description", why),
                    ("resource_metadata", rm),
                ])),
            AuthRefusal::InsufficientScope(scopes) => {
                const WHY: &str = "The access token lacks a scope this call needs";
                let needed = scopes.join(" ");
                Refusal::oauth(status, "insufficient_scope", WHY).with_challenge(www_authenticate(
                    &[
                        ("error", "insufficient_scope"),
                        ("scope", needed.as_str()),
                        ("resource_metadata", rm),
                        ("error_description", WHY),
                    ],
                ))
            }
            AuthRefusal::KeysUnavailable => Refusal::oauth(
                status,
                "temporarily_unavailable",
                "The token issuer's keys are not available yet; retry shortly",
            )
            .with_retry_after(5),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn quotes_are_escaped() {
        assert_eq!(
            www_authenticate(&[("scope", "a\"b\\c\r\n")]),
            "Bearer scope=\"a\\\"b\\\\c\""
        );
        assert_eq!(
            www_authenticate(&[("scope", "é\u{7f}x")]),
            "Bearer scope=\"x\""
        );
    }

    proptest! {
        #[test]
        fn challenges_are_always_valid_header_values(s in ".{0,64}", t in ".{0,64}") {
            let v = challenge_text("Bearer", &[("error_description", s.as_str()), ("scope", t.as_str())]);
            prop_assert!(HeaderValue::from_str(&v).is_ok());
        }
    }
}
