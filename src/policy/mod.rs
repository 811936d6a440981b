//! Selection policies over the same counters, and the pick that reserves.
//!
//! A pick runs on one snapshot, tier by tier (lowest first): the policy proposes an entry of
//! the tier among the *admissible* ones (not full, not down, not in its failure window, not
//! excluded), and the proposal is turned into a reservation with one RMW
//! ([`Host::try_reserve`](crate::host::Host::try_reserve)). If that RMW finds the host full
//! or down after all (another thread got there first), the host is excluded for the rest of
//! this pick and the policy proposes again. At most [`MAX_FAILED_RESERVATIONS`] such
//! failures are tolerated per pick, which bounds its steps (see CONCURRENCY.md).

mod first;
mod least_conn;
mod p2c;
mod ties;

use crate::host::{DOWN, HostId, INFLIGHT_MASK, LOAD_MASK};
use crate::snapshot::{Entry, Snapshot};
use crate::zone::Attribution;

/// How a pick chooses among the available hosts of a tier.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Policy {
    /// Fewest in-flight requests (per unit of weight); ties broken at random (uniformly when
    /// weights are equal, in proportion to weight otherwise). Caddy's `least_conn`.
    #[default]
    LeastConn = 0,
    /// The first available host in list order (the `multi` failover pattern).
    First = 1,
    /// Two distinct random available hosts; the one with fewer in-flight requests (per unit
    /// of weight) wins. Caddy's `random_choose 2`, nginx's `random two least_conn`.
    P2c = 2,
}

/// Failed reservation RMWs tolerated in one pick before it gives up with "no upstream".
pub const MAX_FAILED_RESERVATIONS: usize = 8;

/// A source of random numbers for tie breaks and p2c draws.
pub(crate) trait Random {
    /// A uniform value in `0..n`; `n >= 1`.
    fn below(&mut self, n: u64) -> u64;
}

impl Random for fastrand::Rng {
    #[inline]
    fn below(&mut self, n: u64) -> u64 {
        self.u64(..n)
    }
}

/// The calling thread's generator (fastrand's thread-local wyrand): no shared state.
pub(crate) struct ThreadRng;

impl Random for ThreadRng {
    #[cfg(not(loom))]
    #[inline]
    fn below(&mut self, n: u64) -> u64 {
        fastrand::u64(..n)
    }

    // Loom replays executions and needs every one to be deterministic, but a constant would
    // send every tie to the first entry and hide the schedules where threads propose
    // different hosts. So each loom thread draws from its own fixed sequence (splitmix64,
    // seeded by the thread's index in the execution): the same in every execution, different
    // between threads.
    #[cfg(loom)]
    fn below(&mut self, n: u64) -> u64 {
        loom::thread_local! {
            static STATE: std::cell::Cell<Option<u64>> = std::cell::Cell::new(None);
        }
        STATE.with(|state| {
            let seed = state.get().unwrap_or_else(|| {
                let index = format!("{:?}", loom::thread::current().id());
                crate::hash::fnv1a(index.as_bytes())
            });
            state.set(Some(seed.wrapping_add(crate::hash::SPLITMIX64_GAMMA)));
            crate::hash::splitmix64(seed) % n
        })
    }
}

/// Hosts a pick must not return: the caller's (already tried) and its own failed attempts.
pub(crate) struct Excluded<'a> {
    /// Is anything excluded at all? (Checked per host, so kept in one flag.)
    any: bool,
    user: &'a [HostId],
    failed: [HostId; MAX_FAILED_RESERVATIONS],
    n_failed: usize,
}

impl<'a> Excluded<'a> {
    #[inline(always)]
    fn new(user: &'a [HostId]) -> Self {
        Self { any: !user.is_empty(), user, failed: [HostId(0); MAX_FAILED_RESERVATIONS], n_failed: 0 }
    }

    #[cold]
    fn contains(&self, id: HostId) -> bool {
        self.user.contains(&id) || self.failed[..self.n_failed].contains(&id)
    }

    /// Records a failed attempt; false once the budget is spent.
    fn push_failed(&mut self, id: HostId) -> bool {
        if self.n_failed == MAX_FAILED_RESERVATIONS {
            return false;
        }
        self.failed[self.n_failed] = id;
        self.n_failed += 1;
        self.any = true;
        true
    }
}

/// The current time, read from the pool's clock at most once per pick and only if some host
/// needs it (has SUSPECT set).
#[derive(Default)]
pub(crate) struct Now(u64);

impl Now {
    #[cold]
    fn get(&mut self, e: &Entry) -> u64 {
        if self.0 == 0 {
            self.0 = e.host().clock_now();
        }
        self.0
    }
}

/// Can `e`, whose state word is `word`, be proposed? Exact for the moment of the load; the
/// reservation RMW re-checks fullness and the down flag.
#[inline(always)]
pub(crate) fn admissible(e: &Entry, word: u64, ex: &Excluded<'_>, now: &mut Now) -> bool {
    // One compare settles the common case: the flags sit above the in-flight bits, so a host
    // below its limit with no flag set is exactly one whose `word & LOAD_MASK` is below it.
    if word & LOAD_MASK >= u64::from(e.limit) && !flagged_but_admissible(e, word, now) {
        return false;
    }
    !ex.any || !ex.contains(e.host().id)
}

/// The slow path of [`admissible`]: full, down, or SUSPECT (which needs the clock).
#[cold]
#[inline(never)]
fn flagged_but_admissible(e: &Entry, word: u64, now: &mut Now) -> bool {
    word & INFLIGHT_MASK < u64::from(e.limit) && word & DOWN == 0 && e.host().healthy_at(now.get(e))
}

/// Picks and reserves an entry of `snap`; returns its position in `snap.entries`.
#[inline(always)]
pub(crate) fn pick<R: Random>(
    snap: &Snapshot,
    policy: Policy,
    exclude: &[HostId],
    rng: &mut R,
    at: Option<&Attribution<'_>>,
) -> Option<usize> {
    let mut ex = Excluded::new(exclude);
    let mut now = Now::default();
    for &(start, end) in snap.tiers.iter() {
        let (start, end) = (start as usize, end as usize);
        let tier = &snap.entries[start..end];
        if policy == Policy::First {
            // One pass in list order: a failed reservation just moves on to the next entry.
            let mut from = 0;
            while let Some(i) = first::propose(tier, from, &ex, &mut now) {
                if reserve(&tier[i], at) {
                    return Some(start + i);
                }
                from = i + 1;
            }
            continue;
        }
        loop {
            let proposal = match policy {
                Policy::P2c => p2c::propose(tier, &snap.cum_weight[start..end], snap.uniform, &ex, &mut now, rng),
                _ => least_conn::propose(tier, snap.uniform, &ex, &mut now, rng),
            };
            let Some(i) = proposal else { break };
            if reserve(&tier[i], at) {
                return Some(start + i);
            }
            if !ex.push_failed(tier[i].host().id) {
                return None;
            }
        }
    }
    None
}

/// One reservation attempt on `e`, attributed for a zone pool (`at`) on the entry's slot: the
/// entry carries it, so a zone pick reads nothing from the `Host` block.
#[inline(always)]
fn reserve(e: &Entry, at: Option<&Attribution<'_>>) -> bool {
    e.state().try_reserve_in(u64::from(e.limit), at.map(|a| (a, e.slot)))
}

#[cfg(test)]
mod tests;
