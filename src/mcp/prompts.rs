//! `prompts/list`, `prompts/get` and `completion/complete`.

use std::time::Instant;

use serde_json::json;

use super::asking::{Asking, Ending};
use super::model::{Complete, CompletionRef, GetPrompt, Paginated};
use super::result::{CompleteResult, Completion, GetPromptResult, ListedPrompt, Reply};
use super::{Call, McpError, Server, require_scopes};
use crate::auth::Caller;
use crate::context::ToolContext;
use crate::prompt::PromptDef;

pub fn list(server: &Server, p: &Paginated, caller: &Caller) -> Result<Reply, McpError> {
    let entry = |d: &&PromptDef| ListedPrompt {
        name: d.name,
        title: d.title,
        description: d.description,
        arguments: d.arguments,
    };
    let prompts = &server.registry.prompts;
    let page = server.visible_page("prompts", prompts, |d| d.scopes, entry, p, caller);
    page.map(Reply::Prompts)
}

pub async fn get(
    server: &Server,
    p: &GetPrompt,
    call: &Call,
    deadline: Instant,
) -> Result<Reply, McpError> {
    let caller = call.caller.clone();
    let name = p.name.as_str();
    let def =
        (server.registry.prompt(name)).ok_or_else(|| McpError::UnknownPrompt(name.to_string()))?;
    require_scopes(&caller, def.scopes)?;
    let args = p.arguments.clone().unwrap_or_default();
    for (k, v) in &args {
        if !v.is_string() {
            return Err(McpError::InvalidParams(format!(
                "argument {k} must be a string"
            )));
        }
    }
    for a in def.arguments.iter().filter(|a| a.required) {
        if !args.contains_key(a.name) {
            return Err(McpError::InvalidParams(format!(
                "missing required argument {} for prompt {name}",
                a.name
            )));
        }
    }
    let asking = Asking::prepare(
        server,
        call,
        p.round(),
        "prompts/get",
        name,
        &json!(args),
        def.asks,
    )?;
    let ctx = ToolContext::new(caller, server.notifier(call, &p.meta))
        .with_changes(server.changes.clone())
        .with_asker(asking.asker.clone());
    match asking.run(|| (def.get)(ctx, args), deadline).await {
        Ending::Done(Ok(r)) => Ok(Reply::GetPrompt(GetPromptResult {
            description: r.description,
            messages: r.messages,
        })),
        Ending::Done(Err(msg)) => Err(McpError::InvalidParams(msg)),
        Ending::Interrupted(why) => asking.interrupted(server, why),
        Ending::Panicked | Ending::TimedOut => {
            log::error!("prompt {name} panicked or timed out");
            Err(McpError::Internal)
        }
    }
}

pub fn complete(server: &Server, p: &Complete, caller: &Caller) -> Result<Reply, McpError> {
    let (arg_name, value) = (p.argument.name.as_str(), p.argument.value.as_str());
    let values = match &p.reference {
        CompletionRef::Prompt { name } => {
            let def = (server.registry.prompt(name))
                .ok_or_else(|| McpError::UnknownPrompt(name.to_string()))?;
            require_scopes(caller, def.scopes)?;
            if !def.arguments.iter().any(|a| a.name == arg_name) {
                return Err(McpError::InvalidParams(format!(
                    "prompt {name} has no argument {arg_name}"
                )));
            }
            def.complete.map(|f| f(arg_name, value)).unwrap_or_default()
        }
        CompletionRef::Resource { uri } => {
            let t = (server.registry.template(uri))
                .ok_or_else(|| McpError::ResourceNotFound(uri.to_string()))?;
            require_scopes(caller, t.scopes)?;
            t.complete.map(|f| f(arg_name, value)).unwrap_or_default()
        }
    };
    let total = values.len();
    let shown: Vec<String> = values.into_iter().take(100).collect();
    Ok(Reply::Complete(CompleteResult {
        completion: Completion {
            values: shown,
            total,
            has_more: total > 100,
        },
    }))
}
