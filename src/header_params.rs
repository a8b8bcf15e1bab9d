//! `x-mcp-header` (2026-07-28): tool parameters a client mirrors into `Mcp-Param-<Name>` request
//! headers so proxies can route on them. Finds and checks the declarations in a tool's input
//! schema (once, at startup) and compares a request's headers with its arguments.

use serde_json::{Map, Value};

const KEY: &str = "x-mcp-header";

/// One declared parameter: where it sits in the arguments and the header that mirrors it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderParam {
    /// Property names from the arguments object down to the value.
    pub path: Vec<String>,
    /// The header name after `Mcp-Param-`, as declared.
    pub name: String,
    /// `integer` (or `number`): compared numerically.
    pub numeric: bool,
}

/// Keywords whose subschemas are not statically reachable through `properties`: a declaration
/// under one of them is invalid.
const UNREACHABLE: [&str; 18] = [
    "items",
    "prefixItems",
    "contains",
    "additionalProperties",
    "unevaluatedProperties",
    "unevaluatedItems",
    "propertyNames",
    "patternProperties",
    "dependentSchemas",
    "oneOf",
    "anyOf",
    "allOf",
    "not",
    "if",
    "then",
    "else",
    "$defs",
    "definitions",
];

/// RFC 9110 token characters.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Every declaration in `schema`, or the first rule it breaks: only on properties reached
/// through `properties` alone, only on `string`, `integer` or `boolean` properties, names that
/// are RFC 9110 tokens, unique ignoring case.
pub fn scan(schema: &Value) -> Result<Vec<HeaderParam>, String> {
    let mut found = Vec::new();
    visit(schema, &mut Vec::new(), true, &mut found)?;
    Ok(found)
}

fn visit(
    node: &Value,
    path: &mut Vec<String>,
    reachable: bool,
    found: &mut Vec<HeaderParam>,
) -> Result<(), String> {
    let Value::Object(schema) = node else {
        return Ok(());
    };
    if let Some(raw) = schema.get(KEY) {
        let at = if path.is_empty() {
            "<root>".to_string()
        } else {
            path.join(".")
        };
        if !reachable || path.is_empty() {
            return Err(format!(
                "{at}: {KEY} is allowed only on properties reached through \"properties\" alone"
            ));
        }
        let Some(name) = raw.as_str().filter(|n| is_token(n)) else {
            return Err(format!("{at}: {KEY} must be a header-name token"));
        };
        let kind = schema.get("type").and_then(Value::as_str);
        if !matches!(kind, Some("string" | "integer" | "boolean")) {
            return Err(format!(
                "{at}: {KEY} is allowed only on string, integer or boolean properties"
            ));
        }
        if found.iter().any(|p| p.name.eq_ignore_ascii_case(name)) {
            return Err(format!("{KEY} {name:?} is declared twice (ignoring case)"));
        }
        found.push(HeaderParam {
            path: path.clone(),
            name: name.to_string(),
            numeric: kind == Some("integer"),
        });
    }
    if let Some(Value::Object(props)) = schema.get("properties") {
        for (key, child) in props {
            path.push(key.clone());
            visit(child, path, reachable, found)?;
            path.pop();
        }
    }
    for k in UNREACHABLE {
        match schema.get(k) {
            Some(Value::Array(branches)) => {
                for b in branches {
                    visit(b, path, false, found)?;
                }
            }
            Some(Value::Object(m))
                if matches!(
                    k,
                    "patternProperties" | "dependentSchemas" | "$defs" | "definitions"
                ) =>
            {
                for b in m.values() {
                    visit(b, path, false, found)?;
                }
            }
            Some(sub) => visit(sub, path, false, found)?,
            None => {}
        }
    }
    Ok(())
}

