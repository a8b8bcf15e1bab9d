//! Rate budgets, and the one place that charges them (`Budgets`): the per-client request
//! budget, the per-address allowance of first token verifications and the per-subject
//! tool-call budget. Kept in this instance's memory (governor, the engine of actix-governor),
//! or, with a shared store (REDIS_URL), kept there so they hold across every instance, with this
//! instance's memory as the fallback while the store does not answer (or a refusal, per
//! `rate_limit.redis_down`). Refusals are counted here; the layers above render them.

use std::fmt::Display;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use actix_governor::governor::clock::{Clock, DefaultClock, QuantaInstant};
use actix_governor::governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::{RateLimitSettings, RedisDown};
use crate::metrics::{self, METRICS};
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

/// A rate-limit bucket: the verified subject of the token, or the client address's bucket.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RateKey {
    Subject(String),
    Ip(IpAddr),
}

/// The bucket's name in a shared store.
impl std::fmt::Display for RateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RateKey::Subject(s) => write!(f, "sub:{s}"),
            RateKey::Ip(ip) => write!(f, "ip:{ip}"),
        }
    }
}

/// Which budget refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Requests,
    ToolCalls,
}

/// What the auth gate's charge of a request's first message decided without waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtGate {
    /// Paid (or no budget).
    Paid,
    /// Owed: a verified subject's charge in the shared store is made once the body is parsed
    /// (`Budgets::charge_message`), so a tool call pays both budgets in one round trip.
    Owed,
    /// A round trip to the shared store decides (`Budgets::charge_requests`).
    RoundTrip,
    Refused(Refused),
}

/// Every budget of this instance, and the one place that charges them: the auth gate, the
/// `Expect` check, the transport (a batch's further items, an owed charge) and the dispatcher
/// (a tool call) all ask it. Shared by every worker.
pub struct Budgets {
    /// Requests per minute on the MCP endpoint, keyed by verified subject or client address.
    requests: Option<Budget<RateKey>>,
    /// First verifications of a token from an address whose request budget is spent: a small
    /// allowance of its own (this instance's memory), so users behind one NAT can still sign
    /// in while anonymous floods from it are refused.
    first_verifications: Option<Budget<RateKey>>,
    /// Tool calls per minute per subject.
    tools: Option<Budget<String>>,
}

impl Budgets {
    /// The budgets `settings` describe (none when rate limits are off), kept in `shared` when
    /// REDIS_URL names a store (the allowance of first verifications is always this
    /// instance's).
    pub fn new(settings: &RateLimitSettings, shared: Option<Arc<Shared>>) -> Budgets {
        let on = settings.enabled;
        Budgets {
            requests: on.then(|| {
                Budget::new(
                    "requests",
                    settings.requests_per_minute,
                    settings.requests_burst,
                    shared.clone(),
                )
            }),
            first_verifications: on.then(|| {
                Budget::new(
                    "first_verifications",
                    settings.first_verifications_per_minute,
                    settings.first_verifications_burst,
                    None,
                )
            }),
            tools: on.then(|| {
                Budget::new(
                    "tool_calls",
                    settings.tool_calls_per_minute,
                    settings.tool_calls_burst,
                    shared,
                )
            }),
        }
    }

    /// Rate limits are on.
    pub fn enabled(&self) -> bool {
        self.requests.is_some()
    }

    /// The gate's charge of one message under `key`. A verified subject's charge in a shared
    /// store is owed when `may_owe` (a POST, whose body the transport reads); an address's in
    /// a shared store needs a round trip; in memory it is decided here. `first_sight`: the
    /// request carries a token to verify (see `charge_requests`).
    pub fn at_gate(&self, key: &RateKey, may_owe: bool, first_sight: bool) -> AtGate {
        let Some(requests) = &self.requests else {
            return AtGate::Paid;
        };
        if requests.is_shared() {
            return match key {
                RateKey::Subject(_) if may_owe => AtGate::Owed,
                _ => AtGate::RoundTrip,
            };
        }
        match self.settle(requests.take_local(key, 1), key, first_sight) {
            Ok(()) => AtGate::Paid,
            Err(refused) => AtGate::Refused(refused),
        }
    }

