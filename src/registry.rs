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

use crate::error::Error;
use crate::host::{Health, HostRef};
use crate::sync::{Arc, Ordering, fence};
use crate::zone::ZoneInner;

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
    /// A zone pool's zone and name (the namespace of its keys); `None` for a heap pool.
    zone: Option<(Arc<ZoneInner>, String)>,
}

impl Registry {
    /// The registry of a pool whose host states live in slots of `zone`, keyed `name NUL
    /// address`.
    pub(crate) fn in_zone(zone: Arc<ZoneInner>, name: String) -> Self {
        Self { hosts: HashSet::default(), zone: Some((zone, name)) }
    }

    /// The state for `addr`, created on first sight: on the heap, or in the zone's slot for the
    /// key (attached: the process-local lister count goes up, and the zone's listers with it
    /// if no other pool of this process lists the key, docs/design-zone.md 3.2).
    ///
    /// Errors (zone pools only): `ZoneFull`, `ZoneIncompatible` (key too long).
    pub(crate) fn get_or_create(&mut self, addr: &str, health: &std::sync::Arc<Health>) -> Result<Arc<HostRef>, Error> {
        if let Some(e) = self.hosts.get(addr) {
            return Ok(Arc::clone(&e.0));
        }
        let host = match &self.zone {
            None => HostRef::new(addr, health),
            Some((zone, name)) => {
                let slot = zone.attach(name, addr)?;
                HostRef::new_zone(addr, health, zone, slot)
            }
        };
        let host = Arc::new(host);
        self.hosts.insert(Entry(Arc::clone(&host)));
        Ok(host)
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
            if let Some(zone) = e.0.zone() {
                // A zone host: the word counts every process's requests; ours are the sum of
                // our records' rows (Acquire loads, after the fence above), design 3.5.
                return zone.process_in_flight(e.0.slot()) != 0;
            }
            // Acquire: pairs with the Release RMW of the last release.
            let idle = e.0.state().word.load(Ordering::Acquire) & crate::host::INFLIGHT_MASK == 0;
            !idle
        });
        if let Some((zone, _)) = &self.zone {
            zone.maintain();
        }
        before - self.hosts.len()
    }

    /// Number of host states alive in the registry.
    pub(crate) fn len(&self) -> usize {
        self.hosts.len()
    }
}
