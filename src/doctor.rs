//! `gatehouse doctor`: loads the configuration exactly as the server would, fetches the key set,
//! prints what the server would serve and with which checks, warns about the usual
//! misconfigurations, and (with `--token -`) says whether a token would be accepted and why
//! not. Never prints a secret, a token or its signature.

use std::fmt::Write as _;
use std::time::Instant;

use serde_json::Value;
use url::Url;

use crate::auth::jwks::KeyStore;
use crate::auth::validator::{Rejection, b64_json, claimed_scopes, string_list};
use crate::auth::verifier::{TrustedCheck, Verifier, token_digest};
use crate::auth::{Caller, Identity};
use crate::config::{IssuerSetting, Profile, RedisDown, Settings};
use crate::registry::Registry;
use crate::state::{PublicUrls, key_stores, public_urls, verifier};

/// What the doctor found: the report to print, and whether serving (or the token) would work.
pub struct Report {
    pub text: String,
    pub ok: bool,
}

/// Runs the checks. `token` is the token to explain, if any. Every URL in the report is shown
/// without its user info and query (`text::redact_urls`).
pub async fn run(settings: &Settings, token: Option<&str>) -> Report {
    let report = checks(settings, token).await;
    Report {
        text: crate::text::redact_urls(&report.text).into_owned(),
        ok: report.ok,
    }
}

/// The report as it is written: one line per fact, and whether every check passed.
struct Lines {
    out: String,
    ok: bool,
}

impl Lines {
    fn line(&mut self, name: &str, value: &str) {
        let _ = writeln!(self.out, "{:<22}{value}", format!("{name}:"));
    }

    /// A line that says something would not work.
    fn failing(&mut self, name: &str, value: &str) {
        self.line(name, value);
        self.ok = false;
    }
}

async fn checks(settings: &Settings, token: Option<&str>) -> Report {
    let urls = match public_urls(settings, settings.server.port) {
        Ok(u) => u,
        Err(e) => {
            return Report {
                text: format!("FAIL: {e}\n"),
                ok: false,
            };
        }
    };
    let mut r = Lines {
        out: String::new(),
        ok: true,
    };
    where_it_serves(&mut r, settings, &urls);
    // Every trusted issuer's key set and introspection endpoint, checked now.
    let (stores, _dev) = match key_stores(settings, &urls) {
        Ok(k) => k,
        Err(e) => {
            let _ = writeln!(r.out, "FAIL: {e}");
            return Report {
                text: r.out,
                ok: false,
            };
        }
    };
    let verifier = verifier(settings, &urls, &stores);
    for check in verifier.issuers() {
        key_set(&mut r, settings, &urls, check).await;
        introspection(&mut r, check).await;
    }
    policies(&mut r, settings, &urls);
    shared_store(&mut r, settings).await;
    r.line("protocol revisions", &crate::mcp::ALL_VERSIONS.join(", "));
    state_key(&mut r, settings);
    for w in warnings(settings, &urls) {
        let _ = writeln!(r.out, "warning: {w}");
    }
    if let Some(token) = token {
        let (accepted, text) = explain(settings, &verifier, token).await;
        r.out.push_str(&text);
        r.ok = r.ok && accepted;
    }
    let verdict = if r.ok {
        "OK: serving would work"
    } else {
        "FAIL: see the lines above"
    };
    let _ = writeln!(r.out, "{verdict}");
    Report {
        text: r.out,
        ok: r.ok,
    }
}

/// The profile, the public URLs and the issuer.
fn where_it_serves(r: &mut Lines, settings: &Settings, urls: &PublicUrls) {
    r.line("profile", settings.profile.name());
    r.line(
        "public URL",
        &match &settings.server.public_url {
            Some(_) => urls.base.clone(),
            None => format!("{} (development default)", urls.base),
        },
    );
    r.line("MCP endpoint", &urls.resource);
    r.line(
        "metadata URLs",
        &format!(
            "{}, {}/.well-known/oauth-protected-resource",
            urls.metadata_url, urls.base
        ),
    );
    match &settings.auth.issuer {
        IssuerSetting::Development => r.line(
            "issuer",
            &format!("{} (built-in development issuer)", urls.issuer),
        ),
        _ => {
            let all: Vec<&str> = settings
                .auth
                .trusted
                .iter()
                .map(|t| t.issuer.as_str())
                .collect();
            r.line(
                if all.len() == 1 { "issuer" } else { "issuers" },
                &all.join(", "),
            );
        }
    }
    r.line(
        "token kinds",
        &format!(
            "JWT{}; DPoP {:?}",
            match settings.auth.introspection {
                crate::config::Introspection::Off => "",
                crate::config::Introspection::Opaque => ", opaque tokens by introspection",
                crate::config::Introspection::Always => ", every token introspected",
            },
            settings.auth.dpop
        ),
    );
    if !settings.auth.enabled {
        r.line("auth", "OFF (auth.enabled = false): development only");
    }
}

