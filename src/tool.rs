//! THE tool-author API: what a file in `tools/` sees. A tool is a handler and a `Tool`
//! submitted with `register_tool!`; the handler gets a `ToolContext` (from `context`: caller
//! identity, progress and log notifications, questions) and arguments already validated against
//! the schema its argument type derives. `prelude` gathers the whole author API (tools,
//! resources, prompts) for `use crate::tool::prelude::*;`.

use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use crate::asking::{Answer, AskError, Elicitation, Question, Root};
pub use crate::auth::{Caller, CallerKind, Identity};
pub use crate::changes::Change;
/// Helpers for a tool's own unit tests (`crate::tool::testing::context(..)`).
#[cfg(test)]
pub use crate::context::testing;
pub use crate::context::{BoxFuture, Content, LogLevel, ResourceContents, ToolContext};

/// Everything a file in `tools/` needs: `use crate::tool::prelude::*;`.
pub mod prelude {
    pub use super::{
        Annotations, Answer, AskError, BoxFuture, CallerKind, Change, Content, Elicitation,
        LogLevel, NoArgs, Permission, Question, ResourceContents, Root, TaskSupport, Tool,
        ToolContext, ToolError, ToolOutput, ToolResult, ViewSettings, Visibility, schema_of,
    };
    pub use crate::prompt::{PromptArg, PromptDef, PromptMessage, PromptResult, Role};
    pub use crate::resource::{ResourceDef, ResourceTemplateDef};
    pub use crate::{
        register_prompt, register_resource, register_resource_template, register_tool,
    };
    pub use schemars::JsonSchema;
    pub use serde::{Deserialize, Serialize};
    pub use serde_json::{Value, json};
}

/// What a tool returns: `Ok` becomes a result, `Err` a result with `isError: true`.
pub type ToolResult = Result<ToolOutput, ToolError>;

/// A tool failure reported to the model (`isError: true`), not a protocol error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolError(pub String);

impl ToolError {
    pub fn new(message: impl Into<String>) -> Self {
        ToolError(message.into())
    }
}

impl<E: std::error::Error> From<E> for ToolError {
    fn from(e: E) -> Self {
        ToolError(e.to_string())
    }
}

/// A successful tool result.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ToolOutput {
    pub content: Vec<Content>,
    /// Structured result; required (and checked) when the tool declares an output schema.
    pub structured: Option<Value>,
}

impl ToolOutput {
    pub fn text(text: impl Into<String>) -> Self {
        ToolOutput {
            content: vec![Content::text(text)],
            structured: None,
        }
    }

    pub fn content(content: Vec<Content>) -> Self {
        ToolOutput {
            content,
            structured: None,
        }
    }

    /// A structured result; the same JSON is also sent as a text block.
    pub fn structured(value: impl Serialize) -> Self {
        ToolOutput {
            content: Vec::new(),
            structured: Some(serde_json::to_value(value).unwrap_or(Value::Null)),
        }
    }
}

/// Behaviour hints for clients (untrusted by them; informative only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Annotations {
    pub read_only: Option<bool>,
    pub destructive: Option<bool>,
    pub idempotent: Option<bool>,
    pub open_world: Option<bool>,
}

impl Annotations {
    pub const NONE: Annotations = Annotations {
        read_only: None,
        destructive: None,
        idempotent: None,
        open_world: None,
    };

    pub fn to_json(self) -> Option<Value> {
        let mut m = serde_json::Map::new();
        for (k, v) in [
            ("readOnlyHint", self.read_only),
            ("destructiveHint", self.destructive),
            ("idempotentHint", self.idempotent),
            ("openWorldHint", self.open_world),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), Value::Bool(v));
            }
        }
        (!m.is_empty()).then_some(Value::Object(m))
    }
}

