//! The issuer's key set: fetched over HTTP (or discovered from the issuer's metadata), filtered
//! to strong signature keys, cached with a TTL, refreshed in the background, and refetched on an
//! unknown `kid` at most once per cooldown no matter how many requests ask.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;
use url::Url;

/// One verification key, bound to exactly one algorithm (RFC 8725 §3.1).
pub struct Key {
    pub kid: Option<String>,
    pub alg: Algorithm,
    pub key: DecodingKey,
    /// A fingerprint of the key material (`kty`, `crv`, `n`, `e`, `x`, `y`): the same key in a
    /// later fetch has the same one, so what a key verified can ask whether it is still there.
    pub id: u64,
}

/// A loaded key set.
#[derive(Default)]
pub struct KeySet {
    pub keys: Vec<Key>,
    /// Which load of the store this set is (1 for the first); caches of verified tokens key on
    /// it, so a key that disappears at a refresh stops validating.
    pub generation: u64,
}

impl KeySet {
    /// Keys a token may be checked against: the one with its `kid`, or, for a token without
    /// `kid`, every key of the token's algorithm.
    pub fn candidates<'a>(
        &'a self,
        kid: Option<&'a str>,
        alg: Algorithm,
    ) -> impl Iterator<Item = &'a Key> + 'a {
        self.keys.iter().filter(move |k| match kid {
            Some(kid) => k.kid.as_deref() == Some(kid),
            None => k.alg == alg,
        })
    }

    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    /// Does the set hold the key with this fingerprint (`Key::id`)?
    pub fn holds(&self, id: u64) -> bool {
        self.keys.iter().any(|k| k.id == id)
    }
}

const MAX_KEYS: usize = 64;
const MAX_DOCUMENT_BYTES: usize = 512 * 1024;

/// Parses a JWKS document, keeping only keys that are safe to verify with: RSA >= 2048 bits, EC
/// P-256/P-384, Ed25519; `use` absent or `sig`; algorithm in `allowed`. `kty: oct` (HMAC) and
/// everything else is dropped.
pub fn parse_jwks(body: &[u8], allowed: &[Algorithm]) -> Result<KeySet, String> {
    let doc: Value = serde_json::from_slice(body).map_err(|_| "key set is not JSON".to_string())?;
    let Some(list) = doc.get("keys").and_then(Value::as_array) else {
        return Err("key set has no \"keys\" array".into());
    };
    let mut keys = Vec::new();
    for jwk in list.iter().take(MAX_KEYS) {
        if let Some(k) = parse_jwk(jwk, allowed) {
            keys.push(k);
        }
    }
    Ok(KeySet {
        keys,
        generation: 0,
    })
}

fn parse_jwk(jwk: &Value, allowed: &[Algorithm]) -> Option<Key> {
    let s = |name: &str| jwk.get(name).and_then(Value::as_str);
    if let Some(u) = jwk.get("use")
        && u.as_str() != Some("sig")
    {
        return None;
    }
    let declared = match jwk.get("alg") {
        None => None,
        Some(Value::String(a)) => Some(a.as_str()),
        Some(_) => return None,
    };
    let kid = match jwk.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return None,
    };
    let (alg, key) = match s("kty")? {
        "RSA" => {
            let (n, e) = (s("n")?, s("e")?);
            let modulus = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(n.trim_end_matches('='))
                .ok()?;
            let significant = modulus.iter().skip_while(|b| **b == 0).count();
            if significant * 8 < 2048 {
                return None;
            }
            let alg = match declared {
                None => Algorithm::RS256,
                Some("RS256") => Algorithm::RS256,
                Some("RS384") => Algorithm::RS384,
                Some("RS512") => Algorithm::RS512,
                Some("PS256") => Algorithm::PS256,
                Some("PS384") => Algorithm::PS384,
                Some("PS512") => Algorithm::PS512,
                Some(_) => return None,
            };
            (alg, DecodingKey::from_rsa_components(n, e).ok()?)
        }
        "EC" => {
            let alg = match s("crv")? {
                "P-256" => Algorithm::ES256,
                "P-384" => Algorithm::ES384,
                _ => return None,
            };
            if declared.is_some_and(|d| d != format!("{alg:?}")) {
                return None;
            }
            (alg, DecodingKey::from_ec_components(s("x")?, s("y")?).ok()?)
        }
        "OKP" => {
            if s("crv")? != "Ed25519" || declared.is_some_and(|d| d != "EdDSA" && d != "Ed25519") {
                return None;
            }
            (
                Algorithm::EdDSA,
                DecodingKey::from_ed_components(s("x")?).ok()?,
            )
        }
        _ => return None,
    };
    let id = fingerprint(jwk);
    allowed.contains(&alg).then_some(Key { kid, alg, key, id })
}

