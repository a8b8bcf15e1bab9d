//! `[security]`: which `Host` values are served, which proxy's client-address header is
//! trusted, and the production switches that accept `*` on purpose.

use serde::Deserialize;

use super::cors::CorsSettings;
use super::server::ServerSettings;
use super::{ConfigError, Context, bad, var_for};
use crate::edge::patterns::{HostPattern, OriginPattern};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustedProxy {
    /// The TCP peer address is the client.
    None,
    /// Fly.io: the `Fly-Client-IP` header set by Fly's proxy.
    Fly,
    /// Heroku: the right-most `X-Forwarded-For` entry, appended by Heroku's router.
    Heroku,
}

#[derive(Debug, Clone)]
pub struct SecuritySettings {
    pub allowed_hosts: Vec<HostPattern>,
    pub trusted_proxy: TrustedProxy,
    /// `*` in ALLOWED_ORIGINS was accepted in production by `security.allow_any_origin`.
    pub allow_any_origin: bool,
    /// `*` in ALLOWED_HOSTS was accepted in production by `security.allow_any_host`.
    pub allow_any_host: bool,
}

#[derive(Deserialize)]
pub(super) struct Raw {
    allowed_hosts: Vec<String>,
    trusted_proxy: String,
    allow_any_origin: bool,
    allow_any_host: bool,
}

impl Raw {
    /// `cors` and `server` are already checked: a `*` origin needs this section's switch, and
    /// without `allowed_hosts` the public URL's host is the one served.
    pub(super) fn validate(
        self,
        cx: &Context,
        server: &ServerSettings,
        cors: &CorsSettings,
    ) -> Result<SecuritySettings, ConfigError> {
        let mut allowed_hosts = Vec::new();
        for h in self.allowed_hosts.iter().filter(|h| !h.trim().is_empty()) {
            allowed_hosts.push(
                HostPattern::parse(h.trim())
                    .map_err(|p| bad(&var_for("security.allowed_hosts"), p))?,
            );
        }
        if allowed_hosts.is_empty() {
            match (&server.public_url, cx.prod) {
                (Some(u), true) => {
                    allowed_hosts.push(HostPattern::Name(
                        u.host_str().unwrap_or_default().to_ascii_lowercase(),
                    ));
                }
                _ => {
                    for h in ["localhost", "127.0.0.1", "[::1]"] {
                        allowed_hosts.push(HostPattern::Name(h.to_string()));
                    }
                    if let Some(u) = &server.public_url {
                        allowed_hosts.push(HostPattern::Name(
                            u.host_str().unwrap_or_default().to_ascii_lowercase(),
                        ));
                    }
                }
            }
        }
        let wildcard = |on: bool, allowed: bool, list: &str, switch: &str| {
            if cx.prod && on && !allowed {
                Err(bad(
                    &var_for(list),
                    format!(
                        "`*` is refused in the production profile: list the exact values, or set {} = true to accept any on purpose",
                        var_for(switch)
                    ),
                ))
            } else {
                Ok(())
            }
        };
        let any_origin = cors.allowed_origins.contains(&OriginPattern::Any);
        let any_host = allowed_hosts.contains(&HostPattern::Any);
        wildcard(
            any_origin,
            self.allow_any_origin,
            "cors.allowed_origins",
            "security.allow_any_origin",
        )?;
        wildcard(
            any_host,
            self.allow_any_host,
            "security.allowed_hosts",
            "security.allow_any_host",
        )?;
        let trusted_proxy = match self.trusted_proxy.trim().to_ascii_lowercase().as_str() {
            "" | "none" => TrustedProxy::None,
            "fly" => TrustedProxy::Fly,
            "heroku" => TrustedProxy::Heroku,
            other => {
                return Err(bad(
                    &var_for("security.trusted_proxy"),
                    format!("{other:?} is not one of none, fly, heroku"),
                ));
            }
        };
        Ok(SecuritySettings {
            allow_any_origin: any_origin,
            allow_any_host: any_host,
            allowed_hosts,
            trusted_proxy,
        })
    }
}