/// An issuer's introspection endpoint: found, and answering a made-up token (which proves the
/// client credentials are accepted).
async fn introspection(r: &mut Lines, check: &TrustedCheck) {
    let Some(i) = &check.introspector else {
        return;
    };
    match i.endpoint().await {
        Err(e) => r.failing("introspection", &format!("NO ENDPOINT: {e}")),
        Ok(url) => {
            let probe = "gatehouse-doctor-probe";
            let text = match i.introspect(probe, &token_digest(probe.as_bytes())).await {
                Err(crate::auth::introspection::Failure::Inactive) => {
                    format!("{url}: answers (a made-up token is inactive; credentials accepted)")
                }
                Ok(_) => format!("{url}: answers, but calls a made-up token active"),
                Err(_) => {
                    r.failing(
                        "introspection",
                        &format!("{url}: FAILED (see the log line above; check auth.client_id, auth.client_secret)"),
                    );
                    return;
                }
            };
            r.line("introspection", &text);
        }
    }
}

/// An issuer's key set, fetched now as the server would fetch it.
async fn key_set(r: &mut Lines, settings: &Settings, urls: &PublicUrls, check: &TrustedCheck) {
    let keys = check.validator.keys();
    if settings.auth.trusted.len() > 1 {
        r.line("issuer", check.validator.issuer());
    }
    let started = Instant::now();
    let fetched = match &settings.auth.issuer {
        IssuerSetting::Development => Ok(keys.current().map_or(0, |s| s.keys.len())),
        _ => keys.fetch_once().await,
    };
    let uri = match (&settings.auth.issuer, keys.jwks_uri()) {
        (IssuerSetting::Development, _) => {
            format!("{}{}/keys", urls.base, crate::auth::dev_issuer::ISSUER_PATH)
        }
        (_, Some(u)) => u.to_string(),
        (_, None) => "(not discovered)".into(),
    };
    r.line("key set URL", &uri);
    match &fetched {
        Ok(n) => {
            let set = keys.current();
            let list: Vec<String> = set
                .iter()
                .flat_map(|s| s.keys.iter())
                .map(|k| format!("{} {:?}", k.kid.as_deref().unwrap_or("(no kid)"), k.alg))
                .collect();
            let text = format!(
                "fetched in {} ms: {n} usable key(s){}{}",
                started.elapsed().as_millis(),
                if list.is_empty() { "" } else { ": " },
                list.join(", ")
            );
            if *n == 0 {
                r.failing("key set", &text);
            } else {
                r.line("key set", &text);
            }
        }
        Err(e) => r.failing("key set", &format!("COULD NOT BE FETCHED: {e}")),
    }
}

/// Audiences, algorithms, origins, hosts, the trusted proxy and the rate limits.
fn policies(r: &mut Lines, settings: &Settings, urls: &PublicUrls) {
    r.line("accepted audiences", &urls.audiences.join(", "));
    let algs: Vec<String> = (settings.auth.algorithms.iter())
        .map(|a| format!("{a:?}"))
        .collect();
    r.line("algorithms", &algs.join(", "));
    let origins: Vec<String> = (settings.cors.allowed_origins.iter())
        .map(|o| o.to_string())
        .collect();
    r.line(
        "allowed origins",
        &if origins.is_empty() {
            "(none: browsers cannot call this server)".into()
        } else {
            origins.join(", ")
        },
    );
    let hosts: Vec<String> = (settings.security.allowed_hosts.iter())
        .map(|h| h.to_string())
        .collect();
    r.line("allowed hosts", &hosts.join(", "));
    r.line(
        "trusted proxy",
        &format!("{:?}", settings.security.trusted_proxy).to_ascii_lowercase(),
    );
    let rl = &settings.rate_limit;
    r.line(
        "rate limits",
        &if rl.enabled {
            format!(
                "{}/min (burst {}) requests per client, {}/min (burst {}) tool calls per subject; per instance",
                rl.requests_per_minute,
                rl.requests_burst,
                rl.tool_calls_per_minute,
                rl.tool_calls_burst
            )
        } else {
            "off".into()
        },
    );
}

