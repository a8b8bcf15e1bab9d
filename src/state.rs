//! The application's state, built once from validated settings: `AppState` (auth, gate,
//! budgets, metadata, dispatcher), the public URLs, and the builders it shares with the doctor
//! (`key_store`, `validator`, `shared_store`, `state_seal`), so the doctor checks exactly what
//! the server would run. `routes::app` serves it; `startup` builds and runs it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use url::Url;

use crate::asking::seal::Seal;
use crate::auth::challenge::ChallengeContext;
use crate::auth::dev_issuer::{self, DevIssuer};
use crate::auth::dpop::{Dpop, DpopOptions};
use crate::auth::gate::{AuthMode, AuthState, Gate};
use crate::auth::introspection::{Introspector, IntrospectorOptions};
use crate::auth::jwks::{KeyStore, RemoteOptions};
use crate::auth::metadata::{self, DocumentInput, Metadata};
use crate::auth::validator::{TokenValidator, ValidatorOptions};
use crate::auth::verifier::{TrustedCheck, Verifier};
use crate::budget::{self, Budgets};
use crate::config::{
    CorsSettings, DpopMode, Introspection, IssuerSetting, Profile, Settings, base_str,
};
use crate::edge::GuardSettings;
use crate::mcp::{Server, ServerParts};
use crate::registry::{Registry, RegistryError};
use crate::shared_store::SharedStore;
use crate::transport::Limits;
use jsonwebtoken::Algorithm;

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
    // At the root, the resource is the origin itself, without a trailing slash (the form MCP
    // clients and RFC 9728 use for a resource without a path).
    let resource = match settings.mcp.path.as_str() {
        "/" => base.clone(),
        path => format!("{base}{path}"),
    };
    let resource_url = Url::parse(&resource)
        .map_err(|e| StartupError::Config(format!("resource URL {resource}: {e}")))?;
    let issuer = match &settings.auth.issuer {
        IssuerSetting::Development => format!("{base}{}", dev_issuer::ISSUER_PATH),
        IssuerSetting::Remote { issuer, .. } => issuer.clone(),
        IssuerSetting::Listed => settings.auth.trusted[0].issuer.clone(),
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

/// Every trusted issuer's key store, and the development issuer when it is the one.
pub type KeyStores = (Vec<Arc<KeyStore>>, Option<Arc<DevIssuer>>);

/// The key stores the server uses (and `gatehouse doctor` checks), one per trusted issuer in
/// `auth.trusted` order (not fetched yet); the development issuer's alone when none is named.
pub fn key_stores(settings: &Settings, urls: &PublicUrls) -> Result<KeyStores, StartupError> {
    let a = &settings.auth;
    if a.issuer == IssuerSetting::Development {
        if settings.profile == Profile::Production {
            return Err(StartupError::Config(
                "the development issuer cannot run in the production profile".into(),
            ));
        }
        let dev = Arc::new(DevIssuer::load_or_create(
            &a.dev_key_dir,
            urls.issuer.clone(),
        )?);
        return Ok((vec![KeyStore::new_static(dev.key_set())], Some(dev)));
    }
    let stores = a
        .trusted
        .iter()
        .map(|t| {
            KeyStore::new_remote(RemoteOptions {
                issuer: t.issuer.clone(),
                jwks_uri: t.jwks_uri.clone(),
                algorithms: t.algorithms.clone(),
                ttl: a.jwks_ttl,
                cooldown: a.jwks_cooldown,
                timeout: a.jwks_fetch_timeout,
                require_https: settings.profile == Profile::Production,
                max_stale: a.jwks_max_stale,
            })
        })
        .collect();
    Ok((stores, None))
}

/// The token check the server uses (and `gatehouse doctor --token` runs): one validator per
/// key store from [`key_stores`], each with its issuer's audiences, algorithms and
/// introspection endpoint.
pub fn verifier(settings: &Settings, urls: &PublicUrls, stores: &[Arc<KeyStore>]) -> Verifier {
    let a = &settings.auth;
    let validator = |issuer: &str, audiences: &[String], algorithms: &[Algorithm], keys| {
        TokenValidator::new(ValidatorOptions {
            issuer: issuer.to_string(),
            audiences: if audiences.is_empty() {
                urls.audiences.clone()
            } else {
                audiences.to_vec()
            },
            algorithms: algorithms.to_vec(),
            leeway: a.leeway_secs,
            require_at_jwt_typ: a.require_at_jwt_typ,
            keys,
            max_lifetime: a.max_token_lifetime_secs,
            scope_implies: a.scope_implies.clone(),
            subject_claims: a.subject_claims.clone(),
        })
    };
    let checks = if a.issuer == IssuerSetting::Development {
        vec![TrustedCheck {
            validator: validator(&urls.issuer, &[], &a.algorithms, stores[0].clone()),
            introspector: None,
        }]
    } else {
        a.trusted
            .iter()
            .zip(stores)
            .map(|(t, keys)| TrustedCheck {
                validator: validator(&t.issuer, &t.audiences, &t.algorithms, keys.clone()),
                introspector: match (&t.client, a.introspection) {
                    (Some(client), Introspection::Opaque | Introspection::Always) => {
                        Some(Introspector::new(IntrospectorOptions {
                            issuer: t.issuer.clone(),
                            endpoint: t.introspection_endpoint.clone(),
                            keys: keys.clone(),
                            client: client.clone(),
                            timeout: a.jwks_fetch_timeout,
                            require_https: settings.profile == Profile::Production,
                            cache_secs: a.introspection_cache_secs,
                            negative_cache_secs: a.introspection_negative_cache_secs,
                        }))
                    }
                    _ => None,
                },
            })
            .collect()
    };
    Verifier::new(checks, a.introspection)
}

/// The DPoP policy (`auth.dpop*`): proofs must name the public MCP endpoint URL; their `jti`s
/// are remembered in the shared store when there is one. Server nonces derive from
/// `mcp.state_key` when it is set (so every instance accepts every instance's nonce), else from
/// a key of this process.
fn dpop(
    settings: &Settings,
    urls: &PublicUrls,
    shared: Option<Arc<budget::Shared>>,
) -> Result<Dpop, StartupError> {
    let a = &settings.auth;
    let htu = Url::parse(&urls.resource)
        .map_err(|e| StartupError::Config(format!("resource URL {}: {e}", urls.resource)))?;
    let nonce = a.dpop_nonce.then(|| match &settings.mcp.state_key {
        Some(key) => key.expose().as_bytes().to_vec(),
        None => {
            let mut b = vec![0u8; 32];
            aws_lc_rs::rand::fill(&mut b).expect("the system random source works");
            b
        }
    });
    Ok(Dpop::new(DpopOptions {
        mode: a.dpop,
        algorithms: a.dpop_algorithms.clone(),
        max_age: a.dpop_max_age_secs,
        leeway: a.leeway_secs.min(5),
        htu,
        nonce,
        shared,
    }))
}

/// Everything the routes share, built once and cloned (cheaply: `Arc`s) into every worker.
#[derive(Clone)]
pub struct AppState {
    pub mcp: web::Data<Server>,
    /// One key store per trusted issuer.
    pub keys: Vec<Arc<KeyStore>>,
    pub dev_issuer: Option<Arc<DevIssuer>>,
    pub(crate) auth: web::Data<AuthState>,
    pub(crate) limits: web::Data<Limits>,
    pub(crate) metadata: web::Data<Metadata>,
    pub(crate) guard: web::Data<GuardSettings>,
    /// Every budget, shared by the gate, the transport and the dispatcher.
    pub(crate) budgets: web::Data<Budgets>,
    pub(crate) gate: web::Data<Gate>,
    pub(crate) store: web::Data<StoreState>,
    pub(crate) prm_paths: Vec<String>,
    pub(crate) mcp_path: String,
    pub(crate) cors: CorsSettings,
}

/// The shared store, if any, for `/ready`.
pub(crate) struct StoreState(pub(crate) Option<Arc<budget::Shared>>);

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
        let (keys, dev_issuer) = key_stores(settings, urls)?;
        let mode = if a.enabled {
            AuthMode::On(verifier(settings, urls, &keys))
        } else {
            log::warn!(
                "auth is OFF (auth.enabled = false): every caller is anonymous with every scope; never expose this server"
            );
            AuthMode::Off
        };
        let shared = shared_store(settings)?;
        let dpop = dpop(settings, urls, shared.clone())?;
        let mut challenge = ChallengeContext::new(urls.metadata_url.clone(), &a.base_scopes);
        if a.dpop != DpopMode::Off {
            challenge = challenge.with_dpop(dpop.algs());
        }
        let auth = web::Data::new(AuthState {
            mode,
            challenge: Arc::new(challenge),
            dpop,
        });

        let metadata = web::Data::new(metadata_document(settings, urls, &registry));

        let budgets = Arc::new(Budgets::new(&settings.rate_limit, shared.clone()));
        let mcp = web::Data::new(Server::new(
            registry,
            ServerParts {
                settings: settings.mcp.clone(),
                filter_tools_by_scope: a.filter_tools_by_scope,
                budgets: budgets.clone(),
                shared: shared.clone(),
                seal,
                instance_id: settings.server.instance_id.clone(),
            },
        ));
        if let Some(s) = &shared {
            s.store
                .relay(&mcp.changes, settings.server.instance_id.clone());
        }
        let gate = web::Data::new(Gate {
            auth: auth.clone(),
            trusted_proxy: settings.security.trusted_proxy,
            budgets: budgets.clone(),
        });

        let prm_paths = metadata_paths(settings, urls);
        let limits = web::Data::new(Limits {
            max_body_bytes: settings.server.max_body_bytes,
            body_timeout: settings.server.body_timeout,
            max_json_depth: settings.server.max_json_depth,
            challenge: auth.challenge.clone(),
        });
        Ok(AppState {
            keys,
            dev_issuer,
            auth,
            limits,
            metadata,
            guard: web::Data::new(GuardSettings {
                allowed_hosts: settings.security.allowed_hosts.clone(),
                allowed_origins: settings.cors.allowed_origins.clone(),
                max_header_bytes: settings.server.max_header_bytes,
                trusted_proxy: settings.security.trusted_proxy,
            }),
            gate,
            store: web::Data::new(StoreState(shared.clone())),
            budgets: web::Data::from(budgets),
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
        for keys in &self.keys {
            tokio::spawn(keys.clone().run_refresher());
        }
        let budgets = self.budgets.clone();
        let mcp = self.mcp.clone();
        let auth = self.auth.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                budgets.purge_idle();
                mcp.purge_idle();
                auth.dpop.purge();
                crate::allocator::release_free_heap();
            }
        });
    }
}

