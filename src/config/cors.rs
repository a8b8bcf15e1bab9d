//! `[cors]`: which browser origins may call, and how long a preflight answer is cached.

use serde::Deserialize;

use super::{ConfigError, bad, range, var_for};
use crate::edge::patterns::OriginPattern;

#[derive(Debug, Clone)]
pub struct CorsSettings {
    pub allowed_origins: Vec<OriginPattern>,
    pub max_age_secs: usize,
}

#[derive(Deserialize)]
pub(super) struct Raw {
    allowed_origins: Vec<String>,
    max_age_secs: usize,
}

impl Raw {
    pub(super) fn validate(self) -> Result<CorsSettings, ConfigError> {
        let mut allowed_origins = Vec::new();
        for o in self.allowed_origins.iter().filter(|o| !o.trim().is_empty()) {
            allowed_origins.push(
                OriginPattern::parse(o.trim())
                    .map_err(|p| bad(&var_for("cors.allowed_origins"), p))?,
            );
        }
        range(self.max_age_secs as u64, 0, 86_400, "cors.max_age_secs")?;
        Ok(CorsSettings {
            allowed_origins,
            max_age_secs: self.max_age_secs,
        })
    }
}
