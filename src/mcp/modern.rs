//! The rules of the 2026-07-28 revision that are not one method: which era a message belongs
//! to, the per-request `_meta` envelope, `server/discover`, and what every result carries
//! (`resultType`, server info, caching hints).

use serde_json::{Map, Value};

use super::model::Method;
use super::result::{CacheScope, DiscoverResult, ModernMembers, Reply, ResultMeta, ResultType};
use super::{ALL_VERSIONS, DEFAULT_VERSION, Era, McpError, Server};
use crate::context::LogLevel;
use crate::registry::Registry;

pub const PROTOCOL_VERSION_KEY: &str = "io.modelcontextprotocol/protocolVersion";
pub const CLIENT_CAPABILITIES_KEY: &str = "io.modelcontextprotocol/clientCapabilities";
pub const LOG_LEVEL_KEY: &str = "io.modelcontextprotocol/logLevel";
pub const SUBSCRIPTION_ID_KEY: &str = "io.modelcontextprotocol/subscriptionId";

/// The request's `MCP-Protocol-Version` header as the era decision reads it: absent, one
/// value (`\u{fffd}` when it is not text), or repeated (which no revision allows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionHeader<'a> {
    One(Option<&'a str>),
    Repeated,
}

impl<'a> VersionHeader<'a> {
    /// Reads every value of the header.
    pub fn read(mut values: impl Iterator<Item = &'a [u8]>) -> VersionHeader<'a> {
        match (values.next(), values.next()) {
            (None, _) => VersionHeader::One(None),
            (Some(v), None) => {
                VersionHeader::One(Some(std::str::from_utf8(v).unwrap_or("\u{fffd}")))
            }
            (Some(_), Some(_)) => VersionHeader::Repeated,
        }
    }

    /// The era of a message with this header and `meta`: a repeated header is refused, with
    /// -32020 when the body claims 2026-07-28 and -32600 otherwise (400 either way).
    pub fn classify(self, meta: Option<&Map<String, Value>>) -> Result<Era, McpError> {
        match self {
            VersionHeader::One(header) => classify(header, meta),
            VersionHeader::Repeated => {
                const WHY: &str = "the MCP-Protocol-Version header must appear once";
                let claim = meta.and_then(|m| m.get(PROTOCOL_VERSION_KEY));
                Err(
                    match claim.and_then(Value::as_str).and_then(Era::from_version) {
                        Some(Era::Modern) => McpError::HeaderMismatch(WHY.into()),
                        _ => McpError::InvalidRequest(format!("Invalid Request: {WHY}")),
                    },
                )
            }
        }
    }
}

/// Decides the era of one message from its params' `_meta` object. The body decides (a `_meta`
/// naming a protocol version claims that revision); the `MCP-Protocol-Version` header must
/// agree with it, and decides alone when the body makes no claim (absent header: 2025-03-26, as
/// the 2025 revisions say).
pub fn classify(header: Option<&str>, meta: Option<&Map<String, Value>>) -> Result<Era, McpError> {
    let header = header.map(str::trim);
    let claim = meta.and_then(|m| m.get(PROTOCOL_VERSION_KEY));
    match claim {
        None => match header {
            None => Ok(Era::Legacy(DEFAULT_VERSION)),
            Some(h) => Era::from_version(h).ok_or_else(|| McpError::UnsupportedVersion(h.into())),
        },
        Some(Value::String(claimed)) => {
            if let Some(h) = header
                && h != claimed
            {
                return Err(McpError::HeaderMismatch(format!(
                    "the MCP-Protocol-Version header ({}) does not match _meta {PROTOCOL_VERSION_KEY} ({})",
                    shown(h),
                    shown(claimed)
                )));
            }
            match Era::from_version(claimed) {
                None => Err(McpError::UnsupportedVersion(claimed.clone())),
                Some(Era::Modern) if header.is_none() => Err(McpError::HeaderMismatch(
                    "the MCP-Protocol-Version header is required".into(),
                )),
                Some(era) => Ok(era),
            }
        }
        Some(_) => Err(McpError::InvalidEnvelope(format!(
            "_meta {PROTOCOL_VERSION_KEY} must be a string"
        ))),
    }
}

/// Client-supplied text for an error message: printable, at most 64 characters.
fn shown(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(64).collect()
}

/// The validated `_meta` of a 2026-07-28 request: what the client declares for this request
/// alone (nothing carries over between requests).
#[derive(Debug, Clone, PartialEq)]
pub struct RequestMeta {
    pub capabilities: Map<String, Value>,
    /// `None`: the client asked for no log messages.
    pub log_level: Option<LogLevel>,
}

impl RequestMeta {
    /// Checks a request's `_meta` object.
    pub fn from_meta(meta: Option<&Map<String, Value>>) -> Result<RequestMeta, McpError> {
        let required = || {
            McpError::InvalidEnvelope(format!(
                "protocol revision 2026-07-28 requires params._meta with {PROTOCOL_VERSION_KEY} and {CLIENT_CAPABILITIES_KEY}"
            ))
        };
        let meta = meta.ok_or_else(required)?;
        if !meta.get(PROTOCOL_VERSION_KEY).is_some_and(Value::is_string) {
            return Err(required());
        }
        let capabilities = match meta.get(CLIENT_CAPABILITIES_KEY) {
            Some(Value::Object(c)) => c.clone(),
            Some(_) => {
                return Err(McpError::InvalidEnvelope(format!(
                    "_meta {CLIENT_CAPABILITIES_KEY} must be an object"
                )));
            }
            None => return Err(required()),
        };
        let log_level = match meta.get(LOG_LEVEL_KEY) {
            None => None,
            Some(v) => Some(v.as_str().and_then(LogLevel::parse).ok_or_else(|| {
                McpError::InvalidEnvelope(format!(
                    "_meta {LOG_LEVEL_KEY} must be one of debug, info, notice, warning, error, critical, alert, emergency"
                ))
            })?),
        };
        Ok(RequestMeta {
            capabilities,
            log_level,
        })
    }

