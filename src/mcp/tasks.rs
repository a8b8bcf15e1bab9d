//! The tasks extension (`io.modelcontextprotocol/tasks`, 2026-07-28): which calls become tasks
//! and when, the runner that owns a task's handler (its lease, its questions, its cancellation,
//! its deadline, its ending), and `tasks/get`, `tasks/update` and `tasks/cancel`. Where records
//! are kept is `crate::tasks`.
//!
//! A task belongs to the verified subject that created it: any other caller's `tasks/*` for it
//! is answered exactly as an unknown id is, and the tool's scopes are checked again on every
//! request, against the token presented.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use serde_json::{Map, Value, json};

use super::asking::{Asking, Ending};
use super::ending::{self, conclude};
use super::model::{Method, TaskRef, UpdateTask};
use super::result::{Reply, TaskView};
use super::{Call, Era, McpError, Server, require_scopes};
use crate::asking::task::{Escalation, TaskAsker};
use crate::asking::{Asker, Interrupt};
use crate::auth::Caller;
use crate::context::{BoxFuture, ToolContext};
use crate::registry::Tool;
use crate::tasks::{CreateError, EXTENSION, Live, Stored, TaskRecord, TaskStatus, Tasks, now_ms};
use crate::tool::{TaskSupport, ToolError, ToolResult};

/// How a call of a task tool, from a client that declared the extension, runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A task if it is still running after `mcp.task_after_ms`.
    Optional,
    /// A task from the start.
    Required,
}

/// Whether the request's `clientCapabilities` declare the tasks extension (2026-07-28 only:
/// the extension does not exist in the 2025 revisions).
pub fn declared(call: &Call) -> bool {
    call.meta
        .as_ref()
        .is_some_and(|m| m.extension(EXTENSION).is_some())
}

/// How a call of `tool` runs: `None` answered in the request; a task-only tool called by a
/// client that did not declare the extension is refused (-32021 naming it).
pub fn mode(call: &Call, tool: &Tool) -> Result<Option<Mode>, McpError> {
    match (tool.def.tool.task, declared(call)) {
        (TaskSupport::Never, _) | (TaskSupport::Optional, false) => Ok(None),
        (TaskSupport::Required, false) => Err(McpError::MissingExtension(EXTENSION)),
        (TaskSupport::Optional, true) => Ok(Some(Mode::Optional)),
        (TaskSupport::Required, true) => Ok(Some(Mode::Required)),
    }
}

/// What a handler's run gives: its result, or the panic it was stopped by.
type Run = Result<ToolResult, Box<dyn std::any::Any + Send>>;

/// A handler running on the tasks' runtime (`Tasks::spawn`) from its first poll, so nothing it
/// starts (timers, connections) belongs to an HTTP worker, which stops first at shutdown.
/// Dropped, it stops the handler: a call answered in its request that the client abandons, a
/// question answered in rounds, a cancelled task past its grace period.
struct Guarded(tokio::task::JoinHandle<Run>);