    /// Charges `n` messages to the request budget under `key`, wherever it is kept. When the
    /// budget is spent and `first_sight` (a POST carrying one well-formed bearer token not yet
    /// verified, auth on), the address's allowance of first verifications may pay instead:
    /// users behind one NAT can sign in while a flood of forged tokens is held to it.
    pub async fn charge_requests(
        &self,
        key: &RateKey,
        n: u32,
        first_sight: bool,
    ) -> Result<(), Refused> {
        let Some(requests) = &self.requests else {
            return Ok(());
        };
        let charged = if requests.is_shared() {
            requests.take(key, n).await
        } else {
            requests.take_local(key, n)
        };
        self.settle(charged, key, first_sight)
    }

    /// A request charge's outcome, the allowance of first verifications consulted when the
    /// budget is spent; a refusal is counted.
    fn settle(
        &self,
        charged: Result<(), Refused>,
        key: &RateKey,
        first_sight: bool,
    ) -> Result<(), Refused> {
        match charged {
            Err(Refused::Wait(_)) if first_sight && self.first_verification(key) => Ok(()),
            Err(refused) => Err(counted(Which::Requests, refused)),
            Ok(()) => Ok(()),
        }
    }

    /// Spends one of an address's first verifications, if it has one left.
    fn first_verification(&self, key: &RateKey) -> bool {
        match (&self.first_verifications, key) {
            (Some(allowance), RateKey::Ip(_)) => allowance.take_local(key, 1).is_ok(),
            _ => false,
        }
    }

    /// The charge the gate left owed (`AtGate::Owed`), for one message; a tool call's
    /// `tool_subject` pays its tool-call budget in the same round trip. `Ok(true)` when the
    /// tool-call budget was charged too.
    pub async fn charge_message(
        &self,
        key: &RateKey,
        tool_subject: Option<&str>,
    ) -> Result<bool, (Which, Refused)> {
        let Some(requests) = &self.requests else {
            return Ok(false);
        };
        let (Some(tools), Some(subject)) = (&self.tools, tool_subject) else {
            return requests
                .take(key, 1)
                .await
                .map(|()| false)
                .map_err(|r| (Which::Requests, counted(Which::Requests, r)));
        };
        match requests
            .take_with(key, 1, tools, &subject.to_string(), 1)
            .await
        {
            Ok(()) => Ok(true),
            Err((0, r)) => Err((Which::Requests, counted(Which::Requests, r))),
            Err((_, r)) => Err((Which::ToolCalls, counted(Which::ToolCalls, r))),
        }
    }

    /// Charges one tool call to `subject`'s tool-call budget.
    pub async fn charge_tool(&self, subject: &str) -> Result<(), Refused> {
        let Some(tools) = &self.tools else {
            return Ok(());
        };
        tools
            .take(&subject.to_string(), 1)
            .await
            .map_err(|r| counted(Which::ToolCalls, r))
    }

    /// Drops idle keys of the in-memory limiters so memory stays bounded.
    pub fn purge_idle(&self) {
        for b in [&self.requests, &self.first_verifications]
            .into_iter()
            .flatten()
        {
            b.purge_idle();
        }
        if let Some(b) = &self.tools {
            b.purge_idle();
        }
    }
}

/// A refusal, counted under its budget's label (a refused caller over its budget; the shared
/// store's refusals are counted for tool calls too, as they always were).
fn counted(which: Which, refused: Refused) -> Refused {
    match (which, refused) {
        (Which::Requests, Refused::Wait(_)) => metrics::count(&METRICS.rate_limited, ["requests"]),
        (Which::ToolCalls, _) => metrics::count(&METRICS.rate_limited, ["tool_calls"]),
        (Which::Requests, Refused::StoreDown) => {}
    }
    refused
}

/// The limiters' clock, for how long a refused caller must wait. One per process: creating a
/// quanta clock calibrates it, which was a quarter of the CPU of every 429.
pub fn now() -> QuantaInstant {
    static CLOCK: std::sync::LazyLock<DefaultClock> =
        std::sync::LazyLock::new(DefaultClock::default);
    CLOCK.now()
}
