//! `[server]`: the listener, its limits and timeouts, the public URL and this instance's name.

use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::{
    ConfigError, Context, Secret, bad, millis, non_empty, parse_base_url, range, secs, var_for,
};

/// `[server]`: one type, deserialized as it is used, then checked and completed.
#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    /// `None` = derived from the bound port (`http://localhost:<port>`), development only.
    #[serde(deserialize_with = "public_url")]
    pub public_url: Option<Url>,
    pub workers: usize,
    #[serde(rename = "shutdown_timeout_secs", deserialize_with = "secs")]
    pub shutdown_timeout: Duration,
    #[serde(rename = "keep_alive_secs", deserialize_with = "secs")]
    pub keep_alive: Duration,
    #[serde(rename = "client_request_timeout_ms", deserialize_with = "millis")]
    pub client_request_timeout: Duration,
    #[serde(rename = "body_timeout_ms", deserialize_with = "millis")]
    pub body_timeout: Duration,
    pub max_body_bytes: usize,
    pub max_header_bytes: usize,
    pub max_json_depth: usize,
    pub max_connections: usize,
    /// Connections one client address may hold at once (0 = half of all connections).
    pub max_connections_per_ip: usize,
    /// Port of the separate Prometheus listener; `None` (0 in the files) = off.
    #[serde(deserialize_with = "optional_port")]
    pub metrics_port: Option<u16>,
    /// The address the metrics listener binds (an IP address or `localhost`): loopback by
    /// default, whatever `host` is; `::` (all addresses) for a scraper on a private network.
    pub metrics_host: String,
    /// `METRICS_TOKEN`: when set, `/metrics` answers only `Authorization: Bearer <it>`.
    #[serde(deserialize_with = "metrics_token")]
    pub metrics_token: Option<Secret>,
    /// This instance's name in the ids of questions it waits on (FLY_MACHINE_ID on Fly.io, so a
    /// stray answer can be replayed to it; random when the files leave it empty).
    pub instance_id: String,
}

/// A base URL (http(s), no query, fragment or credentials); empty = none. Production's https
/// rule is checked with the profile (`check`).
fn public_url<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Url>, D::Error> {
    let raw = String::deserialize(d)?;
    match non_empty(&raw) {
        None => Ok(None),
        Some(u) => parse_base_url(u, false)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

/// At least 16 characters a header value can carry; empty = none. Errors never show it.
fn metrics_token<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
    use serde::de::Error;
    let raw = String::deserialize(d)?;
    let Some(t) = non_empty(&raw) else {
        return Ok(None);
    };
    if t.len() < 16 || !t.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(D::Error::custom(
            "must be at least 16 printable ASCII characters without spaces (value not shown); e.g. `openssl rand -hex 32`",
        ));
    }
    Ok(Some(Secret(t.to_string())))
}

fn optional_port<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    u16::deserialize(d).map(|p| (p != 0).then_some(p))
}

impl ServerSettings {
    pub(super) fn check(&mut self, cx: &Context) -> Result<(), ConfigError> {
        match &self.public_url {
            Some(u) if cx.prod => {
                parse_base_url(u.as_str(), true)
                    .map_err(|p| bad(&var_for("server.public_url"), p))?;
            }
            Some(_) => {}
            None if cx.prod => {
                return Err(bad(
                    &var_for("server.public_url"),
                    "required in production: the public https URL clients use (e.g. https://app.fly.dev); it defines the token audience and the metadata URL",
                ));
            }
            None => {}
        }
        if self.host.parse::<std::net::IpAddr>().is_err() && self.host != "localhost" {
            return Err(bad(
                &var_for("server.host"),
                format!("{:?} is not an IP address", self.host),
            ));
        }
        if self.metrics_host.parse::<std::net::IpAddr>().is_err()
            && self.metrics_host != "localhost"
        {
            return Err(bad(
                &var_for("server.metrics_host"),
                format!(
                    "{:?} is not an IP address (127.0.0.1 keeps metrics on this machine; :: reaches a private network)",
                    self.metrics_host
                ),
            ));
        }
        self.check_ranges()?;
        self.instance_id = match non_empty(&self.instance_id) {
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
        };
        Ok(())
    }
    /// Every numeric setting within its range, and the metrics port apart from the public one.
    fn check_ranges(&self) -> Result<(), ConfigError> {
        let ms = |d: Duration| d.as_millis() as u64;
        range(self.workers as u64, 0, 1024, "server.workers")?;
        range(
            self.shutdown_timeout.as_secs(),
            1,
            3600,
            "server.shutdown_timeout_secs",
        )?;
        range(self.keep_alive.as_secs(), 1, 3600, "server.keep_alive_secs")?;
        range(
            ms(self.client_request_timeout),
            1,
            600_000,
            "server.client_request_timeout_ms",
        )?;
        range(
            ms(self.body_timeout),
            1,
            3_600_000,
            "server.body_timeout_ms",
        )?;
        range(
            self.max_body_bytes as u64,
            1,
            256 << 20,
            "server.max_body_bytes",
        )?;
        range(
            self.max_header_bytes as u64,
            256,
            128 << 10,
            "server.max_header_bytes",
        )?;
        range(self.max_json_depth as u64, 1, 1024, "server.max_json_depth")?;
        range(
            self.max_connections as u64,
            1,
            1_000_000,
            "server.max_connections",
        )?;
        if self.metrics_port == Some(self.port) {
            return Err(bad(
                &var_for("server.metrics_port"),
                "must differ from the public port (PORT): metrics are never served publicly",
            ));
        }
        range(
            self.max_connections_per_ip as u64,
            0,
            1_000_000,
            "server.max_connections_per_ip",
        )?;
        Ok(())
    }
}

/// A random instance name for question ids when the platform gives none.
fn random_instance_id() -> String {
    let mut b = [0u8; 6];
    aws_lc_rs::rand::fill(&mut b).expect("the system random source works");
    b.iter().map(|x| format!("{x:02x}")).collect()
}
