//! Process and thread records: who is attached to a zone, and which records each one owns
//! (docs/design-zone.md, sections 1.2, 3.4, 4.1).
//!
//! **Process records.** A process that uses a zone registers: it moves a free process record
//! from FREE{gen} to LIVE{pid, gen + 1} with one compare-and-swap (one winner per record), then
//! stores its starttime (field 22 of `/proc/self/stat`), so that the pair (pid, starttime)
//! survives pid reuse (module [`liveness`](super::liveness)). A registration is the pair
//! (record, gen); it also claims one *spare* thread record, which its threads fall back on when
//! they cannot get one of their own, so that a release never fails for want of a record.
//! Deregistration frees the thread records and moves the record to FREE{gen + 2}. A record
//! whose process is dead is found by [`dead_records`] and claimed for its sweep by
//! [`claim_for_sweep`]: LIVE{pid, gen} -> SWEEPING{pid, sweeper, gen} by CAS, one winner. The
//! sweep itself, and the takeover of a sweep whose sweeper died, are step S7.
//!
//! A registration remembers its pid: in a child forked after it was made,
//! [`Registration::is_current`] is false and the child registers anew.
//!
//! **Thread records** are owned by a registration: FREE -> OWNED{process, gen} by CAS, back to
//! FREE when the owner frees it with its attribution row at zero (otherwise it keeps the
//! record, whose row still counts reservations of the process). Their window word and their
//! row of the attribution matrix are written by the hot path (step S6).
//!
//! **Listing bitmap.** Bit s of a process record says that the process lists slot s. Changes
//! to it are bracketed by the record's change word (design 3.1 step 4): a process that dies
//! inside an attach or detach leaves the word busy, naming the slot (or "not known yet" for an
//! attach that has not found its slot), so whoever sweeps it knows which listers count may be
//! off by one. A process serialises its own listing changes (the process-local listers lock of
//! design 3.2); a second change begun while one is open is refused, never interleaved.
//!
//! Word formats, high bits first:
//!
//! | Word | Format |
//! |---|---|
//! | process state | `kind:3 (FREE 0, LIVE 1, SWEEPING 2) \| pid:22 \| sweeper:14 \| gen:25` |
//! | process change | `seq:32 \| slot+1:32` (0 idle, `u32::MAX` an attach whose slot is not known yet) |
//! | thread owner | `kind:2 (FREE 0, OWNED 1) \| 23 zero bits \| process:14 \| gen:25` |
//! | thread window | `seq:32 \| kind:2 (IDLE 0, PICK 1, RELEASE 2) \| slot+1:30` |
//!
//! A zero word is FREE{gen 0} or idle, so a freshly initialised zone has every record free.
//! Every record transition is a compare-and-swap from the exact word observed, and the
//! generations make a stale observation fail it; generations are 25 bits and wrap after 2^24
//! registrations of one record, far beyond any delay between a read and its CAS.

#![cfg_attr(
    not(test),
    allow(
        dead_code,
        reason = "not wired yet: a process reuses its thread records through a local free list, and its records go back to the zone only when a sweep finds it exited"
    )
)]

use std::cell::Cell;

use super::layout::Layout;
use super::liveness::{Death, Liveness, Verdict};
use crate::error::{Error, ErrorKind};
use crate::sync::{AtomicU64, Ordering};

#[cfg(test)]
mod tests;

const GEN_BITS: u32 = 25;
const GEN_MASK: u64 = (1 << GEN_BITS) - 1;
const SWEEPER_SHIFT: u32 = GEN_BITS;
/// The width of the sweeper field (a process index), which bounds `processes`
/// ([`ZoneCapacity::MAX_PROCESSES`](super::ZoneCapacity)).
pub(super) const SWEEPER_BITS: u32 = 14;
const PID_SHIFT: u32 = SWEEPER_SHIFT + SWEEPER_BITS;
const KIND_SHIFT: u32 = PID_SHIFT + 22;
/// Pids take 22 bits: Linux's `PID_MAX_LIMIT` is 2^22, and pids are below it.
const PID_LIMIT: u32 = 1 << 22;

/// Words of a process record (design 1.2). Visible to the zone module for the sweep
/// (src/zone/sweep.rs), which writes the cursor and marker words and reads the rest.
pub(super) mod pword {
    pub(crate) const STATE: u64 = 0;
    pub(crate) const STARTTIME: u64 = 1;
    pub(crate) const CHANGE: u64 = 2;
    pub(crate) const SWEEP_CURSOR: u64 = 3;
    /// Three words: the sweep marker.
    pub(crate) const SWEEP_MARKER: u64 = 4;
    pub(crate) const BITMAP: u64 = 8;
}

