//! JSON-RPC 2.0 wire types: ids, messages, responses and error codes. Only this module knows the
//! envelope format; everything else works with the typed values it produces.

pub mod onepass;

use std::borrow::Cow;
use std::sync::Arc;

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

/// A request id: a string or an integer, never null, never a fraction. Kept as the exact JSON
/// value it arrived as, so a response echoes it byte for byte (`1`, `"1"` and `1.0` are distinct).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum Id {
    Str(String),
    Int(serde_json::Number),
}

/// Longest string id accepted (longer ones are refused with -32600).
pub const MAX_ID_CHARS: usize = 256;

impl Id {
    /// Reads an id from its JSON text; `None` as for `from_value`.
    pub fn from_raw(raw: &RawValue) -> Option<Id> {
        Id::from_value(&serde_json::from_str(raw.get()).ok()?)
    }

    /// A string short enough to be an id (`MAX_ID_CHARS`, counted in characters).
    fn fits(s: &str) -> bool {
        s.chars().count() <= MAX_ID_CHARS
    }

    /// Reads an id from a JSON value; `None` for null, floats, booleans, objects, arrays and
    /// strings longer than `MAX_ID_CHARS`.
    pub fn from_value(v: &Value) -> Option<Id> {
        match v {
            Value::String(s) if Id::fits(s) => Some(Id::Str(s.clone())),
            Value::Number(n) if n.is_i64() || n.is_u64() => Some(Id::Int(n.clone())),
            _ => None,
        }
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Id::Str(s) => write!(f, "{s:?}"),
            Id::Int(n) => write!(f, "{n}"),
        }
    }
}

/// The `"jsonrpc": "2.0"` marker: a type that only exists for the one valid value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Version2;

impl Serialize for Version2 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("2.0")
    }
}

impl<'de> Deserialize<'de> for Version2 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        if s == "2.0" {
            Ok(Version2)
        } else {
            Err(serde::de::Error::custom("jsonrpc must be \"2.0\""))
        }
    }
}

/// A JSON-RPC error code. Named constants for every code gatehouse emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ErrorCode(pub i32);

impl ErrorCode {
    pub const PARSE_ERROR: ErrorCode = ErrorCode(-32700);
    pub const INVALID_REQUEST: ErrorCode = ErrorCode(-32600);
    pub const METHOD_NOT_FOUND: ErrorCode = ErrorCode(-32601);
    pub const INVALID_PARAMS: ErrorCode = ErrorCode(-32602);
    pub const INTERNAL_ERROR: ErrorCode = ErrorCode(-32603);
    /// MCP (2025 revisions): resource not found.
    pub const RESOURCE_NOT_FOUND: ErrorCode = ErrorCode(-32002);
    /// Implementation-defined transport error (the code the official SDKs use for HTTP-level
    /// refusals such as a bad `Origin`).
    pub const TRANSPORT: ErrorCode = ErrorCode(-32000);
    /// 2026-07-28: a header disagrees with the body, or a required one is missing.
    pub const HEADER_MISMATCH: ErrorCode = ErrorCode(-32020);
    /// 2026-07-28: the request needs a client capability its `_meta` does not declare.
    pub const MISSING_REQUIRED_CLIENT_CAPABILITY: ErrorCode = ErrorCode(-32021);
    /// The requested protocol revision is not served.
    pub const UNSUPPORTED_PROTOCOL_VERSION: ErrorCode = ErrorCode(-32022);
}

/// The error member of an error response.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorObject {
    pub code: ErrorCode,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl ErrorObject {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorObject {
            code,
            message: message.into(),
            data: None,
        }
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }
}

/// A response: `result` and `error` can never coexist, and an error response may lack an id only
/// when the request's id could not be read.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Response {
    Success {
        jsonrpc: Version2,
        id: Id,
        result: ResultBody,
    },
    Error {
        jsonrpc: Version2,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<Id>,
        error: ErrorObject,
    },
}

/// A result as sent: a typed result that writes its own JSON text straight into the response
/// (`mcp::result::Stamped`; never through a `Value`), or one serialized once and shared by many
/// responses (a tool listing is the same for every caller with the same scopes).
#[derive(Debug, Clone)]
pub enum ResultBody {
    Typed(Arc<dyn JsonResult>),
    Shared(Arc<RawValue>),
}