/// The first 8 bytes of the SHA-256 of a key's material members.
fn fingerprint(jwk: &Value) -> u64 {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for name in ["kty", "crv", "n", "e", "x", "y"] {
        ctx.update(
            jwk.get(name)
                .and_then(Value::as_str)
                .unwrap_or("")
                .as_bytes(),
        );
        ctx.update(b"\0");
    }
    let digest = ctx.finish();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_ref()[..8]);
    u64::from_be_bytes(first)
}

/// Where keys come from.
enum Source {
    /// Keys known at startup (the development issuer). Never refetched.
    Static,
    /// An issuer's key set URL, or `None` to discover it from the issuer's metadata.
    Remote {
        issuer: String,
        jwks_uri: Mutex<Option<Url>>,
        require_https: bool,
    },
}

/// The cached key set and the fetch machinery around it.
pub struct KeyStore {
    source: Source,
    algorithms: Vec<Algorithm>,
    /// The last successfully fetched key set and when it was fetched, under one lock.
    current: RwLock<Option<(Arc<KeySet>, Instant)>>,
    /// The generation of `current`'s set (0 when none) and the time it goes stale, in nanoseconds
    /// past `epoch` (`u64::MAX`: never), copied out of the lock so that a token already verified
    /// learns the generation in force from two atomic loads. `stale_at` is stored first.
    generation: AtomicU64,
    stale_at: AtomicU64,
    epoch: Instant,
    /// When the last fetch for an unknown `kid` started (what the cooldown counts from).
    last_attempt: Mutex<Option<Instant>>,
    fetch_lock: tokio::sync::Mutex<()>,
    fetches: AtomicU64,
    client: reqwest::Client,
    ttl: Duration,
    cooldown: Duration,
    /// How long past their last successful fetch cached keys stay in force while fetches fail.
    max_stale: Duration,
}

/// Settings of a remote key store.
pub struct RemoteOptions {
    pub issuer: String,
    pub jwks_uri: Option<Url>,
    pub algorithms: Vec<Algorithm>,
    pub ttl: Duration,
    pub cooldown: Duration,
    pub timeout: Duration,
    pub require_https: bool,
    pub max_stale: Duration,
}

impl KeyStore {
    pub fn new_static(mut set: KeySet) -> Arc<KeyStore> {
        set.generation = 1;
        Arc::new(KeyStore {
            source: Source::Static,
            algorithms: Vec::new(),
            current: RwLock::new(Some((Arc::new(set), Instant::now()))),
            generation: AtomicU64::new(1),
            stale_at: AtomicU64::new(u64::MAX),
            epoch: Instant::now(),
            last_attempt: Mutex::new(None),
            fetch_lock: tokio::sync::Mutex::new(()),
            fetches: AtomicU64::new(0),
            client: reqwest::Client::new(),
            ttl: Duration::MAX,
            cooldown: Duration::MAX,
            max_stale: Duration::MAX,
        })
    }

    pub fn new_remote(o: RemoteOptions) -> Arc<KeyStore> {
        let client = crate::outbound::client(o.timeout)
            // Fetches are rare; no pooled connection outlives the runtime that made it.
            .pool_max_idle_per_host(0)
            .build()
            .expect("the HTTP client builds");
        Arc::new(KeyStore {
            source: Source::Remote {
                issuer: o.issuer,
                jwks_uri: Mutex::new(o.jwks_uri),
                require_https: o.require_https,
            },
            algorithms: o.algorithms,
            current: RwLock::new(None),
            generation: AtomicU64::new(0),
            stale_at: AtomicU64::new(0),
            epoch: Instant::now(),
            last_attempt: Mutex::new(None),
            fetch_lock: tokio::sync::Mutex::new(()),
            fetches: AtomicU64::new(0),
            client,
            ttl: o.ttl,
            cooldown: o.cooldown,
            max_stale: o.max_stale,
        })
    }

    /// A usable key is loaded and in force: `/ready` answers 200.
    pub fn is_ready(&self) -> bool {
        self.current().is_some_and(|s| !s.keys.is_empty())
    }

