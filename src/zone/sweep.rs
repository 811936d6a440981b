//! Crash recovery: the sweep of dead processes, its takeover, and the reconcile that makes
//! doubt exact (docs/design-zone.md, sections 4.3 and 4.4).
//!
//! **What a dead process leaves.** Each of its threads counted its reservations in its thread
//! record's row of the attribution matrix (`A_t[s]`: intent `+1` before the shared add, `-1`
//! after a release's add), inside a *window* (the record's window word names the slot while a
//! pick or release is between its steps; design 3.4). Outside windows the sum of a process's
//! rows on slot `s` is exactly its contribution to the slot's in-flight count; a thread killed
//! inside a window leaves one unit that may or may not be in the count: *doubt*.
//!
//! **Sweep** (any live process, for every record whose process is dead): claim the record
//! (LIVE{pid, g} -> SWEEPING{me, g} by CAS, one winner), take over the records it was itself
//! sweeping, then, for each slot with a non-zero sum `A` of the dead rows and `w` windows open
//! on it (0 or 1 per thread): `u = min(A, w)` units stay in doubt and `n = A - u` are
//! subtracted, journaled by a marker `(s, n, u)` in the dead process's record:
//!
//! ```text
//! marker = (s, n, u); doubt[s] += n + u; word -= n; doubt[s] -= n; rows[s] = 0; cursor = s + 1; marker = none
//! ```
//!
//! Then its listings (bitmap bits: listers - 1, try_reclaim; an open listing change flags the
//! slot's listers in doubt), its unpublished claims (-> TOMB), and finally every row word,
//! window and owner of its thread records, and the record (-> FREE{g + 1}).
//!
//! **Takeover.** A sweeper that dies leaves its records SWEEPING{itself}; whoever sweeps the
//! sweeper takes them over by CAS (the sweeper's record is held by the taker meanwhile, so its
//! index names no other process). A marker whose rows are all zero is finished; otherwise the
//! taker cannot know which of the doubt add, the subtraction and the doubt subtraction ran, so
//! it adds `n + u` to the doubt again, subtracts nothing and zeroes the rows: never an
//! under-count, every unit over on a known slot and counted in its doubt.
//!
//! **Reconcile** (4.4) removes the doubt exactly at a quiet moment: two identical passes over
//! every window, owner, process state and change word bracket the reads of the slot's word and
//! the live rows; then the phantoms `P = in-flight - sum of live rows` (`0 <= P <= doubt`) are
//! removed by one CAS on the word read between the passes. A pick or release whose add or
//! intent that read observes stored its window before (program order, Release), so the second
//! pass would differ; the CAS fails on any later change of the word.
//!
//! Nothing here is on the hot path: the sweep and the reconcile are lock-free (each CAS is
//! lost only to another process's progress) and allocate.

#![cfg_attr(not(any(test, loom)), allow(dead_code, reason = "sweep_as and reconcile are hooks for tests and models"))]

use super::layout::{Layout, slot, word};
use super::liveness::Liveness;
use super::procs::{
    self, OWNER, ProcKind, ProcState, Registration, WINDOW, change, next_gen, owner, process_word, pword, thread_word,
    window,
};
use super::slots::{Kind, SlotRef, Slots};
use crate::host::in_flight_of;
use crate::sync::{AtomicU64, Ordering};

/// Bit 32 of a slot's doubt word: its listers count may be off by the listing change of a
/// dead process (a reconcile recounts it from the bitmaps). The low 32 bits count units.
pub(crate) const LISTERS_IN_DOUBT: u64 = 1 << 32;
/// The units field of a doubt word.
pub(crate) const DOUBT_UNITS: u64 = LISTERS_IN_DOUBT - 1;

/// Marker word 0: `kind << 32 | slot + 1` (0: no marker); words 1 and 2: n and u.
const MARK_COUNTS: u64 = 1;
const MARK_LISTING: u64 = 2;

/// What a sweep did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SweepReport {
    /// Records of dead processes swept (sweeps taken over from a dead sweeper included).
    pub processes: u32,
    /// In-flight units subtracted: the reservations the dead processes held.
    pub recovered: u64,
    /// Units left in doubt (a thread killed inside a pick or release, or a sweeper killed
    /// mid-step): kept in the in-flight count, each on a known slot, until a reconcile.
    pub in_doubt: u64,
}

/// What a reconcile did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Reconciled {
    /// Slots whose doubt was removed.
    pub(crate) slots: u32,
    /// Phantom units removed from in-flight counts.
    pub(crate) phantoms: u64,
    /// Slots still in doubt: the zone was not quiet (retry at the next maintenance).
    pub(crate) pending: u32,
}

