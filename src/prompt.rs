//! The prompt-author API: prompts with declared arguments, registered at link time like tools.

use serde::Serialize;
use serde_json::Map;

use crate::context::{BoxFuture, Content, ToolContext};

/// A declared prompt argument.
#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct PromptArg {
    pub name: &'static str,
    pub description: &'static str,
    pub required: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

/// One message of a prompt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PromptMessage {
    pub role: Role,
    pub content: Content,
}

/// What `prompts/get` returns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PromptResult {
    pub description: Option<String>,
    pub messages: Vec<PromptMessage>,
}

/// Builds a prompt's messages from its (string) arguments; `Err` is a message for the client.
pub type PromptHandler =
    fn(ToolContext, Map<String, serde_json::Value>) -> BoxFuture<Result<PromptResult, String>>;

/// A prompt registration.
pub struct PromptDef {
    pub name: &'static str,
    pub title: Option<&'static str>,
    pub description: &'static str,
    pub arguments: &'static [PromptArg],
    pub scopes: &'static [&'static str],
    /// Gets the arguments (all required ones present, all strings).
    pub get: PromptHandler,
    /// Completion values for an argument, given its partial value.
    pub complete: Option<fn(&str, &str) -> Vec<String>>,
    /// The handler may ask the client (see `Tool::asks`).
    pub asks: bool,
}

inventory::collect!(PromptDef);

#[macro_export]
macro_rules! register_prompt {
    ($def:expr) => {
        ::inventory::submit! { $def }
    };
}
