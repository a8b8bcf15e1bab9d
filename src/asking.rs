//! Tools that ask: the questions a tool, prompt or resource read puts to the client
//! (elicitation, sampling, roots), the answers it gets, and the two ways a request carries
//! them. In the 2025 revisions a question is a JSON-RPC request on the call's event stream and
//! the client's answer arrives as a separate POST (`Pending` routes it back). In 2026-07-28 the
//! handler is interrupted at its first unanswered question, the server answers `input_required`,
//! and the client calls again with the answers (`Rounds`); the handler then runs again from the
//! start, so code before a question must be safe to repeat.

pub mod seal;
pub(crate) mod task;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use base64::Engine;
use serde_json::{Map, Value, json};
use tokio::sync::{Notify, oneshot};

use crate::jsonrpc::{ErrorCode, Id, OutgoingRequest};
use crate::outbox::Outbox;

/// One question for the client.
#[derive(Debug, Clone, PartialEq)]
pub enum Question {
    /// Ask the user to fill in a form (`requestedSchema`: a flat object of primitive fields).
    Elicit { message: String, schema: Value },
    /// Send the user to a URL (revision 2025-11-25 and later; the client declares
    /// `elicitation.url`). The answer says whether they went (`accept`) and never carries data.
    ElicitUrl { message: String, url: String },
    /// Have the client's model answer: `sampling/createMessage` params (`messages`,
    /// `maxTokens`, optional `systemPrompt`, `modelPreferences`, ...).
    Sample(Value),
    /// Ask for the client's workspace roots.
    Roots,
}

impl Question {
    pub fn elicit(message: impl Into<String>, schema: Value) -> Question {
        Question::Elicit {
            message: message.into(),
            schema,
        }
    }

    /// A one-message sampling request.
    pub fn sample_text(prompt: impl Into<String>, max_tokens: u32) -> Question {
        Question::Sample(json!({
            "messages": [{"role": "user", "content": {"type": "text", "text": prompt.into()}}],
            "maxTokens": max_tokens,
        }))
    }

    pub fn method(&self) -> &'static str {
        match self {
            Question::Elicit { .. } | Question::ElicitUrl { .. } => "elicitation/create",
            Question::Sample(_) => "sampling/createMessage",
            Question::Roots => "roots/list",
        }
    }

    /// The request's params. `key` names a URL elicitation (its `elicitationId`).
    pub fn params(&self, key: &str) -> Value {
        match self {
            Question::Elicit { message, schema } => {
                json!({"message": message, "requestedSchema": schema})
            }
            Question::ElicitUrl { message, url } => {
                json!({"mode": "url", "message": message, "url": url, "elicitationId": key})
            }
            Question::Sample(params) => params.clone(),
            Question::Roots => json!({}),
        }
    }

    /// The client capability it needs.
    pub fn capability(&self) -> &'static str {
        match self {
            Question::Elicit { .. } | Question::ElicitUrl { .. } => "elicitation",
            Question::Sample(_) => "sampling",
            Question::Roots => "roots",
        }
    }

    /// Whether `capabilities` (a request's `clientCapabilities`) covers it.
    pub fn declared(&self, capabilities: &Map<String, Value>) -> bool {
        match self {
            Question::ElicitUrl { .. } => capabilities
                .get("elicitation")
                .is_some_and(|e| e.get("url").is_some()),
            q => capabilities.contains_key(q.capability()),
        }
    }

    /// The oldest 2025 revision that has the method.
    fn since(&self) -> &'static str {
        match self {
            Question::Elicit { .. } => "2025-06-18",
            Question::ElicitUrl { .. } => "2025-11-25",
            Question::Sample(_) | Question::Roots => "2025-03-26",
        }
    }

    /// Reads and checks the client's answer: an elicitation's content must satisfy the
    /// requested schema; `Err` says what is wrong.
    pub fn answer(&self, raw: &Value) -> Result<Answer, String> {
        match self {
            Question::Elicit { schema, .. } => {
                elicitation(raw, Some(schema)).map(Answer::Elicitation)
            }
            Question::ElicitUrl { .. } => elicitation(raw, None).map(Answer::Elicitation),
            Question::Sample(_) => {
                let ok = raw.get("role").is_some_and(Value::is_string)
                    && raw
                        .get("content")
                        .is_some_and(|c| c.is_object() || c.is_array());
                if ok {
                    Ok(Answer::Sample(raw.clone()))
                } else {
                    Err("a sampling answer needs role and content".into())
                }
            }
            Question::Roots => {
                let roots = raw
                    .get("roots")
                    .and_then(Value::as_array)
                    .ok_or("a roots answer needs a roots array")?;
                roots
                    .iter()
                    .map(|r| {
                        let uri = r
                            .get("uri")
                            .and_then(Value::as_str)
                            .ok_or("a root needs a uri")?;
                        Ok(Root {
                            uri: uri.to_string(),
                            name: r.get("name").and_then(Value::as_str).map(str::to_string),
                        })
                    })
                    .collect::<Result<Vec<_>, String>>()
                    .map(Answer::Roots)
            }
        }
    }
}

