//! Monotonic time for the passive-failure window and grace periods.
//!
//! Time is nanoseconds since a process-wide epoch, plus one, so that `0` can mean "never"
//! in the atomics that store timestamps. The system clock is `std::time::Instant` (the vDSO
//! `clock_gettime(CLOCK_MONOTONIC)` on Linux: no syscall). Tests use a [`ManualClock`] so that
//! failure windows and grace periods are checked exactly, without sleeping.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Where leastconn reads the time from.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    /// The monotonic system clock.
    #[default]
    System,
    /// A clock that only moves when told to (for tests and simulations).
    Manual(ManualClock),
}

/// The system clock's epoch: set by the first [`Clock::start`], i.e. when the first pool is
/// built, so that reading the clock on the failure and pick paths never initialises it.
static EPOCH: OnceLock<Instant> = OnceLock::new();

impl Clock {
    /// Fixes the system clock's epoch if it is not fixed yet (may block on the first call
    /// in the process). Called when a pool is built, before any pick or release can run.
    pub(crate) fn start(&self) {
        if let Clock::System = self {
            EPOCH.get_or_init(Instant::now);
        }
    }

    /// Nanoseconds since the epoch, plus one; never 0. Never blocks after [`Clock::start`]:
    /// `get_or_init` on an initialised `OnceLock` is one Acquire load.
    pub(crate) fn now_ns(&self) -> u64 {
        match self {
            Clock::System => {
                let epoch = *EPOCH.get_or_init(Instant::now);
                // Saturates after ~584 years of uptime.
                u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX - 1) + 1
            }
            Clock::Manual(m) => m.now_ns(),
        }
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds (the vDSO on Linux: no syscall): the clock of zone pools,
/// whose failure timestamps must agree across processes (std's `Instant` hides its raw value).
pub(crate) fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    debug_assert_eq!(rc, 0);
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000).wrapping_add(ts.tv_nsec as u64)
}

/// A manually advanced clock, shared by all its clones.
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    // std, not crate::sync: this is a test device, not part of any modelled protocol.
    ns: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock standing at its epoch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let ns = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX / 2);
        // Relaxed: the value is the whole message; readers need no other data with it.
        self.ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Time elapsed since the epoch.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.ns.load(Ordering::Relaxed))
    }

    fn now_ns(&self) -> u64 {
        // Relaxed: see `advance`.
        self.ns.load(Ordering::Relaxed) + 1
    }
}

pub(crate) fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::{Pool, Static};

    /// Building a pool fixes the system clock's epoch, so the first failure's clock read (on
    /// the release path) never runs `OnceLock` initialisation. Before, nothing set it until
    /// the first failure. (Run alone to see that: other tests in this process build pools.)
    #[test]
    fn building_a_pool_fixes_the_system_clock_epoch() {
        let _pool = Pool::builder(Static::from_addresses(["a:1"])).build().unwrap();
        assert!(EPOCH.get().is_some());
    }
}
