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
use crate::ask::{Asker, Interrupt, NO_STREAM, NOT_DECLARED, Rounds, StreamAsker};
use crate::context::BoxFuture;

/// How one guarded run ended. The one policy for what each ending answers, for tools, prompts
/// and resource reads alike:
/// - a panic is -32603 (logged; the server keeps serving);
/// - a timeout is the handler's failure, answered the way its kind answers failures: a tool's
///   as an `isError` result (tool failures are results the model reads, as the protocol
///   wants), a prompt's or a resource read's as -32603 (their results have no error form);
/// - an interruption (2026-07-28) is the `input_required` result, or the refusal it implies.
pub enum Ran<T> {
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
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
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
                },
            });
        };
        if !declared {
            // Answers for a handler that never asks are extra information: ignored.
            return Ok(cannot(NOT_DECLARED));
        }
        let mut answers: BTreeMap<String, Value> = round
            .input_responses
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let mut state = State {
            sub: subject(),
            method: method.to_string(),
            name: name.to_string(),
            args: digest(args),
            exp: now() + server.settings.state_ttl.as_secs(),
            answers: BTreeMap::new(),
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
                for (k, v) in earlier.answers {
                    answers.insert(k, v);
                }
            }
        }
        let rounds = Arc::new(Rounds::new(meta.capabilities.clone(), answers));
        Ok(Asking {
            asker: Asker::Rounds(rounds.clone()),
            bound: Some((rounds, state)),
        })
    }

    /// Runs a handler under the one policy: panics caught (while it is built and while it
    /// runs), `deadline` enforced (the audit's start plus `mcp.tool_timeout_secs`, so time a
    /// handler spends before its first wait counts too), and (2026-07-28) stopped at its first
    /// unanswered question. The timer is armed only when the handler first waits: most finish
    /// at their first poll, and arming and cancelling one is two trips to the timer wheel.
    pub async fn run<T>(&self, start: impl FnOnce() -> BoxFuture<T>, deadline: Instant) -> Ran<T> {
        let Ok(fut) = std::panic::catch_unwind(AssertUnwindSafe(start)) else {
            return Ran::Panicked;
        };
        // The handler's future is boxed already, so its guard may move after a poll.
        let mut guarded = AssertUnwindSafe(fut).catch_unwind();
        // Nothing can have interrupted a handler that has not run yet, and one that finishes
        // at its first poll asked nothing it waited for.
        if let Poll::Ready(done) =
            std::future::poll_fn(|cx| Poll::Ready(guarded.poll_unpin(cx))).await
        {
            return match done {
                Ok(v) => Ran::Done(v),
                Err(_) => Ran::Panicked,
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
    ) -> Ran<T> {
        let interrupted = async {
            match &self.bound {
                Some((rounds, _)) => rounds.interrupted().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            i = interrupted => Ran::Interrupted(i),
            done = tokio::time::timeout_at(deadline.into(), guarded) => match done {
                Ok(Ok(v)) => Ran::Done(v),
                Ok(Err(_)) => Ran::Panicked,
                Err(_) => Ran::TimedOut,
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