fn elicitation(raw: &Value, schema: Option<&Value>) -> Result<Elicitation, String> {
    match raw.get("action").and_then(Value::as_str) {
        Some("decline") => Ok(Elicitation::Decline),
        Some("cancel") => Ok(Elicitation::Cancel),
        Some("accept") => {
            let content = match raw.get("content") {
                Some(Value::Object(c)) => c.clone(),
                None | Some(Value::Null) => Map::new(),
                Some(_) => return Err("an elicitation's content must be an object".into()),
            };
            if let Some(schema) = schema {
                let validator = crate::schema::compile_schema(schema)?;
                if let Some(e) =
                    crate::schema::first_error(&validator, &Value::Object(content.clone()))
                {
                    return Err(format!(
                        "the content does not match the requested schema: {e}"
                    ));
                }
            }
            Ok(Elicitation::Accept(content))
        }
        _ => Err("an elicitation answer needs action accept, decline or cancel".into()),
    }
}

/// What the user did with an elicitation.
#[derive(Debug, Clone, PartialEq)]
pub enum Elicitation {
    /// Submitted: the content (checked against the requested schema; empty for URL mode).
    Accept(Map<String, Value>),
    /// Said no.
    Decline,
    /// Dismissed without choosing.
    Cancel,
}

/// One of the client's workspace roots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    pub uri: String,
    pub name: Option<String>,
}

/// A checked answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Elicitation(Elicitation),
    /// The `sampling/createMessage` result (`role`, `content`, `model`, `stopReason`).
    Sample(Value),
    Roots(Vec<Root>),
}

impl Answer {
    /// The text of a sampling answer (its text content blocks joined), if any.
    pub fn text(&self) -> Option<String> {
        let Answer::Sample(v) = self else { return None };
        let blocks = match &v["content"] {
            Value::Array(a) => a.clone(),
            c => vec![c.clone()],
        };
        let text: Vec<&str> = blocks
            .iter()
            .filter(|b| b["type"] == "text")
            .filter_map(|b| b["text"].as_str())
            .collect();
        (!text.is_empty()).then(|| text.join(""))
    }
}

/// Why a question got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AskError {
    /// The client cannot be asked here: no event stream, a revision without the method, or the
    /// handler did not declare that it asks. Handlers may go on without the answer.
    NotSupported(String),
    /// The client answered with an error, or with something that is not an answer.
    Failed(String),
}

