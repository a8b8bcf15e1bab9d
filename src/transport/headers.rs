//! The standard request headers of the 2026-07-28 revision: `Mcp-Method` on every request,
//! `Mcp-Name` on `tools/call`, `prompts/get` and `resources/read`, and the `Mcp-Param-*` headers
//! of `x-mcp-header` tool parameters. Names are case-insensitive, values case-sensitive with
//! surrounding whitespace ignored, and `=?base64?...?=` values are decoded before comparing.

use actix_web::HttpRequest;
use actix_web::http::header::HeaderValue;

use crate::header_params::decode;
use crate::mcp::McpError;
use crate::mcp::model::Request;
use crate::mcp::modern::name_member;

const PARAM_PREFIX: &str = "mcp-param-";

/// The text of a header value without surrounding whitespace; `None` when it is not UTF-8.
fn text(v: &HeaderValue) -> Option<&str> {
    std::str::from_utf8(v.as_bytes())
        .ok()
        .map(|s| s.trim_matches([' ', '\t']))
}

/// The one value of a header: `Err` names the problem when it is missing, repeated or not text.
fn one<'a>(req: &'a HttpRequest, name: &str) -> Result<&'a str, McpError> {
    let mut all = req.headers().get_all(name);
    match (all.next(), all.next()) {
        (None, _) => Err(McpError::HeaderMismatch(format!(
            "the {name} header is required"
        ))),
        (Some(_), Some(_)) => Err(McpError::HeaderMismatch(format!(
            "the {name} header must appear once"
        ))),
        (Some(v), None) => text(v).ok_or_else(|| {
            McpError::HeaderMismatch(format!(
                "the {name} header must be text (use =?base64?...?= for other characters)"
            ))
        }),
    }
}

/// Checks `Mcp-Method` and, where the method has one, `Mcp-Name` against the body.
pub fn check(req: &HttpRequest, request: &Request) -> Result<(), McpError> {
    let method = one(req, "Mcp-Method")?;
    if method != request.method {
        return Err(McpError::HeaderMismatch(
            "the Mcp-Method header does not match the body's method".into(),
        ));
    }
    let Some(member) = name_member(&request.method) else {
        return Ok(());
    };
    // A body without the member is refused by the method itself (-32602).
    let Some(body) = request.name(member) else {
        return Ok(());
    };
    let name = one(req, "Mcp-Name")?;
    match decode(name) {
        Some(n) if n == body => Ok(()),
        Some(_) => Err(McpError::HeaderMismatch(format!(
            "the Mcp-Name header does not match the body's params.{member}"
        ))),
        None => Err(McpError::HeaderMismatch(
            "the Mcp-Name header is not valid =?base64?...?= text".into(),
        )),
    }
}

/// The `Mcp-Param-*` headers: (the name after the prefix, lower-case; the decoded value, `None`
/// when its encoding is invalid).
pub fn params(req: &HttpRequest) -> Vec<(String, Option<String>)> {
    req.headers()
        .iter()
        .filter_map(|(name, value)| {
            let suffix = name.as_str().strip_prefix(PARAM_PREFIX)?;
            Some((suffix.to_string(), text(value).and_then(decode)))
        })
        .collect()
}
