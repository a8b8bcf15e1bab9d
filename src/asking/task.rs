//! Asking from a task (the 2026-07-28 tasks extension): a handler that may become a task asks
//! the way its request does until the task exists, then through the task. There a question
//! puts the task in `input_required` with the question in `inputRequests`; the client answers
//! with `tasks/update` (on any instance) and the same handler continues where it waited. The
//! handler's code is the same in every case.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::sync::{Notify, watch};

use super::{Answer, AskError, Asker, Interrupt, NOT_DECLARED, Question};
use crate::tasks::{Live, TaskStatus, Tasks};

/// How a call that may become a task asks: as its request does (`before`), then through the
/// task once it exists.
pub(crate) struct Escalation {
    before: Asker,
    task: OnceLock<Arc<TaskAsker>>,
    /// The handler's cancellation signal (fired when its task is cancelled).
    cancel: watch::Sender<bool>,
}

impl Escalation {
    pub(crate) fn new(before: Asker) -> Escalation {
        Escalation {
            before,
            task: OnceLock::new(),
            cancel: watch::channel(false).0,
        }
    }

    /// The sender the task's record is created with (it fires the handler's signal).
    pub(crate) fn cancel_sender(&self) -> watch::Sender<bool> {
        self.cancel.clone()
    }

    pub(crate) fn cancel_signal(&self) -> watch::Receiver<bool> {
        self.cancel.subscribe()
    }

    /// From now on the handler asks through `task`.
    pub(crate) fn escalate(&self, task: Arc<TaskAsker>) {
        let _ = self.task.set(task);
    }

    /// The running task, once the call became one.
    pub(crate) fn task(&self) -> Option<&Arc<TaskAsker>> {
        self.task.get()
    }

    pub(crate) fn before(&self) -> &Asker {
        &self.before
    }

    pub(crate) async fn ask(
        &self,
        questions: Vec<(String, Question)>,
    ) -> Result<Vec<Answer>, AskError> {
        match self.task.get() {
            Some(task) => task.ask(questions).await,
            None => self.before.ask(questions).await,
        }
    }
}

/// Asks through a running task.
pub(crate) struct TaskAsker {
    pub(crate) live: Arc<Live>,
    tasks: Arc<Tasks>,
    capabilities: Map<String, Value>,
    /// The handler declared `asks`.
    declared: bool,
    /// Keys already used in this task's `inputRequests`: each is used once in its life.
    used: Mutex<HashSet<String>>,
    interrupt: Mutex<Option<Interrupt>>,
    notify: Notify,
}

impl TaskAsker {
    pub(crate) fn new(
        live: Arc<Live>,
        tasks: Arc<Tasks>,
        capabilities: Map<String, Value>,
        declared: bool,
    ) -> TaskAsker {
        TaskAsker {
            live,
            tasks,
            capabilities,
            declared,
            used: Mutex::default(),
            interrupt: Mutex::default(),
            notify: Notify::new(),
        }
    }

    /// A key of this task's `inputRequests` for the handler's `key`: the key itself the first
    /// time, then `key#2`, `key#3`...
    fn fresh_key(&self, key: &str) -> String {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        let mut wire = key.to_string();
        let mut n = 1;
        while used.contains(&wire) {
            n += 1;
            wire = format!("{key}#{n}");
        }
        used.insert(wire.clone());
        wire
    }

    async fn ask(&self, questions: Vec<(String, Question)>) -> Result<Vec<Answer>, AskError> {
        if !self.declared {
            return Err(AskError::NotSupported(NOT_DECLARED.into()));
        }
        let undeclared: Vec<String> = questions
            .iter()
            .filter(|(_, q)| !q.declared(&self.capabilities))
            .map(|(_, q)| q.capability().to_string())
            .collect();
        if !undeclared.is_empty() {
            return self.stop(Interrupt::MissingCapabilities(undeclared)).await;
        }
        let asked: Vec<(String, Question)> = questions
            .into_iter()
            .map(|(k, q)| (self.fresh_key(&k), q))
            .collect();
        let keys: Vec<String> = asked.iter().map(|(k, _)| k.clone()).collect();
        self.live.update(|r| {
            for (key, q) in &asked {
                r.input_requests.insert(
                    key.clone(),
                    json!({"method": q.method(), "params": q.params(key)}),
                );
            }
            r.status = TaskStatus::InputRequired;
        });
        let _ = self.tasks.persist(&self.live).await;
        let heartbeat = self.tasks.limits.heartbeat;
        let raw = loop {
            let mut waker = self.live.waker();
            if self.live.is_cancelled() {
                return Err(AskError::Failed("the task was cancelled".into()));
            }
            let got = self.tasks.answers(&self.live, &keys).await;
            if got.len() == keys.len() {
                break got;
            }
            Live::woken(&mut waker, heartbeat.min(Duration::from_secs(1))).await;
        };
        self.live.update(|r| {
            for k in &keys {
                r.input_requests.remove(k);
            }
            if r.input_requests.is_empty() && r.status == TaskStatus::InputRequired {
                r.status = TaskStatus::Working;
            }
        });
        let _ = self.tasks.persist(&self.live).await;
        self.tasks.forget_answers(&self.live, &keys).await;
        asked
            .iter()
            .map(|(key, q)| {
                q.answer(&raw[key]).map_err(|why| {
                    AskError::Failed(format!("the client's answer to {key} is not valid: {why}"))
                })
            })
            .collect()
    }

    /// Records why the task must end and never returns: the runner fails the task.
    async fn stop<T>(&self, why: Interrupt) -> T {
        {
            let mut slot = self.interrupt.lock().unwrap_or_else(|e| e.into_inner());
            if slot.is_none() {
                *slot = Some(why);
            }
        }
        self.notify.notify_one();
        std::future::pending().await
    }

    /// Waits until the handler asked for something the request did not declare.
    pub(crate) async fn interrupted(&self) -> Interrupt {
        loop {
            if let Some(i) = self
                .interrupt
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
            {
                return i;
            }
            self.notify.notified().await;
        }
    }
}
