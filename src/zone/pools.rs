//! What pools need from a zone, process-locally (docs/design-zone.md, sections 3.2, 3.4, 3.5,
//! 4.1): the process's registration (made by the first zone pool built, and again in a forked
//! child), the process-local lister counts that make several pools of one process on one key
//! count once in the zone, the thread records behind attribution (a thread-local cache, a
//! `Picker`'s own record, and the registration's spare under a mutex), the process's in-flight
//! count on a slot (the sum of its records' attribution rows), and the zone `Host`s that a
//! dropped pool left draining.
//!
//! # Attribution (section 3.4)
//!
//! Each pick and release on a zone host is bracketed by the thread record's window word, and
//! the record's attribution row counts the reservations this record made minus those it
//! released, per slot:
//!
//! ```text
//! pick (reserve on slot s):            release (slot s):
//!   W = (seq, PICK, s)                   W = (seq, RELEASE, s)
//!   A[s] += 1        (intent)            [failure: record_failure]
//!   prev = word.fetch_add(1, Release)    prev = word.fetch_add(2^33 - 1, Release)
//!   fail: word.fetch_sub(1); A[s] -= 1   refused: undo; A unchanged
//!   W = (seq+1, IDLE)                    A[s] -= 1  (Release store)
//!                                        W = (seq+1, IDLE) (Release store)
//! ```
//!
//! with `compiler_fence(SeqCst)` between the steps (a SIGKILL sees program order; the sweep of
//! step S7 reads these words). Only one thread writes a record at a time (its owner thread, the
//! `Picker` that owns it, or whoever holds the spare's mutex), so every `A[s]` update is a load
//! and a plain store, never an RMW.

use std::cell::Cell;
use std::collections::HashMap;
use std::ptr::NonNull;
use std::sync::atomic::compiler_fence;

use super::ZoneInner;
use super::liveness::{Liveness, Verdict};
use super::procs::{self, ListingChange, Registration, window};
use super::slots::{Key, ListingJournal, SlotRef};
use super::sweep::SweepReport;
use crate::error::{Error, ErrorKind};
use crate::host::HostBox;
use crate::sync::{AtomicU64, Mutex, Ordering};

/// The process-local half of a zone (one per `ZoneInner`, i.e. per attachment).
#[derive(Default)]
pub(crate) struct ZoneLocal {
    local: Mutex<Local>,
    /// The spare record's sequence number; holding the lock is owning the spare record.
    spare: Mutex<u32>,
    /// Zone `Host`s whose last structural reference went while this process still had
    /// requests in flight on their slot; freed by [`ZoneInner::maintain`].
    draining: Mutex<Vec<Draining>>,
}

#[derive(Default)]
struct Local {
    reg: Option<Registration>,
    /// Key (`name NUL address`) -> its slot, for keys this process lists.
    by_key: HashMap<String, SlotRef>,
    /// Slot -> (key, pools of this process that list it).
    by_slot: HashMap<u32, (String, u32)>,
    /// Thread records this registration owns and no thread or picker uses now (their rows
    /// may be non-zero: a reservation picked through one record and released through another).
    free_records: Vec<u32>,
}

/// A zone host waiting for this process's last release on its slot.
struct Draining(NonNull<HostBox>);

// SAFETY: the pointer is the host's one remaining owner (moved here from its structural
// reference); the host is freed only by `maintain`, under the draining lock.
unsafe impl Send for Draining {}

/// Counts forks (the child's `pthread_atfork` handler adds one), so that thread-record caches
/// and pickers made before a fork miss in the child without a `getpid` on the hot path.
static FORKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The fork count now (see [`FORKS`]).
#[inline(always)]
pub(crate) fn fork_epoch() -> u64 {
    // Relaxed: the child's handler runs on the only thread of the child before it returns from
    // fork, so every later read in the child sees it.
    FORKS.load(std::sync::atomic::Ordering::Relaxed)
}

