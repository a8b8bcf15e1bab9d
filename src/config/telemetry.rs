//! `[telemetry]`: OpenTelemetry traces over OTLP/HTTP, set by the standard `OTEL_*` variables or
//! the config files; off unless an endpoint is set.

use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::{ConfigError, Context, Secret, bad, optional_text, range, var_for};

/// `[telemetry]`, as written.
#[derive(Debug, Clone, Deserialize)]
pub struct TelemetrySettings {
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`: the collector's base URL (`/v1/traces` is added).
    #[serde(deserialize_with = "optional_text")]
    endpoint: Option<String>,
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`: the traces URL, used as it is.
    #[serde(deserialize_with = "optional_text")]
    traces_endpoint: Option<String>,
    /// `OTEL_EXPORTER_OTLP_HEADERS`: `name=value,name=value` (values percent-decoded); secret.
    headers: Secret,
    /// `OTEL_EXPORTER_OTLP_PROTOCOL`: `http/protobuf` (default) or `http/json`.
    protocol: String,
    pub service_name: String,
    /// `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`.
    sampler: String,
    #[serde(deserialize_with = "optional_text")]
    sampler_arg: Option<String>,
    /// `OTEL_RESOURCE_ATTRIBUTES`: `key=value,key=value`.
    resource_attributes: String,
    /// `OTEL_SDK_DISABLED`.
    pub disabled: bool,
    /// `OTEL_EXPORTER_OTLP_TIMEOUT`: one export's longest wait.
    timeout_ms: u64,
    /// `OTEL_BSP_MAX_QUEUE_SIZE`: spans waiting for export; past it they are dropped (counted).
    pub max_queue_size: u64,
    /// `OTEL_BSP_SCHEDULE_DELAY`: the longest an ended span waits for its batch (ms).
    schedule_delay_ms: u64,
    /// Resolved: where and how spans go; `None`: tracing is off.
    #[serde(skip)]
    pub export: Option<Export>,
}

/// Where and how spans are exported, resolved.
#[derive(Debug, Clone)]
pub struct Export {
    pub url: Url,
    pub json: bool,
    pub headers: Vec<(String, Secret)>,
    pub sampler: Sampler,
    pub resource: Vec<(String, String)>,
    pub timeout: Duration,
    /// The longest an ended span waits for its batch.
    pub schedule_delay: Duration,
}

/// `OTEL_TRACES_SAMPLER`, resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampler {
    AlwaysOn,
    AlwaysOff,
    Ratio(f64),
    ParentBasedAlwaysOn,
    ParentBasedAlwaysOff,
    ParentBasedRatio(f64),
}

/// `key=value,key=value` with percent-encoded values (the OpenTelemetry list format).
fn pairs(text: &str, setting: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (k, v) = item.split_once('=').ok_or_else(|| {
            bad(
                setting,
                "expected name=value pairs separated by commas (the value is not shown)",
            )
        })?;
        let v: String = url::form_urlencoded::parse(format!("v={}", v.trim()).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        out.push((k.trim().to_string(), v));
    }
    Ok(out)
}

impl TelemetrySettings {
    pub(super) fn resolve(&mut self, cx: &Context) -> Result<(), ConfigError> {
        range(self.timeout_ms, 1, 120_000, "telemetry.timeout_ms")?;
        range(
            self.max_queue_size,
            1,
            1_000_000,
            "telemetry.max_queue_size",
        )?;
        range(
            self.schedule_delay_ms,
            1,
            60_000,
            "telemetry.schedule_delay_ms",
        )?;
        let url = match (&self.traces_endpoint, &self.endpoint) {
            (Some(t), _) => t.clone(),
            (None, Some(base)) => format!("{}/v1/traces", base.trim_end_matches('/')),
            (None, None) => return Ok(()),
        };
        let setting = if self.traces_endpoint.is_some() {
            var_for("telemetry.traces_endpoint")
        } else {
            var_for("telemetry.endpoint")
        };
        let url = Url::parse(&url).map_err(|e| bad(&setting, format!("not a URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad(&setting, "must be an http or https URL"));
        }
        if cx.prod && url.scheme() != "https" && !super::is_loopback(&url) {
            return Err(bad(
                &setting,
                "must use https in production (spans name your callers' subjects)",
            ));
        }
        let json = match self.protocol.trim() {
            "" | "http/protobuf" => false,
            "http/json" => true,
            "grpc" => {
                return Err(bad(
                    &var_for("telemetry.protocol"),
                    "grpc is not supported: use http/protobuf (the collector's port 4318)",
                ));
            }
            other => {
                return Err(bad(
                    &var_for("telemetry.protocol"),
                    format!("{other:?} is not http/protobuf or http/json"),
                ));
            }
        };
        let headers = pairs(self.headers.expose(), &var_for("telemetry.headers"))?
            .into_iter()
            .map(|(k, v)| (k, Secret::from_string(v)))
            .collect();
        let resource = pairs(
            &self.resource_attributes,
            &var_for("telemetry.resource_attributes"),
        )?;
        if self.disabled {
            return Ok(());
        }
        self.export = Some(Export {
            url,
            json,
            headers,
            sampler: self.sampler()?,
            resource,
            timeout: Duration::from_millis(self.timeout_ms),
            schedule_delay: Duration::from_millis(self.schedule_delay_ms),
        });
        Ok(())
    }

    fn sampler(&self) -> Result<Sampler, ConfigError> {
        let arg_setting = var_for("telemetry.sampler_arg");
        let ratio = || -> Result<f64, ConfigError> {
            match &self.sampler_arg {
                None => Ok(1.0),
                Some(a) => a
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|r| (0.0..=1.0).contains(r))
                    .ok_or_else(|| bad(&arg_setting, format!("{a:?} is not a ratio from 0 to 1"))),
            }
        };
        Ok(match self.sampler.trim() {
            "" | "parentbased_always_on" => Sampler::ParentBasedAlwaysOn,
            "parentbased_always_off" => Sampler::ParentBasedAlwaysOff,
            "parentbased_traceidratio" => Sampler::ParentBasedRatio(ratio()?),
            "always_on" => Sampler::AlwaysOn,
            "always_off" => Sampler::AlwaysOff,
            "traceidratio" => Sampler::Ratio(ratio()?),
            other => {
                return Err(bad(
                    &var_for("telemetry.sampler"),
                    format!(
                        "{other:?} is not a supported sampler (always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio)"
                    ),
                ));
            }
        })
    }
}