/// Words of a thread record: the owner word, the window word, then padding.
const THREAD_STRIDE: u64 = 16;
/// Visible to the zone module for the sweep (src/zone/sweep.rs), as are `WINDOW`,
/// `process_word`, `thread_word`, `next_gen` and the `change` word helpers.
pub(super) const OWNER: u64 = 0;
pub(super) const WINDOW: u64 = 1;

/// The kind of a process record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProcKind {
    Free = 0,
    Live = 1,
    Sweeping = 2,
}

/// A process record's state word, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ProcState {
    pub(crate) kind: ProcKind,
    pub(crate) pid: u32,
    /// The sweeping process's record index (SWEEPING only).
    pub(crate) sweeper: u32,
    pub(crate) generation: u32,
}

impl ProcState {
    pub(crate) fn free(generation: u32) -> Self {
        Self { kind: ProcKind::Free, pid: 0, sweeper: 0, generation }
    }

    pub(crate) fn encode(self) -> u64 {
        (self.kind as u64) << KIND_SHIFT
            | u64::from(self.pid) << PID_SHIFT
            | u64::from(self.sweeper) << SWEEPER_SHIFT
            | (u64::from(self.generation) & GEN_MASK)
    }

    /// `None` for a word no version of this code writes (kinds 3 to 7).
    pub(crate) fn decode(word: u64) -> Option<Self> {
        let kind = match word >> KIND_SHIFT {
            0 => ProcKind::Free,
            1 => ProcKind::Live,
            2 => ProcKind::Sweeping,
            _ => return None,
        };
        Some(Self {
            kind,
            pid: ((word >> PID_SHIFT) & u64::from(PID_LIMIT - 1)) as u32,
            sweeper: ((word >> SWEEPER_SHIFT) & ((1 << SWEEPER_BITS) - 1)) as u32,
            generation: (word & GEN_MASK) as u32,
        })
    }
}

pub(super) fn next_gen(generation: u32) -> u32 {
    ((u64::from(generation) + 1) & GEN_MASK) as u32
}

/// Thread-record owner words.
pub(crate) mod owner {
    pub(crate) const FREE: u64 = 0;
    const OWNED: u64 = 1 << 62;

    /// The owner word of a record owned by the registration (process record, gen).
    pub(crate) const fn owned(process: u32, generation: u32) -> u64 {
        OWNED | (process as u64) << super::GEN_BITS | (generation as u64 & super::GEN_MASK)
    }
}

/// Thread-record window words (written by the hot path, step S6).
pub(crate) mod window {
    pub(crate) const IDLE: u64 = 0;
    pub(crate) const PICK: u64 = 1;
    pub(crate) const RELEASE: u64 = 2;
    const KIND_SHIFT: u32 = 30;

    /// The window word of step `seq` of kind `kind` (IDLE, PICK or RELEASE) on `slot`.
    pub(crate) const fn encode(seq: u32, kind: u64, slot: Option<u32>) -> u64 {
        let slot = match slot {
            Some(s) => s as u64 + 1,
            None => 0,
        };
        (seq as u64) << 32 | kind << KIND_SHIFT | slot
    }

    /// The slot of an open window (PICK or RELEASE), `None` for an idle one.
    pub(crate) const fn open_on(word: u64) -> Option<u32> {
        if (word >> KIND_SHIFT) & 3 == IDLE || word & ((1 << KIND_SHIFT) - 1) == 0 {
            return None;
        }
        Some((word & ((1 << KIND_SHIFT) - 1)) as u32 - 1)
    }
}

/// Change words: `seq:32 | slot+1:32`.
pub(super) mod change {
    /// The slot field of an attach that has not found its slot yet.
    pub(super) const SLOT_UNKNOWN: u64 = u32::MAX as u64;

    /// The slot a busy change word names (`None`: idle, or an attach whose slot is not known).
    pub(crate) const fn slot(word: u64) -> Option<u32> {
        match word & 0xffff_ffff {
            0 | SLOT_UNKNOWN => None,
            s => Some(s as u32 - 1),
        }
    }

    pub(super) const fn busy(seq: u32, slot: Option<u32>) -> u64 {
        let slot = match slot {
            Some(s) => s as u64 + 1,
            None => SLOT_UNKNOWN,
        };
        (seq as u64) << 32 | slot
    }

    pub(super) const fn idle(seq: u32) -> u64 {
        (seq as u64) << 32
    }

    pub(super) const fn seq(word: u64) -> u32 {
        (word >> 32) as u32
    }

    pub(crate) const fn is_idle(word: u64) -> bool {
        word as u32 == 0
    }
}

