//! Where tasks live (the 2026-07-28 extension `io.modelcontextprotocol/tasks`): each task's
//! record, kept in this instance's memory or, with REDIS_URL, in the shared store so that every
//! instance reads it; the lease the running instance renews; and the wake-ups that carry
//! answers and cancellations to the handler, on this instance or relayed from another. The
//! protocol side (the methods, what a client sees, the runner) is `mcp::tasks`.

mod shared;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::{Notify, broadcast, watch};

use crate::budget;
use crate::config::RedisDown;

/// The extension's identifier.
pub const EXTENSION: &str = "io.modelcontextprotocol/tasks";

/// A task's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Working,
    InputRequired,
    Completed,
    Failed,
    Cancelled,
}

impl TaskStatus {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskStatus::Completed | TaskStatus::Failed | TaskStatus::Cancelled
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            TaskStatus::Working => "working",
            TaskStatus::InputRequired => "input_required",
            TaskStatus::Completed => "completed",
            TaskStatus::Failed => "failed",
            TaskStatus::Cancelled => "cancelled",
        }
    }
}

/// One task as stored. Results and questions are kept as the client will read them; nothing
/// here is ever logged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    pub id: String,
    /// The verified subject that created it ("" without auth): only it may see the task.
    pub subject: String,
    /// The tool's registered name: its scopes are checked again on every `tasks/*` request.
    pub tool: String,
    pub status: TaskStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Unix milliseconds.
    pub created_ms: u64,
    pub updated_ms: u64,
    /// From creation; grows when the task ends, to keep it `mcp.task_ttl_secs` after that.
    pub ttl_ms: u64,
    /// Outstanding questions, by key: `{method, params}`.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub input_requests: Map<String, Value>,
    /// `completed`: the `tools/call` result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// `failed`: the JSON-RPC error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    /// The instance running it, and (with a shared store) until when its lease holds.
    pub instance: String,
    pub lease_ms: u64,
    /// For the audit line of its end: the creating call's request id, and who made it.
    #[serde(default)]
    pub request_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

impl TaskRecord {
    /// The record ended with `status`: kept `keep` from now.
    pub fn end(&mut self, status: TaskStatus, message: Option<String>, keep: Duration) {
        let now = now_ms();
        self.status = status;
        if message.is_some() {
            self.message = message;
        }
        self.input_requests.clear();
        self.updated_ms = now;
        self.ttl_ms = now.saturating_sub(self.created_ms) + keep.as_millis() as u64;
    }

    /// When the record may be forgotten (unix milliseconds).
    pub fn expires_ms(&self) -> u64 {
        self.created_ms + self.ttl_ms
    }

    /// Whether the instance running it stopped renewing its lease (shared store only).
    pub fn lease_lapsed(&self, now: u64) -> bool {
        !self.status.is_terminal() && self.lease_ms != 0 && self.lease_ms < now
    }
}

/// A record and the answers given to its questions that the handler has not taken yet.
#[derive(Debug, Clone)]
pub struct Stored {
    pub record: TaskRecord,
    pub answers: Map<String, Value>,
}

/// The store did not answer (or is resting after it did not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unavailable;

/// Why a task could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateError {
    /// The subject has `mcp.max_tasks_per_subject` unfinished tasks.
    TooMany(usize),
    Unavailable,
}

/// Where a record is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Memory,
    Shared,
}

/// A task running on this instance: the handler's side.
pub struct Live {
    pub id: String,
    place: Place,
    record: Mutex<TaskRecord>,
    /// Counts wake-ups: answers arrived, or the record changed elsewhere (a cancellation).
    /// A watch, so a wake-up between a check and the wait is never lost.
    wake: watch::Sender<u64>,
    /// The handler changed what the record says (progress): the runner writes it.
    pub dirty: Notify,
    /// Becomes true when the task is cancelled or ended elsewhere: the handler's signal.
    cancel: watch::Sender<bool>,
}