#[cfg(not(miri))]
fn watch_forks() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    extern "C" fn child() {
        // Relaxed: see `fork_epoch`.
        FORKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    ONCE.call_once(|| {
        // SAFETY: registers a handler that only increments an atomic (async-signal-safe).
        let rc = unsafe { libc::pthread_atfork(None, None, Some(child)) };
        if rc != 0 {
            log::error!("pthread_atfork failed ({rc}): zone pools in forked children would share the parent's records");
        }
    });
}

/// Miri runs no fork.
#[cfg(miri)]
fn watch_forks() {}

/// The liveness of a Miri run (one process): everyone is alive.
struct AllAlive;

impl Liveness for AllAlive {
    fn judge(&self, _: u32, _: u64) -> Verdict {
        Verdict::Alive
    }
}

fn lock<T>(m: &Mutex<T>) -> crate::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl ListingJournal for ListingChange<'_> {
    fn opening(&self, slot: u32) {
        let named = self.name(slot);
        debug_assert!(named.is_ok(), "slots.rs names slots in range");
    }

    fn closed(&self, slot: u32, listed: bool) {
        if listed {
            let set = self.list(slot);
            debug_assert!(set.is_ok(), "slots.rs names slots in range");
        }
    }
}

impl Local {
    /// Forgets what a parent process's registration left in a forked child's copy (the
    /// child registers anew; the parent's listings and records stay the parent's).
    fn forget_if_forked(&mut self) {
        if self.reg.as_ref().is_some_and(|r| !r.is_current()) {
            self.reg = None;
            self.by_key.clear();
            self.by_slot.clear();
            self.free_records.clear();
        }
    }
}

/// A thread record's window word and attribution row, as pointers into the zone's words.
/// Valid while the zone is (its holder keeps an `Arc` of the zone next to it).
#[derive(Clone, Copy)]
struct RecordWords {
    window: NonNull<AtomicU64>,
    row: NonNull<[AtomicU64]>,
}

impl RecordWords {
    /// # Safety
    /// The zone these words are in stays mapped for `'a`.
    #[inline(always)]
    unsafe fn attribution<'a>(&self, seq: &'a Cell<u32>) -> Attribution<'a> {
        // SAFETY: both point into the zone's words, mapped for `'a` (our contract), and are
        // only ever accessed atomically.
        unsafe { Attribution { window: self.window.as_ref(), row: self.row.as_ref(), seq } }
    }
}

/// An attribution: the window word and attribution row of one thread record, and the record's
/// sequence number, held by whoever owns the record for now.
pub(crate) struct Attribution<'a> {
    window: &'a AtomicU64,
    row: &'a [AtomicU64],
    seq: &'a Cell<u32>,
}

impl Attribution<'_> {
    /// Opens a window of `kind` (`window::PICK` or `window::RELEASE`) on `slot`.
    #[inline(always)]
    pub(crate) fn open(&self, kind: u64, slot: u32) {
        // Relaxed: published by the Release stores that follow (the intent, the add); read by
        // a sweep of this process only once it is dead (S7).
        self.window.store(window::encode(self.seq.get(), kind, Some(slot)), Ordering::Relaxed);
        compiler_fence(std::sync::atomic::Ordering::SeqCst);
    }

    /// `A[slot] += delta` (wrapping; `u64::MAX` is -1): a load and a plain store, this
    /// record's owner being its only writer.
    #[inline(always)]
    pub(crate) fn add(&self, slot: u32, delta: u64) {
        let a = &self.row[slot as usize];
        // Relaxed load: we are the only writer. Release store: whoever reads the new value
        // (the registry sweep's Acquire sum) sees everything this thread did before it, in
        // particular a release's last access to the host.
        a.store(a.load(Ordering::Relaxed).wrapping_add(delta), Ordering::Release);
        compiler_fence(std::sync::atomic::Ordering::SeqCst);
    }

    /// Closes the window: `(seq + 1, IDLE)`.
    #[inline(always)]
    pub(crate) fn close(&self) {
        let next = self.seq.get().wrapping_add(1);
        self.seq.set(next);
        // Release: orders the window's steps before it for a reader that sees it idle.
        self.window.store(window::encode(next, window::IDLE, None), Ordering::Release);
    }
}

impl ZoneInner {
    fn words(&self) -> &[AtomicU64] {
        self.backing.words()
    }

