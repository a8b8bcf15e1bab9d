//! The audit trail: one line (log target `gatehouse::audit`, structured fields in JSON logs)
//! for every tool call, prompt get and resource read, with who, what, the outcome and the
//! duration; and the tool-call metrics recorded at the same point. Never arguments or results.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::auth::Caller;
use crate::mcp::result::Reply;
use crate::mcp::{Call, McpError};
use crate::metrics::{self, METRICS};
use crate::text::log_safe;

/// One audited operation, from its start. Dropped without `finish` (the client cancelled or
/// went away), it records `cancelled`.
pub struct Audit<'a> {
    call: &'a Call,
    method: &'static str,
    /// The tool or prompt name, or the resource URI, as the client sent it.
    name: &'a str,
    /// The tool's registered name, for metric labels (`None` for prompts and resources).
    tool: Option<&'static str>,
    start: Instant,
    done: bool,
}

impl<'a> Audit<'a> {
    pub fn start(
        call: &'a Call,
        method: &'static str,
        name: &'a str,
        tool: Option<&'static str>,
    ) -> Audit<'a> {
        Audit {
            call,
            method,
            name,
            tool,
            start: Instant::now(),
            done: false,
        }
    }

    /// When the handler must be done: `limit` (`mcp.tool_timeout_secs`) after the start.
    pub fn deadline(&self, limit: std::time::Duration) -> Instant {
        self.start + limit
    }

    /// Records the outcome of `result`.
    pub fn finish(mut self, result: &Result<Reply, McpError>) {
        self.done = true;
        let (outcome, reason) = match result {
            Ok(Reply::CallTool(r)) if r.is_error => ("tool_error", None),
            // A round that asked the client and did nothing yet: not an execution.
            Ok(Reply::InputRequired(_)) => ("input_required", None),
            // Answered with a task: its end is a line of its own (`task_ended`).
            Ok(Reply::CreateTask(_)) => ("task", None),
            Ok(_) => ("ok", None),
            Err(McpError::InsufficientScope(_)) => ("refused", Some("insufficient_scope")),
            Err(McpError::RateLimited(_)) => ("refused", Some("rate_limited")),
            Err(McpError::TooManyTasks(_)) => ("refused", Some("too_many_tasks")),
            Err(McpError::TaskNotFound) => ("refused", Some("not_found")),
            Err(McpError::StoreDown) => ("refused", Some("store_down")),
            Err(McpError::UnknownTool(_) | McpError::UnknownPrompt(_)) => {
                ("refused", Some("unknown_name"))
            }
            Err(McpError::ResourceNotFound(_) | McpError::UnknownResource(_)) => {
                ("refused", Some("not_found"))
            }
            Err(McpError::InvalidParams(_) | McpError::InvalidEnvelope(_)) => {
                ("refused", Some("invalid_params"))
            }
            Err(McpError::HeaderMismatch(_)) => ("refused", Some("header_mismatch")),
            Err(McpError::MissingCapabilities(_) | McpError::MissingExtension(_)) => {
                ("refused", Some("missing_client_capability"))
            }
            Err(McpError::UnsupportedVersion(_)) => ("refused", Some("unsupported_version")),
            Err(McpError::MethodNotFound(_)) => ("refused", Some("method_not_found")),
            Err(
                McpError::ParseError(_)
                | McpError::InvalidRequest(_)
                | McpError::Transport(_)
                | McpError::TooManyListenStreams(_),
            ) => ("refused", Some("invalid_request")),
            Err(McpError::Internal | McpError::ResponseTooLarge(_) | McpError::TaskFailed(_)) => {
                ("error", Some("internal"))
            }
            Err(McpError::StreamEnded(_)) => ("cancelled", None),
        };
        // A tool's own error is a result, not a JSON-RPC error: the message's span (current
        // here) says `tool_error`, as OpenTelemetry's MCP conventions name it. (JSON-RPC
        // errors are named by their code when the span ends.)
        if outcome == "tool_error" && crate::telemetry::enabled() {
            crate::telemetry::mark_error("tool_error");
        }
        self.record(outcome, reason);
    }

    fn record(&self, outcome: &'static str, reason: Option<&'static str>) {
        let secs = self.start.elapsed().as_secs_f64();
        if self.method == "tools/call" {
            let tool = self.tool.unwrap_or("unknown");
            metrics::count(&METRICS.tool_calls, [tool, outcome]);
            if self.tool.is_some() {
                metrics::observe_tool_seconds(tool, secs);
            }
        }
        line(Line {
            who: Who::Caller(&self.call.caller),
            request_id: self.call.request_id.as_str(),
            era: self.call.era.version(),
            method: self.method,
            name: self.name,
            outcome,
            reason,
            secs,
        });
    }
}