impl std::fmt::Display for AskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AskError::NotSupported(why) | AskError::Failed(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for AskError {}

/// How the current request can ask (chosen by the dispatcher).
#[derive(Clone)]
pub(crate) enum Asker {
    /// It cannot: this says why.
    Cannot(&'static str),
    /// A 2025 revision with an event stream.
    Stream(Arc<StreamAsker>),
    /// 2026-07-28: interrupt and answer `input_required`.
    Rounds(Arc<Rounds>),
    /// A call that may become a task: as its request asks until then, then through the task.
    Escalating(Arc<task::Escalation>),
}

/// Why a request without an event stream cannot ask.
pub(crate) const NO_STREAM: &str = "this request cannot ask the client: it has no event stream (the client must accept text/event-stream, and batches have none)";
/// Why a handler that did not declare `asks` cannot.
pub(crate) const NOT_DECLARED: &str =
    "this handler does not declare `asks: true`, so it cannot ask the client";

impl Asker {
    pub(crate) async fn ask(
        &self,
        questions: Vec<(String, Question)>,
    ) -> Result<Vec<Answer>, AskError> {
        // The tool's span records each question (its method, never its content).
        if crate::telemetry::enabled() {
            for (_, q) in &questions {
                crate::telemetry::event("question asked", q.method());
            }
        }
        match self {
            Asker::Cannot(why) => Err(AskError::NotSupported((*why).into())),
            Asker::Stream(s) => s.ask(questions).await,
            Asker::Rounds(r) => r.ask(questions).await,
            Asker::Escalating(e) => Box::pin(e.ask(questions)).await,
        }
    }

    /// The task the call became, if it did.
    pub(crate) fn task(&self) -> Option<Arc<crate::tasks::Live>> {
        match self {
            Asker::Escalating(e) => e.task().map(|t| t.live.clone()),
            _ => None,
        }
    }

    /// The handler's cancellation signal, for a call that may become a task.
    pub(crate) fn cancel_signal(&self) -> Option<tokio::sync::watch::Receiver<bool>> {
        match self {
            Asker::Escalating(e) => Some(e.cancel_signal()),
            _ => None,
        }
    }

    /// Whether the client declared `capability` for this request: `None` when the revision
    /// does not say (2025 clients declare capabilities only at `initialize`).
    pub(crate) fn client_supports(&self, capability: &str) -> Option<bool> {
        match self {
            Asker::Rounds(r) => Some(r.capabilities.contains_key(capability)),
            Asker::Escalating(e) => e.before().client_supports(capability),
            _ => None,
        }
    }
}

// ---- 2025 revisions: requests on the response stream, answers by POST.

/// Questions waiting for a POSTed answer, on this instance. Ids are unguessable, name the
/// instance that waits, and are bound to the subject that was asked.
pub struct Pending {
    instance: String,
    waiting: Mutex<HashMap<String, Waiting>>,
}

struct Waiting {
    subject: String,
    answer: oneshot::Sender<Result<Value, Value>>,
}

/// What became of a POSTed answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Delivered,
    /// No question of this caller waits here under that id.
    Unknown,
    /// The id names another instance (which may be waiting for it).
    Elsewhere(String),
}

const ID_PREFIX: &str = "gh-ask";

impl Pending {
    pub fn new(instance: String) -> Pending {
        Pending {
            instance,
            waiting: Mutex::new(HashMap::new()),
        }
    }

    fn register(
        self: &Arc<Self>,
        subject: &str,
    ) -> (
        String,
        oneshot::Receiver<Result<Value, Value>>,
        PendingGuard,
    ) {
        let mut random = [0u8; 16];
        aws_lc_rs::rand::fill(&mut random).expect("the system random source works");
        let id = format!(
            "{ID_PREFIX}:{}:{}",
            self.instance,
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random)
        );
        let (tx, rx) = oneshot::channel();
        self.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                id.clone(),
                Waiting {
                    subject: subject.to_string(),
                    answer: tx,
                },
            );
        let guard = PendingGuard {
            pending: self.clone(),
            id: id.clone(),
        };
        (id, rx, guard)
    }

    /// Routes a client's answer to the question waiting under `id`, if `subject` was asked it.
    pub fn answer(&self, subject: &str, id: &Id, outcome: Result<Value, Value>) -> Delivery {
        let Id::Str(id) = id else {
            return Delivery::Unknown;
        };
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        match waiting.get(id) {
            Some(w) if w.subject == subject => {
                let w = waiting.remove(id).expect("just found");
                let _ = w.answer.send(outcome);
                Delivery::Delivered
            }
            // Another subject's question: refused exactly like an unknown id.
            Some(_) => Delivery::Unknown,
            None => {
                let mut parts = id.splitn(3, ':');
                match (parts.next(), parts.next()) {
                    // Only a name an instance could have: it goes into a routing header.
                    (Some(ID_PREFIX), Some(instance))
                        if instance != self.instance && valid_instance(instance) =>
                    {
                        Delivery::Elsewhere(instance.to_string())
                    }
                    _ => Delivery::Unknown,
                }
            }
        }
    }
}

