//! The protocol model: every method this server answers as a `Method`, and the params of each
//! as a serde type, deserialized once (taking the request's params by value, never cloning
//! them) before a handler runs. Handlers take these types; the dispatcher routes on `Method`.
//! Members the client sends that a type does not name are ignored, as the protocol's forward
//! compatibility requires. The 2026-07-28 envelope in `_meta` is read by `modern::RequestMeta`
//! (the transport needs it before dispatch, to decide the era); the 2025 `_meta.progressToken`
//! and the 2026-07-28 multi-round members (`inputResponses`, `requestState`) are here.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::McpError;

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

/// `_meta` of a request's params, as far as the dispatcher reads it.
#[derive(Debug, Default, Deserialize)]
pub struct RequestParamsMeta {
    /// 2025: notifications/progress for this request go to this token.
    #[serde(rename = "progressToken")]
    pub progress_token: Option<Value>,
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

/// `initialize`.
#[derive(Debug, Deserialize)]
pub struct Initialize {
    #[serde(rename = "protocolVersion")]
    pub protocol_version: String,
}

/// `logging/setLevel`.
#[derive(Debug, Deserialize)]
pub struct SetLevel {
    pub level: String,
}

/// Every listing: `tools/list`, `resources/list`, `resources/templates/list`, `prompts/list`.
#[derive(Debug, Default, Deserialize)]
pub struct Paginated {
    pub cursor: Option<String>,
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

/// `resources/subscribe` and `resources/unsubscribe`.
#[derive(Debug, Deserialize)]
pub struct Subscribe {
    pub uri: String,
}

asking_params! {
    /// `prompts/get`.
    GetPrompt {
        pub name: String,
        /// Prompt arguments are strings; checked by the handler, which names the offending one.
        pub arguments: Option<Map<String, Value>>,
    }
}

/// `completion/complete`.
#[derive(Debug, Deserialize)]
pub struct Complete {
    #[serde(rename = "ref")]
    pub reference: CompletionRef,
    pub argument: CompletionArgument,
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

/// `subscriptions/listen` (2026-07-28).
#[derive(Debug, Deserialize)]
pub struct Listen {
    pub notifications: ListenFilter,
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
    Ping,
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
    Discover,
    Listen(Listen),
}

impl Params {
    /// Deserializes `params` (taken by value) as `method`'s; -32602 naming what is wrong.
    pub fn parse(method: Method, params: Map<String, Value>) -> Result<Params, McpError> {
        Ok(match method {
            Method::Initialize => Params::Initialize(typed(method, params)?),
            Method::Ping => Params::Ping,
            Method::SetLevel => Params::SetLevel(typed(method, params)?),
            Method::ToolsList => Params::ToolsList(typed(method, params)?),
            Method::ToolsCall => Params::ToolsCall(typed(method, params)?),
            Method::ResourcesList => Params::ResourcesList(typed(method, params)?),
            Method::ResourceTemplatesList => Params::ResourceTemplatesList(typed(method, params)?),
            Method::ResourcesRead => Params::ResourcesRead(typed(method, params)?),
            Method::ResourcesSubscribe => Params::ResourcesSubscribe(typed(method, params)?),
            Method::ResourcesUnsubscribe => Params::ResourcesUnsubscribe(typed(method, params)?),
            Method::PromptsList => Params::PromptsList(typed(method, params)?),
            Method::PromptsGet => Params::PromptsGet(typed(method, params)?),
            Method::Complete => Params::Complete(typed(method, params)?),
            Method::Discover => Params::Discover,
            Method::Listen => Params::Listen(typed(method, params)?),
        })
    }
}

/// One deserialization of `params` into `T`; the error names the method and what is wrong
/// (a missing member by name, a member of the wrong type by what was expected).
pub fn typed<T: DeserializeOwned>(
    method: Method,
    params: Map<String, Value>,
) -> Result<T, McpError> {
    T::deserialize(Value::Object(params))
        .map_err(|e| McpError::InvalidParams(format!("{} params: {e}", method.name())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(method: &str, params: Value) -> Result<Params, McpError> {
        let Value::Object(m) = params else { panic!() };
        Params::parse(Method::parse(method).unwrap(), m)
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
        assert_eq!(c.meta.progress_token, Some(json!(7)));
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
            Ok(Params::ToolsList(Paginated { cursor: None }))
        ));
    }
}
