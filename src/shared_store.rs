//! The store several instances share, when REDIS_URL names one: rate budgets kept as GCRA
//! timestamps (one atomic script call per check, on a multiplexed connection that reconnects by
//! itself), and list-change announcements relayed between instances over pub/sub. A store that
//! does not answer within `rate_limit.redis_timeout_ms` is treated as down for a second at a
//! time; whoever checks a budget then falls back (see `budget`), and nobody waits longer.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::changes::{Change, Changes};
use crate::metrics::METRICS;

/// GCRA over one or more budgets at once: each key holds its theoretical arrival time (in
/// microseconds of the Redis clock, which Lua's doubles hold exactly until the year 2255);
/// budget i (ARGV interval in microseconds, burst, cells) allows its cells when
/// `tat + cells * interval - burst * interval <= now`. All are taken, or none: the answer is
/// `{0, 0}`, or `{i, wait_us}` for the first budget that refuses. Microseconds, not
/// milliseconds: a whole-millisecond interval capped every rate at 1,000 a second and rounded
/// the rates 60,000 does not divide.
const GCRA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local next = {}
for i = 1, #KEYS do
  local interval = tonumber(ARGV[3 * i - 2])
  local burst = tonumber(ARGV[3 * i - 1])
  local cells = tonumber(ARGV[3 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  local new_tat = tat + cells * interval
  local allow_at = new_tat - burst * interval
  if allow_at > now then return {i, allow_at - now} end
  next[i] = new_tat
end
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], string.format('%d', next[i]), 'PX', math.floor((next[i] - now) / 1000) + 1000)
end
return {0, 0}
"#;

/// One budget's part of a check.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub key: String,
    /// Microseconds between two cells: 60,000,000 / the rate per minute, rounded (at most
    /// 0.5 us off an interval of at least 60 us: under 1%).
    pub interval_us: u64,
    pub burst: u32,
    pub cells: u32,
}

/// The channel list changes travel on between instances.
const CHANNEL: &str = "gatehouse:changes";
/// How long the store is left alone after it failed to answer.
const DOWN_FOR: Duration = Duration::from_secs(1);

pub struct SharedStore {
    client: redis::Client,
    conn: ConnectionManager,
    script: redis::Script,
    timeout: Duration,
    /// Where the store is, without credentials, for log lines.
    pub location: String,
    up: AtomicBool,
    down_until: Mutex<Option<Instant>>,
}

/// A store that could not be used for this check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unavailable;

