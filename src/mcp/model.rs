//! The protocol model: every method this server answers as a `Method`, and the params of each
//! as a serde type (`_meta` included), deserialized once, straight from the body's text (the
//! envelope reader leaves `params` as text), before anything reads them: the era and header
//! checks of the transport, then the handler. The dispatcher routes on `Method`. Members the
//! client sends that a type does not name are ignored, as the protocol's forward compatibility
//! requires. The 2026-07-28 envelope in `_meta` is checked by `modern::RequestMeta`; the 2025
//! `_meta.progressToken` and the 2026-07-28 multi-round members (`inputResponses`,
//! `requestState`) are read here.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::McpError;
use crate::jsonrpc::{self, Id};

/// Every request method this server answers, in either era.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Initialize,
    Ping,
    SetLevel,
    ToolsList,
    ToolsCall,
    ResourcesList,
    ResourceTemplatesList,
    ResourcesRead,
    ResourcesSubscribe,
    ResourcesUnsubscribe,
    PromptsList,
    PromptsGet,
    Complete,
    /// 2026-07-28.
    Discover,
    /// 2026-07-28.
    Listen,
}

impl Method {
    pub const ALL: [Method; 15] = [
        Method::Initialize,
        Method::Ping,
        Method::SetLevel,
        Method::ToolsList,
        Method::ToolsCall,
        Method::ResourcesList,
        Method::ResourceTemplatesList,
        Method::ResourcesRead,
        Method::ResourcesSubscribe,
        Method::ResourcesUnsubscribe,
        Method::PromptsList,
        Method::PromptsGet,
        Method::Complete,
        Method::Discover,
        Method::Listen,
    ];

    /// The method's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Method::Initialize => "initialize",
            Method::Ping => "ping",
            Method::SetLevel => "logging/setLevel",
            Method::ToolsList => "tools/list",
            Method::ToolsCall => "tools/call",
            Method::ResourcesList => "resources/list",
            Method::ResourceTemplatesList => "resources/templates/list",
            Method::ResourcesRead => "resources/read",
            Method::ResourcesSubscribe => "resources/subscribe",
            Method::ResourcesUnsubscribe => "resources/unsubscribe",
            Method::PromptsList => "prompts/list",
            Method::PromptsGet => "prompts/get",
            Method::Complete => "completion/complete",
            Method::Discover => "server/discover",
            Method::Listen => "subscriptions/listen",
        }
    }

    /// The method named `name`, if this server answers it in any era.
    pub fn parse(name: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Served in protocol revision 2026-07-28 (which dropped `initialize`, `ping`,
    /// `logging/setLevel` and the resource subscriptions of the 2025 revisions).
    pub fn in_modern_era(self) -> bool {
        !matches!(
            self,
            Method::Initialize
                | Method::Ping
                | Method::SetLevel
                | Method::ResourcesSubscribe
                | Method::ResourcesUnsubscribe
        )
    }

    /// Served in the 2025 revisions.
    pub fn in_legacy_era(self) -> bool {
        !matches!(self, Method::Discover | Method::Listen)
    }
}

/// `_meta` of a request's params: an object, or absent (`null` counts as absent). The
/// 2026-07-28 envelope in it is checked by `modern::RequestMeta`, before dispatch.
#[derive(Debug, Default, Deserialize)]
#[serde(transparent)]
pub struct RequestParamsMeta(pub Option<Map<String, Value>>);

impl RequestParamsMeta {
    /// 2025: notifications/progress for this request go to this token.
    pub fn progress_token(&self) -> Option<&Value> {
        self.0.as_ref()?.get("progressToken")
    }
}

/// The members of a request that may be asked again in 2026-07-28 (`tools/call`,
/// `prompts/get`, `resources/read`): the client's answers and the sealed state of the round.
/// (A view: the members are written into each of those types, since `#[serde(flatten)]` would
/// copy every other member through a buffer.)
#[derive(Debug, Clone, Copy, Default)]
pub struct Round<'a> {
    pub input_responses: Option<&'a Map<String, Value>>,
    pub request_state: Option<&'a str>,
}

