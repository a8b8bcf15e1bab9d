//! `Application`: builds the one actix app that `main` and the tests both run. Binds the
//! listener (port 0 works), resolves the public URLs, the issuer and its keys, and wires the
//! middleware. Also owns graceful shutdown on SIGTERM and SIGINT.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_governor::{Governor, GovernorConfigBuilder};
use actix_web::dev::Server as HttpServerHandle;
use actix_web::http::header::{CACHE_CONTROL, RETRY_AFTER};
use actix_web::middleware::{Condition, from_fn};
use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::json;
use url::Url;

use crate::auth::challenge::ChallengeContext;
use crate::auth::dev_issuer::{self, DevIssuer};
use crate::auth::jwks::{KeyStore, RemoteOptions};
use crate::auth::metadata::{self, DocumentInput, Metadata};
use crate::auth::middleware::{AuthMode, AuthState, require_token};
use crate::auth::validator::{TokenValidator, ValidatorOptions};
use crate::budget::{self, Budget};
use crate::config::{IssuerSetting, Profile, RedisDown, Settings, TrustedProxy, base_str};
use crate::conn::ConnectionLimiter;
use crate::edge::{self, GuardSettings, RequestKey};
use crate::mcp::Server;
use crate::registry::{Registry, RegistryError};
use crate::seal::Seal;
use crate::shared::SharedStore;
use crate::transport::{self, Limits};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("tool registry: {0}")]
    Registry(#[from] RegistryError),
    #[error("{0}")]
    DevIssuer(#[from] dev_issuer::DevIssuerError),
    #[error("configuration error: {0}")]
    Config(String),
    #[error("server error: {0}")]
    Serve(#[from] std::io::Error),
}

/// A built, bound, not yet running server.
pub struct Application {
    port: u16,
    /// The metrics listener's port and handle, when `server.metrics_port` is set.
    metrics: Option<(u16, actix_web::dev::ServerHandle)>,
    server: HttpServerHandle,
    /// The public base URL (PUBLIC_URL, or http://localhost:<port> in development).
    pub public_url: String,
    /// The canonical MCP endpoint URL (the default token audience).
    pub resource: String,
    pub metadata_url: String,
    pub audiences: Vec<String>,
    pub dev_issuer: Option<Arc<DevIssuer>>,
    pub keys: Arc<KeyStore>,
    pub settings: Settings,
    /// Announcements to `subscriptions/listen` streams, and their shutdown signal.
    pub changes: Arc<crate::changes::Changes>,
}

/// Public URLs derived from settings and the bound port.
pub struct PublicUrls {
    pub base: String,
    pub resource: String,
    pub metadata_url: String,
    pub issuer: String,
    pub audiences: Vec<String>,
}

/// Resolves the public URLs the same way for the server and `gatehouse token`.
pub fn public_urls(settings: &Settings, port: u16) -> Result<PublicUrls, StartupError> {
    let base = match &settings.server.public_url {
        Some(u) => base_str(u),
        None => format!("http://localhost:{port}"),
    };
    let resource = format!("{base}{}", settings.mcp.path);
    let resource_url = Url::parse(&resource)
        .map_err(|e| StartupError::Config(format!("resource URL {resource}: {e}")))?;
    let issuer = match &settings.auth.issuer {
        IssuerSetting::Development => format!("{base}{}", dev_issuer::ISSUER_PATH),
        IssuerSetting::Remote { issuer, .. } => issuer.clone(),
    };
    let audiences = if settings.auth.audiences.is_empty() {
        vec![resource.clone()]
    } else {
        settings.auth.audiences.clone()
    };
    Ok(PublicUrls {
        metadata_url: metadata::metadata_url(&resource_url),
        base,
        resource,
        issuer,
        audiences,
    })
}

/// The key store the server uses (and `gatehouse doctor` checks): the development issuer's
/// keys, or the remote issuer's key set (not fetched yet).
pub fn key_store(
    settings: &Settings,
    urls: &PublicUrls,
) -> Result<(Arc<KeyStore>, Option<Arc<DevIssuer>>), StartupError> {
    let a = &settings.auth;
    Ok(match &a.issuer {
        IssuerSetting::Development => {
            if settings.profile == Profile::Production {
                return Err(StartupError::Config(
                    "the development issuer cannot run in the production profile".into(),
                ));
            }
            let dev = Arc::new(DevIssuer::load_or_create(
                &a.dev_key_dir,
                urls.issuer.clone(),
            )?);
            (KeyStore::new_static(dev.key_set()), Some(dev))
        }
        IssuerSetting::Remote { issuer, jwks_uri } => (
            KeyStore::new_remote(RemoteOptions {
                issuer: issuer.clone(),
                jwks_uri: jwks_uri.clone(),
                algorithms: a.algorithms.clone(),
                ttl: a.jwks_ttl,
                cooldown: a.jwks_cooldown,
                timeout: a.jwks_fetch_timeout,
                require_https: settings.profile == Profile::Production,
                max_stale: a.jwks_max_stale,
            }),
            None,
        ),
    })
}

/// The token validator the server uses (and `gatehouse doctor --token` runs).
pub fn validator(settings: &Settings, urls: &PublicUrls, keys: Arc<KeyStore>) -> TokenValidator {
    let a = &settings.auth;
    TokenValidator::new(ValidatorOptions {
        issuer: urls.issuer.clone(),
        audiences: urls.audiences.clone(),
        algorithms: a.algorithms.clone(),
        leeway: a.leeway_secs,
        require_at_jwt_typ: a.require_at_jwt_typ,
        keys,
        max_lifetime: a.max_token_lifetime_secs,
        scope_implies: a.scope_implies.clone(),
    })
}

/// Hands memory freed after a burst (large bodies, batches) back to the OS, so the resident
/// size returns to its idle level instead of staying at the burst's peak (glibc keeps freed
/// heap pages otherwise).
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> i32;
        }
        // SAFETY: malloc_trim only returns unused pages of glibc's own heap to the kernel; it
        // takes no pointers and is safe to call at any time from any thread.
        unsafe {
            malloc_trim(0);
        }
    }
}

