//! `[mcp]`: the protocol endpoint, the server's description, listing and response limits, and
//! the key that seals 2026-07-28 `requestState`.

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, Secret, bad, millis, non_empty, optional_text, range, secs, var_for};
use crate::context::LogLevel;

/// `[mcp]`: one type, deserialized as it is used, then checked.
#[derive(Debug, Clone, Deserialize)]
pub struct McpSettings {
    pub path: String,
    pub server_name: String,
    pub server_title: String,
    #[serde(deserialize_with = "optional_text")]
    pub instructions: Option<String>,
    pub page_size: usize,
    #[serde(rename = "tool_timeout_secs", deserialize_with = "secs")]
    pub tool_timeout: Duration,
    #[serde(deserialize_with = "log_level")]
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
    /// Longest life of an event stream; it then ends with its result.
    #[serde(rename = "max_stream_secs", deserialize_with = "secs")]
    pub max_stream: Duration,
    /// Key material sealing 2026-07-28 `requestState` (MCP_STATE_KEY, at least 32 bytes; held
    /// as standard base64).
    #[serde(deserialize_with = "key_material")]
    pub state_key: Option<Secret>,
    /// The previous key, still accepted when opening state (rotation).
    #[serde(deserialize_with = "key_material")]
    pub state_key_previous: Option<Secret>,
    /// How long an `input_required` exchange may take, from the first question.
    #[serde(rename = "state_ttl_secs", deserialize_with = "secs")]
    pub state_ttl: Duration,
    /// An optional-task tool's call still running after this long becomes a task (for clients
    /// that declare the tasks extension).
    #[serde(rename = "task_after_ms", deserialize_with = "millis")]
    pub task_after: Duration,
    /// Longest run of a task; it then fails saying so.
    #[serde(rename = "task_timeout_secs", deserialize_with = "secs")]
    pub task_timeout: Duration,
    /// How long a finished task is kept (its `ttlMs` grows to cover its run and this).
    #[serde(rename = "task_ttl_secs", deserialize_with = "secs")]
    pub task_ttl: Duration,
    /// Unfinished tasks one subject may have; one more is 429.
    pub max_tasks_per_subject: usize,
    /// How often the instance running a task renews its lease (with REDIS_URL).
    #[serde(rename = "task_heartbeat_secs", deserialize_with = "secs")]
    pub task_heartbeat: Duration,
    /// The `pollIntervalMs` suggested to clients polling a task.
    pub task_poll_interval_ms: u64,
    /// A call that may stream and has no answer after this long becomes an event stream (its
    /// head sent, then keep-alive comments) so that platform routers keep it open.
    #[serde(rename = "stream_after_ms", deserialize_with = "millis")]
    pub stream_after: Duration,
    /// Longest run of a tool call answered on an event stream.
    #[serde(rename = "streamed_tool_timeout_secs", deserialize_with = "secs")]
    pub streamed_tool_timeout: Duration,
}

fn log_level<'de, D: serde::Deserializer<'de>>(d: D) -> Result<LogLevel, D::Error> {
    let s = String::deserialize(d)?;
    LogLevel::parse(s.trim()).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "{s:?} is not one of debug, info, notice, warning, error, critical, alert, emergency"
        ))
    })
}

/// Base64 key material of at least 32 bytes (standard or URL-safe alphabet, padding optional),
/// kept as standard base64; `None` when unset. Errors never show the value.
fn key_material<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    use serde::de::Error;
    let raw = String::deserialize(d)?;
    let Some(v) = non_empty(&raw) else {
        return Ok(None);
    };
    let trimmed = v.trim_end_matches('=');
    let bytes = STANDARD_NO_PAD
        .decode(trimmed)
        .or_else(|_| URL_SAFE_NO_PAD.decode(trimmed))
        .map_err(|_| {
            D::Error::custom("must be base64 key material (e.g. `openssl rand -base64 32`)")
        })?;
    if bytes.len() < 32 {
        return Err(D::Error::custom(format!(
            "must decode to at least 32 bytes, not {}",
            bytes.len()
        )));
    }
    Ok(Some(Secret(STANDARD.encode(bytes))))
}

