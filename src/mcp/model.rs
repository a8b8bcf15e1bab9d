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
use serde::de::MapAccess;
use serde::de::value::MapAccessDeserializer;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::McpError;
use crate::jsonrpc::onepass::{OnePass, TypedParams};
use crate::jsonrpc::{self, Id};

impl Method {
    /// The method named `name`, if this server answers it in any era.
    pub fn parse(name: &str) -> Option<Method> {
        Method::ALL.iter().copied().find(|m| m.name() == name)
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
    /// `tasks/get` and `tasks/cancel` (2026-07-28, tasks extension).
    TaskRef {
        #[serde(rename = "taskId")]
        pub task_id: String,
    }
}

params! {
    /// `tasks/update` (2026-07-28, tasks extension): answers to the task's `inputRequests`.
    UpdateTask {
        #[serde(rename = "taskId")]
        pub task_id: String,
        #[serde(rename = "inputResponses")]
        pub input_responses: Map<String, Value>,
    }
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
    /// Tasks whose status changes the stream carries (tasks extension).
    #[serde(rename = "taskIds")]
    pub task_ids: Option<Vec<String>>,
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

/// Every request method this server answers, in one table: its variant, its name on the wire,
/// its params' type and the eras it is served in (2025 revisions, 2026-07-28). `Method` (with
/// `ALL`, `name` and the era checks) and `Params` (with their typing and `_meta`) are generated
/// from it, and the request counter's labels, the era tables and the capabilities are read from
/// them: a new method is one line here, its handler and its test.
macro_rules! methods {
    ($($(#[$doc:meta])* $variant:ident = $name:literal ($params:ident), legacy: $legacy:literal, modern: $modern:literal;)*) => {
        /// Every request method this server answers, in either era.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Method {
            $($(#[$doc])* $variant,)*
        }

        impl Method {
            pub const ALL: &[Method] = &[$(Method::$variant),*];

            /// The method's name on the wire.
            pub fn name(self) -> &'static str {
                match self {
                    $(Method::$variant => $name,)*
                }
            }

            /// Served in the 2025 revisions.
            pub fn in_legacy_era(self) -> bool {
                match self {
                    $(Method::$variant => $legacy,)*
                }
            }

            /// Served in protocol revision 2026-07-28.
            pub fn in_modern_era(self) -> bool {
                match self {
                    $(Method::$variant => $modern,)*
                }
            }
        }

        /// A request's params, typed by its method.
        #[derive(Debug)]
        pub enum Params {
            $($variant($params),)*
        }

        impl Params {
            /// `method`'s params read from `d`: from a params object's text (`parse`), or from
            /// the members of the object as the envelope's one pass meets them (`TypedParams`).
            fn typed<'de, D: serde::Deserializer<'de>>(
                method: Method,
                d: D,
            ) -> Result<Params, D::Error> {
                Ok(match method {
                    $(Method::$variant => Params::$variant(Deserialize::deserialize(d)?),)*
                })
            }

            /// The method these params are for.
            pub fn method(&self) -> Method {
                match self {
                    $(Params::$variant(_) => Method::$variant,)*
                }
            }

            /// The params' `_meta`.
            pub fn meta(&self) -> &RequestParamsMeta {
                match self {
                    $(Params::$variant(p) => &p.meta,)*
                }
            }
        }
    };
}

methods! {
    Initialize = "initialize" (Initialize), legacy: true, modern: false;
    Ping = "ping" (Bare), legacy: true, modern: false;
    SetLevel = "logging/setLevel" (SetLevel), legacy: true, modern: false;
    ToolsList = "tools/list" (Paginated), legacy: true, modern: true;
    ToolsCall = "tools/call" (CallTool), legacy: true, modern: true;
    ResourcesList = "resources/list" (Paginated), legacy: true, modern: true;
    ResourceTemplatesList = "resources/templates/list" (Paginated), legacy: true, modern: true;
    ResourcesRead = "resources/read" (ReadResource), legacy: true, modern: true;
    ResourcesSubscribe = "resources/subscribe" (Subscribe), legacy: true, modern: false;
    ResourcesUnsubscribe = "resources/unsubscribe" (Subscribe), legacy: true, modern: false;
    PromptsList = "prompts/list" (Paginated), legacy: true, modern: true;
    PromptsGet = "prompts/get" (GetPrompt), legacy: true, modern: true;
    Complete = "completion/complete" (Complete), legacy: true, modern: true;
    Discover = "server/discover" (Bare), legacy: false, modern: true;
    Listen = "subscriptions/listen" (Listen), legacy: false, modern: true;
    TasksGet = "tasks/get" (TaskRef), legacy: false, modern: true;
    TasksUpdate = "tasks/update" (UpdateTask), legacy: false, modern: true;
    TasksCancel = "tasks/cancel" (TaskRef), legacy: false, modern: true;
}

/// The request counter's label for a message named `method`: a method this server answers,
/// one of the client notifications it acts on, or `other` (labels stay a bounded set).
pub fn method_label(method: &str) -> &'static str {
    const NOTIFICATIONS: [&str; 2] = ["notifications/initialized", "notifications/cancelled"];
    match Method::parse(method) {
        Some(m) => m.name(),
        None => NOTIFICATIONS
            .iter()
            .find(|n| **n == method)
            .copied()
            .unwrap_or("other"),
    }
}

impl Params {
    /// Deserializes `params` (the JSON text of an object; absent: `{}`) as `method`'s, straight
    /// from the body's text; -32602 naming what is wrong.
    pub fn parse(method: Method, params: Option<&RawValue>) -> Result<Params, McpError> {
        let text = params.map_or("{}", RawValue::get);
        let mut de = serde_json::Deserializer::from_str(text);
        Params::typed(method, &mut de)
            .and_then(|p| de.end().map(|()| p))
            .map_err(|e| {
                // The position in the params text says nothing the client can use.
                let e = e.to_string();
                let e = e.rsplit_once(" at line ").map_or(e.as_str(), |(m, _)| m);
                McpError::InvalidParams(format!("{} params: {e}", method.name()))
            })
    }

    /// The member the 2026-07-28 `Mcp-Name` header mirrors, where the method has one.
    pub fn name(&self) -> Option<&str> {
        match self {
            Params::ToolsCall(p) => Some(&p.name),
            Params::PromptsGet(p) => Some(&p.name),
            Params::ResourcesRead(p) => Some(&p.uri),
            Params::TasksGet(p) | Params::TasksCancel(p) => Some(&p.task_id),
            Params::TasksUpdate(p) => Some(&p.task_id),
            _ => None,
        }
    }
}

/// Boxed as they are read, as `Parsed::Typed` keeps them (moved through the envelope's reader
/// unboxed, they were copied at each of its returns).
impl TypedParams for Box<Params> {
    type Method = Method;

    fn method(name: &str) -> Option<Method> {
        Method::parse(name)
    }

    fn read<'de, A: MapAccess<'de>>(method: Method, members: A) -> Result<Self, A::Error> {
        Params::typed(method, MapAccessDeserializer::new(members)).map(Box::new)
    }

    fn absent(method: Method) -> Option<Self> {
        Params::parse(method, None).ok().map(Box::new)
    }
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

    /// The common request (`method` before `params`, both well formed) read from a body in one
    /// pass; `None`: read it with `Message::parse` and `Request::new`, which give the same
    /// request for every text this reads (`tests::one_pass_reads_what_two_passes_read`).
    pub fn read_in_one_pass(text: &str) -> Option<Request> {
        let read = OnePass::<Box<Params>>::read(text)?;
        Some(Request {
            id: read.id,
            method: Cow::Borrowed(read.method.name()),
            params: Parsed::Typed(read.params),
        })
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

    /// The request `Message::parse` and `Request::new` read from `text`, if it is one.
    fn two_passes(text: &str) -> Option<Request> {
        match jsonrpc::Message::parse(text.as_bytes()) {
            Ok(jsonrpc::Message::Request(r)) => Some(Request::new(r)),
            _ => None,
        }
    }

    #[test]
    fn one_pass_reads_what_two_passes_read() {
        let long_id = "x".repeat(257);
        // Read in one pass: the common forms.
        let common = [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"greet_user","arguments":{"name":"b"}}}"#,
            r#"{"jsonrpc":"2.0","id":"a","method":"tools/list"}"#,
            r#" { "id" : -7 , "method" : "ping" , "jsonrpc" : "2.0" , "params" : { } } "#,
            r#"{"method":"tools/list","params":{"cursor":"c","_meta":{"k":1}},"jsonrpc":"2.0","id":18446744073709551615}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"u","inputResponses":{"q":{"a":1}},"requestState":"s"}}"#,
            r#"{"jsonrpc":"2.0","id":3,"method":"prompts/get","params":{"name":"p","arguments":{"x":"y"}},"extra":[1,{"a":null}]}"#,
            r#"{"jsonrpc":"2.0","id":4,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"p"},"argument":{"name":"a","value":"v"}}}"#,
            r#"{"jsonrpc":"2\u002e0","id":"\u00e9","meth\u006fd":"tools\/call","params":{"name":"t","arguments":null}}"#,
            r#"{"jsonrpc":"2.0","id":5,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}"#,
        ];
        for text in common {
            let one = Request::read_in_one_pass(text).unwrap_or_else(|| panic!("declined: {text}"));
            let two = two_passes(text).expect("a request");
            assert_eq!(format!("{one:?}"), format!("{two:?}"), "{text}");
        }
        // Declined: each is read by `Message::parse` (refused, or read another way).
        let declined = [
            r#"{"jsonrpc":"2.0","id":1,"params":{"name":"t"},"method":"tools/call"}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t"},"result":1}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":5}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["t",{}]}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":null}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"no/such","params":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"ping","method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","jsonrpc":"2.0","id":1,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{},"params":{}}"#,
            r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#,
            r#"{"id":1,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":true,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":7}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"ping"} x"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"ping",}"#,
            r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
            r#""{}""#,
            "",
        ];
        let long = format!(r#"{{"jsonrpc":"2.0","id":"{long_id}","method":"ping"}}"#);
        for text in declined.iter().copied().chain([long.as_str()]) {
            assert!(Request::read_in_one_pass(text).is_none(), "read: {text}");
        }
        // What was declined and is still a request reads the same in two passes as before.
        let r = two_passes(declined[0]).expect("params before method is a request");
        assert!(matches!(r.params, Parsed::Typed(_)));
        let r = two_passes(declined[4]).expect("mistyped params are a request");
        assert!(matches!(r.params, Parsed::Untyped { error: Some(_), .. }));
    }

    #[test]
    fn every_method_round_trips_its_name() {
        for m in Method::ALL {
            assert_eq!(Method::parse(m.name()), Some(*m));
            assert_eq!(method_label(m.name()), m.name());
            assert!(
                m.in_legacy_era() || m.in_modern_era(),
                "{m:?} is served in no era"
            );
        }
        assert_eq!(Method::parse("tools/unknown"), None);
        assert_eq!(method_label("tools/unknown"), "other");
        assert_eq!(
            method_label("notifications/cancelled"),
            "notifications/cancelled"
        );
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
