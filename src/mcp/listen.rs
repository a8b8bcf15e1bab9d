//! `subscriptions/listen` (2026-07-28): which announcements a stream agreed to carry, and the
//! messages that travel on it. The stream itself belongs to the transport.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::model::{Listen, Method};
use super::modern::SUBSCRIPTION_ID_KEY;
use super::resources::{scopes_for, valid_uri};
use super::result::Reply;
use super::{Call, Era, McpError, Server};
use crate::changes::Change;
use crate::jsonrpc::{Id, Notification, Response};

/// Most resource URIs one stream may subscribe to.
pub const MAX_SUBSCRIBED_URIS: usize = 100;

/// The subset of the requested notifications the server agreed to send on one stream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filter {
    pub tools: bool,
    pub prompts: bool,
    pub resources: bool,
    /// Resources whose updates the stream carries: known URIs the caller may read.
    pub uris: Vec<String>,
    /// Tasks whose status the stream carries (`notifications/tasks`): asked for, not yet
    /// checked (the stream checks each is the caller's before it acknowledges).
    pub tasks: Vec<String>,
}

/// Reads the requested filter and narrows it to what this server has and the caller may see:
/// list kinds nothing is registered for, unknown resources and resources the caller's scopes
/// do not reach are left out (the acknowledgement says what remains).
pub fn agree(server: &Server, params: &Listen, call: &Call) -> Result<Filter, McpError> {
    let caller = &call.caller;
    let asked = &params.notifications;
    let registry = &server.registry;
    let mut filter = Filter {
        tools: asked.tools_list_changed == Some(true) && !registry.tools.is_empty(),
        prompts: asked.prompts_list_changed == Some(true) && !registry.prompts.is_empty(),
        resources: asked.resources_list_changed == Some(true)
            && !(registry.resources.is_empty() && registry.templates.is_empty()),
        uris: Vec::new(),
        tasks: Vec::new(),
    };
    let uris = asked.resource_subscriptions.as_deref().unwrap_or_default();
    if uris.len() > MAX_SUBSCRIBED_URIS {
        return Err(McpError::InvalidParams(format!(
            "notifications.resourceSubscriptions must be an array of at most {MAX_SUBSCRIBED_URIS} URIs"
        )));
    }
    for uri in uris {
        valid_uri(uri)?;
        let readable =
            scopes_for(server, uri).is_some_and(|scopes| caller.missing_scopes(scopes).is_empty());
        if readable && !filter.uris.contains(uri) {
            filter.uris.push(uri.clone());
        }
    }
    let tasks = asked.task_ids.as_deref().unwrap_or_default();
    if !tasks.is_empty() && !super::tasks::declared(call) {
        return Err(McpError::MissingExtension(crate::tasks::EXTENSION));
    }
    if tasks.len() > MAX_SUBSCRIBED_URIS {
        return Err(McpError::InvalidParams(format!(
            "notifications.taskIds must be an array of at most {MAX_SUBSCRIBED_URIS} task ids"
        )));
    }
    for id in tasks {
        if crate::tasks::Tasks::plausible_id(id) && !filter.tasks.contains(id) {
            filter.tasks.push(id.clone());
        }
    }
    Ok(filter)
}

impl Filter {
    pub fn to_json(&self) -> Value {
        let mut v = Map::new();
        for (name, on) in [
            ("toolsListChanged", self.tools),
            ("promptsListChanged", self.prompts),
            ("resourcesListChanged", self.resources),
        ] {
            if on {
                v.insert(name.into(), json!(true));
            }
        }
        if !self.uris.is_empty() {
            v.insert("resourceSubscriptions".into(), json!(self.uris));
        }
        if !self.tasks.is_empty() {
            v.insert("taskIds".into(), json!(self.tasks));
        }
        Value::Object(v)
    }

    pub fn wants(&self, change: &Change) -> bool {
        match change {
            Change::ToolsListChanged => self.tools,
            Change::PromptsListChanged => self.prompts,
            Change::ResourcesListChanged => self.resources,
            Change::ResourceUpdated(uri) => self.uris.contains(uri),
        }
    }

    /// What a stream that fell behind is told: every list it follows changed, every resource it
    /// follows was updated (the client re-reads; nothing is silently lost).
    pub fn everything(&self) -> Vec<Change> {
        let mut all = Vec::new();
        if self.tools {
            all.push(Change::ToolsListChanged);
        }
        if self.prompts {
            all.push(Change::PromptsListChanged);
        }
        if self.resources {
            all.push(Change::ResourcesListChanged);
        }
        all.extend(self.uris.iter().cloned().map(Change::ResourceUpdated));
        all
    }
}

fn tagged(id: &Id, mut params: Map<String, Value>) -> Value {
    params.insert("_meta".into(), json!({ SUBSCRIPTION_ID_KEY: id }));
    Value::Object(params)
}

/// The first message of every stream: what it will carry.
pub fn acknowledged(id: &Id, filter: &Filter) -> String {
    let mut params = Map::new();
    params.insert("notifications".into(), filter.to_json());
    let n = Notification::new(
        "notifications/subscriptions/acknowledged",
        tagged(id, params),
    );
    serde_json::to_string(&n).expect("notifications serialize")
}

/// One announcement, tagged with the stream's subscription id.
pub fn announcement(id: &Id, change: &Change) -> String {
    let mut params = Map::new();
    if let Change::ResourceUpdated(uri) = change {
        params.insert("uri".into(), json!(uri));
    }
    let n = Notification::new(change.method(), tagged(id, params));
    serde_json::to_string(&n).expect("notifications serialize")
}

/// A task's status (`notifications/tasks`): the task as `tasks/get` would show it.
pub fn task_status(id: &Id, view: &super::result::TaskView) -> String {
    let params = match serde_json::to_value(view) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let n = Notification::new("notifications/tasks", tagged(id, params));
    serde_json::to_string(&n).expect("notifications serialize")
}

/// The listen request's result: sent only when the server ends the stream (shutdown, size).
pub fn closed(server: &Server, id: &Id) -> String {
    let mut answer = server.answer(Method::Listen, Era::Modern, Reply::EMPTY);
    if let Some(modern) = &mut answer.modern {
        modern.meta.subscription_id = Some(id.clone());
    }
    Response::success(id.clone(), Arc::new(answer)).to_json()
}
