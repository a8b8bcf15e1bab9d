//! `[auth]`: the token issuer and its keys, audiences, algorithms, lifetimes, scopes and the
//! protected resource metadata.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use jsonwebtoken::Algorithm;
use serde::Deserialize;
use url::Url;

use super::{ConfigError, Context, bad, non_empty, parse_base_url, parse_url, range, var_for};
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
}

#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub enabled: bool,
    pub issuer: IssuerSetting,
    /// Empty = the resource URL.
    pub audiences: Vec<String>,
    pub algorithms: Vec<Algorithm>,
    pub leeway_secs: u64,
    pub require_at_jwt_typ: bool,
    pub jwks_ttl: Duration,
    pub jwks_cooldown: Duration,
    pub jwks_fetch_timeout: Duration,
    /// Cached keys stay in force this long past their last successful fetch while fetches fail.
    pub jwks_max_stale: Duration,
    /// Longest accepted `exp - now` in seconds; 0 = no limit.
    pub max_token_lifetime_secs: u64,
    /// Scope -> the scopes it also grants, closed transitively. Empty by default: scopes are
    /// compared exactly.
    pub scope_implies: std::collections::BTreeMap<String, Vec<String>>,
    pub base_scopes: Vec<String>,
    pub extra_scopes: Vec<String>,
    pub filter_tools_by_scope: bool,
    pub resource_name: String,
    pub resource_documentation: Option<String>,
    /// A verbatim protected resource metadata document.
    pub protected_resource_metadata: Option<serde_json::Map<String, serde_json::Value>>,
    pub client_id: Option<String>,
    pub mcp_server_id: Option<String>,
    /// The authorization server the metadata advertises, when it differs from the issuer
    /// (Scalekit: `${SK_ENV_URL}/resources/${MCP_SERVER_ID}`). `None` = the issuer.
    pub authorization_server: Option<String>,
    pub dev_key_dir: PathBuf,
}

#[derive(Deserialize)]
pub(super) struct Raw {
    enabled: bool,
    issuer: String,
    jwks_uri: String,
    audiences: Vec<String>,
    algorithms: Vec<String>,
    leeway_secs: u64,
    require_at_jwt_typ: bool,
    jwks_ttl_secs: u64,
    jwks_cooldown_secs: u64,
    jwks_fetch_timeout_ms: u64,
    jwks_max_stale_secs: u64,
    max_token_lifetime_secs: u64,
    scope_implies: ScopeImplies,
    base_scopes: Vec<String>,
    extra_scopes: Vec<String>,
    filter_tools_by_scope: bool,
    resource_name: String,
    resource_documentation: String,
    protected_resource_metadata: String,
    client_id: String,
    /// Accepted so that the Express pattern's `.env` (`SK_CLIENT_SECRET`) runs unchanged, and
    /// dropped here: a resource server never needs a client secret, so none is kept in memory.
    #[allow(dead_code)]
    client_secret: String,
    mcp_server_id: String,
    authorization_server: String,
    dev_key_dir: String,
}

/// `auth.scope_implies`: a table in the config files (`admin = ["reports:read"]`), or in an
/// environment variable the text `admin=reports:read reports:write; ops=deploy`.
#[derive(Deserialize)]
#[serde(untagged)]
enum ScopeImplies {
    Table(HashMap<String, Vec<String>>),
    Text(String),
}