/// The protected resource metadata document (RFC 9728), written once: the configured one, or
/// one built from the resource, the issuer and every scope a registration or setting names.
fn metadata_document(settings: &Settings, urls: &PublicUrls, registry: &Registry) -> Metadata {
    let a = &settings.auth;
    let mut scopes: BTreeSet<String> = registry.declared_scopes();
    scopes.extend(a.extra_scopes.iter().cloned());
    scopes.extend(a.base_scopes.iter().cloned());
    let doc = match &a.protected_resource_metadata {
        Some(m) => serde_json::Value::Object(m.clone()),
        None => metadata::build_document(DocumentInput {
            resource: &urls.resource,
            authorization_servers: authorization_servers(settings, urls),
            scopes: scopes.into_iter().collect(),
            resource_name: &a.resource_name,
            resource_documentation: a.resource_documentation.as_deref(),
            dpop: (a.dpop != DpopMode::Off).then(|| {
                let algs = a.dpop_algorithms.iter().map(|a| format!("{a:?}")).collect();
                (algs, a.dpop == DpopMode::Required)
            }),
        }),
    };
    Metadata {
        body: doc.to_string(),
    }
}

/// Every authorization server a client may use, in order: the single issuer (or the server
/// configured to stand for it, `auth.authorization_server`), then every other trusted issuer.
fn authorization_servers(settings: &Settings, urls: &PublicUrls) -> Vec<String> {
    let a = &settings.auth;
    let mut out = vec![
        a.authorization_server
            .clone()
            .unwrap_or_else(|| urls.issuer.clone()),
    ];
    for t in a.trusted.iter().skip(1) {
        if !out.contains(&t.issuer) {
            out.push(t.issuer.clone());
        }
    }
    out
}