fn doubt<'a>(words: &'a [AtomicU64], layout: &Layout, s: u32) -> &'a AtomicU64 {
    &words[layout.slot(s) + slot::DOUBT]
}

fn state<'a>(words: &'a [AtomicU64], layout: &Layout, s: u32) -> &'a AtomicU64 {
    &words[layout.slot(s) + slot::STATE]
}

fn count(words: &[AtomicU64], at: usize, delta: u64) {
    if delta != 0 {
        // Relaxed: a statistic; nothing is ordered by it.
        words[at].fetch_add(delta, Ordering::Relaxed);
    }
}

/// Sweeps every process record whose process `liveness` finds dead, as process `me`.
pub(crate) fn sweep<L: Liveness + ?Sized>(
    words: &[AtomicU64],
    layout: &Layout,
    me: &Registration,
    liveness: &L,
) -> SweepReport {
    sweep_records(words, layout, me, procs::dead_records(words, layout, liveness), NEVER)
}

/// Frees one process record held by a dead process for a registrant that has no record yet
/// (every record is held, some by dead processes: design 4.1's "sweep, then register"),
/// without a registration: claims a dead LIVE{pid, g} by CAS as SWEEPING{pid: the registrant
/// `my_pid`, sweeper: the record itself, g} and sweeps it as that record (takeover included),
/// which ends with the record FREE{g + 1}. `true` if it freed one.
///
/// A registrant killed meanwhile leaves a *self-swept* record (SWEEPING whose sweeper is its
/// own index): `procs::dead_records` reports it by the registrant's pid (judged by `kill`
/// only), and whoever sweeps it resumes the journal as with any dead sweeper's record, and
/// takes over the records it was taking over.
pub(crate) fn free_a_dead_record<L: Liveness + ?Sized>(
    words: &[AtomicU64],
    layout: &Layout,
    my_pid: u32,
    liveness: &L,
) -> bool {
    free_a_dead_record_until(words, layout, my_pid, liveness, NEVER)
}

/// `procs::register`, and when every record is held (or no thread record is free for the
/// spare), [`free_a_dead_record`] and again (design 4.1: a registrant sweeps first). Each
/// round frees a record or ends; another registrant may take the freed record first, hence
/// the bound of `processes` rounds. `ZoneFull` when no dead process holds a record (or one
/// being swept by a live sweeper: its record is freed when that sweep ends).
pub(crate) fn register_sweeping_first<L: Liveness + ?Sized>(
    words: &[AtomicU64],
    layout: &Layout,
    pid: u32,
    starttime: u64,
    liveness: &L,
) -> Result<Registration, crate::Error> {
    let mut rounds = layout.caps.processes;
    loop {
        match procs::register(words, layout, pid, starttime) {
            Err(e) if e.kind() == crate::ErrorKind::ZoneFull && rounds > 0 => {
                rounds -= 1;
                if !free_a_dead_record(words, layout, pid, liveness) {
                    return Err(e);
                }
            }
            done => return done,
        }
    }
}

/// [`free_a_dead_record`], stopped at sweep point `stop` (tests: a registrant killed there).
pub(crate) fn free_a_dead_record_until<L: Liveness + ?Sized>(
    words: &[AtomicU64],
    layout: &Layout,
    my_pid: u32,
    liveness: &L,
    stop: u32,
) -> bool {
    for dead in procs::dead_records(words, layout, liveness) {
        if ProcState::decode(dead.state).is_none_or(|st| st.kind != ProcKind::Live) {
            continue; // a self-swept record: a registered sweeper takes it over
        }
        let held =
            ProcState { kind: ProcKind::Sweeping, pid: my_pid, sweeper: dead.index, generation: dead.generation };
        // Acquire: the dead process's words are final; as `procs::claim_for_sweep`. Failure: a
        // sweeper or another registrant won it; Relaxed, try the next.
        let won = process_word(words, layout, dead.index, pword::STATE)
            .compare_exchange(dead.state, held.encode(), Ordering::Acquire, Ordering::Relaxed)
            .is_ok();
        if !won {
            continue;
        }
        let mut report = SweepReport::default();
        let sweeper = Sweep { words, layout, me: dead.index, stop };
        if !sweeper.claimed(dead.index, held, &mut report) {
            return false;
        }
        if report.processes != 0 {
            log::debug!("zone registration: freed the record of dead process {}: {report:?}", dead.pid);
        }
        return true;
    }
    false
}