/// The shared store (REDIS_URL), asked now.
async fn shared_store(r: &mut Lines, settings: &Settings) {
    let rl = &settings.rate_limit;
    let Some(url) = &rl.redis_url else {
        r.line(
            "shared store",
            "none: budgets and list changes are per instance (set REDIS_URL to share them)",
        );
        return;
    };
    let store = match crate::shared_store::SharedStore::new(
        url.expose(),
        rl.redis_timeout,
        rl.redis_insecure_tls,
    ) {
        Ok(store) => store,
        Err(e) => return r.failing("shared store", &format!("REDIS_URL cannot be used: {e}")),
    };
    match store.ping().await {
        Ok(()) => r.line(
            "shared store",
            &format!(
                "{} answers: budgets and list changes are shared",
                store.location
            ),
        ),
        Err(e) => {
            let (would, fails) = match rl.redis_down {
                RedisDown::Local => ("fall back to each instance's own", false),
                RedisDown::Refuse => ("refuse requests (503)", true),
            };
            let text = format!(
                "{} DOES NOT ANSWER ({e}): budgets would {would}",
                store.location
            );
            if fails {
                r.failing("shared store", &text);
            } else {
                r.line("shared store", &text);
            }
        }
    }
}

/// The key that seals `requestState`, and whether production would start without it.
fn state_key(r: &mut Lines, settings: &Settings) {
    let asker = crate::registry::Registry::from_inventory()
        .ok()
        .and_then(|r| r.first_asker());
    let m = &settings.mcp;
    match (&m.state_key, &asker) {
        (Some(_), _) => r.line(
            "requestState key",
            &format!(
                "MCP_STATE_KEY set{}",
                if m.state_key_previous.is_some() {
                    ", previous key accepted too"
                } else {
                    ""
                }
            ),
        ),
        (None, Some(a)) if settings.profile == crate::config::Profile::Production => r.failing(
            "requestState key",
            &format!("MISSING: {a} asks the client, so production needs MCP_STATE_KEY"),
        ),
        (None, Some(a)) => r.line(
            "requestState key",
            &format!(
                "generated per process ({a} asks the client; set MCP_STATE_KEY so instances share it)"
            ),
        ),
        (None, None) => r.line("requestState key", "not needed (no handler asks the client)"),
    }
}

/// The usual misconfigurations.
fn warnings(settings: &Settings, urls: &PublicUrls) -> Vec<String> {
    let mut out = Vec::new();
    let resource = Url::parse(&urls.resource).ok();
    for aud in &urls.audiences {
        if *aud == urls.resource {
            continue;
        }
        if let (Some(r), Ok(a)) = (&resource, Url::parse(aud)) {
            let same_path = r.path().trim_end_matches('/') == a.path().trim_end_matches('/');
            let hint = if a.host_str() != r.host_str() || !same_path {
                None
            } else if r.path() != a.path() {
                Some("a trailing slash")
            } else if r.scheme() != a.scheme() {
                Some("the scheme")
            } else if r.port_or_known_default() != a.port_or_known_default() {
                Some("the port")
            } else {
                None
            };
            if let Some(what) = hint {
                out.push(format!(
                    "audience {aud:?} differs from the MCP endpoint {:?} only by {what}: tokens minted for one are refused by the other (EXPECTED_AUDIENCE must match the token's aud exactly)",
                    urls.resource
                ));
            }
        }
    }
    let prod = settings.profile == Profile::Production;
    if prod && urls.issuer.starts_with("http://") {
        out.push(format!(
            "the issuer {:?} uses http in production (OAUTH_ISSUER / SK_ENV_URL)",
            urls.issuer
        ));
    }
    let loopback = Url::parse(&urls.base).is_ok_and(|u| crate::config::is_loopback(&u));
    if !urls.base.starts_with("https://") && (prod || !loopback) {
        out.push(format!(
            "the public URL {:?} is not https: clients and issuers expect https (PUBLIC_URL)",
            urls.base
        ));
    }
    if let Some(doc) = &settings.auth.protected_resource_metadata {
        let r = doc.get("resource").and_then(Value::as_str).unwrap_or("");
        if r != urls.resource {
            out.push(format!(
                "PROTECTED_RESOURCE_METADATA names resource {r:?}, but the MCP endpoint is {:?}: clients compare them and give up",
                urls.resource
            ));
        }
    }
    out
}

fn segment(token: &str, i: usize) -> Option<Value> {
    b64_json(token.split('.').nth(i)?)
}

