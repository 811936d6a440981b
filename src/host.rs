//! Per-host state: the in-flight counter, passive-failure window and down flag.
//!
//! # The state word
//!
//! Everything a pick needs to know about a host sits in one 64-bit atomic, `word`, so that
//! the scan reads one value per host and the reservation is a single RMW on it:
//!
//! ```text
//!  63                  33  32       31     30      29      28                    0
//! +----------------------+--------+------+-------+-------+-----------------------+
//! | completed (mod 2^31) | RETIRED| DOWN |SUSPECT| GUARD |  in-flight (29 bits)  |
//! +----------------------+--------+------+-------+-------+-----------------------+
//! ```
//!
//! * **GUARD** is set in every valid state (the word starts as `GUARD`): bits 0..=29 hold
//!   `GUARD + in-flight`, a biased count. A release that finds nothing in flight borrows
//!   GUARD and stops there, never in the flag bits (see `release`).
//! * **reserve** is `fetch_add(1)`; it succeeded iff the previous in-flight count was below
//!   the entry's limit and DOWN was clear, otherwise it is undone with `fetch_sub(1)`.
//! * **release** is one `fetch_add(2^33 - 1)`: it subtracts one from in-flight and, through
//!   the carry out of bit 32, adds one to `completed`. When the previous biased count shows
//!   nothing in flight (a release without a reservation: a caller's bug), it is undone with
//!   one `fetch_sub(2^33 - 1)` and refused. Total picks are `completed + in-flight`; the
//!   31-bit `completed` field is widened to 64 bits by [`HostState::fold_picks`], a
//!   lock-free CAS on the 64-bit total.
//! * **SUSPECT** says "this host had enough recent failures to be unavailable until the end
//!   of its failure window". A pick reads the clock only for hosts with SUSPECT set.
//! * **RETIRED** is set once no snapshot and no registry entry refers to the host any more.
//!   From then on the in-flight count is the host's only reference count: whoever brings
//!   the word to `RETIRED | GUARD | 0 in flight` (the retirer, the last release, or the undo
//!   of a refused release) frees it, exactly once. That is how a release after removal, or
//!   after the whole pool was dropped, lands on the host it reserved, and how a removed host
//!   is reclaimed after its last release.
//!
//! The in-flight field is 29 bits; limits are capped at [`MAX_REQUESTS_LIMIT`] (2^28), so the
//! transient overshoot of concurrent optimistic adds (at most one per thread) can never carry
//! out of it, and `GUARD + in-flight` never reaches SUSPECT.

use std::ffi::CStr;
use std::ptr::NonNull;

use crate::MAX_FAILS_LIMIT;
use crate::clock::Clock;
use std::sync::atomic::compiler_fence;

use crate::sync::{Arc, AtomicU64, CachePadded, Ordering, fence};
use crate::zone::{Attribution, SlotRef, ZoneInner, window, with_thread_attribution};

pub(crate) const INFLIGHT_MASK: u64 = (1 << 29) - 1;
/// The bias of the in-flight count: set in every valid state (see the module docs).
pub(crate) const GUARD: u64 = 1 << 29;
/// The biased count, `GUARD + in-flight`.
const COUNT_MASK: u64 = GUARD | INFLIGHT_MASK;
pub(crate) const SUSPECT: u64 = 1 << 30;
pub(crate) const DOWN: u64 = 1 << 31;
pub(crate) const RETIRED: u64 = 1 << 32;
/// In-flight count and both availability flags: a host whose `word & LOAD_MASK` is not below
/// its limit needs no further look (it is full, down, or needs the clock).
pub(crate) const LOAD_MASK: u64 = INFLIGHT_MASK | SUSPECT | DOWN;
const COMPLETED_SHIFT: u32 = 33;
/// The `completed` field, once shifted down.
const COMPLETED_MASK: u64 = (1 << (64 - COMPLETED_SHIFT)) - 1;
/// The largest backward step of `completed` that [`HostState::fold_picks`] reads as one.
const MAX_STEP_BACK: u64 = 1 << 16;
/// `- 1 in flight, + 1 completed`, in one addition.
const RELEASE_DELTA: u64 = (1 << COMPLETED_SHIFT) - 1;

/// The in-flight count a word shows: 0 while a refused release has borrowed GUARD.
pub(crate) fn in_flight_of(word: u64) -> u64 {
    if word & GUARD == 0 { 0 } else { word & INFLIGHT_MASK }
}

/// The largest `max_requests` accepted, and the implicit limit of an unlimited host (2^28).
pub const MAX_REQUESTS_LIMIT: u32 = 1 << 28;

/// Identifies one host state for the lifetime of the process (never reused).
///
/// Used to exclude hosts already tried for a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(transparent)]
pub struct HostId(pub u64);

/// Passive health parameters shared by every host of a pool.
#[derive(Debug)]
pub(crate) struct Health {
    /// Failures inside `fail_ns` that make a host unavailable; 0 disables passive health.
    pub(crate) max_fails: u32,
    pub(crate) fail_ns: u64,
    pub(crate) clock: Clock,
    /// On a zone pool with the system clock: the zone header's clock base (see
    /// [`Health::now_ns`]).
    pub(crate) zone_clock: Option<u64>,
    #[cfg(loom)]
    pub(crate) census: std::sync::Arc<HostCensus>,
}

