//! What the transport checks before it parses a message: the response framing a POST's
//! `Accept` admits, its `Content-Type` and declared length (`head_check`, which the `Expect:
//! 100-continue` check asks too), the body read under its limits, and the JSON depth cap.

use actix_web::http::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap};
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use futures_util::StreamExt;

use super::{Limits, transport_error};
use crate::failure::Kind;
use crate::refusal::Refusal;

/// How a response may be framed, from the request's `Accept` (negotiated as HTTP does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Both listed (what MCP clients send): JSON, or SSE when notifications come first.
    Either,
    /// JSON only (no `Accept`, `*/*`, `application/*`, `application/json`): notifications that
    /// would need a stream are dropped.
    JsonOnly,
    /// `text/event-stream` without JSON: every answer is an event stream.
    SseOnly,
}

/// Negotiates the framing; `None` when `Accept` admits neither type (406). Quality values
/// count: a range with `q=0` refuses, and the most specific range that matches a type decides
/// its quality (`application/json;q=0, */*` refuses JSON).
pub fn negotiate(req: &HttpRequest) -> Option<Framing> {
    negotiate_headers(req.headers())
}

/// [`negotiate`] from the headers alone.
fn negotiate_headers(headers: &HeaderMap) -> Option<Framing> {
    // What MCP clients send, settled without parsing (the same answer the parse gives).
    let mut values = headers.get_all(ACCEPT);
    if let (Some(v), None) = (values.next(), values.next())
        && matches!(
            v.as_bytes(),
            b"application/json, text/event-stream" | b"text/event-stream, application/json"
        )
    {
        return Some(Framing::Either);
    }
    // (quality, how specific: 3 exact, 2 `type/*`, 1 `*/*`) of the best-matching range so far.
    let mut json: Option<(f32, u8)> = None;
    let mut sse: Option<(f32, u8)> = None;
    let mut present = false;
    for value in headers.get_all(ACCEPT) {
        let Ok(v) = value.to_str() else { continue };
        for range in v.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim();
            if media.is_empty() {
                continue;
            }
            present = true;
            let q = parts
                .filter_map(|p| {
                    let p = p.trim();
                    let (name, value) = p.split_once('=')?;
                    name.trim()
                        .eq_ignore_ascii_case("q")
                        .then(|| value.trim().parse::<f32>().unwrap_or(0.0))
                })
                .next()
                .unwrap_or(1.0);
            let is = |s: &str| media.eq_ignore_ascii_case(s);
            let note = |slot: &mut Option<(f32, u8)>, specificity: u8| {
                if slot.is_none_or(|(_, s)| specificity > s) {
                    *slot = Some((q, specificity));
                }
            };
            if is("application/json") {
                note(&mut json, 3);
            } else if is("text/event-stream") {
                note(&mut sse, 3);
            } else if is("application/*") {
                note(&mut json, 2);
            } else if is("text/*") {
                note(&mut sse, 2);
            } else if is("*/*") {
                note(&mut json, 1);
                note(&mut sse, 1);
            }
        }
    }
    // No Accept (or an empty one) accepts anything: JSON.
    if !present {
        return Some(Framing::JsonOnly);
    }
    let json_ok = json.is_some_and(|(q, _)| q > 0.0);
    let (sse_ok, sse_explicit) = sse.map_or((false, false), |(q, s)| (q > 0.0, s == 3));
    match (json_ok, sse_ok) {
        (true, true) if sse_explicit => Some(Framing::Either),
        (true, _) => Some(Framing::JsonOnly),
        (false, true) => Some(Framing::SseOnly),
        (false, false) => None,
    }
}