/// Explains whether this server accepts `token`: the validator's verdict, then each claim
/// What a token's header shows that the server would refuse: its algorithm, its `kid`.
fn header_hints(
    header: &Value,
    settings: &Settings,
    keys: &KeyStore,
) -> Vec<(&'static str, String)> {
    let mut why = Vec::new();
    // Algorithm and key.
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
    let allowed: Vec<String> = settings
        .auth
        .algorithms
        .iter()
        .map(|a| format!("{a:?}"))
        .collect();
    if !alg.is_empty() && !allowed.iter().any(|a| a == alg) {
        why.push((
            "alg",
            format!(
                "algorithm {alg:?} is not accepted (auth.algorithms: {})",
                allowed.join(", ")
            ),
        ));
    }
    if let Some(kid) = header.get("kid").and_then(Value::as_str) {
        let known = keys.current().is_some_and(|s| s.has_kid(kid));
        if !known {
            why.push((
                "kid",
                format!("kid {kid:?} is not in the issuer's key set (refetched just now)"),
            ));
        }
    }
    why
}

/// What a token's claims show that the server would refuse: missing claims, issuer,
/// audience, expiry and not-before.
fn claim_hints(
    claims: &Value,
    settings: &Settings,
    named: &crate::auth::validator::TokenValidator,
) -> Vec<(&'static str, String)> {
    let (issuer, audiences) = (named.issuer(), named.audiences());
    let now = jsonwebtoken::get_current_timestamp() as i64;
    let leeway = settings.auth.leeway_secs as i64;
    let mut why = Vec::new();
    // Claims.
    for name in ["iss", "aud", "exp"] {
        if claims.is_object() && claims.get(name).is_none() {
            why.push(("missing", format!("the required claim {name:?} is missing")));
        }
    }
    let subject_claims = &settings.auth.subject_claims;
    if claims.is_object()
        && !subject_claims
            .iter()
            .any(|c| claims.get(c.as_str()).is_some())
    {
        why.push((
            "missing",
            format!(
                "no subject: the token has none of auth.subject_claims ({}); a machine client's token names itself in client_id",
                subject_claims.join(", ")
            ),
        ));
    }
    if let Some(iss) = claims.get("iss").and_then(Value::as_str)
        && iss != issuer
    {
        why.push((
            "iss",
            format!(
                "iss: expected {:?}, received {iss:?}{}",
                issuer,
                if iss.trim_end_matches('/') == issuer.trim_end_matches('/') {
                    " (they differ only by a trailing slash)"
                } else {
                    ""
                }
            ),
        ));
    }
    let auds = string_list(claims.get("aud"));
    if claims.get("aud").is_some() && !auds.iter().any(|a| audiences.contains(a)) {
        let slash = auds.iter().any(|a| {
            audiences
                .iter()
                .any(|e| e.trim_end_matches('/') == a.trim_end_matches('/'))
        });
        why.push(("aud", format!(
            "aud: expected one of {:?}, received {auds:?}{}",
            audiences,
            if slash {
                " (they differ only by a trailing slash: make EXPECTED_AUDIENCE match the token exactly)"
            } else {
                " (set EXPECTED_AUDIENCE, or fix the resource URL at the issuer)"
            }
        )));
    }
    if let Some(exp) = claims.get("exp").and_then(Value::as_f64) {
        let exp = exp as i64;
        if exp + leeway <= now {
            why.push(("exp", format!("expired {} s ago (exp {exp})", now - exp)));
        }
    }
    if let Some(nbf) = claims.get("nbf").and_then(Value::as_f64) {
        let nbf = nbf as i64;
        if nbf - leeway > now {
            why.push((
                "nbf",
                format!("not valid for another {} s (nbf {nbf})", nbf - now),
            ));
        }
    }
    why
}