impl Health {
    /// The pool's time: its clock's, or on a zone pool with the system clock,
    /// `CLOCK_MONOTONIC` minus the zone's clock base plus 1, so that failure timestamps agree
    /// across the processes of the zone (docs/design-zone.md 1.1, "Clock"). Never 0.
    pub(crate) fn now_ns(&self) -> u64 {
        match (self.zone_clock, &self.clock) {
            (Some(base), Clock::System) => crate::clock::monotonic_ns().saturating_sub(base).saturating_add(1),
            _ => self.clock.now_ns(),
        }
    }
}

/// Loom builds only: counts the pool's host states allocated and freed, so that the loom
/// models can check that every host is reclaimed exactly once. Plain std atomics: loom runs
/// one thread at a time, and these must not add interleavings of their own.
#[cfg(loom)]
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct HostCensus {
    allocated: std::sync::atomic::AtomicUsize,
    freed: std::sync::atomic::AtomicUsize,
}

#[cfg(loom)]
impl HostCensus {
    /// Host states allocated so far.
    pub fn allocated(&self) -> usize {
        self.allocated.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Host states freed so far.
    pub fn freed(&self) -> usize {
        self.freed.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The shared part of a host's state: three consecutive `AtomicU64`s, so that a later step
/// can view three words of a zone slot as one `HostState` (docs/design-zone.md, 1.1). Holds
/// the per-host operations; the failure ring is passed in ([`Window`]), not owned, so that it
/// can live elsewhere (a heap box today, a zone slot later).
#[repr(C)]
pub(crate) struct HostState {
    /// The state word (see the module docs).
    pub(crate) word: AtomicU64,
    /// The failure ticket: failures ever recorded (a ring slot is `ticket % ring.len()`).
    fail_next: AtomicU64,
    /// Widened `completed` total; its low 31 bits equal the word's `completed` field as of
    /// the last [`HostState::fold_picks`].
    picks: AtomicU64,
}

/// A host's failure ring and how a pool reads it: the last `ring.len()` failure times (0 =
/// empty slot, each slot only grows), of which the `m` newest decide (`m <= ring.len()`).
#[derive(Clone, Copy)]
pub(crate) struct Window<'a> {
    pub(crate) ring: &'a [AtomicU64],
    /// The pool's `max_fails`; 0 disables passive health.
    pub(crate) m: usize,
    pub(crate) fail_ns: u64,
}

impl Window<'_> {
    /// The end of the current failure window: the `m`-th newest failure plus `fail_ns` (while
    /// it is inside the window, so are the `m - 1` newer ones); 0 while fewer than `m` failures
    /// were ever recorded (an empty slot among the `m` newest). For `m == ring.len()` that is
    /// the oldest slot. Only ever moves forward: the `m`-th largest of the slots grows with
    /// each of them, which is what the re-checks of CONCURRENCY.md protocol 4 rely on.
    pub(crate) fn deadline(&self) -> u64 {
        let newest_m = if self.m == 0 {
            0
        } else if self.m == self.ring.len() {
            // Acquire: pairs with the Release slot updates.
            self.ring.iter().map(|s| s.load(Ordering::Acquire)).min().unwrap_or(0)
        } else {
            debug_assert!(self.m < self.ring.len(), "m = {} above the ring size {}", self.m, self.ring.len());
            // A stack copy (cold path, no allocation), then an in-place selection.
            let mut times = [0u64; MAX_FAILS_LIMIT as usize];
            let times = &mut times[..self.ring.len()];
            for (t, s) in times.iter_mut().zip(self.ring) {
                // Acquire: pairs with the Release slot updates.
                *t = s.load(Ordering::Acquire);
            }
            *times.select_nth_unstable_by(self.m - 1, |a, b| b.cmp(a)).1
        };
        if newest_m == 0 { 0 } else { newest_m.saturating_add(self.fail_ns) }
    }

    /// Failures inside the window ending at `now`, at most `m`.
    fn recent(&self, now: u64) -> u32 {
        let since = now.saturating_sub(self.fail_ns);
        // Relaxed: a statistic.
        let n = self.ring.iter().filter(|s| s.load(Ordering::Relaxed) > since).count();
        n.min(self.m) as u32
    }

    /// Has any failure ever been recorded?
    fn any(&self) -> bool {
        // Relaxed: a statistic.
        self.ring.iter().any(|s| s.load(Ordering::Relaxed) != 0)
    }
}

impl HostState {
    fn new() -> Self {
        Self { word: AtomicU64::new(GUARD), fail_next: AtomicU64::new(0), picks: AtomicU64::new(0) }
    }

    /// In-flight requests right now.
    pub(crate) fn in_flight(&self) -> u32 {
        // Relaxed: a statistic; no data is read on the strength of it.
        in_flight_of(self.word.load(Ordering::Relaxed)) as u32
    }

    pub(crate) fn is_down(&self) -> bool {
        // Relaxed: a statistic.
        self.word.load(Ordering::Relaxed) & DOWN != 0
    }

    /// Sets or clears the operator's down flag. A pick whose reservation RMW comes after this
    /// one in the word's modification order sees it and backs off.
    pub(crate) fn set_down(&self, down: bool) {
        // Relaxed: the flag lives in the word itself, whose RMWs are totally ordered; no
        // other memory is published with it.
        if down {
            self.word.fetch_or(DOWN, Ordering::Relaxed);
        } else {
            self.word.fetch_and(!DOWN, Ordering::Relaxed);
        }
    }

    /// One reservation attempt against `limit` (1..=MAX_REQUESTS_LIMIT): optimistic add, undo
    /// on overflow. Exactly one RMW when it succeeds, two when it fails. Never loops.
    ///
    /// The caller must hold a snapshot that lists this host (so it cannot be retired).
    #[cfg(test)]
    pub(crate) fn try_reserve(&self, limit: u64) -> bool {
        self.try_reserve_in(limit, None)
    }