/// Where a sweep can be stopped, as a sweeper killed there stops (the takeover tests). Each
/// point is *after* the step it names; a stopped sweep stops at the point's first hit.
pub(crate) mod point {
    pub(crate) const MARKED: u32 = 1;
    pub(crate) const DOUBT_ADDED: u32 = 2;
    pub(crate) const SUBTRACTED: u32 = 3;
    pub(crate) const DOUBT_SUBTRACTED: u32 = 4;
    pub(crate) const ROWS_ZEROED: u32 = 5;
    pub(crate) const CURSOR: u32 = 6;
    pub(crate) const UNMARKED: u32 = 7;
    pub(crate) const LISTING_MARKED: u32 = 8;
    pub(crate) const BIT_CLEARED: u32 = 9;
    pub(crate) const DETACHED: u32 = 10;
    pub(crate) const CLAIMS_ABANDONED: u32 = 11;
    pub(crate) const RECORDS_ZEROED: u32 = 12;
    #[cfg(test)]
    pub(crate) const ALL: [u32; 12] = [
        MARKED,
        DOUBT_ADDED,
        SUBTRACTED,
        DOUBT_SUBTRACTED,
        ROWS_ZEROED,
        CURSOR,
        UNMARKED,
        LISTING_MARKED,
        BIT_CLEARED,
        DETACHED,
        CLAIMS_ABANDONED,
        RECORDS_ZEROED,
    ];
}

/// No stop point: a sweep that runs to its end.
const NEVER: u32 = 0;

/// Sweeps the records of `dead` (observed dead) that `me` wins the claim of; stops at point
/// `stop` (tests: a sweeper killed there), never for [`NEVER`].
pub(crate) fn sweep_records(
    words: &[AtomicU64],
    layout: &Layout,
    me: &Registration,
    dead: impl Iterator<Item = procs::DeadRecord>,
    stop: u32,
) -> SweepReport {
    let mut report = SweepReport::default();
    let sweeper = Sweep { words, layout, me: me.index(), stop };
    for dead in dead {
        // Our own record judged dead (a wrong starttime): never sweep a live process's words.
        if dead.index == me.index() || !procs::claim_for_sweep(words, layout, &dead, me) {
            continue;
        }
        let held = dead.sweeping(me.index());
        if !sweeper.claimed(dead.index, held, &mut report) {
            break;
        }
    }
    report
}

struct Sweep<'a> {
    words: &'a [AtomicU64],
    layout: &'a Layout,
    me: u32,
    stop: u32,
}