impl Live {
    /// A copy of the record as this instance last wrote it.
    pub fn record(&self) -> TaskRecord {
        self.record
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Changes the record (then `Tasks::persist` writes it).
    pub fn update<T>(&self, change: impl FnOnce(&mut TaskRecord) -> T) -> T {
        let mut r = self.record.lock().unwrap_or_else(|e| e.into_inner());
        let out = change(&mut r);
        r.updated_ms = now_ms().max(r.updated_ms);
        out
    }

    /// A receiver of wake-ups; take it before looking, then wait with `woken`.
    pub fn waker(&self) -> watch::Receiver<u64> {
        self.wake.subscribe()
    }

    /// Waits for a wake-up after `waker` was taken, at most `at_most` (a lost relay message
    /// costs one heartbeat).
    pub async fn woken(waker: &mut watch::Receiver<u64>, at_most: Duration) {
        let _ = tokio::time::timeout(at_most, waker.changed()).await;
    }

    fn wake(&self) {
        self.wake.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn cancel_signal(&self) -> watch::Receiver<bool> {
        self.cancel.subscribe()
    }

    pub fn is_cancelled(&self) -> bool {
        *self.cancel.borrow()
    }

    /// Fires the handler's cancellation signal.
    pub fn stop(&self) {
        self.cancel.send_replace(true);
        self.wake();
    }
}

/// The numbers the store works with (from `[mcp]`).
#[derive(Debug, Clone, Copy)]
pub struct TaskLimits {
    pub max_per_subject: usize,
    pub heartbeat: Duration,
    pub keep: Duration,
}

/// Tasks in this instance's memory: every task without a shared store, and with one, the tasks
/// created while it was down (`rate_limit.redis_down = local`).
#[derive(Default)]
struct Memory {
    tasks: HashMap<String, Stored>,
    /// Unfinished tasks per subject.
    unfinished: HashMap<String, usize>,
}

impl Memory {
    fn count_end(&mut self, subject: &str) {
        if let Some(n) = self.unfinished.get_mut(subject) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.unfinished.remove(subject);
            }
        }
    }
}

/// Every task this instance knows of, and the wake-ups between instances.
pub struct Tasks {
    memory: Mutex<Memory>,
    shared: Option<Arc<budget::Shared>>,
    live: Mutex<HashMap<String, Arc<Live>>>,
    /// The id of every task whose record changed (here, or relayed), for listen streams.
    events: broadcast::Sender<String>,
    instance: String,
    pub limits: TaskLimits,
    /// Called once for every task that ends, wherever it ended (the audit line).
    on_end: fn(&TaskRecord),
    /// The log label of whoever built this server (`logging::tag`), given to its tasks' polls.
    tag: Option<Arc<str>>,
}

/// How many task changes a slow listen stream may fall behind by.
const EVENT_BACKLOG: usize = 1024;

impl Tasks {
    pub fn new(
        shared: Option<Arc<budget::Shared>>,
        instance: String,
        limits: TaskLimits,
        on_end: fn(&TaskRecord),
    ) -> Arc<Tasks> {
        let tasks = Arc::new(Tasks {
            on_end,
            tag: crate::logging::tag(),
            memory: Mutex::default(),
            shared,
            live: Mutex::default(),
            events: broadcast::channel(EVENT_BACKLOG).0,
            instance,
            limits,
        });
        if tasks.shared.is_some() && tokio::runtime::Handle::try_current().is_ok() {
            shared::relay(&tasks);
        }
        tasks
    }

    /// Runs a task's handler (or its runner) on the tasks' runtime (`runtime`). The handle may
    /// be awaited (or aborted) from any runtime.
    pub fn spawn<F>(&self, run: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        // The trace context goes along (the tool's span, when traces are on): a task's work
        // stays in the trace of the call that started it.
        use opentelemetry::context::FutureExt as _;
        runtime().spawn(Tagged {
            tag: self.tag.clone(),
            run: Box::pin(run.with_current_context()),
        })
    }

    /// A new task id: 192 random bits, URL-safe.
    pub fn fresh_id() -> String {
        let mut b = [0u8; 24];
        aws_lc_rs::rand::fill(&mut b).expect("the system random source works");
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    }

    /// Whether `id` could be one this server made (anything else is unknown without a lookup).
    pub fn plausible_id(id: &str) -> bool {
        id.len() == 32
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }

