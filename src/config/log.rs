//! `[log]`: the access and application log format.

use serde::Deserialize;

use super::{ConfigError, bad, var_for};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct LogSettings {
    pub format: LogFormat,
}

#[derive(Deserialize)]
pub(super) struct Raw {
    format: String,
}

impl Raw {
    pub(super) fn validate(self) -> Result<LogSettings, ConfigError> {
        let format = match self.format.trim() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(bad(
                    &var_for("log.format"),
                    format!("{other:?} is not text or json"),
                ));
            }
        };
        Ok(LogSettings { format })
    }
}