    /// [`HostState::try_reserve`] with the attribution of a zone pool (`Some((record, slot))`:
    /// intent before the add, docs/design-zone.md 3.4) or none (heap pools: one predictable
    /// branch more).
    #[inline(always)]
    pub(crate) fn try_reserve_in(&self, limit: u64, at: Option<(&Attribution<'_>, u32)>) -> bool {
        if let Some((a, slot)) = at {
            a.open(window::PICK, slot);
            crash_point!(PICK_OPENED);
            a.add(slot, 1);
            crash_point!(PICK_INTENT);
        }
        // Release (was Relaxed; the same `lock xadd` on x86-64): the RMW's place in the word's
        // modification order is what makes the limit exact, and Release makes a reader that
        // observes this add (a zone reconcile, design 4.4) also observe the window word and
        // intent stored before it. The host's immutable fields were published by the
        // snapshot's Acquire load.
        let prev = self.word.fetch_add(1, Ordering::Release);
        if prev & INFLIGHT_MASK < limit && prev & DOWN == 0 {
            if let Some((a, _)) = at {
                crash_point!(PICK_RESERVED);
                compiler_fence(std::sync::atomic::Ordering::SeqCst);
                a.close();
                crash_point!(PICK_CLOSED);
            }
            return true;
        }
        crash_point!(PICK_REFUSED);
        // Relaxed: undoing our own increment; the host is listed by our snapshot, so this
        // can never be the decrement that frees it.
        self.word.fetch_sub(1, Ordering::Relaxed);
        if let Some((a, slot)) = at {
            crash_point!(PICK_UNDONE);
            compiler_fence(std::sync::atomic::Ordering::SeqCst);
            a.add(slot, u64::MAX);
            crash_point!(PICK_UNINTENT);
            a.close();
            crash_point!(PICK_REFUSED_CLOSED);
        }
        false
    }

    /// The release's word update: one RMW, `- 1 in flight, + 1 completed`. Returns the
    /// previous word, from which `Host::release` decides whether it was refused or frees.
    #[inline]
    pub(crate) fn release_word(&self) -> u64 {
        // Release: everything we did with the host happens-before its free by whoever frees.
        self.word.fetch_add(RELEASE_DELTA, Ordering::Release)
    }

    /// Undoes the word update of a refused release (see `Host::release`). Returns the
    /// previous word.
    #[cold]
    pub(crate) fn undo_release(&self) -> u64 {
        // AcqRel: Release so that a later freer sees our accesses; Acquire so that, if our
        // undo is the step that reaches `RETIRED | GUARD | 0`, we see every other user's.
        self.word.fetch_sub(RELEASE_DELTA, Ordering::AcqRel)
    }

    /// Is the host outside its failure window at `now`? Called only when SUSPECT is set.
    ///
    /// Clears SUSPECT when the window has expired, then re-checks the deadline so that a
    /// failure recorded concurrently is never lost (see CONCURRENCY.md, "failure window").
    #[cold]
    pub(crate) fn healthy_at(&self, w: Window<'_>, now: u64) -> bool {
        if now < w.deadline() {
            return false;
        }
        // AcqRel: if this clears a SUSPECT set by a concurrent `record_failure`, we
        // synchronise with its Release `fetch_or` and the re-read below sees its slot.
        self.word.fetch_and(!SUSPECT, Ordering::AcqRel);
        if now < w.deadline() {
            // Release: pairs with the AcqRel `fetch_and` of the next picker, as above.
            self.word.fetch_or(SUSPECT, Ordering::Release);
            return false;
        }
        true
    }

    /// Records one failed request at the time `clock` returns.
    ///
    /// The ticket comes before the clock read (so `clock` is a function, not a time), and the
    /// slot only ever moves forward in time (a CAS that never writes an older value), so a
    /// thread descheduled anywhere in here can never replace a newer timestamp with its older
    /// one (CONCURRENCY.md, "failure window").
    pub(crate) fn record_failure(&self, w: Window<'_>, clock: impl FnOnce() -> u64) {
        if w.m == 0 {
            return;
        }
        // Relaxed: only spreads writers over the slots; the slot's CAS decides.
        let ticket = self.fail_next.fetch_add(1, Ordering::Relaxed);
        let now = clock();
        let slot = &w.ring[(ticket % w.ring.len() as u64) as usize];
        // Relaxed: only the starting guess; the CAS decides, and a slot already at or past
        // `now` keeps its newer failure (ours would be the older one the ring drops).
        let mut seen = slot.load(Ordering::Relaxed);
        // Not `fetch_max`, whose CAS loop on x86-64 retries whenever the slot changed at all:
        // this loop retries only while the slot stays older than `now`, i.e. only when another
        // thread raised it with a clock read older than ours, which each thread can do at most
        // once (its next clock read comes after ours). CONCURRENCY.md, protocol 4, "Steps".
        while seen < now {
            // Release: a reader of this slot that acts on it sees a fully written timestamp.
            // Relaxed on failure: the value seen is only compared with `now`.
            match slot.compare_exchange(seen, now, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => break,
                Err(newer) => seen = newer,
            }
        }
        // SeqCst fence between our slot update and the loads of the other slots: without it,
        // two concurrent failures could each miss the other's update (store buffering) and
        // both conclude "fewer than max_fails", losing the failure that fills the window.
        // With the fences, whichever thread's fence comes second sees both updates.
        fence(Ordering::SeqCst);
        if now < w.deadline() {
            // Release: publishes our slot update to whoever next clears SUSPECT.
            self.word.fetch_or(SUSPECT, Ordering::Release);
        }
    }

    /// Total reservations ever made on this host (completed + in flight), widened to 64 bits.
    ///
    /// Lock-free, for the refresh and stats paths only: any number of threads (later, of
    /// processes) may fold at once. The CAS moves the total by the signed 31-bit difference
    /// between the word's `completed` field and the total's low 31 bits, so each release is
    /// counted by exactly one fold. Exact as long as fewer than 2^31 - 2^16 releases happen
    /// between two folds, which the pool guarantees by folding on every refresh and every
    /// stats read. The loop retries only when another fold moved the total meanwhile.
    pub(crate) fn fold_picks(&self) -> u64 {
        loop {
            // Acquire: pairs with the Release of the CAS that stored `total`, so the word
            // load below reads a value no older than the one that fold read (a stale word
            // would look like a step back, or, further back, like 2^31 releases).
            let total = self.picks.load(Ordering::Acquire);
            // Relaxed: a statistic; ordered after the fold that stored `total` by the above.
            let word = self.word.load(Ordering::Relaxed);
            // A refused release adds one to `completed` and takes it back (see `release`); a
            // fold between the two must see the step back as -1, not as 2^31 - 1 releases.
            // Steps back are at most one per thread inside `refuse_release`, far below
            // `MAX_STEP_BACK`.
            let delta = (word >> COMPLETED_SHIFT).wrapping_sub(total) & COMPLETED_MASK;
            let delta =
                if delta > COMPLETED_MASK - MAX_STEP_BACK { delta.wrapping_sub(COMPLETED_MASK + 1) } else { delta };
            let next = total.wrapping_add(delta);
            // AcqRel: Release publishes our word read to the next fold (see the load above);
            // Acquire on failure as on the load, since the retry starts from the value seen.
            if self.picks.compare_exchange(total, next, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                return next.wrapping_add(in_flight_of(word));
            }
        }
    }
}

/// Where a host's state lives, and who owns its failure ring.
enum Home {
    /// On the heap: `Host::state` points at `Host::inline`, and the ring is ours.
    Heap { _ring: OwnedRing },
    /// In slot `slot` of a zone: `Host::state` and `Host::ring` point into the zone's words,
    /// which the `Arc` keeps mapped as long as the host.
    Zone {
        zone: Arc<ZoneInner>,
        // Read by the zone only (which is off Linux uninhabited).
        #[cfg_attr(not(any(target_os = "linux", loom)), allow(dead_code))]
        slot: SlotRef,
    },
}

/// A heap failure ring, owned through a raw pointer (a `Box` field would be retagged as
/// unique on every move of the host, invalidating `Host::ring` under Miri's aliasing model).
struct OwnedRing(NonNull<[AtomicU64]>);

impl OwnedRing {
    fn new(len: usize) -> Self {
        let ring: Box<[AtomicU64]> = (0..len).map(|_| AtomicU64::new(0)).collect();
        Self(NonNull::from(Box::leak(ring)))
    }
}

impl Drop for OwnedRing {
    fn drop(&mut self) {
        // SAFETY: leaked from a `Box` in `new` and freed only here; its host is being freed,
        // so nothing else refers to it.
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

/// One host as this process sees it. Allocated once per address by the registry, freed by
/// whoever retires it last (see the module docs).
///
/// `repr(C)` keeps the order: the state words and the `state` pointer a release follows open
/// the block (its first 64-byte line, where the word sat before the split), then the fields
/// of the cold paths. Without it the compiler placed `inline` at offset 64.
#[repr(C)]
pub(crate) struct Host {
    /// The state of a heap host (`state` points here).
    inline: HostState,
    /// The state every operation uses; valid as long as the host.
    state: NonNull<HostState>,
    /// The failure ring, `health.max_fails` slots; owned by `home`.
    ring: NonNull<[AtomicU64]>,
    pub(crate) id: HostId,
    /// The zone slot (`u32::MAX` for a heap host): what attribution indexes its row with.
    slot: u32,
    health: std::sync::Arc<Health>,
    /// The dial address followed by a NUL, so C callers can borrow it as a C string.
    addr: Box<[u8]>,
    /// Owns what `state` and `ring` point into, when it is not `inline`.
    _home: Home,
    /// Makes loom report a host that is never freed ("Allocation leaked").
    #[cfg(loom)]
    _track: loom::alloc::Track<()>,
    /// Loom builds only: read by every use of the state pointer ([`Host::state`]) and written
    /// by the free of a zone host, so loom fails a model in which a release's (or any other)
    /// access to a zone host is not ordered before the registry's free (model Z4). Accessing
    /// a loom cell is not a scheduling point: it adds no interleaving.
    #[cfg(loom)]
    access: loom::cell::UnsafeCell<()>,
}

/// The allocation: the state words share one cache-padded block (128 bytes on x86-64) with
/// the fields a pick reads on its cold paths (`id`, `health`, `ring`), which keeps other
/// hosts' counters off this host's cache lines. The rest of the fields are written only on
/// failures or folds, so sharing the block costs nothing.
pub(crate) type HostBox = CachePadded<Host>;

// One padded block per host, as before the split (loom's atomics are larger and do not count).
#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<HostBox>() == std::mem::size_of::<CachePadded<u64>>());

static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl Host {
    /// Allocates a heap host. The caller owns the returned pointer as the host's one
    /// structural reference and must eventually pass it to [`Host::retire`].
    pub(crate) fn alloc(addr: &str, health: &std::sync::Arc<Health>) -> NonNull<HostBox> {
        let mut bytes = Vec::with_capacity(addr.len() + 1);
        bytes.extend_from_slice(addr.as_bytes());
        bytes.push(0);
        let ring = OwnedRing::new(health.max_fails as usize);
        let host = Host {
            inline: HostState::new(),
            // Set below, once the host is at its final address.
            state: NonNull::dangling(),
            ring: ring.0,
            // Relaxed: uniqueness is all we need from the counter.
            id: HostId(NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed)),
            slot: u32::MAX,
            addr: bytes.into_boxed_slice(),
            health: std::sync::Arc::clone(health),
            _home: Home::Heap { _ring: ring },
            #[cfg(loom)]
            _track: loom::alloc::Track::new(()),
            #[cfg(loom)]
            access: loom::cell::UnsafeCell::new(()),
        };
        #[cfg(loom)]
        health.census.allocated.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let boxed = Box::into_raw(Box::new(CachePadded::new(host)));
        // SAFETY: just allocated and not shared yet, so this is the only reference.
        let host: &mut Host = unsafe { &mut *boxed };
        host.state = NonNull::from(&host.inline);
        // SAFETY: `Box::into_raw` never returns null.
        unsafe { NonNull::new_unchecked(boxed) }
    }

    /// Allocates a host whose state is slot `slot` of `zone` (attached by the caller, which
    /// hands that listing to the host: it is detached when the host is freed). Freed by
    /// [`ZoneInner::drop_host`] once its structural reference is gone (see `HostRef`'s `Drop`).
    pub(crate) fn alloc_zone(
        addr: &str,
        health: &std::sync::Arc<Health>,
        zone: &Arc<ZoneInner>,
        slot: SlotRef,
    ) -> NonNull<HostBox> {
        let (words, ring) = zone.slot_words(slot.index);
        debug_assert_eq!(words.len(), 3);
        debug_assert!(health.max_fails as usize <= ring.len());
        // SAFETY (for the two pointers): `HostState` is `repr(C)` with three `AtomicU64`
        // fields, so it has the size, alignment and field offsets of `[AtomicU64; 3]`, which
        // `words` is (three consecutive words of the zone, 8-aligned); the pointer is derived
        // from the whole 3-word slice, so it may access all three. Both stay valid while the
        // mapping does, which the `Arc` in `Home::Zone` keeps for as long as the host lives,
        // and the words are only ever accessed atomically (the zone's contract).
        let state = NonNull::from(words).cast::<HostState>();
        let ring = NonNull::from(ring);
        let mut bytes = Vec::with_capacity(addr.len() + 1);
        bytes.extend_from_slice(addr.as_bytes());
        bytes.push(0);
        let host = Host {
            inline: HostState::new(),
            state,
            ring,
            // Relaxed: uniqueness is all we need from the counter.
            id: HostId(NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed)),
            slot: slot.index,
            addr: bytes.into_boxed_slice(),
            health: std::sync::Arc::clone(health),
            _home: Home::Zone { zone: Arc::clone(zone), slot },
            #[cfg(loom)]
            _track: loom::alloc::Track::new(()),
            #[cfg(loom)]
            access: loom::cell::UnsafeCell::new(()),
        };
        #[cfg(loom)]
        health.census.allocated.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let boxed = Box::into_raw(Box::new(CachePadded::new(host)));
        // SAFETY: `Box::into_raw` never returns null.
        unsafe { NonNull::new_unchecked(boxed) }
    }

