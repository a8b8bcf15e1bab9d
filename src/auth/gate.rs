//! The auth gate on the MCP endpoint: the one place that reads the bearer header (once), owns
//! the caller's identity, and charges the request budget under the key that identity gives.
//!
//! A request whose token was already verified (and is still valid) is keyed by its subject, so
//! users behind one NAT do not share a budget; every other request, including the first sight
//! of any token, is keyed by the client address as the trusted proxy reports it, and charged
//! before its token is checked, so a flood of forged tokens costs a budget lookup each, not a
//! signature check. The client cannot pick its bucket: only verified tokens name one. When an
//! address has spent its budget, a request carrying a token may still have it verified within
//! a small allowance of first verifications per address (`budget::Budgets::charge_requests`): users
//! behind one NAT can sign in, while a flood of forged tokens is held to that allowance.
//!
//! Every method is charged; only POST needs a token (GET and DELETE get their 405, preflights
//! are answered by CORS before this). What the gate decides travels on as one value,
//! `edge::Admitted` (the caller, the budget's key, whether its charge is still owed), which the
//! transport reads once. The budgets themselves are charged by `budget::Budgets`.

use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::Method;
use actix_web::http::header::{CACHE_CONTROL, HeaderValue};
use actix_web::{Error, web};
use futures_util::future::LocalBoxFuture;

use super::bearer::{self, BearerError, Credentials, Scheme};
use super::challenge::{AuthRefusal, ChallengeContext};
use super::dpop::{Dpop, DpopRefusal};
use super::validator::Rejection;
use super::verifier::{TokenMemo, Verifier};
use super::{Caller, Identity};
use crate::budget::{AtGate, Budgets, RateKey, Refused};
use crate::config::TrustedProxy;
use crate::edge::{self, Admitted, bucket, client_ip, origin_refusal};
use crate::failure::Kind;
use crate::metrics::{self, METRICS};
use crate::refusal::Refusal;

/// How the MCP endpoint authenticates.
pub enum AuthMode {
    /// Development-only switch: every caller is anonymous with all permissions.
    Off,
    On(Verifier),
}

pub struct AuthState {
    pub mode: AuthMode,
    pub challenge: std::sync::Arc<ChallengeContext>,
    /// Which tokens must be DPoP-bound, and the proofs already used.
    pub dpop: Dpop,
}

impl AuthState {
    pub fn keys_ready(&self) -> bool {
        match &self.mode {
            AuthMode::Off => true,
            AuthMode::On(v) => v.keys_ready(),
        }
    }
}

/// What the gate works with.
pub struct Gate {
    pub auth: web::Data<AuthState>,
    /// Whose address header is trusted for the client address.
    pub trusted_proxy: TrustedProxy,
    /// Every budget, and the one place that charges them.
    pub budgets: Arc<Budgets>,
}

/// The auth gate as a middleware (`web::resource(..).wrap(AuthGate)`). A hand-written
/// `Transform`: what can be decided at once (the Origin check, a token already verified, an
/// in-memory budget) is decided in `call`, and the inner service's future is held in place;
/// only a round trip (a shared budget) or a first sight of a token (a signature check) gets a
/// boxed future.
pub struct AuthGate;

impl<S, B> Transform<S, ServiceRequest> for AuthGate
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    S::Future: Unpin,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = Error;
    type Transform = AuthGateService<S>;
    type InitError = ();
    type Future = Ready<Result<AuthGateService<S>, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(AuthGateService {
            service: Rc::new(service),
        }))
    }
}

pub struct AuthGateService<S> {
    service: Rc<S>,
}

impl<S, B> Service<ServiceRequest> for AuthGateService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    S::Future: Unpin,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = Error;
    type Future = Gated<S::Future>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Gated<S::Future> {
        match admit(req) {
            Admission::Refused(res) => Gated::Answered(Some(res)),
            Admission::Pass(Passed { req, no_store, .. }) => Gated::Inner {
                future: self.service.call(req),
                no_store,
            },
            Admission::Later(req, pending) => {
                let service = Rc::clone(&self.service);
                Gated::Later(Box::pin(async move {
                    match admit_later(req, pending).await {
                        Err(res) => Ok(res),
                        Ok(Passed {
                            req,
                            no_store,
                            nonce,
                        }) => {
                            let mut res = answered(service.call(req).await, no_store)?;
                            if let Some(nonce) = nonce {
                                res.headers_mut()
                                    .insert(super::challenge::DPOP_NONCE, nonce);
                            }
                            Ok(res)
                        }
                    }
                }))
            }
        }
    }
}

/// The gate's decision on a request.
enum Admission {
    Refused(ServiceResponse<BoxBody>),
    Pass(Passed),
    /// What is left needs a round trip or a signature check.
    Later(ServiceRequest, Pending),
}

