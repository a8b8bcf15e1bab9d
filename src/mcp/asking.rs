//! Running a handler that may ask the client, in either era: how the request can ask (a 2025
//! event stream, or 2026-07-28 rounds carried by a sealed `requestState`), the one guarded
//! runner every handler goes through (panics, timeouts, interruptions), and the
//! `input_required` result.
//!
//! Policy, the same for tools, prompts and resource reads: a panic is -32603 (the server keeps
//! serving); a handler past `mcp.tool_timeout_secs` is stopped, and the caller says what that
//! means for its method (a tool error for tools, -32603 otherwise).

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use futures_util::FutureExt;
use futures_util::future::CatchUnwind;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::model::Round;
use super::result::{InputRequired, Reply};
use super::{Call, McpError, Server};
use crate::asking::{Asker, Interrupt, NO_STREAM, NOT_DECLARED, Rounds, StreamAsker};
use crate::context::BoxFuture;

/// How one guarded run ended. The one policy for what each ending answers, for tools, prompts
/// and resource reads alike:
/// - a panic is -32603 (logged; the server keeps serving);
/// - a timeout is the handler's failure, answered the way its kind answers failures: a tool's
///   as an `isError` result (tool failures are results the model reads, as the protocol
///   wants), a prompt's or a resource read's as -32603 (their results have no error form);
/// - an interruption (2026-07-28) is the `input_required` result, or the refusal it implies.
pub enum Ending<T> {
    Done(T),
    Panicked,
    TimedOut,
    /// 2026-07-28: the handler stopped at a question (or a refusal the question implies).
    Interrupted(Interrupt),
}

/// What a `requestState` binds an exchange to; sealed, so the client can neither read nor
/// alter it.
#[derive(Debug, Serialize, Deserialize)]
struct State {
    /// The subject that was asked ("" without auth).
    sub: String,
    method: String,
    /// The tool or prompt name, or the resource URI.
    name: String,
    /// SHA-256 of the arguments' canonical JSON.
    args: String,
    /// Unix seconds after which the state is refused.
    exp: u64,
    /// Answers already given and checked.
    answers: BTreeMap<String, Value>,
    /// The keys of the questions this state was issued with: only answers to them count.
    #[serde(default)]
    asked: Vec<String>,
    /// This state's own name (128 random bits): a tool that is not idempotent accepts it once.
    #[serde(default)]
    once: String,
}

