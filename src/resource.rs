//! The resource-author API: direct resources (one URI) and resource templates (RFC 6570 level-1
//! `{var}` templates), registered at link time like tools.

use serde_json::Map;

use crate::context::{BoxFuture, ResourceContents, ToolContext};

/// A resource read failure; reported as a JSON-RPC error.
pub type ReadResult = Result<Vec<ResourceContents>, String>;

/// A resource with a fixed URI.
pub struct ResourceDef {
    pub uri: &'static str,
    pub name: &'static str,
    pub title: Option<&'static str>,
    pub description: &'static str,
    pub mime_type: Option<&'static str>,
    /// Scopes the caller needs to list or read it.
    pub scopes: &'static [&'static str],
    pub read: fn(ToolContext) -> BoxFuture<ReadResult>,
    /// The reader may ask the client (see `Tool::asks`).
    pub asks: bool,
}

inventory::collect!(ResourceDef);

/// A family of resources addressed by a URI template such as `test://template/{id}/data`.
pub struct ResourceTemplateDef {
    pub uri_template: &'static str,
    pub name: &'static str,
    pub title: Option<&'static str>,
    pub description: &'static str,
    pub mime_type: Option<&'static str>,
    pub scopes: &'static [&'static str],
    /// Gets the URI and the template variables it matched.
    pub read: fn(ToolContext, String, Map<String, serde_json::Value>) -> BoxFuture<ReadResult>,
    /// Completion values for a variable, given its partial value.
    pub complete: Option<fn(&str, &str) -> Vec<String>>,
    /// The reader may ask the client (see `Tool::asks`).
    pub asks: bool,
}

inventory::collect!(ResourceTemplateDef);

#[macro_export]
macro_rules! register_resource {
    ($def:expr) => {
        ::inventory::submit! { $def }
    };
}

#[macro_export]
macro_rules! register_resource_template {
    ($def:expr) => {
        ::inventory::submit! { $def }
    };
}

/// Matches `uri` against a level-1 template; returns the variables or `None`. A variable matches
/// one or more characters other than `/`, `?` and `#`.
pub fn match_template(template: &str, uri: &str) -> Option<Map<String, serde_json::Value>> {
    let mut vars = Map::new();
    let mut rest_t = template;
    let mut rest_u = uri;
    while !rest_t.is_empty() {
        if let Some(after_brace) = rest_t.strip_prefix('{') {
            let end = after_brace.find('}')?;
            let name = &after_brace[..end];
            rest_t = &after_brace[end + 1..];
            // The variable runs up to the next literal of the template (or the end).
            let next_lit_end = rest_t.find('{').unwrap_or(rest_t.len());
            let lit = &rest_t[..next_lit_end];
            let stop = rest_u.find(['/', '?', '#']).unwrap_or(rest_u.len());
            let value_end = if lit.is_empty() {
                stop
            } else {
                let pos = rest_u.find(lit)?;
                if pos > stop {
                    return None;
                }
                pos
            };
            if value_end == 0 {
                return None;
            }
            vars.insert(name.to_string(), rest_u[..value_end].into());
            rest_u = &rest_u[value_end..];
        } else {
            let lit_end = rest_t.find('{').unwrap_or(rest_t.len());
            let lit = &rest_t[..lit_end];
            rest_u = rest_u.strip_prefix(lit)?;
            rest_t = &rest_t[lit_end..];
        }
    }
    rest_u.is_empty().then_some(vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_segments_only() {
        let v = match_template("test://template/{id}/data", "test://template/123/data").unwrap();
        assert_eq!(v["id"], "123");
        assert!(match_template("test://template/{id}/data", "test://template//data").is_none());
        assert!(match_template("test://template/{id}/data", "test://template/1/2/data").is_none());
        assert!(match_template("test://template/{id}/data", "test://template/1/datax").is_none());
        assert!(match_template("a/{x}", "a/b").is_some());
    }
}