/// What a tool states about itself, apart from its handler and its arguments (those come from
/// the handler's signature). Write the fields you need and end with `..Tool::DEFAULT`.
#[derive(Clone, Copy)]
pub struct Tool {
    /// The tool's name; `None` (the default) uses the file stem, `tools/word_count.rs` ->
    /// `word_count`. 1-128 characters of `A-Za-z0-9_.-`, unique.
    pub name: Option<&'static str>,
    pub title: Option<&'static str>,
    /// What the tool does, for the model. Must not be empty.
    pub description: &'static str,
    /// JSON Schema of `structuredContent`, e.g. `Some(schema_of::<Report>)`.
    pub output_schema: Option<fn() -> Value>,
    pub annotations: Annotations,
    /// OAuth scopes the caller's token must carry (all of them).
    pub scopes: &'static [&'static str],
    /// Argument names never written to a log line.
    pub secret_args: &'static [&'static str],
    /// Client capabilities the tool cannot work without (e.g. `"sampling"`). A 2026-07-28
    /// request whose `_meta` does not declare them all is refused with -32021 before the tool
    /// runs. (2025 clients declare capabilities only at `initialize`, which a stateless server
    /// does not keep, so they are not checked there.)
    pub client_capabilities: &'static [&'static str],
    /// The handler may ask the client (`ctx.elicit`, `ctx.sample`, `ctx.roots`, `ctx.ask`).
    /// Declared so production can insist on a shared `requestState` key (MCP_STATE_KEY).
    pub asks: bool,
    /// Whether a call may be answered with a task the client polls (2026-07-28 tasks
    /// extension; README, "Long-running tools"). `Never` (the default), `Optional` (a call still
    /// running after `mcp.task_after_ms` becomes a task) or `Required` (always a task; clients
    /// without the extension get -32021).
    pub task: TaskSupport,
    /// MCP Apps (README, "Add a view to a tool"): who calls a tool whose file has a view
    /// (`tools/<file>.html`): the model and the view (the default), only the view (`App`:
    /// hosts keep the tool from the model), or only the model.
    pub visibility: Visibility,
    /// MCP Apps: the view's content security policy, permissions and presentation, stated by
    /// the tool named like its file.
    pub view: ViewSettings,
}

/// Who may call a tool that has a view (MCP Apps `_meta.ui.visibility`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Visibility {
    /// The model and the view (`["model", "app"]`).
    #[default]
    ModelAndApp,
    /// Only the view, through the host (`["app"]`): hidden from the model.
    App,
    /// Only the model (`["model"]`).
    Model,
}

impl Visibility {
    pub fn names(self) -> &'static [&'static str] {
        match self {
            Visibility::ModelAndApp => &["model", "app"],
            Visibility::App => &["app"],
            Visibility::Model => &["model"],
        }
    }
}

/// A browser capability a view asks its host for (MCP Apps `permissions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    Camera,
    Microphone,
    Geolocation,
    ClipboardWrite,
}

impl Permission {
    pub fn name(self) -> &'static str {
        match self {
            Permission::Camera => "camera",
            Permission::Microphone => "microphone",
            Permission::Geolocation => "geolocation",
            Permission::ClipboardWrite => "clipboardWrite",
        }
    }
}

/// A view's security and presentation (MCP Apps `_meta.ui` of its resource). Every list is of
/// origins (`https://api.example.com`, `https://*.example.com`); empty: none (the host's
/// deny-by-default policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewSettings {
    /// Origins the view may fetch from or open sockets to (`connect-src`).
    pub connect_domains: &'static [&'static str],
    /// Origins of its scripts, styles, images, fonts and media.
    pub resource_domains: &'static [&'static str],
    /// Origins of frames it nests (`frame-src`).
    pub frame_domains: &'static [&'static str],
    /// Allowed base URIs (`base-uri`).
    pub base_uri_domains: &'static [&'static str],
    pub permissions: &'static [Permission],
    /// Whether the host should draw a border and background around the view.
    pub prefers_border: Option<bool>,
    /// A dedicated sandbox origin, in the host's own format (host-dependent).
    pub domain: Option<&'static str>,
}

impl ViewSettings {
    pub const DEFAULT: ViewSettings = ViewSettings {
        connect_domains: &[],
        resource_domains: &[],
        frame_domains: &[],
        base_uri_domains: &[],
        permissions: &[],
        prefers_border: None,
        domain: None,
    };
}

/// A view (`tools/<stem>.html`), embedded at build time by `build.rs` and registered for the
/// tools of `tools/<stem>.rs`.
pub struct ViewDef {
    pub stem: &'static str,
    pub html: &'static str,
}

inventory::collect!(ViewDef);

/// The largest view page accepted (also checked by `build.rs`, which refuses to build).
pub const MAX_VIEW_BYTES: usize = 512 * 1024;

/// Whether a tool's calls may run as tasks (`Tool::task`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TaskSupport {
    /// Always answered in the call (the default).
    #[default]
    Never,
    /// The server decides: a call still running after `mcp.task_after_ms` becomes a task, for
    /// a client that declared the extension; others get the result in the call.
    Optional,
    /// Always a task: a client that did not declare the extension is refused (-32021).
    Required,
}

impl Tool {
    /// Defaults for the optional fields: `..Tool::DEFAULT`. (It has no description, which the
    /// registry refuses: every tool says what it does.)
    pub const DEFAULT: Tool = Tool {
        name: None,
        title: None,
        description: "",
        output_schema: None,
        annotations: Annotations::NONE,
        scopes: &[],
        secret_args: &[],
        client_capabilities: &[],
        asks: false,
        task: TaskSupport::Never,
        visibility: Visibility::ModelAndApp,
        view: ViewSettings::DEFAULT,
    };
}

/// How the server calls a tool: arguments already valid against the input schema.
pub type Handler = fn(ToolContext, Value) -> BoxFuture<ToolResult>;