    /// The zone slot of a zone host, `None` for a heap host.
    #[cfg_attr(not(any(target_os = "linux", loom)), allow(dead_code))] // the zone's (see `Home`)
    pub(crate) fn zone_slot(&self) -> Option<SlotRef> {
        match &self._home {
            Home::Heap { .. } => None,
            Home::Zone { slot, .. } => Some(*slot),
        }
    }

    /// The zone of a zone host (a reference into the zone's `Arc` allocation, not the host).
    #[inline(always)]
    pub(crate) fn zone(&self) -> Option<&ZoneInner> {
        match &self._home {
            Home::Heap { .. } => None,
            Home::Zone { zone, .. } => Some(zone),
        }
    }

    /// A handle on the zone of a zone host.
    pub(crate) fn zone_arc(&self) -> Option<Arc<ZoneInner>> {
        match &self._home {
            Home::Heap { .. } => None,
            Home::Zone { zone, .. } => Some(Arc::clone(zone)),
        }
    }

    /// The zone slot index (`u32::MAX` for a heap host).
    #[inline(always)]
    pub(crate) fn slot(&self) -> u32 {
        self.slot
    }

    /// The host's state words.
    #[inline(always)]
    pub(crate) fn state(&self) -> &HostState {
        #[cfg(loom)]
        self.access.with(|_| ());
        // SAFETY: `state` points at `inline` or into what `_home` owns, both alive as long
        // as `self`.
        unsafe { self.state.as_ref() }
    }

