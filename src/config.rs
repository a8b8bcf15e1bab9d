//! Typed settings: the only place that reads `config/*.toml` and environment variables. Every
//! value is validated here, and a bad one stops startup with a message naming the setting.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jsonwebtoken::Algorithm;
use serde::Deserialize;
use url::Url;

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
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustedProxy {
    /// The TCP peer address is the client.
    None,
    /// Fly.io: the `Fly-Client-IP` header set by Fly's proxy.
    Fly,
    /// Heroku: the right-most `X-Forwarded-For` entry, appended by Heroku's router.
    Heroku,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// RFC 5424 levels used by MCP logging, in increasing severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    Debug,
    Info,
    Notice,
    Warning,
    Error,
    Critical,
    Alert,
    Emergency,
}

impl LogLevel {
    pub const ALL: [LogLevel; 8] = [
        LogLevel::Debug,
        LogLevel::Info,
        LogLevel::Notice,
        LogLevel::Warning,
        LogLevel::Error,
        LogLevel::Critical,
        LogLevel::Alert,
        LogLevel::Emergency,
    ];

    pub fn name(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Notice => "notice",
            LogLevel::Warning => "warning",
            LogLevel::Error => "error",
            LogLevel::Critical => "critical",
            LogLevel::Alert => "alert",
            LogLevel::Emergency => "emergency",
        }
    }

    pub fn parse(s: &str) -> Option<LogLevel> {
        LogLevel::ALL.into_iter().find(|l| l.name() == s)
    }
}

/// An allowed browser origin: exact, any port, or anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginPattern {
    Any,
    Exact(String),
    /// `scheme://host` with any port (written `scheme://host:*`).
    AnyPort(String),
}

impl fmt::Display for OriginPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OriginPattern::Any => f.write_str("*"),
            OriginPattern::Exact(o) => f.write_str(o),
            OriginPattern::AnyPort(o) => write!(f, "{o}:*"),
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Any => f.write_str("*"),
            HostPattern::Name(n) => f.write_str(n),
            HostPattern::NameAndPort(n, p) => write!(f, "{n}:{p}"),
        }
    }
}

impl OriginPattern {
    pub fn matches(&self, origin: &str) -> bool {
        match self {
            OriginPattern::Any => true,
            OriginPattern::Exact(o) => o.eq_ignore_ascii_case(origin),
            OriginPattern::AnyPort(prefix) => {
                let lower = origin.to_ascii_lowercase();
                match lower.strip_prefix(prefix.as_str()) {
                    Some("") => true,
                    Some(rest) => rest.strip_prefix(':').is_some_and(|p| {
                        !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
                    }),
                    None => false,
                }
            }
        }
    }

    fn parse(s: &str) -> Result<OriginPattern, String> {
        if s == "*" {
            return Ok(OriginPattern::Any);
        }
        let lower = s.trim_end_matches('/').to_ascii_lowercase();
        if let Some(base) = lower.strip_suffix(":*") {
            check_origin(base)?;
            return Ok(OriginPattern::AnyPort(base.to_string()));
        }
        check_origin(&lower)?;
        Ok(OriginPattern::Exact(lower))
    }
}

fn check_origin(s: &str) -> Result<(), String> {
    let url = Url::parse(s).map_err(|e| format!("{s:?} is not an origin ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("{s:?} is not an http(s) origin"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{s:?} has a path; an origin is scheme://host[:port]"
        ));
    }
    Ok(())
}

/// An allowed `Host` header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    Any,
    /// A host name matching any port.
    Name(String),
    /// A host name with one port.
    NameAndPort(String, u16),
}

impl HostPattern {
    fn parse(s: &str) -> Result<HostPattern, String> {
        if s == "*" {
            return Ok(HostPattern::Any);
        }
        let (name, port) = split_host_port(s).ok_or_else(|| format!("{s:?} is not a host"))?;
        Ok(match port {
            Some(p) => HostPattern::NameAndPort(name, p),
            None => HostPattern::Name(name),
        })
    }

    /// Does a raw `Host` header value match?
    pub fn matches(&self, host: &str) -> bool {
        let Some((name, port)) = split_host_port(host) else {
            return false;
        };
        match self {
            HostPattern::Any => true,
            HostPattern::Name(n) => *n == name,
            HostPattern::NameAndPort(n, p) => *n == name && port == Some(*p),
        }
    }
}