/// Decodes a header value: `=?base64?<canonical base64>?=` is decoded as UTF-8, anything else
/// is taken literally. `None` when the wrapper is there but its content is not canonical
/// base64 of UTF-8 text.
pub fn decode(value: &str) -> Option<String> {
    use base64::Engine;
    let Some(inner) = value
        .strip_prefix("=?base64?")
        .and_then(|v| v.strip_suffix("?="))
    else {
        return Some(value.to_string());
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(inner)
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// The text a primitive argument is mirrored as; `None` for values never mirrored (null,
/// objects, arrays).
fn as_header_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Compares the request's `Mcp-Param-*` headers (lower-case name, decoded value; `None` for a
/// bad encoding) with the arguments: every declared parameter the arguments carry must have its
/// header, equal to it (integers compared as numbers). A header for an absent or null value is
/// ignored. `Err` says what disagrees.
pub fn check(
    declared: &[HeaderParam],
    args: &Value,
    headers: &[(String, Option<String>)],
) -> Result<(), String> {
    for p in declared {
        let mut value = Some(args);
        for key in &p.path {
            value = value
                .and_then(Value::as_object)
                .and_then(|m: &Map<String, Value>| m.get(key));
        }
        let Some(body) = value.and_then(as_header_text) else {
            continue;
        };
        let header = format!("Mcp-Param-{}", p.name);
        let Some((_, got)) = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(&p.name))
        else {
            return Err(format!(
                "the body carries {} but the {header} header is missing",
                p.path.join(".")
            ));
        };
        let Some(got) = got else {
            return Err(format!(
                "the {header} header is not valid =?base64?...?= text"
            ));
        };
        let equal = if p.numeric {
            match (got.parse::<f64>(), value.and_then(Value::as_f64)) {
                (Ok(h), Some(b)) => h == b,
                _ => *got == body,
            }
        } else {
            *got == body
        };
        if !equal {
            return Err(format!(
                "the {header} header does not match the body's {}",
                p.path.join(".")
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn declarations_are_found_and_checked() {
        let schema = json!({"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "opts": {"type": "object", "properties": {"n": {"type": "integer", "x-mcp-header": "N"}}}
        }});
        let found = scan(&schema).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found[1].path, vec!["region"]);
        for bad in [
            json!({"type": "object", "properties": {"a": {"type": "array", "x-mcp-header": "A"}}}),
            json!({"type": "object", "properties": {"a": {"type": "string", "x-mcp-header": "a b"}}}),
            json!({"type": "object", "properties": {"a": {"type": "string", "x-mcp-header": "X"}, "b": {"type": "string", "x-mcp-header": "x"}}}),
            json!({"type": "object", "items": {"type": "string", "x-mcp-header": "A"}}),
            json!({"type": "object", "anyOf": [{"properties": {"a": {"type": "string", "x-mcp-header": "A"}}}]}),
        ] {
            assert!(scan(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn base64_values_decode_strictly() {
        assert_eq!(decode("=?base64?SGVsbG8=?="), Some("Hello".into()));
        assert_eq!(decode("=?base64?SGVsbG8?="), None);
        assert_eq!(decode("=?base64?SGVs!!!bG8=?="), None);
        assert_eq!(
            decode("=?base64?SGVsbG8="),
            Some("=?base64?SGVsbG8=".into())
        );
        assert_eq!(decode("SGVsbG8="), Some("SGVsbG8=".into()));
    }

    #[test]
    fn headers_must_mirror_the_arguments() {
        let declared = scan(&json!({"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "n": {"type": "integer", "x-mcp-header": "N"}
        }}))
        .unwrap();
        let h = |v: &[(&str, &str)]| -> Vec<(String, Option<String>)> {
            v.iter().map(|(n, v)| (n.to_string(), decode(v))).collect()
        };
        let args = json!({"region": "eu", "n": 42});
        assert!(check(&declared, &args, &h(&[("region", "eu"), ("n", "42.0")])).is_ok());
        assert!(check(&declared, &args, &h(&[("region", "EU"), ("n", "42")])).is_err());
        assert!(check(&declared, &args, &h(&[("n", "42")])).is_err());
        assert!(check(&declared, &json!({}), &h(&[("region", "x")])).is_ok());
        assert!(check(&declared, &json!({"region": null}), &[]).is_ok());
    }
}