/// compared with what the server expects, then who the token is and what it may call.
async fn explain(settings: &Settings, verifier: &Verifier, token: &str) -> (bool, String) {
    let mut out = String::from("\ntoken check:\n");
    let token = token.trim();
    let verdict = verifier.validate(token).await;
    let header = segment(token, 0).unwrap_or(Value::Null);
    let claims = segment(token, 1).unwrap_or(Value::Null);
    let introspecting = verifier.issuers().iter().any(|i| i.introspector.is_some());
    if !claims.is_object() && introspecting {
        let _ = writeln!(
            out,
            "  not a JWT: an opaque token, checked by introspection (auth.introspection)"
        );
        introspection_answer(&mut out, verifier, token).await;
    } else if !claims.is_object() {
        let _ = writeln!(
            out,
            "  not a JWT: expected three base64url parts, the first two JSON objects (opaque tokens need auth.introspection)"
        );
    }
    // Each hint is tagged with the rejection it explains (`Rejection::hint`); only the ones
    // that belong to the server's own verdict are printed. The issuer is the one `iss` names.
    let mut why = Vec::new();
    if let Ok(named) = verifier.issuer_of(token) {
        why = header_hints(&header, settings, named.validator.keys());
        why.extend(claim_hints(&claims, settings, &named.validator));
    }
    match &verdict {
        Ok(identity) => {
            let _ = writeln!(out, "  ACCEPTED: this server would accept the token");
            describe(&mut out, identity);
        }
        Err(rejection) => {
            let _ = writeln!(out, "  REFUSED: {}", rejection.log_reason());
            let tag = rejection.hint();
            for (_, w) in why.iter().filter(|(t, _)| Some(*t) == tag) {
                let _ = writeln!(out, "  - {w}");
            }
            if matches!(rejection, Rejection::BadSignatureOrClaims(k) if k == "bad signature") {
                let _ = writeln!(
                    out,
                    "  - the signature does not verify with the issuer's key of that kid: the token was signed by another key or altered"
                );
            }
            // The subject as the validator would name it (`auth.subject_claims`).
            let sub = settings
                .auth
                .subject_claims
                .iter()
                .find_map(|c| claims.get(c.as_str()).and_then(Value::as_str))
                .unwrap_or("-");
            let _ = writeln!(
                out,
                "  (unverified) subject {sub:?}, scopes {:?}",
                token_scopes(&claims)
            );
        }
    }
    (verdict.is_ok(), out)
}

/// What the introspection endpoint said of an opaque token: the members the server checks
/// (never the token itself).
async fn introspection_answer(out: &mut String, verifier: &Verifier, token: &str) {
    let digest = token_digest(token.as_bytes());
    for check in verifier.issuers() {
        let Some(i) = &check.introspector else {
            continue;
        };
        let answer = match i.introspect(token, &digest).await {
            Ok(a) => a,
            Err(crate::auth::introspection::Failure::Inactive) => {
                let _ = writeln!(out, "  {}: active false", check.validator.issuer());
                continue;
            }
            Err(_) => {
                let _ = writeln!(out, "  {}: the endpoint failed", check.validator.issuer());
                continue;
            }
        };
        let shown: Vec<String> = [
            "active",
            "iss",
            "aud",
            "exp",
            "nbf",
            "scope",
            "sub",
            "client_id",
            "cnf",
        ]
        .iter()
        .filter_map(|k| answer.get(*k).map(|v| format!("{k}={v}")))
        .collect();
        let _ = writeln!(out, "  {}: {}", check.validator.issuer(), shown.join(", "));
        return;
    }
}

fn token_scopes(claims: &Value) -> Vec<String> {
    claims
        .as_object()
        .and_then(|c| claimed_scopes(c).ok())
        .unwrap_or_default()
}

fn describe(out: &mut String, identity: &Identity) {
    let kind = match identity.kind() {
        crate::auth::CallerKind::User => "a user",
        crate::auth::CallerKind::Client => "a machine client (no sub; its client_id)",
    };
    let _ = writeln!(out, "  subject:          {} ({kind})", identity.subject());
    let _ = writeln!(out, "  scopes:           {}", identity.scopes().join(" "));
    let _ = writeln!(
        out,
        "  organization:     {}",
        identity.organization().unwrap_or("-")
    );
    let _ = writeln!(
        out,
        "  client id:        {}",
        identity.client_id().unwrap_or("-")
    );
    let _ = writeln!(out, "  issuer:           {}", identity.issuer());
    if let Some(jkt) = identity.confirmation() {
        let _ = writeln!(
            out,
            "  DPoP-bound:       to key {jkt} (cnf.jkt): send it as Authorization: DPoP with a DPoP proof signed by that key"
        );
    }
    let caller = Caller::Authenticated(std::sync::Arc::new(identity.clone()));
    match Registry::from_inventory() {
        Ok(registry) => {
            let (may, may_not): (Vec<_>, Vec<_>) = registry
                .tools
                .iter()
                .partition(|t| caller.missing_scopes(t.def.tool.scopes).is_empty());
            let names: Vec<&str> = may.iter().map(|t| t.def.name).collect();
            let _ = writeln!(out, "  may call:         {}", names.join(", "));
            for t in may_not {
                let _ = writeln!(
                    out,
                    "  may not call:     {} (needs {})",
                    t.def.name,
                    caller.missing_scopes(t.def.tool.scopes).join(" ")
                );
            }
        }
        Err(e) => {
            let _ = writeln!(out, "  tools:            registry error: {e}");
        }
    }
}