    /// The key set in force: the last successfully fetched one, unless it is older than
    /// `auth.jwks_max_stale_secs` (fetches have failed that long), in which case no key is.
    pub fn current(&self) -> Option<Arc<KeySet>> {
        self.loaded()
            .filter(|(_, at)| at.elapsed() <= self.max_stale)
            .map(|(set, _)| set)
    }

    /// The last successfully fetched set and its fetch time, stale or not.
    fn loaded(&self) -> Option<(Arc<KeySet>, Instant)> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The generation of the key set in force (0 when none is): what `current` says, without
    /// its lock and reference count.
    pub fn generation(&self) -> u64 {
        let generation = self.generation.load(Ordering::Acquire);
        let stale_at = self.stale_at.load(Ordering::Acquire);
        if generation == 0
            || stale_at == u64::MAX
            || self.nanos_since_epoch(Instant::now()) <= stale_at
        {
            generation
        } else {
            0
        }
    }

    fn nanos_since_epoch(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Puts `set` in force, fetched `at`.
    fn install(&self, set: Arc<KeySet>, at: Instant) {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        let stale_at = self
            .nanos_since_epoch(at)
            .saturating_add(u64::try_from(self.max_stale.as_nanos()).unwrap_or(u64::MAX));
        self.stale_at.store(stale_at, Ordering::Release);
        self.generation.store(set.generation, Ordering::Release);
        *current = Some((set, at));
    }

    /// How many key set fetches were attempted (for logs and tests).
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    fn attempted_within(&self, d: Duration) -> bool {
        self.last_attempt
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|t| t.elapsed() < d)
    }

    /// Fetches the key set now, whatever the cooldown (for `gatehouse doctor`); the error says
    /// why the fetch failed.
    pub async fn fetch_once(&self) -> Result<usize, String> {
        let _guard = self.fetch_lock.lock().await;
        self.fetch_now().await
    }

    /// The key set URL: configured, or discovered by the last fetch.
    pub fn jwks_uri(&self) -> Option<Url> {
        match &self.source {
            Source::Static => None,
            Source::Remote { jwks_uri, .. } => {
                jwks_uri.lock().unwrap_or_else(|e| e.into_inner()).clone()
            }
        }
    }

    /// A token named a `kid` we do not have: refetch, unless a fetch was attempted within the
    /// cooldown. Concurrent callers share one fetch. Returns the key set to use.
    ///
    /// Only these fetches count against the cooldown: the periodic refresh does not, so a key
    /// the issuer just published is accepted within one fetch whatever the TTL.
    pub async fn refresh_for_unknown_kid(&self) -> Option<Arc<KeySet>> {
        if matches!(self.source, Source::Static) || self.attempted_within(self.cooldown) {
            return self.current();
        }
        let _guard = self.fetch_lock.lock().await;
        // Whoever held the lock before us may just have fetched for an unknown kid.
        if !self.attempted_within(self.cooldown) {
            *self.last_attempt.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
            if let Err(e) = self.fetch_now().await {
                log::warn!("key set refetch for an unknown kid failed: {e}");
            }
        }
        self.current()
    }

    /// How long ago the key set in force was fetched.
    pub fn age(&self) -> Option<Duration> {
        self.loaded().map(|(_, at)| at.elapsed())
    }

    /// Fetches the key set now, counting the result. The caller holds `fetch_lock`.
    async fn fetch_now(&self) -> Result<usize, String> {
        // Every message names URLs without their user info or query (a credential there is
        // not for logs).
        let attributes = || vec![opentelemetry::KeyValue::new("http.request.method", "GET")];
        let fetch = crate::telemetry::traced("GET key set", attributes, self.fetch_inner(), |_| {
            "fetch_failed".to_string()
        });
        let result = fetch
            .await
            .map_err(|e| crate::text::redact_urls(&e).into_owned());
        if matches!(self.source, Source::Remote { .. }) {
            let label = if result.is_ok() { "ok" } else { "error" };
            crate::metrics::METRICS
                .jwks_fetches
                .with_label_values(&[label])
                .inc();
        }
        result
    }

