//! `initialize`: version negotiation, server info, instructions, capabilities.

use super::model::Initialize;
use super::result::{InitializeResult, Reply};
use super::{Era, McpError, SUPPORTED_VERSIONS, Server};

pub fn initialize(server: &Server, p: &Initialize) -> Result<Reply, McpError> {
    let requested = p.protocol_version.as_str();
    // The requested revision if we speak it, else our latest; the client decides whether it can
    // continue.
    let version = SUPPORTED_VERSIONS
        .iter()
        .find(|v| **v == requested)
        .copied()
        .unwrap_or(super::LATEST_VERSION);
    Ok(Reply::Initialize(InitializeResult {
        protocol_version: version,
        capabilities: server.capabilities(Era::Legacy(version)),
        server_info: server.server_info(),
        instructions: server.settings.instructions.clone(),
    }))
}
