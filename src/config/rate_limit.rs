//! `[rate_limit]`: the request and tool-call budgets, and the shared store (Redis) that makes
//! them hold across instances.

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, Secret, bad, non_empty, range, var_for};

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

#[derive(Deserialize)]
pub(super) struct Raw {
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

impl Raw {
    pub(super) fn validate(self) -> Result<RateLimitSettings, ConfigError> {
        let r = self;
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
        Ok(RateLimitSettings {
            enabled: r.enabled,
            requests_per_minute: r.requests_per_minute,
            requests_burst: r.requests_burst,
            tool_calls_per_minute: r.tool_calls_per_minute,
            tool_calls_burst: r.tool_calls_burst,
            redis_url,
            redis_timeout: Duration::from_millis(r.redis_timeout_ms),
            redis_down,
            redis_insecure_tls: r.redis_insecure_tls,
        })
    }
}
