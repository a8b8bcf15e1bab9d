//! `initialize`: version negotiation, server info, instructions, capabilities.

use serde_json::{Map, Value, json};

use super::{McpError, SUPPORTED_VERSIONS, Server, string_param};

pub fn initialize(server: &Server, p: &Map<String, Value>) -> Result<Value, McpError> {
    let requested = string_param(p, "protocolVersion")?;
    // The requested revision if we speak it, else our latest; the client decides whether it can
    // continue.
    let version = SUPPORTED_VERSIONS
        .iter()
        .find(|v| **v == requested)
        .copied()
        .unwrap_or(super::LATEST_VERSION);
    let s = &server.settings;
    let mut info = json!({
        "name": s.server_name,
        "version": env!("CARGO_PKG_VERSION"),
    });
    if !s.server_title.is_empty() {
        info["title"] = json!(s.server_title);
    }
    let mut result = json!({
        "protocolVersion": version,
        "capabilities": server.capabilities(),
        "serverInfo": info,
    });
    if let Some(i) = &s.instructions {
        result["instructions"] = json!(i);
    }
    Ok(result)
}