impl<'a> Sweep<'a> {
    fn pword(&self, r: u32, w: u64) -> &'a AtomicU64 {
        process_word(self.words, self.layout, r, w)
    }

    /// Sweeps record `r`, held as `held` (SWEEPING{me}), and every record its dead process was
    /// sweeping.
    /// `false`: stopped at the stop point.
    fn claimed(&self, r: u32, held: ProcState, report: &mut SweepReport) -> bool {
        let mut work = vec![(r, held)];
        while let Some((r, held)) = work.pop() {
            for q in (0..self.layout.caps.processes).filter(|&q| q != r) {
                let w = self.pword(q, pword::STATE);
                // Acquire: pairs with the dead sweeper's claim, as `claim_for_sweep` does.
                let seen = w.load(Ordering::Acquire);
                let Some(st) = ProcState::decode(seen) else { continue };
                if st.kind != ProcKind::Sweeping || st.sweeper != r {
                    continue;
                }
                // `r` is held by us until freed below, so SWEEPING{r} names its dead process.
                let mine = ProcState { sweeper: self.me, ..st };
                // Acquire: the dead sweeper's journal is read next. Failure: only the holder of
                // `r` (us) moves such a record, so only a damaged word fails; Relaxed, skip.
                if w.compare_exchange(seen, mine.encode(), Ordering::Acquire, Ordering::Relaxed).is_ok() {
                    work.push((q, mine));
                    crash_point!(TAKEN_OVER);
                }
            }
            if !self.record(r, held, report) {
                return false;
            }
        }
        true
    }

    /// Sweep step `point` is done: a crash point, and whether to stop here.
    fn at(&self, point: u32) -> bool {
        #[cfg(any(feature = "crash-points", loom))]
        super::crash::hit(super::crash::sweep(point));
        self.stop == point
    }

    /// Design 4.3 steps 1 to 4 for record `r`, held as `held`; `false`: stopped.
    fn record(&self, r: u32, held: ProcState, report: &mut SweepReport) -> bool {
        let (words, layout) = (self.words, self.layout);
        let owned = owner::owned(r, held.generation);
        let records: Vec<u32> =
            (0..layout.caps.threads).filter(|&t| procs::thread_owner(words, layout, t) == owned).collect();
        // Step 1. Acquire: the dead process's words are final; pairs with its Release stores.
        let windows: Vec<Option<u32>> = records
            .iter()
            .map(|&t| window::open_on(thread_word(words, layout, t, WINDOW).load(Ordering::Acquire)))
            .collect();
        let rows: Vec<&[AtomicU64]> = records.iter().map(|&t| procs::attribution_row(words, layout, t)).collect();
        self.resume(r, &rows, report);
        // Step 2.
        // Acquire: pairs with the Release store of a dead sweeper's cursor.
        let from = self.pword(r, pword::SWEEP_CURSOR).load(Ordering::Acquire).min(u64::from(layout.caps.hosts)) as u32;
        for s in from..layout.caps.hosts {
            // Acquire: pairs with the dead threads' Release stores of their rows.
            let sum = rows.iter().fold(0u64, |a, row| a.wrapping_add(row[s as usize].load(Ordering::Acquire)));
            if sum == 0 {
                continue;
            }
            if (sum as i64) < 0 {
                log::error!(
                    "zone sweep: process {} (record {r}) attributes {} units on slot {s}; leaving the count alone",
                    held.pid,
                    sum as i64
                );
                continue;
            }
            let in_window = windows.iter().filter(|&&w| w == Some(s)).count() as u64;
            let u = sum.min(in_window);
            let n = sum - u;
            self.mark(r, MARK_COUNTS, s, n, u);
            if self.at(point::MARKED) {
                return false;
            }
            // AcqRel (these RMWs): ordered with the slot's other doubt and count changes.
            doubt(words, layout, s).fetch_add(n + u, Ordering::AcqRel);
            if self.at(point::DOUBT_ADDED) {
                return false;
            }
            let took = subtract_in_flight(state(words, layout, s), n);
            if took < n {
                log::error!(
                    "zone sweep: process {} (record {r}) attributes {n} units on slot {s}, which has only {took} in flight",
                    held.pid
                );
            }
            if self.at(point::SUBTRACTED) {
                return false;
            }
            doubt(words, layout, s).fetch_sub(n, Ordering::AcqRel);
            if self.at(point::DOUBT_SUBTRACTED) {
                return false;
            }
            zero_at(&rows, s);
            if self.at(point::ROWS_ZEROED) {
                return false;
            }
            // Release: a taker that reads the cursor (Acquire) sees the steps before it.
            self.pword(r, pword::SWEEP_CURSOR).store(u64::from(s) + 1, Ordering::Release);
            if self.at(point::CURSOR) {
                return false;
            }
            self.unmark(r);
            if self.at(point::UNMARKED) {
                return false;
            }
            report.recovered += took;
            report.in_doubt += u;
            count(words, word::RECOVERED, took);
            count(words, word::IN_DOUBT, u);
            if u != 0 {
                log::warn!("zone sweep: process {} died inside a window: {u} unit(s) in doubt on slot {s}", held.pid);
            }
        }
        // Step 3: listings.
        let slots = Slots::new(words, layout);
        // Acquire: pairs with the Release end of the dead process's last listing change.
        let open = self.pword(r, pword::CHANGE).load(Ordering::Acquire);
        if let Some(s) = change::slot(open).filter(|&s| s < layout.caps.hosts) {
            flag_listers(words, layout, s);
        }
        for i in 0..u64::from(layout.caps.hosts).div_ceil(64) {
            let bits = self.pword(r, pword::BITMAP + i);
            // Acquire: pairs with the Release fetch_or of the listing.
            let mut set = bits.load(Ordering::Acquire);
            while set != 0 {
                let bit = set & set.wrapping_neg();
                set &= !bit;
                let s = (i * 64) as u32 + bit.trailing_zeros();
                self.mark(r, MARK_LISTING, s, 0, 0);
                if self.at(point::LISTING_MARKED) {
                    return false;
                }
                // AcqRel: the bit is cleared before the listers decrement (over-count only).
                bits.fetch_and(!bit, Ordering::AcqRel);
                if self.at(point::BIT_CLEARED) {
                    return false;
                }
                let ctl = slots.control(s);
                let detached = ctl.kind() == Kind::Live
                    && slots.detach(SlotRef { index: s, generation: ctl.generation() }).is_ok();
                if !detached {
                    log::error!("zone sweep: process {} listed slot {s}, which is {ctl:?}", held.pid);
                }
                if self.at(point::DETACHED) {
                    return false;
                }
                self.unmark(r);
                slots.try_reclaim(s);
            }
        }
        slots.abandon_claims_of(r);
        if self.at(point::CLAIMS_ABANDONED) {
            return false;
        }
        // Step 4: every row word (a row can hold +3 and another -3), windows, owners, record.
        for (&t, row) in records.iter().zip(&rows) {
            for a in row.iter() {
                // Relaxed: published by the Release free of the owner word below.
                a.store(0, Ordering::Relaxed);
            }
            if self.at(point::RECORDS_ZEROED) {
                return false;
            }
            // Relaxed: as the row.
            thread_word(words, layout, t, WINDOW).store(window::IDLE, Ordering::Relaxed);
            // Release: the next owner (Acquire claim) finds the record zeroed. Failure:
            // cannot happen (the owner is dead and we hold its record); Relaxed.
            let _ = thread_word(words, layout, t, OWNER).compare_exchange(
                owned,
                owner::FREE,
                Ordering::Release,
                Ordering::Relaxed,
            );
        }
        // Relaxed: published by the Release CAS that frees the record.
        self.pword(r, pword::STARTTIME).store(0, Ordering::Relaxed);
        let free = ProcState::free(next_gen(held.generation)).encode();
        // Release: the next registrant (Acquire) finds the words cleared above. Failure: only
        // a taker could have moved it, and takers take records of dead sweepers only.
        if self
            .pword(r, pword::STATE)
            .compare_exchange(held.encode(), free, Ordering::Release, Ordering::Relaxed)
            .is_ok()
        {
            report.processes += 1;
            count(words, word::SWEEPS, 1);
        }
        true
    }

    fn mark(&self, r: u32, kind: u64, s: u32, n: u64, u: u64) {
        // Relaxed: published by the Release store of the marker's first word.
        self.pword(r, pword::SWEEP_MARKER + 1).store(n, Ordering::Relaxed);
        // Relaxed: as n.
        self.pword(r, pword::SWEEP_MARKER + 2).store(u, Ordering::Relaxed);
        // Release: a taker that reads the marker (Acquire) reads its n and u.
        self.pword(r, pword::SWEEP_MARKER).store(kind << 32 | (u64::from(s) + 1), Ordering::Release);
    }

    fn unmark(&self, r: u32) {
        // Release: a taker that reads "no marker" sees the step it closed.
        self.pword(r, pword::SWEEP_MARKER).store(0, Ordering::Release);
    }

    /// A sweep taken over from a dead sweeper: settles its marked step (4.3, last paragraph).
    fn resume(&self, r: u32, rows: &[&[AtomicU64]], report: &mut SweepReport) {
        let (words, layout) = (self.words, self.layout);
        // Acquire: pairs with `mark`'s Release store.
        let m = self.pword(r, pword::SWEEP_MARKER).load(Ordering::Acquire);
        let s = (m as u32).wrapping_sub(1);
        if m == 0 || s >= layout.caps.hosts {
            return;
        }
        match m >> 32 {
            MARK_COUNTS => {
                // Acquire (all three): ordered after the marker load.
                let n = self.pword(r, pword::SWEEP_MARKER + 1).load(Ordering::Acquire);
                let u = self.pword(r, pword::SWEEP_MARKER + 2).load(Ordering::Acquire);
                let finished = rows.iter().all(|row| row[s as usize].load(Ordering::Acquire) == 0);
                if !finished {
                    // Which of its doubt add, subtraction and doubt subtraction ran is unknown:
                    // keep every unit it may not have subtracted, all in doubt.
                    // AcqRel: as the sweep's own doubt changes.
                    doubt(words, layout, s).fetch_add(n + u, Ordering::AcqRel);
                    crash_point!(RESUME_DOUBT_ADDED);
                    zero_at(rows, s);
                    crash_point!(RESUME_ZEROED);
                    report.in_doubt += n + u;
                    count(words, word::IN_DOUBT, n + u);
                    log::warn!("zone sweep taken over mid-step: {} unit(s) in doubt on slot {s}", n + u);
                }
                // Release: as in the sweep's own step.
                self.pword(r, pword::SWEEP_CURSOR).store(u64::from(s) + 1, Ordering::Release);
            }
            MARK_LISTING if !procs::is_listed(words, layout, r, s) => flag_listers(words, layout, s),
            _ => {}
        }
        self.unmark(r);
        crash_point!(RESUMED);
    }
}

