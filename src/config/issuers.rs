//! `[[auth.issuers]]`, `OAUTH_ISSUERS`, introspection (RFC 7662) and DPoP (RFC 9449) settings:
//! the trusted issuers resolved into one list, each with its keys, audiences, algorithms and
//! introspection endpoint.

use jsonwebtoken::Algorithm;
use serde::Deserialize;
use url::Url;

use super::{ConfigError, Secret, bad, parse_base_url, parse_url, var_for};
use crate::auth::asymmetric_algorithm;

/// One `[[auth.issuers]]` table, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerEntry {
    issuer: String,
    #[serde(default)]
    jwks_uri: String,
    #[serde(default)]
    audiences: Vec<String>,
    #[serde(default)]
    algorithms: Vec<String>,
    #[serde(default)]
    introspection_endpoint: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: Secret,
}

/// The credentials gatehouse presents to an introspection endpoint (client_secret_basic).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCredentials {
    pub id: String,
    pub secret: Secret,
}

/// A trusted remote issuer, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct TrustedIssuer {
    pub issuer: String,
    /// `None`: discovered from the issuer's metadata.
    pub jwks_uri: Option<Url>,
    /// Empty: the shared audiences (`auth.audiences`, else the resource URL).
    pub audiences: Vec<String>,
    pub algorithms: Vec<Algorithm>,
    /// `None`: from the issuer's metadata (`introspection_endpoint`) when introspection is on.
    pub introspection_endpoint: Option<Url>,
    pub client: Option<ClientCredentials>,
}

/// `auth.introspection`: which tokens are checked by the issuer's introspection endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Introspection {
    /// Never: only JWTs are accepted.
    Off,
    /// Tokens that are not JWTs (opaque, reference tokens).
    Opaque,
    /// Every token, JWTs included (revocation bites within the cache time).
    Always,
}

/// `auth.dpop`: sender-constrained tokens (RFC 9449).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DpopMode {
    /// The DPoP scheme is refused; a bound token is refused.
    Off,
    /// A bound token must come with a valid proof; an unbound one is accepted as Bearer.
    Allowed,
    /// Every token must be DPoP-bound and come with a proof.
    Required,
}

/// An issuer URL as the server compares it: trailing slashes kept (`iss` is compared exactly).
fn issuer_url(s: &str, prod: bool, setting: &str) -> Result<String, ConfigError> {
    let s = s.trim();
    parse_base_url(s, prod).map_err(|p| bad(setting, p))?;
    Ok(s.to_string())
}

fn optional_url(s: &str, prod: bool, setting: &str) -> Result<Option<Url>, ConfigError> {
    match s.trim() {
        "" => Ok(None),
        u => parse_url(u, prod).map(Some).map_err(|p| bad(setting, p)),
    }
}

/// A list of algorithm names; empty = `default`.
fn algorithm_list(
    names: &[String],
    default: &[Algorithm],
    setting: &str,
) -> Result<Vec<Algorithm>, ConfigError> {
    let mut out = Vec::new();
    for name in names {
        let alg = asymmetric_algorithm(name.trim()).ok_or_else(|| {
            bad(
                setting,
                format!("{name:?} is not an accepted signature algorithm (RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA)"),
            )
        })?;
        if !out.contains(&alg) {
            out.push(alg);
        }
    }
    Ok(if out.is_empty() {
        default.to_vec()
    } else {
        out
    })
}

fn credentials(id: &str, secret: &Secret) -> Option<ClientCredentials> {
    let id = id.trim();
    (!id.is_empty()).then(|| ClientCredentials {
        id: id.to_string(),
        secret: secret.clone(),
    })
}

/// What resolving the list needs from the rest of `[auth]`.
pub(super) struct Shared<'a> {
    pub prod: bool,
    pub algorithms: &'a [Algorithm],
    pub introspection: Introspection,
}

