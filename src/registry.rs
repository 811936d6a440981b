//! Address -> host state, so that state survives every list change.
//!
//! The registry holds one structural reference (an `Arc<HostRef>`) per address it knows.
//! Snapshots hold clones of the same `Arc`s. An entry is dropped by [`Registry::sweep`] only
//! when the registry's `Arc` is the last one (no snapshot, current or old, lists the host) and
//! nothing is in flight to it. Until then a host that left the list keeps its state, and if
//! the address comes back it gets that same state: one state per address, never two.
//!
//! Only refresh, `set_down` and stats touch the registry, always under the pool's registry
//! lock; the pick path never does.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};

use crate::host::{Health, HostRef};
use crate::sync::{Arc, Ordering, fence};

/// A set element that hashes and compares as its host's address, so the address is stored
/// once (inside the host) and still serves as the lookup key.
struct Entry(Arc<HostRef>);

impl Borrow<str> for Entry {
    fn borrow(&self) -> &str {
        self.0.addr()
    }
}
impl Hash for Entry {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.addr().hash(state)
    }
}
impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.0.addr() == other.0.addr()
    }
}
impl Eq for Entry {}

/// The set's hasher. Loom replays every execution and requires each to take the same steps,
/// so under loom the sweep's iteration order must not depend on a random seed.
#[cfg(not(loom))]
type EntryHasher = std::collections::hash_map::RandomState;
#[cfg(loom)]
type EntryHasher = std::hash::BuildHasherDefault<std::collections::hash_map::DefaultHasher>;

#[derive(Default)]
pub(crate) struct Registry {
    hosts: HashSet<Entry, EntryHasher>,
}

impl Registry {
    /// The state for `addr`, created on first sight.
    pub(crate) fn get_or_create(&mut self, addr: &str, health: &std::sync::Arc<Health>) -> Arc<HostRef> {
        if let Some(e) = self.hosts.get(addr) {
            return Arc::clone(&e.0);
        }
        let host = Arc::new(HostRef::new(addr, health));
        self.hosts.insert(Entry(Arc::clone(&host)));
        host
    }

    pub(crate) fn get(&self, addr: &str) -> Option<&Arc<HostRef>> {
        self.hosts.get(addr).map(|e| &e.0)
    }

    /// Reclaims the state of every host that no snapshot lists and nothing is in flight to.
    /// Returns how many were reclaimed.
    pub(crate) fn sweep(&mut self) -> usize {
        let before = self.hosts.len();
        self.hosts.retain(|e| {
            // Widen the completed count now: a host that stays may not be asked for stats
            // before its 31-bit field wraps.
            e.0.fold_picks();
            if Arc::strong_count(&e.0) != 1 {
                return true;
            }
            // Acquire (fence after the count read): synchronises with the Release decrement
            // of the last snapshot that dropped its reference, so every pick made through
            // that snapshot is visible to the in-flight load below.
            fence(Ordering::Acquire);
            // Acquire: pairs with the Release RMW of the last release.
            let idle = e.0.state().word.load(Ordering::Acquire) & crate::host::INFLIGHT_MASK == 0;
            !idle
        });
        before - self.hosts.len()
    }

    /// Number of host states alive in the registry.
    pub(crate) fn len(&self) -> usize {
        self.hosts.len()
    }
}