fn zero_at(rows: &[&[AtomicU64]], s: u32) {
    for row in rows {
        // Release: a taker that finds the rows zero knows the steps before were done.
        row[s as usize].store(0, Ordering::Release);
    }
}

fn flag_listers(words: &[AtomicU64], layout: &Layout, s: u32) {
    // AcqRel: ordered before the listers decrement and try_reclaim that follow.
    doubt(words, layout, s).fetch_or(LISTERS_IN_DOUBT, Ordering::AcqRel);
}

/// Subtracts up to `n` from the in-flight field of state word `w`, never more than it holds
/// (so never borrowing the GUARD); returns how much it subtracted.
fn subtract_in_flight(w: &AtomicU64, n: u64) -> u64 {
    // Acquire: the CAS below checks it.
    let mut seen = w.load(Ordering::Acquire);
    loop {
        let in_flight = in_flight_of(seen);
        let take = n.min(in_flight);
        if take == 0 {
            return 0;
        }
        // AcqRel: a count change among the slot's other RMWs. Failure: another process's
        // pick or release; Acquire, retry on what it left.
        match w.compare_exchange(seen, seen - take, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return take,
            Err(now) => seen = now,
        }
    }
}

/// Removes the doubt of every slot that has some, exactly, if the zone is quiet (4.4).
pub(crate) fn reconcile(words: &[AtomicU64], layout: &Layout) -> Reconciled {
    let mut out = Reconciled::default();
    for s in 0..layout.caps.hosts {
        // Acquire: pairs with the sweep's doubt RMWs.
        if doubt(words, layout, s).load(Ordering::Acquire) == 0 {
            continue;
        }
        match reconcile_slot(words, layout, s) {
            Some(phantoms) => {
                out.slots += 1;
                out.phantoms += phantoms;
            }
            None => out.pending += 1,
        }
    }
    out
}

