//! `[auth]`: the token issuer and its keys, audiences, algorithms, lifetimes, scopes and the
//! protected resource metadata.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use jsonwebtoken::Algorithm;
use serde::Deserialize;
use serde::de::Error as _;
use url::Url;

use super::issuers::{self, DpopMode, Introspection, IssuerEntry, Shared, Single, TrustedIssuer};
use super::{
    ConfigError, Context, Secret, bad, millis, optional_text, parse_base_url, parse_url, range,
    secs, var_for,
};
use crate::auth::{asymmetric_algorithm, valid_scope_token};

/// Where tokens come from.
#[derive(Debug, Clone, PartialEq)]
pub enum IssuerSetting {
    /// The built-in development issuer (development profile only).
    Development,
    /// A real issuer; keys from `jwks_uri`, or discovered from the issuer's metadata.
    Remote {
        issuer: String,
        jwks_uri: Option<Url>,
    },
    /// No single issuer: `[[auth.issuers]]` or `OAUTH_ISSUERS` name them all.
    Listed,
}

/// `[auth]`: one type, deserialized as it is used, then resolved: the issuer, its key set URL
/// and the advertised authorization server depend on each other, on the profile and on
/// whether the Scalekit variables named the issuer.
#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    pub enabled: bool,
    /// Read as the configured issuer (empty = the development issuer); resolved with
    /// `jwks_uri` and the Scalekit conventions.
    #[serde(deserialize_with = "issuer")]
    pub issuer: IssuerSetting,
    /// Folded into `issuer` when resolved.
    #[serde(deserialize_with = "optional_text")]
    jwks_uri: Option<String>,
    /// Empty = the resource URL.
    #[serde(deserialize_with = "trimmed_unique")]
    pub audiences: Vec<String>,
    #[serde(deserialize_with = "algorithms")]
    pub algorithms: Vec<Algorithm>,
    pub leeway_secs: u64,
    pub require_at_jwt_typ: bool,
    #[serde(rename = "jwks_ttl_secs", deserialize_with = "secs")]
    pub jwks_ttl: Duration,
    #[serde(rename = "jwks_cooldown_secs", deserialize_with = "secs")]
    pub jwks_cooldown: Duration,
    #[serde(rename = "jwks_fetch_timeout_ms", deserialize_with = "millis")]
    pub jwks_fetch_timeout: Duration,
    /// Cached keys stay in force this long past their last successful fetch while fetches fail.
    #[serde(rename = "jwks_max_stale_secs", deserialize_with = "secs")]
    pub jwks_max_stale: Duration,
    /// How long startup waits for the first key set before it binds the port anyway.
    #[serde(rename = "startup_key_wait_secs", deserialize_with = "secs")]
    pub startup_key_wait: Duration,
    /// Longest accepted `exp - now` in seconds; 0 = no limit.
    pub max_token_lifetime_secs: u64,
    /// Scope -> the scopes it also grants, closed transitively. Empty by default: scopes are
    /// compared exactly.
    #[serde(deserialize_with = "scope_implications")]
    pub scope_implies: std::collections::BTreeMap<String, Vec<String>>,
    /// The claims that name a token's subject, the first present wins (`sub`, then
    /// `client_id`: a machine client's token has no `sub`).
    pub subject_claims: Vec<String>,
    #[serde(deserialize_with = "scope_list")]
    pub base_scopes: Vec<String>,
    #[serde(deserialize_with = "scope_list")]
    pub extra_scopes: Vec<String>,
    pub filter_tools_by_scope: bool,
    pub resource_name: String,
    #[serde(deserialize_with = "documentation_url")]
    pub resource_documentation: Option<String>,
    /// A verbatim protected resource metadata document.
    #[serde(deserialize_with = "metadata_document")]
    pub protected_resource_metadata: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(deserialize_with = "optional_text")]
    pub client_id: Option<String>,
    /// Moved into the single issuer's credentials when resolved (kept in one place only).
    client_secret: Secret,
    /// `[[auth.issuers]]`, as written; resolved into `trusted`.
    issuers: Vec<IssuerEntry>,
    /// `OAUTH_ISSUERS`: more issuers, each found by discovery, sharing the audiences.
    #[serde(deserialize_with = "trimmed_unique")]
    issuer_urls: Vec<String>,
    /// Every trusted remote issuer, the single one first (the development issuer is not here).
    #[serde(skip)]
    pub trusted: Vec<TrustedIssuer>,
    pub introspection: Introspection,
    #[serde(deserialize_with = "optional_text")]
    introspection_endpoint: Option<String>,
    pub introspection_cache_secs: u64,
    pub introspection_negative_cache_secs: u64,
    pub dpop: DpopMode,
    #[serde(deserialize_with = "algorithms")]
    pub dpop_algorithms: Vec<Algorithm>,
    pub dpop_max_age_secs: u64,
    pub dpop_nonce: bool,
    #[serde(deserialize_with = "optional_text")]
    pub mcp_server_id: Option<String>,
    /// The authorization server the metadata advertises, when it differs from the issuer
    /// (Scalekit: `${SK_ENV_URL}/resources/${MCP_SERVER_ID}`). `None` = the issuer.
    #[serde(deserialize_with = "optional_text")]
    pub authorization_server: Option<String>,
    pub dev_key_dir: PathBuf,
}