async fn health() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "no-store"))
        .json(json!({"status": "healthy", "version": env!("CARGO_PKG_VERSION")}))
}

/// The shared store, if any, for `/ready`.
struct StoreState(Option<Arc<budget::Shared>>);

async fn ready(auth: web::Data<AuthState>, store: web::Data<StoreState>) -> HttpResponse {
    let shared = store.0.as_ref().map(|s| (s.store.is_up(), s.when_down));
    if let Some((false, RedisDown::Refuse)) = shared {
        return HttpResponse::ServiceUnavailable()
            .insert_header((CACHE_CONTROL, "no-store"))
            .insert_header((RETRY_AFTER, "1"))
            .json(json!({"status": "unavailable", "shared_store": "down", "detail": "the shared rate-limit store does not answer (rate_limit.redis_down = refuse)"}));
    }
    if auth.keys_ready() {
        let mut body = json!({"status": "ready"});
        if let Some((up, _)) = shared {
            body["shared_store"] = json!(if up {
                "up"
            } else {
                "down: budgets are per instance until it answers"
            });
        }
        HttpResponse::Ok()
            .insert_header((CACHE_CONTROL, "no-store"))
            .json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header((CACHE_CONTROL, "no-store"))
            .insert_header((RETRY_AFTER, "5"))
            .json(json!({"status": "starting", "detail": "waiting for the token issuer's keys"}))
    }
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(json!({"error": "not_found"}))
}