    /// Stores a new task before anyone is told of it (a `tasks/get` finds it as soon as this
    /// returns), in the shared store when there is one; when it does not answer, in memory
    /// (`rate_limit.redis_down = local`) or not at all (`refuse`).
    /// `cancel` becomes the handler's cancellation signal.
    pub async fn create(
        &self,
        mut record: TaskRecord,
        cancel: watch::Sender<bool>,
    ) -> Result<Arc<Live>, CreateError> {
        let now = now_ms();
        record.instance = self.instance.clone();
        let place = match &self.shared {
            Some(s) => {
                record.lease_ms = now + self.lease().as_millis() as u64;
                match shared::create(&s.store, &record, self.limits.max_per_subject).await {
                    Ok(true) => Place::Shared,
                    Ok(false) => return Err(CreateError::TooMany(self.limits.max_per_subject)),
                    Err(Unavailable) if s.when_down == RedisDown::Refuse => {
                        return Err(CreateError::Unavailable);
                    }
                    Err(Unavailable) => {
                        log::warn!(
                            "the shared store is unavailable: task kept in this instance's memory (only this instance can answer for it)"
                        );
                        record.lease_ms = 0;
                        self.create_in_memory(&record)?;
                        Place::Memory
                    }
                }
            }
            None => {
                self.create_in_memory(&record)?;
                Place::Memory
            }
        };
        let live = Arc::new(Live {
            id: record.id.clone(),
            place,
            record: Mutex::new(record),
            wake: watch::channel(0).0,
            dirty: Notify::new(),
            cancel,
        });
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(live.id.clone(), live.clone());
        Ok(live)
    }

    fn create_in_memory(&self, record: &TaskRecord) -> Result<(), CreateError> {
        let mut m = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        let n = m.unfinished.entry(record.subject.clone()).or_default();
        if *n >= self.limits.max_per_subject {
            return Err(CreateError::TooMany(self.limits.max_per_subject));
        }
        *n += 1;
        m.tasks.insert(
            record.id.clone(),
            Stored {
                record: record.clone(),
                answers: Map::new(),
            },
        );
        Ok(())
    }

    /// The lease a running instance holds: two and a half heartbeats, so a stopped instance's
    /// tasks are reported failed within three.
    fn lease(&self) -> Duration {
        self.limits.heartbeat * 5 / 2
    }

    /// The task `id` (an expired one is gone). A task whose instance stopped renewing its lease
    /// is failed here, saying so. `Err` when the shared store may hold it but did not answer.
    pub async fn read(&self, id: &str) -> Result<Option<Stored>, Unavailable> {
        let now = now_ms();
        {
            let m = self.memory.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(s) = m.tasks.get(id) {
                return Ok((s.record.expires_ms() > now).then(|| s.clone()));
            }
        }
        let Some(s) = &self.shared else {
            return Ok(None);
        };
        let Some(mut stored) = shared::read(&s.store, id).await? else {
            return Ok(None);
        };
        if stored.record.lease_lapsed(now) {
            let r = &mut stored.record;
            let silent = now.saturating_sub(r.lease_ms) + self.lease().as_millis() as u64;
            let why = format!(
                "Task failed: the server instance running it ({}) stopped (no heartbeat for {} s); start the call again",
                r.instance,
                silent / 1000
            );
            r.error = Some(serde_json::json!(
                crate::failure::McpError::TaskFailed(why.clone()).to_error()
            ));
            r.end(TaskStatus::Failed, Some(why), self.limits.keep);
            // Whoever wrote first wins (and counts it); either way the task is over.
            let _ = self.write(Place::Shared, &stored.record).await;
            self.changed(&stored.record.id).await;
        }
        Ok(Some(stored))
    }

