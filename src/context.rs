//! What every handler (tool, resource, prompt) builds on: its `ToolContext` (the caller,
//! progress and log notifications, questions to the client, change announcements), the content
//! blocks it returns, the MCP log levels and the boxed future handlers return. The bottom of the
//! author API: `tool`, `resource` and `prompt` import from here, never from each other.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, json};

use crate::asking::{Answer, AskError, Asker, Elicitation, Question, Root};
use crate::auth::{Caller, CallerKind, Identity};
use crate::changes::{Change, Changes};
use crate::outbox::Outbox;

/// RFC 5424 levels used by MCP logging, in increasing severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    Debug,
    Info,
    Notice,
    Warning,
    Error,
    Critical,
    Alert,
    Emergency,
}

impl LogLevel {
    pub const ALL: [LogLevel; 8] = [
        LogLevel::Debug,
        LogLevel::Info,
        LogLevel::Notice,
        LogLevel::Warning,
        LogLevel::Error,
        LogLevel::Critical,
        LogLevel::Alert,
        LogLevel::Emergency,
    ];

    pub fn name(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Notice => "notice",
            LogLevel::Warning => "warning",
            LogLevel::Error => "error",
            LogLevel::Critical => "critical",
            LogLevel::Alert => "alert",
            LogLevel::Emergency => "emergency",
        }
    }

    pub fn parse(s: &str) -> Option<LogLevel> {
        LogLevel::ALL.into_iter().find(|l| l.name() == s)
    }
}

/// A boxed, sendable future: what handlers return.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

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
    /// An MCP Apps view (served by the server from `tools/<name>.html`; not for authors).
    #[doc(hidden)]
    View {
        uri: String,
        #[serde(rename = "mimeType")]
        mime_type: &'static str,
        text: &'static str,
        #[serde(rename = "_meta")]
        meta: Value,
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

/// Sends notifications that belong to one request (progress, log messages). When the request has
/// no stream the notifications are dropped.
#[derive(Clone, Default)]
pub struct Notifier {
    inner: Option<NotifierInner>,
}

#[derive(Clone)]
struct NotifierInner {
    outbox: Outbox,
    progress_token: Option<Value>,
    /// `None`: no log messages at all (a 2026-07-28 request that asked for none).
    min_level: Option<LogLevel>,
}

impl Notifier {
    pub(crate) fn new(
        outbox: Outbox,
        progress_token: Option<Value>,
        min_level: Option<LogLevel>,
    ) -> Self {
        Notifier {
            inner: Some(NotifierInner {
                outbox,
                progress_token,
                min_level,
            }),
        }
    }

    fn send(&self, method: &'static str, params: Value) {
        if let Some(inner) = &self.inner {
            let n = crate::jsonrpc::Notification::new(method, params);
            let _ = inner
                .outbox
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
            asker: Asker::Cannot(crate::asking::NOT_DECLARED),
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

    /// Resolves when the call is cancelled while it runs as a task (`tasks/cancel`, or the task
    /// ended otherwise): stop the work and return. Calls that are not tasks are cancelled by
    /// being dropped (`notifications/cancelled`, or the client going away), so for them this
    /// never resolves. After the signal the handler gets a short grace period, then is dropped.
    pub async fn cancelled(&self) {
        match self.asker.cancel_signal() {
            Some(mut signal) => {
                let _ = signal.wait_for(|cancelled| *cancelled).await;
            }
            None => std::future::pending().await,
        }
    }

    /// Whether `cancelled` has resolved.
    pub fn is_cancelled(&self) -> bool {
        self.asker
            .cancel_signal()
            .is_some_and(|signal| *signal.borrow())
    }

    /// Whether the call is running as a task (its answer was a task the client polls).
    pub fn in_task(&self) -> bool {
        self.asker.task().is_some()
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

    /// The id (32 hex digits) of the trace this call belongs to, when traces are on
    /// (README "Observability"): for a tool's own log lines.
    pub fn trace_id(&self) -> Option<String> {
        crate::telemetry::trace_id()
    }

    /// The W3C `traceparent` of this call's current span, when traces are on: put it on the
    /// tool's outgoing HTTP requests so the services it calls join the trace.
    pub fn traceparent(&self) -> Option<String> {
        crate::telemetry::traceparent()
    }

    /// Runs `work` in a child span named `name` of this call's span (nothing when traces are
    /// off). The span fails with `error.type` = the error's type name (never its text, which
    /// may quote arguments) when `work` returns `Err`.
    pub async fn traced<T, E>(
        &self,
        name: &'static str,
        work: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        crate::telemetry::traced(name, Vec::new, work, |_| {
            std::any::type_name::<E>().to_string()
        })
        .await
    }

    /// Whether the caller is a user or a machine client (a client-credentials token: its
    /// subject is its `client_id`); `None` only when auth is turned off. The client id, in both
    /// cases, is `identity()?.client_id()`.
    pub fn caller_kind(&self) -> Option<CallerKind> {
        self.identity().map(Identity::kind)
    }

    /// The caller's organization claim (`oid`, else `org_id`, else `xoid`).
    pub fn organization(&self) -> Option<&str> {
        self.identity().and_then(Identity::organization)
    }

    /// Reports progress when the client asked for it (`_meta.progressToken`). Values that do not
    /// increase are dropped, as the protocol requires. In a task (2026-07-28 tasks extension)
    /// progress becomes the task's `statusMessage`: `message`, or "progress/total".
    pub fn progress(&self, progress: f64, total: Option<f64>, message: Option<&str>) {
        if let Some(live) = self.asker.task() {
            let text = match (message, total) {
                (Some(m), _) => m.to_string(),
                (None, Some(t)) => format!("{progress}/{t}"),
                (None, None) => format!("{progress}"),
            };
            live.update(|r| r.message = Some(text));
            live.dirty.notify_one();
            return;
        }
        let Some(inner) = &self.notifier.inner else {
            return;
        };
        let Some(token) = &inner.progress_token else {
            return;
        };
        if !inner.outbox.advance_progress(progress) {
            return;
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
        // A task has no stream for log messages (the tasks extension forbids them).
        if self.asker.task().is_some() {
            return;
        }
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

/// Helpers for handler unit tests.
#[cfg(test)]
pub mod testing {
    use super::*;

    /// A context for `Some((subject, organization))`, or an anonymous one.
    pub fn context(who: Option<(&str, Option<&str>)>) -> ToolContext {
        let caller = match who {
            None => Caller::Anonymous,
            Some((sub, org)) => {
                Caller::Authenticated(std::sync::Arc::new(Identity::for_tests(sub, &[], org)))
            }
        };
        ToolContext::new(caller, Notifier::default())
    }
}