/// One process's registration in a zone: its process record and generation, the pid and
/// starttime it registered with, and its spare thread record.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Registration {
    index: u32,
    generation: u32,
    pid: u32,
    starttime: u64,
    spare: u32,
}

impl Registration {
    /// The process record's index.
    pub(crate) fn index(&self) -> u32 {
        self.index
    }

    /// The LIVE generation of the record.
    pub(crate) fn generation(&self) -> u32 {
        self.generation
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// The spare thread record (design 3.4), owned for as long as the registration lives.
    pub(crate) fn spare(&self) -> u32 {
        self.spare
    }

    /// Whether this registration is the calling process's: false in a child forked after it
    /// was made, which must register anew (its own pid and starttime) before using the zone.
    pub(crate) fn is_current(&self) -> bool {
        self.pid == std::process::id()
    }

    /// The owner word of the thread records this registration owns.
    pub(crate) fn owner(&self) -> u64 {
        owner::owned(self.index, self.generation)
    }

    fn state(&self) -> u64 {
        ProcState { kind: ProcKind::Live, pid: self.pid, sweeper: 0, generation: self.generation }.encode()
    }
}

pub(super) fn process_word<'a>(words: &'a [AtomicU64], layout: &Layout, index: u32, word: u64) -> &'a AtomicU64 {
    debug_assert!(index < layout.caps.processes);
    &words[(layout.processes + u64::from(index) * layout.process_stride + word) as usize]
}

pub(super) fn thread_word<'a>(words: &'a [AtomicU64], layout: &Layout, record: u32, word: u64) -> &'a AtomicU64 {
    debug_assert!(record < layout.caps.threads);
    &words[(layout.threads + u64::from(record) * THREAD_STRIDE + word) as usize]
}

/// Thread record `record`'s window word (written by the hot path of its owner).
pub(crate) fn window_word<'a>(words: &'a [AtomicU64], layout: &Layout, record: u32) -> &'a AtomicU64 {
    thread_word(words, layout, record, WINDOW)
}

/// Thread record `record`'s row of the attribution matrix: one word per slot.
pub(crate) fn attribution_row<'a>(words: &'a [AtomicU64], layout: &Layout, record: u32) -> &'a [AtomicU64] {
    let stride = u64::from(layout.caps.hosts).div_ceil(16) * 16;
    let start = (layout.matrix + u64::from(record) * stride) as usize;
    &words[start..start + layout.caps.hosts as usize]
}

/// The state word of process record `index`, decoded (`None` for a corrupt word).
pub(crate) fn process_state(words: &[AtomicU64], layout: &Layout, index: u32) -> Option<ProcState> {
    // Acquire: pairs with the Release of the transition that wrote it, so what that process
    // wrote before (its starttime, a freer's zeroing) is visible after this load.
    ProcState::decode(process_word(words, layout, index, pword::STATE).load(Ordering::Acquire))
}

/// The owner word of thread record `record`.
pub(crate) fn thread_owner(words: &[AtomicU64], layout: &Layout, record: u32) -> u64 {
    // Acquire: pairs with the claim's or the free's Release.
    thread_word(words, layout, record, OWNER).load(Ordering::Acquire)
}

fn zone_full(what: &str, count: u32) -> Error {
    Error::new(ErrorKind::ZoneFull, format!("zone full: all {count} {what} records are taken"))
}

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidArgument, message)
}

