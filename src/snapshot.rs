//! The immutable upstream list one refresh produced, as the pick path reads it.
//!
//! A snapshot is built under the registry lock from the merged, validated list, then
//! published through an `ArcSwap` (see `pool.rs`). It is never mutated afterwards: picks
//! read it without any lock, and a refresh replaces it wholesale.
//!
//! Entries are stored grouped by tier (stable, so list order is kept inside each tier),
//! which lets a pick scan the primary tier first and stop there when a host is available.

use std::ptr::NonNull;

use crate::host::{Host, HostBox, HostRef, HostState};
use crate::sync::Arc;
use crate::upstream::Upstream;

/// One list entry as the pick path needs it: 32 bytes (checked below), the host's state and
/// handle pointers, its limits and its zone slot. The scan reads `state` only: one dependent
/// load per host; a zone pick's attribution reads `slot` here, not in the `Host` block.
pub(crate) struct Entry {
    /// The host's state words (`host.state()`), kept alive with the host.
    state: NonNull<HostState>,
    /// Kept alive by `Snapshot::_keep`.
    host: NonNull<HostBox>,
    pub(crate) weight: u32,
    /// `max_requests`, or [`MAX_REQUESTS_LIMIT`](crate::MAX_REQUESTS_LIMIT) when unlimited.
    pub(crate) limit: u32,
    /// Position in the merged list (what the integrator sees as the pick's index).
    pub(crate) index: u32,
    /// The host's zone slot (`Host::slot`: `u32::MAX` for a heap host), where a zone pick
    /// attributes its reservation (docs/design-zone.md 3.4: the tier moved to
    /// `Snapshot::tier_of` to make room, so a pick loads nothing from the `Host` block).
    pub(crate) slot: u32,
}

// Two entries per 64-byte cache line; the zone step must not grow it (docs/design-zone.md, 1.1).
const _: () = assert!(std::mem::size_of::<Entry>() == 32);

impl Entry {
    /// The host's state words, as the scan reads them.
    #[inline(always)]
    pub(crate) fn state(&self) -> &HostState {
        // SAFETY: `state` points into the host (or what it owns), which the snapshot owning
        // this entry keeps alive (`Snapshot::_keep`); entries are only reachable through it.
        unsafe { self.state.as_ref() }
    }

    #[inline(always)]
    pub(crate) fn host(&self) -> &Host {
        // SAFETY: the snapshot that owns this entry holds a structural reference to the host
        // (`Snapshot::_keep`), and entries are only reachable through their snapshot.
        unsafe { self.host.as_ref() }
    }

    pub(crate) fn host_ptr(&self) -> NonNull<HostBox> {
        self.host
    }

    /// `max_requests` as configured: 0 when unlimited.
    pub(crate) fn max_requests(&self) -> u32 {
        if self.limit == crate::MAX_REQUESTS_LIMIT { 0 } else { self.limit }
    }
}

/// The published list.
pub(crate) struct Snapshot {
    /// Sorted by (tier, index).
    pub(crate) entries: Box<[Entry]>,
    /// `(start, end)` into `entries` for each tier present, lowest tier first.
    pub(crate) tiers: Box<[(u32, u32)]>,
    /// All weights equal: least_conn compares counts directly and ties are uniform.
    pub(crate) uniform: bool,
    /// For each entry, the sum of weights of its tier up to and including it (weighted p2c).
    pub(crate) cum_weight: Box<[u64]>,
    /// The integrator's tag of each entry (parallel to `entries`, read once per pick).
    pub(crate) tags: Box<[usize]>,
    /// The tier of each entry (parallel to `entries`; never read by a pick, which walks
    /// `tiers`).
    pub(crate) tier_of: Box<[u32]>,
    /// Structural references keeping every listed host alive while this snapshot lives.
    _keep: Box<[Arc<HostRef>]>,
    /// Counts refreshes; 0 for the empty snapshot a pool starts with.
    pub(crate) generation: u64,
}

// SAFETY: the raw host pointers are kept valid by `keep`, and `Host` is only used through
// atomics and immutable fields.
unsafe impl Send for Snapshot {}
// SAFETY: as above.
unsafe impl Sync for Snapshot {}

impl Snapshot {
    pub(crate) fn empty() -> Self {
        Self::build(Vec::new(), 0)
    }

    /// Builds a snapshot from `(spec, host state)` pairs in merged-list order.
    pub(crate) fn build(list: Vec<(Upstream, Arc<HostRef>)>, generation: u64) -> Self {
        let mut order: Vec<usize> = (0..list.len()).collect();
        order.sort_by_key(|&i| (list[i].0.tier, i));
        let mut entries = Vec::with_capacity(list.len());
        let mut keep = Vec::with_capacity(list.len());
        let mut tiers: Vec<(u32, u32)> = Vec::new();
        let mut cum_weight = Vec::with_capacity(list.len());
        let mut tags = Vec::with_capacity(list.len());
        let mut tier_of: Vec<u32> = Vec::with_capacity(list.len());
        let uniform = list.windows(2).all(|w| w[0].0.weight == w[1].0.weight);
        for (pos, &i) in order.iter().enumerate() {
            let (spec, host) = &list[i];
            let pos = pos as u32;
            match tiers.last_mut() {
                Some((_, end)) if tier_of.last() == Some(&spec.tier) => *end = pos + 1,
                _ => tiers.push((pos, pos + 1)),
            }
            let base = if tiers.last().is_some_and(|t| t.0 == pos) { 0 } else { *cum_weight.last().unwrap_or(&0) };
            cum_weight.push(base + u64::from(spec.weight));
            entries.push(Entry {
                state: host.state_ptr(),
                host: host.ptr(),
                weight: spec.weight,
                limit: spec.limit(),
                index: i as u32,
                slot: host.slot(),
            });
            tags.push(spec.tag);
            tier_of.push(spec.tier);
            keep.push(Arc::clone(host));
        }
        Snapshot {
            entries: entries.into_boxed_slice(),
            tiers: tiers.into_boxed_slice(),
            uniform,
            cum_weight: cum_weight.into_boxed_slice(),
            tags: tags.into_boxed_slice(),
            tier_of: tier_of.into_boxed_slice(),
            _keep: keep.into_boxed_slice(),
            generation,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The entries in merged-list order (they are stored grouped by tier), with their tags and
    /// tiers.
    pub(crate) fn in_list_order(&self) -> Vec<(&Entry, usize, u32)> {
        let mut list: Vec<(&Entry, usize, u32)> = (self.entries.iter().zip(self.tags.iter().copied()))
            .zip(self.tier_of.iter().copied())
            .map(|((e, tag), tier)| (e, tag, tier))
            .collect();
        list.sort_by_key(|(e, _, _)| e.index);
        list
    }
}
