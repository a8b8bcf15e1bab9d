//! Typed settings: the only place that reads `config/*.toml` and environment variables. Every
//! value is validated here, and a bad one stops startup with a message naming the setting. This
//! file loads and layers the sources; each section (`config/<section>.rs`) owns its settings,
//! their raw shape and their validation.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use url::Url;

mod auth;
mod cors;
mod issuers;
mod log;
mod mcp;
mod rate_limit;
mod security;
mod server;
mod telemetry;

pub use auth::{AuthSettings, IssuerSetting};
pub use cors::CorsSettings;
pub use issuers::{ClientCredentials, DpopMode, Introspection, TrustedIssuer};
pub use log::{LogFormat, LogSettings};
pub use mcp::McpSettings;
pub use rate_limit::{RateLimitSettings, RedisDown};
pub use security::{SecuritySettings, TrustedProxy};
pub use server::ServerSettings;
pub use telemetry::{Export, Sampler, TelemetrySettings};

/// A configuration problem: which setting, and what is wrong with it. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration error: {setting}: {problem}")]
pub struct ConfigError {
    pub setting: String,
    pub problem: String,
}

fn bad(setting: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        setting: setting.to_string(),
        problem: problem.into(),
    }
}

/// A secret string: never printed by `Debug` or `Display`.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn from_string(s: String) -> Secret {
        Secret(s)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Development,
    Production,
}

impl Profile {
    pub fn name(self) -> &'static str {
        match self {
            Profile::Development => "development",
            Profile::Production => "production",
        }
    }
}

/// Every setting, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub profile: Profile,
    pub server: ServerSettings,
    pub mcp: McpSettings,
    pub auth: AuthSettings,
    pub cors: CorsSettings,
    pub security: SecuritySettings,
    pub rate_limit: RateLimitSettings,
    pub log: LogSettings,
    pub telemetry: TelemetrySettings,
}

/// What every section's validation may depend on.
struct Context {
    prod: bool,
    /// The issuer came from the Scalekit variables (SK_ENV_URL, SCALEKIT_ENVIRONMENT_URL).
    scalekit: bool,
}

// ---- the sections, each deserialized into its own settings type ----

#[derive(Deserialize)]
struct Sections {
    server: ServerSettings,
    mcp: McpSettings,
    auth: AuthSettings,
    cors: CorsSettings,
    security: SecuritySettings,
    rate_limit: RateLimitSettings,
    log: LogSettings,
    telemetry: TelemetrySettings,
}

/// Settings whose values are lists (comma-separated in environment variables).
const LIST_KEYS: [&str; 9] = [
    "auth.audiences",
    "auth.issuer_urls",
    "auth.dpop_algorithms",
    "auth.algorithms",
    "auth.subject_claims",
    "auth.base_scopes",
    "auth.extra_scopes",
    "cors.allowed_origins",
    "security.allowed_hosts",
];

/// Plain variable names (the PaaS and Scalekit demo conventions) and the setting each sets. The
/// first name listed for a setting wins when several are present.
const PLAIN_VARS: [(&str, &str); 40] = [
    ("REDIS_URL", "rate_limit.redis_url"),
    ("MCP_STATE_KEY", "mcp.state_key"),
    ("MCP_STATE_KEY_PREVIOUS", "mcp.state_key_previous"),
    ("FLY_MACHINE_ID", "server.instance_id"),
    ("PORT", "server.port"),
    ("METRICS_PORT", "server.metrics_port"),
    ("METRICS_HOST", "server.metrics_host"),
    ("METRICS_TOKEN", "server.metrics_token"),
    ("PUBLIC_URL", "server.public_url"),
    ("OAUTH_ISSUER", "auth.issuer"),
    ("SK_ENV_URL", "auth.issuer"),
    ("SCALEKIT_ENVIRONMENT_URL", "auth.issuer"),
    ("OAUTH_ISSUERS", "auth.issuer_urls"),
    ("OAUTH_JWKS_URI", "auth.jwks_uri"),
    ("EXPECTED_AUDIENCE", "auth.audiences"),
    (
        "PROTECTED_RESOURCE_METADATA",
        "auth.protected_resource_metadata",
    ),
    ("SK_CLIENT_ID", "auth.client_id"),
    ("SCALEKIT_CLIENT_ID", "auth.client_id"),
    ("SK_CLIENT_SECRET", "auth.client_secret"),
    ("SCALEKIT_CLIENT_SECRET", "auth.client_secret"),
    ("MCP_SERVER_ID", "auth.mcp_server_id"),
    ("ALLOWED_ORIGINS", "cors.allowed_origins"),
    ("ALLOWED_HOSTS", "security.allowed_hosts"),
    ("TRUSTED_PROXY", "security.trusted_proxy"),
    ("LOG_FORMAT", "log.format"),
    // OpenTelemetry's standard variables; a traces-specific one wins over the general one.
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "telemetry.endpoint"),
    (
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "telemetry.traces_endpoint",
    ),
    ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "telemetry.headers"),
    ("OTEL_EXPORTER_OTLP_HEADERS", "telemetry.headers"),
    ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "telemetry.protocol"),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "telemetry.protocol"),
    ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "telemetry.timeout_ms"),
    ("OTEL_EXPORTER_OTLP_TIMEOUT", "telemetry.timeout_ms"),
    ("OTEL_SERVICE_NAME", "telemetry.service_name"),
    ("OTEL_TRACES_SAMPLER", "telemetry.sampler"),
    ("OTEL_TRACES_SAMPLER_ARG", "telemetry.sampler_arg"),
    ("OTEL_RESOURCE_ATTRIBUTES", "telemetry.resource_attributes"),
    ("OTEL_SDK_DISABLED", "telemetry.disabled"),
    ("OTEL_BSP_MAX_QUEUE_SIZE", "telemetry.max_queue_size"),
    ("OTEL_BSP_SCHEDULE_DELAY", "telemetry.schedule_delay_ms"),
];