/// Who an audit line names: read (and escaped) only when the line is written.
enum Who<'a> {
    Caller(&'a Caller),
    /// A task's end, named as its record keeps it ("" subject: anonymous).
    Stored {
        subject: &'a str,
        organization: Option<&'a str>,
        client_id: Option<&'a str>,
    },
}

impl Who<'_> {
    /// Subject, organization and client id, safe to print (`-` for none).
    fn printed(&self) -> (String, String, String) {
        let (subject, organization, client_id) = match self {
            Who::Caller(Caller::Authenticated(id)) => {
                (Some(id.subject()), id.organization(), id.client_id())
            }
            Who::Caller(Caller::Anonymous) => (None, None, None),
            Who::Stored {
                subject,
                organization,
                client_id,
            } => (
                (!subject.is_empty()).then_some(*subject),
                *organization,
                *client_id,
            ),
        };
        let shown = |v: Option<&str>| v.map_or("-".into(), log_safe);
        (shown(subject), shown(organization), shown(client_id))
    }
}

/// What one audit line says.
struct Line<'a> {
    who: Who<'a>,
    request_id: &'a str,
    era: &'static str,
    method: &'static str,
    name: &'a str,
    outcome: &'static str,
    reason: Option<&'static str>,
    secs: f64,
}

fn line(l: Line<'_>) {
    // The line is built only when it will be written.
    if !log::log_enabled!(target: "gatehouse::audit", log::Level::Info) {
        return;
    }
    let outcome = match l.reason {
        Some(r) => format!("{}:{r}", l.outcome),
        None => l.outcome.to_string(),
    };
    let (subject, organization, client_id) = l.who.printed();
    let time = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let name = log_safe(l.name);
    let duration_ms = (l.secs * 1000.0 * 10.0).round() / 10.0;
    // One line; with traces on, the trace id joins it to its trace.
    macro_rules! audit {
        ($($trace:tt)*) => {
            log::info!(
                target: "gatehouse::audit",
                time = time,
                request_id = l.request_id,
                $($trace)*
                subject = subject.as_str(),
                organization = organization.as_str(),
                client_id = client_id.as_str(),
                era = l.era,
                method = l.method,
                name = name.as_str(),
                outcome = outcome.as_str(),
                duration_ms = duration_ms;
                "audit"
            )
        };
    }
    match crate::telemetry::trace_id() {
        Some(trace_id) => audit!(trace_id = trace_id.as_str(),),
        None => audit!(),
    }
}

/// The line for a task's end (`completed`, `failed`, `cancelled`), wherever it ended: method
/// `tasks/end`, the creating call's request id, subject and tool, the duration from creation.
pub fn task_ended(record: &crate::tasks::TaskRecord) {
    line(Line {
        who: Who::Stored {
            subject: &record.subject,
            organization: record.organization.as_deref(),
            client_id: record.client_id.as_deref(),
        },
        request_id: &record.request_id,
        era: crate::revision::MODERN_VERSION,
        method: "tasks/end",
        name: &record.tool,
        outcome: record.status.name(),
        reason: None,
        secs: crate::tasks::now_ms().saturating_sub(record.created_ms) as f64 / 1000.0,
    });
}

impl Drop for Audit<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.record("cancelled", None);
        }
    }
}
