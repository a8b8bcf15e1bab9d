//! Unkeyed hashers for the maps on the request path whose keys no client can choose to make
//! collide: addresses of static labels, the registry's fixed names, SHA-256 digests of verified
//! tokens. Everything keyed by what a client sends keeps the standard library's keyed SipHash.

use std::hash::{BuildHasherDefault, Hasher};

/// A folded multiply over 8-byte words (the full 128-bit product, its halves xored, as in
/// foldhash), so every input bit reaches every output bit. For keys fixed at start-up or made
/// of addresses: a client can look up any key it likes, but inserts none, so the worst a
/// chosen name can do is share a probe group with a registered one.
#[derive(Default)]
pub struct Fold(u64);

impl Fold {
    fn add(&mut self, word: u64) {
        let product = u128::from(self.0 ^ word) * u128::from(0x243f_6a88_85a3_08d3_u64);
        self.0 = (product as u64) ^ (product >> 64) as u64;
    }
}

impl Hasher for Fold {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.add(u64::from_le_bytes(w.try_into().expect("8 bytes")));
        }
        let mut last = [0u8; 8];
        let rest = words.remainder();
        last[..rest.len()].copy_from_slice(rest);
        self.add(u64::from_le_bytes(last) ^ (rest.len() as u64) << 56);
    }
    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
}

pub type BuildFold = BuildHasherDefault<Fold>;

/// The hash of a key that is already a SHA-256 digest: its first eight bytes. Only digests of
/// tokens that passed their signature check are inserted, and a digest's bits cannot be chosen
/// without breaking SHA-256, so they are as good as a keyed hash and cost nothing.
#[derive(Default)]
pub struct Digest(u64);

impl Hasher for Digest {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        if let Some(first) = bytes.first_chunk::<8>() {
            self.0 ^= u64::from_le_bytes(*first);
        }
    }
    // An array's length prefix says nothing about a digest.
    fn write_usize(&mut self, _: usize) {}
}

pub type BuildDigest = BuildHasherDefault<Digest>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::hash::BuildHasher;

    #[test]
    fn fold_tells_apart_names_that_differ_in_any_byte_or_length() {
        let h = |s: &str| BuildFold::default().hash_one(s);
        assert_ne!(h("greet_user"), h("greet_usex"));
        assert_ne!(h("a"), h("a\0"));
        assert_ne!(h("abcdefgh"), h("abcdefgh\0"));
        let names: std::collections::HashSet<u64> =
            (0..10_000).map(|i| h(&format!("tool_{i}"))).collect();
        assert_eq!(names.len(), 10_000);
    }

    #[test]
    fn digest_keys_hash_to_their_first_bytes_and_maps_work() {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&7u64.to_le_bytes());
        assert_eq!(BuildDigest::default().hash_one(key), 7);
        let mut map: HashMap<[u8; 32], u32, BuildDigest> = HashMap::default();
        for i in 0..1000u32 {
            let mut k = [0u8; 32];
            k[..4].copy_from_slice(&i.to_le_bytes());
            map.insert(k, i);
        }
        let mut k = [0u8; 32];
        k[..4].copy_from_slice(&999u32.to_le_bytes());
        assert_eq!(map.get(&k), Some(&999));
    }
}