/// The variable name a user would set for a setting, for error messages.
fn var_for(setting: &str) -> String {
    let plain: Vec<&str> = PLAIN_VARS
        .iter()
        .filter(|(_, s)| *s == setting)
        .map(|(v, _)| *v)
        .collect();
    let (section, key) = setting.split_once('.').unwrap_or(("", setting));
    let prefixed = format!(
        "GATEHOUSE_{}__{}",
        section.to_ascii_uppercase(),
        key.to_ascii_uppercase()
    );
    if plain.is_empty() {
        format!("{setting} ({prefixed})")
    } else {
        format!("{setting} ({} or {prefixed})", plain.join(", "))
    }
}

fn non_empty(s: &str) -> Option<&str> {
    let t = s.trim();
    (!t.is_empty()).then_some(t)
}

// ---- serde adapters: each setting deserializes straight into its final type ----

/// A number of seconds (`*_secs` settings).
fn secs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<std::time::Duration, D::Error> {
    u64::deserialize(d).map(std::time::Duration::from_secs)
}

/// A number of milliseconds (`*_ms` settings).
fn millis<'de, D: serde::Deserializer<'de>>(d: D) -> Result<std::time::Duration, D::Error> {
    u64::deserialize(d).map(std::time::Duration::from_millis)
}

/// Text where empty (or blank) means unset.
fn optional_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    Ok(non_empty(&s).map(str::to_string))
}

/// A list of patterns (`Origin`, `Host`), blank entries skipped.
fn patterns<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr<Err = String>,
{
    let items = Vec::<String>::deserialize(d)?;
    items
        .iter()
        .filter_map(|s| non_empty(s))
        .map(|s| s.parse().map_err(serde::de::Error::custom))
        .collect()
}

/// Every number has a sane range; the message names the setting and the range.
fn range(v: u64, lo: u64, hi: u64, key: &str) -> Result<u64, ConfigError> {
    if (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        Err(bad(
            &var_for(key),
            format!("{v} is out of range: must be from {lo} to {hi}"),
        ))
    }
}

