//! `[security]`: which `Host` values are served, which proxy's client-address header is
//! trusted, and the production switches that accept `*` on purpose.

use serde::Deserialize;

use super::cors::CorsSettings;
use super::server::ServerSettings;
use super::{ConfigError, Context, bad, patterns, var_for};
use crate::edge::patterns::{HostPattern, OriginPattern};

/// `[security]`: one type, deserialized as it is used, then resolved against the server and
/// CORS settings.
#[derive(Debug, Clone, Deserialize)]
pub struct SecuritySettings {
    /// Empty in the files = the public URL's host in production, loopback names otherwise.
    #[serde(deserialize_with = "patterns")]
    pub allowed_hosts: Vec<HostPattern>,
    pub trusted_proxy: TrustedProxy,
    /// Read as the switch that accepts `*` in ALLOWED_ORIGINS in production; once resolved,
    /// whether `*` is in force (the start-up warning reads it).
    pub allow_any_origin: bool,
    /// The same for `*` in ALLOWED_HOSTS.
    pub allow_any_host: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum TrustedProxy {
    /// The TCP peer address is the client.
    None,
    /// Fly.io: the `Fly-Client-IP` header set by Fly's proxy.
    Fly,
    /// Heroku: the right-most `X-Forwarded-For` entry, appended by Heroku's router.
    Heroku,
}

impl TryFrom<String> for TrustedProxy {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "none" => Ok(TrustedProxy::None),
            "fly" => Ok(TrustedProxy::Fly),
            "heroku" => Ok(TrustedProxy::Heroku),
            other => Err(format!("{other:?} is not one of none, fly, heroku")),
        }
    }
}

impl SecuritySettings {
    /// Fills in the default hosts and refuses `*` in production unless its switch is on.
    pub(super) fn resolve(
        &mut self,
        cx: &Context,
        server: &ServerSettings,
        cors: &CorsSettings,
    ) -> Result<(), ConfigError> {
        let public_host = || {
            server
                .public_url
                .as_ref()
                .map(|u| HostPattern::Name(u.host_str().unwrap_or_default().to_ascii_lowercase()))
        };
        if self.allowed_hosts.is_empty() {
            if !cx.prod || server.public_url.is_none() {
                for h in ["localhost", "127.0.0.1", "[::1]"] {
                    self.allowed_hosts.push(HostPattern::Name(h.to_string()));
                }
            }
            self.allowed_hosts.extend(public_host());
        }
        let any_origin = cors.allowed_origins.contains(&OriginPattern::Any);
        let any_host = self.allowed_hosts.contains(&HostPattern::Any);
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
        self.allow_any_origin = any_origin;
        self.allow_any_host = any_host;
        Ok(())
    }
}
