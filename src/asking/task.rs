//! Asking from a task (the 2026-07-28 tasks extension): a handler that may become a task asks
//! the way its request does until the task exists, then through the task. There a question
//! puts the task in `input_required` with the question in `inputRequests`; the client answers
//! with `tasks/update` (on any instance) and the same handler continues where it waited. The
//! handler's code is the same in every case.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::sync::{Notify, watch};

use super::{Answer, AskError, Asker, Interrupt, NOT_DECLARED, Question, Stop};
use crate::tasks::{Live, TaskStatus, Tasks};

/// How a call that may become a task asks: as its request does (`before`) until the server
/// decides to make it a task, then through the task. The decision waits for a question that
/// is being asked in the request's rounds (that question is answered there), and a question
/// asked while the task is being created waits for it: no question is lost between the two.
pub(crate) struct Escalation {
    before: Asker,
    state: Mutex<Phase>,
    changed: Notify,
    /// The handler's cancellation signal (fired when its task is cancelled).
    cancel: watch::Sender<bool>,
}

enum Phase {
    /// Asking as the request does; `asking` questions are in flight that way.
    Before {
        asking: usize,
    },
    /// The task is being created.
    Deciding,
    Task(Arc<TaskAsker>),
    /// It could not become a task: asking as the request does, for good.
    Stayed,
}

impl Escalation {
    pub(crate) fn new(before: Asker) -> Escalation {
        Escalation {
            before,
            state: Mutex::new(Phase::Before { asking: 0 }),
            changed: Notify::new(),
            cancel: watch::channel(false).0,
        }
    }

    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The sender the task's record is created with (it fires the handler's signal).
    pub(crate) fn cancel_sender(&self) -> watch::Sender<bool> {
        self.cancel.clone()
    }

    pub(crate) fn cancel_signal(&self) -> watch::Receiver<bool> {
        self.cancel.subscribe()
    }

    /// Starts making the call a task, unless a question is being asked in the request's rounds
    /// (`false`: wait for `settled`, then try again).
    pub(crate) fn begin(&self) -> bool {
        let mut phase = self.phase();
        match *phase {
            Phase::Before { asking: 0 } => {
                *phase = Phase::Deciding;
                true
            }
            _ => false,
        }
    }

    /// Resolves when a question asked in the request's rounds has returned (registered at
    /// once: a return between this call and the wait is not missed).
    pub(crate) fn settled(&self) -> Pin<Box<tokio::sync::futures::Notified<'_>>> {
        let mut n = Box::pin(self.changed.notified());
        n.as_mut().enable();
        n
    }

    /// The call is a task now: questions go through `task`.
    pub(crate) fn escalate(&self, task: Arc<TaskAsker>) {
        *self.phase() = Phase::Task(task);
        self.changed.notify_waiters();
    }

    /// The call could not become a task: questions stay with the request.
    pub(crate) fn stay(&self) {
        *self.phase() = Phase::Stayed;
        self.changed.notify_waiters();
    }

    /// The running task, once the call became one.
    pub(crate) fn task(&self) -> Option<Arc<TaskAsker>> {
        match &*self.phase() {
            Phase::Task(t) => Some(t.clone()),
            _ => None,
        }
    }

    pub(crate) fn before(&self) -> &Asker {
        &self.before
    }

    pub(crate) async fn ask(
        &self,
        questions: Vec<(String, Question)>,
    ) -> Result<Vec<Answer>, AskError> {
        loop {
            let changed = self.settled();
            let route = {
                let mut phase = self.phase();
                match &mut *phase {
                    Phase::Before { asking } => {
                        *asking += 1;
                        Some(None)
                    }
                    Phase::Stayed => Some(None),
                    Phase::Task(t) => Some(Some(t.clone())),
                    Phase::Deciding => None,
                }
            };
            match route {
                Some(Some(task)) => return task.ask(questions).await,
                Some(None) => {
                    let answers = self.before.ask(questions).await;
                    if let Phase::Before { asking } = &mut *self.phase() {
                        *asking -= 1;
                    }
                    self.changed.notify_waiters();
                    return answers;
                }
                // The task is being created: ask through it once it exists.
                None => changed.await,
            }
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
    stopped: Stop,
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
            stopped: Stop::default(),
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
        let undeclared = super::undeclared(&questions, &self.capabilities);
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
        // A write the store did not take is retried by the runner.
        if self.tasks.persist(&self.live).await.is_err() {
            self.live.dirty.notify_one();
        }
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
        if self.tasks.persist(&self.live).await.is_err() {
            self.live.dirty.notify_one();
        }
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
        self.stopped.stop(why).await
    }

    /// Waits until the handler asked for something the request did not declare.
    pub(crate) async fn interrupted(&self) -> Interrupt {
        self.stopped.interrupted().await
    }
}