impl Guarded {
    fn start(tasks: &Tasks, handler: BoxFuture<ToolResult>) -> Guarded {
        Guarded(tasks.spawn(AssertUnwindSafe(handler).catch_unwind()))
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl std::future::Future for Guarded {
    type Output = Run;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Run> {
        std::pin::Pin::new(&mut self.0)
            .poll(cx)
            .map(|joined| joined.unwrap_or_else(|e| Err(Box::new(e.to_string()))))
    }
}

/// How long a cancelled task's handler may take to return after its signal fires.
const CANCEL_GRACE: Duration = Duration::from_secs(2);

/// A `tools/call` that may become a task. Questions asked before it does are asked as the
/// request asks (2026-07-28 rounds: the server settles them before creating a task, as the
/// extension recommends); after, through the task.
pub async fn call(
    server: &Arc<Server>,
    tool: &Tool,
    ctx: ToolContext,
    args: Value,
    asking: Asking,
    call: &Call,
    mode: Mode,
) -> Result<Reply, McpError> {
    let escalation = Arc::new(Escalation::new(asking.asker.clone()));
    let ctx = ctx.with_asker(Asker::Escalating(escalation.clone()));
    let handler = tool.def.handler;
    let Ok(fut) = std::panic::catch_unwind(AssertUnwindSafe(|| handler(ctx, args))) else {
        return conclude(server, tool, &asking, Ending::Panicked, 0);
    };
    let limit = ending::deadline_secs(server, call);
    let deadline = Instant::now() + Duration::from_secs(limit);
    let rounds = match &asking.asker {
        Asker::Rounds(r) => Some(r.clone()),
        _ => None,
    };
    let capabilities = call
        .meta
        .as_ref()
        .map(|m| m.capabilities.clone())
        .unwrap_or_default();
    let asker = |live: &Arc<Live>| {
        Arc::new(TaskAsker::new(
            live.clone(),
            server.tasks.clone(),
            capabilities.clone(),
            tool.def.tool.asks,
        ))
    };
    let (guarded, live, asker) = match mode {
        Mode::Required => {
            // A task from the start: it exists before the handler's first question.
            escalation.begin();
            let live = create(server, call, tool, &escalation).await?;
            let asker = asker(&live);
            escalation.escalate(asker.clone());
            (Guarded::start(&server.tasks, fut), live, asker)
        }
        Mode::Optional => {
            let guarded = Guarded::start(&server.tasks, fut);
            let due = Due {
                escalation: &escalation,
                rounds: rounds.clone(),
                deadline,
            };
            let guarded = match due.wait(guarded, server).await {
                Ok(guarded) => guarded,
                Err(ending) => return conclude(server, tool, &asking, ending, limit),
            };
            match create(server, call, tool, &escalation).await {
                Ok(live) => {
                    let asker = asker(&live);
                    escalation.escalate(asker.clone());
                    (guarded, live, asker)
                }
                Err(e) => {
                    // The call goes on in the request, as for a client without the extension.
                    escalation.stay();
                    log::info!(
                        "tool {} goes on in its request: it could not become a task ({e:?})",
                        tool.def.name
                    );
                    return finish_in_request(
                        server, tool, asking, guarded, rounds, deadline, limit,
                    )
                    .await;
                }
            }
        }
    };
    let created = view(
        &live.record(),
        &Map::new(),
        server.settings.task_poll_interval_ms,
    );
    let runner = Runner {
        server: server.clone(),
        tool: tool.def.name,
        live,
        asker,
        deadline: tokio::time::Instant::now() + server.settings.task_timeout,
    };
    // Detached: the runner owns the handler from here.
    drop(server.tasks.spawn(runner.run(guarded)));
    Ok(Reply::CreateTask(Box::new(created)))
}

/// The wait of an optional task tool's call for its time to become a task.
struct Due<'a> {
    escalation: &'a Escalation,
    rounds: Option<Arc<crate::asking::Rounds>>,
    deadline: Instant,
}

impl Due<'_> {
    /// Runs the call until it ends (`Err` with its ending: a result, or a question answered in
    /// the request's rounds) or `mcp.task_after_ms` passed with no question in flight (`Ok`:
    /// the decision is taken, questions now wait for the task).
    async fn wait(
        self,
        mut guarded: Guarded,
        server: &Server,
    ) -> Result<Guarded, Ending<ToolResult>> {
        let watched = self.rounds.clone();
        let interrupted = async move {
            match &watched {
                Some(r) => r.interrupted().await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(interrupted);
        let timer = tokio::time::sleep(server.settings.task_after);
        tokio::pin!(timer);
        let mut due = false;
        loop {
            let settled = self.escalation.settled();
            if due {
                // A question already asked in the request is answered there.
                if let Some(i) = self.rounds.as_ref().and_then(|r| r.try_interrupted()) {
                    return Err(Ending::Interrupted(i));
                }
                if self.escalation.begin() {
                    return Ok(guarded);
                }
            }
            tokio::select! {
                biased;
                i = &mut interrupted => return Err(Ending::Interrupted(i)),
                done = tokio::time::timeout_at(self.deadline.into(), &mut guarded) => {
                    return Err(ended(done));
                }
                () = &mut timer, if !due => due = true,
                () = settled, if due => {}
            }
        }
    }
}

/// An optional task's call that could not become one: it finishes in the request.
async fn finish_in_request(
    server: &Arc<Server>,
    tool: &Tool,
    asking: Asking,
    mut guarded: Guarded,
    rounds: Option<Arc<crate::asking::Rounds>>,
    deadline: Instant,
    limit: u64,
) -> Result<Reply, McpError> {
    let interrupted = async {
        match &rounds {
            Some(r) => r.interrupted().await,
            None => std::future::pending().await,
        }
    };
    let ending = tokio::select! {
        biased;
        i = interrupted => Ending::Interrupted(i),
        done = tokio::time::timeout_at(deadline.into(), &mut guarded) => ended(done),
    };
    conclude(server, tool, &asking, ending, limit)
}

fn ended(done: Result<Run, tokio::time::error::Elapsed>) -> Ending<ToolResult> {
    match done {
        Ok(Ok(v)) => Ending::Done(v),
        Ok(Err(_)) => Ending::Panicked,
        Err(_) => Ending::TimedOut,
    }
}

/// Stores the new task (before the call is answered: a `tasks/get` finds it at once).
async fn create(
    server: &Server,
    call: &Call,
    tool: &Tool,
    escalation: &Escalation,
) -> Result<Arc<Live>, McpError> {
    let now = now_ms();
    let s = &server.settings;
    let identity = match &call.caller {
        crate::auth::Caller::Authenticated(id) => Some(id.as_ref()),
        crate::auth::Caller::Anonymous => None,
    };
    let record = TaskRecord {
        id: Tasks::fresh_id(),
        subject: call.caller.subject().unwrap_or("").to_string(),
        tool: tool.def.name.to_string(),
        status: TaskStatus::Working,
        message: Some("The call is running as a task; poll tasks/get for its result".into()),
        created_ms: now,
        updated_ms: now,
        ttl_ms: (s.task_timeout + s.task_ttl).as_millis() as u64,
        input_requests: Map::new(),
        result: None,
        error: None,
        instance: String::new(),
        lease_ms: 0,
        request_id: call.request_id.as_str().to_string(),
        organization: identity.and_then(|i| i.organization()).map(str::to_string),
        client_id: identity.and_then(|i| i.client_id()).map(str::to_string),
    };
    match server
        .tasks
        .create(record, escalation.cancel_sender())
        .await
    {
        Ok(live) => {
            crate::metrics::METRICS.tasks_created.inc();
            Ok(live)
        }
        Err(CreateError::TooMany(max)) => {
            crate::metrics::count(&crate::metrics::METRICS.rate_limited, ["tasks"]);
            Err(McpError::TooManyTasks(max))
        }
        Err(CreateError::Unavailable) => Err(McpError::StoreDown),
    }
}

/// The owner of a running task's handler, on the instance that created it.
struct Runner {
    server: Arc<Server>,
    tool: &'static str,
    live: Arc<Live>,
    asker: Arc<TaskAsker>,
    deadline: tokio::time::Instant,
}

impl Runner {
    async fn run(self, mut guarded: Guarded) {
        let tasks = self.server.tasks.clone();
        let live = &self.live;
        let beat = tasks.limits.heartbeat;
        let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + beat, beat);
        let mut cancel = live.cancel_signal();
        let mut waker = live.waker();
        let ending = loop {
            let cancelled = async {
                let _ = cancel.wait_for(|c| *c).await;
            };
            tokio::select! {
                biased;
                () = cancelled => {
                    // Ended elsewhere (cancelled, or failed for a lapsed lease): the handler
                    // saw its signal and gets a moment to return.
                    let _ = tokio::time::timeout(CANCEL_GRACE, &mut guarded).await;
                    break None;
                }
                i = self.asker.interrupted() => break Some(Ending::Interrupted(i)),
                done = tokio::time::timeout_at(self.deadline, &mut guarded) => break Some(ended(done)),
                _ = live.dirty.notified() => {
                    let written = tasks.persist(live).await;
                    // Progress is written at most ten times a second; a write the store did
                    // not take is tried again.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    if written.is_err() {
                        live.dirty.notify_one();
                    }
                }
                _ = waker.changed() => {
                    if let Ok(Some(s)) = tasks.read(&live.id).await
                        && s.record.status.is_terminal()
                    {
                        live.stop();
                    }
                }
                _ = heartbeat.tick() => {
                    if tasks.persist(live).await.is_err() {
                        live.dirty.notify_one();
                    }
                }
            }
        };
        if let Some(ending) = ending {
            self.conclude(ending).await;
        }
        tasks.finished(live);
    }

