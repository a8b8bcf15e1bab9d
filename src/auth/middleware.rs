//! The auth middleware on the MCP endpoint: every POST needs a valid bearer token; the verified
//! `Caller` goes into the request extensions for the dispatcher. Other methods pass through so
//! that GET/DELETE get their 405 and preflights never need a token.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, web};

use super::Caller;
use super::bearer::{self, BearerError, Credentials};
use super::challenge::{ChallengeContext, Refusal};
use super::validator::{Rejection, TokenValidator};

/// How the MCP endpoint authenticates.
pub enum AuthMode {
    /// Development-only switch: every caller is anonymous with all permissions.
    Off,
    On(TokenValidator),
}

/// A caller whose token the rate limiter already found among the verified tokens of this
/// request (see `edge::RequestKey`): the auth middleware takes it instead of looking again.
pub struct PreVerified(pub std::sync::Arc<super::Identity>);

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

pub async fn require_token(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    if req.method() != Method::POST {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let state = req
        .app_data::<web::Data<AuthState>>()
        .expect("AuthState is registered")
        .clone();
    let caller = match &state.mode {
        AuthMode::Off => Ok(Caller::Anonymous),
        AuthMode::On(validator) => authenticate(&req, validator).await,
    };
    match caller {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            let mut res = next.call(req).await?.map_into_boxed_body();
            // Answers to authenticated requests hold the caller's data: never cache them.
            res.headers_mut().insert(
                actix_web::http::header::CACHE_CONTROL,
                actix_web::http::header::HeaderValue::from_static("no-store"),
            );
            Ok(res)
        }
        Err((refusal, reason)) => {
            crate::metrics::METRICS
                .auth_refusals
                .with_label_values(&[reason])
                .inc();
            let (http, _) = req.into_parts();
            Ok(ServiceResponse::new(
                http,
                refusal.response(&state.challenge),
            ))
        }
    }
}

/// The caller, or the refusal with its label for the refusal counter.
async fn authenticate(
    req: &ServiceRequest,
    validator: &TokenValidator,
) -> Result<Caller, (Refusal, &'static str)> {
    let malformed = |why| Err((Refusal::BadRequest(why), "malformed"));
    let token = match bearer::from_headers(req.headers()) {
        Ok(Credentials::Bearer(t)) => t,
        Ok(Credentials::None) => return Err((Refusal::NoToken, "no_token")),
        Err(BearerError::Multiple) => return malformed("Send exactly one Authorization header"),
        Err(BearerError::Malformed) => {
            return malformed("Malformed Authorization header; expected Bearer <token>");
        }
    };
    if let Some(PreVerified(identity)) = req.extensions_mut().remove::<PreVerified>() {
        return Ok(Caller::Authenticated(identity));
    }
    match validator.validate(token).await {
        Ok(identity) => Ok(Caller::Authenticated(identity)),
        Err(Rejection::KeysUnavailable) => Err((Refusal::KeysUnavailable, "keys_unavailable")),
        Err(r) => {
            log::info!(
                "token rejected: {} (path {}, peer {})",
                r.log_reason(),
                req.path(),
                req.peer_addr()
                    .map(|a| a.ip().to_string())
                    .unwrap_or_default()
            );
            Err((Refusal::InvalidToken, r.metric_label()))
        }
    }
}