/// Registers process `pid`, started at `starttime` (0 if unknown: judged by `kill` only), in
/// a free process record, and claims its spare thread record.
///
/// Each free record is tried once, in order, so this takes at most `processes` + `threads`
/// CAS attempts, each lost only to another registration. Errors: `InvalidArgument` for pid 0
/// or a pid of 2^22 or more; `ZoneFull` when no process record or no thread record for the
/// spare is free (the process record is then given back).
pub(crate) fn register(words: &[AtomicU64], layout: &Layout, pid: u32, starttime: u64) -> Result<Registration, Error> {
    if pid == 0 || pid >= PID_LIMIT {
        return Err(invalid(format!("pid {pid} is outside 1..{PID_LIMIT}")));
    }
    for index in 0..layout.caps.processes {
        let state = process_word(words, layout, index, pword::STATE);
        // Relaxed: a hint of which record to try; the CAS below decides.
        let seen = state.load(Ordering::Relaxed);
        let Some(ProcState { kind: ProcKind::Free, generation, .. }) = ProcState::decode(seen) else { continue };
        let generation = next_gen(generation);
        let live = ProcState { kind: ProcKind::Live, pid, sweeper: 0, generation }.encode();
        // AcqRel: Acquire pairs with the Release free that zeroed the starttime before we
        // write it; Release orders the freer's zeroing before LIVE for anyone who reads LIVE
        // (our own starttime comes after, read as 0 until then: judged by kill only).
        // Failure: another process took the record; Relaxed, we move on.
        if state.compare_exchange(seen, live, Ordering::AcqRel, Ordering::Relaxed).is_err() {
            continue;
        }
        // The record is ours now: clear what a sweep of an earlier process may have left.
        for w in
            [pword::CHANGE, pword::SWEEP_CURSOR, pword::SWEEP_MARKER, pword::SWEEP_MARKER + 1, pword::SWEEP_MARKER + 2]
        {
            // Relaxed: ordered before the Release store of the starttime below, and read by
            // a sweeper only once this process is dead (its words final).
            process_word(words, layout, index, w).store(0, Ordering::Relaxed);
        }
        // Release: a sweeper that reads it (Acquire) after LIVE judges us by it.
        process_word(words, layout, index, pword::STARTTIME).store(starttime, Ordering::Release);
        let mut reg = Registration { index, generation, pid, starttime, spare: 0 };
        match claim_thread_record(words, layout, &reg) {
            Ok(spare) => {
                reg.spare = spare;
                return Ok(reg);
            }
            Err(e) => {
                free_process_record(words, layout, &reg);
                return Err(e);
            }
        }
    }
    Err(zone_full("process", layout.caps.processes))
}

/// Gives record `reg` back: its starttime to 0, then LIVE{gen} -> FREE{gen + 1}. `false` if
/// the record was no longer `reg`'s (a sweeper claimed it). Only the starttime is cleared
/// here, because a next registrant's starttime is stored after its LIVE and a stale one would
/// judge it dead meanwhile; the other words are cleared by the next registrant, which owns
/// them then (clearing them here could wipe the journal of a sweeper that won the record).
fn free_process_record(words: &[AtomicU64], layout: &Layout, reg: &Registration) -> bool {
    // Relaxed: published by the Release CAS that frees the record.
    process_word(words, layout, reg.index, pword::STARTTIME).store(0, Ordering::Relaxed);
    let free = ProcState::free(next_gen(reg.generation)).encode();
    // Release: the next registrant (Acquire) finds the words zeroed above. Failure: Relaxed,
    // the record is a sweeper's now and we touch nothing more.
    process_word(words, layout, reg.index, pword::STATE)
        .compare_exchange(reg.state(), free, Ordering::Release, Ordering::Relaxed)
        .is_ok()
}

/// Checks that `reg` still holds its process record LIVE (not swept, not deregistered).
fn check_live(words: &[AtomicU64], layout: &Layout, reg: &Registration) -> Result<(), Error> {
    // Acquire: as in `process_state`.
    let now = process_word(words, layout, reg.index, pword::STATE).load(Ordering::Acquire);
    if now != reg.state() {
        return Err(invalid(format!(
            "process record {} is no longer this registration's (pid {}, generation {}): it is {:?}",
            reg.index,
            reg.pid,
            reg.generation,
            ProcState::decode(now)
        )));
    }
    Ok(())
}

/// Claims a free thread record for `reg`: FREE -> OWNED{reg} by CAS. Each record is tried
/// once (at most `threads` CAS attempts). Errors: `ZoneFull` when none is free;
/// `InvalidArgument` when `reg` no longer holds its process record.
pub(crate) fn claim_thread_record(words: &[AtomicU64], layout: &Layout, reg: &Registration) -> Result<u32, Error> {
    check_live(words, layout, reg)?;
    for record in 0..layout.caps.threads {
        let owner = thread_word(words, layout, record, OWNER);
        // Relaxed: a hint; the CAS below decides.
        if owner.load(Ordering::Relaxed) != owner::FREE {
            continue;
        }
        // Acquire: pairs with the Release free, so the window and row that the last owner or
        // its sweeper zeroed read as zero to us. Failure: taken meanwhile; Relaxed, move on.
        if owner.compare_exchange(owner::FREE, reg.owner(), Ordering::Acquire, Ordering::Relaxed).is_ok() {
            return Ok(record);
        }
    }
    Err(zone_full("thread", layout.caps.threads))
}