/// Declares the params of a method: its own members, then `_meta`.
macro_rules! params {
    ($(#[$doc:meta])* $name:ident { $($fields:tt)* }) => {
        $(#[$doc])*
        #[derive(Debug, Deserialize)]
        pub struct $name {
            $($fields)*
            #[serde(rename = "_meta", default)]
            pub meta: RequestParamsMeta,
        }
    };
}

/// Declares the params of a request that may be asked again: its own members, then `_meta`,
/// `inputResponses` and `requestState`, and `round()` to read the latter two.
macro_rules! asking_params {
    ($(#[$doc:meta])* $name:ident { $($fields:tt)* }) => {
        $(#[$doc])*
        #[derive(Debug, Deserialize)]
        pub struct $name {
            $($fields)*
            #[serde(rename = "_meta", default)]
            pub meta: RequestParamsMeta,
            #[serde(rename = "inputResponses", default, deserialize_with = "present")]
            pub input_responses: Option<Map<String, Value>>,
            #[serde(rename = "requestState")]
            pub request_state: Option<String>,
        }

        impl $name {
            pub fn round(&self) -> Round<'_> {
                Round {
                    input_responses: self.input_responses.as_ref(),
                    request_state: self.request_state.as_deref(),
                }
            }
        }
    };
}

params! {
    /// `ping` and `server/discover`: nothing but `_meta`.
    Bare {}
}

params! {
    /// `initialize`.
    Initialize {
        #[serde(rename = "protocolVersion")]
        pub protocol_version: String,
    }
}

params! {
    /// `logging/setLevel`.
    SetLevel {
        pub level: String,
    }
}

params! {
    /// Every listing: `tools/list`, `resources/list`, `resources/templates/list`, `prompts/list`.
    Paginated {
        pub cursor: Option<String>,
    }
}

asking_params! {
    /// `tools/call`.
    CallTool {
        pub name: String,
        /// `None` when absent or null: the tool gets `{}`.
        pub arguments: Option<Map<String, Value>>,
    }
}

asking_params! {
    /// `resources/read`.
    ReadResource {
        pub uri: String,
    }
}

params! {
    /// `resources/subscribe` and `resources/unsubscribe`.
    Subscribe {
        pub uri: String,
    }
}

asking_params! {
    /// `prompts/get`.
    GetPrompt {
        pub name: String,
        /// Prompt arguments are strings; checked by the handler, which names the offending one.
        pub arguments: Option<Map<String, Value>>,
    }
}

params! {
    /// `completion/complete`.
    Complete {
        #[serde(rename = "ref")]
        pub reference: CompletionRef,
        pub argument: CompletionArgument,
    }
}

/// What a completion is for.
#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
pub enum CompletionRef {
    #[serde(rename = "ref/prompt")]
    Prompt { name: String },
    #[serde(rename = "ref/resource")]
    Resource { uri: String },
}

#[derive(Debug, Deserialize)]
pub struct CompletionArgument {
    pub name: String,
    pub value: String,
}

params! {
    /// `subscriptions/listen` (2026-07-28).
    Listen {
        pub notifications: ListenFilter,
    }
}

/// The notifications a listen stream asks for.
#[derive(Debug, Default, Deserialize)]
pub struct ListenFilter {
    #[serde(rename = "toolsListChanged")]
    pub tools_list_changed: Option<bool>,
    #[serde(rename = "promptsListChanged")]
    pub prompts_list_changed: Option<bool>,
    #[serde(rename = "resourcesListChanged")]
    pub resources_list_changed: Option<bool>,
    #[serde(rename = "resourceSubscriptions")]
    pub resource_subscriptions: Option<Vec<String>>,
}

/// An optional member that, when present, must hold a value (`null` is refused, not taken for
/// absent): `inputResponses: null` is a client bug worth a -32602.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// A request's params, typed by its method.
#[derive(Debug)]
pub enum Params {
    Initialize(Initialize),
    Ping(Bare),
    SetLevel(SetLevel),
    ToolsList(Paginated),
    ToolsCall(CallTool),
    ResourcesList(Paginated),
    ResourceTemplatesList(Paginated),
    ResourcesRead(ReadResource),
    ResourcesSubscribe(Subscribe),
    ResourcesUnsubscribe(Subscribe),
    PromptsList(Paginated),
    PromptsGet(GetPrompt),
    Complete(Complete),
    Discover(Bare),
    Listen(Listen),
}

impl Params {
    /// Deserializes `params` (the JSON text of an object; absent: `{}`) as `method`'s, straight
    /// from the body's text; -32602 naming what is wrong.
    pub fn parse(method: Method, params: Option<&RawValue>) -> Result<Params, McpError> {
        let text = params.map_or("{}", RawValue::get);
        Ok(match method {
            Method::Initialize => Params::Initialize(typed(method, text)?),
            Method::Ping => Params::Ping(typed(method, text)?),
            Method::SetLevel => Params::SetLevel(typed(method, text)?),
            Method::ToolsList => Params::ToolsList(typed(method, text)?),
            Method::ToolsCall => Params::ToolsCall(typed(method, text)?),
            Method::ResourcesList => Params::ResourcesList(typed(method, text)?),
            Method::ResourceTemplatesList => Params::ResourceTemplatesList(typed(method, text)?),
            Method::ResourcesRead => Params::ResourcesRead(typed(method, text)?),
            Method::ResourcesSubscribe => Params::ResourcesSubscribe(typed(method, text)?),
            Method::ResourcesUnsubscribe => Params::ResourcesUnsubscribe(typed(method, text)?),
            Method::PromptsList => Params::PromptsList(typed(method, text)?),
            Method::PromptsGet => Params::PromptsGet(typed(method, text)?),
            Method::Complete => Params::Complete(typed(method, text)?),
            Method::Discover => Params::Discover(typed(method, text)?),
            Method::Listen => Params::Listen(typed(method, text)?),
        })
    }

    /// The method these params are for.
    pub fn method(&self) -> Method {
        match self {
            Params::Initialize(_) => Method::Initialize,
            Params::Ping(_) => Method::Ping,
            Params::SetLevel(_) => Method::SetLevel,
            Params::ToolsList(_) => Method::ToolsList,
            Params::ToolsCall(_) => Method::ToolsCall,
            Params::ResourcesList(_) => Method::ResourcesList,
            Params::ResourceTemplatesList(_) => Method::ResourceTemplatesList,
            Params::ResourcesRead(_) => Method::ResourcesRead,
            Params::ResourcesSubscribe(_) => Method::ResourcesSubscribe,
            Params::ResourcesUnsubscribe(_) => Method::ResourcesUnsubscribe,
            Params::PromptsList(_) => Method::PromptsList,
            Params::PromptsGet(_) => Method::PromptsGet,
            Params::Complete(_) => Method::Complete,
            Params::Discover(_) => Method::Discover,
            Params::Listen(_) => Method::Listen,
        }
    }

    /// The params' `_meta`.
    pub fn meta(&self) -> &RequestParamsMeta {
        match self {
            Params::Initialize(p) => &p.meta,
            Params::Ping(p) | Params::Discover(p) => &p.meta,
            Params::SetLevel(p) => &p.meta,
            Params::ToolsList(p)
            | Params::ResourcesList(p)
            | Params::ResourceTemplatesList(p)
            | Params::PromptsList(p) => &p.meta,
            Params::ToolsCall(p) => &p.meta,
            Params::ResourcesRead(p) => &p.meta,
            Params::ResourcesSubscribe(p) | Params::ResourcesUnsubscribe(p) => &p.meta,
            Params::PromptsGet(p) => &p.meta,
            Params::Complete(p) => &p.meta,
            Params::Listen(p) => &p.meta,
        }
    }

    /// The member the 2026-07-28 `Mcp-Name` header mirrors, where the method has one.
    pub fn name(&self) -> Option<&str> {
        match self {
            Params::ToolsCall(p) => Some(&p.name),
            Params::PromptsGet(p) => Some(&p.name),
            Params::ResourcesRead(p) => Some(&p.uri),
            _ => None,
        }
    }
}

/// One deserialization of a params object's text into `T`; the error names the method and what
/// is wrong (a missing member by name, a member of the wrong type by what was expected).
fn typed<T: DeserializeOwned>(method: Method, text: &str) -> Result<T, McpError> {
    serde_json::from_str(text).map_err(|e| {
        // The position in the params text says nothing the client can use.
        let e = e.to_string();
        let e = e.rsplit_once(" at line ").map_or(e.as_str(), |(m, _)| m);
        McpError::InvalidParams(format!("{} params: {e}", method.name()))
    })
}

/// A request as the dispatcher takes it: its params typed once, from the body's text.
#[derive(Debug)]
pub struct Request {
    pub id: Id,
    /// As the client wrote it; a method this server knows borrows its static name.
    pub method: Cow<'static, str>,
    pub params: Parsed,
}

/// A request's params: typed by a method this server answers, or (an unknown method, params
/// its method's type refuses) kept as a map, so that the checks made before dispatch (the era,
/// the 2026-07-28 headers) read the same members either way. The dispatcher answers the
/// latter with -32601 or the -32602 it holds.
#[derive(Debug)]
pub enum Parsed {
    /// Boxed: the params travel from the parse through the dispatcher to their handler, and
    /// a box moves as a pointer (`Params` is 152 bytes; moved inline, it was copied a dozen
    /// times per request).
    Typed(Box<Params>),
    Untyped {
        method: Option<Method>,
        params: Map<String, Value>,
        error: Option<McpError>,
    },
}

impl Request {
    pub fn new(request: jsonrpc::Request<'_>) -> Request {
        let jsonrpc::Request { id, method, params } = request;
        let known = Method::parse(&method);
        let parsed = match known.map(|m| Params::parse(m, params)) {
            Some(Ok(typed)) => Parsed::Typed(Box::new(typed)),
            outcome => Parsed::Untyped {
                method: known,
                // A map of what the client sent; empty when even that cannot be read (a
                // number no f64 holds).
                params: params
                    .and_then(|raw| serde_json::from_str(raw.get()).ok())
                    .unwrap_or_default(),
                error: outcome.and_then(Result::err),
            },
        };
        Request {
            id,
            method: match known {
                Some(m) => Cow::Borrowed(m.name()),
                None => Cow::Owned(method.into_owned()),
            },
            params: parsed,
        }
    }

    /// Can its handler send anything before its answer (progress, log messages, a 2025
    /// question on the stream)? Only author code does: a tool, a prompt, a resource read.
    pub fn may_notify(&self) -> bool {
        matches!(&self.params, Parsed::Typed(p) if matches!(
            p.method(),
            Method::ToolsCall | Method::PromptsGet | Method::ResourcesRead
        ))
    }

    /// The params' `_meta` object, if any.
    pub fn meta(&self) -> Option<&Map<String, Value>> {
        match &self.params {
            Parsed::Typed(p) => p.meta().0.as_ref(),
            Parsed::Untyped { params, .. } => params.get("_meta").and_then(Value::as_object),
        }
    }

    /// The params' string member `member`, for the header checks (`name` or `uri`).
    pub fn name(&self, member: &str) -> Option<&str> {
        match &self.params {
            Parsed::Typed(p) => p.name(),
            Parsed::Untyped { params, .. } => params.get(member).and_then(Value::as_str),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(method: &str, params: Value) -> Result<Params, McpError> {
        let text = serde_json::value::to_raw_value(&params).unwrap();
        Params::parse(Method::parse(method).unwrap(), Some(&text))
    }

    #[test]
    fn every_method_round_trips_its_name() {
        for m in Method::ALL {
            assert_eq!(Method::parse(m.name()), Some(m));
        }
        assert_eq!(Method::parse("tools/unknown"), None);
    }

    #[test]
    fn params_are_typed_and_errors_name_the_member() {
        let Ok(Params::ToolsCall(c)) = parse(
            "tools/call",
            json!({"name": "t", "arguments": {"a": 1}, "_meta": {"progressToken": 7},
                   "requestState": "s", "extra": true}),
        ) else {
            panic!()
        };
        assert_eq!(c.name, "t");
        assert_eq!(c.arguments.as_ref().unwrap()["a"], 1);
        assert_eq!(c.meta.progress_token(), Some(&json!(7)));
        assert_eq!(c.round().request_state, Some("s"));
        let e = parse("tools/call", json!({})).unwrap_err();
        assert!(
            e.to_error().message.contains("missing field `name`"),
            "{e:?}"
        );
        let e = parse("tools/call", json!({"name": "t", "arguments": [1]})).unwrap_err();
        assert_eq!(e.to_error().code.0, -32602);
        let Ok(Params::Complete(c)) = parse(
            "completion/complete",
            json!({"ref": {"type": "ref/prompt", "name": "p"}, "argument": {"name": "a", "value": "v"}}),
        ) else {
            panic!()
        };
        assert!(matches!(c.reference, CompletionRef::Prompt { name } if name == "p"));
        assert!(parse("tools/list", json!({"cursor": 7})).is_err());
        assert!(matches!(
            parse("tools/list", json!({"cursor": null})),
            Ok(Params::ToolsList(Paginated { cursor: None, .. }))
        ));
    }
}
