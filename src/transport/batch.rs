//! JSON-RPC batches (protocol revision 2025-03-26 only): the pre-parse item count that lets an
//! oversized batch be refused unread, the request budget every item draws on, and answering the
//! items in order.

use actix_web::HttpResponse;
use actix_web::http::header::{CONTENT_TYPE, HeaderValue};
use serde_json::value::RawValue;
use std::sync::Arc;

use super::head::outside_strings;
use super::{Cap, Limits, RESULT_RESERVE, capped, invalid, notification_params, outcome_response};
use crate::auth::Caller;
use crate::budget::{Budgets, Refused, Which};
use crate::edge::Admitted;
use crate::failure::Kind;
use crate::jsonrpc::{Id, Message, Response};
use crate::mcp::model::Request;
use crate::mcp::{Call, Era, McpError, Outcome, Server, retry_after_secs};
use crate::refusal::Refusal;
use crate::request_id::RequestId;

/// 2025-03-26 batches: each request answered in order, notifications omitted, 202 if no
/// response remains.
pub(super) async fn batch(
    items: Vec<&RawValue>,
    server: &Arc<Server>,
    limits: &Limits,
    caller: Caller,
    era: Era,
    request_id: &RequestId,
) -> HttpResponse {
    if items.is_empty() {
        return invalid(
            None,
            McpError::InvalidRequest("Invalid Request: empty batch".into()),
        );
    }
    // The body is `[` + the responses joined by `,` + `]`.
    let mut body = b"[".to_vec();
    fn add(body: &mut Vec<u8>, text: &[u8]) {
        if body.len() > 1 {
            body.push(b',');
        }
        body.extend_from_slice(text);
    }
    for item in items {
        match Message::parse_item(item) {
            Err(bad) => add(
                &mut body,
                &Response::error(bad.id.clone(), McpError::from(bad).to_error()).to_json_bytes(),
            ),
            Ok(Message::Notification { method, params }) => {
                server.notify(&caller, &method, &notification_params(params))
            }
            // An answer inside a batch can only be delivered here (a batch has no stream, so no
            // question of this request waits; one of an earlier request may).
            Ok(Message::ClientResponse { id, outcome }) => {
                let _ = server
                    .pending
                    .answer(caller.subject().unwrap_or(""), &id, outcome);
            }
            Ok(Message::Request(request)) => {
                let request = Request::new(request);
                let id = request.id.clone();
                let cap = Cap::new(server, limits, &request, era);
                let call = Call {
                    caller: caller.clone(),
                    era,
                    meta: None,
                    param_headers: Vec::new(),
                    tx: None,
                    request_id: request_id.clone(),
                    tool_budget_charged: false,
                };
                match server.handle(request, call).outcome().await {
                    // Room is kept for the closing bracket and the errors of later items.
                    Outcome::Response(r) => {
                        let text = capped(&r, &id, body.len() + RESULT_RESERVE, &cap);
                        add(&mut body, &text);
                    }
                    other => return outcome_response(other, &id, &cap),
                }
            }
        }
    }
    if body.len() == 1 {
        return HttpResponse::Accepted().finish();
    }
    body.push(b']');
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, HeaderValue::from_static("application/json")))
        .body(body)
}

/// The number of top-level items when `body` is a JSON array (a count of the commas at depth
/// one, plus one; strings skipped): lets an oversized batch be refused before it is parsed.
pub fn batch_items(body: &[u8]) -> Option<usize> {
    let start = body.iter().position(|b| !b.is_ascii_whitespace())?;
    if body[start] != b'[' {
        return None;
    }
    let mut depth = 0usize;
    let mut commas = 0usize;
    let mut seen_value = false;
    outside_strings(&body[start..], |b| {
        match b {
            b'[' | b'{' => {
                depth += 1;
                seen_value |= depth > 1;
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b',' if depth == 1 => commas += 1,
            b if depth == 1 && !b.is_ascii_whitespace() => seen_value = true,
            _ => {}
        }
        true
    });
    Some(if seen_value { commas + 1 } else { commas })
}

/// A batch's further items: every item beyond the first (which the auth gate charged, unless
/// it left the charge owed) costs one more request of the caller's budget. `Some(429)` when
/// the budget cannot pay for `items` messages (`Some(503)` when the shared store does not
/// answer and the policy is to refuse).
pub(super) async fn charge_batch(
    budgets: &Budgets,
    admitted: &Admitted,
    items: usize,
) -> Option<HttpResponse> {
    let key = admitted.key.as_ref()?;
    let counted = usize::from(!admitted.owed);
    let extra = u32::try_from(items.saturating_sub(counted)).unwrap_or(u32::MAX);
    let wait = match budgets.charge_requests(key, extra, false).await {
        Ok(()) => return None,
        Err(Refused::Wait(wait)) => wait,
        Err(Refused::StoreDown) => return Some(Refusal::store_down().into_response()),
    };
    let secs = retry_after_secs(wait);
    Some(
        Refusal::transport(
            Kind::TooManyRequests,
            format!(
                "Too many requests: this batch of {items} messages is over the request budget; retry in {secs} s"
            ),
        )
        .with_retry_after(secs)
        .into_response(),
    )
}

/// The request-budget charge the auth gate left owed, for one message; a tool call (`tool_call`:
/// its id) pays its tool-call budget in the same round trip. `Ok(true)` when the tool-call
/// budget was charged too; `Err` is the refusal to send (429 or 503, the tool budget's with the
/// request's id).
pub(super) async fn charge_owed(
    budgets: &Budgets,
    admitted: &Admitted,
    server: &Server,
    limits: &Limits,
    tool_call: Option<&Id>,
) -> Result<bool, HttpResponse> {
    let Some(key) = admitted.key.as_ref().filter(|_| admitted.owed) else {
        return Ok(false);
    };
    let subject = admitted.caller.subject();
    let tool_subject = tool_call.and(subject);
    match budgets.charge_message(key, tool_subject).await {
        Ok(charged) => Ok(charged),
        Err((Which::Requests, refused)) => {
            Err(crate::auth::gate::request_budget_refusal(refused).into_response())
        }
        Err((Which::ToolCalls, refused)) => {
            let id = tool_call.expect("only a tool call charges the tool budget");
            let cap = Cap::plain(server, limits);
            let outcome = server.refusal(
                Era::Modern,
                Some(id.clone()),
                Server::tool_budget_refusal(refused),
            );
            Err(outcome_response(outcome, id, &cap))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_items_counts_top_level_members_only() {
        assert_eq!(batch_items(br#"{"a":[1,2]}"#), None);
        assert_eq!(batch_items(b"[]"), Some(0));
        assert_eq!(batch_items(b" [1]"), Some(1));
        assert_eq!(batch_items(br#"[{"a":[1,2,3]},"x,y",[4,5]]"#), Some(3));
        assert_eq!(batch_items(br#"["\",\"", 2]"#), Some(2));
    }
}