/// Why thread record `record` of `reg` cannot be freed now (`Ok(None)`: it can).
fn unfreeable(words: &[AtomicU64], layout: &Layout, reg: &Registration, record: u32) -> Result<Option<String>, Error> {
    if record >= layout.caps.threads {
        return Err(invalid(format!("thread record {record} is outside 0..{}", layout.caps.threads)));
    }
    let owner = thread_owner(words, layout, record);
    if owner != reg.owner() {
        return Err(invalid(format!(
            "thread record {record} is not owned by process record {} generation {}",
            reg.index, reg.generation
        )));
    }
    // Relaxed: only threads of this process write the record, and handing it between them
    // orders their writes before us.
    let w = thread_word(words, layout, record, WINDOW).load(Ordering::Relaxed);
    if let Some(slot) = window::open_on(w) {
        return Err(invalid(format!("thread record {record} is inside a window on slot {slot}")));
    }
    // Relaxed: as for the window.
    let held = attribution_row(words, layout, record).iter().position(|a| a.load(Ordering::Relaxed) != 0);
    Ok(held.map(|slot| format!("thread record {record} still attributes reservations on slot {slot}")))
}

/// Frees thread record `record` of `reg` if its attribution row is all zero (`Ok(true)`);
/// otherwise the record stays owned, because its row still counts some of the process's
/// reservations (a reservation picked through one record and released through another leaves
/// +1 and -1 rows), and `Ok(false)` says to keep it for reuse by this process.
///
/// Errors (`InvalidArgument`): a record out of range, not owned by `reg`, or inside a window.
pub(crate) fn release_thread_record(
    words: &[AtomicU64],
    layout: &Layout,
    reg: &Registration,
    record: u32,
) -> Result<bool, Error> {
    if unfreeable(words, layout, reg, record)?.is_some() {
        return Ok(false);
    }
    free_thread_record(words, layout, reg, record)
}

fn free_thread_record(words: &[AtomicU64], layout: &Layout, reg: &Registration, record: u32) -> Result<bool, Error> {
    // Release: a reconcile whose pass reads this idle window (Acquire) while the owner still
    // reads as ours then reads the rows as `deregister_balanced` zeroed them (model Z13), not
    // a partial sum; the next owner is served by the Release CAS below.
    thread_word(words, layout, record, WINDOW).store(window::IDLE, Ordering::Release);
    // Release: the next owner (Acquire) finds the zeroed window and row. Failure: Relaxed;
    // only a sweeper of this registration could have changed it.
    thread_word(words, layout, record, OWNER)
        .compare_exchange(reg.owner(), owner::FREE, Ordering::Release, Ordering::Relaxed)
        .map(|_| true)
        .map_err(|now| invalid(format!("thread record {record} changed owner while being freed: {now:#x}")))
}

/// Ends `reg`: frees its thread records (the spare included), then its process record
/// (LIVE{gen} -> FREE{gen + 1}).
///
/// Refused with `InvalidArgument`, changing nothing, while the process still lists a slot, is
/// inside a listing change, or has a thread record inside a window or still attributing
/// reservations (an exit with work outstanding is swept instead, step S7), or when the record
/// is no longer `reg`'s. The caller guarantees that no thread of the process uses the zone
/// meanwhile.
pub(crate) fn deregister(words: &[AtomicU64], layout: &Layout, reg: &Registration) -> Result<(), Error> {
    check_live(words, layout, reg)?;
    check_unlisted(words, layout, reg)?;
    let owned: Vec<u32> = (0..layout.caps.threads).filter(|&t| thread_owner(words, layout, t) == reg.owner()).collect();
    for &record in &owned {
        if let Some(why) = unfreeable(words, layout, reg, record)? {
            return Err(invalid(why));
        }
    }
    deregister_unchecked(words, layout, reg)
}

/// Refuses (`InvalidArgument`) while `reg` lists a slot or is inside a listing change.
fn check_unlisted(words: &[AtomicU64], layout: &Layout, reg: &Registration) -> Result<(), Error> {
    // Relaxed: written only by this process, whose threads are done with the zone.
    let change = process_word(words, layout, reg.index, pword::CHANGE).load(Ordering::Relaxed);
    if !change::is_idle(change) {
        return Err(invalid(format!("process record {} is inside a listing change", reg.index)));
    }
    if let Some(slot) = (0..layout.caps.hosts).find(|&s| is_listed(words, layout, reg.index, s)) {
        return Err(invalid(format!("process record {} still lists slot {slot}", reg.index)));
    }
    Ok(())
}

/// The frees of [`deregister`], its checks done: every thread record of `reg` (window IDLE,
/// owner FREE), then the process record.
fn deregister_unchecked(words: &[AtomicU64], layout: &Layout, reg: &Registration) -> Result<(), Error> {
    let owned: Vec<u32> = (0..layout.caps.threads).filter(|&t| thread_owner(words, layout, t) == reg.owner()).collect();
    for record in owned {
        free_thread_record(words, layout, reg, record)?;
    }
    if !free_process_record(words, layout, reg) {
        return Err(invalid(format!("process record {} was claimed while being freed", reg.index)));
    }
    Ok(())
}

