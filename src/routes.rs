//! The application's routes and middleware, built from one `AppState`: `app` is what every
//! worker of `startup::Application` serves and what in-process tests
//! (`actix_web::test::init_service(routes::app(state))`) call without a socket. Also the
//! `/health` and `/ready` probes and the fallbacks for unknown paths and methods.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use actix_web::{App, Error, HttpResponse, web};
use serde_json::json;

use crate::auth::challenge::ChallengeContext;
use crate::auth::dev_issuer::{self, DevIssuer};
use crate::auth::gate::{AuthGate, AuthMode, AuthState, Gate};
use crate::auth::jwks::KeyStore;
use crate::auth::metadata::{self, DocumentInput, Metadata};
use crate::budget::{self, Budget};
use crate::config::{CorsSettings, RedisDown, Settings};
use crate::edge::{self, GuardSettings, RateKey};
use crate::mcp::{Server, ServerParts};
use crate::refusal::Refusal;
use crate::registry::Registry;
use crate::seal::Seal;
use crate::startup::{PublicUrls, StartupError, key_store, shared_store, state_seal, validator};
use crate::transport::{self, Limits};

/// Everything the routes share, built once and cloned (cheaply: `Arc`s) into every worker.
#[derive(Clone)]
pub struct AppState {
    pub mcp: web::Data<Server>,
    pub keys: Arc<KeyStore>,
    pub dev_issuer: Option<Arc<DevIssuer>>,
    auth: web::Data<AuthState>,
    limits: web::Data<Limits>,
    metadata: web::Data<Metadata>,
    guard: web::Data<GuardSettings>,
    budget: web::Data<transport::RequestBudget>,
    gate: web::Data<Gate>,
    store: web::Data<StoreState>,
    /// Requests per minute on the MCP endpoint, keyed by verified subject or client address,
    /// in this instance's memory (the shared store's fallback); one budget for every worker.
    request_budget: Arc<Budget<RateKey>>,
    /// The per-address allowance of first token verifications once the budget is spent.
    first_verifications: Arc<Budget<RateKey>>,
    prm_paths: Vec<String>,
    mcp_path: String,
    cors: CorsSettings,
}

/// The shared store, if any, for `/ready`.
struct StoreState(Option<Arc<budget::Shared>>);

impl AppState {
    /// The state for `settings` served at `urls`, with every registration in this binary.
    pub fn new(settings: &Settings, urls: &PublicUrls) -> Result<AppState, StartupError> {
        let registry = Arc::new(Registry::from_inventory()?);
        let seal = state_seal(settings, &registry)?;
        AppState::with_registry(settings, urls, registry, seal)
    }

