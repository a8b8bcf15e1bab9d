//! `resources/list`, `resources/templates/list`, `resources/read`, `resources/subscribe` and
//! `resources/unsubscribe`.

use std::time::Instant;

use serde_json::{Map, Value};

use super::asking::{Asking, Ending};
use super::model::{Paginated, ReadResource, Subscribe};
use super::result::{ListedResource, ReadResourceResult, Reply, ResourceId};
use super::{Call, McpError, Server, require_scopes};
use crate::auth::Caller;
use crate::context::ToolContext;
use crate::resource::{ResourceDef, ResourceTemplateDef, match_template};

pub fn list(server: &Server, p: &Paginated, call: &Call) -> Result<Reply, McpError> {
    /// A registered resource, or an MCP Apps view (for a client that renders them).
    enum Entry {
        Def(&'static ResourceDef),
        View(&'static crate::views::View),
    }
    let entry = |e: &Entry| match e {
        Entry::Def(r) => ListedResource {
            id: ResourceId::Uri(r.uri),
            name: r.name,
            title: r.title,
            description: r.description,
            mime_type: r.mime_type,
            meta: None,
        },
        Entry::View(v) => super::views::listed(v),
    };
    let scopes = |e: &Entry| match e {
        Entry::Def(r) => r.scopes,
        Entry::View(v) => v.scopes,
    };
    let mut all: Vec<Entry> = server
        .registry
        .resources
        .iter()
        .map(|r| Entry::Def(r))
        .collect();
    if super::views::declared(call) {
        all.extend(server.registry.views.iter().map(|v| Entry::View(v)));
    }
    let page = server.visible_page("resources", &all, scopes, entry, p, &call.caller);
    page.map(Reply::Resources)
}

pub fn list_templates(server: &Server, p: &Paginated, caller: &Caller) -> Result<Reply, McpError> {
    let entry = |t: &&ResourceTemplateDef| ListedResource {
        id: ResourceId::Template(t.uri_template),
        name: t.name,
        title: t.title,
        description: t.description,
        mime_type: t.mime_type,
        meta: None,
    };
    let templates = &server.registry.templates;
    let page = server.visible_page(
        "resourceTemplates",
        templates,
        |t| t.scopes,
        entry,
        p,
        caller,
    );
    page.map(Reply::ResourceTemplates)
}

pub fn valid_uri(uri: &str) -> Result<(), McpError> {
    if uri.is_empty() || uri.len() > 2048 || url::Url::parse(uri).is_err() {
        return Err(McpError::InvalidParams(
            "uri must be an absolute URI".into(),
        ));
    }
    Ok(())
}

pub async fn read(
    server: &Server,
    p: &ReadResource,
    call: &Call,
    deadline: Instant,
) -> Result<Reply, McpError> {
    let uri = p.uri.as_str();
    valid_uri(uri)?;
    let caller = &call.caller;
    // The reader, before anything runs: scopes checked, template variables matched.
    enum Reader {
        Direct(&'static crate::resource::ResourceDef),
        Template(
            &'static crate::resource::ResourceTemplateDef,
            Map<String, Value>,
        ),
    }
    // An MCP Apps view: its page, for whoever may call its tool.
    if let Some(view) = server.registry.view(uri) {
        require_scopes(caller, view.scopes)?;
        let contents = vec![super::views::contents(view)];
        return Ok(Reply::ReadResource(ReadResourceResult { contents }));
    }
    let reader = if let Some(r) = server.registry.resources.iter().find(|r| r.uri == uri) {
        require_scopes(caller, r.scopes)?;
        Reader::Direct(r)
    } else if let Some((t, vars)) = server
        .registry
        .templates
        .iter()
        .find_map(|t| match_template(t.uri_template, uri).map(|v| (*t, v)))
    {
        require_scopes(caller, t.scopes)?;
        Reader::Template(t, vars)
    } else {
        return Err(McpError::ResourceNotFound(uri.to_string()));
    };
    let asks = match &reader {
        Reader::Direct(r) => r.asks,
        Reader::Template(t, _) => t.asks,
    };
    let asking = Asking::prepare(
        server,
        call,
        p.round(),
        "resources/read",
        uri,
        &Value::Null,
        asks,
    )?;
    let ctx = ToolContext::new(caller.clone(), server.notifier(call, &p.meta))
        .with_changes(server.changes.clone())
        .with_asker(asking.asker.clone());
    let start = || match reader {
        Reader::Direct(r) => (r.read)(ctx),
        Reader::Template(t, vars) => (t.read)(ctx, uri.to_string(), vars),
    };
    match asking.run(start, deadline).await {
        Ending::Done(Ok(contents)) => Ok(Reply::ReadResource(ReadResourceResult { contents })),
        Ending::Done(Err(msg)) => {
            log::warn!("resource {uri} could not be read: {msg}");
            Err(McpError::ResourceNotFound(uri.to_string()))
        }
        Ending::Interrupted(why) => asking.interrupted(server, why),
        Ending::Panicked | Ending::TimedOut => {
            log::error!("resource reader for {uri} panicked or timed out");
            Err(McpError::Internal)
        }
    }
}

/// The scopes a known resource (or a URI its template matches) needs; `None` for unknown URIs.
pub fn scopes_for<'a>(server: &'a Server, uri: &str) -> Option<&'a [&'static str]> {
    if let Some(r) = server.registry.resources.iter().find(|r| r.uri == uri) {
        return Some(r.scopes);
    }
    server
        .registry
        .templates
        .iter()
        .find(|t| match_template(t.uri_template, uri).is_some())
        .map(|t| t.scopes)
}

/// 2025 revisions: subscriptions are acknowledged for known resources. Those clients have no
/// stream to receive `notifications/resources/updated` on (no sessions), so none are sent to
/// them; 2026-07-28 clients subscribe on `subscriptions/listen` instead.
pub fn subscribe(server: &Server, p: &Subscribe, caller: &Caller) -> Result<Reply, McpError> {
    let uri = p.uri.as_str();
    valid_uri(uri)?;
    let scopes =
        scopes_for(server, uri).ok_or_else(|| McpError::ResourceNotFound(uri.to_string()))?;
    require_scopes(caller, scopes)?;
    Ok(Reply::EMPTY)
}
