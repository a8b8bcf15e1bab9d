//! The protocol model's results: what every method answers, as serde types that handlers return
//! and the response serializes straight into its body (never through a `serde_json::Value`),
//! plus the members every 2026-07-28 result adds (`resultType`, the server's identity in
//! `_meta`, caching hints). Only a tool's own structured content stays a `Value`: its shape is
//! the tool's.

use std::sync::Arc;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::McpError;
use crate::context::{Content, ResourceContents};
use crate::jsonrpc::{Id, JsonResult};
use crate::prompt::{PromptArg, PromptMessage};

/// What a handler answers: one variant per result shape of the protocol.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Reply {
    /// `ping`, `logging/setLevel`, `resources/(un)subscribe`, a closed listen stream.
    Empty(Empty),
    Initialize(InitializeResult),
    /// 2026-07-28.
    Discover(DiscoverResult),
    CallTool(CallToolResult),
    Resources(Listing<ListedResource>),
    ResourceTemplates(Listing<ListedResource>),
    ReadResource(ReadResourceResult),
    Prompts(Listing<ListedPrompt>),
    GetPrompt(GetPromptResult),
    Complete(CompleteResult),
    /// 2026-07-28: the request needs answers from the client before it can complete.
    InputRequired(InputRequired),
    /// 2026-07-28 tasks extension: a `tools/call` answered with a task (`resultType: task`).
    /// (Boxed: every result is moved through the dispatch, and a reply is as large as its
    /// largest variant, copied at each move.)
    CreateTask(Box<TaskView>),
    /// `tasks/get`: the task as it stands, with its result, error or questions.
    Task(Box<TaskView>),
}

impl Reply {
    pub const EMPTY: Reply = Reply::Empty(Empty {});

    /// A tool's failure, as the result the model reads (`isError: true`).
    pub fn tool_error(text: impl Into<String>) -> Reply {
        Reply::CallTool(CallToolResult {
            content: vec![Content::text(text)],
            structured_content: None,
            is_error: true,
        })
    }

    /// `resultType` in 2026-07-28.
    pub fn result_type(&self) -> ResultType {
        match self {
            Reply::InputRequired(_) => ResultType::InputRequired,
            Reply::CreateTask(_) => ResultType::Task,
            _ => ResultType::Complete,
        }
    }
}

/// `{}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Empty {}

/// `{name, version, title?}`: who this server is. Built once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerInfo {
    pub name: String,
    pub version: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// The capabilities this server declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ServerCapabilities {
    pub logging: Empty,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tools: Option<ListChanged>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourcesCapability>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompts: Option<ListChanged>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completions: Option<Empty>,
    /// 2026-07-28: the extensions served (the tasks extension when a tool can run as a task).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Extensions>,
}

/// `capabilities.extensions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Extensions {
    #[serde(
        rename = "io.modelcontextprotocol/tasks",
        skip_serializing_if = "Option::is_none"
    )]
    pub tasks: Option<Empty>,
    /// MCP Apps, in every revision, when a tool has a view.
    #[serde(
        rename = "io.modelcontextprotocol/ui",
        skip_serializing_if = "Option::is_none"
    )]
    pub ui: Option<UiExtension>,
}

/// What the server says of MCP Apps: `{"mimeTypes": ["text/html;profile=mcp-app"]}`, the
/// view type it serves. (No field: every reply carries capabilities, and stays small.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UiExtension;

impl Serialize for UiExtension {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry("mimeTypes", &[crate::views::MIME_TYPE])?;
        m.end()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ListChanged {
    #[serde(rename = "listChanged")]
    pub list_changed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ResourcesCapability {
    pub subscribe: bool,
    #[serde(rename = "listChanged")]
    pub list_changed: bool,
}

/// `initialize` (2025 revisions).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InitializeResult {
    #[serde(rename = "protocolVersion")]
    pub protocol_version: &'static str,
    pub capabilities: ServerCapabilities,
    #[serde(rename = "serverInfo")]
    pub server_info: Arc<ServerInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
}

/// `server/discover` (2026-07-28).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiscoverResult {
    #[serde(rename = "supportedVersions")]
    pub supported_versions: &'static [&'static str],
    pub capabilities: ServerCapabilities,
    #[serde(rename = "ttlMs")]
    pub ttl_ms: u64,
    #[serde(rename = "cacheScope")]
    pub cache_scope: CacheScope,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
}

/// `tools/call`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallToolResult {
    pub content: Vec<Content>,
    #[serde(rename = "structuredContent", skip_serializing_if = "Option::is_none")]
    pub structured_content: Option<Value>,
    #[serde(rename = "isError", skip_serializing_if = "is_false")]
    pub is_error: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A page of a listing: `{<key>: [items], nextCursor?}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing<T> {
    pub key: &'static str,
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T: Serialize> Serialize for Listing<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(self.key, &self.items)?;
        if let Some(c) = &self.next_cursor {
            m.serialize_entry("nextCursor", c)?;
        }
        m.end()
    }
}

/// An entry of `resources/list` or `resources/templates/list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListedResource {
    #[serde(flatten)]
    pub id: ResourceId,
    pub name: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<&'static str>,
    pub description: &'static str,
    #[serde(rename = "mimeType", skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<&'static str>,
    /// An MCP Apps view's `{"ui": {...}}`.
    #[serde(rename = "_meta", skip_serializing_if = "Option::is_none")]
    pub meta: Option<&'static serde_json::Value>,
}