    /// Records how the handler ended: `completed` with the call's result (a tool error
    /// included), or `failed` with the JSON-RPC error the call would have had.
    async fn conclude(&self, ending: Ending<ToolResult>) {
        let server = &self.server;
        let limit = server.settings.task_timeout.as_secs();
        let answered: Result<Reply, McpError> = match ending {
            Ending::Done(Ok(output)) => match server.registry.tool(self.tool) {
                Some(tool) => ending::finish(tool, output),
                None => Err(McpError::Internal),
            },
            Ending::Done(Err(ToolError(msg))) => Ok(Reply::tool_error(msg)),
            Ending::TimedOut => Err(McpError::TaskFailed(format!(
                "Task timed out: it ran longer than {limit} s (mcp.task_timeout_secs)"
            ))),
            Ending::Panicked => {
                log::error!(
                    "tool {} panicked in a task; the task failed with -32603 and the server keeps serving",
                    self.tool
                );
                Err(McpError::Internal)
            }
            Ending::Interrupted(Interrupt::MissingCapabilities(c)) => {
                Err(McpError::MissingCapabilities(c))
            }
            Ending::Interrupted(Interrupt::Invalid(why)) => Err(McpError::InvalidParams(why)),
            Ending::Interrupted(Interrupt::NeedInput(_)) => Err(McpError::Internal),
        };
        let max = server.settings.max_response_bytes;
        let keep = server.tasks.limits.keep;
        let (status, result, error, message) = match answered {
            Ok(reply) => {
                let is_error = matches!(&reply, Reply::CallTool(r) if r.is_error);
                let stamped = server.answer(Method::ToolsCall, Era::Modern, reply);
                let value = serde_json::to_value(&stamped).unwrap_or(Value::Null);
                let size = value.to_string().len();
                // Room for the task's own members around the result.
                if size + 2048 > max {
                    let why = format!(
                        "Task failed: its result of {size} bytes is over this server's limit of {max} bytes per response (mcp.max_response_bytes)"
                    );
                    let error = McpError::TaskFailed(why.clone()).to_error();
                    (TaskStatus::Failed, None, Some(json!(error)), why)
                } else {
                    let message = if is_error {
                        "The tool reported an error (see result)"
                    } else {
                        "The task completed"
                    };
                    (
                        TaskStatus::Completed,
                        Some(value),
                        None,
                        message.to_string(),
                    )
                }
            }
            Err(e) => {
                let error = e.to_error();
                let why = format!("Task failed: {}", error.message);
                (TaskStatus::Failed, None, Some(json!(error)), why)
            }
        };
        self.live.update(|r| {
            r.result = result;
            r.error = error;
            r.end(status, Some(message), keep);
        });
        // The end is counted and audited by the store's write, wherever it happens.
        let _ = server.tasks.persist(&self.live).await;
    }
}

