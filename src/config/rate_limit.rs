//! `[rate_limit]`: the request and tool-call budgets, and the shared store (Redis) that makes
//! them hold across instances.

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, Secret, millis, non_empty, range};

/// `[rate_limit]`: one type, deserialized as it is used, then range-checked.
#[derive(Debug, Clone, Deserialize)]
pub struct RateLimitSettings {
    pub enabled: bool,
    pub requests_per_minute: u32,
    pub requests_burst: u32,
    pub tool_calls_per_minute: u32,
    pub tool_calls_burst: u32,
    /// First token verifications per minute (and burst) allowed to an address whose request
    /// budget is spent (per instance).
    pub first_verifications_per_minute: u32,
    pub first_verifications_burst: u32,
    /// A shared store for the budgets (and list-change announcements): REDIS_URL.
    #[serde(deserialize_with = "redis_url")]
    pub redis_url: Option<Secret>,
    /// How long a request waits for the shared store before the fallback applies.
    #[serde(rename = "redis_timeout_ms", deserialize_with = "millis")]
    pub redis_timeout: Duration,
    /// What happens while the shared store does not answer.
    pub redis_down: RedisDown,
    /// Accept a `rediss://` server certificate without verifying it (Heroku Key-Value Store
    /// presents a self-signed one).
    pub redis_insecure_tls: bool,
}

/// What the budgets do while the shared store does not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum RedisDown {
    /// Each instance applies its own budgets (the default).
    Local,
    /// Requests are refused with 503 until the store answers again.
    Refuse,
}

impl TryFrom<String> for RedisDown {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.trim() {
            "local" => Ok(RedisDown::Local),
            "refuse" => Ok(RedisDown::Refuse),
            other => Err(format!("{other:?} is not local or refuse")),
        }
    }
}

/// `redis://` or `rediss://` with a host; empty = none. Errors never show the value (it usually
/// holds a password).
fn redis_url<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
    use serde::de::Error;
    let raw = String::deserialize(d)?;
    let Some(u) = non_empty(&raw) else {
        return Ok(None);
    };
    if !(u.starts_with("redis://") || u.starts_with("rediss://")) {
        return Err(D::Error::custom(
            "must start with redis:// or rediss:// (value not shown)",
        ));
    }
    match url::Url::parse(u) {
        Ok(parsed) if parsed.host_str().is_some_and(|h| !h.is_empty()) => {
            Ok(Some(Secret(u.to_string())))
        }
        _ => Err(D::Error::custom(
            "is not a valid redis:// or rediss:// URL (value not shown)",
        )),
    }
}

impl RateLimitSettings {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        for (v, key) in [
            (self.requests_per_minute, "rate_limit.requests_per_minute"),
            (self.requests_burst, "rate_limit.requests_burst"),
            (
                self.tool_calls_per_minute,
                "rate_limit.tool_calls_per_minute",
            ),
            (self.tool_calls_burst, "rate_limit.tool_calls_burst"),
            (
                self.first_verifications_per_minute,
                "rate_limit.first_verifications_per_minute",
            ),
            (
                self.first_verifications_burst,
                "rate_limit.first_verifications_burst",
            ),
        ] {
            range(u64::from(v), 1, 1_000_000, key)?;
        }
        range(
            self.redis_timeout.as_millis() as u64,
            1,
            10_000,
            "rate_limit.redis_timeout_ms",
        )?;
        Ok(())
    }
}