/// On to the endpoint; `no_store`: the answer holds the caller's data; `nonce`: the
/// `DPoP-Nonce` its answer carries.
struct Passed {
    req: ServiceRequest,
    no_store: bool,
    nonce: Option<HeaderValue>,
}

/// Why a request has no usable token: the refusal and its counter label.
type Unusable = (AuthRefusal, &'static str);

/// What [`admit`] left for [`admit_later`].
struct Pending {
    /// A round trip to the shared store charges the request budget under `key`.
    round_trip: bool,
    /// The caller, when known; `None`: the token is verified.
    caller: Option<Caller>,
    /// The request's token and its scheme (read once, in `admit`), or why it has none usable.
    token: Option<Result<(Box<str>, Scheme), Unusable>>,
    /// A known caller's token, whose DPoP proof is still to be checked.
    prove: Option<Box<str>>,
    /// The request budget's key and whether its charge is owed, for the admission.
    key: Option<RateKey>,
    owed: bool,
}

/// Everything the gate can decide without waiting. The Origin check comes first: a page on a
/// foreign origin learns nothing, not even whether it is over its budget.
fn admit(req: ServiceRequest) -> Admission {
    if let Some(refusal) = origin_refusal(&req) {
        return Admission::Refused(refusal.respond(req));
    }
    let gate = req
        .app_data::<web::Data<Gate>>()
        .expect("the auth gate is registered");
    let validator = match &gate.auth.mode {
        AuthMode::On(v) => Some(v),
        AuthMode::Off => None,
    };
    let post = req.method() == Method::POST;
    // The bearer header: a token already verified is found by its bytes alone (no parse); any
    // other token on a POST is parsed once, here, and carried to its check.
    let presented = bearer::presented(req.headers());
    let known: Option<Arc<Identity>> = validator.and_then(|v| {
        let memo = req.conn_data::<TokenMemo>();
        v.already_verified(presented?.1, memo)
    });
    // A known token's DPoP binding: refused at once, or a proof to check (later: the proof's
    // `jti` may need a round trip to the shared store).
    let mut prove = None;
    if let (Some(identity), Some((scheme, token))) = (&known, presented) {
        match gate.auth.dpop.needs_proof(identity, scheme) {
            Ok(false) => {}
            Ok(true) => prove = std::str::from_utf8(token).ok().map(Box::from),
            Err(r) => return Admission::Refused(dpop_refused(r, &gate.auth).respond(req)),
        }
    }
    let credentials = (validator.is_some() && known.is_none() && post)
        .then(|| bearer_token(bearer::from_headers(req.headers())));
    let first_sight = matches!(credentials, Some(Ok(_)));

    // The request budget, under the key the caller's verified identity gives, if any.
    let mut key = None;
    let (mut owed, mut round_trip) = (false, false);
    if gate.budgets.enabled() {
        let k = match &known {
            Some(identity) => RateKey::Subject(identity.subject().to_string()),
            None => match client_ip(&req, gate.trusted_proxy) {
                Some(ip) => RateKey::Ip(bucket(ip)),
                None => {
                    let refusal = Refusal::transport(
                        Kind::ClientAddressUnknown,
                        "Bad Request: the client address cannot be determined",
                    );
                    return Admission::Refused(refusal.respond(req));
                }
            },
        };
        match gate.budgets.at_gate(&k, post, first_sight) {
            AtGate::Paid => {}
            AtGate::Owed => owed = true,
            AtGate::RoundTrip => round_trip = true,
            AtGate::Refused(refused) => return Admission::Refused(budget_refusal(refused, req)),
        }
        key = Some(k);
    }
    let caller = match (validator, known) {
        (None, _) => Some(Caller::Anonymous),
        (Some(_), Some(identity)) => Some(Caller::Authenticated(identity)),
        (Some(_), None) => None,
    };
    if !round_trip && let Some(Err(refused)) = credentials {
        // No token, or an unusable header: refused here, without a wait.
        let refusal = auth_refusal(refused, &gate.auth.challenge);
        return Admission::Refused(refusal.respond(req));
    }
    if round_trip || (caller.is_none() && post) || (prove.is_some() && post) {
        let token = credentials.map(|c| c.map(|(t, scheme)| (Box::from(t), scheme)));
        let pending = Pending {
            round_trip,
            caller,
            token,
            prove,
            key,
            owed,
        };
        return Admission::Later(req, pending);
    }
    Admission::Pass(pass(req, caller, key, owed))
}

/// On to the endpoint with the admission. Only POST needs a caller (GET and DELETE get their
/// 405).
fn pass(req: ServiceRequest, caller: Option<Caller>, key: Option<RateKey>, owed: bool) -> Passed {
    match caller {
        Some(caller) if req.method() == Method::POST => {
            edge::admit(&req, Admitted { caller, key, owed });
            Passed {
                req,
                no_store: true,
                nonce: None,
            }
        }
        _ => Passed {
            req,
            no_store: false,
            nonce: None,
        },
    }
}

/// The rest of [`admit`]: the shared budget's charge, then the token's check.
async fn admit_later(
    req: ServiceRequest,
    pending: Pending,
) -> Result<Passed, ServiceResponse<BoxBody>> {
    let gate = req
        .app_data::<web::Data<Gate>>()
        .expect("the auth gate is registered")
        .clone();
    let Pending {
        round_trip,
        caller,
        token,
        prove,
        key,
        owed,
    } = pending;
    if round_trip && let Some(k) = &key {
        let first_sight = matches!(token, Some(Ok(_)));
        if let Err(refused) = gate.budgets.charge_requests(k, 1, first_sight).await {
            return Err(budget_refusal(refused, req));
        }
    }
    if caller.is_some() || req.method() != Method::POST {
        if let (Some(Caller::Authenticated(identity)), Some(token)) = (&caller, &prove) {
            return match prove_dpop(&req, &gate.auth, identity, token).await {
                Ok(nonce) => Ok(Passed {
                    nonce,
                    ..pass(req, caller, key, owed)
                }),
                Err(refusal) => Err(refusal.respond(req)),
            };
        }
        return Ok(pass(req, caller, key, owed));
    }
    let AuthMode::On(validator) = &gate.auth.mode else {
        return Ok(pass(req, Some(Caller::Anonymous), key, owed));
    };
    let (token, scheme) = match token {
        Some(Ok(token)) => token,
        Some(Err(refused)) => return Err(auth_refusal(refused, &gate.auth.challenge).respond(req)),
        None => {
            let refused = (AuthRefusal::NoToken, "no_token");
            return Err(auth_refusal(refused, &gate.auth.challenge).respond(req));
        }
    };
    let identity = match authenticate(&req, &token, validator).await {
        Ok(Caller::Authenticated(identity)) => identity,
        Ok(Caller::Anonymous) => return Ok(pass(req, Some(Caller::Anonymous), key, owed)),
        Err(refused) => return Err(auth_refusal(refused, &gate.auth.challenge).respond(req)),
    };
    // The token's DPoP binding, and the proof when it needs one.
    let nonce = match gate.auth.dpop.needs_proof(&identity, scheme) {
        Ok(false) => None,
        Ok(true) => match prove_dpop(&req, &gate.auth, &identity, &token).await {
            Ok(nonce) => nonce,
            Err(refusal) => return Err(refusal.respond(req)),
        },
        Err(r) => return Err(dpop_refused(r, &gate.auth).respond(req)),
    };
    let caller = Some(Caller::Authenticated(identity));
    Ok(Passed {
        nonce,
        ..pass(req, caller, key, owed)
    })
}

/// Checks the request's one `DPoP` proof for `identity`'s bound `token`: the `DPoP-Nonce` its
/// answer carries (when `auth.dpop_nonce` is on), or the refusal.
async fn prove_dpop(
    req: &ServiceRequest,
    auth: &AuthState,
    identity: &Identity,
    token: &str,
) -> Result<Option<HeaderValue>, Refusal> {
    let mut proofs = req.headers().get_all("dpop");
    let proof = match (proofs.next(), proofs.next()) {
        (None, _) => None,
        (Some(one), None) => Some(one.to_str().map_err(|_| {
            dpop_refused(
                DpopRefusal::InvalidProof("The DPoP proof is not a JWT"),
                auth,
            )
        })?),
        (Some(_), Some(_)) => {
            let r = DpopRefusal::InvalidProof("Send exactly one DPoP header");
            return Err(dpop_refused(r, auth));
        }
    };
    auth.dpop
        .check(proof, req.method().as_str(), token, identity)
        .await
        .map_err(|r| dpop_refused(r, auth))?;
    Ok(auth
        .dpop
        .current_nonce()
        .and_then(|n| HeaderValue::from_str(&n).ok()))
}

/// A DPoP refusal (counted under `dpop`): 401 with its `DPoP` challenge, or 503 when the
/// shared store that remembers proofs is down and the policy refuses.
fn dpop_refused(refusal: DpopRefusal, auth: &AuthState) -> Refusal {
    let (error, description, nonce) = match refusal {
        DpopRefusal::InvalidProof(why) => ("invalid_dpop_proof", why, None),
        DpopRefusal::Binding(why) => ("invalid_token", why, None),
        DpopRefusal::UseNonce(nonce) => (
            "use_dpop_nonce",
            "Resource server requires nonce in DPoP proof",
            Some(nonce),
        ),
        DpopRefusal::StoreDown => return Refusal::store_down(),
    };
    let refused = AuthRefusal::Dpop {
        error,
        description,
        nonce,
    };
    auth_refusal((refused, "dpop"), &auth.challenge)
}

/// An authentication refusal, counted under its label.
pub(crate) fn auth_refusal(
    (refusal, reason): (AuthRefusal, &'static str),
    challenge: &ChallengeContext,
) -> Refusal {
    metrics::count(&METRICS.auth_refusals, [reason]);
    refusal.refusal(challenge)
}

/// A budget's refusal: 429 with its wait, or 503 when the shared store is down and refuses.
fn budget_refusal(refused: Refused, req: ServiceRequest) -> ServiceResponse<BoxBody> {
    request_budget_refusal(refused).respond(req)
}

/// The request budget's refusal (counted by the budgets).
pub(crate) fn request_budget_refusal(refused: Refused) -> Refusal {
    match refused {
        Refused::Wait(wait) => Refusal::too_many_requests(wait),
        Refused::StoreDown => Refusal::store_down(),
    }
}

/// The endpoint's answer; answers to authenticated requests hold the caller's data: never
/// cache them.
fn answered<B: MessageBody + 'static>(
    res: Result<ServiceResponse<B>, Error>,
    no_store: bool,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let mut res = res?.map_into_boxed_body();
    if no_store {
        res.headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(res)
}

/// The future of one request through the gate.
pub enum Gated<F> {
    Answered(Option<ServiceResponse<BoxBody>>),
    Inner { future: F, no_store: bool },
    Later(LocalBoxFuture<'static, Result<ServiceResponse<BoxBody>, Error>>),
}

impl<F, B> Future for Gated<F>
where
    F: Future<Output = Result<ServiceResponse<B>, Error>> + Unpin,
    B: MessageBody + 'static,
{
    type Output = Result<ServiceResponse<BoxBody>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Gated::Answered(res) => {
                Poll::Ready(Ok(res.take().expect("a finished request is not polled")))
            }
            Gated::Inner { future, no_store } => match Pin::new(future).poll(cx) {
                Poll::Ready(res) => Poll::Ready(answered(res, *no_store)),
                Poll::Pending => Poll::Pending,
            },
            Gated::Later(future) => future.as_mut().poll(cx),
        }
    }
}

/// The bearer token of the request's one `Authorization` header, or the refusal (400, 401)
/// with its label for the refusal counter.
pub(crate) fn bearer_token(
    credentials: Result<Credentials<'_>, BearerError>,
) -> Result<(&str, Scheme), (AuthRefusal, &'static str)> {
    let malformed = |why| Err((AuthRefusal::BadRequest(why), "malformed"));
    match credentials {
        Ok(Credentials::Bearer(t)) => Ok((t, Scheme::Bearer)),
        Ok(Credentials::Dpop(t)) => Ok((t, Scheme::Dpop)),
        Ok(Credentials::None) => Err((AuthRefusal::NoToken, "no_token")),
        Err(BearerError::Multiple) => malformed("Send exactly one Authorization header"),
        Err(BearerError::Malformed) => {
            malformed("Malformed Authorization header; expected Bearer <token>")
        }
    }
}

/// The caller a token names, or the refusal with its label (a signature check, and perhaps a
/// key fetch).
async fn authenticate(
    req: &ServiceRequest,
    token: &str,
    validator: &Verifier,
) -> Result<Caller, (AuthRefusal, &'static str)> {
    authenticate_token(token, validator, req.path(), req.peer_addr()).await
}

/// [`authenticate`] for a request head not yet wrapped by actix-web (`Expect: 100-continue`).
pub(crate) async fn authenticate_token(
    token: &str,
    validator: &Verifier,
    path: &str,
    peer: Option<std::net::SocketAddr>,
) -> Result<Caller, (AuthRefusal, &'static str)> {
    match validator.validate(token).await {
        Ok(identity) => Ok(Caller::Authenticated(identity)),
        Err(Rejection::KeysUnavailable | Rejection::IntrospectionUnavailable) => {
            Err((AuthRefusal::KeysUnavailable, "keys_unavailable"))
        }
        Err(r) => {
            log::info!(
                "token rejected: {} (path {}, peer {})",
                r.log_reason(),
                crate::text::log_safe(path),
                peer.map(|a| a.ip().to_string()).unwrap_or_default()
            );
            Err((AuthRefusal::InvalidToken, r.metric_label()))
        }
    }
}