/// A task as the client reads it: questions already answered are no longer outstanding (and
/// a task whose questions are all answered is working again).
pub fn view(record: &TaskRecord, answers: &Map<String, Value>, poll_ms: u64) -> TaskView {
    let outstanding: Map<String, Value> = record
        .input_requests
        .iter()
        .filter(|(k, _)| !answers.contains_key(*k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let status = match record.status {
        TaskStatus::InputRequired if outstanding.is_empty() => TaskStatus::Working,
        s => s,
    };
    TaskView {
        task_id: record.id.clone(),
        status: status.name(),
        status_message: record.message.clone(),
        created_at: crate::tasks::iso8601(record.created_ms),
        last_updated_at: crate::tasks::iso8601(record.updated_ms),
        ttl_ms: record.ttl_ms,
        poll_interval_ms: poll_ms,
        input_requests: (status == TaskStatus::InputRequired).then_some(outstanding),
        result: (status == TaskStatus::Completed)
            .then(|| record.result.clone())
            .flatten(),
        error: (status == TaskStatus::Failed)
            .then(|| record.error.clone())
            .flatten(),
    }
}

/// The caller's task `id`, checked: the extension declared (-32021), the task known and the
/// caller's own (-32602 otherwise, the same either way), and the tool's scopes held (403).
pub async fn owned(server: &Server, id: &str, call: &Call) -> Result<Stored, McpError> {
    if !declared(call) {
        return Err(McpError::MissingExtension(EXTENSION));
    }
    if !Tasks::plausible_id(id) {
        return Err(McpError::TaskNotFound);
    }
    visible(server, id, &call.caller).await
}

/// The task `id` if it is `caller`'s: -32602 for an unknown id and another caller's alike,
/// 403 when the caller's token lacks the tool's scopes.
pub async fn visible(server: &Server, id: &str, caller: &Caller) -> Result<Stored, McpError> {
    let stored = server
        .tasks
        .read(id)
        .await
        .map_err(|_| McpError::StoreDown)?
        .ok_or(McpError::TaskNotFound)?;
    if stored.record.subject != caller.subject().unwrap_or("") {
        return Err(McpError::TaskNotFound);
    }
    let scopes = server
        .registry
        .tool(&stored.record.tool)
        .map_or(&[][..], |t| t.def.tool.scopes);
    require_scopes(caller, scopes)?;
    Ok(stored)
}

/// `tasks/get`.
pub async fn get(server: &Server, p: &TaskRef, call: &Call) -> Result<Reply, McpError> {
    let stored = owned(server, &p.task_id, call).await?;
    Ok(Reply::Task(Box::new(view(
        &stored.record,
        &stored.answers,
        server.settings.task_poll_interval_ms,
    ))))
}

/// `tasks/update`: answers to outstanding questions are recorded (the first answer to a key
/// stands); answers to anything else are ignored. An acknowledgement, not a read.
pub async fn update(server: &Server, p: &UpdateTask, call: &Call) -> Result<Reply, McpError> {
    let stored = owned(server, &p.task_id, call).await?;
    if stored.record.status.is_terminal() {
        return Ok(Reply::EMPTY);
    }
    let answers: Map<String, Value> = p
        .input_responses
        .iter()
        .filter(|(k, _)| {
            stored.record.input_requests.contains_key(*k) && !stored.answers.contains_key(*k)
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !answers.is_empty() {
        server
            .tasks
            .answer(&p.task_id, answers)
            .await
            .map_err(|_| McpError::StoreDown)?;
    }
    Ok(Reply::EMPTY)
}

/// `tasks/cancel`: the task ends `cancelled` unless it ended already, and its handler's
/// cancellation signal fires. An acknowledgement, the same for a task that had ended.
pub async fn cancel(server: &Server, p: &TaskRef, call: &Call) -> Result<Reply, McpError> {
    let stored = owned(server, &p.task_id, call).await?;
    if !stored.record.status.is_terminal() {
        server
            .tasks
            .cancel(stored)
            .await
            .map_err(|_| McpError::StoreDown)?;
    }
    Ok(Reply::EMPTY)
}
