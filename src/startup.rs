//! `Application`: the server that `main` and the socket tests run. Checks what needs no port,
//! binds the listener (port 0 works), resolves the public URLs, builds the issuer's key store,
//! the validator, the shared store and the `requestState` seal, and serves `routes::app` with
//! its connection limits. Also owns graceful shutdown on SIGTERM and SIGINT.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::dev_issuer::DevIssuer;
use crate::auth::jwks::KeyStore;
use crate::auth::verifier::TokenMemo;
use crate::config::{Profile, Settings, TrustedProxy};
use crate::conn::ConnectionLimiter;
use crate::registry::Registry;
use crate::routes;
use crate::state::{AppState, StartupError, public_urls, state_seal};
use actix_web::dev::Server as HttpServerHandle;

/// How stale actix's connection clock may be (its date service ticks every 500 ms).
const ACTIX_CLOCK_STEP: Duration = Duration::from_millis(500);

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
    /// The first trusted issuer's key store (the development issuer's in development).
    pub keys: Arc<KeyStore>,
    /// Every trusted issuer's key store, in `auth.trusted` order.
    pub key_stores: Vec<Arc<KeyStore>>,
    pub settings: Settings,
    /// Announcements to `subscriptions/listen` streams, and their shutdown signal.
    pub changes: Arc<crate::changes::Changes>,
    /// Tasks running here: they get the drain period at shutdown, then fail.
    tasks: Arc<crate::tasks::Tasks>,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Application, StartupError> {
        // Everything that can be refused without the port is checked before binding it, so a
        // busy port cannot mask a configuration error.
        let registry = Arc::new(Registry::from_inventory()?);
        let seal = state_seal(&settings, &registry)?;
        let addr = format!("{}:{}", settings.server.host, settings.server.port);
        // The port is reserved now (its number is part of the public URLs in development) and
        // listened on only once the issuer's keys are in (`await_first_keys`): a platform
        // routes to an instance as soon as its port accepts connections.
        let socket = reserve(&addr).map_err(|source| StartupError::Bind {
            addr: addr.clone(),
            source,
        })?;
        let port = socket
            .local_addr()
            .map_err(|source| StartupError::Bind {
                addr: addr.clone(),
                source,
            })?
            .port();
        let urls = public_urls(&settings, port)?;
        warn_about_open_switches(&settings);
        crate::telemetry::init(&settings.telemetry, &settings.server.instance_id)
            .map_err(StartupError::Config)?;
        let state = AppState::with_registry(&settings, &urls, registry, seal)?;
        let keys = state.keys.clone();
        let dev = state.dev_issuer.clone();
        let changes = state.mcp.changes.clone();
        let tasks = state.mcp.tasks.clone();
        state.spawn_background_work();
        if settings.auth.enabled && !settings.auth.startup_key_wait.is_zero() {
            await_first_keys(&keys, settings.auth.startup_key_wait).await;
        }
        let listener = socket
            .listen(LISTEN_BACKLOG)
            .and_then(|l| l.into_std())
            .map_err(|source| StartupError::Bind { addr, source })?;

        let server = serve(listener, state, &settings, port)?;
        let metrics = crate::metrics_endpoint::start(&settings, &keys)?;
        Ok(Application {
            changes,
            tasks,
            port,
            metrics,
            server,
            public_url: urls.base,
            resource: urls.resource,
            metadata_url: urls.metadata_url,
            audiences: urls.audiences,
            dev_issuer: dev,
            keys: keys[0].clone(),
            key_stores: keys,
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
        let tasks = self.tasks.clone();
        let drain = self.settings.server.shutdown_timeout;
        let signalled = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (drained, tasks_drained) = tokio::sync::oneshot::channel::<()>();
        let flag = signalled.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
            log::info!("shutdown signal received: draining in-flight requests and tasks");
            // Listen streams never end by themselves: tell them to close with their result.
            changes.close();
            // Running tasks get the same drain period, then are marked failed.
            let deadline = tokio::time::Instant::now() + drain;
            tokio::join!(handle.stop(true), tasks.drain(deadline));
            // The spans of the drained requests, exported in what is left of the period.
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let _ = tokio::task::spawn_blocking(move || crate::telemetry::flush(left)).await;
            let _ = drained.send(());
        });
        let result = self.server.await;
        if signalled.load(std::sync::atomic::Ordering::SeqCst) {
            let _ = tasks_drained.await;
        }
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

/// Connections the kernel queues for the listener (actix-web's own default).
const LISTEN_BACKLOG: u32 = 1024;

/// Binds the first address `addr` resolves to, without listening yet (`SO_REUSEADDR` set, as
/// std's `TcpListener::bind` does on Unix).
fn reserve(addr: &str) -> std::io::Result<tokio::net::TcpSocket> {
    use std::net::ToSocketAddrs;
    let mut last = None;
    for a in addr.to_socket_addrs()? {
        let socket = if a.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        #[cfg(unix)]
        socket.set_reuseaddr(true)?;
        match socket.bind(a) {
            Ok(()) => return Ok(socket),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("the address resolves to nothing")))
}

/// Waits until every trusted issuer's first key set fetch has succeeded, at most `wait`
/// (`auth.startup_key_wait_secs`). Keys known at startup (the development issuer) are in
/// already.
async fn await_first_keys(keys: &[Arc<KeyStore>], wait: Duration) {
    let deadline = tokio::time::Instant::now() + wait;
    while keys.iter().any(|k| k.current().is_none()) {
        if tokio::time::Instant::now() >= deadline {
            log::warn!(
                "no key set after {} s (auth.startup_key_wait_secs): serving now; protected requests get 503 until a key set fetch succeeds",
                wait.as_secs()
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The public listener's server: actix-web's HttpServer, spelled out on actix-server and
/// actix-http, with the connection limits, the per-connection token memo, the timeouts as
/// floors and the `Expect: 100-continue` handler.
fn serve(
    listener: TcpListener,
    state: AppState,
    settings: &Settings,
    port: u16,
) -> Result<HttpServerHandle, StartupError> {
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
    let expect = Arc::new(state.expect_check());
    let local = listener.local_addr().map_err(|source| StartupError::Bind {
        addr: format!("{}:{port}", s.host),
        source,
    })?;
    // actix-web's HttpServer, spelled out on actix-server and actix-http: the same service
    // per worker, plus the expect handler HttpServer cannot take (src/expect.rs).
    let builder = actix_server::Server::build();
    let shutdown = builder.graceful_shutdown_signal();
    let (keep_alive, request_timeout) = (s.keep_alive, s.client_request_timeout);
    // The builder's log label, if any, goes to every worker (`logging::tag`).
    let tag = crate::logging::tag();
    Ok(builder
        .workers(workers)
        .max_concurrent_connections(s.max_connections)
        .shutdown_timeout(s.shutdown_timeout.as_secs())
        // Signals are handled in run_until_stopped: actix treats SIGINT as a forced stop, and
        // Fly sends SIGINT by default; both must drain.
        .disable_signals()
        .listen("gatehouse", listener, move || {
            crate::logging::set_tag(tag.clone());
            let connections = connections.clone();
            let shutdown = shutdown.clone();
            actix_http::HttpService::build()
                .graceful_shutdown_signal(move || {
                    let shutdown = shutdown.clone();
                    async move { shutdown.notified().await }
                })
                // actix computes both deadlines from a clock it refreshes every 500 ms, so a
                // deadline can start up to 500 ms in the past: as given, a 300 ms request
                // timeout refused 4 in 10 prompt requests with 408. The allowance makes each
                // setting a floor (at least the time configured, at most 500 ms more).
                .keep_alive(keep_alive + ACTIX_CLOCK_STEP)
                .client_request_timeout(request_timeout + ACTIX_CLOCK_STEP)
                .client_disconnect_timeout(Duration::from_secs(1))
                // A client that closes its side has gone: end its response (and stop the
                // work behind it) instead of streaming into the void. 2026-07-28 makes a
                // closed stream a cancellation, and a listen stream's slot must come back
                // when its client leaves.
                .h1_allow_half_closed(false)
                .local_addr(local)
                .expect(crate::expect::service(expect.clone()))
                .on_connect_ext(move |io: &actix_web::rt::net::TcpStream, data| {
                    connections.on_connect(io as &dyn std::any::Any, data);
                    data.insert(TokenMemo::default());
                })
                .finish(actix_service::map_config(
                    routes::app(state.clone()),
                    |_| actix_web::dev::AppConfig::default(),
                ))
                .tcp()
        })
        .map_err(|source| StartupError::Bind {
            addr: format!("{}:{port}", s.host),
            source,
        })?
        .run())
}

/// Production switches that open the server up on purpose are said out loud at every start.
fn warn_about_open_switches(settings: &Settings) {
    if settings.profile != Profile::Production {
        return;
    }
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