impl SharedStore {
    /// Connects lazily: a store that is down at startup does not stop the server.
    /// `insecure_tls` accepts a `rediss://` certificate without verifying it.
    pub fn new(
        url: &str,
        timeout: Duration,
        insecure_tls: bool,
    ) -> Result<Arc<SharedStore>, String> {
        let target = if insecure_tls && url.starts_with("rediss://") && !url.contains('#') {
            format!("{url}#insecure")
        } else {
            url.to_string()
        };
        let client = redis::Client::open(target.as_str()).map_err(|e| format!("{e}"))?;
        let location = url::Url::parse(url)
            .ok()
            .map(|u| {
                format!(
                    "{}://{}:{}",
                    u.scheme(),
                    u.host_str().unwrap_or("?"),
                    u.port().unwrap_or(6379)
                )
            })
            .unwrap_or_else(|| "redis".into());
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout.max(Duration::from_millis(500))))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| format!("{e}"))?;
        METRICS.shared_store_configured();
        METRICS.shared_store_up.set(1);
        Ok(Arc::new(SharedStore {
            client,
            conn,
            script: redis::Script::new(GCRA),
            timeout,
            location,
            up: AtomicBool::new(true),
            down_until: Mutex::new(None),
        }))
    }

    /// Takes the cells of every check at once, in one round trip: `Ok(None)` allowed,
    /// `Ok(Some((i, wait)))` refused by check `i` (nothing taken), `Err` when the store did not
    /// answer in time (or is resting after it did not).
    pub async fn take(&self, checks: &[Check]) -> Result<Option<(usize, Duration)>, Unavailable> {
        if self.resting() {
            return Err(Unavailable);
        }
        let mut invocation = self.script.prepare_invoke();
        for c in checks {
            invocation
                // `rl2`: arrival times in microseconds (instances that kept milliseconds under
                // `rl` during a rolling deploy never read these as theirs).
                .key(format!("gatehouse:rl2:{}:{}", c.name, digest(&c.key)))
                .arg(c.interval_us)
                .arg(c.burst)
                .arg(c.cells);
        }
        let mut conn = self.conn.clone();
        let call = async { invocation.invoke_async::<(i64, i64)>(&mut conn).await };
        let (refused_by, wait_us) = self.within_timeout(call).await?;
        Ok((refused_by > 0).then(|| {
            (
                (refused_by - 1) as usize,
                Duration::from_micros(wait_us.max(1) as u64),
            )
        }))
    }

    /// Marks `key` used until `ttl` from now: `Ok(true)` for its first use on any instance,
    /// `Ok(false)` when it was used before, `Err` when the store did not answer in time. One
    /// `SET NX PX` round trip.
    pub async fn first_use(&self, key: &str, ttl: Duration) -> Result<bool, Unavailable> {
        if self.resting() {
            return Err(Unavailable);
        }
        let mut cmd = redis::cmd("SET");
        cmd.arg(format!("gatehouse:once:{}", digest(key)))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64);
        let mut conn = self.conn.clone();
        let call = async { cmd.query_async::<Option<String>>(&mut conn).await };
        Ok(self.within_timeout(call).await?.is_some())
    }

    /// `rate_limit.redis_timeout_ms`: the longest any call to the store waits.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A handle on the multiplexed connection (cheap to clone), for the task records.
    pub(crate) fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Whether the store is left alone after it failed to answer (for `DOWN_FOR`).
    pub(crate) fn resting(&self) -> bool {
        self.down_until
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|until| Instant::now() < until)
    }

    /// The store's answer within `redis_timeout_ms`, marking it up or down by what happened.
    pub(crate) async fn within_timeout<T>(
        &self,
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, Unavailable> {
        if crate::telemetry::enabled() {
            let attributes = || vec![opentelemetry::KeyValue::new("db.system.name", "redis")];
            let traced = crate::telemetry::traced("redis", attributes, self.timed(call), |_| {
                "unavailable".to_string()
            });
            return traced.await;
        }
        self.timed(call).await
    }

    async fn timed<T>(
        &self,
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, Unavailable> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(answer)) => {
                self.mark_up();
                Ok(answer)
            }
            Ok(Err(e)) => {
                self.mark_down(&format!("{e}"));
                Err(Unavailable)
            }
            Err(_) => {
                self.mark_down(&format!("no answer within {} ms", self.timeout.as_millis()));
                Err(Unavailable)
            }
        }
    }

    fn mark_up(&self) {
        if !self.up.swap(true, Ordering::Relaxed) {
            log::info!(
                "shared store {} answers again: budgets are shared again",
                self.location
            );
            METRICS.shared_store_up.set(1);
        }
    }

    fn mark_down(&self, why: &str) {
        *self.down_until.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Instant::now() + DOWN_FOR);
        METRICS.shared_store_fallbacks.inc();
        // Logged once per outage.
        if self.up.swap(false, Ordering::Relaxed) {
            log::warn!(
                "shared store {} unavailable ({why}): budgets fall back until it answers",
                self.location
            );
            METRICS.shared_store_up.set(0);
        }
    }

    /// Whether the store answered the last time it was asked.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Asks the store to answer now (for `doctor` and startup): `Err` says why not.
    pub async fn ping(&self) -> Result<(), String> {
        let mut conn = self.conn.clone();
        let ping = async { redis::cmd("PING").query_async::<String>(&mut conn).await };
        match tokio::time::timeout(self.timeout.max(Duration::from_secs(2)), ping).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("{e}")),
            Err(_) => Err("no answer".into()),
        }
    }

    /// Relays list-change announcements between instances: this instance's go out on the
    /// channel (tagged with `origin`), the others' come in and reach local listen streams only,
    /// so each stream hears every change once. Reconnects by itself.
    pub fn relay(self: &Arc<Self>, changes: &Arc<Changes>, origin: String) {
        let (tx, mut rx) = mpsc::unbounded_channel::<Change>();
        changes.relay_to(tx);
        let store = self.clone();
        let from = origin.clone();
        tokio::spawn(async move {
            while let Some(change) = rx.recv().await {
                let text = serde_json::to_string(&Wire {
                    origin: from.clone(),
                    change: change.into(),
                })
                .expect("announcements serialize");
                if !store.publish(CHANNEL, text, store.timeout * 10).await {
                    log::debug!("a list change was not relayed to other instances");
                }
            }
        });
        let changes = changes.clone();
        self.listen(CHANNEL, move |payload| {
            if let Ok(w) = serde_json::from_str::<Wire>(&payload)
                && w.origin != origin
                && let Some(c) = w.change.into_change()
            {
                changes.deliver(c);
            }
            true
        });
    }

    /// Publishes `text` on `channel`, waiting at most `within`; `false` when it was not
    /// (the store's state is not changed by a slow publish: relays are best effort).
    pub(crate) async fn publish(&self, channel: &str, text: String, within: Duration) -> bool {
        let mut conn = self.conn.clone();
        let publish = async {
            redis::cmd("PUBLISH")
                .arg(channel)
                .arg(text)
                .query_async::<i64>(&mut conn)
                .await
        };
        matches!(tokio::time::timeout(within, publish).await, Ok(Ok(_)))
    }

    /// Hands every message published on `channel` to `on_message` until it returns `false`,
    /// on a pub/sub connection of its own that reconnects by itself.
    pub(crate) fn listen(
        self: &Arc<Self>,
        channel: &'static str,
        mut on_message: impl FnMut(String) -> bool + Send + 'static,
    ) {
        let store = self.clone();
        tokio::spawn(async move {
            loop {
                match store.client.get_async_pubsub().await {
                    Ok(mut pubsub) => {
                        if pubsub.subscribe(channel).await.is_ok() {
                            let mut messages = pubsub.on_message();
                            while let Some(msg) = messages.next().await {
                                let Ok(payload) = msg.get_payload::<String>() else {
                                    continue;
                                };
                                if !on_message(payload) {
                                    return;
                                }
                            }
                        }
                    }
                    Err(e) => log::debug!("cannot subscribe to {channel}: {e}"),
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
}

pub(crate) fn digest(key: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key.as_bytes());
    d.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An announcement on the channel.
#[derive(Serialize, Deserialize)]
struct Wire {
    origin: String,
    change: WireChange,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum WireChange {
    Tools,
    Prompts,
    Resources,
    Updated {
        uri: String,
    },
    #[serde(other)]
    Unknown,
}

impl From<Change> for WireChange {
    fn from(c: Change) -> Self {
        match c {
            Change::ToolsListChanged => WireChange::Tools,
            Change::PromptsListChanged => WireChange::Prompts,
            Change::ResourcesListChanged => WireChange::Resources,
            Change::ResourceUpdated(uri) => WireChange::Updated { uri },
        }
    }
}

impl WireChange {
    fn into_change(self) -> Option<Change> {
        Some(match self {
            WireChange::Tools => Change::ToolsListChanged,
            WireChange::Prompts => Change::PromptsListChanged,
            WireChange::Resources => Change::ResourcesListChanged,
            WireChange::Updated { uri } => Change::ResourceUpdated(uri),
            WireChange::Unknown => return None,
        })
    }
}
