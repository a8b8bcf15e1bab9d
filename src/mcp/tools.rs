//! `tools/list` and `tools/call`: scope filtering, pagination, argument validation, timeouts,
//! panic containment, and output-schema checks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::asking::Asking;
use super::ending::{conclude, deadline_secs};
use super::model::{CallTool, Method};
use super::result::{Reply, ResultType, Stamped};
use super::{Call, Era, McpError, Server, listing, modern, page_start, require_scopes};
use crate::context::ToolContext;
use crate::registry::{Tool, first_error};

/// `tools/list` results, serialized once and shared: keyed by which tools the caller may see
/// (callers with the same scopes share one), the page and the era. Tools are fixed at link
/// time, so an entry never goes stale; the number of entries is bounded all the same.
#[derive(Default)]
pub struct ListCache {
    entries: Mutex<HashMap<ListKey, Arc<RawValue>>>,
}

#[derive(PartialEq, Eq, Hash)]
struct ListKey {
    /// Bit i set: tool i is visible.
    visible: Vec<u64>,
    start: usize,
    modern: bool,
    ui: bool,
}

const MAX_CACHED_LISTS: usize = 256;

impl ListCache {
    pub fn get(
        &self,
        server: &Server,
        cursor: Option<&str>,
        call: &Call,
    ) -> Result<Arc<RawValue>, McpError> {
        let tools = &server.registry.tools;
        // MCP Apps: a client that renders views sees them named, and the tools only its views
        // call; one that does not sees neither.
        let ui = super::views::declared(call);
        let mut visible = vec![0u64; tools.len().div_ceil(64)];
        let mut count = 0;
        for (i, t) in tools.iter().enumerate() {
            let allowed = t.def.tool.scopes.is_empty()
                || !server.filter_tools_by_scope
                || call.caller.missing_scopes(t.def.tool.scopes).is_empty();
            if allowed && (ui || !t.app_only()) {
                visible[i / 64] |= 1 << (i % 64);
                count += 1;
            }
        }
        let key = ListKey {
            start: page_start(cursor, count)?,
            visible,
            modern: call.era == Era::Modern,
            ui,
        };
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(raw) = entries.get(&key) {
            return Ok(raw.clone());
        }
        let listings: Vec<&Value> = tools
            .iter()
            .enumerate()
            .filter(|(i, _)| key.visible[i / 64] & (1 << (i % 64)) != 0)
            .map(|(_, t)| match (&t.listing_ui, key.ui) {
                (Some(with_view), true) => with_view,
                _ => &t.listing,
            })
            .collect();
        let answer = Stamped {
            result: listing("tools", listings, cursor, server.settings.page_size)?,
            modern: key
                .modern
                .then(|| modern::members(server, Method::ToolsList, ResultType::Complete)),
        };
        let raw: Arc<RawValue> = answer.to_raw()?.into();
        if entries.len() >= MAX_CACHED_LISTS {
            entries.clear();
        }
        entries.insert(key, raw.clone());
        Ok(raw)
    }
}

/// Arguments with the tool's secret ones masked, for the debug log.
fn redacted(tool: &Tool, args: &Value) -> Value {
    let mut args = args.clone();
    if let Value::Object(m) = &mut args {
        for k in tool.def.tool.secret_args {
            if let Some(v) = m.get_mut(*k) {
                *v = json!("[redacted]");
            }
        }
    }
    args
}

/// `p.arguments` is taken out beforehand (`arguments`) so that it moves into the handler;
/// `tool` is the registration `p.name` names, if any (looked up once, for the audit too).
pub async fn call(
    server: &Arc<Server>,
    p: &CallTool,
    tool: Option<&Tool>,
    arguments: Option<Map<String, Value>>,
    call: &Call,
    deadline: Instant,
) -> Result<Reply, McpError> {
    let args = Value::Object(arguments.unwrap_or_default());
    let name = p.name.as_str();
    let tool = tool.ok_or_else(|| McpError::UnknownTool(name.to_string()))?;
    // 2026-07-28 checks that come before the tool runs: mirrored headers, then the client
    // capabilities the tool needs.
    if let Some(meta) = &call.meta {
        crate::header_params::check(&tool.header_params, &args, &call.param_headers)
            .map_err(McpError::HeaderMismatch)?;
        meta.require(tool.def.tool.client_capabilities)?;
    }
    let caller = call.caller.clone();
    require_scopes(&caller, tool.def.tool.scopes)?;
    // A tool only a view calls: a 2026-07-28 client that renders no views cannot call it.
    if tool.app_only() && !super::views::declared(call) {
        return Err(McpError::MissingExtension(crate::views::EXTENSION));
    }
    // A tool that runs only as a task needs a client that declared the extension.
    let task_mode = super::tasks::mode(call, tool)?;
    if let Some(err) = first_error(&tool.input, &args) {
        return Ok(Reply::tool_error(format!(
            "Invalid arguments for tool {name}: {err}"
        )));
    }
    log::debug!("tools/call {name} arguments {}", redacted(tool, &args));
    let asking = Asking::prepare(
        server,
        call,
        p.round(),
        "tools/call",
        name,
        &args,
        tool.def.tool.asks,
    )?;
    // A confirmation given to a tool that is not idempotent performs it once: the state that
    // carried it is accepted once, on every instance.
    let a = tool.def.tool.annotations;
    if a.idempotent != Some(true) && a.read_only != Some(true) {
        asking.accept_once(server).await?;
    }
    let ctx = ToolContext::new(caller, server.notifier(call, &p.meta))
        .with_changes(server.changes.clone());
    // The tool's run span, when traces are on: current while the handler runs; it ends when
    // the last of its holders does (the handler, on the tasks' runtime when the call became a
    // task).
    let span = super::spans::tool_run(name);
    if let Some(mode) = task_mode {
        // Boxed: its wait (the store, the decision) would otherwise swell the future of every
        // tool call, which the transport copies per request.
        let work = Box::pin(super::tasks::call(
            server, tool, ctx, args, asking, call, mode,
        ));
        return match span {
            None => work.await,
            Some(cx) => opentelemetry::context::FutureExt::with_context(work, cx).await,
        };
    }
    let ctx = ctx.with_asker(asking.asker.clone());
    let handler = tool.def.handler;
    let ending = match span {
        None => asking.run(|| handler(ctx, args), deadline).await,
        Some(cx) => {
            let run = Box::pin(asking.run(|| handler(ctx, args), deadline));
            opentelemetry::context::FutureExt::with_context(run, cx).await
        }
    };
    conclude(server, tool, &asking, ending, deadline_secs(server, call))
}
