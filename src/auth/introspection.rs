//! Token introspection (RFC 7662) at one issuer: the endpoint (configured, or the issuer's
//! metadata `introspection_endpoint`), client_secret_basic authentication, the fetch rules of
//! the key set (time-out, size cap, no redirects, https in production), answers cached by the
//! token's hash (active ones by the verifier, inactive ones here, briefly) and one call in
//! flight per token. Neither a token nor an answer is ever logged.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::OnceCell;
use url::Url;

use super::jwks::KeyStore;
use crate::config::ClientCredentials;
use crate::hashing::BuildDigest;

/// Why an introspection gave no active answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// `active: false`: the token is revoked, expired or unknown.
    Inactive,
    /// The endpoint failed, timed out or answered something unreadable (logged).
    Unavailable,
}

type Outcome = Result<Arc<Map<String, Value>>, Failure>;

/// One call's outcome and until when it may be reused (Unix seconds).
type Flight = Arc<OnceCell<(Outcome, u64)>>;

const MAX_ANSWER_BYTES: usize = 64 * 1024;
const MAX_FLIGHTS: usize = 10_000;

/// What an introspector is built from.
pub struct IntrospectorOptions {
    pub issuer: String,
    pub endpoint: Option<Url>,
    pub keys: Arc<KeyStore>,
    pub client: ClientCredentials,
    pub timeout: Duration,
    pub require_https: bool,
    pub cache_secs: u64,
    pub negative_cache_secs: u64,
}

/// An issuer's introspection endpoint, and the calls made to it.
pub struct Introspector {
    issuer: String,
    configured: Option<Url>,
    discovered: Mutex<Option<Url>>,
    keys: Arc<KeyStore>,
    credentials: ClientCredentials,
    http: reqwest::Client,
    require_https: bool,
    cache_secs: u64,
    negative_cache_secs: u64,
    /// Calls by the token's SHA-256: in flight (shared by every request with that token), or
    /// done and reusable until their time.
    flights: Mutex<HashMap<[u8; 32], Flight, BuildDigest>>,
    calls: AtomicU64,
}

impl Introspector {
    pub fn new(o: IntrospectorOptions) -> Introspector {
        let http = crate::outbound::client(o.timeout)
            .build()
            .expect("the HTTP client builds");
        Introspector {
            issuer: o.issuer,
            configured: o.endpoint,
            discovered: Mutex::new(None),
            keys: o.keys,
            credentials: o.client,
            http,
            require_https: o.require_https,
            cache_secs: o.cache_secs,
            negative_cache_secs: o.negative_cache_secs,
            flights: Mutex::new(HashMap::default()),
            calls: AtomicU64::new(0),
        }
    }

    /// `auth.introspection_cache_secs`.
    pub fn cache_secs(&self) -> u64 {
        self.cache_secs
    }