/// Splits `host[:port]` (with `[v6]` literals), lower-casing the name. `None` if malformed.
pub fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    let s = s.trim();
    if s.is_empty() || s.len() > 255 {
        return None;
    }
    let (name, port) = if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']')?;
        let name = &s[..end + 2];
        let after = &rest[end + 1..];
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (name, port)
    } else {
        match s.rsplit_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (s, None),
        }
    };
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._[]:".contains(&b))
    {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().ok()?)
        }
        Some(_) => return None,
    };
    Some((name.to_ascii_lowercase(), port))
}

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
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    /// `None` = derived from the bound port (`http://localhost:<port>`), development only.
    pub public_url: Option<Url>,
    pub workers: usize,
    pub shutdown_timeout: Duration,
    pub keep_alive: Duration,
    pub client_request_timeout: Duration,
    pub body_timeout: Duration,
    pub max_body_bytes: usize,
    pub max_header_bytes: usize,
    pub max_json_depth: usize,
    pub max_connections: usize,
    /// Connections one client address may hold at once (0 = half of all connections).
    pub max_connections_per_ip: usize,
    /// Port of the separate Prometheus listener; `None` = off.
    pub metrics_port: Option<u16>,
    /// This instance's name in the ids of questions it waits on (FLY_MACHINE_ID on Fly.io, so a
    /// stray answer can be replayed to it; random otherwise).
    pub instance_id: String,
}

#[derive(Debug, Clone)]
pub struct McpSettings {
    pub path: String,
    pub server_name: String,
    pub server_title: String,
    pub instructions: Option<String>,
    pub page_size: usize,
    pub tool_timeout: Duration,
    pub default_log_level: LogLevel,
    /// Most messages in one 2025-03-26 batch.
    pub max_batch_items: usize,
    /// Largest response body (JSON or a whole SSE stream) in bytes.
    pub max_response_bytes: usize,
    /// 2026-07-28 caching hint (`ttlMs`) on listings and `server/discover`.
    pub list_ttl_ms: u64,
    /// 2026-07-28 caching hint (`ttlMs`) on `resources/read`.
    pub read_ttl_ms: u64,
    /// Open `subscriptions/listen` streams allowed per subject (per instance).
    pub max_listen_streams: usize,
    /// Key material sealing 2026-07-28 `requestState` (MCP_STATE_KEY, at least 32 bytes; held
    /// as standard base64).
    pub state_key: Option<Secret>,
    /// The previous key, still accepted when opening state (rotation).
    pub state_key_previous: Option<Secret>,
    /// How long an `input_required` exchange may take, from the first question.
    pub state_ttl: Duration,
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

#[derive(Debug, Clone)]
pub struct CorsSettings {
    pub allowed_origins: Vec<OriginPattern>,
    pub max_age_secs: usize,
}

#[derive(Debug, Clone)]
pub struct SecuritySettings {
    pub allowed_hosts: Vec<HostPattern>,
    pub trusted_proxy: TrustedProxy,
    /// `*` in ALLOWED_ORIGINS was accepted in production by `security.allow_any_origin`.
    pub allow_any_origin: bool,
    /// `*` in ALLOWED_HOSTS was accepted in production by `security.allow_any_host`.
    pub allow_any_host: bool,
}

#[derive(Debug, Clone)]
pub struct RateLimitSettings {
    pub enabled: bool,
    pub requests_per_minute: u32,
    pub requests_burst: u32,
    pub tool_calls_per_minute: u32,
    pub tool_calls_burst: u32,
    /// A shared store for the budgets (and list-change announcements): REDIS_URL.
    pub redis_url: Option<Secret>,
    /// How long a request waits for the shared store before the fallback applies.
    pub redis_timeout: Duration,
    /// What happens while the shared store does not answer.
    pub redis_down: RedisDown,
    /// Accept a `rediss://` server certificate without verifying it (Heroku Key-Value Store
    /// presents a self-signed one).
    pub redis_insecure_tls: bool,
}

/// What the budgets do while the shared store does not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisDown {
    /// Each instance applies its own budgets (the default).
    Local,
    /// Requests are refused with 503 until the store answers again.
    Refuse,
}

#[derive(Debug, Clone)]
pub struct LogSettings {
    pub format: LogFormat,
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
}

// ---- raw shapes, as the files and variables spell them ----

#[derive(Deserialize)]
struct Raw {
    server: RawServer,
    mcp: RawMcp,
    auth: RawAuth,
    cors: RawCors,
    security: RawSecurity,
    rate_limit: RawRateLimit,
    log: RawLog,
}

#[derive(Deserialize)]
struct RawServer {
    host: String,
    port: u16,
    public_url: String,
    workers: usize,
    shutdown_timeout_secs: u64,
    keep_alive_secs: u64,
    client_request_timeout_ms: u64,
    body_timeout_ms: u64,
    max_body_bytes: usize,
    max_header_bytes: usize,
    max_json_depth: usize,
    max_connections: usize,
    max_connections_per_ip: usize,
    metrics_port: u16,
    instance_id: String,
}

