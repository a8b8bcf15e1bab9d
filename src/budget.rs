//! Rate budgets: the per-client request budget and the per-subject tool-call budget. Kept in this
//! instance's memory (governor, the engine of actix-governor), or, with a shared store
//! (REDIS_URL), kept there so they hold across every instance, with this instance's memory as
//! the fallback while the store does not answer (or a refusal, per `rate_limit.redis_down`).

use std::fmt::Display;
use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use actix_governor::governor::clock::{Clock, DefaultClock, QuantaInstant};
use actix_governor::governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::RedisDown;
use crate::shared_store::{Check, SharedStore};

/// Why a budget said no.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Over budget: this long until enough cells are free.
    Wait(Duration),
    /// The shared store does not answer and the policy is to refuse.
    StoreDown,
}

/// The shared half of a budget.
pub struct Shared {
    pub store: Arc<SharedStore>,
    pub when_down: RedisDown,
}

/// One budget: `per_minute` cells refilled evenly, at most `burst` at once, per key.
pub struct Budget<K: Hash + Eq + Clone> {
    name: &'static str,
    interval_us: u64,
    burst: u32,
    local: Arc<DefaultKeyedRateLimiter<K>>,
    shared: Option<Arc<Shared>>,
}

impl<K: Hash + Eq + Clone + Display> Budget<K> {
    /// A budget of `per_minute` cells a minute, `burst` at once (both validated > 0). Its
    /// in-memory limiter is the whole budget without a shared store, the fallback with one.
    pub fn new(
        name: &'static str,
        per_minute: u32,
        burst: u32,
        shared: Option<Arc<Shared>>,
    ) -> Budget<K> {
        let nonzero = |n: u32| NonZeroU32::new(n.max(1)).expect("at least 1");
        let local = Arc::new(RateLimiter::keyed(
            Quota::per_minute(nonzero(per_minute)).allow_burst(nonzero(burst)),
        ));
        Budget {
            name,
            // Rounded to the nearest microsecond: the shared store then enforces the configured
            // rate to within 1% at any rate the settings accept (at most 1,000,000 a minute).
            interval_us: ((60_000_000 + u64::from(per_minute.max(1)) / 2)
                / u64::from(per_minute.max(1)))
            .max(1),
            burst,
            local,
            shared,
        }
    }

    /// The budget lives in a shared store: taking from it is a round trip.
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// Takes `n` cells for `key`.
    pub async fn take(&self, key: &K, n: u32) -> Result<(), Refused> {
        if let Some(shared) = &self.shared {
            // Boxed: a round trip is rare beside the in-memory path, whose future stays small.
            match Box::pin(shared.store.take(&[self.check(key, n)])).await {
                Ok(None) => return Ok(()),
                Ok(Some((_, wait))) => return Err(Refused::Wait(wait)),
                Err(_) if shared.when_down == RedisDown::Refuse => return Err(Refused::StoreDown),
                Err(_) => {}
            }
        }
        self.take_local(key, n)
    }

    /// This budget's part of a shared check.
    fn check(&self, key: &K, cells: u32) -> Check {
        Check {
            name: self.name,
            key: key.to_string(),
            interval_us: self.interval_us,
            burst: self.burst,
            cells,
        }
    }

    /// Takes `n` cells for `key` here and `other_n` of `other` for `other_key`, in one round
    /// trip when both are shared (all or nothing). `Err((0, _))`: this budget refused;
    /// `Err((1, _))`: the other did.
    pub async fn take_with<L: Hash + Eq + Clone + Display>(
        &self,
        key: &K,
        n: u32,
        other: &Budget<L>,
        other_key: &L,
        other_n: u32,
    ) -> Result<(), (usize, Refused)> {
        if let Some(shared) = &self.shared
            && other.shared.is_some()
        {
            let checks = [self.check(key, n), other.check(other_key, other_n)];
            match Box::pin(shared.store.take(&checks)).await {
                Ok(None) => return Ok(()),
                Ok(Some((i, wait))) => return Err((i, Refused::Wait(wait))),
                Err(_) if shared.when_down == RedisDown::Refuse => {
                    return Err((0, Refused::StoreDown));
                }
                Err(_) => {}
            }
        } else {
            self.take(key, n).await.map_err(|r| (0, r))?;
            return other.take(other_key, other_n).await.map_err(|r| (1, r));
        }
        self.take_local(key, n).map_err(|r| (0, r))?;
        other.take_local(other_key, other_n).map_err(|r| (1, r))
    }

    /// Takes `n` cells from this instance's memory only.
    pub fn take_local(&self, key: &K, n: u32) -> Result<(), Refused> {
        let Some(n) = NonZeroU32::new(n) else {
            return Ok(());
        };
        match self.local.check_key_n(key, n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(Refused::Wait(not_until.wait_time_from(now()))),
            // More cells than the whole burst: no wait makes room; say a minute.
            Err(_) => Err(Refused::Wait(Duration::from_secs(60))),
        }
    }

    /// Drops idle keys of the in-memory limiter so memory stays bounded.
    pub fn purge_idle(&self) {
        self.local.retain_recent();
        self.local.shrink_to_fit();
    }
}

/// The limiters' clock, for how long a refused caller must wait. One per process: creating a
/// quanta clock calibrates it, which was a quarter of the CPU of every 429.
pub fn now() -> QuantaInstant {
    static CLOCK: std::sync::LazyLock<DefaultClock> =
        std::sync::LazyLock::new(DefaultClock::default);
    CLOCK.now()
}
