//! `[cors]`: which browser origins may call, and how long a preflight answer is cached.

use serde::Deserialize;

use super::{ConfigError, patterns, range};
use crate::edge::patterns::OriginPattern;

/// `[cors]`: one type, deserialized as it is used, then range-checked.
#[derive(Debug, Clone, Deserialize)]
pub struct CorsSettings {
    /// Exact origins, `scheme://host:*` for any port, or `*` (production: only with
    /// `security.allow_any_origin`).
    #[serde(deserialize_with = "patterns")]
    pub allowed_origins: Vec<OriginPattern>,
    pub max_age_secs: usize,
}

impl CorsSettings {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        range(self.max_age_secs as u64, 0, 86_400, "cors.max_age_secs")?;
        Ok(())
    }
}
