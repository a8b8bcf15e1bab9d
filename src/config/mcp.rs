//! `[mcp]`: the protocol endpoint, the server's description, listing and response limits, and
//! the key that seals 2026-07-28 `requestState`.

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, Secret, bad, non_empty, range, var_for};
use crate::context::LogLevel;

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

#[derive(Deserialize)]
pub(super) struct Raw {
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

impl Raw {
    pub(super) fn validate(self) -> Result<McpSettings, ConfigError> {
        let m = self;
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
        Ok(McpSettings {
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
    })
    }
}

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