    /// The pointer a snapshot entry keeps next to the host's, so the scan reaches the word
    /// with one dependent load.
    pub(crate) fn state_ptr(&self) -> NonNull<HostState> {
        self.state
    }

    fn window(&self) -> Window<'_> {
        // SAFETY: the ring is owned by `_home`, alive as long as `self`.
        let ring = unsafe { self.ring.as_ref() };
        Window { ring, m: self.health.max_fails as usize, fail_ns: self.health.fail_ns }
    }

    pub(crate) fn addr(&self) -> &str {
        // SAFETY: `addr` was built from a `&str` plus one trailing NUL byte.
        unsafe { std::str::from_utf8_unchecked(&self.addr[..self.addr.len() - 1]) }
    }

    pub(crate) fn addr_cstr(&self) -> &CStr {
        debug_assert!(!self.addr[..self.addr.len() - 1].contains(&0));
        // SAFETY: `addr` ends with the NUL pushed in `alloc`, and holds no other: addresses are
        // validated before a host is created, and `validate_address` rejects control
        // characters, NUL among them.
        unsafe { CStr::from_bytes_with_nul_unchecked(&self.addr) }
    }

    /// The pool clock's current time (see [`Clock`]).
    pub(crate) fn clock_now(&self) -> u64 {
        self.health.now_ns()
    }