/// Every owner and window word and every process state and change word, if no window is
/// open, no record is being swept and no listing change is open.
fn quiet(words: &[AtomicU64], layout: &Layout) -> Option<Vec<u64>> {
    let mut seen = Vec::with_capacity(2 * (layout.caps.threads + layout.caps.processes) as usize);
    for t in 0..layout.caps.threads {
        let o = procs::thread_owner(words, layout, t);
        // Acquire: pairs with the Release window stores of the hot path (and the Release
        // reservation add after them), so a later pass cannot miss a window a read saw acted.
        let w = thread_word(words, layout, t, WINDOW).load(Ordering::Acquire);
        if o != owner::FREE && window::open_on(w).is_some() {
            return None;
        }
        seen.extend([o, w]);
    }
    for p in 0..layout.caps.processes {
        // Acquire: as the window loads.
        let st = process_word(words, layout, p, pword::STATE).load(Ordering::Acquire);
        // Acquire: as the window loads.
        let ch = process_word(words, layout, p, pword::CHANGE).load(Ordering::Acquire);
        // A free record's change word is stale (its next registrant clears it): not an open
        // change.
        match ProcState::decode(st) {
            Some(ProcState { kind: ProcKind::Free, .. }) => {}
            Some(ProcState { kind: ProcKind::Live, .. }) if change::is_idle(ch) => {}
            _ => return None,
        }
        seen.extend([st, ch]);
    }
    Some(seen)
}

/// Reconciles slot `s`: the phantoms removed, `None` if the zone was not quiet or the word
/// moved (retry later).
fn reconcile_slot(words: &[AtomicU64], layout: &Layout, s: u32) -> Option<u64> {
    let slots = Slots::new(words, layout);
    let first = quiet(words, layout)?;
    // Acquire (the loads up to the second pass): ordered between the two passes.
    let d = doubt(words, layout, s).load(Ordering::Acquire);
    let w = state(words, layout, s).load(Ordering::Acquire);
    let ctl = slots.control(s);
    let held = (0..layout.caps.threads).filter(|&t| first[2 * t as usize] != owner::FREE).fold(0u64, |a, t| {
        a.wrapping_add(procs::attribution_row(words, layout, t)[s as usize].load(Ordering::Acquire))
    });
    let listed = (0..layout.caps.processes)
        .filter(|&p| {
            matches!(
                ProcState::decode(first[2 * (layout.caps.threads + p) as usize]),
                Some(ProcState { kind: ProcKind::Live, .. })
            )
        })
        .filter(|&p| procs::is_listed(words, layout, p, s))
        .count() as u32;
    // Acquire: as above.
    if quiet(words, layout)? != first || doubt(words, layout, s).load(Ordering::Acquire) != d {
        return None;
    }
    let units = d & DOUBT_UNITS;
    let mut phantoms = 0;
    if units != 0 {
        let in_flight = in_flight_of(w);
        let p = (in_flight as i64).wrapping_sub(held as i64);
        if p < 0 || p as u64 > units {
            log::error!(
                "zone reconcile: slot {s} has {in_flight} in flight, {} held and {units} in doubt",
                held as i64
            );
            return None;
        }
        phantoms = p as u64;
        // AcqRel: succeeds only on the word read between the passes: no release since (its
        // completed count would differ) and no add (it only raises the count).
        // Failure: Relaxed, retry at the next maintenance.
        state(words, layout, s).compare_exchange(w, w - phantoms, Ordering::AcqRel, Ordering::Relaxed).ok()?;
        // AcqRel: as the sweep's doubt RMWs.
        doubt(words, layout, s).fetch_sub(units, Ordering::AcqRel);
        // Relaxed: a statistic.
        let _ =
            words[word::IN_DOUBT].fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| Some(v.saturating_sub(units)));
        count(words, word::RECONCILES, 1);
    }
    if d & LISTERS_IN_DOUBT != 0 {
        // A slot that is no longer LIVE has no listers to recount (its next claim starts at 1).
        if ctl.kind() == Kind::Live && !slots.set_listers(s, ctl, listed) {
            return None;
        }
        // AcqRel: after the listers are exact.
        doubt(words, layout, s).fetch_and(!LISTERS_IN_DOUBT, Ordering::AcqRel);
        if units == 0 {
            count(words, word::RECONCILES, 1);
        }
    }
    slots.try_reclaim(s);
    Some(phantoms)
}