#[derive(Deserialize)]
struct RawMcp {
    path: String,
    server_name: String,
    server_title: String,
    instructions: String,
    page_size: usize,
    tool_timeout_secs: u64,
    default_log_level: String,
    max_batch_items: usize,
    max_response_bytes: usize,
    list_ttl_ms: u64,
    read_ttl_ms: u64,
    max_listen_streams: usize,
    state_key: String,
    state_key_previous: String,
    state_ttl_secs: u64,
}

#[derive(Deserialize)]
struct RawAuth {
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
    scope_implies: RawScopeImplies,
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
enum RawScopeImplies {
    Table(HashMap<String, Vec<String>>),
    Text(String),
}

#[derive(Deserialize)]
struct RawCors {
    allowed_origins: Vec<String>,
    max_age_secs: usize,
}

#[derive(Deserialize)]
struct RawSecurity {
    allowed_hosts: Vec<String>,
    trusted_proxy: String,
    allow_any_origin: bool,
    allow_any_host: bool,
}

#[derive(Deserialize)]
struct RawRateLimit {
    enabled: bool,
    requests_per_minute: u32,
    requests_burst: u32,
    tool_calls_per_minute: u32,
    tool_calls_burst: u32,
    redis_url: String,
    redis_timeout_ms: u64,
    redis_down: String,
    redis_insecure_tls: bool,
}

#[derive(Deserialize)]
struct RawLog {
    format: String,
}

/// Settings whose values are lists (comma-separated in environment variables).
const LIST_KEYS: [&str; 6] = [
    "auth.audiences",
    "auth.algorithms",
    "auth.base_scopes",
    "auth.extra_scopes",
    "cors.allowed_origins",
    "security.allowed_hosts",
];

/// Plain variable names (the PaaS and Scalekit demo conventions) and the setting each sets. The
/// first name listed for a setting wins when several are present.
const PLAIN_VARS: [(&str, &str); 22] = [
    ("REDIS_URL", "rate_limit.redis_url"),
    ("MCP_STATE_KEY", "mcp.state_key"),
    ("MCP_STATE_KEY_PREVIOUS", "mcp.state_key_previous"),
    ("FLY_MACHINE_ID", "server.instance_id"),
    ("PORT", "server.port"),
    ("METRICS_PORT", "server.metrics_port"),
    ("PUBLIC_URL", "server.public_url"),
    ("OAUTH_ISSUER", "auth.issuer"),
    ("SK_ENV_URL", "auth.issuer"),
    ("SCALEKIT_ENVIRONMENT_URL", "auth.issuer"),
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
];

/// Base64 key material of at least 32 bytes (standard or URL-safe alphabet, padding optional),
/// kept as standard base64; `None` when unset. Errors never show the value.
fn key_material(raw: &str, setting: &str) -> Result<Option<Secret>, ConfigError> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let Some(v) = non_empty(raw) else {
        return Ok(None);
    };
    let trimmed = v.trim().trim_end_matches('=');
    let bytes = STANDARD_NO_PAD
        .decode(trimmed)
        .or_else(|_| URL_SAFE_NO_PAD.decode(trimmed))
        .map_err(|_| {
            bad(
                &var_for(setting),
                "must be base64 key material (e.g. `openssl rand -base64 32`)",
            )
        })?;
    if bytes.len() < 32 {
        return Err(bad(
            &var_for(setting),
            format!("must decode to at least 32 bytes, not {}", bytes.len()),
        ));
    }
    Ok(Some(Secret(STANDARD.encode(bytes))))
}