    /// The header's clock base: zone pools read `CLOCK_MONOTONIC` minus it, plus 1, so that
    /// failure timestamps agree across processes (design 1.1, "Clock").
    pub(crate) fn clock_base(&self) -> u64 {
        // Relaxed: written before READY, which attaching read with Acquire.
        self.words()[super::layout::word::CLOCK_BASE].load(Ordering::Relaxed)
    }

    /// Slot `slot`'s state words (three) and failure ring, for a zone host.
    pub(crate) fn slot_words(&self, slot: u32) -> (&[AtomicU64], &[AtomicU64]) {
        let slots = self.slots();
        (slots.state_words(slot), slots.ring(slot))
    }

    /// The zone's failure ring size.
    pub(crate) fn fail_ring(&self) -> u32 {
        self.layout.caps.fail_ring
    }

    /// This process's registration, made now if there is none (first zone pool, or first use
    /// in a forked child). Errors: `ZoneFull` when no process or thread record is free.
    fn registered<'a>(&self, local: &'a mut Local) -> Result<&'a Registration, Error> {
        local.forget_if_forked();
        if local.reg.is_none() {
            let reg = self.register_new()?;
            // Design 4.1: a new registrant sweeps the records of dead processes (the sweep
            // claims records as a registered process, so it runs right after the claim).
            self.sweep_with(&reg);
            local.reg = Some(reg);
        }
        Ok(local.reg.as_ref().expect("registered above"))
    }

    /// A new registration of this process (no sweep).
    fn register_new(&self) -> Result<Registration, Error> {
        watch_forks();
        #[cfg(all(feature = "crash-points", not(loom)))]
        super::crash::arm_from_env();
        // Miri's isolation stops the run at any `open`: judged by `kill` only there.
        let starttime = if cfg!(miri) { 0 } else { super::liveness::self_starttime().unwrap_or(0) };
        super::sweep::register_sweeping_first(
            self.words(),
            &self.layout,
            std::process::id(),
            starttime,
            self.liveness(),
        )
    }

    /// The production liveness check (every record alive under Miri, which runs one process
    /// and whose isolation stops the run at `kill` and `open`).
    fn liveness(&self) -> &'static dyn Liveness {
        if cfg!(miri) { &AllAlive } else { &super::liveness::System }
    }

    /// Sweeps the dead processes as `me` with the production liveness check, then reconciles
    /// the slots in doubt (design 4.3, 4.4).
    fn sweep_with(&self, me: &Registration) -> SweepReport {
        self.sweep_then(me, true)
    }

    /// [`ZoneInner::sweep_with`], with the reconcile only if `reconcile`.
    fn sweep_then(&self, me: &Registration, reconcile: bool) -> SweepReport {
        let report = super::sweep::sweep(self.words(), &self.layout, me, self.liveness());
        let reconciled =
            if reconcile { super::sweep::reconcile(self.words(), &self.layout) } else { Default::default() };
        if report.processes != 0 || reconciled.slots != 0 {
            log::debug!("zone sweep: {report:?}, reconcile: {reconciled:?}");
        }
        report
    }

    /// Sweeps the dead processes of the zone as this process (registering it first if it has
    /// no registration yet) and reconciles the slots in doubt: what `Zone::sweep` and every
    /// refresh of a zone pool call. Errors: `ZoneFull` when this process must register and no
    /// process or thread record is free.
    pub(crate) fn sweep(&self) -> Result<SweepReport, Error> {
        let mut local = lock(&self.pools.local);
        local.forget_if_forked();
        if let Some(reg) = local.reg.as_ref() {
            return Ok(self.sweep_with(reg));
        }
        let reg = self.register_new()?;
        let report = self.sweep_with(&reg);
        local.reg = Some(reg);
        Ok(report)
    }

    /// The sweep of [`ZoneInner::sweep`] without its reconcile, as this process (registered).
    #[cfg(all(feature = "crash-points", not(loom)))]
    pub(crate) fn sweep_only(&self) -> Result<SweepReport, Error> {
        let mut local = lock(&self.pools.local);
        let reg = self.registered(&mut local)?;
        Ok(self.sweep_then(reg, false))
    }

    /// Ends this attachment's registration at its last use (design 4.1, "normal end"): called
    /// by the attachment's `Drop`, when no `Zone` handle, pool, zone host, `Picker` or thread
    /// record cache of this process refers to it any more, so no pick or release can run on its
    /// records. Every slot's attribution sum of the process is 0 then (a zone host is freed only
    /// once it is, and a reservation keeps its host), so nothing is subtracted: the rows are
    /// zeroed, the thread records (the spare included) and the process record are freed
    /// (`procs::deregister_balanced`). Anything else (which the above excludes) is logged and
    /// left for the sweep that finds the process exited. A forked child's copy of its
    /// parent's registration is not the child's to end. Nor is a registration in caller
    /// memory (`Zone::from_memory`) ended here: the memory is only promised for as long as
    /// the caller's handles live, and a thread's record cache may drop the last reference
    /// later (it is swept once the process exits).
    pub(crate) fn end_registration(&self) {
        if !self.backing.owned() {
            return;
        }
        let reg = lock(&self.pools.local).reg.take();
        let Some(reg) = reg.filter(Registration::is_current) else { return };
        if let Err(e) = procs::deregister_balanced(self.words(), &self.layout, &reg) {
            log::error!("zone: ending the registration of process {} failed: {}", reg.pid(), e.message());
        }
    }

    /// Registers this process if it is not registered yet (what `Builder::build` calls).
    pub(crate) fn register_process(&self) -> Result<(), Error> {
        self.registered(&mut lock(&self.pools.local)).map(|_| ())
    }

    /// Makes this process (one more of its pools) a lister of `address` in pool `name`:
    /// attaches the slot in the zone if no pool of this process lists it yet (section 3.2).
    /// Errors: `ZoneFull` (no slot or record free), `ZoneIncompatible` (key too long).
    pub(crate) fn attach(&self, name: &str, address: &str) -> Result<SlotRef, Error> {
        let mut local = lock(&self.pools.local);
        let key_text = format!("{name}\0{address}");
        self.registered(&mut local)?;
        if let Some(&slot) = local.by_key.get(&key_text) {
            local.by_slot.get_mut(&slot.index).expect("by_key and by_slot agree").1 += 1;
            return Ok(slot);
        }
        let key = Key::new(name, address, &self.layout)?;
        let reg = local.reg.as_ref().expect("registered above");
        let change = procs::begin_listing_change(self.words(), &self.layout, reg, None)?;
        let attached = self.slots().attach(&key, reg.index(), &change);
        drop(change);
        let slot = match attached {
            Ok(slot) => slot,
            Err(e) => {
                if e.kind() == ErrorKind::ZoneFull {
                    // Relaxed: a statistic.
                    self.words()[super::layout::word::FULL_REFUSALS].fetch_add(1, Ordering::Relaxed);
                }
                return Err(e);
            }
        };
        local.by_key.insert(key_text.clone(), slot);
        local.by_slot.insert(slot.index, (key_text, 1));
        Ok(slot)
    }

    /// One pool of this process stops listing `slot`; the last one detaches it in the zone,
    /// and the slot is reclaimed if no process lists it and nothing is in flight there.
    fn detach(&self, slot: SlotRef) {
        let mut local = lock(&self.pools.local);
        local.forget_if_forked();
        let Some((_, n)) = local.by_slot.get_mut(&slot.index) else { return };
        *n -= 1;
        if *n > 0 {
            return;
        }
        let (key, _) = local.by_slot.remove(&slot.index).expect("looked up above");
        local.by_key.remove(&key);
        let Some(reg) = local.reg.as_ref() else { return };
        // Unlist (bitmap bit) before the listers decrement (section 3.2), inside the change.
        let detached = procs::begin_listing_change(self.words(), &self.layout, reg, Some(slot.index)).and_then(|c| {
            c.unlist(slot.index)?;
            self.slots().detach(slot)
        });
        match detached {
            Ok(0) => {
                self.slots().try_reclaim(slot.index);
            }
            Ok(_) => {}
            Err(e) => log::error!("zone detach of slot {} failed: {}", slot.index, e.message()),
        }
    }

    /// This process's requests in flight on `slot`: the sum of the attribution rows of the
    /// thread records its registration owns (exact outside pick/release windows).
    pub(crate) fn process_in_flight(&self, slot: u32) -> u64 {
        let mut local = lock(&self.pools.local);
        local.forget_if_forked();
        let Some(reg) = local.reg.as_ref() else { return 0 };
        let owner = reg.owner();
        let words = self.words();
        (0..self.layout.caps.threads)
            .filter(|&t| procs::thread_owner(words, &self.layout, t) == owner)
            // Acquire: pairs with the Release store of a release's `A[s] -= 1`, made after its
            // last access to the host.
            .map(|t| procs::attribution_row(words, &self.layout, t)[slot as usize].load(Ordering::Acquire))
            .fold(0u64, u64::wrapping_add)
    }

    /// Frees zone host `host` (its last structural reference is gone) if this process has
    /// nothing in flight on its slot, else parks it until [`ZoneInner::maintain`] can.
    ///
    /// # Safety
    /// `host` is a zone host on this zone, owned by the caller, and no snapshot or registry
    /// entry refers to it any more.
    pub(crate) unsafe fn drop_host(&self, host: NonNull<HostBox>) {
        // SAFETY: owned by the caller (our contract).
        let slot = unsafe { host.as_ref() }.zone_slot().expect("a zone host");
        if self.process_in_flight(slot.index) != 0 {
            lock(&self.pools.draining).push(Draining(host));
            return;
        }
        // SAFETY: as above; nothing of this process is in flight on it, and no snapshot lists
        // it, so no pick or release can reach it.
        unsafe { self.free_host(host, slot) };
    }

    /// # Safety
    /// As [`ZoneInner::drop_host`], with nothing of this process in flight on `slot`.
    unsafe fn free_host(&self, host: NonNull<HostBox>, slot: SlotRef) {
        // The host holds an `Arc` of this zone: keep the zone alive until we return.
        // SAFETY: the host is ours (caller's contract) and is freed only here.
        let zone = unsafe { host.as_ref() }.zone_arc();
        // SAFETY: as above.
        drop(unsafe { Box::from_raw(host.as_ptr()) });
        self.detach(slot);
        drop(zone);
    }

    /// Frees the draining hosts whose slots this process no longer has anything in flight on.
    /// Called by every refresh of a zone pool.
    pub(crate) fn maintain(&self) {
        let parked: Vec<Draining> = std::mem::take(&mut *lock(&self.pools.draining));
        let mut keep = Vec::new();
        for d in parked {
            // SAFETY: parked hosts are owned by the draining list, alive until freed here.
            let slot = unsafe { d.0.as_ref() }.zone_slot().expect("a zone host");
            if self.process_in_flight(slot.index) == 0 {
                // SAFETY: as in `drop_host`.
                unsafe { self.free_host(d.0, slot) };
            } else {
                keep.push(d);
            }
        }
        lock(&self.pools.draining).extend(keep);
    }

    /// Hosts parked by dropped pools, not freed yet.
    #[cfg(test)]
    pub(crate) fn draining(&self) -> usize {
        lock(&self.pools.draining).len()
    }

    /// A thread record for a thread or a picker: one this process freed earlier, or a newly
    /// claimed one; `None` when none is free (the caller falls back on the spare).
    pub(crate) fn claim_record(&self) -> Option<u32> {
        let mut local = lock(&self.pools.local);
        self.registered(&mut local).ok()?;
        if let Some(record) = local.free_records.pop() {
            return Some(record);
        }
        procs::claim_thread_record(self.words(), &self.layout, local.reg.as_ref()?).ok()
    }

    /// Takes back a record that `claim_record` handed out, in the fork epoch `epoch`.
    pub(crate) fn return_record(&self, record: u32, epoch: u64) {
        if epoch != fork_epoch() {
            return; // a parent's record, in a forked child
        }
        lock(&self.pools.local).free_records.push(record);
    }

    /// The attribution of thread record `record` with sequence number cell `seq`.
    pub(crate) fn attribution<'a>(&'a self, record: u32, seq: &'a Cell<u32>) -> Attribution<'a> {
        let words = self.words();
        Attribution {
            window: procs::window_word(words, &self.layout, record),
            row: procs::attribution_row(words, &self.layout, record),
            seq,
        }
    }

    /// Where thread record `record`'s words are, computed once when a cache entry or picker
    /// takes the record, so that each operation builds its `Attribution` without offsets.
    fn record_words(&self, record: u32) -> RecordWords {
        let words = self.words();
        RecordWords {
            window: NonNull::from(procs::window_word(words, &self.layout, record)),
            row: NonNull::from(procs::attribution_row(words, &self.layout, record)),
        }
    }

    /// Runs `f` with the registration's spare record (under its mutex: slow, but it never
    /// fails once the process is registered); `None` if the process cannot register.
    #[cold]
    pub(crate) fn with_spare<R>(&self, f: impl FnOnce(Option<&Attribution<'_>>) -> R) -> R {
        // The caller may be a release whose host (holding the last handle on this zone) another
        // thread frees as soon as our `A[s] -= 1` lands: keep the zone alive until we return.
        #[cfg(not(loom))]
        let _alive = self.me.upgrade();
        let spare = {
            let mut local = lock(&self.pools.local);
            self.registered(&mut local).map(Registration::spare).ok()
        };
        let Some(spare) = spare else { return f(None) };
        let mut seq = lock(&self.pools.spare);
        let cell = Cell::new(*seq);
        let r = f(Some(&self.attribution(spare, &cell)));
        *seq = cell.get();
        r
    }
}