async fn get_only() -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header(("allow", "GET, HEAD"))
        .json(json!({"error": "method_not_allowed"}))
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Application, StartupError> {
        let registry = Arc::new(Registry::from_inventory()?);
        let addr = format!("{}:{}", settings.server.host, settings.server.port);
        let listener = TcpListener::bind(&addr).map_err(|source| StartupError::Bind {
            addr: addr.clone(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind { addr, source })?
            .port();
        let urls = public_urls(&settings, port)?;
        let a = &settings.auth;
        if settings.profile == Profile::Production {
            if settings.security.allow_any_origin {
                log::warn!(
                    "security.allow_any_origin: any web page may call this server from a browser (ALLOWED_ORIGINS=*)"
                );
            }
            if settings.security.allow_any_host {
                log::warn!(
                    "security.allow_any_host: any Host header is accepted, so DNS rebinding is not blocked (ALLOWED_HOSTS=*)"
                );
            }
        }

        let (keys, dev) = key_store(&settings, &urls)?;
        let mode = if a.enabled {
            AuthMode::On(validator(&settings, &urls, keys.clone()))
        } else {
            log::warn!(
                "auth is OFF (auth.enabled = false): every caller is anonymous with every scope; never expose this server"
            );
            AuthMode::Off
        };
        let auth_state = web::Data::new(AuthState {
            mode,
            challenge: ChallengeContext {
                resource_metadata: urls.metadata_url.clone(),
                base_scopes: a.base_scopes.clone(),
            },
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

        let seal = state_seal(&settings, &registry)?;
        let shared = shared_store(&settings)?;
        let mcp = web::Data::new(Server::new(
            registry.clone(),
            settings.mcp.clone(),
            a.filter_tools_by_scope,
            &settings.rate_limit,
            shared.clone(),
            seal,
            settings.server.instance_id.clone(),
        ));
        if let Some(s) = &shared {
            s.store
                .relay(&mcp.changes, settings.server.instance_id.clone());
        }
        let limits = web::Data::new(Limits {
            max_body_bytes: settings.server.max_body_bytes,
            body_timeout: settings.server.body_timeout,
            max_json_depth: settings.server.max_json_depth,
        });
        let guard = web::Data::new(GuardSettings {
            allowed_hosts: settings.security.allowed_hosts.clone(),
            allowed_origins: settings.cors.allowed_origins.clone(),
            max_header_bytes: settings.server.max_header_bytes,
        });
        let rl = &settings.rate_limit;
        let request_key = RequestKey {
            mode: settings.security.trusted_proxy,
            auth: auth_state.clone(),
        };
        // Requests per minute on the MCP endpoint, keyed by verified subject or client IP.
        // Built once, outside the worker factory: every worker shares this limiter.
        let request_limit = GovernorConfigBuilder::default()
            .period(Duration::from_secs(60) / rl.requests_per_minute.max(1))
            .burst_size(rl.requests_burst)
            .key_extractor(request_key.clone())
            .finish()
            .ok_or_else(|| {
                StartupError::Config(
                    "rate_limit: invalid requests_per_minute / requests_burst".into(),
                )
            })?;
        let rate_limit_on = rl.enabled;
        // Without a shared store actix-governor's middleware keeps the request budget; with one,
        // `edge::shared_rate_limit` keeps it there, with the same limiter as its fallback.
        let request_budget = web::Data::new(Budget::new(
            "requests",
            rl.requests_per_minute,
            rl.requests_burst,
            request_limit.limiter(),
            shared.clone(),
        ));
        let shared_on = rate_limit_on && shared.is_some();
        let budget = web::Data::new(transport::RequestBudget {
            budget: rate_limit_on.then(|| request_budget.clone().into_inner()),
        });
        let request_key = web::Data::new(request_key);
        let store_state = web::Data::new(StoreState(shared.clone()));

        // Background work: key set refresh, and purging idle rate-limit keys so memory stays
        // bounded however many distinct callers come by.
        tokio::spawn(keys.clone().run_refresher());
        {
            let request_limiter = request_limit.limiter();
            let mcp = mcp.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(60));
                loop {
                    tick.tick().await;
                    request_limiter.retain_recent();
                    request_limiter.shrink_to_fit();
                    mcp.purge_idle();
                    release_free_memory();
                }
            });
        }

        let mut prm_paths = vec!["/.well-known/oauth-protected-resource".to_string()];
        for p in [
            format!("/.well-known/oauth-protected-resource{}", settings.mcp.path),
            urls.metadata_url
                .split_once("/.well-known/")
                .map(|(_, rest)| format!("/.well-known/{rest}"))
                .unwrap_or_default(),
        ] {
            if !p.is_empty() && !prm_paths.contains(&p) {
                prm_paths.push(p);
            }
        }
        let mcp_path = settings.mcp.path.clone();
        let cors_settings = settings.cors.clone();
        let dev_for_app = dev.clone();
        let s = &settings.server;
        let workers = if s.workers == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            s.workers
        };
        let per_peer = match (settings.security.trusted_proxy, s.max_connections_per_ip) {
            (TrustedProxy::None, 0) => (s.max_connections.saturating_mul(workers) / 2).max(1),
            (TrustedProxy::None, n) => n,
            _ => 0,
        };
        let connections = ConnectionLimiter::new(per_peer);
        let changes = mcp.changes.clone();
        let server = HttpServer::new(move || {
            let mut app = App::new()
                .app_data(mcp.clone())
                .app_data(auth_state.clone())
                .app_data(limits.clone())
                .app_data(metadata.clone())
                .app_data(guard.clone())
                .app_data(budget.clone())
                .app_data(request_budget.clone())
                .app_data(request_key.clone())
                .app_data(store_state.clone())
                .route("/health", web::get().to(health))
                .route("/ready", web::get().to(ready));
            for p in &prm_paths {
                app = app.service(
                    web::resource(p.as_str())
                        .route(web::get().to(metadata::serve))
                        .route(web::head().to(metadata::serve))
                        .default_service(web::to(get_only)),
                );
            }
            if let Some(dev) = &dev_for_app {
                let jwks = dev.jwks().to_string();
                let meta = dev.metadata().to_string();
                let base = dev_issuer::ISSUER_PATH;
                let serve = |body: String| {
                    move || {
                        let body = body.clone();
                        async move {
                            HttpResponse::Ok()
                                .content_type("application/json")
                                .insert_header(("access-control-allow-origin", "*"))
                                .body(body)
                        }
                    }
                };
                app = app
                    .route(&format!("{base}/keys"), web::get().to(serve(jwks)))
                    .route(
                        &format!("{base}/.well-known/openid-configuration"),
                        web::get().to(serve(meta.clone())),
                    )
                    .route(
                        &format!("/.well-known/oauth-authorization-server{base}"),
                        web::get().to(serve(meta)),
                    );
            }
            // Effective middleware order, outermost first:
            //   CORS -> request log (id, timing, nosniff, generic 500) -> guard (431, Host) ->
            //   [MCP route only, whatever spelling of its path matched: Origin -> rate limit ->
            //   bearer auth] -> handler.
            // (In actix the last `.wrap()` is the outermost.)
            app.service(
                web::resource(mcp_path.as_str())
                    .route(web::post().to(transport::post))
                    .default_service(web::to(transport::method_not_allowed))
                    .wrap(from_fn(require_token))
                    .wrap(Condition::new(
                        rate_limit_on && !shared_on,
                        Governor::new(&request_limit),
                    ))
                    .wrap(Condition::new(shared_on, from_fn(edge::shared_rate_limit)))
                    .wrap(from_fn(edge::origin_guard)),
            )
            .default_service(web::to(not_found))
            .wrap(from_fn(edge::guard))
            .wrap(from_fn(edge::request_log))
            .wrap(edge::cors(&cors_settings))
        })
        .on_connect(move |io, data| connections.on_connect(io, data))
        .listen(listener)
        .map_err(|source| StartupError::Bind {
            addr: format!("{}:{port}", s.host),
            source,
        })?
        .workers(workers)
        .keep_alive(s.keep_alive)
        .client_request_timeout(s.client_request_timeout)
        .client_disconnect_timeout(Duration::from_secs(1))
        // A client that closes its side has gone: end its response (and stop the work behind it)
        // instead of streaming into the void. 2026-07-28 makes a closed stream a cancellation,
        // and a listen stream's slot must come back when its client leaves.
        .h1_allow_half_closed(false)
        .max_connections(s.max_connections)
        .shutdown_timeout(s.shutdown_timeout.as_secs())
        // Signals are handled in run_until_stopped: actix treats SIGINT as a forced stop, and
        // Fly sends SIGINT by default; both must drain.
        .disable_signals()
        .run();

        // The metrics listener: its own socket and server, never the public port.
        let metrics = match s.metrics_port {
            None => None,
            Some(mp) => {
                let host = if s.host == "0.0.0.0" {
                    "[::]"
                } else {
                    s.host.as_str()
                };
                let bound = TcpListener::bind(format!("{host}:{mp}"))
                    .or_else(|_| TcpListener::bind(format!("{}:{mp}", s.host)))
                    .map_err(|source| StartupError::Bind {
                        addr: format!("{host}:{mp} (server.metrics_port)"),
                        source,
                    })?;
                let metrics_port = bound.local_addr().map(|a| a.port()).unwrap_or(mp);
                let server =
                    crate::metrics::listener(bound, keys.clone()).map_err(StartupError::Serve)?;
                let handle = server.handle();
                actix_web::rt::spawn(server);
                log::info!("metrics on port {metrics_port} (GET /metrics)");
                Some((metrics_port, handle))
            }
        };

        Ok(Application {
            changes,
            port,
            metrics,
            server,
            public_url: urls.base,
            resource: urls.resource,
            metadata_url: urls.metadata_url,
            audiences: urls.audiences,
            dev_issuer: dev,
            keys,
            settings,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The bound port of the metrics listener, when it is on.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(p, _)| *p)
    }

    /// Serves until SIGTERM or SIGINT, then drains: no new connections, in-flight requests
    /// finish (up to the shutdown timeout), and the process can exit 0.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let changes = self.changes.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            log::info!("shutdown signal received: draining in-flight requests");
            // Listen streams never end by themselves: tell them to close with their result.
            changes.close();
            handle.stop(true).await;
        });
        let result = self.server.await;
        if let Some((_, metrics)) = self.metrics {
            metrics.stop(false).await;
        }
        result
    }

    /// Serves without touching the process's signal handlers (for tests, which run many apps in
    /// one process).
    pub async fn run(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// The shared store (REDIS_URL), connected lazily: one that is down at startup is reported, and
/// the budgets fall back until it answers.
fn shared_store(settings: &Settings) -> Result<Option<Arc<budget::Shared>>, StartupError> {
    let rl = &settings.rate_limit;
    let Some(url) = &rl.redis_url else {
        return Ok(None);
    };
    let store = SharedStore::new(url.expose(), rl.redis_timeout, rl.redis_insecure_tls)
        .map_err(|e| StartupError::Config(format!("REDIS_URL (rate_limit.redis_url): {e}")))?;
    let probe = store.clone();
    tokio::spawn(async move {
        match probe.ping().await {
            Ok(()) => log::info!(
                "shared store {}: budgets and list changes are shared by every instance",
                probe.location
            ),
            Err(e) => log::warn!(
                "shared store {} does not answer yet ({e}): budgets fall back until it does",
                probe.location
            ),
        }
    });
    Ok(Some(Arc::new(budget::Shared {
        store,
        when_down: rl.redis_down,
    })))
}

/// The key that seals 2026-07-28 `requestState`: MCP_STATE_KEY (and the previous one during a
/// rotation). Production insists on it when a registered handler may ask, since every instance
/// must open what another sealed; otherwise a key is generated for this process.
fn state_seal(settings: &Settings, registry: &Registry) -> Result<Seal, StartupError> {
    use base64::Engine;
    let decode = |s: &crate::config::Secret| {
        base64::engine::general_purpose::STANDARD
            .decode(s.expose())
            .expect("validated base64")
    };
    let m = &settings.mcp;
    match (&m.state_key, registry.first_asker()) {
        (Some(key), _) => Ok(Seal::new(
            &decode(key),
            m.state_key_previous.as_ref().map(decode).as_deref(),
        )),
        (None, Some(asker)) if settings.profile == Profile::Production => {
            Err(StartupError::Config(format!(
                "MCP_STATE_KEY (mcp.state_key): required in production because {asker} asks the client; set the same base64 key of at least 32 bytes on every instance (`openssl rand -base64 32`)"
            )))
        }
        (None, asker) => {
            if let Some(asker) = asker {
                log::info!(
                    "{asker} may ask the client: requestState is sealed with a key generated for this process (set MCP_STATE_KEY to share one across instances)"
                );
            }
            Ok(Seal::random())
        }
    }
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler installs");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler installs");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
