//! MCP Apps (`io.modelcontextprotocol/ui`): what a view is (the page `build.rs` embedded from
//! `tools/<name>.html`, served as a `ui://` resource), its `_meta.ui` (security, permissions,
//! presentation) and the extension's names. `registry` attaches views to their tools.

use serde_json::{Map, Value, json};

use crate::tool::ViewSettings;

/// The extension's identifier, as clients and servers declare it in `capabilities.extensions`.
pub const EXTENSION: &str = "io.modelcontextprotocol/ui";
/// The MIME type of a view (an HTML page for an MCP Apps host).
pub const MIME_TYPE: &str = "text/html;profile=mcp-app";

/// A checked view.
#[derive(Debug)]
pub struct View {
    /// `ui://<file>/view.html`.
    pub uri: &'static str,
    /// Its resource name: the file's.
    pub name: &'static str,
    pub html: &'static str,
    /// The resource's `_meta`: `{"ui": {csp, permissions, domain, prefersBorder}}`.
    pub meta: Value,
    /// The scopes of the tool it belongs to (the one named like the file, else the first of the
    /// file's tools): the view is listed and read only for callers who may call it.
    pub scopes: &'static [&'static str],
}

/// An origin a view may name: `https://host[:port]` (a `*.` subdomain wildcard allowed), or
/// `http://localhost[:port]` and `http://127.0.0.1[:port]` for development; `wss://` too.
fn valid_origin(o: &str) -> bool {
    let Some((scheme, rest)) = o.split_once("://") else {
        return false;
    };
    let host = rest.split(':').next().unwrap_or("");
    let local = matches!(host, "localhost" | "127.0.0.1");
    let host_ok = !host.is_empty()
        && host
            .trim_start_matches("*.")
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    !rest.contains('/')
        && host_ok
        && match scheme {
            "https" | "wss" => true,
            "http" | "ws" => local,
            _ => false,
        }
}

/// The resource's `_meta.ui` for `settings`; an entry that is not an origin says which.
pub fn ui_meta(settings: &ViewSettings) -> Result<Value, String> {
    let mut csp = Map::new();
    for (key, list) in [
        ("connectDomains", settings.connect_domains),
        ("resourceDomains", settings.resource_domains),
        ("frameDomains", settings.frame_domains),
        ("baseUriDomains", settings.base_uri_domains),
    ] {
        if let Some(bad) = list.iter().find(|o| !valid_origin(o)) {
            return Err(format!(
                "view {key}: {bad:?} is not an origin (https://host, https://*.host; http only for localhost)"
            ));
        }
        if !list.is_empty() {
            csp.insert(key.into(), json!(list));
        }
    }
    let mut ui = Map::new();
    ui.insert("csp".into(), Value::Object(csp));
    if !settings.permissions.is_empty() {
        let permissions: Map<String, Value> = settings
            .permissions
            .iter()
            .map(|p| (p.name().to_string(), json!({})))
            .collect();
        ui.insert("permissions".into(), Value::Object(permissions));
    }
    if let Some(d) = settings.domain {
        ui.insert("domain".into(), json!(d));
    }
    if let Some(b) = settings.prefers_border {
        ui.insert("prefersBorder".into(), json!(b));
    }
    Ok(Value::Object(ui))
}

#[cfg(test)]
mod tests {
    use super::valid_origin;

    #[test]
    fn origins_are_schemes_and_hosts_only() {
        for ok in [
            "https://api.example.com",
            "https://*.example.com",
            "https://a.b:8443",
            "wss://live.example.com",
            "http://localhost:3000",
            "http://127.0.0.1",
        ] {
            assert!(valid_origin(ok), "{ok}");
        }
        for bad in [
            "api.example.com",
            "http://api.example.com",
            "https://a.com/path",
            "javascript:alert(1)",
            "https://",
            "https://a b.com",
            "*",
        ] {
            assert!(!valid_origin(bad), "{bad}");
        }
    }
}