/// A registered tool, as `register_tool!` submits it: the author's `Tool`, the resolved name,
/// the input schema (derived from the argument type, or written by hand) and the handler.
/// There is no default: a registration without a handler does not compile.
pub struct ToolDef {
    pub name: &'static str,
    /// The registering module's last path segment: a `tools/` file's stem.
    pub stem: &'static str,
    pub tool: Tool,
    pub input_schema: fn() -> Value,
    pub handler: Handler,
}

impl ToolDef {
    /// Used by `register_tool!`; `module` is the registering module's path, whose last segment
    /// (the file stem of a `tools/` file) names the tool unless `tool.name` does.
    pub const fn new(
        module: &'static str,
        tool: Tool,
        input_schema: fn() -> Value,
        handler: Handler,
    ) -> ToolDef {
        let name = match tool.name {
            Some(name) => name,
            None => last_path_segment(module),
        };
        ToolDef {
            name,
            stem: last_path_segment(module),
            tool,
            input_schema,
            handler,
        }
    }
}

/// `crate::tools::word_count` -> `word_count`.
const fn last_path_segment(path: &'static str) -> &'static str {
    let bytes = path.as_bytes();
    let mut i = bytes.len();
    while i > 0 && bytes[i - 1] != b':' {
        i -= 1;
    }
    path.split_at(i).1
}

inventory::collect!(ToolDef);

/// The arguments of a tool that takes none: `async fn run(ctx: ToolContext, _: NoArgs)`.
/// Its schema is `{"type": "object", "additionalProperties": false}`.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

// Written by hand: the derive would publish this type's doc comment as the description of
// every argument-less tool's input.
impl schemars::JsonSchema for NoArgs {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "NoArgs".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "object", "additionalProperties": false})
    }
}

/// The JSON Schema (2020-12) of `T`, as the registry publishes it: doc comments become
/// descriptions, `#[serde(...)]` attributes are honoured, `#[schemars(...)]` adds constraints.
/// The root `title` (the Rust type's name) is dropped; the tool has its own title.
pub fn schema_of<T: schemars::JsonSchema>() -> Value {
    let mut schema = schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<T>();
    schema.remove("title");
    schema.to_value()
}

/// The schema of the argument type of `handler`; used by `register_tool!`.
#[doc(hidden)]
pub fn schema_of_handler<A, F, Fut>(_handler: &F) -> Value
where
    A: schemars::JsonSchema,
    F: FnOnce(ToolContext, A) -> Fut,
    Fut: Future<Output = ToolResult>,
{
    schema_of::<A>()
}

/// Registers a tool at link time. The handler is an `async fn(ToolContext, Args) -> ToolResult`
/// (or a closure returning such a future); its argument type is the input schema:
///
/// ```ignore
/// register_tool!(run, Tool { description: "Counts words.", ..Tool::DEFAULT });
/// ```
///
/// A tool that wants a hand-written schema names it, and then its argument type needs only
/// `Deserialize` (`serde_json::Value` takes anything):
///
/// ```ignore
/// register_tool!(run, schema = || json!({"type": "object"}), Tool { ..Tool::DEFAULT });
/// ```
///
/// Without a handler there is nothing to register:
///
/// ```compile_fail
/// gatehouse::register_tool!(gatehouse::tool::Tool {
///     description: "no handler",
///     ..gatehouse::tool::Tool::DEFAULT
/// });
/// ```
#[macro_export]
macro_rules! register_tool {
    ($handler:expr, schema = $schema:expr, $tool:expr $(,)?) => {
        ::inventory::submit! {
            $crate::tool::ToolDef::new(
                ::core::module_path!(),
                $tool,
                $schema,
                |ctx, args| $crate::tool::typed($handler, ctx, args),
            )
        }
    };
    ($handler:expr, $tool:expr $(,)?) => {
        ::inventory::submit! {
            $crate::tool::ToolDef::new(
                ::core::module_path!(),
                $tool,
                || $crate::tool::schema_of_handler(&$handler),
                |ctx, args| $crate::tool::typed($handler, ctx, args),
            )
        }
    };
}

/// Adapts a handler taking typed arguments: deserializes the (schema-valid) arguments into `A`.
#[doc(hidden)]
pub fn typed<A, F, Fut>(f: F, ctx: ToolContext, args: Value) -> BoxFuture<ToolResult>
where
    A: DeserializeOwned,
    F: FnOnce(ToolContext, A) -> Fut,
    Fut: Future<Output = ToolResult> + Send + 'static,
{
    match serde_json::from_value::<A>(args) {
        Ok(a) => Box::pin(f(ctx, a)),
        Err(e) => {
            let msg = format!("Invalid arguments: {e}");
            Box::pin(async move { Err(ToolError(msg)) })
        }
    }
}