/// Ends `reg` at its process's normal end (design 4.1): as [`deregister`], after zeroing the
/// rows of its thread records, which may hold `+1` on one record and `-1` on another (a
/// reservation picked through one and released through another) but must sum to 0 on every
/// slot. Refused with `InvalidArgument`, changing nothing, when a record is inside a window or
/// some slot's sum is not 0 (units still held: such an exit is swept instead), and as
/// [`deregister`]. The caller guarantees that no thread of the process uses the zone.
pub(crate) fn deregister_balanced(words: &[AtomicU64], layout: &Layout, reg: &Registration) -> Result<(), Error> {
    check_live(words, layout, reg)?;
    check_unlisted(words, layout, reg)?;
    let owned: Vec<u32> = (0..layout.caps.threads).filter(|&t| thread_owner(words, layout, t) == reg.owner()).collect();
    for &t in &owned {
        // Relaxed: written only by this process's threads, which are done with the zone.
        if let Some(slot) = window::open_on(thread_word(words, layout, t, WINDOW).load(Ordering::Relaxed)) {
            return Err(invalid(format!("thread record {t} is inside a window on slot {slot}")));
        }
    }
    for s in 0..layout.caps.hosts as usize {
        // Relaxed: as the windows.
        let sum = owned
            .iter()
            .fold(0u64, |a, &t| a.wrapping_add(attribution_row(words, layout, t)[s].load(Ordering::Relaxed)));
        if sum != 0 {
            return Err(invalid(format!(
                "process record {} still attributes {} units on slot {s}",
                reg.index, sum as i64
            )));
        }
    }
    // The rows change one word at a time, so their sum is not 0 in between: open a window on
    // every record first, so that a reconcile (design 4.4) whose row reads see any of it finds
    // a window open or a window word changed, and leaves the slot pending (it subtracts the
    // rows from the count; a partial sum could make it remove a live unit).
    for &t in &owned {
        // Relaxed: ordered before the rows' Release stores below, which publish it.
        thread_word(words, layout, t, WINDOW).store(window::encode(0, window::RELEASE, Some(0)), Ordering::Relaxed);
    }
    for &t in &owned {
        for a in attribution_row(words, layout, t) {
            // Release: a reconcile that reads this (Acquire) reads the window opened above.
            a.store(0, Ordering::Release);
        }
    }
    deregister_unchecked(words, layout, reg)
}

/// A LIVE process record whose process [`dead_records`] found dead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DeadRecord {
    pub(crate) index: u32,
    /// The state word observed (LIVE{pid, gen}): what [`claim_for_sweep`] replaces.
    pub(crate) state: u64,
    pub(crate) pid: u32,
    pub(crate) generation: u32,
    pub(crate) starttime: u64,
    pub(crate) death: Death,
}

impl DeadRecord {
    /// The state SWEEPING{pid, `sweeper`, gen} that a sweep by record `sweeper` claims this
    /// record with ([`claim_for_sweep`]) and then holds it in.
    pub(crate) fn sweeping(&self, sweeper: u32) -> ProcState {
        ProcState { kind: ProcKind::Sweeping, pid: self.pid, sweeper, generation: self.generation }
    }
}

/// The LIVE process records whose process `liveness` judges dead, judged one by one as the
/// iterator advances (one `kill` and one `/proc` read each, with [`System`](super::liveness::System)).
///
/// A record's pid and starttime are read as a consistent pair (its state word read again
/// after the starttime; a record that changed meanwhile is skipped: it is not the process
/// that was judged). A record is only a candidate: [`claim_for_sweep`] decides who sweeps it.
pub(crate) fn dead_records<'a, L: Liveness + ?Sized>(
    words: &'a [AtomicU64],
    layout: &'a Layout,
    liveness: &'a L,
) -> impl Iterator<Item = DeadRecord> + 'a {
    (0..layout.caps.processes).filter_map(move |index| {
        let state = process_word(words, layout, index, pword::STATE);
        // Acquire: pairs with the registration's Release CAS (and its free's), so the starttime
        // read next is this registration's or a later one's, never an earlier one's.
        let seen = state.load(Ordering::Acquire);
        let (pid, generation, starttime) = match ProcState::decode(seen)? {
            ProcState { kind: ProcKind::Live, pid, generation, .. } => {
                // Acquire: pairs with the registrant's Release store of its starttime.
                (pid, generation, process_word(words, layout, index, pword::STARTTIME).load(Ordering::Acquire))
            }
            // A record swept by the registrant that frees it for itself (`sweep::free_a_dead_record`):
            // its pid is the registrant's, judged by `kill` only (its starttime is not recorded).
            ProcState { kind: ProcKind::Sweeping, pid, sweeper, generation } if sweeper == index => {
                (pid, generation, 0)
            }
            _ => return None,
        };
        // Acquire: as the first load; an unchanged word means the starttime is this record's.
        if state.load(Ordering::Acquire) != seen {
            return None;
        }
        match liveness.judge(pid, starttime) {
            Verdict::Alive => None,
            Verdict::Dead(death) => Some(DeadRecord { index, state: seen, pid, generation, starttime, death }),
        }
    })
}

