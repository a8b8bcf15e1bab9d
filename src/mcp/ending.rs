//! How a tool call's run ends in what the client reads: the result (checked against the
//! tool's output schema), the tool error, the `input_required` round, or the protocol error;
//! and how long a call answered in its request may run. Shared by calls answered in the request
//! (`tools`) and calls that became tasks (`tasks`).

use serde_json::Value;

use super::asking::{Asking, Ending};
use super::result::{CallToolResult, Reply};
use super::{Call, McpError, Server};
use crate::context::Content;
use crate::registry::{Tool, first_error};
use crate::tool::{ToolError, ToolOutput};

/// The seconds a call answered in the request may run: `mcp.tool_timeout_secs`, or
/// `mcp.streamed_tool_timeout_secs` when it may become an event stream.
pub fn deadline_secs(server: &Server, call: &Call) -> u64 {
    if call.tx.is_some() {
        server.settings.streamed_tool_timeout.as_secs()
    } else {
        server.settings.tool_timeout.as_secs()
    }
}

/// What a tool call answers for how its handler's run ended (in the request; a task records it
/// instead: `Runner::conclude` in `mcp::tasks`).
pub fn conclude(
    server: &Server,
    tool: &Tool,
    asking: &Asking,
    ending: Ending<crate::tool::ToolResult>,
    limit_secs: u64,
) -> Result<Reply, McpError> {
    let name = tool.def.name;
    match ending {
        Ending::Done(Ok(output)) => finish(tool, output),
        Ending::Done(Err(ToolError(msg))) => Ok(Reply::tool_error(msg)),
        Ending::Interrupted(why) => asking.interrupted(server, why),
        Ending::TimedOut => Ok(Reply::tool_error(format!(
            "Tool {name} timed out after {limit_secs} s"
        ))),
        Ending::Panicked => {
            log::error!(
                "tool {name} panicked; the call was answered -32603 and the server keeps serving"
            );
            Err(McpError::Internal)
        }
    }
}

pub fn finish(tool: &Tool, output: ToolOutput) -> Result<Reply, McpError> {
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
    if let Some(s) = &structured
        && content.is_empty()
    {
        content.push(Content::text(s.to_string()));
    }
    Ok(Reply::CallTool(CallToolResult {
        content,
        structured_content: structured.filter(Value::is_object),
        is_error: false,
    }))
}
