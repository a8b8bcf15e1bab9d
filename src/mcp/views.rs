//! MCP Apps in the dispatcher: whether a request's client renders views (declared per request
//! in 2026-07-28; assumed in the 2025 revisions, whose capabilities a stateless server never
//! sees again after `initialize`), and the views as resources (listed and read).

use serde_json::Value;

use super::result::{ListedResource, ResourceId};

use super::Call;
use crate::revision::Era;
use crate::views::{EXTENSION, MIME_TYPE, View};

/// Whether the client of `call` renders views: a 2026-07-28 request whose client capabilities
/// declare the extension (with our MIME type, when it lists any); every 2025 request (its
/// `initialize` is not kept, and hosts that do not render views ignore the metadata).
pub fn declared(call: &Call) -> bool {
    if call.era != Era::Modern {
        return true;
    }
    let ext = call.meta.as_ref().and_then(|m| m.extension(EXTENSION));
    ext.is_some_and(|ext| match ext.get("mimeTypes") {
        Some(Value::Array(types)) => types.iter().any(|t| t == MIME_TYPE),
        _ => true,
    })
}

/// The `resources/read` contents of a view: its page, with its `_meta.ui` (which hosts read
/// over the listing's).
pub fn contents(view: &View) -> crate::context::ResourceContents {
    crate::context::ResourceContents::View {
        uri: view.uri.to_string(),
        mime_type: MIME_TYPE,
        text: view.html,
        meta: view.meta.clone(),
    }
}

/// The `resources/list` entry of a view.
pub fn listed(view: &'static View) -> ListedResource {
    ListedResource {
        id: ResourceId::Uri(view.uri),
        name: view.name,
        title: None,
        description: "The view (MCP Apps) of this file's tools",
        mime_type: Some(MIME_TYPE),
        meta: Some(&view.meta),
    }
}