/// A random instance name for question ids when the platform gives none.
fn random_instance_id() -> String {
    let mut b = [0u8; 6];
    aws_lc_rs::rand::fill(&mut b).expect("the system random source works");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

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
        let raw: Raw = cfg.try_deserialize().map_err(|e| {
            // config names the key (e.g. "for key `server.port`"); point at the variable too.
            let text = e.to_string();
            let key = text
                .split('`')
                .nth(1)
                .map(str::to_string)
                .unwrap_or_else(|| "configuration".into());
            bad(&var_for(&key), text)
        })?;
        Settings::validate(profile, raw, scalekit)
    }

    fn validate(profile: Profile, raw: Raw, scalekit: bool) -> Result<Settings, ConfigError> {
        let prod = profile == Profile::Production;

        // ---- server ----
        let s = raw.server;
        let public_url = match non_empty(&s.public_url) {
            Some(u) => {
                Some(parse_base_url(u, prod).map_err(|p| bad(&var_for("server.public_url"), p))?)
            }
            None if prod => {
                return Err(bad(
                    &var_for("server.public_url"),
                    "required in production: the public https URL clients use (e.g. https://app.fly.dev); it defines the token audience and the metadata URL",
                ));
            }
            None => None,
        };
        if s.host.parse::<std::net::IpAddr>().is_err() && s.host != "localhost" {
            return Err(bad(
                &var_for("server.host"),
                format!("{:?} is not an IP address", s.host),
            ));
        }
        // Every number has a sane range; the message names the setting and the range.
        let range = |v: u64, lo: u64, hi: u64, key: &str| -> Result<u64, ConfigError> {
            if (lo..=hi).contains(&v) {
                Ok(v)
            } else {
                Err(bad(
                    &var_for(key),
                    format!("{v} is out of range: must be from {lo} to {hi}"),
                ))
            }
        };
        range(s.workers as u64, 0, 1024, "server.workers")?;
        range(
            s.shutdown_timeout_secs,
            1,
            3600,
            "server.shutdown_timeout_secs",
        )?;
        range(s.keep_alive_secs, 1, 3600, "server.keep_alive_secs")?;
        range(
            s.client_request_timeout_ms,
            1,
            600_000,
            "server.client_request_timeout_ms",
        )?;
        range(s.body_timeout_ms, 1, 3_600_000, "server.body_timeout_ms")?;
        range(
            s.max_body_bytes as u64,
            1,
            256 << 20,
            "server.max_body_bytes",
        )?;
        range(
            s.max_header_bytes as u64,
            256,
            128 << 10,
            "server.max_header_bytes",
        )?;
        range(s.max_json_depth as u64, 1, 1024, "server.max_json_depth")?;
        range(
            s.max_connections as u64,
            1,
            1_000_000,
            "server.max_connections",
        )?;
        if s.metrics_port != 0 && s.metrics_port == s.port {
            return Err(bad(
                &var_for("server.metrics_port"),
                "must differ from the public port (PORT): metrics are never served publicly",
            ));
        }
        range(
            s.max_connections_per_ip as u64,
            0,
            1_000_000,
            "server.max_connections_per_ip",
        )?;
        let server = ServerSettings {
            host: s.host,
            port: s.port,
            public_url,
            workers: s.workers,
            shutdown_timeout: Duration::from_secs(s.shutdown_timeout_secs),
            keep_alive: Duration::from_secs(s.keep_alive_secs),
            client_request_timeout: Duration::from_millis(s.client_request_timeout_ms),
            body_timeout: Duration::from_millis(s.body_timeout_ms),
            max_body_bytes: s.max_body_bytes,
            max_header_bytes: s.max_header_bytes,
            max_json_depth: s.max_json_depth,
            max_connections: s.max_connections,
            max_connections_per_ip: s.max_connections_per_ip,
            metrics_port: (s.metrics_port != 0).then_some(s.metrics_port),
            instance_id: match non_empty(&s.instance_id) {
                Some(id)
                    if id.len() <= 64
                        && id
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
                {
                    id.to_string()
                }
                Some(_) => {
                    return Err(bad(
                        &var_for("server.instance_id"),
                        "must be 1-64 letters, digits, - or _",
                    ));
                }
                None => random_instance_id(),
            },
        };

        // ---- mcp ----
        let m = raw.mcp;
        if !m.path.starts_with('/')
            || m.path.len() < 2
            || m.path.ends_with('/')
            || !m
                .path
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/-_.".contains(&b))
            || m.path.starts_with("/.well-known")
            || m.path == "/health"
            || m.path == "/ready"
        {
            return Err(bad(
                &var_for("mcp.path"),
                format!(
                    "{:?} must be a path like /mcp (letters, digits, / - _ .; no trailing slash)",
                    m.path
                ),
            ));
        }
        range(m.page_size as u64, 1, 1000, "mcp.page_size")?;
        range(m.tool_timeout_secs, 1, 3600, "mcp.tool_timeout_secs")?;
        range(m.max_batch_items as u64, 1, 1000, "mcp.max_batch_items")?;
        range(
            m.max_response_bytes as u64,
            16 << 10,
            1 << 30,
            "mcp.max_response_bytes",
        )?;
        // A day at most: longer hints outlive any deploy.
        range(m.list_ttl_ms, 0, 86_400_000, "mcp.list_ttl_ms")?;
        range(m.read_ttl_ms, 0, 86_400_000, "mcp.read_ttl_ms")?;
        range(
            m.max_listen_streams as u64,
            1,
            1000,
            "mcp.max_listen_streams",
        )?;
        range(m.state_ttl_secs, 1, 86_400, "mcp.state_ttl_secs")?;
        let state_key = key_material(&m.state_key, "mcp.state_key")?;
        let state_key_previous = key_material(&m.state_key_previous, "mcp.state_key_previous")?;
        let mcp = McpSettings {
            path: m.path,
            server_name: non_empty(&m.server_name)
                .ok_or_else(|| bad(&var_for("mcp.server_name"), "must not be empty"))?
                .to_string(),
            server_title: m.server_title,
            instructions: non_empty(&m.instructions).map(str::to_string),
            page_size: m.page_size,
            tool_timeout: Duration::from_secs(m.tool_timeout_secs),
            default_log_level: LogLevel::parse(&m.default_log_level).ok_or_else(|| {
                bad(
                    &var_for("mcp.default_log_level"),
                    format!("{:?} is not one of debug, info, notice, warning, error, critical, alert, emergency", m.default_log_level),
                )
            })?,
            max_batch_items: m.max_batch_items,
            max_response_bytes: m.max_response_bytes,
            list_ttl_ms: m.list_ttl_ms,
            read_ttl_ms: m.read_ttl_ms,
            max_listen_streams: m.max_listen_streams,
            state_key,
            state_key_previous,
            state_ttl: Duration::from_secs(m.state_ttl_secs),
        };

        // ---- auth ----
        let a = raw.auth;
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
        let auth = AuthSettings {
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
        };

        // ---- cors, security ----
        let mut allowed_origins = Vec::new();
        for o in raw
            .cors
            .allowed_origins
            .iter()
            .filter(|o| !o.trim().is_empty())
        {
            allowed_origins.push(
                OriginPattern::parse(o.trim())
                    .map_err(|p| bad(&var_for("cors.allowed_origins"), p))?,
            );
        }
        let mut allowed_hosts = Vec::new();
        for h in raw
            .security
            .allowed_hosts
            .iter()
            .filter(|h| !h.trim().is_empty())
        {
            allowed_hosts.push(
                HostPattern::parse(h.trim())
                    .map_err(|p| bad(&var_for("security.allowed_hosts"), p))?,
            );
        }
        if allowed_hosts.is_empty() {
            match (&server.public_url, prod) {
                (Some(u), true) => {
                    allowed_hosts.push(HostPattern::Name(
                        u.host_str().unwrap_or_default().to_ascii_lowercase(),
                    ));
                }
                _ => {
                    for h in ["localhost", "127.0.0.1", "[::1]"] {
                        allowed_hosts.push(HostPattern::Name(h.to_string()));
                    }
                    if let Some(u) = &server.public_url {
                        allowed_hosts.push(HostPattern::Name(
                            u.host_str().unwrap_or_default().to_ascii_lowercase(),
                        ));
                    }
                }
            }
        }
        let wildcard = |on: bool, allowed: bool, list: &str, switch: &str| {
            if prod && on && !allowed {
                Err(bad(
                    &var_for(list),
                    format!(
                        "`*` is refused in the production profile: list the exact values, or set {} = true to accept any on purpose",
                        var_for(switch)
                    ),
                ))
            } else {
                Ok(())
            }
        };
        wildcard(
            allowed_origins.contains(&OriginPattern::Any),
            raw.security.allow_any_origin,
            "cors.allowed_origins",
            "security.allow_any_origin",
        )?;
        wildcard(
            allowed_hosts.contains(&HostPattern::Any),
            raw.security.allow_any_host,
            "security.allowed_hosts",
            "security.allow_any_host",
        )?;
        let trusted_proxy = match raw
            .security
            .trusted_proxy
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "" | "none" => TrustedProxy::None,
            "fly" => TrustedProxy::Fly,
            "heroku" => TrustedProxy::Heroku,
            other => {
                return Err(bad(
                    &var_for("security.trusted_proxy"),
                    format!("{other:?} is not one of none, fly, heroku"),
                ));
            }
        };
        let r = raw.rate_limit;
        for (v, key) in [
            (r.requests_per_minute, "rate_limit.requests_per_minute"),
            (r.requests_burst, "rate_limit.requests_burst"),
            (r.tool_calls_per_minute, "rate_limit.tool_calls_per_minute"),
            (r.tool_calls_burst, "rate_limit.tool_calls_burst"),
        ] {
            range(u64::from(v), 1, 1_000_000, key)?;
        }
        range(r.redis_timeout_ms, 1, 10_000, "rate_limit.redis_timeout_ms")?;
        let redis_down = match r.redis_down.trim() {
            "local" => RedisDown::Local,
            "refuse" => RedisDown::Refuse,
            other => {
                return Err(bad(
                    &var_for("rate_limit.redis_down"),
                    format!("{other:?} is not local or refuse"),
                ));
            }
        };
        let redis_url = match non_empty(&r.redis_url) {
            None => None,
            // Checked without echoing the value: it usually holds a password.
            Some(u) if u.starts_with("redis://") || u.starts_with("rediss://") => {
                match url::Url::parse(u) {
                    Ok(parsed) if parsed.host_str().is_some_and(|h| !h.is_empty()) => {
                        Some(Secret(u.to_string()))
                    }
                    _ => {
                        return Err(bad(
                            &var_for("rate_limit.redis_url"),
                            "is not a valid redis:// or rediss:// URL (value not shown)",
                        ));
                    }
                }
            }
            Some(_) => {
                return Err(bad(
                    &var_for("rate_limit.redis_url"),
                    "must start with redis:// or rediss:// (value not shown)",
                ));
            }
        };
        range(raw.cors.max_age_secs as u64, 0, 86_400, "cors.max_age_secs")?;
        let format = match raw.log.format.trim() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(bad(
                    &var_for("log.format"),
                    format!("{other:?} is not text or json"),
                ));
            }
        };
        let any_origin = allowed_origins.contains(&OriginPattern::Any);
        Ok(Settings {
            profile,
            server,
            mcp,
            auth,
            cors: CorsSettings {
                allowed_origins,
                max_age_secs: raw.cors.max_age_secs,
            },
            security: SecuritySettings {
                allow_any_origin: any_origin,
                allow_any_host: allowed_hosts.contains(&HostPattern::Any),
                allowed_hosts,
                trusted_proxy,
            },
            rate_limit: RateLimitSettings {
                enabled: r.enabled,
                requests_per_minute: r.requests_per_minute,
                requests_burst: r.requests_burst,
                tool_calls_per_minute: r.tool_calls_per_minute,
                tool_calls_burst: r.tool_calls_burst,
                redis_url,
                redis_timeout: Duration::from_millis(r.redis_timeout_ms),
                redis_down,
                redis_insecure_tls: r.redis_insecure_tls,
            },
            log: LogSettings { format },
        })
    }
}