impl super::Zone {
    /// Sweeps the records of this zone's dead processes, then reconciles the slots left in
    /// doubt (docs/design-zone.md 4.3, 4.4): the reservations a killed process held are
    /// subtracted from the in-flight counts, its listings and records are freed.
    ///
    /// Runs as this process's registration, made now if it has none (the same one its zone
    /// pools use). Every zone pool's build (at registration) and refresh (before fetching)
    /// sweeps too; call this when no refresh runs soon after a process died.
    ///
    /// Cost when every process is alive: one `kill(pid, 0)` and one read of
    /// `/proc/PID/stat` per registered process record, and one load of the doubt word per
    /// slot. Not on the hot path; lock-free, and it allocates.
    ///
    /// `in_doubt` counts the units left in doubt by threads killed inside a pick or release;
    /// the reconcile that follows removes them exactly when the zone is quiet (else a later
    /// sweep does).
    ///
    /// Errors: `ZoneFull` when this process must register and no process record is free.
    pub fn sweep(&self) -> Result<SweepReport, crate::Error> {
        self.0.sweep()
    }

    /// Sweeps the dead processes of this zone as registration `me` with `liveness`.
    #[doc(hidden)]
    pub(crate) fn sweep_as<L: Liveness + ?Sized>(&self, me: &Registration, liveness: &L) -> SweepReport {
        sweep(self.0.backing.words(), &self.0.layout, me, liveness)
    }

    /// Reconciles every slot in doubt (design 4.4).
    #[doc(hidden)]
    pub(crate) fn reconcile(&self) -> Reconciled {
        reconcile(self.0.backing.words(), &self.0.layout)
    }
}

/// What the crash tests (`tests/zone_crash_points.rs`) need: the sweep and the reconcile as
/// separate steps. Not a stable API.
#[cfg(all(feature = "crash-points", not(loom)))]
#[doc(hidden)]
impl super::Zone {
    /// [`Zone::sweep`](super::Zone::sweep) without its reconcile.
    pub fn crash_sweep(&self) -> Result<SweepReport, crate::Error> {
        self.0.sweep_only()
    }

    /// The reconcile of [`Zone::sweep`](super::Zone::sweep): (slots reconciled, phantom units
    /// removed, slots still pending).
    pub fn crash_reconcile(&self) -> (u32, u64, u32) {
        let r = self.reconcile();
        (r.slots, r.phantoms, r.pending)
    }
}

/// Liveness for the models: the pids in the list are dead, every other one alive.
#[cfg(loom)]
struct DeadPids<'a>(&'a [u32]);

#[cfg(loom)]
impl Liveness for DeadPids<'_> {
    fn judge(&self, pid: u32, _: u64) -> super::liveness::Verdict {
        if self.0.contains(&pid) {
            super::liveness::Verdict::Dead(super::liveness::Death::NoProcess)
        } else {
            super::liveness::Verdict::Alive
        }
    }
}

/// What the loom models (`tests/loom_zone_sweep.rs`) need to drive the production sweep and
/// reconcile on a model zone. Processes register with `Zone::proc_register` (pid = starttime).
#[cfg(loom)]
#[doc(hidden)]
impl super::Zone {
    /// `sweep` as the registration (record, generation) of `pid`, with the pids in `dead` dead.
    pub fn sweep_model(&self, record: u32, generation: u32, pid: u32, dead: &[u32]) -> SweepReport {
        self.sweep_as(&self.model_registration(record, generation, pid), &DeadPids(dead))
    }