    pub(crate) fn with_registry(
        settings: &Settings,
        urls: &PublicUrls,
        registry: Arc<Registry>,
        seal: Seal,
    ) -> Result<AppState, StartupError> {
        let a = &settings.auth;
        let (keys, dev_issuer) = key_store(settings, urls)?;
        let mode = if a.enabled {
            AuthMode::On(validator(settings, urls, keys.clone()))
        } else {
            log::warn!(
                "auth is OFF (auth.enabled = false): every caller is anonymous with every scope; never expose this server"
            );
            AuthMode::Off
        };
        let auth = web::Data::new(AuthState {
            mode,
            challenge: ChallengeContext::new(urls.metadata_url.clone(), &a.base_scopes),
        });

        let mut scopes: BTreeSet<String> = registry.declared_scopes();
        scopes.extend(a.extra_scopes.iter().cloned());
        scopes.extend(a.base_scopes.iter().cloned());
        let doc = match &a.protected_resource_metadata {
            Some(m) => serde_json::Value::Object(m.clone()),
            None => metadata::build_document(DocumentInput {
                resource: &urls.resource,
                authorization_server: a.authorization_server.as_deref().unwrap_or(&urls.issuer),
                scopes: scopes.into_iter().collect(),
                resource_name: &a.resource_name,
                resource_documentation: a.resource_documentation.as_deref(),
            }),
        };
        let metadata = web::Data::new(Metadata {
            body: doc.to_string(),
        });

        let shared = shared_store(settings)?;
        let mcp = web::Data::new(Server::new(
            registry,
            ServerParts {
                settings: settings.mcp.clone(),
                filter_tools_by_scope: a.filter_tools_by_scope,
                rate: settings.rate_limit.clone(),
                shared: shared.clone(),
                seal,
                instance_id: settings.server.instance_id.clone(),
                challenge: auth.challenge.clone(),
            },
        ));
        if let Some(s) = &shared {
            s.store
                .relay(&mcp.changes, settings.server.instance_id.clone());
        }
        let rl = &settings.rate_limit;
        // Kept in this instance's memory, or in the shared store with this as its fallback.
        let request_budget = Arc::new(Budget::new(
            "requests",
            rl.requests_per_minute,
            rl.requests_burst,
            shared.clone(),
        ));
        let budget = web::Data::new(transport::RequestBudget {
            budget: rl.enabled.then(|| request_budget.clone()),
        });
        let first_verifications = Arc::new(Budget::new(
            "first_verifications",
            rl.first_verifications_per_minute,
            rl.first_verifications_burst,
            None,
        ));
        let gate = web::Data::new(Gate {
            auth: auth.clone(),
            trusted_proxy: settings.security.trusted_proxy,
            budget: rl.enabled.then(|| request_budget.clone()),
            shared: shared.is_some(),
            first_verifications: rl.enabled.then(|| first_verifications.clone()),
        });

        // RFC 9728 section 3.1: the document of a resource with a path is at the well-known
        // path followed by it; a resource at the root has the well-known path alone.
        let mut prm_paths = vec!["/.well-known/oauth-protected-resource".to_string()];
        for p in [
            format!(
                "/.well-known/oauth-protected-resource{}",
                settings.mcp.path.trim_end_matches('/')
            ),
            urls.metadata_url
                .split_once("/.well-known/")
                .map(|(_, rest)| format!("/.well-known/{rest}"))
                .unwrap_or_default(),
        ] {
            if !p.is_empty() && !prm_paths.contains(&p) {
                prm_paths.push(p);
            }
        }
        Ok(AppState {
            keys,
            dev_issuer,
            auth,
            limits: web::Data::new(Limits {
                max_body_bytes: settings.server.max_body_bytes,
                body_timeout: settings.server.body_timeout,
                max_json_depth: settings.server.max_json_depth,
            }),
            metadata,
            guard: web::Data::new(GuardSettings {
                allowed_hosts: settings.security.allowed_hosts.clone(),
                allowed_origins: settings.cors.allowed_origins.clone(),
                max_header_bytes: settings.server.max_header_bytes,
            }),
            budget,
            gate,
            store: web::Data::new(StoreState(shared.clone())),
            request_budget,
            first_verifications,
            prm_paths,
            mcp_path: settings.mcp.path.clone(),
            cors: settings.cors.clone(),
            mcp,
        })
    }

    /// What the `Expect: 100-continue` check needs (`expect::ExpectCheck`).
    pub fn expect_check(&self) -> crate::expect::ExpectCheck {
        crate::expect::ExpectCheck {
            mcp_path: self.mcp_path.clone(),
            guard: self.guard.clone(),
            gate: self.gate.clone(),
            limits: self.limits.clone(),
        }
    }

    /// Background work: key set refresh, and purging idle rate-limit keys so memory stays
    /// bounded however many distinct callers come by. Call once per state, inside a runtime.
    pub fn spawn_background_work(&self) {
        tokio::spawn(self.keys.clone().run_refresher());
        let request_budget = self.request_budget.clone();
        let first_verifications = self.first_verifications.clone();
        let mcp = self.mcp.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                request_budget.purge_idle();
                first_verifications.purge_idle();
                mcp.purge_idle();
                crate::memory::release_free_heap();
            }
        });
    }
}

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
        .app_data(s.budget.clone())
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