/// An instance name as configuration allows it (`server.instance_id`): 1-64 of `A-Za-z0-9_-`.
fn valid_instance(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Forgets a question when its asker stops waiting, however it stops.
struct PendingGuard {
    pending: Arc<Pending>,
    id: String,
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        self.pending
            .waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

/// Asks on a 2025 response stream.
pub(crate) struct StreamAsker {
    pub tx: Outbox,
    pub pending: Arc<Pending>,
    pub subject: String,
    pub version: &'static str,
}

impl StreamAsker {
    async fn ask(&self, questions: Vec<(String, Question)>) -> Result<Vec<Answer>, AskError> {
        let mut waits = Vec::with_capacity(questions.len());
        for (key, q) in &questions {
            if self.version < q.since() {
                return Err(AskError::NotSupported(format!(
                    "{} needs protocol revision {} or later; this request uses {}",
                    q.method(),
                    q.since(),
                    self.version
                )));
            }
            let (id, rx, guard) = self.pending.register(&self.subject);
            let request = OutgoingRequest::new(Id::Str(id), q.method(), q.params(key));
            self.tx
                .send(request.to_json())
                .map_err(|_| AskError::Failed("the client went away".into()))?;
            waits.push((rx, guard));
        }
        let mut answers = Vec::with_capacity(questions.len());
        for ((key, q), (rx, _guard)) in questions.iter().zip(waits) {
            let outcome = rx
                .await
                .map_err(|_| AskError::Failed("the question was dropped".into()))?;
            match outcome {
                Ok(result) => answers.push(q.answer(&result).map_err(|why| {
                    AskError::Failed(format!("the client's answer to {key} is not valid: {why}"))
                })?),
                Err(error) => {
                    let code = error.get("code").and_then(Value::as_i64);
                    let message = error
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("no message");
                    let why = format!(
                        "the client answered {} with an error: {message}",
                        q.method()
                    );
                    // -32601: the client does not implement it.
                    return Err(if code == Some(i64::from(ErrorCode::METHOD_NOT_FOUND.0)) {
                        AskError::NotSupported(why)
                    } else {
                        AskError::Failed(why)
                    });
                }
            }
        }
        Ok(answers)
    }
}

// ---- 2026-07-28: input-required results (multi round-trip requests).

/// Why a 2026-07-28 handler was stopped before it finished.
#[derive(Debug, Clone, PartialEq)]
pub enum Interrupt {
    /// Questions without an answer yet: answer `input_required` with them.
    NeedInput(Vec<(String, Question)>),
    /// The handler asked for something the request's `clientCapabilities` lack.
    MissingCapabilities(Vec<String>),
    /// An answer in `inputResponses` is not a valid answer to its question.
    Invalid(String),
}

/// One run of a 2026-07-28 handler: the answers it may use (carried in the sealed state, or
/// sent in `inputResponses`), the answers it did use, and the interruption that stopped it.
pub struct Rounds {
    capabilities: Map<String, Value>,
    answers: BTreeMap<String, Value>,
    used: Mutex<BTreeMap<String, Value>>,
    stopped: Stop,
}

/// The capabilities `questions` need that `capabilities` (a request's) do not declare.
pub(crate) fn undeclared(
    questions: &[(String, Question)],
    capabilities: &Map<String, Value>,
) -> Vec<String> {
    questions
        .iter()
        .filter(|(_, q)| !q.declared(capabilities))
        .map(|(_, q)| q.capability().to_string())
        .collect()
}

/// Where a run that cannot go on records why, and its runner waits for it.
#[derive(Default)]
pub(crate) struct Stop {
    why: Mutex<Option<Interrupt>>,
    notify: Notify,
}

impl Stop {
    /// Records why the run stops (the first reason stands) and never returns: the runner
    /// drops the handler.
    pub(crate) async fn stop<T>(&self, why: Interrupt) -> T {
        {
            let mut slot = self.why.lock().unwrap_or_else(|e| e.into_inner());
            if slot.is_none() {
                *slot = Some(why);
            }
        }
        self.notify.notify_one();
        std::future::pending().await
    }

    /// Waits until the run stops.
    pub(crate) async fn interrupted(&self) -> Interrupt {
        loop {
            if let Some(i) = self.take() {
                return i;
            }
            self.notify.notified().await;
        }
    }

    fn take(&self) -> Option<Interrupt> {
        self.why.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

impl Rounds {
    pub fn new(capabilities: Map<String, Value>, answers: BTreeMap<String, Value>) -> Rounds {
        Rounds {
            capabilities,
            answers,
            used: Mutex::new(BTreeMap::new()),
            stopped: Stop::default(),
        }
    }

    async fn ask(&self, questions: Vec<(String, Question)>) -> Result<Vec<Answer>, AskError> {
        let undeclared = undeclared(&questions, &self.capabilities);
        if !undeclared.is_empty() {
            return self.stop(Interrupt::MissingCapabilities(undeclared)).await;
        }
        let mut answers = Vec::with_capacity(questions.len());
        let mut missing = Vec::new();
        for (key, q) in questions {
            match self.answers.get(&key) {
                Some(raw) => match q.answer(raw) {
                    Ok(a) => {
                        self.used
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(key, raw.clone());
                        answers.push(a);
                    }
                    Err(why) => {
                        return self
                            .stop(Interrupt::Invalid(format!("inputResponses.{key}: {why}")))
                            .await;
                    }
                },
                None => missing.push((key, q)),
            }
        }
        if missing.is_empty() {
            Ok(answers)
        } else {
            self.stop(Interrupt::NeedInput(missing)).await
        }
    }

    async fn stop<T>(&self, why: Interrupt) -> T {
        self.stopped.stop(why).await
    }

    /// Waits until the handler is interrupted.
    pub async fn interrupted(&self) -> Interrupt {
        self.stopped.interrupted().await
    }

    /// The interruption already recorded, if any (without waiting).
    pub fn try_interrupted(&self) -> Option<Interrupt> {
        self.stopped.take()
    }

    /// The answers this run used (checked): the next round must have them again.
    pub fn used(&self) -> BTreeMap<String, Value> {
        self.used.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elicitation_answers_are_checked_against_the_schema() {
        let q = Question::elicit(
            "Name?",
            json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}),
        );
        assert_eq!(
            q.answer(&json!({"action": "accept", "content": {"name": "Ada"}})),
            Ok(Answer::Elicitation(Elicitation::Accept(
                json!({"name": "Ada"}).as_object().cloned().unwrap()
            )))
        );
        assert_eq!(
            q.answer(&json!({"action": "decline"})),
            Ok(Answer::Elicitation(Elicitation::Decline))
        );
        for bad in [
            json!({"action": "accept", "content": {"name": 3}}),
            json!({"action": "accept", "content": {}}),
            json!({"action": "maybe"}),
            json!(42),
        ] {
            assert!(q.answer(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn capabilities_decide_what_may_be_asked() {
        let caps = json!({"sampling": {}, "elicitation": {}})
            .as_object()
            .cloned()
            .unwrap();
        assert!(Question::sample_text("hi", 10).declared(&caps));
        assert!(!Question::Roots.declared(&caps));
        let url = Question::ElicitUrl {
            message: "Go".into(),
            url: "https://example.com".into(),
        };
        assert!(!url.declared(&caps));
        let caps = json!({"elicitation": {"url": {}}})
            .as_object()
            .cloned()
            .unwrap();
        assert!(url.declared(&caps));
    }

    #[test]
    fn answers_reach_only_the_subject_that_was_asked() {
        let pending = Arc::new(Pending::new("a1".into()));
        let (id, mut rx, _guard) = pending.register("alice");
        let id = Id::Str(id);
        assert_eq!(
            pending.answer("mallory", &id, Ok(json!({}))),
            Delivery::Unknown
        );
        assert!(rx.try_recv().is_err());
        assert_eq!(
            pending.answer("alice", &id, Ok(json!({"x": 1}))),
            Delivery::Delivered
        );
        assert_eq!(rx.try_recv().unwrap(), Ok(json!({"x": 1})));
        assert_eq!(
            pending.answer("alice", &id, Ok(json!({}))),
            Delivery::Unknown
        );
        assert_eq!(
            pending.answer("alice", &Id::Str("gh-ask:b2:xyz".into()), Ok(json!({}))),
            Delivery::Elsewhere("b2".into())
        );
        // A crafted name never reaches the routing header.
        for crafted in ["gh-ask:b2,app=other:x", "gh-ask:b2 x:y", "gh-ask::x"] {
            assert_eq!(
                pending.answer("alice", &Id::Str(crafted.into()), Ok(json!({}))),
                Delivery::Unknown,
                "{crafted}"
            );
        }
        assert_eq!(
            pending.answer("alice", &Id::Str("other".into()), Ok(json!({}))),
            Delivery::Unknown
        );
    }
}
