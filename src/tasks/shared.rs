//! Task records in the shared store (REDIS_URL): one hash per task (`rec`, the record as JSON;
//! `end`, whether it ended; `a:<key>`, answers not yet taken), a sorted set per subject of its
//! unfinished tasks scored by lease, and a pub/sub channel that wakes the instance running a
//! task and the listen streams following it. Each change is one atomic script call; a record
//! that ended is never written again, so a cancellation and a result cannot both win.

use std::sync::{Arc, LazyLock, Weak};

use serde_json::{Map, Value};

use super::{Stored, TaskRecord, Tasks, Unavailable, now_ms};
use crate::shared_store::{SharedStore, digest};

const CHANNEL: &str = "gatehouse:tasks";
/// How long a subject's set of unfinished tasks is kept after its last change.
const RUNNING_SET_MS: u64 = 7 * 86_400_000;

fn record_key(id: &str) -> String {
    format!("gatehouse:task:{id}")
}

fn running_key(subject: &str) -> String {
    format!("gatehouse:tasks:running:{}", digest(subject))
}

/// Creates the record unless the subject has `max` unfinished tasks whose leases hold.
const CREATE: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[6])
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[5]) then return 0 end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[7])
redis.call('HSET', KEYS[1], 'rec', ARGV[1], 'end', '0')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
";

/// Writes the record unless it is gone or ended already; an ending frees the subject's slot
/// and drops answers nobody will take.
const WRITE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[1], 'end') == '1' then return 0 end
redis.call('HSET', KEYS[1], 'rec', ARGV[1], 'end', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if ARGV[2] == '1' then
  redis.call('ZREM', KEYS[2], ARGV[5])
  for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
    if string.sub(f, 1, 2) == 'a:' then redis.call('HDEL', KEYS[1], f) end
  end
else
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
  redis.call('PEXPIRE', KEYS[2], ARGV[6])
end
return 1
";

/// Records answers (the first answer to a key stands) on a task that has not ended.
const ANSWER: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[1], 'end') == '1' then return 0 end
for i = 1, #ARGV, 2 do redis.call('HSETNX', KEYS[1], 'a:' .. ARGV[i], ARGV[i + 1]) end
return 1
";

/// The scripts, hashed once.
struct Scripts {
    create: redis::Script,
    write: redis::Script,
    answer: redis::Script,
}

static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    create: redis::Script::new(CREATE),
    write: redis::Script::new(WRITE),
    answer: redis::Script::new(ANSWER),
});

/// Milliseconds until the record may be forgotten (at least one).
fn remaining(record: &TaskRecord) -> u64 {
    record.expires_ms().saturating_sub(now_ms()).max(1)
}

pub(super) async fn create(
    store: &SharedStore,
    record: &TaskRecord,
    max: usize,
) -> Result<bool, Unavailable> {
    if store.resting() {
        return Err(Unavailable);
    }
    let json = serde_json::to_string(record).map_err(|_| Unavailable)?;
    let mut invocation = SCRIPTS.create.prepare_invoke();
    invocation
        .key(record_key(&record.id))
        .key(running_key(&record.subject))
        .arg(json)
        .arg(remaining(record))
        .arg(record.lease_ms)
        .arg(&record.id)
        .arg(max)
        .arg(now_ms())
        .arg(RUNNING_SET_MS);
    let mut conn = store.connection();
    let created: i64 = store
        .within_timeout(async { invocation.invoke_async(&mut conn).await })
        .await
        .map_err(|_| Unavailable)?;
    Ok(created == 1)
}

pub(super) async fn write(store: &SharedStore, record: &TaskRecord) -> Result<bool, Unavailable> {
    if store.resting() {
        return Err(Unavailable);
    }
    let json = serde_json::to_string(record).map_err(|_| Unavailable)?;
    let ended = if record.status.is_terminal() {
        "1"
    } else {
        "0"
    };
    let mut invocation = SCRIPTS.write.prepare_invoke();
    invocation
        .key(record_key(&record.id))
        .key(running_key(&record.subject))
        .arg(json)
        .arg(ended)
        .arg(remaining(record))
        .arg(record.lease_ms)
        .arg(&record.id)
        .arg(RUNNING_SET_MS);
    let mut conn = store.connection();
    let written: i64 = store
        .within_timeout(async { invocation.invoke_async(&mut conn).await })
        .await
        .map_err(|_| Unavailable)?;
    Ok(written == 1)
}