    /// Registers `pid` (starttime = pid) as a process does, freeing a record held by a dead
    /// process (a pid in `dead`) first when none is free: (record, generation, spare).
    pub fn proc_register_sweeping_first(&self, pid: u32, dead: &[u32]) -> Result<(u32, u32, u32), crate::Error> {
        let (words, layout) = (self.0.backing.words(), &self.0.layout);
        let reg = register_sweeping_first(words, layout, pid, u64::from(pid), &DeadPids(dead))?;
        Ok((reg.index(), reg.generation(), reg.spare()))
    }

    /// `reconcile`: (slots reconciled, phantoms removed, slots pending).
    pub fn sweep_reconcile(&self) -> (u32, u64, u32) {
        let r = self.reconcile();
        (r.slots, r.phantoms, r.pending)
    }

    /// [`sim::pick`] on thread record `record` with window seq `seq`.
    pub fn sweep_sim_pick(&self, record: u32, seq: &mut u32, slot: u32, limit: u64, stop: usize) -> Option<bool> {
        sim::pick(self.0.backing.words(), &self.0.layout, (record, seq), slot, limit, stop)
    }

    /// [`sim::release`] on thread record `record` with window seq `seq`.
    pub fn sweep_sim_release(&self, record: u32, seq: &mut u32, slot: u32, stop: usize) -> Option<()> {
        sim::release(self.0.backing.words(), &self.0.layout, (record, seq), slot, stop)
    }

    /// Slot `slot`'s in-flight count.
    pub fn sweep_in_flight(&self, slot: u32) -> u64 {
        // SeqCst: a model's probe, the simplest ordering.
        in_flight_of(state(self.0.backing.words(), &self.0.layout, slot).load(Ordering::SeqCst))
    }

    /// Slot `slot`'s doubt word.
    pub fn sweep_doubt(&self, slot: u32) -> u64 {
        // SeqCst: a model's probe.
        doubt(self.0.backing.words(), &self.0.layout, slot).load(Ordering::SeqCst)
    }
}

/// The hot path's attribution steps on the zone words, for tests and models (`sim.rs`).
#[cfg(any(test, loom))]
pub(crate) mod sim;

#[cfg(test)]
mod tests;

/// What a zone holds, for tests that check a zone after crashes (`tests/zone_stress.rs`).
/// Not a stable API.
#[doc(hidden)]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ZoneCensus {
    /// LIVE slots: (slot index, listers).
    pub live: Vec<(u32, u32)>,
    /// Slots whose in-flight count is not 0: (slot index, in flight).
    pub in_flight: Vec<(u32, u64)>,
    /// Slots whose doubt word is not 0: (slot index, doubt word).
    pub doubt: Vec<(u32, u64)>,
    /// Process records that are not FREE: (record index, pid).
    pub processes: Vec<(u32, u32)>,
    /// Thread records owned by a process.
    pub thread_records: u32,
}

impl super::Zone {
    /// A census of the zone's slots and process records, read word by word (exact only when
    /// no process changes the zone meanwhile). For tests; not a stable API.
    #[doc(hidden)]
    pub fn census(&self) -> ZoneCensus {
        let (words, layout) = (self.0.backing.words(), &self.0.layout);
        let slots = Slots::new(words, layout);
        let mut out = ZoneCensus::default();
        for s in 0..layout.caps.hosts {
            let ctl = slots.control(s);
            if ctl.kind() == Kind::Live {
                out.live.push((s, ctl.who()));
            }
            // Acquire: a test's probe, after the writers it checks.
            let n = in_flight_of(state(words, layout, s).load(Ordering::Acquire));
            if n != 0 {
                out.in_flight.push((s, n));
            }
            // Acquire: as above.
            let d = doubt(words, layout, s).load(Ordering::Acquire);
            if d != 0 {
                out.doubt.push((s, d));
            }
        }
        for p in 0..layout.caps.processes {
            match procs::process_state(words, layout, p) {
                Some(ProcState { kind: ProcKind::Free, .. }) => {}
                st => out.processes.push((p, st.map_or(0, |st| st.pid))),
            }
        }
        out.thread_records =
            (0..layout.caps.threads).filter(|&t| procs::thread_owner(words, layout, t) != owner::FREE).count() as u32;
        out
    }

    /// Whether slot `index` is LIVE with the key (`name`, `address`). For tests.
    #[doc(hidden)]
    pub fn slot_is(&self, index: u32, name: &str, address: &str) -> bool {
        super::slots::Key::new(name, address, &self.0.layout)
            .is_ok_and(|key| Slots::new(self.0.backing.words(), &self.0.layout).holds_now(index, &key))
    }
}
