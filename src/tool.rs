//! THE tool-author API: what a file in `tools/` sees. A tool is a `ToolDef` submitted with
//! `register_tool!`; its handler gets a `ToolContext` (caller identity, progress and log
//! notifications) and arguments already validated against its input schema.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedSender;

use crate::ask::Asker;
pub use crate::ask::{Answer, AskError, Elicitation, Question, Root};
pub use crate::auth::{Caller, Identity};
pub use crate::changes::Change;
use crate::changes::Changes;
pub use crate::context::LogLevel;

/// Everything a file in `tools/` needs: `use crate::tool::prelude::*;`.
pub mod prelude {
    pub use super::{
        Annotations, Answer, AskError, BoxFuture, Change, Content, Elicitation, NoArgs, Question,
        ResourceContents, Root, Tool, ToolContext, ToolError, ToolOutput, ToolResult, schema_of,
    };
    pub use crate::context::LogLevel;
    pub use crate::prompt::{PromptArg, PromptDef, PromptMessage, PromptResult, Role};
    pub use crate::resource::{ResourceDef, ResourceTemplateDef};
    pub use crate::{
        register_prompt, register_resource, register_resource_template, register_tool,
    };
    pub use schemars::JsonSchema;
    pub use serde::{Deserialize, Serialize};
    pub use serde_json::{Value, json};
}

/// A boxed, sendable future: what handlers return.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

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

/// The embedded contents of a resource (text or base64 blob).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ResourceContents {
    Text {
        uri: String,
        #[serde(rename = "mimeType", skip_serializing_if = "Option::is_none")]
        mime_type: Option<String>,
        text: String,
    },
    Blob {
        uri: String,
        #[serde(rename = "mimeType", skip_serializing_if = "Option::is_none")]
        mime_type: Option<String>,
        blob: String,
    },
}

/// One content block of a tool result or prompt message.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Content {
    Text {
        text: String,
    },
    Image {
        data: String,
        #[serde(rename = "mimeType")]
        mime_type: String,
    },
    Audio {
        data: String,
        #[serde(rename = "mimeType")]
        mime_type: String,
    },
    ResourceLink {
        uri: String,
        name: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        #[serde(rename = "mimeType", skip_serializing_if = "Option::is_none")]
        mime_type: Option<String>,
    },
    Resource {
        resource: ResourceContents,
    },
}

impl Content {
    pub fn text(text: impl Into<String>) -> Self {
        Content::Text { text: text.into() }
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
    };
}

/// How the server calls a tool: arguments already valid against the input schema.
pub type Handler = fn(ToolContext, Value) -> BoxFuture<ToolResult>;

/// A registered tool, as `register_tool!` submits it: the author's `Tool`, the resolved name,
/// the input schema (derived from the argument type, or written by hand) and the handler.
/// There is no default: a registration without a handler does not compile.
pub struct ToolDef {
    pub name: &'static str,
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
#[derive(Debug, Clone, Copy, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

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

/// Sends notifications that belong to one request (progress, log messages). When the request has
/// no stream the notifications are dropped.
#[derive(Clone, Default)]
pub struct Notifier {
    inner: Option<Arc<NotifierInner>>,
}

struct NotifierInner {
    tx: UnboundedSender<String>,
    progress_token: Option<Value>,
    last_progress: Mutex<Option<f64>>,
    /// `None`: no log messages at all (a 2026-07-28 request that asked for none).
    min_level: Option<LogLevel>,
}

impl Notifier {
    pub(crate) fn new(
        tx: UnboundedSender<String>,
        progress_token: Option<Value>,
        min_level: Option<LogLevel>,
    ) -> Self {
        Notifier {
            inner: Some(Arc::new(NotifierInner {
                tx,
                progress_token,
                last_progress: Mutex::new(None),
                min_level,
            })),
        }
    }

    fn send(&self, method: &'static str, params: Value) {
        if let Some(inner) = &self.inner {
            let n = crate::jsonrpc::Notification::new(method, params);
            let _ = inner
                .tx
                .send(serde_json::to_string(&n).expect("notifications serialize"));
        }
    }
}

/// What a handler knows about its call.
#[derive(Clone)]
pub struct ToolContext {
    caller: Caller,
    notifier: Notifier,
    changes: Option<Arc<Changes>>,
    asker: Asker,
}

impl ToolContext {
    pub(crate) fn new(caller: Caller, notifier: Notifier) -> Self {
        ToolContext {
            caller,
            notifier,
            changes: None,
            asker: Asker::Cannot(crate::ask::NOT_DECLARED),
        }
    }

    pub(crate) fn with_asker(mut self, asker: Asker) -> Self {
        self.asker = asker;
        self
    }

    /// Asks the client several questions at once, each under a key of the handler's choosing
    /// (stable across runs: in 2026-07-28 the handler runs again with the answers, and a
    /// question whose key has an answer gets it at once). Answers come back in order.
    ///
    /// In 2025 revisions the questions travel on the call's event stream and this waits for the
    /// answers (bounded by the tool timeout). In 2026-07-28 an unanswered question stops the
    /// handler here and the client is asked through an `input_required` result; it never
    /// returns in that run. A question the request's `clientCapabilities` do not cover refuses
    /// the request with -32021: check `client_supports` first to do without.
    pub async fn ask(&self, questions: Vec<(&str, Question)>) -> Result<Vec<Answer>, AskError> {
        let questions = questions
            .into_iter()
            .map(|(k, q)| (k.to_string(), q))
            .collect();
        self.asker.ask(questions).await
    }

