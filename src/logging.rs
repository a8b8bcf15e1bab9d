//! Log setup (env_logger): `RUST_LOG` picks levels; text or one JSON object per line; panics
//! are logged like everything else.

use std::cell::RefCell;
use std::io::Write;
use std::sync::Arc;

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

/// Where actix's HTTP/1 layer reports what a client got wrong (a malformed head, an invalid
/// header, a connection that broke mid-request, a timed-out read): at error level, although
/// nothing is wrong with the server. Anonymous garbage must not fill an operator's error log.
const CLIENT_FAULT_TARGETS: &[&str] = &["actix_http::h1"];

/// The logger: env_logger, with what actix's HTTP/1 layer logs as an error or a warning written
/// at debug (`RUST_LOG=actix_http=debug` shows it). Whatever the filter, a client's malformed
/// request never writes an ERROR line.
struct ClientFaults(env_logger::Logger);

impl ClientFaults {
    fn demoted(record: &log::Record) -> bool {
        record.level() <= log::Level::Warn
            && CLIENT_FAULT_TARGETS
                .iter()
                .any(|t| record.target().starts_with(t))
    }
}

impl log::Log for ClientFaults {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        self.0.enabled(metadata)
    }

    fn log(&self, record: &log::Record) {
        if !Self::demoted(record) {
            return self.0.log(record);
        }
        let demoted = log::Record::builder()
            .args(*record.args())
            .level(log::Level::Debug)
            .target(record.target())
            .module_path(record.module_path())
            .file(record.file())
            .line(record.line())
            .build();
        if self.0.enabled(demoted.metadata()) {
            self.0.log(&demoted);
        }
    }

    fn flush(&self) {
        self.0.flush()
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
    let inner = b.build();
    let max = inner.filter();
    if log::set_boxed_logger(Box::new(ClientFaults(inner))).is_ok() {
        log::set_max_level(max);
    }
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

thread_local! {
    static TAG: RefCell<Option<Arc<str>>> = const { RefCell::new(None) };
}

/// The label of the application this thread serves, if whoever built it set one. Nothing sets
/// one in production; a test harness does, so that the lines each test's servers log can be
/// told from another's in one process (`Application::build` passes the builder's label on to
/// the server's worker threads).
pub fn tag() -> Option<Arc<str>> {
    TAG.with_borrow(Clone::clone)
}

/// Labels this thread's log lines (see `tag`).
pub fn set_tag(tag: Option<Arc<str>>) {
    TAG.with_borrow_mut(|t| *t = tag);
}
