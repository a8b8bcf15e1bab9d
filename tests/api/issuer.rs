//! A local OAuth issuer for the tests: real RSA and EC test keys, a JWKS and discovery document
//! served over real HTTP, fetch counters, outage and rotation switches, and a signer that can
//! emit any header and payload (for hostile tokens).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use actix_web::{App, HttpResponse, HttpServer, web};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A signing key with its public JWK.
pub enum TestKey {
    Rsa {
        kid: String,
        pair: Arc<RsaKeyPair>,
    },
    Ec {
        kid: String,
        pair: Arc<EcdsaKeyPair>,
    },
}

fn rsa_pair(slot: usize) -> Arc<RsaKeyPair> {
    // RSA key generation is slow: three keys per test binary, shared.
    static KEYS: OnceLock<Vec<Arc<RsaKeyPair>>> = OnceLock::new();
    KEYS.get_or_init(|| {
        (0..3)
            .map(|_| {
                let kp = aws_lc_rs::rsa::KeyPair::generate(KeySize::Rsa2048).unwrap();
                let der = kp.as_der().unwrap();
                Arc::new(RsaKeyPair::from_pkcs8(der.as_ref()).unwrap())
            })
            .collect()
    })[slot]
        .clone()
}

impl TestKey {
    /// RSA-2048 key number `slot` (0..3) under `kid`.
    pub fn rsa(kid: &str, slot: usize) -> TestKey {
        TestKey::Rsa {
            kid: kid.into(),
            pair: rsa_pair(slot),
        }
    }

    pub fn ec(kid: &str) -> TestKey {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        TestKey::Ec {
            kid: kid.into(),
            pair: Arc::new(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref()).unwrap(),
            ),
        }
    }

    pub fn kid(&self) -> &str {
        match self {
            TestKey::Rsa { kid, .. } | TestKey::Ec { kid, .. } => kid,
        }
    }

    pub fn alg(&self) -> &'static str {
        match self {
            TestKey::Rsa { .. } => "RS256",
            TestKey::Ec { .. } => "ES256",
        }
    }

    pub fn jwk(&self) -> Value {
        match self {
            TestKey::Rsa { kid, pair } => {
                let c = aws_lc_rs::signature::RsaPublicKeyComponents::<Vec<u8>>::from(
                    pair.public_key(),
                );
                json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64(&c.n), "e": b64(&c.e)})
            }
            TestKey::Ec { kid, pair } => {
                let p = pair.public_key().as_ref();
                json!({"kty": "EC", "kid": kid, "use": "sig", "crv": "P-256", "x": b64(&p[1..33]), "y": b64(&p[33..65])})
            }
        }
    }

    /// The public key bytes (what a key-confusion attacker would use as an HMAC secret).
    pub fn public_der(&self) -> Vec<u8> {
        match self {
            TestKey::Rsa { pair, .. } => pair.public_key().as_ref().to_vec(),
            TestKey::Ec { pair, .. } => pair.public_key().as_ref().to_vec(),
        }
    }

    /// Signs `header.payload` exactly as given.
    pub fn sign_raw(&self, header: &Value, payload: &Value) -> String {
        self.sign_text(&header.to_string(), &payload.to_string())
    }

    /// Signs header and payload JSON texts byte for byte (for shapes a `Value` cannot hold,
    /// such as a repeated member name).
    pub fn sign_text(&self, header: &str, payload: &str) -> String {
        let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
        let rng = SystemRandom::new();
        let sig = match self {
            TestKey::Rsa { pair, .. } => {
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut sig)
                    .unwrap();
                sig
            }
            TestKey::Ec { pair, .. } => {
                pair.sign(&rng, input.as_bytes()).unwrap().as_ref().to_vec()
            }
        };
        format!("{input}.{}", b64(&sig))
    }

    /// A standard header for this key.
    pub fn header(&self) -> Value {
        json!({"alg": self.alg(), "typ": "at+jwt", "kid": self.kid()})
    }

    pub fn sign(&self, payload: &Value) -> String {
        self.sign_raw(&self.header(), payload)
    }
}

/// HS256 over `header.payload` with `secret` (for key-confusion attacks).
pub fn hs256(header: &Value, payload: &Value, secret: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(payload.to_string().as_bytes())
    );
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", b64(tag.as_ref()))
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

struct IssuerState {
    jwks: Mutex<Value>,
    down: AtomicBool,
    /// Milliseconds the key set answer waits before it is sent.
    delay_ms: AtomicUsize,
    key_fetches: AtomicUsize,
    discovery_fetches: AtomicUsize,
    attacker_hits: AtomicUsize,
    /// Introspection (RFC 7662): the answer per token (default inactive), calls counted.
    answers: Mutex<std::collections::HashMap<String, Value>>,
    introspections: AtomicUsize,
    url: String,
}

/// The client credentials the test issuer's introspection endpoint accepts.
pub const INTROSPECTION_CLIENT: (&str, &str) = ("gatehouse-rs", "s3cr=t:&");

/// A running issuer.
pub struct TestIssuer {
    pub url: String,
    state: Arc<IssuerState>,
    _handle: actix_web::dev::ServerHandle,
}

