//! `initialize`: version negotiation, server info, instructions, capabilities.

use serde_json::{Value, json};

use super::model::Initialize;
use super::{Era, McpError, SUPPORTED_VERSIONS, Server};

pub fn initialize(server: &Server, p: &Initialize) -> Result<Value, McpError> {
    let requested = p.protocol_version.as_str();
    // The requested revision if we speak it, else our latest; the client decides whether it can
    // continue.
    let version = SUPPORTED_VERSIONS
        .iter()
        .find(|v| **v == requested)
        .copied()
        .unwrap_or(super::LATEST_VERSION);
    let mut result = json!({
        "protocolVersion": version,
        "capabilities": server.capabilities(Era::Legacy(version)),
        "serverInfo": server.server_info(),
    });
    if let Some(i) = &server.settings.instructions {
        result["instructions"] = json!(i);
    }
    Ok(result)
}