/// Claims dead record `dead` for `me` to sweep: LIVE{pid, gen} -> SWEEPING{pid, me, gen} by
/// CAS from the observed word, so of all sweepers exactly one gets `true`; a record that
/// changed since it was observed (swept, freed, registered anew) gives `false`.
pub(crate) fn claim_for_sweep(words: &[AtomicU64], layout: &Layout, dead: &DeadRecord, me: &Registration) -> bool {
    let sweeping = dead.sweeping(me.index).encode();
    // Acquire: the dead process's last Release stores (window, row, listing) are visible to
    // the sweep that follows. Failure: another sweeper won or the record moved on; Relaxed.
    process_word(words, layout, dead.index, pword::STATE)
        .compare_exchange(dead.state, sweeping, Ordering::Acquire, Ordering::Relaxed)
        .is_ok()
}

/// Whether process record `index` lists slot `slot` (its bitmap bit).
pub(crate) fn is_listed(words: &[AtomicU64], layout: &Layout, index: u32, slot: u32) -> bool {
    let (word, bit) = bitmap_bit(slot);
    // Acquire: pairs with the Release fetch_or/fetch_and of `ListingChange`.
    process_word(words, layout, index, pword::BITMAP + word).load(Ordering::Acquire) & bit != 0
}

fn bitmap_bit(slot: u32) -> (u64, u64) {
    (u64::from(slot / 64), 1 << (slot % 64))
}

/// An open listing change of one process (design 3.1 step 4): the change word is busy until
/// this is dropped. Made by [`begin_listing_change`].
#[derive(Debug)]
pub(crate) struct ListingChange<'a> {
    words: &'a [AtomicU64],
    layout: &'a Layout,
    index: u32,
    seq: u32,
    /// The slot the change word names (`None`: not known yet).
    slot: Cell<Option<u32>>,
}

/// Opens a listing change of `reg` on `slot` (`None`: an attach that has not found its slot
/// yet; name it with [`ListingChange::list`] once found). The caller does its listers update
/// and bitmap change inside the bracket: an attach increments the slot's listers, then
/// [`list`](ListingChange::list)s; a detach [`unlist`](ListingChange::unlist)s, then decrements.
///
/// Errors (`InvalidArgument`): a slot out of range, a change of this process already open
/// (listing changes of one process must be serialised), or a record no longer `reg`'s.
pub(crate) fn begin_listing_change<'a>(
    words: &'a [AtomicU64],
    layout: &'a Layout,
    reg: &Registration,
    slot: Option<u32>,
) -> Result<ListingChange<'a>, Error> {
    check_live(words, layout, reg)?;
    if let Some(s) = slot {
        check_slot(layout, s)?;
    }
    let change_word = process_word(words, layout, reg.index, pword::CHANGE);
    // Relaxed: only this process writes the word; the CAS below checks it.
    let seen = change_word.load(Ordering::Relaxed);
    let seq = change::seq(seen).wrapping_add(1);
    // Acquire: follows the Release end of the previous change (maybe made by another thread of
    // this process). What the change does is published by its own Release steps. Failure:
    // Relaxed, refused below.
    if !change::is_idle(seen)
        || change_word.compare_exchange(seen, change::busy(seq, slot), Ordering::Acquire, Ordering::Relaxed).is_err()
    {
        return Err(invalid(format!("process record {} already has a listing change open", reg.index)));
    }
    Ok(ListingChange { words, layout, index: reg.index, seq, slot: Cell::new(slot) })
}

fn check_slot(layout: &Layout, slot: u32) -> Result<(), Error> {
    if slot >= layout.caps.hosts {
        return Err(invalid(format!("slot {slot} is outside 0..{}", layout.caps.hosts)));
    }
    Ok(())
}