/// The paths the metadata document is served at. RFC 9728 section 3.1: the document of a
/// resource with a path is at the well-known path followed by it; a resource at the root has
/// the well-known path alone.
fn metadata_paths(settings: &Settings, urls: &PublicUrls) -> Vec<String> {
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
    prm_paths
}

/// The shared store (REDIS_URL), connected lazily: one that is down at startup is reported, and
/// the budgets fall back until it answers.
pub fn shared_store(settings: &Settings) -> Result<Option<Arc<budget::Shared>>, StartupError> {
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
pub fn state_seal(settings: &Settings, registry: &Registry) -> Result<Seal, StartupError> {
    use base64::Engine;
    let decode = |s: &crate::config::Secret| {
        base64::engine::general_purpose::STANDARD
            .decode(s.expose())
            .expect("validated base64")
    };
    let m = &settings.mcp;
    match (&m.state_key, registry.first_asker()) {
        (Some(key), _) => {
            let current = decode(key);
            let previous = m.state_key_previous.as_ref().map(decode);
            for warning in state_key_warnings(&current, previous.as_deref()) {
                log::warn!("{warning}");
            }
            Ok(Seal::new(&current, previous.as_deref()))
        }
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

/// What is wrong with configured `requestState` keys that still lets them work: a previous
/// key equal to the current one (a rotation that rotated nothing), or key material made of one
/// repeated byte (a placeholder, not a secret). The messages name the settings, never the keys.
pub fn state_key_warnings(current: &[u8], previous: Option<&[u8]>) -> Vec<String> {
    let uniform = |k: &[u8]| k.windows(2).all(|w| w[0] == w[1]);
    let mut warnings = Vec::new();
    if uniform(current) {
        warnings.push(
            "MCP_STATE_KEY (mcp.state_key) is one byte repeated: it is a placeholder, not a secret; generate one with `openssl rand -base64 32`".to_string(),
        );
    }
    if let Some(previous) = previous {
        if previous == current {
            warnings.push(
                "MCP_STATE_KEY_PREVIOUS (mcp.state_key_previous) equals MCP_STATE_KEY: a rotation keeps the old key there and a new one in MCP_STATE_KEY; remove it or set the old key".to_string(),
            );
        } else if uniform(previous) {
            warnings.push(
                "MCP_STATE_KEY_PREVIOUS (mcp.state_key_previous) is one byte repeated: it is a placeholder, not a secret; remove it".to_string(),
            );
        }
    }
    warnings
}
