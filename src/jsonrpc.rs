//! JSON-RPC 2.0 wire types: ids, messages, responses and error codes. Only this module knows the
//! envelope format; everything else works with the typed values it produces.

use std::sync::Arc;

use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

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
    /// Reads an id from a JSON value; `None` for null, floats, booleans, objects, arrays and
    /// strings longer than `MAX_ID_CHARS`.
    pub fn from_value(v: &Value) -> Option<Id> {
        match v {
            Value::String(s) if s.chars().count() <= MAX_ID_CHARS => Some(Id::Str(s.clone())),
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

/// A result as sent, already serialized (from the typed results of `mcp::result`, never
/// through a `Value`): built for this request, or serialized once and shared by many responses
/// (a tool listing is the same for every caller with the same scopes).
#[derive(Debug, Clone)]
pub enum ResultBody {
    Built(Box<RawValue>),
    Shared(Arc<RawValue>),
}

impl ResultBody {
    pub fn text(&self) -> &str {
        match self {
            ResultBody::Built(raw) => raw.get(),
            ResultBody::Shared(raw) => raw.get(),
        }
    }
}

impl Serialize for ResultBody {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ResultBody::Built(v) => v.serialize(s),
            ResultBody::Shared(raw) => raw.serialize(s),
        }
    }
}

impl PartialEq for ResultBody {
    fn eq(&self, other: &Self) -> bool {
        let value = |r: &ResultBody| serde_json::from_str::<Value>(r.text()).ok();
        value(self) == value(other)
    }
}

impl Response {
    pub fn success(id: Id, result: Box<RawValue>) -> Self {
        Response::Success {
            jsonrpc: Version2,
            id,
            result: ResultBody::Built(result),
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

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("responses always serialize")
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

/// A request the client sent: it has an id and expects exactly one response.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub id: Id,
    pub method: String,
    pub params: Map<String, Value>,
}

/// One message the client sent, classified.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Request(Request),
    Notification {
        method: String,
        params: Map<String, Value>,
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

impl Message {
    /// Classifies one JSON value as a request, a notification or a client response.
    pub fn classify(value: Value) -> Result<Message, Invalid> {
        let Value::Object(mut obj) = value else {
            return Err(Invalid {
                id: None,
                reason: "a message must be a JSON object",
            });
        };
        let raw_id = obj.remove("id");
        let id = match &raw_id {
            None => None,
            Some(v) => match Id::from_value(v) {
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
        if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return Err(invalid("jsonrpc must be \"2.0\""));
        }
        let method = match obj.remove("method") {
            Some(Value::String(m)) => Some(m),
            Some(_) => return Err(invalid("method must be a string")),
            None => None,
        };
        let Some(method) = method else {
            // No method: a response to a server-to-client request.
            let result = obj.remove("result");
            let error = obj.remove("error");
            return match (id, result, error) {
                (Some(id), Some(r), None) => Ok(Message::ClientResponse { id, outcome: Ok(r) }),
                (Some(id), None, Some(e)) if e.is_object() => Ok(Message::ClientResponse {
                    id,
                    outcome: Err(e),
                }),
                (id, ..) => Err(Invalid {
                    id,
                    reason: "a message needs a method, or an id with result or error",
                }),
            };
        };
        if obj.contains_key("result") || obj.contains_key("error") {
            return Err(invalid("a request must not carry result or error"));
        }
        let params = match obj.remove("params") {
            None => Map::new(),
            Some(Value::Object(p)) => p,
            Some(_) => return Err(invalid("params must be an object")),
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

    #[test]
    fn classify_request_keeps_id_exactly() {
        for id in [
            json!(1),
            json!("abc"),
            json!(-7),
            json!(18446744073709551615u64),
        ] {
            let m = Message::classify(json!({"jsonrpc":"2.0","id":id.clone(),"method":"ping"}));
            let Ok(Message::Request(r)) = m else {
                panic!("not a request")
            };
            assert_eq!(serde_json::to_value(&r.id).unwrap(), id);
        }
    }

    #[test]
    fn classify_rejects_null_float_and_bool_ids() {
        for id in [json!(null), json!(1.5), json!(true), json!([1]), json!({})] {
            let m = Message::classify(json!({"jsonrpc":"2.0","id":id,"method":"ping"}));
            assert!(m.is_err());
        }
    }

    #[test]
    fn classify_rejects_wrong_version_and_shapes() {
        for v in [
            json!({"jsonrpc":"1.0","id":1,"method":"ping"}),
            json!({"id":1,"method":"ping"}),
            json!({"jsonrpc":"2.0","id":1,"method":3}),
            json!({"jsonrpc":"2.0","id":1,"method":"x","params":[1]}),
            json!({"jsonrpc":"2.0"}),
            json!(42),
            json!("x"),
        ] {
            assert!(Message::classify(v).is_err());
        }
    }

    #[test]
    fn classify_notification_and_response() {
        assert!(matches!(
            Message::classify(json!({"jsonrpc":"2.0","method":"notifications/initialized"})),
            Ok(Message::Notification { .. })
        ));
        assert_eq!(
            Message::classify(json!({"jsonrpc":"2.0","id":3,"result":{}})),
            Ok(Message::ClientResponse {
                id: Id::Int(3.into()),
                outcome: Ok(json!({}))
            })
        );
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