/// Reads `auth.scope_implies` and closes it transitively (`a` implies `b`, `b` implies `c`: `a`
/// grants `b` and `c`).
fn scope_implications(
    raw: RawScopeImplies,
) -> Result<std::collections::BTreeMap<String, Vec<String>>, ConfigError> {
    let setting = var_for("auth.scope_implies");
    let pairs: Vec<(String, Vec<String>)> = match raw {
        RawScopeImplies::Table(t) => t.into_iter().collect(),
        RawScopeImplies::Text(text) => {
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

/// The asymmetric JWS algorithm with this exact (case-sensitive) name. HMAC and `none` have no
/// entry: they are never accepted, whatever the configuration says.
pub fn asymmetric_algorithm(name: &str) -> Option<Algorithm> {
    Some(match name {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        _ => return None,
    })
}

/// RFC 6749 scope-token: printable ASCII except space, `"` and `\`.
pub fn valid_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

fn is_loopback(url: &Url) -> bool {
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
mod tests {
    use super::*;

    fn config_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config")
    }

    fn load(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let env: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::load(&env, &config_dir())
    }

    #[test]
    fn defaults_load_as_development_with_dev_issuer() {
        let s = load(&[]).unwrap();
        assert_eq!(s.profile, Profile::Development);
        assert_eq!(s.server.port, 8080);
        assert_eq!(s.server.host, "127.0.0.1");
        assert_eq!(s.auth.issuer, IssuerSetting::Development);
        assert_eq!(s.auth.algorithms, vec![Algorithm::RS256, Algorithm::ES256]);
    }

    #[test]
    fn scalekit_env_sets_issuer_keys_and_audience() {
        let s = load(&[
            ("SK_ENV_URL", "https://acme.scalekit.dev/"),
            ("SK_CLIENT_SECRET", "shh"),
            ("EXPECTED_AUDIENCE", "http://localhost:3002/, res_1"),
            ("PORT", "3002"),
        ])
        .unwrap();
        assert_eq!(
            s.auth.issuer,
            IssuerSetting::Remote {
                issuer: "https://acme.scalekit.dev".into(),
                jwks_uri: Some(Url::parse("https://acme.scalekit.dev/keys").unwrap())
            }
        );
        assert_eq!(s.auth.audiences, vec!["http://localhost:3002/", "res_1"]);
        assert_eq!(s.server.port, 3002);
        assert!(!format!("{s:?}").contains("shh"));
    }

    #[test]
    fn scalekit_resource_id_names_the_authorization_server() {
        let s = load(&[
            ("SK_ENV_URL", "https://acme.scalekit.dev"),
            ("MCP_SERVER_ID", "res_42"),
        ])
        .unwrap();
        assert_eq!(
            s.auth.authorization_server.as_deref(),
            Some("https://acme.scalekit.dev/resources/res_42")
        );
        let s = load(&[
            ("OAUTH_ISSUER", "https://id.example"),
            ("MCP_SERVER_ID", "res_42"),
        ])
        .unwrap();
        assert_eq!(s.auth.authorization_server, None);
        let s = load(&[
            ("OAUTH_ISSUER", "https://id.example"),
            (
                "GATEHOUSE_AUTH__AUTHORIZATION_SERVER",
                "https://as.example/",
            ),
        ])
        .unwrap();
        assert_eq!(
            s.auth.authorization_server.as_deref(),
            Some("https://as.example")
        );
    }

    #[test]
    fn an_oauth_issuer_is_kept_exactly() {
        let s = load(&[("OAUTH_ISSUER", "https://tenant.auth0.com/")]).unwrap();
        assert_eq!(
            s.auth.issuer,
            IssuerSetting::Remote {
                issuer: "https://tenant.auth0.com/".into(),
                jwks_uri: None
            }
        );
    }

    #[test]
    fn prefixed_variables_override_files() {
        let s = load(&[
            ("GATEHOUSE_MCP__PAGE_SIZE", "7"),
            ("GATEHOUSE_AUTH__ALGORITHMS", "ES256,RS256"),
        ])
        .unwrap();
        assert_eq!(s.mcp.page_size, 7);
        assert_eq!(s.auth.algorithms, vec![Algorithm::ES256, Algorithm::RS256]);
    }

    #[test]
    fn bad_values_name_the_setting() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("PORT", "eighty")], "PORT"),
            (&[("APP_ENV", "staging")], "APP_ENV"),
            (&[("PUBLIC_URL", "not a url")], "PUBLIC_URL"),
            (&[("GATEHOUSE_MCP__PAGE_SIZE", "lots")], "mcp.page_size"),
            (
                &[("GATEHOUSE_AUTH__LEEWAY_SECS", "600")],
                "auth.leeway_secs",
            ),
            (
                &[("GATEHOUSE_AUTH__ALGORITHMS", "HS256")],
                "auth.algorithms",
            ),
            (&[("TRUSTED_PROXY", "cloudflare")], "TRUSTED_PROXY"),
            (
                &[(
                    "PROTECTED_RESOURCE_METADATA",
                    "{\"resource\":\"https://x\"}",
                )],
                "PROTECTED_RESOURCE_METADATA",
            ),
            (&[("APP_ENV", "production")], "PUBLIC_URL"),
            (
                &[
                    ("APP_ENV", "production"),
                    ("PUBLIC_URL", "https://a.example"),
                ],
                "SK_ENV_URL",
            ),
            (
                &[
                    ("APP_ENV", "production"),
                    ("PUBLIC_URL", "https://a.example"),
                    ("OAUTH_ISSUER", "https://id.example"),
                    ("GATEHOUSE_AUTH__ENABLED", "false"),
                ],
                "auth.enabled",
            ),
        ];
        for (vars, needle) in cases {
            let err = load(vars).expect_err(needle).to_string();
            assert!(err.contains(needle), "{err:?} should name {needle}");
        }
    }

    #[test]
    fn production_refuses_wildcards_unless_meant() {
        let prod = [
            ("APP_ENV", "production"),
            ("PUBLIC_URL", "https://a.example"),
            ("OAUTH_ISSUER", "https://id.example"),
        ];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut v = prod.to_vec();
            v.extend_from_slice(extra);
            load(&v)
        };
        let err = with(&[("ALLOWED_ORIGINS", "*")]).unwrap_err().to_string();
        assert!(err.contains("ALLOWED_ORIGINS"), "{err}");
        assert!(err.contains("security.allow_any_origin"), "{err}");
        let err = with(&[("ALLOWED_HOSTS", "*")]).unwrap_err().to_string();
        assert!(
            err.contains("ALLOWED_HOSTS") && err.contains("allow_any_host"),
            "{err}"
        );
        let s = with(&[
            ("ALLOWED_ORIGINS", "*"),
            ("ALLOWED_HOSTS", "*"),
            ("GATEHOUSE_SECURITY__ALLOW_ANY_ORIGIN", "true"),
            ("GATEHOUSE_SECURITY__ALLOW_ANY_HOST", "true"),
        ])
        .unwrap();
        assert!(s.security.allow_any_origin && s.security.allow_any_host);
        // Development keeps accepting `*` as before.
        assert!(load(&[("ALLOWED_ORIGINS", "*")]).is_ok());
    }

    #[test]
    fn numbers_outside_their_range_name_the_setting() {
        for (var, value, setting) in [
            (
                "GATEHOUSE_AUTH__JWKS_COOLDOWN_SECS",
                "0",
                "auth.jwks_cooldown_secs",
            ),
            ("GATEHOUSE_AUTH__JWKS_TTL_SECS", "9", "auth.jwks_ttl_secs"),
            ("GATEHOUSE_AUTH__LEEWAY_SECS", "61", "auth.leeway_secs"),
            (
                "GATEHOUSE_AUTH__JWKS_FETCH_TIMEOUT_MS",
                "0",
                "auth.jwks_fetch_timeout_ms",
            ),
            (
                "GATEHOUSE_AUTH__JWKS_MAX_STALE_SECS",
                "60",
                "auth.jwks_max_stale_secs",
            ),
            (
                "GATEHOUSE_SERVER__BODY_TIMEOUT_MS",
                "0",
                "server.body_timeout_ms",
            ),
            (
                "GATEHOUSE_SERVER__CLIENT_REQUEST_TIMEOUT_MS",
                "0",
                "server.client_request_timeout_ms",
            ),
            (
                "GATEHOUSE_SERVER__KEEP_ALIVE_SECS",
                "0",
                "server.keep_alive_secs",
            ),
            (
                "GATEHOUSE_SERVER__SHUTDOWN_TIMEOUT_SECS",
                "0",
                "server.shutdown_timeout_secs",
            ),
            (
                "GATEHOUSE_MCP__TOOL_TIMEOUT_SECS",
                "0",
                "mcp.tool_timeout_secs",
            ),
            ("GATEHOUSE_MCP__MAX_BATCH_ITEMS", "0", "mcp.max_batch_items"),
            (
                "GATEHOUSE_MCP__MAX_RESPONSE_BYTES",
                "100",
                "mcp.max_response_bytes",
            ),
            (
                "GATEHOUSE_RATE_LIMIT__REQUESTS_BURST",
                "0",
                "rate_limit.requests_burst",
            ),
            (
                "GATEHOUSE_CORS__MAX_AGE_SECS",
                "999999",
                "cors.max_age_secs",
            ),
        ] {
            let err = load(&[(var, value)]).unwrap_err().to_string();
            assert!(
                err.contains(setting) && err.contains(var),
                "{var}={value}: {err}"
            );
            assert!(err.contains("out of range"), "{err}");
        }
    }

    #[test]
    fn hardening_defaults() {
        let s = load(&[]).unwrap();
        assert_eq!(s.mcp.tool_timeout, Duration::from_secs(25));
        assert_eq!(s.mcp.max_batch_items, 20);
        assert_eq!(s.mcp.max_response_bytes, 4 << 20);
        assert_eq!(s.auth.jwks_max_stale, Duration::from_secs(86_400));
        assert_eq!(s.auth.max_token_lifetime_secs, 0);
        assert!(s.auth.scope_implies.is_empty());
    }

    #[test]
    fn scope_implications_are_closed_transitively() {
        let s = load(&[(
            "GATEHOUSE_AUTH__SCOPE_IMPLIES",
            "admin=ops reports:read; ops = deploy,ops",
        )])
        .unwrap();
        assert_eq!(
            s.auth.scope_implies.get("admin").unwrap(),
            &vec!["deploy".to_string(), "ops".into(), "reports:read".into()]
        );
        assert_eq!(
            s.auth.scope_implies.get("ops").unwrap(),
            &vec!["deploy".to_string()]
        );
        let err = load(&[("GATEHOUSE_AUTH__SCOPE_IMPLIES", "admin")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("auth.scope_implies"), "{err}");
        let err = load(&[("GATEHOUSE_AUTH__SCOPE_IMPLIES", "admin=a\"b")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a valid scope token"), "{err}");
    }

    #[test]
    fn secrets_never_appear_in_errors() {
        let err = load(&[("SK_CLIENT_SECRET", "topsecret-value"), ("PORT", "x")]).unwrap_err();
        assert!(!err.to_string().contains("topsecret-value"));
    }

    #[test]
    fn origin_patterns_match_ports_exactly() {
        let p = OriginPattern::parse("http://localhost:*").unwrap();
        assert!(p.matches("http://localhost:6274"));
        assert!(p.matches("http://localhost"));
        assert!(!p.matches("http://localhost.evil.com"));
        assert!(!p.matches("http://localhost:80x"));
        let e = OriginPattern::parse("https://app.example.com").unwrap();
        assert!(e.matches("https://APP.example.com"));
        assert!(!e.matches("https://app.example.com:444"));
    }

    #[test]
    fn host_patterns() {
        let h = HostPattern::parse("localhost").unwrap();
        assert!(h.matches("localhost:8080"));
        assert!(h.matches("LOCALHOST"));
        assert!(!h.matches("localhost.evil:80"));
        let v6 = HostPattern::parse("[::1]").unwrap();
        assert!(v6.matches("[::1]:9"));
        assert!(
            !HostPattern::parse("a.example:443")
                .unwrap()
                .matches("a.example:444")
        );
        assert!(split_host_port("a b").is_none());
        assert!(split_host_port("a:99999").is_none());
    }
}
