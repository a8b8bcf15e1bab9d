//! Log setup (env_logger): `RUST_LOG` picks levels; text or one JSON object per line; panics
//! are logged like everything else.

use std::io::Write;

use crate::config::LogFormat;

/// Collects a record's key-value fields as JSON.
struct Fields(serde_json::Map<String, serde_json::Value>);

impl<'kvs> log::kv::VisitSource<'kvs> for Fields {
    fn visit_pair(
        &mut self,
        key: log::kv::Key<'kvs>,
        value: log::kv::Value<'kvs>,
    ) -> Result<(), log::kv::Error> {
        let v = if let Some(n) = value.to_u64() {
            serde_json::Value::from(n)
        } else if let Some(f) = value.to_f64() {
            serde_json::Value::from(f)
        } else {
            serde_json::Value::String(value.to_string())
        };
        self.0.insert(key.to_string(), v);
        Ok(())
    }
}

/// Installs the logger once. `RUST_LOG` wins over the default (`info`).
pub fn init(format: LogFormat) {
    let mut b = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    b.target(env_logger::Target::Stderr);
    if format == LogFormat::Json {
        b.format(|buf, record| {
            let mut line = serde_json::json!({
                "ts": buf.timestamp_millis().to_string(),
                "level": record.level().as_str(),
                "target": record.target(),
                "msg": record.args().to_string(),
            });
            // Structured fields (the audit trail's) become members of the object.
            let mut fields = Fields(serde_json::Map::new());
            let _ = record.key_values().visit(&mut fields);
            if let Some(obj) = line.as_object_mut() {
                for (k, v) in fields.0 {
                    obj.entry(k).or_insert(v);
                }
            }
            writeln!(buf, "{line}")
        });
    }
    let _ = b.try_init();
    // Panics (a tool's, say) go through the logger too, so JSON logs stay one object per line.
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let message: String = message.chars().take(200).collect();
        log::error!("panic at {location}: {message}");
    }));
}