impl TestIssuer {
    /// Starts an issuer serving `keys` at `/keys`, with discovery at the usual well-known paths.
    pub async fn start(keys: &[&TestKey]) -> TestIssuer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let state = Arc::new(IssuerState {
            jwks: Mutex::new(json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()})),
            down: AtomicBool::new(false),
            delay_ms: AtomicUsize::new(0),
            key_fetches: AtomicUsize::new(0),
            discovery_fetches: AtomicUsize::new(0),
            attacker_hits: AtomicUsize::new(0),
            answers: Mutex::new(Default::default()),
            introspections: AtomicUsize::new(0),
            url: url.clone(),
        });
        let data = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/keys", web::get().to(keys_handler))
                .route("/introspect", web::post().to(introspect))
                // An OTLP/HTTP sink (the benchmark's collector): takes spans, keeps none.
                .route(
                    "/v1/traces",
                    web::post().to(|| async {
                        HttpResponse::Ok()
                            .content_type("application/x-protobuf")
                            .finish()
                    }),
                )
                // Redirects: to the same issuer's keys, and to a path counted as an attack.
                .route("/moved-keys", web::get().to(moved_keys))
                .route("/moved-away", web::get().to(moved_away))
                // Discovery under an issuer path that redirects to the real document.
                .route(
                    "/redirecting/.well-known/openid-configuration",
                    web::get().to(moved_discovery),
                )
                .route(
                    "/.well-known/openid-configuration",
                    web::get().to(discovery),
                )
                .route(
                    "/.well-known/oauth-authorization-server",
                    web::get().to(discovery),
                )
                .default_service(web::to(attacker))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        TestIssuer {
            url,
            state,
            _handle: handle,
        }
    }

    pub fn set_keys(&self, keys: &[&TestKey]) {
        *self.state.jwks.lock().unwrap() =
            json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()});
    }

    pub fn set_jwks(&self, doc: Value) {
        *self.state.jwks.lock().unwrap() = doc;
    }

    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    /// Makes the key set answer wait this long (a slow issuer).
    pub fn set_delay(&self, delay: std::time::Duration) {
        self.state
            .delay_ms
            .store(delay.as_millis() as usize, Ordering::SeqCst);
    }

    pub fn key_fetches(&self) -> usize {
        self.state.key_fetches.load(Ordering::SeqCst)
    }

    pub fn discovery_fetches(&self) -> usize {
        self.state.discovery_fetches.load(Ordering::SeqCst)
    }

    /// What the introspection endpoint answers for `token`.
    pub fn set_answer(&self, token: &str, answer: Value) {
        self.state
            .answers
            .lock()
            .unwrap()
            .insert(token.to_string(), answer);
    }

    /// Calls that reached the introspection endpoint.
    pub fn introspections(&self) -> usize {
        self.state.introspections.load(Ordering::SeqCst)
    }

    /// Requests to any other path (jku/x5u targets and the like).
    pub fn attacker_hits(&self) -> usize {
        self.state.attacker_hits.load(Ordering::SeqCst)
    }
}

async fn keys_handler(s: web::Data<IssuerState>) -> HttpResponse {
    s.key_fetches.fetch_add(1, Ordering::SeqCst);
    let delay = s.delay_ms.load(Ordering::SeqCst) as u64;
    if delay > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    }
    if s.down.load(Ordering::SeqCst) {
        return HttpResponse::ServiceUnavailable().finish();
    }
    HttpResponse::Ok().json(s.jwks.lock().unwrap().clone())
}

async fn moved_keys(s: web::Data<IssuerState>) -> HttpResponse {
    HttpResponse::Found()
        .insert_header(("location", format!("{}/keys", s.url)))
        .finish()
}

async fn moved_discovery(s: web::Data<IssuerState>) -> HttpResponse {
    HttpResponse::Found()
        .insert_header((
            "location",
            format!("{}/.well-known/openid-configuration", s.url),
        ))
        .finish()
}

async fn moved_away(s: web::Data<IssuerState>) -> HttpResponse {
    HttpResponse::Found()
        .insert_header(("location", format!("{}/elsewhere/keys", s.url)))
        .finish()
}

async fn discovery(s: web::Data<IssuerState>) -> HttpResponse {
    s.discovery_fetches.fetch_add(1, Ordering::SeqCst);
    if s.down.load(Ordering::SeqCst) {
        return HttpResponse::ServiceUnavailable().finish();
    }
    HttpResponse::Ok().json(json!({
        "issuer": s.url,
        "jwks_uri": format!("{}/keys", s.url),
        "introspection_endpoint": format!("{}/introspect", s.url),
    }))
}

/// RFC 7662 section 2: client_secret_basic (id and secret form-encoded, then Basic), a form
/// body with `token`; the answer set for the token, else inactive. Honors the delay and down
/// switches.
async fn introspect(
    s: web::Data<IssuerState>,
    req: actix_web::HttpRequest,
    form: web::Form<std::collections::HashMap<String, String>>,
) -> HttpResponse {
    s.introspections.fetch_add(1, Ordering::SeqCst);
    let delay = s.delay_ms.load(Ordering::SeqCst) as u64;
    if delay > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    }
    if s.down.load(Ordering::SeqCst) {
        return HttpResponse::ServiceUnavailable().finish();
    }
    let enc = |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    let (id, secret) = INTROSPECTION_CLIENT;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    );
    let presented = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    if presented != Some(expected.as_str()) {
        return HttpResponse::Unauthorized().json(json!({"error": "invalid_client"}));
    }
    let token = form.get("token").cloned().unwrap_or_default();
    let answer = s.answers.lock().unwrap().get(&token).cloned();
    HttpResponse::Ok().json(answer.unwrap_or_else(|| json!({"active": false})))
}

async fn attacker(s: web::Data<IssuerState>) -> HttpResponse {
    s.attacker_hits.fetch_add(1, Ordering::SeqCst);
    HttpResponse::Ok().json(json!({"keys": []}))
}
