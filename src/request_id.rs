//! The request id (`X-Request-Id`): made here or taken from the caller by the request log,
//! and quoted by the access line, the audit line and a 500's body. Plain text, no HTTP type,
//! so the dispatcher can carry it; clones count a reference.

use bytes::Bytes;

/// A request id: visible ASCII by construction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(Bytes);

impl RequestId {
    pub const fn from_static(id: &'static str) -> RequestId {
        RequestId(Bytes::from_static(id.as_bytes()))
    }

    /// A caller's id, when it is 1 to 128 visible ASCII characters. Copied: a slice of the
    /// connection's read buffer would keep it alive for as long as a stream the request opens
    /// runs.
    pub fn from_caller(id: &[u8]) -> Option<RequestId> {
        let ok = !id.is_empty() && id.len() <= 128 && id.iter().all(|b| (0x21..=0x7e).contains(b));
        ok.then(|| RequestId(Bytes::copy_from_slice(id)))
    }

    /// A fresh request id: 24 hex digits, unique within the process (a counter through a bijective
    /// mix) and across instances (a random per-process seed). Ids are labels for logs and support,
    /// not secrets, so one random draw per process is enough.
    pub fn fresh() -> RequestId {
        use std::sync::OnceLock;
        use std::sync::atomic::{AtomicU64, Ordering};
        static SEED: OnceLock<u64> = OnceLock::new();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let seed = *SEED.get_or_init(|| {
            let mut bytes = [0u8; 8];
            if aws_lc_rs::rand::fill(&mut bytes).is_err() {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_nanos();
                return nanos as u64 ^ u64::from(std::process::id()) << 32;
            }
            u64::from_le_bytes(bytes)
        });
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let a = splitmix64(seed ^ n);
        let b = splitmix64(a ^ seed.rotate_left(32));
        // 24 hex digits: `a`, then the high half of `b`; two digits per byte.
        let mut id = [0u8; 24];
        let bytes = ((a as u128) << 32 | u128::from(b >> 32)).to_be_bytes();
        for (pair, byte) in id.chunks_exact_mut(2).zip(&bytes[4..]) {
            pair[0] = b"0123456789abcdef"[usize::from(byte >> 4)];
            pair[1] = b"0123456789abcdef"[usize::from(byte & 0xf)];
        }
        RequestId(Bytes::from_owner(id))
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("-")
    }

    /// The id's bytes, shared (for the response header).
    pub fn bytes(&self) -> Bytes {
        self.0.clone()
    }
}

/// SplitMix64's finalizer: a bijection on u64 that scatters consecutive inputs.
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_request_ids_are_24_hex_digits_and_distinct() {
        let ids: std::collections::HashSet<String> = (0..1000)
            .map(|_| RequestId::fresh().as_str().to_string())
            .collect();
        assert_eq!(ids.len(), 1000);
        for id in &ids {
            assert_eq!(id.len(), 24, "{id}");
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
        }
    }
}
