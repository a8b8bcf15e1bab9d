//! The application's routes and middleware, built from one `AppState`: `app` is what every
//! worker of `startup::Application` serves and what in-process tests
//! (`actix_web::test::init_service(routes::app(state))`) call without a socket. Also the
//! `/health` and `/ready` probes and the fallbacks for unknown paths and methods.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use actix_web::{App, Error, HttpResponse, web};
use serde_json::json;

use crate::auth::dev_issuer;
use crate::auth::gate::{AuthGate, AuthState};
use crate::auth::metadata;
use crate::config::RedisDown;
use crate::edge;
use crate::refusal::Refusal;
use crate::state::{AppState, StoreState};
use crate::transport;

/// The whole application: routes, shared data and middleware.
///
/// Effective middleware order, outermost first: CORS -> request log (id, timing, nosniff,
/// generic 500; first of all the guard: 431, Host) -> [MCP route only, whatever spelling of its
/// path matched: the auth gate (Origin, request budget, then bearer token)] -> handler. (In
/// actix the last `.wrap()` is the outermost.) Two layers, not four, each a hand-written
/// `Transform` that holds the inner future in place.
pub fn app(
    state: AppState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = Error,
        InitError = (),
    >,
> {
    let s = &state;
    let mut app = App::new()
        .app_data(s.mcp.clone())
        .app_data(s.auth.clone())
        .app_data(s.limits.clone())
        .app_data(s.metadata.clone())
        .app_data(s.guard.clone())
        .app_data(s.budgets.clone())
        .app_data(s.gate.clone())
        .app_data(s.store.clone())
        // The MCP endpoint first: the router tries resources in the order they are registered,
        // and this one takes nearly every request. One route, without a method guard:
        // `transport::post` answers other methods 405 itself (actix's method guards record the
        // request's method in its extensions, an allocation on every request).
        .service(
            web::resource(s.mcp_path.as_str())
                .to(transport::post)
                .wrap(AuthGate),
        )
        .route("/health", web::get().to(health))
        .route("/ready", web::get().to(ready));
    for p in &s.prm_paths {
        app = app.service(
            web::resource(p.as_str())
                .route(web::get().to(metadata::serve))
                .route(web::head().to(metadata::serve))
                .default_service(web::to(get_only)),
        );
    }
    if let Some(dev) = &s.dev_issuer {
        app = app.configure(|cfg| dev_issuer::routes(dev, cfg));
    }
    #[cfg(feature = "test-fixtures")]
    {
        app = app.route(
            "/__fixtures/fail",
            web::get().to(crate::fixtures::failing_route),
        );
    }
    app.default_service(web::to(not_found))
        .wrap(edge::access::RequestLog)
        .wrap(edge::cors(&s.cors))
}

/// A probe's answer: a status document, never cached; `retry_after` when not ready.
fn probe(status: StatusCode, retry_after: Option<u64>, body: serde_json::Value) -> HttpResponse {
    let mut b = HttpResponse::build(status);
    b.insert_header((CACHE_CONTROL, HeaderValue::from_static("no-store")));
    if let Some(secs) = retry_after {
        b.insert_header((RETRY_AFTER, secs));
    }
    b.json(body)
}

/// Liveness: the probe's document, written at compile time (platforms ask every few seconds).
async fn health() -> HttpResponse {
    const BODY: &str = concat!(
        r#"{"status":"healthy","version":""#,
        env!("CARGO_PKG_VERSION"),
        r#""}"#
    );
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .insert_header((CONTENT_TYPE, HeaderValue::from_static("application/json")))
        .body(BODY)
}

async fn ready(auth: web::Data<AuthState>, store: web::Data<StoreState>) -> HttpResponse {
    let shared = store.0.as_ref().map(|s| (s.store.is_up(), s.when_down));
    if let Some((false, RedisDown::Refuse)) = shared {
        let body = json!({"status": "unavailable", "shared_store": "down", "detail": "the shared rate-limit store does not answer (rate_limit.redis_down = refuse)"});
        return probe(StatusCode::SERVICE_UNAVAILABLE, Some(1), body);
    }
    if !auth.keys_ready() {
        let body = json!({"status": "starting", "detail": "waiting for the token issuer's keys"});
        return probe(StatusCode::SERVICE_UNAVAILABLE, Some(5), body);
    }
    let mut body = json!({"status": "ready"});
    if let Some((up, _)) = shared {
        body["shared_store"] = json!(if up {
            "up"
        } else {
            "down: budgets are per instance until it answers"
        });
    }
    probe(StatusCode::OK, None, body)
}

async fn not_found() -> HttpResponse {
    Refusal::not_found().into_response()
}

async fn get_only() -> HttpResponse {
    Refusal::method_not_allowed("GET, HEAD").into_response()
}