    async fn fetch_inner(&self) -> Result<usize, String> {
        let Source::Remote {
            issuer,
            jwks_uri,
            require_https,
        } = &self.source
        else {
            return Ok(0);
        };
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let known = jwks_uri.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let uri = match known {
            Some(u) => u,
            None => {
                let u = self.discover(issuer, *require_https).await?;
                *jwks_uri.lock().unwrap_or_else(|e| e.into_inner()) = Some(u.clone());
                u
            }
        };
        let body = self.get(&uri, "auth.jwks_uri (OAUTH_JWKS_URI)").await?;
        // A well-formed key set is authoritative: keys missing from it stop validating now, even
        // when that leaves none. Only a failed fetch keeps the previous keys.
        let mut set = parse_jwks(&body, &self.algorithms)?;
        let n = set.keys.len();
        // The caller holds fetch_lock, so generations are handed out one at a time.
        set.generation = self.loaded().map_or(0, |(s, _)| s.generation) + 1;
        self.install(Arc::new(set), Instant::now());
        let uri = crate::text::redact_urls(uri.as_str());
        if n == 0 {
            log::error!(
                "the key set at {uri} holds no usable signature key (algorithms allowed: auth.algorithms): every token is refused and /ready answers 503 until it does"
            );
        } else {
            log::info!("loaded {n} signing key(s) from {uri}");
        }
        Ok(n)
    }

    /// GETs a document; `setting` names what to fix when the URL redirects.
    async fn get(&self, url: &Url, setting: &str) -> Result<Vec<u8>, String> {
        let mut resp = self
            .client
            .get(url.clone())
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| format!("GET {url} failed: {}", without_url(&e)))?;
        if resp.status().is_redirection() {
            return Err(format!(
                "GET {url} answered {} (a redirect): gatehouse never follows redirects for keys or metadata; set {setting} to the final https URL",
                resp.status()
            ));
        }
        if !resp.status().is_success() {
            return Err(format!("GET {url} answered {}", resp.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| format!("GET {url} failed: {}", without_url(&e)))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_DOCUMENT_BYTES {
                return Err(format!(
                    "GET {url}: document larger than {MAX_DOCUMENT_BYTES} bytes"
                ));
            }
        }
        Ok(body)
    }

    /// Finds `jwks_uri` in the issuer's OpenID or OAuth (RFC 8414) metadata.
    async fn discover(&self, issuer: &str, require_https: bool) -> Result<Url, String> {
        let (url, doc) = self.metadata(issuer).await?;
        let jwks = doc
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{url} has no jwks_uri"))?;
        let jwks = Url::parse(jwks).map_err(|_| format!("{url}: jwks_uri is not a URL"))?;
        if require_https && jwks.scheme() != "https" && !crate::config::is_loopback(&jwks) {
            return Err(format!("{url}: jwks_uri must use https"));
        }
        Ok(jwks)
    }

    /// The issuer's metadata document (for its `introspection_endpoint`), fetched now with the
    /// key set's rules. The development issuer has none.
    pub async fn metadata_document(&self) -> Result<Value, String> {
        match &self.source {
            Source::Static => Err("the development issuer has no metadata document".into()),
            Source::Remote { issuer, .. } => self
                .metadata(issuer)
                .await
                .map(|(_, doc)| doc)
                .map_err(|e| crate::text::redact_urls(&e).into_owned()),
        }
    }

    /// The first of the issuer's OpenID or OAuth (RFC 8414) metadata documents that answers,
    /// checked to name this issuer.
    async fn metadata(&self, issuer: &str) -> Result<(Url, Value), String> {
        let attributes = || vec![opentelemetry::KeyValue::new("http.request.method", "GET")];
        let read = self.read_metadata(issuer);
        crate::telemetry::traced("GET issuer metadata", attributes, read, |_| {
            "fetch_failed".to_string()
        })
        .await
    }