fn issuer<'de, D: serde::Deserializer<'de>>(d: D) -> Result<IssuerSetting, D::Error> {
    Ok(match optional_text(d)? {
        None => IssuerSetting::Development,
        Some(issuer) => IssuerSetting::Remote {
            issuer,
            jwks_uri: None,
        },
    })
}

fn trimmed_unique<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let mut out: Vec<String> = Vec::new();
    for item in Vec::<String>::deserialize(d)? {
        let item = item.trim();
        if !item.is_empty() && !out.iter().any(|x| x == item) {
            out.push(item.to_string());
        }
    }
    Ok(out)
}

fn algorithms<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Algorithm>, D::Error> {
    let mut out = Vec::new();
    for name in Vec::<String>::deserialize(d)? {
        let alg = asymmetric_algorithm(name.trim()).ok_or_else(|| {
            D::Error::custom(format!(
                "{name:?} is not an accepted signature algorithm (RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA; HMAC and none are never accepted)"
            ))
        })?;
        if !out.contains(&alg) {
            out.push(alg);
        }
    }
    if out.is_empty() {
        return Err(D::Error::custom("must name at least one algorithm"));
    }
    Ok(out)
}

fn scope_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let list = trimmed_unique(d)?;
    match list.iter().find(|s| !valid_scope_token(s)) {
        Some(s) => Err(D::Error::custom(format!(
            "{s:?} is not a valid scope token"
        ))),
        None => Ok(list),
    }
}

fn documentation_url<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match optional_text(d)? {
        None => Ok(None),
        Some(u) => parse_url(&u, false)
            .map(|u| Some(u.to_string()))
            .map_err(D::Error::custom),
    }
}

/// PROTECTED_RESOURCE_METADATA: a JSON object with `resource` and `authorization_servers`.
fn metadata_document<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<serde_json::Map<String, serde_json::Value>>, D::Error> {
    let Some(text) = optional_text(d)? else {
        return Ok(None);
    };
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| D::Error::custom(format!("not valid JSON ({e})")))?;
    let serde_json::Value::Object(map) = value else {
        return Err(D::Error::custom("must be a JSON object"));
    };
    match map.get("resource") {
        Some(serde_json::Value::String(r)) if Url::parse(r).is_ok() => {}
        _ => {
            return Err(D::Error::custom(
                "needs a \"resource\" member holding a URL",
            ));
        }
    }
    match map.get("authorization_servers") {
        Some(serde_json::Value::Array(list))
            if !list.is_empty() && list.iter().all(|v| v.is_string()) => {}
        _ => {
            return Err(D::Error::custom(
                "needs an \"authorization_servers\" member: a non-empty array of issuer URLs",
            ));
        }
    }
    Ok(Some(map))
}