    /// Asks the user to fill in a form described by `schema` (a flat object of primitives).
    pub async fn elicit(
        &self,
        key: &str,
        message: &str,
        schema: Value,
    ) -> Result<Elicitation, AskError> {
        match self.ask_one(key, Question::elicit(message, schema)).await? {
            Answer::Elicitation(e) => Ok(e),
            _ => unreachable!("an elicitation is answered by an elicitation"),
        }
    }

    /// Sends the user to `url` (2025-11-25 and later; clients declaring `elicitation.url`).
    pub async fn elicit_url(
        &self,
        key: &str,
        message: &str,
        url: &str,
    ) -> Result<Elicitation, AskError> {
        let q = Question::ElicitUrl {
            message: message.into(),
            url: url.into(),
        };
        match self.ask_one(key, q).await? {
            Answer::Elicitation(e) => Ok(e),
            _ => unreachable!("an elicitation is answered by an elicitation"),
        }
    }

    /// Has the client's model answer `params` (`sampling/createMessage`); returns its result.
    pub async fn sample(&self, key: &str, params: Value) -> Result<Answer, AskError> {
        self.ask_one(key, Question::Sample(params)).await
    }

    /// Has the client's model answer one user message; returns the text of its answer.
    pub async fn sample_text(
        &self,
        key: &str,
        prompt: &str,
        max_tokens: u32,
    ) -> Result<String, AskError> {
        let answer = self
            .ask_one(key, Question::sample_text(prompt, max_tokens))
            .await?;
        answer
            .text()
            .ok_or_else(|| AskError::Failed("the model's answer holds no text".into()))
    }

    /// The client's workspace roots.
    pub async fn roots(&self, key: &str) -> Result<Vec<Root>, AskError> {
        match self.ask_one(key, Question::Roots).await? {
            Answer::Roots(r) => Ok(r),
            _ => unreachable!("roots are answered by roots"),
        }
    }

    async fn ask_one(&self, key: &str, q: Question) -> Result<Answer, AskError> {
        let mut answers = self.ask(vec![(key, q)]).await?;
        Ok(answers.remove(0))
    }

    /// Whether the client declared `capability` (`"elicitation"`, `"sampling"`, `"roots"`) for
    /// this request; `None` when the revision does not say (2025 clients declare capabilities
    /// only at `initialize`, which a stateless server does not keep).
    pub fn client_supports(&self, capability: &str) -> Option<bool> {
        self.asker.client_supports(capability)
    }

    pub(crate) fn with_changes(mut self, changes: Arc<Changes>) -> Self {
        self.changes = Some(changes);
        self
    }

    /// Announces that a list changed or a resource was updated. Every 2026-07-28
    /// `subscriptions/listen` stream on this instance that follows it is told; 2025 clients have
    /// no stream to be told on.
    pub fn publish(&self, change: Change) {
        if let Some(c) = &self.changes {
            c.publish(change);
        }
    }

    /// The authenticated caller; `None` only when auth is turned off (development switch).
    pub fn identity(&self) -> Option<&Identity> {
        match &self.caller {
            Caller::Authenticated(id) => Some(id.as_ref()),
            Caller::Anonymous => None,
        }
    }

    /// The caller's organization claim (`oid`, else `org_id`, else `xoid`).
    pub fn organization(&self) -> Option<&str> {
        self.identity().and_then(|i| i.organization.as_deref())
    }

    /// Reports progress when the client asked for it (`_meta.progressToken`). Values that do not
    /// increase are dropped, as the protocol requires.
    pub fn progress(&self, progress: f64, total: Option<f64>, message: Option<&str>) {
        let Some(inner) = &self.notifier.inner else {
            return;
        };
        let Some(token) = &inner.progress_token else {
            return;
        };
        {
            let mut last = inner
                .last_progress
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|l| progress <= l) || !progress.is_finite() {
                return;
            }
            *last = Some(progress);
        }
        let mut params = json!({"progressToken": token, "progress": progress});
        if let Some(t) = total {
            params["total"] = json!(t);
        }
        if let Some(m) = message {
            params["message"] = json!(m);
        }
        self.notifier.send("notifications/progress", params);
    }

    /// Sends a log message to the client if `level` is at or above the client's level. Never
    /// put credentials or personal data in `data`.
    pub fn log(&self, level: LogLevel, data: impl Serialize) {
        let Some(inner) = &self.notifier.inner else {
            return;
        };
        if inner.min_level.is_none_or(|min| level < min) {
            return;
        }
        let params = json!({
            "level": level.name(),
            "logger": "gatehouse",
            "data": serde_json::to_value(data).unwrap_or(Value::Null),
        });
        self.notifier.send("notifications/message", params);
    }
}

/// Helpers for tool unit tests.
#[cfg(test)]
pub mod testing {
    use super::*;

    /// A context for `Some((subject, organization))`, or an anonymous one.
    pub fn context(who: Option<(&str, Option<&str>)>) -> ToolContext {
        let caller = match who {
            None => Caller::Anonymous,
            Some((sub, org)) => Caller::Authenticated(std::sync::Arc::new(Identity {
                issuer: "https://issuer.test".into(),
                subject: sub.into(),
                scopes: vec![],
                organization: org.map(str::to_string),
                client_id: None,
            })),
        };
        ToolContext::new(caller, Notifier::default())
    }
}
