//! The `/metrics` listener (`server.metrics_port` on `server.metrics_host`): who may read it
//! (Host check, `METRICS_TOKEN`) and the key set gauges brought up to date as it is read.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server as HttpServerHandle;
use actix_web::http::header;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

use crate::auth::jwks::KeyStore;
use crate::config::{Secret, Settings};
use crate::edge::patterns::{HostPattern, split_host_port};
use crate::failure::Kind;
use crate::metrics::METRICS;
use crate::refusal::Refusal;
use crate::state::StartupError;

/// The text exposition of every metric, the key set gauges brought up to date first (the keys
/// of every trusted issuer; the age of the oldest set in force).
pub fn render(stores: &[Arc<KeyStore>]) -> String {
    let m = &*METRICS;
    let (mut keys, mut age) = (0, 0);
    for store in stores {
        if let Some(set) = store.current() {
            keys += set.keys.len() as i64;
            age = age.max(store.age().map_or(0, |a| a.as_secs() as i64));
        }
    }
    m.jwks_keys.set(keys);
    m.jwks_age.set(age);
    crate::metrics::text()
}

/// Who may read `/metrics`: a `Host` naming an IP address, `localhost`, a `.internal` name
/// (a platform's private DNS) or one of `security.allowed_hosts` (never any other name, so a
/// page whose DNS rebinds to this listener is refused), and, when `METRICS_TOKEN` is set, only
/// with `Authorization: Bearer <token>`.
pub struct MetricsAccess {
    pub allowed_hosts: Vec<HostPattern>,
    pub token: Option<Secret>,
}

impl MetricsAccess {
    fn host_allowed(&self, req: &HttpRequest) -> bool {
        let mut hosts = req.headers().get_all(header::HOST);
        let host = match (hosts.next(), hosts.next()) {
            (Some(h), None) => h.to_str().ok(),
            _ => None,
        };
        let Some((name, port)) = host.and_then(split_host_port) else {
            return false;
        };
        let bare = name.trim_start_matches('[').trim_end_matches(']');
        bare.parse::<std::net::IpAddr>().is_ok()
            || name.eq_ignore_ascii_case("localhost")
            || (name.len() > ".internal".len() && name.to_ascii_lowercase().ends_with(".internal"))
            || self
                .allowed_hosts
                .iter()
                .any(|p| !matches!(p, HostPattern::Any) && p.matches_parts(name, port))
    }

    fn token_valid(&self, req: &HttpRequest) -> bool {
        let Some(expected) = &self.token else {
            return true;
        };
        // The one `Authorization: Bearer` header's token, as the auth gate reads it; compared
        // in constant time (the listener may be reachable by others on the network).
        use crate::auth::bearer::{Scheme, presented};
        presented(req.headers()).is_some_and(|(scheme, token)| {
            scheme == Scheme::Bearer
                && aws_lc_rs::constant_time::verify_slices_are_equal(
                    token,
                    expected.expose().as_bytes(),
                )
                .is_ok()
        })
    }
}

async fn serve(
    req: HttpRequest,
    keys: web::Data<Vec<Arc<KeyStore>>>,
    access: web::Data<MetricsAccess>,
) -> HttpResponse {
    if !access.host_allowed(&req) {
        return Refusal::transport(Kind::Forbidden, "Forbidden: Host header not allowed")
            .into_response();
    }
    if !access.token_valid(&req) {
        let mut res = Refusal::transport(
            Kind::MetricsToken,
            "Unauthorized: /metrics needs Authorization: Bearer <METRICS_TOKEN>",
        )
        .into_response();
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer realm=\"metrics\""),
        );
        return res;
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(render(&keys))
}

/// Starts the metrics listener: only `GET /metrics`, nothing else of the app.
pub fn listener(
    listener: TcpListener,
    keys: Vec<Arc<KeyStore>>,
    access: MetricsAccess,
) -> std::io::Result<HttpServerHandle> {
    let keys = web::Data::new(keys);
    let access = web::Data::new(access);
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(keys.clone())
            .app_data(access.clone())
            .route("/metrics", web::get().to(serve))
            .default_service(web::to(|| async {
                crate::refusal::Refusal::not_found().into_response()
            }))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run())
}

/// Starts the metrics listener when `server.metrics_port` is set: its own socket and server,
/// never the public port. Its port (0 picks one) and handle.
pub fn start(
    settings: &Settings,
    keys: &[Arc<KeyStore>],
) -> Result<Option<(u16, actix_web::dev::ServerHandle)>, StartupError> {
    let s = &settings.server;
    let Some(mp) = s.metrics_port else {
        return Ok(None);
    };
    // Its own address (loopback unless server.metrics_host says otherwise), never
    // the public listener's.
    let host = match s.metrics_host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => format!("[{v6}]"),
        _ => s.metrics_host.clone(),
    };
    let bound = TcpListener::bind(format!("{host}:{mp}")).map_err(|source| StartupError::Bind {
        addr: format!("{host}:{mp} (server.metrics_host, server.metrics_port)"),
        source,
    })?;
    let metrics_port = bound.local_addr().map(|a| a.port()).unwrap_or(mp);
    let access = MetricsAccess {
        allowed_hosts: settings.security.allowed_hosts.clone(),
        token: s.metrics_token.clone(),
    };
    let server = listener(bound, keys.to_vec(), access).map_err(StartupError::Serve)?;
    let handle = server.handle();
    actix_web::rt::spawn(server);
    log::info!(
        "metrics on {host}:{metrics_port} (GET /metrics{})",
        if s.metrics_token.is_some() {
            ", bearer token required"
        } else {
            ""
        }
    );
    Ok(Some((metrics_port, handle)))
}
