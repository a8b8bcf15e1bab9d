//! `resources/list`, `resources/templates/list`, `resources/read`, `resources/subscribe` and
//! `resources/unsubscribe`.

use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use serde_json::{Map, Value, json};

use super::{McpError, Server, paginate, string_param};
use crate::auth::Caller;
use crate::resource::match_template;
use crate::tool::{Notifier, ToolContext};

fn check_scopes(caller: &Caller, scopes: &[&str]) -> Result<(), McpError> {
    if caller.missing_scopes(scopes).is_empty() {
        Ok(())
    } else {
        Err(McpError::InsufficientScope(
            scopes.iter().map(|s| s.to_string()).collect(),
        ))
    }
}

pub fn list(server: &Server, p: &Map<String, Value>, caller: &Caller) -> Result<Value, McpError> {
    let items: Vec<Value> = server
        .registry
        .resources
        .iter()
        .filter(|r| caller.missing_scopes(r.scopes).is_empty())
        .map(|r| {
            let mut v = json!({"uri": r.uri, "name": r.name, "description": r.description});
            if let Some(t) = r.title {
                v["title"] = json!(t);
            }
            if let Some(m) = r.mime_type {
                v["mimeType"] = json!(m);
            }
            v
        })
        .collect();
    let (page, next) = paginate(&items, p, server.settings.page_size)?;
    let mut result = json!({"resources": page});
    if let Some(n) = next {
        result["nextCursor"] = json!(n);
    }
    Ok(result)
}

pub fn list_templates(
    server: &Server,
    p: &Map<String, Value>,
    caller: &Caller,
) -> Result<Value, McpError> {
    let items: Vec<Value> = server
        .registry
        .templates
        .iter()
        .filter(|r| caller.missing_scopes(r.scopes).is_empty())
        .map(|r| {
            let mut v = json!({"uriTemplate": r.uri_template, "name": r.name, "description": r.description});
            if let Some(t) = r.title {
                v["title"] = json!(t);
            }
            if let Some(m) = r.mime_type {
                v["mimeType"] = json!(m);
            }
            v
        })
        .collect();
    let (page, next) = paginate(&items, p, server.settings.page_size)?;
    let mut result = json!({"resourceTemplates": page});
    if let Some(n) = next {
        result["nextCursor"] = json!(n);
    }
    Ok(result)
}

fn valid_uri(uri: &str) -> Result<(), McpError> {
    if uri.is_empty() || uri.len() > 2048 || url::Url::parse(uri).is_err() {
        return Err(McpError::InvalidParams(
            "uri must be an absolute URI".into(),
        ));
    }
    Ok(())
}

pub async fn read(
    server: &Server,
    p: &Map<String, Value>,
    caller: Caller,
    notifier: Notifier,
) -> Result<Value, McpError> {
    let uri = string_param(p, "uri")?;
    valid_uri(uri)?;
    let ctx = ToolContext::new(caller.clone(), notifier);
    let fut = if let Some(r) = server.registry.resources.iter().find(|r| r.uri == uri) {
        check_scopes(&caller, r.scopes)?;
        (r.read)(ctx)
    } else if let Some((t, vars)) = server
        .registry
        .templates
        .iter()
        .find_map(|t| match_template(t.uri_template, uri).map(|v| (t, v)))
    {
        check_scopes(&caller, t.scopes)?;
        (t.read)(ctx, uri.to_string(), vars)
    } else {
        return Err(McpError::ResourceNotFound(uri.to_string()));
    };
    let guarded = AssertUnwindSafe(fut).catch_unwind();
    match tokio::time::timeout(server.settings.tool_timeout, guarded).await {
        Ok(Ok(Ok(contents))) => Ok(json!({"contents": contents})),
        Ok(Ok(Err(msg))) => {
            log::warn!("resource {uri} could not be read: {msg}");
            Err(McpError::ResourceNotFound(uri.to_string()))
        }
        Ok(Err(_)) => {
            log::error!("resource reader for {uri} panicked");
            Err(McpError::Internal)
        }
        Err(_) => {
            log::error!("resource reader for {uri} timed out");
            Err(McpError::Internal)
        }
    }
}

/// Subscriptions are acknowledged for known resources. A stateless server has no stream to
/// deliver `notifications/resources/updated` on, so none are sent.
pub fn subscribe(
    server: &Server,
    p: &Map<String, Value>,
    caller: &Caller,
) -> Result<Value, McpError> {
    let uri = string_param(p, "uri")?;
    valid_uri(uri)?;
    if let Some(r) = server.registry.resources.iter().find(|r| r.uri == uri) {
        check_scopes(caller, r.scopes)?;
    } else if let Some(t) = server
        .registry
        .templates
        .iter()
        .find(|t| match_template(t.uri_template, uri).is_some())
    {
        check_scopes(caller, t.scopes)?;
    } else {
        return Err(McpError::ResourceNotFound(uri.to_string()));
    }
    Ok(json!({}))
}
