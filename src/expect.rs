//! `Expect: 100-continue` (RFC 9110 section 10.1.1): actix answers `100 Continue` as soon as it
//! reads such a head, inviting the client to upload a body the server may then refuse unread.
//! This check runs first instead: a request to the MCP endpoint that the edge, the auth gate or
//! the transport would refuse before reading its body gets that final status at once (and the
//! connection closes, so a body sent anyway is never read as a next request); only a request
//! that passes every one of those checks gets its `100 Continue`. Other paths never read a body
//! worth guarding and continue as before.
//!
//! The checks are the pipeline's own, in its order: head size and Host (the edge's guard), then
//! Origin, the request budget and the token (the auth gate, with its allowance of first
//! verifications), then Accept, Content-Type and the declared body size (the transport). A
//! token verified here is in the verified-token cache when the gate sees it.

use std::sync::Arc;

use actix_http::Request;
use actix_web::HttpResponse;
use actix_web::dev::{ServiceFactory, Url, fn_service};
use actix_web::http::header::{self, HeaderMap};
use actix_web::http::{ConnectionType, Method};
use actix_web::web;

use crate::auth::bearer;
use crate::auth::gate::{
    AuthMode, Gate, auth_refusal, authenticate_token, bearer_token, request_budget_refusal,
};
use crate::budget::RateKey;
use crate::edge::{GuardSettings, bucket, client_ip_from};
use crate::failure::Kind;
use crate::refusal::Refusal;
use crate::transport::Limits;

/// What the check needs of the application's state.
pub struct ExpectCheck {
    pub mcp_path: String,
    pub guard: web::Data<GuardSettings>,
    pub gate: web::Data<Gate>,
    pub limits: web::Data<Limits>,
}

impl ExpectCheck {
    /// `Err` with the final response when the request would be refused before its body is read.
    async fn verdict(&self, req: &Request) -> Result<(), Refusal> {
        let head = req.head();
        // The router's own reading of the path (percent-decoding included), so every spelling
        // of the endpoint that routes to it is checked.
        if head.method != Method::POST || Url::new(head.uri.clone()).path() != self.mcp_path {
            return Ok(());
        }
        let headers = &head.headers;
        if let Some(refusal) =
            crate::edge::head_refusal(headers, &head.uri, head.uri.path(), &self.guard)
        {
            return Err(refusal);
        }
        if let Some(refusal) = crate::edge::origin_refusal_of(headers, &self.guard) {
            return Err(refusal);
        }
        self.admitted(req, headers).await?;
        crate::transport::head_check(headers, &self.limits)
            .map(|_| ())
            .map_err(|refusal| *refusal)
    }

    /// The auth gate's decision: a token already verified passes; anything else charges the
    /// address's request budget (or its allowance of first verifications), then is verified.
    async fn admitted(&self, req: &Request, headers: &HeaderMap) -> Result<(), Refusal> {
        let gate = &self.gate;
        let AuthMode::On(validator) = &gate.auth.mode else {
            return Ok(());
        };
        if bearer::presented(headers)
            .is_some_and(|(_, t)| validator.already_verified(t, None).is_some())
        {
            return Ok(());
        }
        let token = bearer_token(bearer::from_headers(headers));
        if gate.budgets.enabled() {
            let Some(ip) = client_ip_from(headers, req.peer_addr(), gate.trusted_proxy) else {
                return Err(Refusal::transport(
                    Kind::ClientAddressUnknown,
                    "Bad Request: the client address cannot be determined",
                ));
            };
            let key = RateKey::Ip(bucket(ip));
            let first_sight = token.is_ok();
            if let Err(refused) = gate.budgets.charge_requests(&key, 1, first_sight).await {
                return Err(request_budget_refusal(refused));
            }
        }
        let token = token.map_err(|refused| auth_refusal(refused, &gate.auth.challenge))?;
        authenticate_token(token.0, validator, req.path(), req.peer_addr())
            .await
            .map(|_| ())
            .map_err(|refused| auth_refusal(refused, &gate.auth.challenge))
    }
}

/// The refusal as the final response, closing the connection: the client may send the body
/// anyway (curl does after a second), and it must not be read as another request. It carries
/// what the request log gives every response (a request id, `nosniff`, its count in
/// `gatehouse_requests_total`) and its access line.
fn closing(refusal: Refusal, req: &Request) -> actix_web::Error {
    let mut res: HttpResponse = refusal.into_response();
    res.head_mut().set_connection_type(ConnectionType::Close);
    // No JSON-RPC message was read: no era or method, as for any refusal before the body.
    crate::metrics::count_request("-", "-", crate::edge::status_label(res.status().as_u16()));
    let id = crate::request_id::RequestId::fresh();
    log::info!(
        target: "gatehouse::access",
        "{} {} {} before the body (Expect: 100-continue) request_id={} sub=-",
        req.method(),
        crate::text::log_safe(&req.path().chars().take(200).collect::<String>()),
        res.status().as_u16(),
        id.as_str()
    );
    let headers = res.headers_mut();
    if let Ok(id) = header::HeaderValue::from_maybe_shared(id.bytes()) {
        headers.insert(crate::edge::X_REQUEST_ID, id);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    actix_web::error::InternalError::from_response("refused before its body", res).into()
}

/// The expect service for `actix_http::HttpService::expect`.
pub fn service(
    check: Arc<ExpectCheck>,
) -> impl ServiceFactory<
    Request,
    Config = (),
    Response = Request,
    Error = actix_web::Error,
    InitError = (),
> + Clone {
    fn_service(move |req: Request| {
        let check = check.clone();
        async move {
            match check.verdict(&req).await {
                Ok(()) => Ok(req),
                Err(refusal) => Err(closing(refusal, &req)),
            }
        }
    })
}