/// A result that writes its JSON text (the dispatcher's typed results implement it).
pub trait JsonResult: std::fmt::Debug + Send + Sync {
    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()>;
}

impl ResultBody {
    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        match self {
            ResultBody::Typed(r) => r.write_json(out),
            ResultBody::Shared(raw) => {
                out.extend_from_slice(raw.get().as_bytes());
                Ok(())
            }
        }
    }

    /// The result's JSON text.
    pub fn text(&self) -> serde_json::Result<String> {
        let mut out = Vec::new();
        self.write_json(&mut out)?;
        // serde_json writes UTF-8, and a shared result is a `str`.
        Ok(String::from_utf8(out).unwrap_or_default())
    }
}

impl Serialize for ResultBody {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let text = self.text().map_err(serde::ser::Error::custom)?;
        RawValue::from_string(text)
            .map_err(serde::ser::Error::custom)?
            .serialize(s)
    }
}

impl PartialEq for ResultBody {
    fn eq(&self, other: &Self) -> bool {
        let value = |r: &ResultBody| {
            r.text()
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        };
        value(self) == value(other)
    }
}

impl Response {
    /// A success whose typed result is written when the response is.
    pub fn success(id: Id, result: Arc<dyn JsonResult>) -> Self {
        Response::Success {
            jsonrpc: Version2,
            id,
            result: ResultBody::Typed(result),
        }
    }

    /// A success whose result was serialized before (and is shared).
    pub fn shared(id: Id, result: Arc<RawValue>) -> Self {
        Response::Success {
            jsonrpc: Version2,
            id,
            result: ResultBody::Shared(result),
        }
    }

    pub fn error(id: Option<Id>, error: ErrorObject) -> Self {
        Response::Error {
            jsonrpc: Version2,
            id,
            error,
        }
    }

    /// The response's JSON text.
    pub fn to_json(&self) -> String {
        // Only the bytes of JSON serializers, so always UTF-8; checked all the same.
        String::from_utf8(self.to_json_bytes()).unwrap_or_default()
    }

    /// The response's JSON text as bytes, for a body (no UTF-8 check of a text that only
    /// serializers wrote). A success is written in one pass, its result straight into the
    /// text; should a result fail to write (no typed result can), the response becomes a
    /// -32603 error.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        let written = match self {
            Response::Success { id, result, .. } => {
                // A shared result's length is known: the text is written without regrowing.
                let mut out = Vec::with_capacity(match result {
                    ResultBody::Shared(raw) => raw.get().len() + 64,
                    ResultBody::Typed(_) => 256,
                });
                out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
                serde_json::to_writer(&mut out, id)
                    .and_then(|()| {
                        out.extend_from_slice(br#","result":"#);
                        result.write_json(&mut out)
                    })
                    .map(|()| {
                        out.push(b'}');
                        out
                    })
                    .map_err(|e| (id.clone(), e))
            }
            Response::Error { .. } => Ok(serde_json::to_vec(self).unwrap_or_default()),
        };
        written.unwrap_or_else(|(id, e)| {
            log::error!("a result did not serialize: {e}");
            let error = ErrorObject::new(ErrorCode::INTERNAL_ERROR, "Internal error");
            serde_json::to_vec(&Response::error(Some(id), error)).unwrap_or_default()
        })
    }
}

/// A server-to-client notification (progress, log messages).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification {
    pub jsonrpc: Version2,
    pub method: &'static str,
    pub params: Value,
}

impl Notification {
    pub fn new(method: &'static str, params: Value) -> Self {
        Notification {
            jsonrpc: Version2,
            method,
            params,
        }
    }
}

/// A request the server sends the client (2025 revisions: a question on a response stream).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutgoingRequest {
    pub jsonrpc: Version2,
    pub id: Id,
    pub method: &'static str,
    pub params: Value,
}

impl OutgoingRequest {
    pub fn new(id: Id, method: &'static str, params: Value) -> Self {
        OutgoingRequest {
            jsonrpc: Version2,
            id,
            method,
            params,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("requests always serialize")
    }
}

/// A request the client sent: it has an id and expects exactly one response. Its members are
/// borrowed from the body; `params` is left as JSON text (always an object) for its method's
/// type to read, once.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub id: Id,
    pub method: Cow<'a, str>,
    pub params: Option<&'a RawValue>,
}