/// What a listed resource is known by: its URI, or its template's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ResourceId {
    #[serde(rename = "uri")]
    Uri(&'static str),
    #[serde(rename = "uriTemplate")]
    Template(&'static str),
}

/// An entry of `prompts/list`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListedPrompt {
    pub name: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<&'static str>,
    pub description: &'static str,
    pub arguments: &'static [PromptArg],
}

/// `resources/read`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReadResourceResult {
    pub contents: Vec<ResourceContents>,
}

/// `prompts/get`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GetPromptResult {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub messages: Vec<PromptMessage>,
}

/// `completion/complete`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CompleteResult {
    pub completion: Completion,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Completion {
    pub values: Vec<String>,
    pub total: usize,
    #[serde(rename = "hasMore")]
    pub has_more: bool,
}

/// 2026-07-28: what the client must answer (`inputRequests`, keyed), and the sealed state it
/// sends back with the answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InputRequired {
    #[serde(rename = "inputRequests")]
    pub input_requests: Map<String, Value>,
    #[serde(rename = "requestState")]
    pub request_state: String,
}

/// A task as a client reads it: the `CreateTaskResult` of a call, a `tasks/get` result and a
/// `notifications/tasks` notification's params (the tasks extension's `DetailedTask`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskView {
    #[serde(rename = "taskId")]
    pub task_id: String,
    pub status: &'static str,
    #[serde(rename = "statusMessage", skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    #[serde(rename = "createdAt")]
    pub created_at: String,
    #[serde(rename = "lastUpdatedAt")]
    pub last_updated_at: String,
    #[serde(rename = "ttlMs")]
    pub ttl_ms: u64,
    #[serde(rename = "pollIntervalMs")]
    pub poll_interval_ms: u64,
    #[serde(rename = "inputRequests", skip_serializing_if = "Option::is_none")]
    pub input_requests: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ResultType {
    #[serde(rename = "complete")]
    Complete,
    #[serde(rename = "input_required")]
    InputRequired,
    /// The tasks extension's `CreateTaskResult`.
    #[serde(rename = "task")]
    Task,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheScope {
    Public,
    Private,
}

/// The members a 2026-07-28 result carries besides its own (`modern::members` fills them).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModernMembers {
    #[serde(rename = "resultType")]
    pub result_type: ResultType,
    #[serde(rename = "_meta")]
    pub meta: ResultMeta,
    #[serde(rename = "ttlMs", skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
    #[serde(rename = "cacheScope", skip_serializing_if = "Option::is_none")]
    pub cache_scope: Option<CacheScope>,
}

/// A 2026-07-28 result's `_meta`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResultMeta {
    #[serde(
        rename = "io.modelcontextprotocol/subscriptionId",
        skip_serializing_if = "Option::is_none"
    )]
    pub subscription_id: Option<Id>,
    #[serde(rename = "io.modelcontextprotocol/serverInfo")]
    pub server_info: Arc<ServerInfo>,
}

/// A reply as sent: its own members, stamped in 2026-07-28 with those every result carries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stamped<T = Reply> {
    #[serde(flatten)]
    pub result: T,
    #[serde(flatten)]
    pub modern: Option<ModernMembers>,
}

impl<T: Serialize + std::fmt::Debug + Send + Sync> JsonResult for Stamped<T> {
    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        serde_json::to_writer(out, self)
    }
}

impl<T: Serialize> Stamped<T> {
    /// The JSON text of the result, serialized once for many responses to share (the tool
    /// listings; a result for one response is written straight into it, `JsonResult`).
    pub fn to_raw(&self) -> Result<Box<RawValue>, McpError> {
        serde_json::value::to_raw_value(self).map_err(|e| {
            log::error!("a result did not serialize: {e}");
            McpError::Internal
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_reply_stays_small() {
        // Every result moves through the dispatch by value: a large variant belongs in a box.
        assert!(
            std::mem::size_of::<Reply>() <= 72,
            "{}",
            std::mem::size_of::<Reply>()
        );
    }

    fn info() -> Arc<ServerInfo> {
        Arc::new(ServerInfo {
            name: "g".into(),
            version: "1",
            title: None,
        })
    }

    #[test]
    fn results_serialize_as_the_protocol_writes_them() {
        let plain = Stamped {
            result: Reply::tool_error("no"),
            modern: None,
        };
        assert_eq!(
            serde_json::to_value(&plain).unwrap(),
            json!({"content": [{"type": "text", "text": "no"}], "isError": true})
        );
        let listing = Stamped {
            result: Reply::Prompts(Listing {
                key: "prompts",
                items: vec![],
                next_cursor: Some("c".into()),
            }),
            modern: Some(ModernMembers {
                result_type: ResultType::Complete,
                meta: ResultMeta {
                    subscription_id: None,
                    server_info: info(),
                },
                ttl_ms: Some(5),
                cache_scope: Some(CacheScope::Public),
            }),
        };
        assert_eq!(
            serde_json::to_value(&listing).unwrap(),
            json!({
                "prompts": [], "nextCursor": "c", "resultType": "complete",
                "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "g", "version": "1"}},
                "ttlMs": 5, "cacheScope": "public"
            })
        );
        let empty = Stamped {
            result: Reply::EMPTY,
            modern: None,
        };
        assert_eq!(serde_json::to_string(&empty).unwrap(), "{}");
    }
}