impl IssuerEntry {
    fn resolve(&self, n: usize, s: &Shared) -> Result<TrustedIssuer, ConfigError> {
        let setting = |field: &str| format!("auth.issuers[{n}].{field}");
        if self.issuer.trim().is_empty() {
            return Err(bad(&setting("issuer"), "is empty: name the issuer URL"));
        }
        let audiences = self
            .audiences
            .iter()
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty())
            .collect();
        let client = credentials(&self.client_id, &self.client_secret);
        if client
            .as_ref()
            .is_some_and(|c| c.secret.expose().is_empty())
        {
            return Err(bad(
                &setting("client_secret"),
                "is empty while client_id is set: introspection authenticates with both",
            ));
        }
        Ok(TrustedIssuer {
            issuer: issuer_url(&self.issuer, s.prod, &setting("issuer"))?,
            jwks_uri: optional_url(&self.jwks_uri, s.prod, &setting("jwks_uri"))?,
            audiences,
            algorithms: algorithm_list(&self.algorithms, s.algorithms, &setting("algorithms"))?,
            introspection_endpoint: optional_url(
                &self.introspection_endpoint,
                s.prod,
                &setting("introspection_endpoint"),
            )?,
            client,
        })
    }
}

/// The single issuer's own settings (`auth.issuer` and the fields beside it).
pub(super) struct Single<'a> {
    pub issuer: &'a str,
    pub jwks_uri: Option<Url>,
    pub introspection_endpoint: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub client_secret: &'a Secret,
}

/// Every trusted remote issuer, in order: the single issuer (if any), `[[auth.issuers]]`, then
/// `OAUTH_ISSUERS`. An issuer named twice in the first two is an error (which entry's settings
/// count would be a guess); `OAUTH_ISSUERS` may repeat one named before (it adds no settings).
pub(super) fn resolve(
    single: Option<Single>,
    entries: &[IssuerEntry],
    urls: &[String],
    s: &Shared,
) -> Result<Vec<TrustedIssuer>, ConfigError> {
    let mut out: Vec<TrustedIssuer> = Vec::new();
    if let Some(single) = single {
        let client = single
            .client_id
            .and_then(|id| credentials(id, single.client_secret));
        // The Scalekit variables name a client id for other uses too: only introspection
        // needs its secret.
        if s.introspection != Introspection::Off
            && client
                .as_ref()
                .is_some_and(|c| c.secret.expose().is_empty())
        {
            return Err(bad(
                &var_for("auth.client_secret"),
                "is empty while the client id is set: introspection authenticates with both",
            ));
        }
        out.push(TrustedIssuer {
            issuer: single.issuer.to_string(),
            jwks_uri: single.jwks_uri,
            audiences: Vec::new(),
            algorithms: s.algorithms.to_vec(),
            introspection_endpoint: optional_url(
                single.introspection_endpoint.unwrap_or(""),
                s.prod,
                &var_for("auth.introspection_endpoint"),
            )?,
            client,
        });
    }
    for (n, entry) in entries.iter().enumerate() {
        let trusted = entry.resolve(n, s)?;
        if out.iter().any(|t| t.issuer == trusted.issuer) {
            return Err(bad(
                &format!("auth.issuers[{n}].issuer"),
                format!("{:?} is already a trusted issuer", trusted.issuer),
            ));
        }
        out.push(trusted);
    }
    for url in urls {
        let issuer = issuer_url(url, s.prod, &var_for("auth.issuer_urls"))?;
        if out.iter().any(|t| t.issuer == issuer) {
            continue;
        }
        out.push(TrustedIssuer {
            issuer,
            jwks_uri: None,
            audiences: Vec::new(),
            algorithms: s.algorithms.to_vec(),
            introspection_endpoint: None,
            client: None,
        });
    }
    if s.introspection != Introspection::Off && !out.iter().any(|t| t.client.is_some()) {
        return Err(bad(
            &var_for("auth.introspection"),
            "introspection needs client credentials to present to the endpoint: set auth.client_id and auth.client_secret (SK_CLIENT_ID, SK_CLIENT_SECRET) or an issuer's client_id and client_secret",
        ));
    }
    Ok(out)
}