/// One message the client sent, classified.
#[derive(Debug, Clone)]
pub enum Message<'a> {
    Request(Request<'a>),
    Notification {
        method: Cow<'a, str>,
        params: Option<&'a RawValue>,
    },
    /// The client's answer to a request the server sent: its `result`, or its `error` object.
    ClientResponse {
        id: Id,
        outcome: Result<Value, Value>,
    },
}

/// Why a JSON value is not a JSON-RPC message. `id` is the request's id when it could be read.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub id: Option<Id>,
    pub reason: &'static str,
}

/// Why a body is not one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Unreadable {
    /// Not JSON at all (-32700).
    NotJson,
    /// JSON, but not a JSON-RPC message (-32600).
    Invalid(Invalid),
}

/// A message's members as they arrive, borrowed from the body: `jsonrpc`, `id` and `method`
/// read in the same pass as what they hold (a string, an integer, or anything else, which
/// the checks then refuse), the others left as JSON text to be read by what they are for.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default, deserialize_with = "scalar")]
    jsonrpc: Option<Scalar<'a>>,
    #[serde(borrow, default, deserialize_with = "scalar")]
    id: Option<Scalar<'a>>,
    #[serde(borrow, default, deserialize_with = "scalar")]
    method: Option<Scalar<'a>>,
    #[serde(borrow, default, deserialize_with = "member")]
    params: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "member")]
    result: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "member")]
    error: Option<&'a RawValue>,
}

/// A member that is present, `null` included (absent members are `None` by default).
fn member<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// A present member read as a string (borrowed unless it holds escapes), an integer, or
/// something else (`null`, a boolean, a fraction, an object, an array: read and dropped).
enum Scalar<'a> {
    Str(Cow<'a, str>),
    Int(serde_json::Number),
    Other,
}

fn scalar<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Scalar<'de>>, D::Error> {
    d.deserialize_any(ScalarVisitor).map(Some)
}

struct ScalarVisitor;

impl<'de> serde::de::Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Borrowed(s)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Owned(s.to_string())))
    }
    fn visit_string<E>(self, s: String) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Owned(s)))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Int(n.into()))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Int(n.into()))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Other)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Other)
    }
    fn visit_unit<E>(self) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Other)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Scalar<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other)
    }
}

impl<'a> Scalar<'a> {
    /// The string, if it is one.
    fn text(self) -> Option<Cow<'a, str>> {
        match self {
            Scalar::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The id it names, as `Id::from_value` reads one.
    fn id(self) -> Option<Id> {
        match self {
            Scalar::Str(s) if Id::fits(&s) => Some(Id::Str(s.into_owned())),
            Scalar::Int(n) => Some(Id::Int(n)),
            _ => None,
        }
    }
}

/// The first byte of a JSON text that is not white space.
pub fn first_byte(text: &[u8]) -> Option<u8> {
    text.iter().copied().find(|b| !b.is_ascii_whitespace())
}

impl<'a> Message<'a> {
    /// Reads one message from a JSON text (a whole body, or one item of a batch).
    pub fn parse(text: &'a [u8]) -> Result<Message<'a>, Unreadable> {
        // Only an object is a message: serde would also read the envelope's members from an
        // array, by position (`[0, 0]` would hold an id).
        if first_byte(text) != Some(b'{') {
            return match serde_json::from_slice::<IgnoredAny>(text) {
                Ok(_) => Err(Unreadable::Invalid(Invalid {
                    id: None,
                    reason: "a message must be a JSON object",
                })),
                Err(_) => Err(Unreadable::NotJson),
            };
        }
        // UTF-8 is checked once here: read from a `str`, the members left as JSON text are
        // not checked again (read from bytes, each would be).
        let Ok(text) = std::str::from_utf8(text) else {
            return Err(Unreadable::NotJson);
        };
        match serde_json::from_str::<Envelope<'a>>(text) {
            Ok(envelope) => envelope.classify().map_err(Unreadable::Invalid),
            // An object that names a member twice.
            Err(e) if e.is_data() && serde_json::from_str::<IgnoredAny>(text).is_ok() => {
                Err(Unreadable::Invalid(Invalid {
                    id: None,
                    reason: "a message must not name a member twice",
                }))
            }
            Err(_) => Err(Unreadable::NotJson),
        }
    }

