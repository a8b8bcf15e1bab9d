//! Sealed client-held state: bytes a client must carry back unchanged (the 2026-07-28
//! `requestState`), encrypted and authenticated with AES-256-GCM under a key from configuration
//! (`MCP_STATE_KEY`), so any instance holding the key can open what another sealed, and no
//! client can read or alter it. A previous key (`MCP_STATE_KEY_PREVIOUS`) still opens, so keys
//! can be rotated without breaking exchanges in flight.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Binds the ciphertext to its purpose, so a key shared with other uses cannot be confused.
const CONTEXT: &[u8] = b"gatehouse requestState v1";
/// Format version, the first byte of every sealed value.
const VERSION: u8 = 1;

pub struct Seal {
    current: LessSafeKey,
    previous: Option<LessSafeKey>,
}

/// A 256-bit AEAD key derived from configured key material (at least 32 bytes).
fn derive(material: &[u8]) -> LessSafeKey {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(CONTEXT);
    ctx.update(material);
    let digest = ctx.finish();
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, digest.as_ref()).expect("32-byte key"))
}

impl Seal {
    pub fn new(current: &[u8], previous: Option<&[u8]>) -> Seal {
        Seal {
            current: derive(current),
            previous: previous.map(derive),
        }
    }

    /// A seal under a fresh random key (development, or a server none of whose handlers asks).
    pub fn random() -> Seal {
        let mut key = [0u8; 32];
        aws_lc_rs::rand::fill(&mut key).expect("the system random source works");
        Seal::new(&key, None)
    }

    /// Encrypts and authenticates `plain`; the result is URL-safe text.
    pub fn seal(&self, plain: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).expect("the system random source works");
        let mut data = plain.to_vec();
        self.current
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(CONTEXT),
                &mut data,
            )
            .expect("sealing cannot fail for in-memory data");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + data.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&data);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// The bytes a `seal` produced, under the current or the previous key; `None` for anything
    /// else (altered, truncated, another key, not ours at all).
    pub fn open(&self, sealed: &str) -> Option<Vec<u8>> {
        let raw = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        let (&version, rest) = raw.split_first()?;
        if version != VERSION || rest.len() < NONCE_LEN {
            return None;
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
        for key in std::iter::once(&self.current).chain(&self.previous) {
            let mut data = body.to_vec();
            if let Ok(plain) = key.open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(CONTEXT),
                &mut data,
            ) {
                return Some(plain.to_vec());
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_unchanged_and_under_our_keys() {
        let seal = Seal::new(&[7u8; 32], None);
        let sealed = seal.seal(b"hello");
        assert_eq!(seal.open(&sealed).as_deref(), Some(&b"hello"[..]));
        assert_ne!(seal.seal(b"hello"), sealed, "a fresh nonce each time");
        // Any altered character fails.
        let mut chars: Vec<char> = sealed.chars().collect();
        let i = chars.len() / 2;
        chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
        assert!(seal.open(&chars.into_iter().collect::<String>()).is_none());
        assert!(seal.open("").is_none());
        assert!(seal.open("not base64 !").is_none());
        assert!(Seal::new(&[8u8; 32], None).open(&sealed).is_none());
        // Rotation: the previous key still opens.
        let rotated = Seal::new(&[8u8; 32], Some(&[7u8; 32]));
        assert_eq!(rotated.open(&sealed).as_deref(), Some(&b"hello"[..]));
    }
}