    /// How many calls reached the endpoint (for the doctor and tests).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// The endpoint: configured, or found in the issuer's metadata (once).
    pub async fn endpoint(&self) -> Result<Url, String> {
        if let Some(u) = &self.configured {
            return Ok(u.clone());
        }
        if let Some(u) = self
            .discovered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Ok(u);
        }
        let doc = self.keys.metadata_document().await?;
        let found = doc
            .get("introspection_endpoint")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                format!(
                    "the metadata of {} names no introspection_endpoint: set auth.introspection_endpoint",
                    self.issuer
                )
            })?;
        let url =
            Url::parse(found).map_err(|_| "introspection_endpoint is not a URL".to_string())?;
        if self.require_https && url.scheme() != "https" && !crate::config::is_loopback(&url) {
            return Err("the discovered introspection_endpoint must use https".into());
        }
        *self.discovered.lock().unwrap_or_else(|e| e.into_inner()) = Some(url.clone());
        Ok(url)
    }

    /// The endpoint's answer for `token` (`digest` is its SHA-256): an active one, or why not.
    /// Concurrent requests with one token share one call; an inactive answer is reused for
    /// `auth.introspection_negative_cache_secs`, an active one for the verifier's cache time.
    pub async fn introspect(
        &self,
        token: &str,
        digest: &[u8; 32],
    ) -> Result<Arc<Map<String, Value>>, Failure> {
        let now = jsonwebtoken::get_current_timestamp();
        let flight = {
            let mut flights = self.flights.lock().unwrap_or_else(|e| e.into_inner());
            let reusable = |f: &Flight| f.get().is_none_or(|(_, until)| now < *until);
            match flights.get(digest) {
                Some(f) if reusable(f) => f.clone(),
                _ => {
                    if flights.len() >= MAX_FLIGHTS {
                        flights.retain(|_, f| f.get().is_some_and(|(_, until)| now < *until));
                        if flights.len() >= MAX_FLIGHTS {
                            flights.retain(|_, f| f.get().is_none());
                        }
                    }
                    let f = Flight::default();
                    flights.insert(*digest, f.clone());
                    f
                }
            }
        };
        let (outcome, _) = flight
            .get_or_init(|| async {
                let outcome = self.call(token).await;
                let now = jsonwebtoken::get_current_timestamp();
                let until = match &outcome {
                    Ok(_) => now + self.cache_secs,
                    Err(Failure::Inactive) => now + self.negative_cache_secs,
                    // Not reused: the next request tries again.
                    Err(Failure::Unavailable) => now,
                };
                (outcome, until)
            })
            .await;
        outcome.clone()
    }

    /// One POST to the endpoint (RFC 7662 section 2.1).
    async fn call(&self, token: &str) -> Outcome {
        let endpoint = match self.endpoint().await {
            Ok(u) => u,
            Err(e) => {
                log::error!(
                    "token introspection for {} is unavailable: {}",
                    self.issuer,
                    crate::text::redact_urls(&e)
                );
                return Err(Failure::Unavailable);
            }
        };
        self.calls.fetch_add(1, Ordering::Relaxed);
        let attributes = || vec![opentelemetry::KeyValue::new("http.request.method", "POST")];
        let post = self.post(&endpoint, token);
        let result = crate::telemetry::traced("POST token introspection", attributes, post, |f| {
            match f {
                Failure::Inactive => "inactive",
                Failure::Unavailable => "unavailable",
            }
            .to_string()
        })
        .await;
        let label = match &result {
            Ok(_) => "active",
            Err(Failure::Inactive) => "inactive",
            Err(Failure::Unavailable) => "error",
        };
        crate::metrics::METRICS
            .introspections
            .with_label_values(&[label])
            .inc();
        result
    }

    async fn post(&self, endpoint: &Url, token: &str) -> Outcome {
        let shown = crate::text::redact_urls(endpoint.as_str()).into_owned();
        let failed = |why: String| {
            log::warn!("token introspection at {shown} failed: {why}");
            Err(Failure::Unavailable)
        };
        // RFC 6749 section 2.3.1: the id and secret are form-encoded before Basic encoding.
        let encode =
            |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let sent = self
            .http
            .post(endpoint.clone())
            .basic_auth(
                encode(&self.credentials.id),
                Some(encode(self.credentials.secret.expose())),
            )
            .header("accept", "application/json")
            .form(&[("token", token), ("token_type_hint", "access_token")])
            .send()
            .await;
        let mut resp = match sent {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return failed("timed out".into()),
            Err(_) => return failed("connection failed".into()),
        };
        let status = resp.status();
        if status.is_redirection() {
            return failed(format!(
                "answered {status} (a redirect): gatehouse never follows redirects; set auth.introspection_endpoint to the final URL"
            ));
        }
        if !status.is_success() {
            let hint = if status.as_u16() == 401 || status.as_u16() == 403 {
                " (check the client credentials: auth.client_id, auth.client_secret)"
            } else {
                ""
            };
            return failed(format!("answered {status}{hint}"));
        }
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    body.extend_from_slice(&chunk);
                    if body.len() > MAX_ANSWER_BYTES {
                        return failed(format!("answer larger than {MAX_ANSWER_BYTES} bytes"));
                    }
                }
                Ok(None) => break,
                Err(_) => return failed("the answer was cut off".into()),
            }
        }
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(answer)) => match answer.get("active") {
                Some(Value::Bool(true)) => Ok(Arc::new(answer)),
                Some(Value::Bool(false)) => Err(Failure::Inactive),
                _ => failed("the answer has no boolean \"active\" member".into()),
            },
            _ => failed("the answer is not a JSON object".into()),
        }
    }
}
