//! `tools/list` and `tools/call`: scope filtering, pagination, argument validation, timeouts,
//! panic containment, and output-schema checks.

use serde_json::{Map, Value, json};

use super::asking::{Asking, Ran};
use super::{Call, McpError, Server, listing, require_scopes, string_param};
use crate::auth::Caller;
use crate::registry::{Tool, first_error};
use crate::tool::{Content, ToolContext, ToolError, ToolOutput};

pub fn list(server: &Server, p: &Map<String, Value>, caller: &Caller) -> Result<Value, McpError> {
    let visible: Vec<&Value> = server
        .registry
        .tools
        .iter()
        .filter(|t| !server.filter_tools_by_scope || caller.missing_scopes(t.def.scopes).is_empty())
        .map(|t| &t.listing)
        .collect();
    listing("tools", &visible, p, server.settings.page_size)
}

/// A tool result with `isError: true` and this text.
pub fn error_result(text: impl Into<String>) -> Value {
    json!({"content": [Content::text(text)], "isError": true})
}

/// Arguments with the tool's secret ones masked, for the debug log.
fn redacted(tool: &Tool, args: &Value) -> Value {
    let mut args = args.clone();
    if let Value::Object(m) = &mut args {
        for k in tool.def.secret_args {
            if let Some(v) = m.get_mut(*k) {
                *v = json!("[redacted]");
            }
        }
    }
    args
}

pub async fn call(server: &Server, p: &Map<String, Value>, call: &Call) -> Result<Value, McpError> {
    let name = string_param(p, "name")?;
    let args = match p.get("arguments") {
        None | Some(Value::Null) => json!({}),
        Some(a @ Value::Object(_)) => a.clone(),
        Some(_) => {
            return Err(McpError::InvalidParams(
                "arguments must be an object".into(),
            ));
        }
    };
    let tool = server
        .registry
        .tool(name)
        .ok_or_else(|| McpError::UnknownTool(name.to_string()))?;
    // 2026-07-28 checks that come before the tool runs: mirrored headers, then the client
    // capabilities the tool needs.
    if let Some(meta) = &call.meta {
        crate::header_params::check(&tool.header_params, &args, &call.param_headers)
            .map_err(McpError::HeaderMismatch)?;
        meta.require(tool.def.client_capabilities)?;
    }
    let caller = call.caller.clone();
    require_scopes(&caller, tool.def.scopes)?;
    if let Some(err) = first_error(&tool.input, &args) {
        return Ok(error_result(format!(
            "Invalid arguments for tool {name}: {err}"
        )));
    }
    log::debug!("tools/call {name} arguments {}", redacted(tool, &args));
    let asking = Asking::prepare(server, call, p, "tools/call", name, &args, tool.def.asks)?;
    let ctx = ToolContext::new(caller, server.notifier(call, p))
        .with_changes(server.changes.clone())
        .with_asker(asking.asker.clone());
    let handler = tool.def.handler;
    match asking
        .run(|| handler(ctx, args), server.settings.tool_timeout)
        .await
    {
        Ran::Done(Ok(output)) => finish(tool, output),
        Ran::Done(Err(ToolError(msg))) => Ok(error_result(msg)),
        Ran::Interrupted(why) => asking.interrupted(server, why),
        Ran::TimedOut => Ok(error_result(format!(
            "Tool {name} timed out after {} s",
            server.settings.tool_timeout.as_secs()
        ))),
        Ran::Panicked => {
            log::error!(
                "tool {name} panicked; the call was answered -32603 and the server keeps serving"
            );
            Err(McpError::Internal)
        }
    }
}

fn finish(tool: &Tool, output: ToolOutput) -> Result<Value, McpError> {
    let ToolOutput {
        mut content,
        structured,
    } = output;
    let name = tool.def.name;
    if let Some(validator) = &tool.output {
        let Some(s) = &structured else {
            log::error!("tool {name} declares an output schema but returned no structured content");
            return Err(McpError::Internal);
        };
        if let Some(err) = first_error(validator, s) {
            log::error!(
                "tool {name} returned structured content that fails its output schema: {err}"
            );
            return Err(McpError::Internal);
        }
    }
    let mut result = json!({});
    if let Some(s) = structured {
        if content.is_empty() {
            content.push(Content::text(s.to_string()));
        }
        if s.is_object() {
            result["structuredContent"] = s;
        }
    }
    result["content"] = serde_json::to_value(content).map_err(|_| McpError::Internal)?;
    Ok(result)
}
