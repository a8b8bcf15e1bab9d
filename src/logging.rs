//! Log setup (env_logger): `RUST_LOG` picks levels; text or one JSON object per line; panics
//! are logged like everything else.

use std::io::Write;

use crate::config::LogFormat;

/// Installs the logger once. `RUST_LOG` wins over the default (`info`).
pub fn init(format: LogFormat) {
    let mut b = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    b.target(env_logger::Target::Stderr);
    if format == LogFormat::Json {
        b.format(|buf, record| {
            let line = serde_json::json!({
                "ts": buf.timestamp_millis().to_string(),
                "level": record.level().as_str(),
                "target": record.target(),
                "msg": record.args().to_string(),
            });
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