impl McpSettings {
    pub(super) fn check(&mut self) -> Result<(), ConfigError> {
        let p = &self.path;
        // `/` serves MCP at the root, as the Express pattern did; `/health`, `/ready` and
        // `/.well-known/...` keep their meaning beside it.
        if p != "/"
            && (!p.starts_with('/')
                || p.len() < 2
                || p.ends_with('/')
                || !p
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/-_.".contains(&b))
                || p.starts_with("/.well-known")
                || p.starts_with(crate::auth::dev_issuer::ISSUER_PATH)
                || p == "/health"
                || p == "/ready")
        {
            return Err(bad(
                &var_for("mcp.path"),
                format!(
                    "{p:?} must be / or a path like /mcp (letters, digits, / - _ .; no trailing slash; not /health, /ready, /.well-known/... or /dev-issuer/...)"
                ),
            ));
        }
        range(self.page_size as u64, 1, 1000, "mcp.page_size")?;
        range(
            self.tool_timeout.as_secs(),
            1,
            3600,
            "mcp.tool_timeout_secs",
        )?;
        range(self.max_batch_items as u64, 1, 1000, "mcp.max_batch_items")?;
        range(
            self.max_response_bytes as u64,
            16 << 10,
            1 << 30,
            "mcp.max_response_bytes",
        )?;
        // A day at most: longer hints outlive any deploy.
        range(self.list_ttl_ms, 0, 86_400_000, "mcp.list_ttl_ms")?;
        range(self.read_ttl_ms, 0, 86_400_000, "mcp.read_ttl_ms")?;
        range(
            self.max_listen_streams as u64,
            1,
            1000,
            "mcp.max_listen_streams",
        )?;
        range(self.state_ttl.as_secs(), 1, 86_400, "mcp.state_ttl_secs")?;
        range(self.max_stream.as_secs(), 1, 86_400, "mcp.max_stream_secs")?;
        self.check_long_calls()?;
        self.server_name = non_empty(&self.server_name)
            .ok_or_else(|| bad(&var_for("mcp.server_name"), "must not be empty"))?
            .to_string();
        Ok(())
    }

    /// The settings of long-running calls: tasks and streamed calls.
    fn check_long_calls(&self) -> Result<(), ConfigError> {
        range(
            self.task_after.as_millis() as u64,
            0,
            60_000,
            "mcp.task_after_ms",
        )?;
        range(
            self.task_timeout.as_secs(),
            1,
            7 * 86_400,
            "mcp.task_timeout_secs",
        )?;
        range(self.task_ttl.as_secs(), 1, 7 * 86_400, "mcp.task_ttl_secs")?;
        range(
            self.max_tasks_per_subject as u64,
            1,
            10_000,
            "mcp.max_tasks_per_subject",
        )?;
        range(
            self.task_heartbeat.as_secs(),
            1,
            300,
            "mcp.task_heartbeat_secs",
        )?;
        range(
            self.task_poll_interval_ms,
            100,
            3_600_000,
            "mcp.task_poll_interval_ms",
        )?;
        range(
            self.stream_after.as_millis() as u64,
            0,
            3_600_000,
            "mcp.stream_after_ms",
        )?;
        range(
            self.streamed_tool_timeout.as_secs(),
            1,
            86_400,
            "mcp.streamed_tool_timeout_secs",
        )?;
        Ok(())
    }

    /// When a call that may stream becomes a stream: `mcp.stream_after_ms`, and never later
    /// than `mcp.tool_timeout_secs` (a call past that must already be streaming).
    pub fn stream_point(&self) -> Duration {
        self.stream_after.min(self.tool_timeout)
    }
}