fn is_json_content(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(CONTENT_TYPE);
    let (Some(v), None) = (values.next(), values.next()) else {
        return false;
    };
    if v.as_bytes() == b"application/json" {
        return true;
    }
    v.to_str()
        .ok()
        .and_then(|s| s.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

/// Calls `f` with every byte of `body` that lies outside JSON strings, and with the `"` that
/// opens each string; stops when `f` returns false. Both pre-parse checks walk the body with it.
pub(super) fn outside_strings(body: &[u8], mut f: impl FnMut(u8) -> bool) {
    let mut in_string = false;
    let mut escaped = false;
    for &b in body {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        in_string = b == b'"';
        if !f(b) {
            return;
        }
    }
}

/// True when brackets nest deeper than `max` (strings are skipped). Runs before parsing so a
/// deeply nested body never reaches the parser's recursion.
pub fn too_deep(body: &[u8], max: usize) -> bool {
    // Depth never exceeds the count of opening brackets, a count the compiler vectorizes (in
    // byte lanes, hence chunks of at most 255): it settles most bodies without the
    // byte-by-byte walk.
    let openers: usize = body
        .chunks(255)
        .map(|chunk| {
            let n = chunk
                .iter()
                .fold(0u8, |n, &b| n + u8::from(b == b'[' || b == b'{'));
            usize::from(n)
        })
        .sum();
    if openers <= max {
        return false;
    }
    let mut depth = 0usize;
    let mut deep = false;
    outside_strings(body, |b| {
        match b {
            b'[' | b'{' => {
                depth += 1;
                deep = depth > max;
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        !deep
    });
    deep
}

pub(super) enum BodyError {
    TooLarge,
    Timeout,
    Broken,
}

pub(super) async fn read_body(
    mut payload: web::Payload,
    limits: &Limits,
) -> Result<Bytes, BodyError> {
    let read = async {
        // A body that comes in one chunk (nearly every body) is that chunk, not a copy of it.
        let mut first: Option<Bytes> = None;
        let mut buf = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|_| BodyError::Broken)?;
            let held = first.as_ref().map_or(buf.len(), Bytes::len);
            if held + chunk.len() > limits.max_body_bytes {
                return Err(BodyError::TooLarge);
            }
            match first.take() {
                None if buf.is_empty() => first = Some(chunk),
                Some(f) => {
                    buf.extend_from_slice(&f);
                    buf.extend_from_slice(&chunk);
                }
                None => buf.extend_from_slice(&chunk),
            }
        }
        Ok(first.unwrap_or_else(|| buf.freeze()))
    };
    crate::body::within_after_a_turn(limits.body_timeout, read)
        .await
        .unwrap_or(Err(BodyError::Timeout))
}

/// The answer to a body that could not be read.
pub(super) fn body_refusal(e: BodyError, limits: &Limits) -> HttpResponse {
    match e {
        BodyError::TooLarge => too_large(limits).into_response(),
        BodyError::Timeout => transport_error(
            Kind::RequestTimeout,
            "Request Timeout: the body arrived too slowly",
        ),
        BodyError::Broken => transport_error(Kind::BadRequest, "Bad Request: unreadable body"),
    }
}

fn too_large(limits: &Limits) -> Refusal {
    Refusal::transport(
        Kind::PayloadTooLarge,
        format!(
            "Payload Too Large: the limit is {} bytes",
            limits.max_body_bytes
        ),
    )
}

/// What the transport refuses from a POST's head alone, in its order: 406 (`Accept`), 415
/// (`Content-Type`), 413 (a declared `Content-Length` over the limit); else the framing. The
/// `Expect: 100-continue` check asks it too, before any body is invited.
pub fn head_check(headers: &HeaderMap, limits: &Limits) -> Result<Framing, Box<Refusal>> {
    let Some(framing) = negotiate_headers(headers) else {
        return Err(Box::new(Refusal::transport(
            Kind::NotAcceptable,
            "Not Acceptable: Accept must admit application/json or text/event-stream (MCP clients send both)",
        )));
    };
    if !is_json_content(headers) {
        return Err(Box::new(Refusal::transport(
            Kind::UnsupportedMediaType,
            "Unsupported Media Type: Content-Type must be application/json",
        )));
    }
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body_bytes as u64) {
        return Err(Box::new(too_large(limits)));
    }
    Ok(framing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_brackets_outside_strings() {
        assert!(!too_deep(br#"{"a":[[1]]}"#, 3));
        assert!(too_deep(br#"{"a":[[[1]]]}"#, 3));
        assert!(!too_deep(br#"{"a":"[[[[[[[[["}"#, 2));
        assert!(!too_deep(br#"{"a":"\"[[[[[[[["}"#, 2));
        assert!(too_deep(&[b'['; 10_000], 64));
        // Counted in chunks of 255: brackets on both sides of a chunk's edge, and in strings.
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(!too_deep(nested(64).as_bytes(), 64));
        assert!(too_deep(nested(65).as_bytes(), 64));
        let quoted = format!(r#"{{"a":"{}","b":{}}}"#, "[".repeat(600), nested(60));
        assert!(!too_deep(quoted.as_bytes(), 64));
    }

    fn framing(accept: &[&str]) -> Option<Framing> {
        let mut r = actix_web::test::TestRequest::default();
        for a in accept {
            r = r.append_header((ACCEPT, *a));
        }
        negotiate(&r.to_http_request())
    }

    #[test]
    fn what_clients_send_is_settled_as_the_parse_would() {
        let cases: [(&[&str], Option<Framing>); 7] = [
            (
                &["application/json, text/event-stream"],
                Some(Framing::Either),
            ),
            (
                &["text/event-stream, application/json"],
                Some(Framing::Either),
            ),
            (
                &["application/json,text/event-stream"],
                Some(Framing::Either),
            ),
            (
                &["application/json, text/event-stream;q=0"],
                Some(Framing::JsonOnly),
            ),
            (&["text/event-stream"], Some(Framing::SseOnly)),
            (&[], Some(Framing::JsonOnly)),
            (&["text/html"], None),
        ];
        for (accept, expected) in cases {
            assert_eq!(framing(accept), expected, "Accept: {accept:?}");
        }
    }
}