/// `auth.scope_implies`: a table in the config files (`admin = ["reports:read"]`), or in an
/// environment variable the text `admin=reports:read reports:write; ops=deploy`.
#[derive(Deserialize)]
#[serde(untagged)]
enum ScopeImplies {
    Table(HashMap<String, Vec<String>>),
    Text(String),
}

impl AuthSettings {
    /// The trusted issuers (`trusted`), the introspection and DPoP settings.
    fn resolve_trusted(&mut self, prod: bool) -> Result<(), ConfigError> {
        let single = match &self.issuer {
            IssuerSetting::Remote { issuer, jwks_uri } => Some(Single {
                issuer,
                jwks_uri: jwks_uri.clone(),
                introspection_endpoint: self.introspection_endpoint.as_deref(),
                client_id: self.client_id.as_deref(),
                client_secret: &self.client_secret,
            }),
            _ => None,
        };
        let shared = Shared {
            prod,
            algorithms: &self.algorithms,
            introspection: self.introspection,
        };
        self.trusted = issuers::resolve(single, &self.issuers, &self.issuer_urls, &shared)?;
        self.client_secret = Secret::default();
        range(
            self.introspection_cache_secs,
            0,
            3600,
            "auth.introspection_cache_secs",
        )?;
        range(
            self.introspection_negative_cache_secs,
            0,
            300,
            "auth.introspection_negative_cache_secs",
        )?;
        range(self.dpop_max_age_secs, 1, 300, "auth.dpop_max_age_secs")?;
        Ok(())
    }

    /// Every number of `[auth]` in its range.
    fn check_ranges(&self) -> Result<(), ConfigError> {
        range(self.leeway_secs, 0, 60, "auth.leeway_secs")?;
        let ttl = self.jwks_ttl.as_secs();
        range(ttl, 10, 7 * 86_400, "auth.jwks_ttl_secs")?;
        range(
            self.jwks_cooldown.as_secs(),
            1,
            3600,
            "auth.jwks_cooldown_secs",
        )?;
        range(
            self.jwks_fetch_timeout.as_millis() as u64,
            1,
            60_000,
            "auth.jwks_fetch_timeout_ms",
        )?;
        range(
            self.jwks_max_stale.as_secs(),
            ttl,
            30 * 86_400,
            "auth.jwks_max_stale_secs",
        )?;
        range(
            self.startup_key_wait.as_secs(),
            0,
            600,
            "auth.startup_key_wait_secs",
        )?;
        range(
            self.max_token_lifetime_secs,
            0,
            366 * 86_400,
            "auth.max_token_lifetime_secs",
        )?;
        Ok(())
    }

    /// `auth.subject_claims`: 1 to 8 plain claim names (blank entries dropped).
    fn check_subject_claims(&mut self) -> Result<(), ConfigError> {
        self.subject_claims.retain(|c| !c.trim().is_empty());
        let claim_name = |c: &String| {
            (1..=64).contains(&c.len())
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-:.".contains(&b))
        };
        if self.subject_claims.is_empty()
            || self.subject_claims.len() > 8
            || !self.subject_claims.iter().all(claim_name)
        {
            return Err(bad(
                &var_for("auth.subject_claims"),
                "must list 1 to 8 claim names (letters, digits, _ - : .), e.g. sub,client_id",
            ));
        }
        Ok(())
    }