impl Raw {
    pub(super) fn validate(self, cx: &Context) -> Result<AuthSettings, ConfigError> {
        let a = self;
        let (prod, scalekit) = (cx.prod, cx.scalekit);
        if prod && !a.enabled {
            return Err(bad(
                &var_for("auth.enabled"),
                "auth cannot be turned off in the production profile (it is a development-only switch)",
            ));
        }
        let issuer = match non_empty(&a.issuer) {
            Some(iss) => {
                // `iss` is compared exactly, so an OAUTH_ISSUER keeps its trailing slash (Auth0's
                // issuers have one). Scalekit's never do, so SK_ENV_URL loses a stray one.
                let iss = if scalekit {
                    iss.trim_end_matches('/').to_string()
                } else {
                    iss.to_string()
                };
                let iss_url =
                    parse_base_url(&iss, prod).map_err(|p| bad(&var_for("auth.issuer"), p))?;
                let jwks_uri = match non_empty(&a.jwks_uri) {
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
            None if prod => {
                return Err(bad(
                    &var_for("auth.issuer"),
                    "the production profile needs a real token issuer (set SK_ENV_URL or OAUTH_ISSUER); the built-in development issuer signs tokens with a key on local disk and is for development only",
                ));
            }
            None => IssuerSetting::Development,
        };
        let mut algorithms = Vec::new();
        for name in &a.algorithms {
            let Some(alg) = asymmetric_algorithm(name.trim()) else {
                return Err(bad(
                    &var_for("auth.algorithms"),
                    format!(
                        "{name:?} is not an accepted signature algorithm (RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA; HMAC and none are never accepted)"
                    ),
                ));
            };
            if !algorithms.contains(&alg) {
                algorithms.push(alg);
            }
        }
        if algorithms.is_empty() {
            return Err(bad(
                &var_for("auth.algorithms"),
                "must name at least one algorithm",
            ));
        }
        range(a.leeway_secs, 0, 60, "auth.leeway_secs")?;
        range(a.jwks_ttl_secs, 10, 7 * 86_400, "auth.jwks_ttl_secs")?;
        range(a.jwks_cooldown_secs, 1, 3600, "auth.jwks_cooldown_secs")?;
        range(
            a.jwks_fetch_timeout_ms,
            1,
            60_000,
            "auth.jwks_fetch_timeout_ms",
        )?;
        range(
            a.jwks_max_stale_secs,
            a.jwks_ttl_secs,
            30 * 86_400,
            "auth.jwks_max_stale_secs",
        )?;
        range(
            a.max_token_lifetime_secs,
            0,
            366 * 86_400,
            "auth.max_token_lifetime_secs",
        )?;
        let mut audiences = Vec::new();
        for aud in &a.audiences {
            let aud = aud.trim();
            if !aud.is_empty() && !audiences.iter().any(|x| x == aud) {
                audiences.push(aud.to_string());
            }
        }
        let protected_resource_metadata = match non_empty(&a.protected_resource_metadata) {
            None => None,
            Some(text) => {
                let setting = var_for("auth.protected_resource_metadata");
                let value: serde_json::Value = serde_json::from_str(text)
                    .map_err(|e| bad(&setting, format!("not valid JSON ({e})")))?;
                let serde_json::Value::Object(map) = value else {
                    return Err(bad(&setting, "must be a JSON object"));
                };
                match map.get("resource") {
                    Some(serde_json::Value::String(r)) if Url::parse(r).is_ok() => {}
                    _ => return Err(bad(&setting, "needs a \"resource\" member holding a URL")),
                }
                match map.get("authorization_servers") {
                    Some(serde_json::Value::Array(list))
                        if !list.is_empty() && list.iter().all(|v| v.is_string()) => {}
                    _ => {
                        return Err(bad(
                            &setting,
                            "needs an \"authorization_servers\" member: a non-empty array of issuer URLs",
                        ));
                    }
                }
                Some(map)
            }
        };
        let scope_list = |list: Vec<String>, key: &str| -> Result<Vec<String>, ConfigError> {
            let mut out: Vec<String> = Vec::new();
            for s in list {
                let s = s.trim().to_string();
                if s.is_empty() {
                    continue;
                }
                if !valid_scope_token(&s) {
                    return Err(bad(
                        &var_for(key),
                        format!("{s:?} is not a valid scope token"),
                    ));
                }
                if !out.contains(&s) {
                    out.push(s);
                }
            }
            Ok(out)
        };
        let authorization_server = match (
            non_empty(&a.authorization_server),
            &issuer,
            non_empty(&a.mcp_server_id),
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
        Ok(AuthSettings {
            enabled: a.enabled,
            issuer,
            audiences,
            algorithms,
            leeway_secs: a.leeway_secs,
            require_at_jwt_typ: a.require_at_jwt_typ,
            jwks_ttl: Duration::from_secs(a.jwks_ttl_secs),
            jwks_cooldown: Duration::from_secs(a.jwks_cooldown_secs),
            jwks_fetch_timeout: Duration::from_millis(a.jwks_fetch_timeout_ms),
            jwks_max_stale: Duration::from_secs(a.jwks_max_stale_secs),
            max_token_lifetime_secs: a.max_token_lifetime_secs,
            scope_implies: scope_implications(a.scope_implies)?,
            base_scopes: scope_list(a.base_scopes, "auth.base_scopes")?,
            extra_scopes: scope_list(a.extra_scopes, "auth.extra_scopes")?,
            filter_tools_by_scope: a.filter_tools_by_scope,
            resource_name: a.resource_name,
            resource_documentation: match non_empty(&a.resource_documentation) {
                Some(u) => Some(
                    parse_url(u, false)
                        .map_err(|p| bad(&var_for("auth.resource_documentation"), p))?
                        .to_string(),
                ),
                None => None,
            },
            protected_resource_metadata,
            client_id: non_empty(&a.client_id).map(str::to_string),
            mcp_server_id: non_empty(&a.mcp_server_id).map(str::to_string),
            authorization_server,
            dev_key_dir: PathBuf::from(a.dev_key_dir),
        })
    }
}

/// Reads `auth.scope_implies` and closes it transitively (`a` implies `b`, `b` implies `c`: `a`
/// grants `b` and `c`).
fn scope_implications(
    raw: ScopeImplies,
) -> Result<std::collections::BTreeMap<String, Vec<String>>, ConfigError> {
    let setting = var_for("auth.scope_implies");
    let pairs: Vec<(String, Vec<String>)> = match raw {
        ScopeImplies::Table(t) => t.into_iter().collect(),
        ScopeImplies::Text(text) => {
            let mut out = Vec::new();
            for rule in text.split(';').map(str::trim).filter(|r| !r.is_empty()) {
                let (scope, implied) = rule.split_once('=').ok_or_else(|| {
                    bad(
                        &setting,
                        format!("{rule:?} is not scope=implied scope list (e.g. admin=reports:read reports:write)"),
                    )
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
                return Err(bad(&setting, format!("{s:?} is not a valid scope token")));
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