    /// Records `answers` (keys of outstanding questions only; the caller checked) and wakes the
    /// handler, wherever it runs.
    pub async fn answer(&self, id: &str, answers: Map<String, Value>) -> Result<(), Unavailable> {
        let in_memory = {
            let mut m = self.memory.lock().unwrap_or_else(|e| e.into_inner());
            match m.tasks.get_mut(id) {
                Some(s) => {
                    for (k, v) in answers.iter() {
                        s.answers.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                    true
                }
                None => false,
            }
        };
        if !in_memory && let Some(s) = &self.shared {
            shared::answer(&s.store, id, &answers).await?;
        }
        self.wake(id).await;
        Ok(())
    }

    /// Ends the task as cancelled unless it ended already, and tells its handler.
    pub async fn cancel(&self, mut stored: Stored) -> Result<(), Unavailable> {
        let r = &mut stored.record;
        r.end(
            TaskStatus::Cancelled,
            Some("Cancelled by the client".into()),
            self.limits.keep,
        );
        self.write(Place::of(self, &r.id), r).await?;
        if let Some(live) = self.live_task(&stored.record.id) {
            live.stop();
        }
        self.changed(&stored.record.id).await;
        Ok(())
    }

    /// Writes the running task's record. `Ok(false)`: it had ended elsewhere (cancelled, or
    /// failed for a lapsed lease), and the handler is told to stop.
    pub async fn persist(&self, live: &Live) -> Result<bool, Unavailable> {
        let mut record = live.record();
        if self.shared.is_some() && live.place == Place::Shared && !record.status.is_terminal() {
            record.lease_ms = now_ms() + self.lease().as_millis() as u64;
        }
        let written = self.write(live.place, &record).await?;
        if !written {
            live.stop();
        }
        self.changed(&live.id).await;
        Ok(written)
    }

    /// Writes a record unless it ended already; the end of a task is counted here, once.
    async fn write(&self, place: Place, record: &TaskRecord) -> Result<bool, Unavailable> {
        let written = self.write_to(place, record).await?;
        if written && record.status.is_terminal() {
            let secs = now_ms().saturating_sub(record.created_ms) as f64 / 1000.0;
            crate::metrics::METRICS.task_ended(record.status.name(), secs);
            (self.on_end)(record);
        }
        Ok(written)
    }

    async fn write_to(&self, place: Place, record: &TaskRecord) -> Result<bool, Unavailable> {
        match (place, &self.shared) {
            (Place::Shared, Some(s)) => shared::write(&s.store, record).await,
            _ => {
                let mut m = self.memory.lock().unwrap_or_else(|e| e.into_inner());
                let Some(s) = m.tasks.get_mut(&record.id) else {
                    return Ok(false);
                };
                if s.record.status.is_terminal() {
                    return Ok(false);
                }
                s.record = record.clone();
                if record.status.is_terminal() {
                    s.answers.clear();
                    let subject = record.subject.clone();
                    m.count_end(&subject);
                }
                Ok(true)
            }
        }
    }

    /// The answers given to `keys` so far (not removed: `forget_answers` does that once the
    /// record no longer lists the questions).
    pub async fn answers(&self, live: &Live, keys: &[String]) -> Map<String, Value> {
        match (live.place, &self.shared) {
            (Place::Shared, Some(s)) => shared::answers(&s.store, &live.id, keys)
                .await
                .unwrap_or_default(),
            _ => {
                let m = self.memory.lock().unwrap_or_else(|e| e.into_inner());
                m.tasks
                    .get(&live.id)
                    .map(|s| {
                        keys.iter()
                            .filter_map(|k| s.answers.get(k).map(|v| (k.clone(), v.clone())))
                            .collect()
                    })
                    .unwrap_or_default()
            }
        }
    }

    pub async fn forget_answers(&self, live: &Live, keys: &[String]) {
        match (live.place, &self.shared) {
            (Place::Shared, Some(s)) => {
                let _ = shared::forget_answers(&s.store, &live.id, keys).await;
            }
            _ => {
                let mut m = self.memory.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(s) = m.tasks.get_mut(&live.id) {
                    for k in keys {
                        s.answers.remove(k);
                    }
                }
            }
        }
    }

    /// The handler is done: its task no longer runs here.
    pub fn finished(&self, live: &Live) {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&live.id);
    }

    fn live_task(&self, id: &str) -> Option<Arc<Live>> {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// Wakes the handler of `id`: here directly, elsewhere through the store's relay.
    async fn wake(&self, id: &str) {
        match self.live_task(id) {
            Some(live) => live.wake(),
            None => {
                if let Some(s) = &self.shared {
                    shared::nudge(&s.store, &self.instance, id).await;
                }
            }
        }
        let _ = self.events.send(id.to_string());
    }

    /// Tells listen streams, here and (through the store) elsewhere, that `id` changed.
    async fn changed(&self, id: &str) {
        let _ = self.events.send(id.to_string());
        if let Some(s) = &self.shared {
            shared::nudge(&s.store, &self.instance, id).await;
        }
    }

    /// A relayed nudge from another instance.
    fn relayed(&self, id: &str) {
        if let Some(live) = self.live_task(id) {
            live.wake();
        }
        let _ = self.events.send(id.to_string());
    }

    /// The ids of tasks whose records change, for a listen stream.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.events.subscribe()
    }

    /// Forgets expired records in memory.
    pub fn purge(&self) {
        let now = now_ms();
        let mut m = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        m.tasks.retain(|_, s| s.record.expires_ms() > now);
    }