    /// Checks ranges and the production rules, and resolves the issuer, its key set URL and
    /// the advertised authorization server.
    pub(super) fn resolve(&mut self, cx: &Context) -> Result<(), ConfigError> {
        let (prod, scalekit) = (cx.prod, cx.scalekit);
        self.check_subject_claims()?;
        if prod && !self.enabled {
            return Err(bad(
                &var_for("auth.enabled"),
                "auth cannot be turned off in the production profile (it is a development-only switch)",
            ));
        }
        self.issuer = match &self.issuer {
            IssuerSetting::Remote { issuer, .. } => {
                // `iss` is compared exactly, so an OAUTH_ISSUER keeps its trailing slash (Auth0's
                // issuers have one). Scalekit's never do, so SK_ENV_URL loses a stray one.
                let iss = if scalekit {
                    issuer.trim_end_matches('/').to_string()
                } else {
                    issuer.clone()
                };
                let iss_url =
                    parse_base_url(&iss, prod).map_err(|p| bad(&var_for("auth.issuer"), p))?;
                let jwks_uri = match &self.jwks_uri {
                    Some(u) => {
                        Some(parse_url(u, prod).map_err(|p| bad(&var_for("auth.jwks_uri"), p))?)
                    }
                    None if scalekit => Some(
                        Url::parse(&format!("{}/keys", iss_url.as_str().trim_end_matches('/')))
                            .map_err(|e| bad(&var_for("auth.issuer"), e.to_string()))?,
                    ),
                    None => None,
                };
                IssuerSetting::Remote {
                    issuer: iss,
                    jwks_uri,
                }
            }
            IssuerSetting::Development | IssuerSetting::Listed
                if !self.issuers.is_empty() || !self.issuer_urls.is_empty() =>
            {
                IssuerSetting::Listed
            }
            IssuerSetting::Development | IssuerSetting::Listed if prod => {
                return Err(bad(
                    &var_for("auth.issuer"),
                    "the production profile needs a real token issuer (set SK_ENV_URL or OAUTH_ISSUER); the built-in development issuer signs tokens with a key on local disk and is for development only",
                ));
            }
            IssuerSetting::Development | IssuerSetting::Listed => IssuerSetting::Development,
        };
        self.resolve_trusted(prod)?;
        self.check_ranges()?;
        self.authorization_server = match (
            &self.authorization_server,
            &self.issuer,
            &self.mcp_server_id,
        ) {
            (Some(u), _, _) => Some(
                parse_url(u, prod)
                    .map_err(|p| bad(&var_for("auth.authorization_server"), p))?
                    .as_str()
                    .trim_end_matches('/')
                    .to_string(),
            ),
            // Scalekit publishes an MCP server's authorization server per resource.
            (None, IssuerSetting::Remote { issuer, .. }, Some(res)) if scalekit => {
                Some(format!("{issuer}/resources/{res}"))
            }
            _ => None,
        };
        Ok(())
    }
}

/// Reads `auth.scope_implies` and closes it transitively (`a` implies `b`, `b` implies `c`: `a`
/// grants `b` and `c`).
fn scope_implications<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<std::collections::BTreeMap<String, Vec<String>>, D::Error> {
    let raw = ScopeImplies::deserialize(d)?;
    let pairs: Vec<(String, Vec<String>)> = match raw {
        ScopeImplies::Table(t) => t.into_iter().collect(),
        ScopeImplies::Text(text) => {
            let mut out = Vec::new();
            for rule in text.split(';').map(str::trim).filter(|r| !r.is_empty()) {
                let (scope, implied) = rule.split_once('=').ok_or_else(|| {
                    D::Error::custom(format!(
                        "{rule:?} is not scope=implied scope list (e.g. admin=reports:read reports:write)"
                    ))
                })?;
                out.push((
                    scope.trim().to_string(),
                    implied
                        .split([' ', ','])
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect(),
                ));
            }
            out
        }
    };
    let mut direct: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (scope, implied) in pairs {
        for s in std::iter::once(&scope).chain(&implied) {
            if !valid_scope_token(s) {
                return Err(D::Error::custom(format!(
                    "{s:?} is not a valid scope token"
                )));
            }
        }
        direct.entry(scope).or_default().extend(implied);
    }
    let mut closed = std::collections::BTreeMap::new();
    for scope in direct.keys() {
        let mut seen = std::collections::BTreeSet::new();
        let mut todo = vec![scope.clone()];
        while let Some(s) = todo.pop() {
            for i in direct.get(&s).into_iter().flatten() {
                if i != scope && seen.insert(i.clone()) {
                    todo.push(i.clone());
                }
            }
        }
        closed.insert(scope.clone(), seen.into_iter().collect());
    }
    Ok(closed)
}
