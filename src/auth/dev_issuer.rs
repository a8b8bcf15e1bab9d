//! The built-in development issuer: an ES256 signing key kept in a git-ignored folder, its key
//! set, and token minting. It exists so the full auth path works locally with no accounts; the
//! production profile refuses it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::jwks::KeySet;

const KEY_FILE: &str = "dev-issuer-es256.pk8";

/// Path of the issuer below the public URL.
pub const ISSUER_PATH: &str = "/dev-issuer";

pub struct DevIssuer {
    pub issuer: String,
    kid: String,
    encoding: EncodingKey,
    jwk: Jwk,
}

/// Serves the issuer's key set and metadata (OpenID discovery and RFC 8414) below the public
/// URL, so clients and tools can discover it exactly as they would a real one.
pub fn routes(dev: &DevIssuer, cfg: &mut actix_web::web::ServiceConfig) {
    use actix_web::{HttpResponse, web};
    let serve = |body: String| {
        move || {
            let body = body.clone();
            async move {
                HttpResponse::Ok()
                    .content_type("application/json")
                    .insert_header(("access-control-allow-origin", "*"))
                    .body(body)
            }
        }
    };
    let meta = dev.metadata().to_string();
    cfg.route(
        &format!("{ISSUER_PATH}/keys"),
        web::get().to(serve(dev.jwks().to_string())),
    )
    .route(
        &format!("{ISSUER_PATH}/.well-known/openid-configuration"),
        web::get().to(serve(meta.clone())),
    )
    .route(
        &format!("/.well-known/oauth-authorization-server{ISSUER_PATH}"),
        web::get().to(serve(meta)),
    );
}

/// What a minted token says.
pub struct TokenRequest<'a> {
    /// The user's `sub`; ignored for a machine client's token (`client`).
    pub subject: &'a str,
    /// A machine client's token (client credentials, as Scalekit's M2M tokens): `client_id`
    /// set to this, and no `sub`.
    pub client: Option<&'a str>,
    pub scopes: &'a [String],
    pub organization: Option<&'a str>,
    pub audience: &'a [String],
    pub ttl: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum DevIssuerError {
    #[error("development issuer key {path}: {problem}")]
    Key { path: PathBuf, problem: String },
}

impl DevIssuer {
    /// Loads the signing key from `dir`, creating it (mode 0600) on first use.
    pub fn load_or_create(dir: &Path, issuer: String) -> Result<DevIssuer, DevIssuerError> {
        let path = dir.join(KEY_FILE);
        let err = |problem: String| DevIssuerError::Key {
            path: path.clone(),
            problem,
        };
        let der = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let doc = EcdsaKeyPair::generate_pkcs8(
                    &ECDSA_P256_SHA256_FIXED_SIGNING,
                    &SystemRandom::new(),
                )
                .map_err(|_| err("key generation failed".into()))?;
                std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
                let _ = std::fs::write(dir.join(".gitignore"), "*\n");
                publish_private(&path, doc.as_ref()).map_err(|e| err(e.to_string()))?;
                // Another process may have published its key first: the file is the key.
                std::fs::read(&path).map_err(|e| err(e.to_string()))?
            }
            Err(e) => return Err(err(e.to_string())),
        };
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der)
            .map_err(|_| err("not a P-256 PKCS#8 key; delete it to make a new one".into()))?;
        let encoding = EncodingKey::from_ec_der(&der);
        let mut jwk =
            Jwk::from_encoding_key(&encoding, Algorithm::ES256).map_err(|e| err(e.to_string()))?;
        let kid = jwk.thumbprint(ThumbprintHash::SHA256);
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Signature);
        Ok(DevIssuer {
            issuer,
            kid,
            encoding,
            jwk,
        })
    }

    /// The public key set document.
    pub fn jwks(&self) -> Value {
        json!({"keys": [self.jwk]})
    }

    /// The key set the validator trusts.
    pub fn key_set(&self) -> KeySet {
        let doc = self.jwks().to_string();
        super::jwks::parse_jwks(doc.as_bytes(), &[Algorithm::ES256]).unwrap_or_default()
    }

    /// Authorization server metadata (RFC 8414 subset) for the development issuer.
    pub fn metadata(&self) -> Value {
        json!({
            "issuer": self.issuer,
            "jwks_uri": format!("{}/keys", self.issuer),
            "response_types_supported": [],
            "grant_types_supported": [],
            "token_endpoint_auth_methods_supported": ["none"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "subject_types_supported": ["public"],
        })
    }

    pub fn mint(&self, r: &TokenRequest<'_>) -> String {
        let now = jsonwebtoken::get_current_timestamp();
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        header.typ = Some("at+jwt".into());
        let mut claims = json!({
            "iss": self.issuer,
            "sub": r.subject,
            "aud": r.audience,
            "iat": now,
            "nbf": now,
            "exp": now + r.ttl.as_secs().max(1),
            "client_id": "gatehouse-dev",
            "jti": format!("dev-{now}-{}", std::process::id()),
            "scopes": r.scopes,
            "scope": r.scopes.join(" "),
        });
        if let Some(o) = r.organization {
            claims["oid"] = json!(o);
        }
        if let (Some(client), Some(c)) = (r.client, claims.as_object_mut()) {
            c.remove("sub");
            c.insert("client_id".into(), json!(client));
        }
        jsonwebtoken::encode(&header, &claims, &self.encoding).expect("ES256 signing works")
    }
}

/// Writes `bytes` (owner-only) to a file of its own beside `path`, then links it in place
/// only if `path` does not exist yet: processes starting at once never read a half-written
/// key, and the first to publish wins (the others read its key).
fn publish_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut suffix = [0u8; 8];
    let _ = aws_lc_rs::rand::fill(&mut suffix);
    let tmp = path.with_extension(format!(
        "tmp-{}-{}",
        std::process::id(),
        suffix
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    ));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let written = opts.open(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    let linked = written.and_then(|()| match std::fs::hard_link(&tmp, path) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    });
    let _ = std::fs::remove_file(&tmp);
    linked
}

/// Parses `30s`, `15m`, `1h`, `2d` or plain seconds.
pub fn parse_ttl(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: u64 = num.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86400)?,
        _ => return None,
    };
    (secs > 0 && secs <= 30 * 86400).then(|| Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_starting_at_once_share_one_key() {
        let dir = std::env::temp_dir().join(format!(
            "gatehouse-dev-key-race-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        let kids: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        DevIssuer::load_or_create(&dir, "http://i".into())
                            .unwrap()
                            .kid
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(kids.windows(2).all(|w| w[0] == w[1]), "{kids:?}");
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.contains("tmp"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn ttl_forms() {
        assert_eq!(parse_ttl("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_ttl("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_ttl("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_ttl("0s"), None);
        assert_eq!(parse_ttl("1y"), None);
        assert_eq!(parse_ttl("h"), None);
    }

    #[test]
    fn key_is_created_once_and_reused() {
        let dir = std::env::temp_dir().join(format!("gatehouse-dev-{}", std::process::id()));
        let a = DevIssuer::load_or_create(&dir, "http://localhost/dev-issuer".into()).unwrap();
        let b = DevIssuer::load_or_create(&dir, "http://localhost/dev-issuer".into()).unwrap();
        assert_eq!(a.kid, b.kid);
        assert_eq!(a.key_set().keys.len(), 1);
        let _ = std::fs::remove_dir_all(dir);
    }
}