    async fn read_metadata(&self, issuer: &str) -> Result<(Url, Value), String> {
        let base = Url::parse(issuer).map_err(|e| e.to_string())?;
        let trimmed = issuer.trim_end_matches('/');
        let path = base.path().trim_end_matches('/');
        let origin = base.origin().ascii_serialization();
        let candidates = [
            format!("{trimmed}/.well-known/openid-configuration"),
            format!("{origin}/.well-known/oauth-authorization-server{path}"),
            format!("{origin}/.well-known/openid-configuration{path}"),
        ];
        let mut last_err = String::new();
        for c in candidates {
            let Ok(url) = Url::parse(&c) else { continue };
            match self
                .get(
                    &url,
                    "auth.issuer (OAUTH_ISSUER) or auth.jwks_uri (OAUTH_JWKS_URI)",
                )
                .await
            {
                Ok(body) => {
                    let doc: Value =
                        serde_json::from_slice(&body).map_err(|_| format!("{url} is not JSON"))?;
                    let found_issuer = doc.get("issuer").and_then(Value::as_str).unwrap_or("");
                    if found_issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
                        return Err(format!(
                            "{url} names issuer {found_issuer:?}, expected {issuer:?} (check OAUTH_ISSUER / SK_ENV_URL)"
                        ));
                    }
                    return Ok((url, doc));
                }
                Err(e) => last_err = e,
            }
        }
        Err(format!("could not read the issuer's metadata: {last_err}"))
    }

    /// Keeps the key set fresh: retries with backoff until the first load, then refreshes every
    /// TTL (keeping cached keys when a refresh fails).
    pub async fn run_refresher(self: Arc<Self>) {
        if matches!(self.source, Source::Static) {
            return;
        }
        let mut backoff = Duration::from_millis(250);
        loop {
            let loaded = {
                let _guard = self.fetch_lock.lock().await;
                let due = self.age().is_none_or(|age| age >= self.ttl);
                if due {
                    match self.fetch_now().await {
                        Ok(_) => true,
                        Err(e) if self.current().is_some() => {
                            log::warn!(
                                "key set fetch failed; the cached keys stay in force up to auth.jwks_max_stale_secs past their last fetch (will retry): {e}"
                            );
                            false
                        }
                        Err(e) => {
                            log::error!(
                                "key set fetch failed and no key is in force: protected requests get 503 (will retry): {e}"
                            );
                            false
                        }
                    }
                } else {
                    true
                }
            };
            if loaded {
                backoff = Duration::from_millis(250);
                let since = self.age().unwrap_or_default();
                tokio::time::sleep(
                    self.ttl
                        .saturating_sub(since)
                        .max(Duration::from_millis(50)),
                )
                .await;
            } else {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// A short, URL-free description of a fetch error (the URL is already in the message around it).
fn without_url(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else if e.is_body() || e.is_decode() {
        "the response body could not be read".into()
    } else {
        "request failed".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    #[test]
    fn the_generation_in_force_goes_stale_with_the_set() {
        let store = KeyStore::new_remote(RemoteOptions {
            issuer: "https://issuer.test".into(),
            jwks_uri: None,
            algorithms: vec![Algorithm::RS256],
            ttl: Duration::from_secs(60),
            cooldown: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            require_https: false,
            max_stale: Duration::from_millis(200),
        });
        assert_eq!(store.generation(), 0);
        let set = KeySet {
            keys: Vec::new(),
            generation: 7,
        };
        store.install(Arc::new(set), Instant::now());
        assert_eq!(store.generation(), 7);
        assert!(store.current().is_some());
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(store.generation(), 0);
        assert!(store.current().is_none());
        assert_eq!(KeyStore::new_static(KeySet::default()).generation(), 1);
    }

    #[test]
    fn drops_hmac_weak_rsa_and_encryption_keys() {
        let strong_n = b64(&[0xC5; 256]);
        let weak_n = b64(&[0xC5; 128]);
        let doc = json!({"keys": [
            {"kty":"oct","k":"c2VjcmV0","kid":"hmac"},
            {"kty":"RSA","n":weak_n,"e":"AQAB","kid":"weak"},
            {"kty":"RSA","n":strong_n,"e":"AQAB","kid":"enc","use":"enc"},
            {"kty":"RSA","n":strong_n,"e":"AQAB","kid":"hs","alg":"HS256"},
            {"kty":"RSA","n":strong_n,"e":"AQAB","kid":"good"},
            {"kty":"EC","crv":"secp256k1","x":"AA","y":"AA","kid":"k1"}
        ]});
        let set = parse_jwks(
            doc.to_string().as_bytes(),
            &[Algorithm::RS256, Algorithm::ES256],
        )
        .unwrap();
        let kids: Vec<_> = set.keys.iter().map(|k| k.kid.clone().unwrap()).collect();
        assert_eq!(kids, vec!["good"]);
        assert_eq!(set.keys[0].alg, Algorithm::RS256);
    }

    #[test]
    fn algorithm_outside_the_allow_list_is_dropped() {
        let doc = json!({"keys": [{"kty":"RSA","n":b64(&[0xC5; 256]),"e":"AQAB","kid":"a","alg":"RS512"}]});
        assert!(
            parse_jwks(doc.to_string().as_bytes(), &[Algorithm::RS256])
                .unwrap()
                .keys
                .is_empty()
        );
    }

    #[test]
    fn garbage_never_panics() {
        for body in [
            &b""[..],
            b"[]",
            b"{\"keys\":7}",
            b"{\"keys\":[1,null,{}]}",
            b"\xff",
        ] {
            let _ = parse_jwks(body, &[Algorithm::RS256]);
        }
    }
}
