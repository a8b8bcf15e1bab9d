//! `[server]`: the listener, its limits and timeouts, the public URL and this instance's name.

use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::{ConfigError, Context, bad, non_empty, parse_base_url, range, var_for};

#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    /// `None` = derived from the bound port (`http://localhost:<port>`), development only.
    pub public_url: Option<Url>,
    pub workers: usize,
    pub shutdown_timeout: Duration,
    pub keep_alive: Duration,
    pub client_request_timeout: Duration,
    pub body_timeout: Duration,
    pub max_body_bytes: usize,
    pub max_header_bytes: usize,
    pub max_json_depth: usize,
    pub max_connections: usize,
    /// Connections one client address may hold at once (0 = half of all connections).
    pub max_connections_per_ip: usize,
    /// Port of the separate Prometheus listener; `None` = off.
    pub metrics_port: Option<u16>,
    /// This instance's name in the ids of questions it waits on (FLY_MACHINE_ID on Fly.io, so a
    /// stray answer can be replayed to it; random otherwise).
    pub instance_id: String,
}

#[derive(Deserialize)]
pub(super) struct Raw {
    host: String,
    port: u16,
    public_url: String,
    workers: usize,
    shutdown_timeout_secs: u64,
    keep_alive_secs: u64,
    client_request_timeout_ms: u64,
    body_timeout_ms: u64,
    max_body_bytes: usize,
    max_header_bytes: usize,
    max_json_depth: usize,
    max_connections: usize,
    max_connections_per_ip: usize,
    metrics_port: u16,
    instance_id: String,
}

impl Raw {
    pub(super) fn validate(self, cx: &Context) -> Result<ServerSettings, ConfigError> {
        let s = self;
        let public_url = match non_empty(&s.public_url) {
            Some(u) => Some(
                parse_base_url(u, cx.prod).map_err(|p| bad(&var_for("server.public_url"), p))?,
            ),
            None if cx.prod => {
                return Err(bad(
                    &var_for("server.public_url"),
                    "required in production: the public https URL clients use (e.g. https://app.fly.dev); it defines the token audience and the metadata URL",
                ));
            }
            None => None,
        };
        if s.host.parse::<std::net::IpAddr>().is_err() && s.host != "localhost" {
            return Err(bad(
                &var_for("server.host"),
                format!("{:?} is not an IP address", s.host),
            ));
        }
        range(s.workers as u64, 0, 1024, "server.workers")?;
        range(
            s.shutdown_timeout_secs,
            1,
            3600,
            "server.shutdown_timeout_secs",
        )?;
        range(s.keep_alive_secs, 1, 3600, "server.keep_alive_secs")?;
        range(
            s.client_request_timeout_ms,
            1,
            600_000,
            "server.client_request_timeout_ms",
        )?;
        range(s.body_timeout_ms, 1, 3_600_000, "server.body_timeout_ms")?;
        range(
            s.max_body_bytes as u64,
            1,
            256 << 20,
            "server.max_body_bytes",
        )?;
        range(
            s.max_header_bytes as u64,
            256,
            128 << 10,
            "server.max_header_bytes",
        )?;
        range(s.max_json_depth as u64, 1, 1024, "server.max_json_depth")?;
        range(
            s.max_connections as u64,
            1,
            1_000_000,
            "server.max_connections",
        )?;
        if s.metrics_port != 0 && s.metrics_port == s.port {
            return Err(bad(
                &var_for("server.metrics_port"),
                "must differ from the public port (PORT): metrics are never served publicly",
            ));
        }
        range(
            s.max_connections_per_ip as u64,
            0,
            1_000_000,
            "server.max_connections_per_ip",
        )?;
        Ok(ServerSettings {
            host: s.host,
            port: s.port,
            public_url,
            workers: s.workers,
            shutdown_timeout: Duration::from_secs(s.shutdown_timeout_secs),
            keep_alive: Duration::from_secs(s.keep_alive_secs),
            client_request_timeout: Duration::from_millis(s.client_request_timeout_ms),
            body_timeout: Duration::from_millis(s.body_timeout_ms),
            max_body_bytes: s.max_body_bytes,
            max_header_bytes: s.max_header_bytes,
            max_json_depth: s.max_json_depth,
            max_connections: s.max_connections,
            max_connections_per_ip: s.max_connections_per_ip,
            metrics_port: (s.metrics_port != 0).then_some(s.metrics_port),
            instance_id: match non_empty(&s.instance_id) {
                Some(id)
                    if id.len() <= 64
                        && id
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
                {
                    id.to_string()
                }
                Some(_) => {
                    return Err(bad(
                        &var_for("server.instance_id"),
                        "must be 1-64 letters, digits, - or _",
                    ));
                }
                None => random_instance_id(),
            },
        })
    }
}

/// A random instance name for question ids when the platform gives none.
fn random_instance_id() -> String {
    let mut b = [0u8; 6];
    aws_lc_rs::rand::fill(&mut b).expect("the system random source works");
    b.iter().map(|x| format!("{x:02x}")).collect()
}