    /// What the client declares for the extension `id` (`extensions.<id>`), when it does.
    pub fn extension(&self, id: &str) -> Option<&Value> {
        self.capabilities.get("extensions")?.get(id)
    }

    /// `Err(-32021)` naming `needed` when any of it is undeclared.
    pub fn require(&self, needed: &[&str]) -> Result<(), McpError> {
        if needed.iter().all(|c| self.capabilities.contains_key(*c)) {
            return Ok(());
        }
        Err(McpError::MissingCapabilities(
            needed.iter().map(|c| c.to_string()).collect(),
        ))
    }
}

/// The request member `Mcp-Name` mirrors, for the methods that have one.
pub fn name_member(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        // The tasks extension routes its methods by task.
        "tasks/get" | "tasks/update" | "tasks/cancel" => Some("taskId"),
        _ => None,
    }
}

/// Which listings are the same for every caller: no registered item of that kind is filtered
/// by scope. Only those may be cached across authorization contexts (`cacheScope: "public"`).
#[derive(Debug, Clone, Copy)]
pub struct PublicListings {
    tools: bool,
    prompts: bool,
    resources: bool,
    templates: bool,
}

impl PublicListings {
    pub fn of(registry: &Registry, filter_tools_by_scope: bool) -> PublicListings {
        PublicListings {
            tools: !filter_tools_by_scope
                || registry.tools.iter().all(|t| t.def.tool.scopes.is_empty()),
            prompts: registry.prompts.iter().all(|p| p.scopes.is_empty()),
            resources: registry.resources.iter().all(|r| r.scopes.is_empty()),
            templates: registry.templates.iter().all(|t| t.scopes.is_empty()),
        }
    }
}

/// `server/discover`: the revisions served, the capabilities, the instructions.
pub fn discover(server: &Server) -> Reply {
    Reply::Discover(DiscoverResult {
        supported_versions: &ALL_VERSIONS,
        capabilities: server.capabilities(Era::Modern),
        ttl_ms: server.settings.list_ttl_ms,
        // The same answer for every caller.
        cache_scope: CacheScope::Public,
        instructions: server.settings.instructions.clone(),
    })
}

