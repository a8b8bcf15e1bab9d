//! The protocol revisions this server speaks and the era each belongs to: the vocabulary
//! every layer may name (it imports nothing).

/// Protocol revisions of the legacy era (initialize handshake) this server speaks, newest first.
pub const SUPPORTED_VERSIONS: [&str; 3] = ["2025-11-25", "2025-06-18", "2025-03-26"];
pub const LATEST_VERSION: &str = SUPPORTED_VERSIONS[0];
/// The stateless revision: no handshake, every request carries its own `_meta`.
pub const MODERN_VERSION: &str = "2026-07-28";
/// Every revision served, newest first (`server/discover`'s `supportedVersions`).
pub const ALL_VERSIONS: [&str; 4] = [MODERN_VERSION, "2025-11-25", "2025-06-18", "2025-03-26"];
/// The revision assumed when a request carries no `MCP-Protocol-Version` header.
pub const DEFAULT_VERSION: &str = "2025-03-26";
/// The only revision that allowed JSON-RPC batches.
pub const BATCH_VERSION: &str = "2025-03-26";

/// Which protocol era a request belongs to: a 2025 revision (handshake, capabilities known only
/// to `initialize`), or 2026-07-28 (stateless, a validated `_meta` on every request). Decided
/// per request by `modern::classify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    Legacy(&'static str),
    Modern,
}

impl Era {
    pub fn version(self) -> &'static str {
        match self {
            Era::Legacy(v) => v,
            Era::Modern => MODERN_VERSION,
        }
    }

    /// Whether the revision is one of ours at all: `None` for an unknown string.
    pub fn from_version(v: &str) -> Option<Era> {
        if v == MODERN_VERSION {
            return Some(Era::Modern);
        }
        SUPPORTED_VERSIONS
            .iter()
            .find(|s| **s == v)
            .map(|s| Era::Legacy(s))
    }
}