/// 128 random bits as hex: a state's `once` name.
fn fresh_name() -> String {
    let mut b = [0u8; 16];
    aws_lc_rs::rand::fill(&mut b).expect("the system random source works");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The names of `requestState`s already accepted by tools that are not idempotent, each kept
/// until its state's expiry, in this instance's memory (the shared store, when there is one,
/// holds them for every instance; this is its fallback). Bounded: past `MAX_SPENT` live
/// names, a new exchange's state is refused until some expire.
/// A name is kept as its 128 bits: about 35 bytes an entry, 3.5 MiB at the cap.
#[derive(Default)]
pub struct Spent {
    names: std::sync::Mutex<std::collections::HashMap<u128, u64>>,
}

const MAX_SPENT: usize = 100_000;

impl Spent {
    /// `Ok(true)`: first use, now remembered until `exp`; `Ok(false)`: used before (or not a
    /// name this server makes); `Err`: full.
    fn first_use(&self, name: &str, exp: u64) -> Result<bool, ()> {
        let Ok(name) = u128::from_str_radix(name, 16) else {
            return Ok(false);
        };
        let now = now();
        let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        if names.get(&name).is_some_and(|until| *until > now) {
            return Ok(false);
        }
        if names.len() >= MAX_SPENT {
            names.retain(|_, until| *until > now);
            if names.len() >= MAX_SPENT {
                return Err(());
            }
        }
        names.insert(name, exp);
        Ok(true)
    }

    /// Forgets names whose state has expired.
    pub fn purge(&self) {
        let now = now();
        self.names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, until| *until > now);
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Too many exchanges are open on this instance for one more to be remembered.
fn busy() -> McpError {
    McpError::InvalidParams(
        "too many requestStates are in use on this server; retry in a minute".into(),
    )
}

fn digest(args: &Value) -> String {
    // serde_json's maps are ordered, so this text is canonical.
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, args.to_string().as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A request's way of asking, plus (2026-07-28) what its next `requestState` must bind.
pub struct Asking {
    pub(crate) asker: Asker,
    bound: Option<(Arc<Rounds>, State)>,
    /// The `once` name and expiry of the `requestState` this request carried, if any.
    carried: Option<(String, u64)>,
}

impl Asking {
    /// Chooses how a handler (`declared`: it said it may ask) of `method` on `name` with `args`
    /// can ask. 2026-07-28: reads `inputResponses` and opens `requestState`, refusing (-32602)
    /// malformed ones and state that is altered, expired, or issued for another subject,
    /// method, name or arguments.
    pub fn prepare(
        server: &Server,
        call: &Call,
        round: Round<'_>,
        method: &str,
        name: &str,
        args: &Value,
        declared: bool,
    ) -> Result<Asking, McpError> {
        let cannot = |why| Asking {
            asker: Asker::Cannot(why),
            bound: None,
            carried: None,
        };
        // Made only where it is kept (a tool that never asks needs none).
        let subject = || call.caller.subject().unwrap_or("").to_string();
        let Some(meta) = &call.meta else {
            return Ok(match (&call.tx, declared) {
                (_, false) => cannot(NOT_DECLARED),
                (None, true) => cannot(NO_STREAM),
                (Some(tx), true) => Asking {
                    asker: Asker::Stream(Arc::new(StreamAsker {
                        tx: tx.clone(),
                        pending: server.pending.clone(),
                        subject: subject(),
                        version: call.era.version(),
                    })),
                    bound: None,
                    carried: None,
                },
            });
        };
        if !declared {
            // Answers for a handler that never asks are extra information: ignored.
            return Ok(cannot(NOT_DECLARED));
        }
        // Answers count only beside the state that asked for them: `inputResponses` without
        // a `requestState`, or for a question that state did not ask, are ignored (the handler
        // asks again), so no answer can be supplied unasked.
        let mut answers: BTreeMap<String, Value> = BTreeMap::new();
        let mut carried = None;
        let mut state = State {
            sub: subject(),
            method: method.to_string(),
            name: name.to_string(),
            args: digest(args),
            exp: now() + server.settings.state_ttl.as_secs(),
            answers: BTreeMap::new(),
            asked: Vec::new(),
            once: String::new(),
        };
        match round.request_state {
            None => {}
            Some(sealed) => {
                let earlier = server
                    .seal
                    .open(sealed)
                    .and_then(|plain| serde_json::from_slice::<State>(&plain).ok())
                    .ok_or_else(|| {
                        McpError::InvalidParams(
                            "requestState was not issued by this server or was altered".into(),
                        )
                    })?;
                if (&earlier.sub, &earlier.method, &earlier.name, &earlier.args)
                    != (&state.sub, &state.method, &state.name, &state.args)
                {
                    return Err(McpError::InvalidParams(
                        "requestState belongs to another request (caller, method, name or arguments differ)".into(),
                    ));
                }
                if earlier.exp <= now() {
                    return Err(McpError::InvalidParams(
                        "requestState has expired: start the request again without it".into(),
                    ));
                }
                // The exchange keeps its first deadline; answers already checked stand.
                state.exp = earlier.exp;
                if let Some(given) = round.input_responses {
                    for key in &earlier.asked {
                        if let Some(v) = given.get(key) {
                            answers.insert(key.clone(), v.clone());
                        }
                    }
                }
                for (k, v) in earlier.answers {
                    answers.insert(k, v);
                }
                carried = Some((earlier.once, earlier.exp));
            }
        }
        let rounds = Arc::new(Rounds::new(meta.capabilities.clone(), answers));
        Ok(Asking {
            asker: Asker::Rounds(rounds.clone()),
            bound: Some((rounds, state)),
            carried,
        })
    }

    /// For a handler that is not idempotent: accepts the carried `requestState` once, on any
    /// instance (through the shared store when there is one; this instance's memory when there
    /// is none, or when it does not answer and `rate_limit.redis_down` is `local`). A replay is
    /// refused (-32602) and the handler does not run.
    pub async fn accept_once(&self, server: &Server) -> Result<(), McpError> {
        let Some((name, exp)) = &self.carried else {
            return Ok(());
        };
        let replayed = || {
            McpError::InvalidParams(
                "requestState was already used: each answer is accepted once; start the request again without it".into(),
            )
        };
        // A state sealed before states had names cannot be told from its replays: refused, and
        // the client starts the request again.
        if name.is_empty() {
            return Err(replayed());
        }
        let first = match server.shared_store() {
            Some(shared) => {
                let ttl = std::time::Duration::from_secs(exp.saturating_sub(now()).max(1));
                match shared.store.first_use(name, ttl).await {
                    Ok(first) => first && server.spent.first_use(name, *exp).unwrap_or(true),
                    Err(_) if shared.when_down == crate::config::RedisDown::Refuse => {
                        return Err(McpError::StoreDown);
                    }
                    Err(_) => server.spent.first_use(name, *exp).map_err(|()| busy())?,
                }
            }
            None => server.spent.first_use(name, *exp).map_err(|()| busy())?,
        };
        if first { Ok(()) } else { Err(replayed()) }
    }

    /// Runs a handler under the one policy: panics caught (while it is built and while it
    /// runs), `deadline` enforced (the audit's start plus `mcp.tool_timeout_secs`, so time a
    /// handler spends before its first wait counts too), and (2026-07-28) stopped at its first
    /// unanswered question. The timer is armed only when the handler first waits: most finish
    /// at their first poll, and arming and cancelling one is two trips to the timer wheel.
    pub async fn run<T>(
        &self,
        start: impl FnOnce() -> BoxFuture<T>,
        deadline: Instant,
    ) -> Ending<T> {
        let Ok(fut) = std::panic::catch_unwind(AssertUnwindSafe(start)) else {
            return Ending::Panicked;
        };
        // The handler's future is boxed already, so its guard may move after a poll.
        let mut guarded = AssertUnwindSafe(fut).catch_unwind();
        // Nothing can have interrupted a handler that has not run yet, and one that finishes
        // at its first poll asked nothing it waited for.
        if let Poll::Ready(done) =
            std::future::poll_fn(|cx| Poll::Ready(guarded.poll_unpin(cx))).await
        {
            return match done {
                Ok(v) => Ending::Done(v),
                Err(_) => Ending::Panicked,
            };
        }
        // Still running: the wait (the timer, the watch for questions) is boxed on its own, so
        // the future of every call that finishes at once (which the transport boxes and
        // copies) does not carry it.
        Box::pin(self.wait(guarded, deadline)).await
    }

    async fn wait<T>(
        &self,
        guarded: CatchUnwind<AssertUnwindSafe<BoxFuture<T>>>,
        deadline: Instant,
    ) -> Ending<T> {
        let interrupted = async {
            match &self.bound {
                Some((rounds, _)) => rounds.interrupted().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            i = interrupted => Ending::Interrupted(i),
            done = tokio::time::timeout_at(deadline.into(), guarded) => match done {
                Ok(Ok(v)) => Ending::Done(v),
                Ok(Err(_)) => Ending::Panicked,
                Err(_) => Ending::TimedOut,
            },
        }
    }

    /// The answer for an interrupted run: `input_required` with the open questions and a fresh
    /// sealed state carrying the answers used so far, or the refusal the interruption implies.
    pub fn interrupted(&self, server: &Server, why: Interrupt) -> Result<Reply, McpError> {
        let questions = match why {
            Interrupt::NeedInput(q) => q,
            Interrupt::MissingCapabilities(c) => return Err(McpError::MissingCapabilities(c)),
            Interrupt::Invalid(why) => return Err(McpError::InvalidParams(why)),
        };
        let Some((rounds, state)) = &self.bound else {
            return Err(McpError::Internal);
        };
        let requests: Map<String, Value> = questions
            .iter()
            .map(|(key, q)| {
                (
                    key.clone(),
                    json!({"method": q.method(), "params": q.params(key)}),
                )
            })
            .collect();
        let next = State {
            answers: rounds.used(),
            sub: state.sub.clone(),
            method: state.method.clone(),
            name: state.name.clone(),
            args: state.args.clone(),
            exp: state.exp,
            asked: questions.iter().map(|(key, _)| key.clone()).collect(),
            once: fresh_name(),
        };
        let sealed = server
            .seal
            .seal(&serde_json::to_vec(&next).map_err(|_| McpError::Internal)?);
        Ok(Reply::InputRequired(InputRequired {
            input_requests: requests,
            request_state: sealed,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_name_is_accepted_once_until_its_expiry() {
        let spent = Spent::default();
        let name = fresh_name();
        let later = now() + 60;
        assert_eq!(spent.first_use(&name, later), Ok(true));
        assert_eq!(spent.first_use(&name, later), Ok(false));
        assert_eq!(spent.first_use(&fresh_name(), later), Ok(true));
        // A name whose state has expired is forgotten (the state itself is refused by then).
        let old = fresh_name();
        assert_eq!(spent.first_use(&old, now() - 1), Ok(true));
        spent.purge();
        assert_eq!(spent.names.lock().unwrap().len(), 2);
        // Nothing this server makes is not a name.
        assert_eq!(spent.first_use("not hex", later), Ok(false));
    }
}