    /// Reads one item of a batch (already known to be JSON).
    pub fn parse_item(item: &'a RawValue) -> Result<Message<'a>, Invalid> {
        match Message::parse(item.get().as_bytes()) {
            Ok(m) => Ok(m),
            Err(Unreadable::Invalid(bad)) => Err(bad),
            Err(Unreadable::NotJson) => Err(Invalid {
                id: None,
                reason: "a message must be a JSON object",
            }),
        }
    }
}

impl<'a> Envelope<'a> {
    fn classify(self) -> Result<Message<'a>, Invalid> {
        let id = match self.id {
            None => None,
            Some(raw) => match raw.id() {
                Some(id) => Some(id),
                None => {
                    return Err(Invalid {
                        id: None,
                        reason: "id must be a string of at most 256 characters or an integer",
                    });
                }
            },
        };
        let invalid = |reason| Invalid {
            id: id.clone(),
            reason,
        };
        if self.jsonrpc.and_then(Scalar::text).as_deref() != Some("2.0") {
            return Err(invalid("jsonrpc must be \"2.0\""));
        }
        let method = match self.method {
            Some(raw) => Some(
                raw.text()
                    .ok_or_else(|| invalid("method must be a string"))?,
            ),
            None => None,
        };
        let Some(method) = method else {
            // No method: a response to a server-to-client request.
            let value = |raw: &RawValue| serde_json::from_str::<Value>(raw.get()).ok();
            return match (id, self.result.map(value), self.error.map(value)) {
                (Some(id), Some(Some(r)), None) => {
                    Ok(Message::ClientResponse { id, outcome: Ok(r) })
                }
                (Some(id), None, Some(Some(e))) if e.is_object() => Ok(Message::ClientResponse {
                    id,
                    outcome: Err(e),
                }),
                (id, ..) => Err(Invalid {
                    id,
                    reason: "a message needs a method, or an id with result or error",
                }),
            };
        };
        if self.result.is_some() || self.error.is_some() {
            return Err(invalid("a request must not carry result or error"));
        }
        let params = match self.params {
            Some(raw) if !raw.get().starts_with('{') => {
                return Err(invalid("params must be an object"));
            }
            params => params,
        };
        Ok(match id {
            Some(id) => Message::Request(Request { id, method, params }),
            None => Message::Notification { method, params },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: &Value) -> Result<Message<'static>, Unreadable> {
        let text: &'static str = Box::leak(v.to_string().into_boxed_str());
        Message::parse(text.as_bytes())
    }