    /// In-flight requests right now.
    pub(crate) fn in_flight(&self) -> u32 {
        self.state().in_flight()
    }

    pub(crate) fn is_down(&self) -> bool {
        self.state().is_down()
    }

    /// See [`HostState::set_down`].
    pub(crate) fn set_down(&self, down: bool) {
        self.state().set_down(down);
    }

    /// See [`HostState::healthy_at`].
    #[cold]
    pub(crate) fn healthy_at(&self, now: u64) -> bool {
        self.state().healthy_at(self.window(), now)
    }

    /// Records one failed request at the current time (see [`HostState::record_failure`]).
    pub(crate) fn record_failure(&self) {
        self.state().record_failure(self.window(), || self.health.now_ns());
    }

    /// Failures inside the window ending now (reads the clock only if there ever was one).
    pub(crate) fn recent_failures(&self) -> u32 {
        let w = self.window();
        if !w.any() {
            return 0;
        }
        w.recent(self.health.now_ns())
    }

    /// Is the host currently inside its failure window?
    pub(crate) fn is_unhealthy(&self) -> bool {
        // Relaxed: a statistic.
        if self.state().word.load(Ordering::Relaxed) & SUSPECT == 0 {
            return false;
        }
        self.health.now_ns() < self.window().deadline()
    }

    /// See [`HostState::fold_picks`].
    pub(crate) fn fold_picks(&self) -> u64 {
        self.state().fold_picks()
    }

    /// Ends one reservation of `host`, possibly the last reference to it. Returns false, and
    /// changes nothing once it returns, when the host had nothing in flight: a release without
    /// a reservation (in the C ABI, a copied `lc_pick` released twice). Wait-free: one RMW,
    /// two when refused.
    ///
    /// # Safety
    /// `host` carries a reservation made by a successful [`Host::try_reserve`] that has not
    /// been released yet, which is consumed. A release without one (only the C ABI can make
    /// it: a copied pick that no check can catch) is refused here provided the host stays
    /// allocated until this returns; CONCURRENCY.md ("refused releases") says when it does
    /// and what concurrent operations may see meanwhile.
    pub(crate) unsafe fn release(host: NonNull<HostBox>, failed: bool) -> bool {
        // SAFETY: our reservation keeps the host allocated (as in `release_in`).
        let h = unsafe { host.as_ref() };
        match h.zone() {
            // SAFETY: the caller's contract.
            None => unsafe { Self::release_in(host, failed, None) },
            // The zone reference points into the zone's `Arc` allocation, not into the host,
            // and the thread's record keeps that alive (see `with_thread_attribution`).
            // SAFETY: the caller's contract.
            Some(zone) => with_thread_attribution(zone, |at| unsafe { Self::release_in(host, failed, at) }),
        }
    }

    /// [`Host::release`] with the attribution `at` of a zone host (design 3.4), or none.
    ///
    /// # Safety
    /// As [`Host::release`].
    #[inline(always)]
    pub(crate) unsafe fn release_in(host: NonNull<HostBox>, failed: bool, at: Option<&Attribution<'_>>) -> bool {
        // SAFETY: our reservation keeps the in-flight count >= 1, so the host is not freed
        // (without one, the caller's contract above). A zone host is freed only by the registry
        // of its pool once this process's attribution sum on its slot is 0, i.e. after our
        // `A[s] -= 1` below, the last step that reads the host.
        let h = unsafe { host.as_ref() };
        let slot = h.slot;
        if let Some(a) = at {
            a.open(window::RELEASE, slot);
            crash_point!(RELEASE_OPENED);
        }
        if failed {
            // A release with nothing in flight must not record a failure either, and the
            // failure must be recorded while our reservation still keeps the host alive: so
            // look first. Relaxed: only decides whether to refuse early; the RMW below checks
            // again (only a release racing the host's last one gets past this and records).
            let word = h.state().word.load(Ordering::Relaxed);
            if word & COUNT_MASK <= GUARD {
                log_refused(h);
                if let Some(a) = at {
                    a.close();
                }
                return false;
            }
            h.record_failure();
            crash_point!(RELEASE_FAILURE_RECORDED);
        }
        let prev = h.state().release_word();
        if prev & COUNT_MASK <= GUARD {
            let refused = Self::refuse_release(host, prev);
            if let Some(a) = at {
                a.close();
            }
            return refused;
        }
        if let Some(a) = at {
            // A zone word is never RETIRED: the registry frees the host (design 3.5), so this
            // store is our last access to it.
            crash_point!(RELEASE_ADDED);
            compiler_fence(std::sync::atomic::Ordering::SeqCst);
            a.add(slot, u64::MAX);
            crash_point!(RELEASE_SUBTRACTED);
            a.close();
            crash_point!(RELEASE_CLOSED);
            return true;
        }
        if prev & (RETIRED | COUNT_MASK) == RETIRED | GUARD | 1 {
            // Acquire: see every other user's accesses (their Release RMWs) before freeing.
            fence(Ordering::Acquire);
            // SAFETY: retired with no reservation left: no one else can reach the host.
            drop(unsafe { Box::from_raw(host.as_ptr()) });
        }
        true
    }