impl ListingChange<'_> {
    /// Names `slot` in the change word if it does not yet (what an attach does before each
    /// CAS that may list it: slots.rs's journal hook).
    pub(crate) fn name(&self, slot: u32) -> Result<(), Error> {
        check_slot(self.layout, slot)?;
        if self.slot.get() != Some(slot) {
            // Relaxed: read by a sweeper only once this process is dead (its words final) and
            // compared by a reconcile; the Release bitmap change after it orders it for both.
            process_word(self.words, self.layout, self.index, pword::CHANGE)
                .store(change::busy(self.seq, Some(slot)), Ordering::Relaxed);
            self.slot.set(Some(slot));
        }
        Ok(())
    }

    fn bitmap(&self, slot: u32) -> (&AtomicU64, u64) {
        let (word, bit) = bitmap_bit(slot);
        (process_word(self.words, self.layout, self.index, pword::BITMAP + word), bit)
    }

    /// Sets the bit of `slot` (call it after the listers increment); `true` if it was clear.
    pub(crate) fn list(&self, slot: u32) -> Result<bool, Error> {
        self.name(slot)?;
        let (word, bit) = self.bitmap(slot);
        // Release: whoever sees the bit sees the listers increment made before it (over-count
        // on a death, never under-count).
        Ok(word.fetch_or(bit, Ordering::Release) & bit == 0)
    }

    /// Clears the bit of `slot` (call it before the listers decrement); `true` if it was set.
    pub(crate) fn unlist(&self, slot: u32) -> Result<bool, Error> {
        self.name(slot)?;
        let (word, bit) = self.bitmap(slot);
        // Release: the change word naming the slot is ordered before the cleared bit.
        Ok(word.fetch_and(!bit, Ordering::Release) & bit != 0)
    }
}

impl Drop for ListingChange<'_> {
    fn drop(&mut self) {
        // Release: whoever reads the idle word (Acquire) sees the whole change before it.
        process_word(self.words, self.layout, self.index, pword::CHANGE)
            .store(change::idle(self.seq.wrapping_add(1)), Ordering::Release);
    }
}

/// What the loom models (`tests/loom_zone_procs.rs`) need to drive the production records on
/// a model zone (`Zone::model`, built under loom only). A "process" is a model thread with its
/// own pid; the pid doubles as its starttime.
#[cfg(loom)]
#[doc(hidden)]
impl super::Zone {
    /// The registration (record, generation) of `pid` (also for the sweep models, src/zone/sweep.rs).
    pub(super) fn model_registration(&self, record: u32, generation: u32, pid: u32) -> Registration {
        Registration { index: record, generation, pid, starttime: u64::from(pid), spare: 0 }
    }

    /// `register` as process `pid`: (process record, generation, spare thread record).
    pub fn proc_register(&self, pid: u32) -> Result<(u32, u32, u32), Error> {
        let reg = register(self.0.backing.words(), &self.0.layout, pid, u64::from(pid))?;
        Ok((reg.index, reg.generation, reg.spare))
    }

    /// `deregister_balanced` of the registration (record, generation) of `pid`.
    pub fn proc_deregister_balanced(&self, record: u32, generation: u32, pid: u32) -> Result<(), Error> {
        deregister_balanced(self.0.backing.words(), &self.0.layout, &self.model_registration(record, generation, pid))
    }

    /// `claim_thread_record` for the registration (record, generation) of `pid`.
    pub fn proc_claim_thread_record(&self, record: u32, generation: u32, pid: u32) -> Result<u32, Error> {
        claim_thread_record(self.0.backing.words(), &self.0.layout, &self.model_registration(record, generation, pid))
    }

    /// `release_thread_record` for the registration (record, generation) of `pid`.
    pub fn proc_release_thread_record(
        &self,
        record: u32,
        generation: u32,
        pid: u32,
        thread: u32,
    ) -> Result<bool, Error> {
        let reg = self.model_registration(record, generation, pid);
        release_thread_record(self.0.backing.words(), &self.0.layout, &reg, thread)
    }

    /// Thread record `thread`'s owner word.
    pub fn proc_thread_owner(&self, thread: u32) -> u64 {
        thread_owner(self.0.backing.words(), &self.0.layout, thread)
    }

    /// The owner word of the thread records of registration (record, generation).
    pub fn proc_owner_word(record: u32, generation: u32) -> u64 {
        owner::owned(record, generation)
    }

    /// Process record `record`'s state word.
    pub fn proc_state_word(&self, record: u32) -> u64 {
        process_state(self.0.backing.words(), &self.0.layout, record).map_or(u64::MAX, ProcState::encode)
    }

    /// The state word of a LIVE record of `pid` in `generation`.
    pub fn proc_live_word(pid: u32, generation: u32) -> u64 {
        ProcState { kind: ProcKind::Live, pid, sweeper: 0, generation }.encode()
    }
}