impl Settings {
    /// Loads the profile named by `APP_ENV` from `config_dir`, then the environment in `env`.
    pub fn load(env: &HashMap<String, String>, config_dir: &Path) -> Result<Settings, ConfigError> {
        let profile = match env.get("APP_ENV").map(|s| s.trim()) {
            None | Some("") | Some("development") | Some("dev") => Profile::Development,
            Some("production") | Some("prod") => Profile::Production,
            Some(other) => {
                return Err(bad(
                    "APP_ENV",
                    format!("unknown profile {other:?}; use development or production"),
                ));
            }
        };
        let default_file = config_dir.join("default.toml");
        if !default_file.is_file() {
            return Err(bad(
                "config directory",
                format!(
                    "{} not found; run gatehouse from the folder that holds config/, or set GATEHOUSE_CONFIG_DIR",
                    default_file.display()
                ),
            ));
        }
        let mut builder = config::Config::builder()
            .add_source(config::File::from(default_file))
            .add_source(
                config::File::from(config_dir.join(format!("{}.toml", profile.name())))
                    .required(false),
            );
        let mut prefixed = config::Environment::with_prefix("GATEHOUSE")
            .prefix_separator("_")
            .separator("__")
            .list_separator(",")
            .try_parsing(true)
            .ignore_empty(true);
        for key in LIST_KEYS {
            prefixed = prefixed.with_list_parse_key(key);
        }
        let env_map: config::Map<String, String> = env
            .iter()
            .filter(|(k, _)| k.starts_with("GATEHOUSE_") && k.as_str() != "GATEHOUSE_CONFIG_DIR")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        builder = builder.add_source(prefixed.source(Some(env_map)));

        let mut seen = std::collections::HashSet::new();
        for (var, setting) in PLAIN_VARS {
            let Some(value) = env.get(var).and_then(|v| non_empty(v)) else {
                continue;
            };
            if !seen.insert(setting) {
                continue;
            }
            builder = if setting == "server.port" || setting == "server.metrics_port" {
                let port: u16 = value.parse().ok().filter(|p| *p != 0).ok_or_else(|| {
                    bad(
                        var,
                        format!("expected a port number 1-65535, got {value:?}"),
                    )
                })?;
                builder.set_override(setting, i64::from(port))
            } else if LIST_KEYS.contains(&setting) {
                let items: Vec<String> = value
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                builder.set_override(setting, items)
            } else {
                builder.set_override(setting, value.to_string())
            }
            .map_err(|e| bad(var, e.to_string()))?;
        }
        let scalekit = env.get("OAUTH_ISSUER").and_then(|v| non_empty(v)).is_none()
            && ["SK_ENV_URL", "SCALEKIT_ENVIRONMENT_URL"]
                .iter()
                .any(|v| env.get(*v).and_then(|v| non_empty(v)).is_some());

        let cfg = builder
            .build()
            .map_err(|e| bad("configuration files", e.to_string()))?;
        let raw: Sections = cfg.try_deserialize().map_err(|e| {
            // config names the key (e.g. "for key `server.port`"); point at the variable too.
            let text = e.to_string();
            let key = text
                .rsplit_once("for key `")
                .and_then(|(_, rest)| rest.split('`').next())
                .map(str::to_string)
                .unwrap_or_else(|| "configuration".into());
            bad(&var_for(&key), text)
        })?;
        Settings::validate(profile, raw, scalekit)
    }

    fn validate(profile: Profile, raw: Sections, scalekit: bool) -> Result<Settings, ConfigError> {
        let cx = Context {
            prod: profile == Profile::Production,
            scalekit,
        };
        let Sections {
            mut server,
            mut mcp,
            mut auth,
            cors,
            mut security,
            rate_limit,
            log,
            mut telemetry,
        } = raw;
        server.check(&cx)?;
        mcp.check()?;
        auth.resolve(&cx)?;
        cors.check()?;
        security.resolve(&cx, &server, &cors)?;
        rate_limit.check()?;
        telemetry.resolve(&cx)?;
        Ok(Settings {
            profile,
            server,
            mcp,
            auth,
            cors,
            security,
            rate_limit,
            log,
            telemetry,
        })
    }
}

/// The process environment, after loading `.env` from the working directory in development
/// (never in production; variables already set win over the file).
pub fn process_environment() -> HashMap<String, String> {
    let production =
        std::env::var("APP_ENV").is_ok_and(|v| matches!(v.trim(), "production" | "prod"));
    if !production {
        let _ = dotenvy::dotenv();
    }
    std::env::vars().collect()
}

/// The folder holding `default.toml`: `GATEHOUSE_CONFIG_DIR`, else `./config`.
pub fn config_dir(env: &HashMap<String, String>) -> PathBuf {
    env.get("GATEHOUSE_CONFIG_DIR")
        .filter(|d| !d.trim().is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("config"))
}

/// A URL on this machine (`localhost` or a loopback address): exempt from the https rule.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn parse_url(s: &str, require_https: bool) -> Result<Url, String> {
    let url = Url::parse(s).map_err(|e| format!("{s:?} is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("{s:?} must be an http(s) URL"));
    }
    if require_https && url.scheme() != "https" && !is_loopback(&url) {
        return Err(format!("{s:?} must use https in production"));
    }
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{s:?} must not carry a fragment or credentials"));
    }
    Ok(url)
}

/// A base URL: http(s), no query or fragment, no trailing slash in its path.
fn parse_base_url(s: &str, require_https: bool) -> Result<Url, String> {
    let url = parse_url(s.trim_end_matches('/'), require_https)?;
    if url.query().is_some() {
        return Err(format!("{s:?} must not have a query string"));
    }
    Ok(url)
}

/// `url` as a string without a trailing slash (`https://a.example` rather than `https://a.example/`).
pub fn base_str(url: &Url) -> String {
    url.as_str().trim_end_matches('/').to_string()
}

#[cfg(test)]
mod tests;