    #[test]
    fn a_request_keeps_its_id_exactly_and_its_params_as_text() {
        for id in [
            json!(1),
            json!("abc"),
            json!(-7),
            json!(18446744073709551615u64),
        ] {
            let m =
                parse(&json!({"jsonrpc":"2.0","id":id.clone(),"method":"ping","params":{"a":1}}));
            let Ok(Message::Request(r)) = m else {
                panic!("not a request")
            };
            assert_eq!(serde_json::to_value(&r.id).unwrap(), id);
            assert_eq!(r.method, "ping");
            assert_eq!(r.params.map(RawValue::get), Some(r#"{"a":1}"#));
        }
        // Escapes in the method are read; white space around members is not kept.
        let text = br#" { "method" : "tools\/call" , "id" : 1 , "jsonrpc" : "2.0" } "#;
        let Ok(Message::Request(r)) = Message::parse(text) else {
            panic!()
        };
        assert_eq!(r.method, "tools/call");
    }

    #[test]
    fn an_array_is_not_read_as_an_envelope_by_position() {
        // Found by the jsonrpc_message fuzz target: `[0, 0]` read as (jsonrpc, id) gave an
        // error that echoed an id the text never held.
        for text in [
            &b"\t[ 0,  0]"[..],
            b"[\"2.0\", 1, \"ping\"]",
            b"7",
            b"\"x\"",
        ] {
            assert!(
                matches!(
                    Message::parse(text),
                    Err(Unreadable::Invalid(Invalid { id: None, .. }))
                ),
                "{}",
                String::from_utf8_lossy(text)
            );
        }
        assert!(matches!(Message::parse(b"[1,"), Err(Unreadable::NotJson)));
    }

    #[test]
    fn scalar_members_are_read_in_one_pass_whatever_they_hold() {
        // A nested value where a string belongs is read to its end and refused, not unparsable.
        let nested = br#"{"jsonrpc":{"a":[1,{"b":"]}"}]},"id":1,"method":"ping"}"#;
        assert!(matches!(
            Message::parse(nested),
            Err(Unreadable::Invalid(Invalid { id: Some(_), .. }))
        ));
        // Escapes are decoded; the id length counts characters.
        let escaped = br#"{"jsonrpc":"2\u002e0","id":"a\u0041","method":"pi\u006eg"}"#;
        let Ok(Message::Request(r)) = Message::parse(escaped) else {
            panic!("an escaped request is a request");
        };
        assert_eq!((r.id, r.method.as_ref()), (Id::Str("aA".into()), "ping"));
        let long = json!({"jsonrpc":"2.0","id":"é".repeat(MAX_ID_CHARS + 1),"method":"ping"});
        assert!(parse(&long).is_err());
        let longest = json!({"jsonrpc":"2.0","id":"é".repeat(MAX_ID_CHARS),"method":"ping"});
        assert!(parse(&longest).is_ok());
    }

    #[test]
    fn null_float_and_bool_ids_are_refused() {
        for id in [json!(null), json!(1.5), json!(true), json!([1]), json!({})] {
            let m = parse(&json!({"jsonrpc":"2.0","id":id,"method":"ping"}));
            assert!(matches!(
                m,
                Err(Unreadable::Invalid(Invalid { id: None, .. }))
            ));
        }
    }

    #[test]
    fn wrong_versions_and_shapes_are_invalid_not_unparsable() {
        for v in [
            json!({"jsonrpc":"1.0","id":1,"method":"ping"}),
            json!({"id":1,"method":"ping"}),
            json!({"jsonrpc":"2.0","id":1,"method":3}),
            json!({"jsonrpc":"2.0","id":1,"method":"x","params":[1]}),
            json!({"jsonrpc":"2.0","id":1,"method":"x","params":null}),
            json!({"jsonrpc":"2.0","id":1,"method":"x","result":{}}),
            json!({"jsonrpc":"2.0"}),
            json!(42),
            json!("x"),
        ] {
            assert!(matches!(parse(&v), Err(Unreadable::Invalid(_))), "{v}");
        }
        let twice = br#"{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}"#;
        assert!(matches!(
            Message::parse(twice),
            Err(Unreadable::Invalid(Invalid { reason, .. })) if reason.contains("twice")
        ));
        for text in [&b"{"[..], b"", b"{\"a\":}", b"42 43", b"[1,"] {
            assert_eq!(Message::parse(text).unwrap_err(), Unreadable::NotJson);
        }
    }

    #[test]
    fn notifications_and_responses_are_told_apart() {
        assert!(matches!(
            parse(&json!({"jsonrpc":"2.0","method":"notifications/initialized"})),
            Ok(Message::Notification { .. })
        ));
        let Ok(Message::ClientResponse { id, outcome }) =
            parse(&json!({"jsonrpc":"2.0","id":3,"result":{}}))
        else {
            panic!()
        };
        assert_eq!((id, outcome), (Id::Int(3.into()), Ok(json!({}))));
        assert!(parse(&json!({"jsonrpc":"2.0","id":3,"error":"no"})).is_err());
    }

    #[derive(Debug)]
    struct Written(Option<&'static str>);

    impl JsonResult for Written {
        fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
            match self.0 {
                Some(text) => {
                    out.extend_from_slice(text.as_bytes());
                    Ok(())
                }
                None => Err(serde::ser::Error::custom("cannot")),
            }
        }
    }

    #[test]
    fn a_success_is_written_in_one_pass_and_a_failed_result_becomes_an_error() {
        let ok = Response::success(
            Id::Str("a\"b".into()),
            Arc::new(Written(Some(r#"{"x":[1]}"#))),
        );
        assert_eq!(
            ok.to_json(),
            r#"{"jsonrpc":"2.0","id":"a\"b","result":{"x":[1]}}"#
        );
        assert_eq!(
            serde_json::to_value(&ok).unwrap(),
            json!({"jsonrpc": "2.0", "id": "a\"b", "result": {"x": [1]}})
        );
        let failed = Response::success(Id::Int(3.into()), Arc::new(Written(None)));
        let v: Value = serde_json::from_str(&failed.to_json()).unwrap();
        assert_eq!(v["id"], 3);
        assert_eq!(v["error"]["code"], -32603);
    }

    #[test]
    fn error_response_omits_absent_id_and_data() {
        let r = Response::error(
            None,
            ErrorObject::new(ErrorCode::PARSE_ERROR, "Parse error"),
        );
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"}})
        );
    }
}