/// Runs `f` with the calling thread's attribution on `zone` (section 3.4): its cached record,
/// claimed on the thread's first use of the zone; the spare when none can be had.
#[inline]
pub(crate) fn with_thread_attribution<R>(zone: &ZoneInner, f: impl FnOnce(Option<&Attribution<'_>>) -> R) -> R {
    #[cfg(not(loom))]
    {
        tls::with(zone, f)
    }
    #[cfg(loom)]
    {
        zone.with_spare(f)
    }
}

/// The thread-local record cache: up to [`tls::ENTRIES`] (zone, record) pairs per thread,
/// claimed on first use, returned to their process's free list when the thread exits.
#[cfg(not(loom))]
mod tls {
    use std::cell::{Cell, UnsafeCell};
    use std::sync::Arc;

    use super::{Attribution, RecordWords, ZoneInner, fork_epoch};

    pub(super) const ENTRIES: usize = 8;

    struct Entry {
        zone: Arc<ZoneInner>,
        epoch: u64,
        record: u32,
        words: RecordWords,
        seq: Cell<u32>,
    }

    /// Entries are written only while empty or stale (made before a fork): never one that an
    /// operation of this thread is using, which is always of the current epoch.
    struct Cache([UnsafeCell<Option<Entry>>; ENTRIES]);

    impl Drop for Cache {
        fn drop(&mut self) {
            for e in self.0.iter_mut().filter_map(|e| e.get_mut().take()) {
                e.zone.return_record(e.record, e.epoch);
            }
        }
    }

    thread_local! {
        static CACHE: Cache = const { Cache([const { UnsafeCell::new(None) }; ENTRIES]) };
    }

    /// Registers the cache's destructor (allocates once per thread).
    pub(crate) fn warm_up() {
        let _ = CACHE.try_with(|_| ());
    }

    #[inline]
    pub(super) fn with<R>(zone: &ZoneInner, f: impl FnOnce(Option<&Attribution<'_>>) -> R) -> R {
        let epoch = fork_epoch();
        let found = CACHE.try_with(|c| {
            for cell in &c.0 {
                // SAFETY: shared reads of a cell; cells are written only while empty or stale
                // (see `Cache`), never while this reference is used for the current epoch.
                let entry = unsafe { &*cell.get() };
                match entry {
                    Some(e) if std::ptr::eq(Arc::as_ptr(&e.zone), zone) && e.epoch == epoch => {
                        return Some(e as *const Entry);
                    }
                    Some(_) => {}
                    None => break,
                }
            }
            None
        });
        match found {
            // SAFETY: the entry lives until the thread's cache is destroyed, which cannot
            // happen while this thread runs `f`; its zone `Arc` keeps the words alive.
            Ok(Some(e)) => {
                let e = unsafe { &*e };
                // SAFETY: the entry's zone `Arc` keeps the words mapped.
                f(Some(&unsafe { e.words.attribution(&e.seq) }))
            }
            _ => miss(zone, epoch, f),
        }
    }

    #[cold]
    #[inline(never)]
    fn miss<R>(zone: &ZoneInner, epoch: u64, f: impl FnOnce(Option<&Attribution<'_>>) -> R) -> R {
        let Some(zone_arc) = zone.me.upgrade() else { return zone.with_spare(f) };
        let made = CACHE.try_with(|c| {
            let cell = c.0.iter().find(|cell| {
                // SAFETY: as in `with`.
                unsafe { &*cell.get() }.as_ref().is_none_or(|e| e.epoch != epoch)
            })?;
            let record = zone.claim_record()?;
            let words = zone.record_words(record);
            let entry = Entry { zone: Arc::clone(&zone_arc), epoch, record, words, seq: Cell::new(0) };
            // SAFETY: the cell is empty or stale, so no reference to its contents is in use.
            let old = unsafe { (*cell.get()).replace(entry) };
            drop(old);
            // SAFETY: just written; lives as the entries in `with`.
            Some(unsafe { (*cell.get()).as_ref().expect("just written") } as *const Entry)
        });
        match made {
            Ok(Some(e)) => {
                // SAFETY: as in `with`.
                let e = unsafe { &*e };
                // SAFETY: the entry's zone `Arc` keeps the words mapped.
                f(Some(&unsafe { e.words.attribution(&e.seq) }))
            }
            _ => zone.with_spare(f),
        }
    }
}

/// Registers the calling thread's zone record cache (its destructor), so that a thread's first
/// zone pick allocates nothing but its record claim.
pub(crate) fn warm_up_thread() {
    #[cfg(not(loom))]
    tls::warm_up();
}

/// A [`Picker`](crate::Picker)'s own thread record (section 3.4): claimed when the picker is
/// made, returned to the process's free list when it is dropped.
pub(crate) struct PickerRecord {
    zone: crate::sync::Arc<ZoneInner>,
    /// `None`: no record was free; the picker uses the thread's.
    record: Option<(u32, RecordWords)>,
    epoch: u64,
    seq: Cell<u32>,
}

// SAFETY: the record words point into the zone that `zone` keeps mapped, and are accessed
// only atomically; the picker (not `Sync`) is their only user while it owns the record.
unsafe impl Send for PickerRecord {}

impl PickerRecord {
    pub(crate) fn new(zone: &crate::sync::Arc<ZoneInner>) -> Self {
        let record = if cfg!(loom) { None } else { zone.claim_record().map(|r| (r, zone.record_words(r))) };
        Self { zone: crate::sync::Arc::clone(zone), record, epoch: fork_epoch(), seq: Cell::new(0) }
    }

    /// The picker's own attribution: `None` when it has no record of its own or was made
    /// before a fork (its user then goes through [`PickerRecord::with_thread`]). No closure,
    /// so the one pick path of heap and zone pools stays inlined in `Picker::select`.
    #[inline(always)]
    pub(crate) fn own(&self) -> Option<Attribution<'_>> {
        match self.record {
            // SAFETY: `self.zone` keeps the words mapped while we borrow `self`.
            Some((_, words)) if self.epoch == fork_epoch() => Some(unsafe { words.attribution(&self.seq) }),
            _ => None,
        }
    }

    /// Runs `f` with the thread's attribution on the picker's zone: what a picker without a
    /// record of its own (or made before a fork) uses.
    #[cold]
    pub(crate) fn with_thread<R>(&self, f: impl FnOnce(Option<&Attribution<'_>>) -> R) -> R {
        with_thread_attribution(&self.zone, f)
    }

    pub(crate) fn zone(&self) -> &ZoneInner {
        &self.zone
    }
}

impl Drop for PickerRecord {
    fn drop(&mut self) {
        if let Some((record, _)) = self.record {
            self.zone.return_record(record, self.epoch);
        }
    }
}
