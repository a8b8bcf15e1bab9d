//! The auth gate on the MCP endpoint: the one place that reads the bearer header (once), owns
//! the caller's identity, and charges the request budget under the key that identity gives.
//!
//! A request whose token was already verified (and is still valid) is keyed by its subject, so
//! users behind one NAT do not share a budget; every other request, including the first sight
//! of any token, is keyed by the client address as the trusted proxy reports it, and charged
//! before its token is checked, so a flood of forged tokens costs a budget lookup each, not a
//! signature check. The client cannot pick its bucket: only verified tokens name one.
//!
//! Every method is charged; only POST needs a token (GET and DELETE get their 405, preflights
//! are answered by CORS before this). The verified `Caller` and the `RateKey` go into the
//! request for the transport and the dispatcher.

use std::sync::Arc;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{CACHE_CONTROL, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, web};

use super::bearer::{self, BearerError, Credentials};
use super::challenge::{AuthRefusal, ChallengeContext};
use super::validator::{Rejection, TokenMemo, TokenValidator};
use super::{Caller, Identity};
use crate::budget::{Budget, Refused};
use crate::config::TrustedProxy;
use crate::edge::{DeferredCharge, RateKey, bucket, client_ip, origin_refusal};
use crate::metrics::{self, METRICS};
use crate::refusal::Refusal;

/// How the MCP endpoint authenticates.
pub enum AuthMode {
    /// Development-only switch: every caller is anonymous with all permissions.
    Off,
    On(TokenValidator),
}

pub struct AuthState {
    pub mode: AuthMode,
    pub challenge: ChallengeContext,
}

impl AuthState {
    pub fn keys_ready(&self) -> bool {
        match &self.mode {
            AuthMode::Off => true,
            AuthMode::On(v) => v.keys().is_ready(),
        }
    }
}

/// What the gate works with.
pub struct Gate {
    pub auth: web::Data<AuthState>,
    /// Whose address header is trusted for the client address.
    pub trusted_proxy: TrustedProxy,
    /// The request budget; `None` when rate limiting is off.
    pub budget: Option<Arc<Budget<RateKey>>>,
    /// The budget lives in a shared store: a verified subject's request is charged by the
    /// transport once the body is parsed, together with a tool call's tool-call budget.
    pub shared: bool,
}

pub async fn gate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    // The Origin check comes first: a page on a foreign origin learns nothing, not even
    // whether it is over its budget.
    if let Some(refusal) = origin_refusal(&req) {
        return Ok(refusal.respond(req));
    }
    let gate = req
        .app_data::<web::Data<Gate>>()
        .expect("the auth gate is registered")
        .clone();
    let validator = match &gate.auth.mode {
        AuthMode::On(v) => Some(v),
        AuthMode::Off => None,
    };
    // A token already verified is found by its bytes alone; anything else is read in full.
    let known: Option<Arc<Identity>> = validator.and_then(|v| {
        let memo = req.conn_data::<TokenMemo>();
        v.already_verified(bearer::presented(req.headers())?, memo)
    });

    // The request budget, under the key the caller's verified identity gives, if any.
    let key = match &known {
        Some(identity) => RateKey::Subject(identity.subject.clone()),
        None => match client_ip(&req, gate.trusted_proxy) {
            Some(ip) => RateKey::Ip(bucket(ip)),
            None => {
                return Ok(Refusal::transport(
                    StatusCode::BAD_REQUEST,
                    "Bad Request: the client address cannot be determined",
                )
                .respond(req));
            }
        },
    };
    if let Some(budget) = &gate.budget {
        if gate.shared && matches!(key, RateKey::Subject(_)) {
            req.extensions_mut().insert(DeferredCharge);
        } else {
            match budget.take(&key, 1).await {
                Ok(()) => {}
                Err(Refused::Wait(wait)) => {
                    metrics::count(&METRICS.rate_limited, ["requests"]);
                    return Ok(Refusal::too_many_requests(wait).respond(req));
                }
                Err(Refused::StoreDown) => return Ok(Refusal::store_down().respond(req)),
            }
        }
        // For a batch's further items and the deferred charge (nothing reads it without a
        // budget).
        req.extensions_mut().insert(key);
    }
    if req.method() != Method::POST {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }

    let caller = match (validator, known) {
        (None, _) => Ok(Caller::Anonymous),
        (Some(_), Some(identity)) => Ok(Caller::Authenticated(identity)),
        // Boxed: a first sight is rare, and its future would otherwise size every request's.
        (Some(v), None) => {
            let credentials = bearer::from_headers(req.headers());
            Box::pin(authenticate(&req, credentials, v)).await
        }
    };
    match caller {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            let mut res = next.call(req).await?.map_into_boxed_body();
            // Answers to authenticated requests hold the caller's data: never cache them.
            res.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(res)
        }
        Err((refusal, reason)) => {
            metrics::count(&METRICS.auth_refusals, [reason]);
            Ok(refusal.refusal(&gate.auth.challenge).respond(req))
        }
    }
}

/// The caller, or the refusal with its label for the refusal counter.
async fn authenticate(
    req: &ServiceRequest,
    credentials: Result<Credentials<'_>, BearerError>,
    validator: &TokenValidator,
) -> Result<Caller, (AuthRefusal, &'static str)> {
    let malformed = |why| Err((AuthRefusal::BadRequest(why), "malformed"));
    let token = match credentials {
        Ok(Credentials::Bearer(t)) => t,
        Ok(Credentials::None) => return Err((AuthRefusal::NoToken, "no_token")),
        Err(BearerError::Multiple) => return malformed("Send exactly one Authorization header"),
        Err(BearerError::Malformed) => {
            return malformed("Malformed Authorization header; expected Bearer <token>");
        }
    };
    match validator.validate(token).await {
        Ok(identity) => Ok(Caller::Authenticated(identity)),
        Err(Rejection::KeysUnavailable) => Err((AuthRefusal::KeysUnavailable, "keys_unavailable")),
        Err(r) => {
            log::info!(
                "token rejected: {} (path {}, peer {})",
                r.log_reason(),
                req.path(),
                req.peer_addr()
                    .map(|a| a.ip().to_string())
                    .unwrap_or_default()
            );
            Err((AuthRefusal::InvalidToken, r.metric_label()))
        }
    }
}