    /// The release whose `fetch_add` returned `prev` found nothing in flight (the biased
    /// count was `GUARD + 0`, or below it while another refused release is between its two
    /// RMWs): the borrow stopped at GUARD, so one `fetch_sub` restores every bit.
    #[cold]
    fn refuse_release(host: NonNull<HostBox>, prev: u64) -> bool {
        // SAFETY: the host is allocated until we return (the contract of `release`). Our
        // `fetch_add` took the count below its true value, so no release or retire frees the
        // host on our account: only our undo restores it.
        let h = unsafe { host.as_ref() };
        log_refused(h);
        let undo = h.state().undo_release();
        debug_assert!(prev & COUNT_MASK <= GUARD);
        if undo & (RETIRED | COUNT_MASK) == RETIRED | (GUARD - 1) {
            // SAFETY: retired, and our undo brought the count back to 0: no one else is left.
            drop(unsafe { Box::from_raw(host.as_ptr()) });
        }
        false
    }

    /// Drops the structural reference: no snapshot or registry entry refers to the host any
    /// more. Frees it now if nothing is in flight, otherwise the last release will.
    ///
    /// # Safety
    /// Called exactly once per host, by the owner of the structural reference.
    pub(crate) unsafe fn retire(host: NonNull<HostBox>) {
        // SAFETY: the structural reference we are giving up keeps the host alive until here.
        let h = unsafe { host.as_ref() };
        // AcqRel: Release so the last releaser (which fences Acquire) sees our accesses;
        // Acquire so that, if we free, we see every releaser's.
        let prev = h.state().word.fetch_or(RETIRED, Ordering::AcqRel);
        debug_assert!(prev & RETIRED == 0, "host retired twice");
        if prev & COUNT_MASK == GUARD {
            // SAFETY: no reservation and no structural reference: we are the only one left.
            drop(unsafe { Box::from_raw(host.as_ptr()) });
        }
    }
}

#[cold]
fn log_refused(h: &Host) {
    log::error!(
        "release of {} refused: it had nothing in flight (a copied lc_pick released twice?); no counter changed",
        h.addr()
    );
}

/// Under loom, freeing a host checks the reclamation protocol's promises: `with_mut` makes
/// loom verify that every access to the word happens-before the free (no use after free), and
/// the word must say "retired, nothing in flight" (freed once, after the last release).
#[cfg(loom)]
impl Drop for Host {
    fn drop(&mut self) {
        if let Home::Zone { .. } = self._home {
            // Freed by the registry, never RETIRED (design 3.5): loom fails the model unless
            // every use of the state pointer happens-before this write (model Z4).
            self.access.with_mut(|_| ());
            self.health.census.freed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            return;
        }
        let word = self.inline.word.with_mut(|w| *w);
        assert_eq!(word & COUNT_MASK, GUARD, "host {} freed with requests in flight", self.addr());
        assert_ne!(word & RETIRED, 0, "host {} freed before it was retired", self.addr());
        self.health.census.freed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The structural reference to a host: held (behind an `Arc`) by the registry and by every
/// snapshot that lists the host. Dropping the last one retires the host.
pub(crate) struct HostRef(NonNull<HostBox>);

// SAFETY: `Host` is only accessed through atomics and immutable fields; the pointer stays
// valid while this reference exists (the host is retired only in our `Drop`).
unsafe impl Send for HostRef {}
// SAFETY: as above; `&HostRef` only hands out `&Host`.
unsafe impl Sync for HostRef {}

impl HostRef {
    pub(crate) fn new(addr: &str, health: &std::sync::Arc<Health>) -> Self {
        Self(Host::alloc(addr, health))
    }

    /// A zone host on `slot` of `zone` (see [`Host::alloc_zone`]).
    pub(crate) fn new_zone(addr: &str, health: &std::sync::Arc<Health>, zone: &Arc<ZoneInner>, slot: SlotRef) -> Self {
        Self(Host::alloc_zone(addr, health, zone, slot))
    }

    pub(crate) fn ptr(&self) -> NonNull<HostBox> {
        self.0
    }
}

impl std::ops::Deref for HostRef {
    type Target = Host;
    fn deref(&self) -> &Host {
        // SAFETY: the host is alive while its structural reference is (see `Drop`).
        unsafe { self.0.as_ref() }
    }
}

impl Drop for HostRef {
    fn drop(&mut self) {
        // SAFETY: the structural reference keeps the host alive until here.
        if let Some(zone) = unsafe { self.0.as_ref() }.zone_arc() {
            // Zone words never get RETIRED (it would be one process's bit in a shared word):
            // the zone frees the host once this process has nothing in flight on its slot.
            // SAFETY: a zone host, whose unique structural reference this was.
            unsafe { zone.drop_host(self.0) };
            return;
        }
        // SAFETY: each `HostRef` is the unique structural reference of its host and is
        // dropped once.
        unsafe { Host::retire(self.0) }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn host(max_fails: u32) -> HostRef {
        let health =
            std::sync::Arc::new(Health { max_fails, fail_ns: 10_000_000_000, clock: Clock::System, zone_clock: None });
        HostRef::new("192.0.2.15:80", &health)
    }

    /// A release with nothing in flight (a copied pick released twice) used to borrow from
    /// the flag bits: 536870911 in flight, DOWN, SUSPECT and RETIRED set.
    #[test]
    fn release_with_nothing_in_flight_is_refused_and_changes_no_bit() {
        let h = host(1);
        for (down, failed) in [(false, false), (true, false), (false, true), (true, true)] {
            assert!(h.state().try_reserve(1));
            h.set_down(down);
            // SAFETY: the reservation just made; the host is alive (`h`).
            assert!(unsafe { Host::release(h.ptr(), false) });
            let before = h.state().word.load(Ordering::Relaxed);
            // SAFETY: the host is alive; the release has no reservation and must be refused.
            assert!(!unsafe { Host::release(h.ptr(), failed) }, "refused ({down}, {failed})");
            assert_eq!(h.state().word.load(Ordering::Relaxed), before, "no bit changed ({down}, {failed})");
            assert_eq!((h.in_flight(), h.is_down(), h.recent_failures()), (0, down, 0));
            h.set_down(false);
            assert!(h.state().try_reserve(1), "still reservable");
            // SAFETY: as above.
            assert!(unsafe { Host::release(h.ptr(), false) });
        }
    }

    /// A fold that runs while a refused release is between its two RMWs sees `completed` one
    /// higher than it ends; the total must step back, not jump by 2^31 - 1.
    #[test]
    fn fold_during_a_refused_release_stays_exact() {
        let h = host(0);
        assert!(h.state().try_reserve(1));
        // SAFETY: the reservation just made.
        assert!(unsafe { Host::release(h.ptr(), false) });
        assert_eq!(h.fold_picks(), 1);
        // The refused release's first RMW, then a fold, then its undo.
        let prev = h.state().word.fetch_add(RELEASE_DELTA, Ordering::Relaxed);
        assert_eq!(prev & COUNT_MASK, GUARD);
        assert_eq!((h.in_flight(), h.fold_picks()), (0, 2));
        h.state().word.fetch_sub(RELEASE_DELTA, Ordering::Relaxed);
        assert_eq!((h.in_flight(), h.fold_picks()), (0, 1));
        assert!(h.state().try_reserve(1));
        assert_eq!(h.fold_picks(), 2);
        // SAFETY: the reservation just made.
        assert!(unsafe { Host::release(h.ptr(), false) });
    }

    /// While a refused release has borrowed GUARD, every pick sees the host as full, and a
    /// second refused release is refused too (it must not take a count it cannot see).
    #[test]
    fn refused_releases_stack_without_touching_the_flags() {
        let h = host(0);
        h.set_down(true);
        let start = h.state().word.load(Ordering::Relaxed);
        let first = h.state().word.fetch_add(RELEASE_DELTA, Ordering::Relaxed);
        assert!(!h.state().try_reserve(MAX_REQUESTS_LIMIT as u64), "full while borrowed");
        // SAFETY: the host is alive; nothing is in flight, so this release is refused.
        assert!(!unsafe { Host::release(h.ptr(), false) });
        assert_eq!(h.state().word.load(Ordering::Relaxed) & (SUSPECT | DOWN | RETIRED), DOWN);
        h.state().word.fetch_sub(RELEASE_DELTA, Ordering::Relaxed);
        assert_eq!(first, start);
        assert_eq!(h.state().word.load(Ordering::Relaxed), start);
    }

    /// A ring of r slots read with m < r failures (a zone's ring is sized for the largest
    /// `max_fails` of any pool on it): the window ends `fail_ns` after the m-th newest
    /// failure, not after the oldest slot (which would keep a host out for r - m failures too
    /// long), and the ticket still goes round all r slots.
    #[test]
    fn ring_larger_than_max_fails_uses_the_mth_newest_failure() {
        let ring: Vec<AtomicU64> = (0..4).map(|_| AtomicU64::new(0)).collect();
        let w = Window { ring: &ring, m: 2, fail_ns: 10 };
        let s = HostState::new();
        let suspect = |s: &HostState| s.word.load(Ordering::Relaxed) & SUSPECT != 0;
        s.record_failure(w, || 100);
        assert_eq!((w.deadline(), suspect(&s)), (0, false), "one failure of the 2 needed");
        s.record_failure(w, || 105);
        assert_eq!((w.deadline(), suspect(&s)), (110, true), "the 2nd newest (100) + 10");
        assert!(!s.healthy_at(w, 109));
        assert!(s.healthy_at(w, 110));
        assert!(!suspect(&s), "cleared once the window ended");
        for t in [200, 201, 300] {
            s.record_failure(w, || t);
        }
        let times: Vec<u64> = ring.iter().map(|t| t.load(Ordering::Relaxed)).collect();
        assert_eq!(times, [300, 105, 200, 201], "the fifth failure wrapped round to slot 0");
        assert_eq!(w.deadline(), 211, "the 2nd newest (201) + 10, not the oldest (105) + 10");
        assert!(suspect(&s));
        assert_eq!((w.recent(205), w.recent(305)), (2, 1), "at most m, only those inside the window");
        assert_eq!(Window { m: 4, ..w }.deadline(), 115, "m = r: the oldest, today's rule");
        assert_eq!(Window { m: 1, ..w }.deadline(), 310);
    }
}