    /// Shutdown: tasks still running get until `deadline` (the drain period), then fail saying
    /// the instance stopped, so no client polls a task that can never end.
    pub async fn drain(&self, deadline: tokio::time::Instant) {
        loop {
            let running: Vec<Arc<Live>> = self
                .live
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .values()
                .cloned()
                .collect();
            if running.is_empty() {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                log::warn!(
                    "{} task(s) still running at shutdown are marked failed",
                    running.len()
                );
                for live in running {
                    let why = "Task failed: the server instance running it shut down before it finished; start the call again".to_string();
                    live.update(|r| {
                        r.error = Some(serde_json::json!(
                            crate::failure::McpError::TaskFailed(why.clone()).to_error()
                        ));
                        r.end(TaskStatus::Failed, Some(why.clone()), self.limits.keep);
                    });
                    let _ = self.persist(&live).await;
                    live.stop();
                    self.finished(&live);
                }
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Place {
    /// Where the record of `id` is: memory when this instance holds it there.
    fn of(tasks: &Tasks, id: &str) -> Place {
        let in_memory = tasks
            .memory
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .tasks
            .contains_key(id);
        if in_memory || tasks.shared.is_none() {
            Place::Memory
        } else {
            Place::Shared
        }
    }
}

/// The runtime every task's handler runs on: one per process, a thread per core, never
/// dropped. Not an HTTP worker's (they stop first at shutdown, and tasks get the drain period;
/// timers and connections a handler starts belong to the runtime that polls it), nor the
/// server's main thread (a busy task would hold up the others and the shutdown signal).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .thread_name("gatehouse-tasks")
            .enable_all()
            .build()
            .expect("the tasks' runtime starts")
    })
}

/// A task's future, polled under the log label of the server that made it.
struct Tagged<F> {
    tag: Option<Arc<str>>,
    run: std::pin::Pin<Box<F>>,
}

impl<F: std::future::Future> std::future::Future for Tagged<F> {
    type Output = F::Output;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        if self.tag.is_some() {
            crate::logging::set_tag(self.tag.clone());
        }
        self.run.as_mut().poll(cx)
    }
}

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Unix milliseconds as ISO 8601 UTC (`2026-07-28T10:30:00.123Z`).
pub fn iso8601(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_iso_8601() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_785_234_600_123), "2026-07-28T10:30:00.123Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn ids_are_unguessable_and_recognisable() {
        let a = Tasks::fresh_id();
        assert!(Tasks::plausible_id(&a));
        assert_ne!(a, Tasks::fresh_id());
        assert!(!Tasks::plausible_id("tasks-conformance-nonexistent-12345"));
        assert!(!Tasks::plausible_id(&format!("{}!", &a[..31])));
    }

    fn record(subject: &str) -> TaskRecord {
        TaskRecord {
            id: Tasks::fresh_id(),
            subject: subject.into(),
            tool: "t".into(),
            status: TaskStatus::Working,
            message: None,
            created_ms: now_ms(),
            updated_ms: now_ms(),
            ttl_ms: 60_000,
            input_requests: Map::new(),
            result: None,
            error: None,
            instance: String::new(),
            lease_ms: 0,
            request_id: String::new(),
            organization: None,
            client_id: None,
        }
    }

    #[tokio::test]
    async fn memory_tasks_are_bounded_per_subject_and_end_once() {
        let limits = TaskLimits {
            max_per_subject: 2,
            heartbeat: Duration::from_secs(5),
            keep: Duration::from_secs(60),
        };
        let tasks = Tasks::new(None, "i1".into(), limits, |_| {});
        let signal = || watch::channel(false).0;
        let a = tasks.create(record("alice"), signal()).await.unwrap();
        let _b = tasks.create(record("alice"), signal()).await.unwrap();
        assert_eq!(
            tasks.create(record("alice"), signal()).await.err(),
            Some(CreateError::TooMany(2))
        );
        assert!(tasks.create(record("bob"), signal()).await.is_ok());
        // Cancelled by the client: the slot is free again, and the handler's write loses.
        let stored = tasks.read(&a.id).await.unwrap().unwrap();
        tasks.cancel(stored).await.unwrap();
        assert!(a.is_cancelled());
        a.update(|r| r.end(TaskStatus::Completed, None, limits.keep));
        assert_eq!(tasks.persist(&a).await, Ok(false));
        let r = tasks.read(&a.id).await.unwrap().unwrap().record;
        assert_eq!(r.status, TaskStatus::Cancelled);
        assert!(tasks.create(record("alice"), signal()).await.is_ok());
    }
}