pub(super) async fn read(store: &SharedStore, id: &str) -> Result<Option<Stored>, Unavailable> {
    if store.resting() {
        return Err(Unavailable);
    }
    let mut conn = store.connection();
    let fields: Vec<(String, String)> = store
        .within_timeout(async {
            redis::cmd("HGETALL")
                .arg(record_key(id))
                .query_async(&mut conn)
                .await
        })
        .await
        .map_err(|_| Unavailable)?;
    let mut record = None;
    let mut answers = Map::new();
    for (field, value) in fields {
        if field == "rec" {
            record = serde_json::from_str::<TaskRecord>(&value).ok();
        } else if let Some(key) = field.strip_prefix("a:")
            && let Ok(v) = serde_json::from_str::<Value>(&value)
        {
            answers.insert(key.to_string(), v);
        }
    }
    Ok(record
        .filter(|r| r.id == id && r.expires_ms() > now_ms())
        .map(|record| Stored { record, answers }))
}

pub(super) async fn answer(
    store: &SharedStore,
    id: &str,
    answers: &Map<String, Value>,
) -> Result<(), Unavailable> {
    if answers.is_empty() {
        return Ok(());
    }
    if store.resting() {
        return Err(Unavailable);
    }
    let mut invocation = SCRIPTS.answer.prepare_invoke();
    invocation.key(record_key(id));
    for (k, v) in answers {
        invocation.arg(k).arg(v.to_string());
    }
    let mut conn = store.connection();
    store
        .within_timeout(async { invocation.invoke_async::<i64>(&mut conn).await })
        .await
        .map(|_| ())
        .map_err(|_| Unavailable)
}

pub(super) async fn answers(
    store: &SharedStore,
    id: &str,
    keys: &[String],
) -> Result<Map<String, Value>, Unavailable> {
    if keys.is_empty() {
        return Ok(Map::new());
    }
    let mut cmd = redis::cmd("HMGET");
    cmd.arg(record_key(id));
    for k in keys {
        cmd.arg(format!("a:{k}"));
    }
    let mut conn = store.connection();
    let values: Vec<Option<String>> = store
        .within_timeout(async { cmd.query_async(&mut conn).await })
        .await
        .map_err(|_| Unavailable)?;
    Ok(keys
        .iter()
        .zip(values)
        .filter_map(|(k, v)| Some((k.clone(), serde_json::from_str(&v?).ok()?)))
        .collect())
}

pub(super) async fn forget_answers(
    store: &SharedStore,
    id: &str,
    keys: &[String],
) -> Result<(), Unavailable> {
    if keys.is_empty() {
        return Ok(());
    }
    let mut cmd = redis::cmd("HDEL");
    cmd.arg(record_key(id));
    for k in keys {
        cmd.arg(format!("a:{k}"));
    }
    let mut conn = store.connection();
    store
        .within_timeout(async { cmd.query_async::<i64>(&mut conn).await })
        .await
        .map(|_| ())
        .map_err(|_| Unavailable)
}

/// Tells every instance that task `id` changed (best effort: the running instance also reads
/// its record every heartbeat, and a listen stream reads it when it starts).
pub(super) async fn nudge(store: &SharedStore, origin: &str, id: &str) {
    if store.resting() {
        return;
    }
    store
        .publish(CHANNEL, format!("{origin}\n{id}"), store.timeout())
        .await;
}

/// Listens for other instances' nudges for as long as `tasks` lives.
pub(super) fn relay(tasks: &Arc<Tasks>) {
    let Some(shared) = &tasks.shared else {
        return;
    };
    let weak: Weak<Tasks> = Arc::downgrade(tasks);
    shared.store.listen(CHANNEL, move |payload| {
        let Some(tasks) = weak.upgrade() else {
            return false;
        };
        if let Some((origin, id)) = payload.split_once('\n')
            && origin != tasks.instance
            && Tasks::plausible_id(id)
        {
            tasks.relayed(id);
        }
        true
    });
}