/// What every 2026-07-28 result carries: `resultType`, the server's identity in `_meta`, and
/// the caching hints of the cacheable methods.
pub fn members(server: &Server, method: Method, result_type: ResultType) -> ModernMembers {
    let p = server.public;
    let hints = match method {
        Method::ToolsList => Some((server.settings.list_ttl_ms, p.tools)),
        Method::PromptsList => Some((server.settings.list_ttl_ms, p.prompts)),
        Method::ResourcesList => Some((server.settings.list_ttl_ms, p.resources)),
        Method::ResourceTemplatesList => Some((server.settings.list_ttl_ms, p.templates)),
        // A read runs the resource's handler, which may answer each caller differently.
        Method::ResourcesRead => Some((server.settings.read_ttl_ms, false)),
        _ => None,
    };
    ModernMembers {
        result_type,
        meta: ResultMeta {
            subscription_id: None,
            server_info: server.server_info(),
        },
        ttl_ms: hints.map(|(ttl, _)| ttl),
        cache_scope: hints.map(|(_, public)| {
            if public {
                CacheScope::Public
            } else {
                CacheScope::Private
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The `_meta` object of these params.
    fn params(v: Value) -> Option<Map<String, Value>> {
        v.get("_meta").and_then(Value::as_object).cloned()
    }

    #[test]
    fn the_body_claims_the_era_and_the_header_must_agree() {
        let modern = params(json!({"_meta": {PROTOCOL_VERSION_KEY: "2026-07-28"}}));
        assert_eq!(
            classify(Some(" 2026-07-28 "), modern.as_ref()),
            Ok(Era::Modern)
        );
        assert!(matches!(
            classify(Some("2025-11-25"), modern.as_ref()),
            Err(McpError::HeaderMismatch(_))
        ));
        assert!(matches!(
            classify(None, modern.as_ref()),
            Err(McpError::HeaderMismatch(_))
        ));
        let odd = params(json!({"_meta": {PROTOCOL_VERSION_KEY: "v999.0.0"}}));
        assert_eq!(
            classify(Some("v999.0.0"), odd.as_ref()),
            Err(McpError::UnsupportedVersion("v999.0.0".into()))
        );
        assert!(matches!(
            classify(Some("2026-07-28"), odd.as_ref()),
            Err(McpError::HeaderMismatch(_))
        ));
    }

    #[test]
    fn without_a_claim_the_header_decides() {
        assert_eq!(classify(None, None), Ok(Era::Legacy("2025-03-26")));
        assert_eq!(
            classify(Some("2025-06-18"), None),
            Ok(Era::Legacy("2025-06-18"))
        );
        assert_eq!(classify(Some("2026-07-28"), None), Ok(Era::Modern));
        assert_eq!(
            classify(Some("2024-11-05"), None),
            Err(McpError::UnsupportedVersion("2024-11-05".into()))
        );
    }

    #[test]
    fn the_envelope_needs_version_and_capabilities() {
        let ok = params(json!({"_meta": {
            PROTOCOL_VERSION_KEY: "2026-07-28",
            CLIENT_CAPABILITIES_KEY: {"sampling": {}},
            LOG_LEVEL_KEY: "warning"
        }}));
        let meta = RequestMeta::from_meta(ok.as_ref()).unwrap();
        assert_eq!(meta.log_level, Some(LogLevel::Warning));
        assert!(meta.require(&["sampling"]).is_ok());
        assert_eq!(
            meta.require(&["elicitation"]),
            Err(McpError::MissingCapabilities(vec!["elicitation".into()]))
        );
        for bad in [
            json!({}),
            json!({"_meta": {CLIENT_CAPABILITIES_KEY: {}}}),
            json!({"_meta": {PROTOCOL_VERSION_KEY: "2026-07-28"}}),
            json!({"_meta": {PROTOCOL_VERSION_KEY: "2026-07-28", CLIENT_CAPABILITIES_KEY: []}}),
            json!({"_meta": {PROTOCOL_VERSION_KEY: "2026-07-28", CLIENT_CAPABILITIES_KEY: {}, LOG_LEVEL_KEY: "loud"}}),
        ] {
            assert!(matches!(
                RequestMeta::from_meta(params(bad).as_ref()),
                Err(McpError::InvalidEnvelope(_))
            ));
        }
    }
}
