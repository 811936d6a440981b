use std::ptr::NonNull;

use super::*;
use crate::host::{GUARD, INFLIGHT_MASK};
use crate::zone::liveness::Oracle;
use crate::zone::procs::{begin_listing_change, claim_thread_record, register};
use crate::zone::slots::Key;
use crate::zone::{Zone, ZoneCapacity, ZoneInit};

/// 8 slots, 4 process records, 6 thread records: a zone of a few KiB (quick under Miri).
const CAPS: ZoneCapacity = ZoneCapacity { hosts: 8, address_bytes: 32, fail_ring: 1, processes: 4, threads: 6 };

/// No stop: the step sequence runs to its end.
const ALL: usize = usize::MAX;

/// A zone on 8-aligned heap memory (runs under Miri).
struct Fixture {
    zone: Zone,
    _mem: Vec<u64>,
}

/// A simulated thread: its record and the seq of its next window.
struct Thread {
    record: u32,
    seq: u32,
}

impl Fixture {
    fn new() -> Self {
        Self::anonymous_or(None)
    }

    fn anonymous_or(zone: Option<Zone>) -> Self {
        if let Some(zone) = zone {
            return Fixture { zone, _mem: Vec::new() };
        }
        let len = Zone::size_for(&CAPS).unwrap();
        let mut mem = vec![0u64; len / 8];
        let ptr = NonNull::new(mem.as_mut_ptr().cast::<u8>()).unwrap();
        // SAFETY: `mem` lives in the fixture as long as the zone and is only touched through it.
        let zone = unsafe { Zone::from_memory(ptr, len, ZoneInit::Create(CAPS)) }.unwrap();
        Fixture { zone, _mem: mem }
    }

    fn words(&self) -> &[AtomicU64] {
        self.zone.0.backing.words()
    }

    fn layout(&self) -> &Layout {
        &self.zone.0.layout
    }

    /// Registers process `pid` with starttime `10 * pid`.
    fn process(&self, pid: u32) -> Registration {
        register(self.words(), self.layout(), pid, u64::from(pid) * 10).unwrap()
    }

    fn thread(&self, reg: &Registration) -> Thread {
        Thread { record: claim_thread_record(self.words(), self.layout(), reg).unwrap(), seq: 0 }
    }

    /// `reg` lists `address` (the slot is created if needed), journaled as a pool does.
    fn attach(&self, reg: &Registration, address: &str) -> u32 {
        let key = Key::new("app", address, self.layout()).unwrap();
        let journal = begin_listing_change(self.words(), self.layout(), reg, None).unwrap();
        Slots::new(self.words(), self.layout()).attach(&key, reg.index(), &journal).unwrap().index
    }

    fn word(&self, s: u32) -> &AtomicU64 {
        state(self.words(), self.layout(), s)
    }

    fn in_flight(&self, s: u32) -> u64 {
        // SeqCst: a test's probe, the simplest ordering.
        self.word(s).load(Ordering::SeqCst) & INFLIGHT_MASK
    }

    fn doubt(&self, s: u32) -> u64 {
        // SeqCst: as in `in_flight`.
        doubt(self.words(), self.layout(), s).load(Ordering::SeqCst)
    }

    fn header(&self, i: usize) -> u64 {
        // SeqCst: as in `in_flight`.
        self.words()[i].load(Ordering::SeqCst)
    }

    fn listers(&self, s: u32) -> u32 {
        Slots::new(self.words(), self.layout()).control(s).who()
    }

    fn kind(&self, s: u32) -> Kind {
        Slots::new(self.words(), self.layout()).control(s).kind()
    }

    fn proc_kind(&self, index: u32) -> ProcKind {
        procs::process_state(self.words(), self.layout(), index).unwrap().kind
    }

    fn owned_records(&self) -> Vec<u64> {
        (0..CAPS.threads).map(|t| procs::thread_owner(self.words(), self.layout(), t)).collect()
    }

    fn sweep(&self, me: &Registration, oracle: &Oracle) -> SweepReport {
        self.zone.sweep_as(me, oracle)
    }

    fn sweep_until(&self, me: &Registration, oracle: &Oracle, stop: u32) -> SweepReport {
        sweep_records(self.words(), self.layout(), me, procs::dead_records(self.words(), self.layout(), oracle), stop)
    }

    fn reconcile(&self) -> Reconciled {
        self.zone.reconcile()
    }

    fn window(&self, t: &Thread) -> &AtomicU64 {
        thread_word(self.words(), self.layout(), t.record, WINDOW)
    }

    /// [`sim::pick`] by thread `t` (stopped after step `stop`).
    fn pick(&self, t: &mut Thread, s: u32, limit: u64, stop: usize) -> Option<bool> {
        sim::pick(self.words(), self.layout(), (t.record, &mut t.seq), s, limit, stop)
    }

    /// [`sim::release`] by thread `t` (stopped after step `stop`).
    fn release(&self, t: &mut Thread, s: u32, stop: usize) -> Option<()> {
        sim::release(self.words(), self.layout(), (t.record, &mut t.seq), s, stop)
    }

    /// `count` complete picks of `s` by `t`, each of which must reserve.
    fn hold(&self, t: &mut Thread, s: u32, count: usize) {
        for _ in 0..count {
            assert_eq!(self.pick(t, s, 1 << 20, ALL), Some(true));
        }
    }
}

#[test]
fn held_reservations_of_a_killed_process_return_exactly() {
    let f = Fixture::new();
    let oracle = Oracle::with(&[(1, 10), (2, 20)]);
    let (parent, child) = (f.process(1), f.process(2));
    let (a, b) = (f.attach(&parent, "a:1"), f.attach(&parent, "b:1"));
    assert_eq!((f.attach(&child, "a:1"), f.attach(&child, "b:1")), (a, b));
    let mut p = f.thread(&parent);
    let (mut c1, mut c2) = (f.thread(&child), f.thread(&child));
    f.hold(&mut p, a, 2);
    f.hold(&mut c1, a, 3);
    f.hold(&mut c1, b, 2);
    // Picked on one thread, released on another: rows +1 and -1, sum 0 on b.
    f.hold(&mut c1, b, 1);
    f.release(&mut c2, b, ALL).unwrap();
    assert_eq!((f.in_flight(a), f.in_flight(b)), (5, 2));

    oracle.kill(2);
    assert_eq!(f.sweep(&parent, &oracle), SweepReport { processes: 1, recovered: 5, in_doubt: 0 });
    assert_eq!((f.in_flight(a), f.in_flight(b)), (2, 0));
    assert_eq!((f.doubt(a), f.doubt(b)), (0, 0));
    assert_eq!(f.proc_kind(child.index()), ProcKind::Free);
    let mine = parent.owner();
    assert_eq!(f.owned_records().iter().filter(|&&o| o != owner::FREE && o != mine).count(), 0);
    for t in [c1.record, c2.record] {
        assert!(procs::attribution_row(f.words(), f.layout(), t).iter().all(|w| w.load(Ordering::SeqCst) == 0));
    }
    assert_eq!((f.listers(a), f.listers(b)), (1, 1), "the child's listings are dropped");
    assert_eq!((f.header(word::SWEEPS), f.header(word::RECOVERED), f.header(word::IN_DOUBT)), (1, 5, 0));
    // Nothing is left to sweep, and nothing to reconcile.
    assert_eq!(f.sweep(&parent, &oracle), SweepReport::default());
    assert_eq!(f.reconcile(), Reconciled::default());
}

/// The pick and release steps, the stop point, and what the sweep must leave: in-flight on
/// the slot where the parent holds 2 and the child 3, and the doubt (design 4.5's table).
const CRASH_TABLE: [(&str, usize, u64, u64); 15] = [
    // Outside a window: exact.
    ("pick", 0, 2, 0),
    // Window open, before the intent: 2 of 3 subtracted, one unit in doubt (a phantom).
    ("pick", 1, 3, 1),
    // After the intent, before the add: 3 of 4 subtracted, nothing phantom but in doubt.
    ("pick", 2, 2, 1),
    // After the add: the fourth unit is held by nobody.
    ("pick", 3, 3, 1),
    ("pick", ALL, 2, 0),
    // The failure path (the slot full at 5): after the failed add, after its undo, after the
    // intent's undo.
    ("full", 3, 3, 1),
    ("full", 4, 2, 1),
    ("full", 5, 3, 1),
    ("full", ALL, 2, 0),
    ("release", 0, 2, 0),
    ("release", 1, 3, 1),
    ("release", 2, 2, 1),
    ("release", 3, 3, 1),
    ("release", ALL, 2, 0),
    // Complete picks and releases leave nothing in doubt whichever the path.
    ("pick-release", ALL, 2, 0),
];

#[test]
fn a_process_killed_at_each_step_of_a_pick_or_release_is_swept_exactly_or_one_unit_in_doubt() {
    for (op, stop, in_flight, in_doubt) in CRASH_TABLE {
        let f = Fixture::new();
        let oracle = Oracle::with(&[(1, 10), (2, 20)]);
        let (parent, child) = (f.process(1), f.process(2));
        let s = f.attach(&parent, "a:1");
        let (mut p, mut c) = (f.thread(&parent), f.thread(&child));
        f.hold(&mut p, s, 2);
        f.hold(&mut c, s, 3);
        match op {
            "pick" => drop(f.pick(&mut c, s, 5, stop)),
            "full" => assert_eq!(f.pick(&mut c, s, 5, stop), stop.eq(&ALL).then_some(false)),
            "release" => drop(f.release(&mut c, s, stop)),
            _ => {
                f.hold(&mut c, s, 1);
                f.release(&mut c, s, stop).unwrap();
            }
        }
        oracle.kill(2);
        let report = f.sweep(&parent, &oracle);
        let case = format!("{op} stopped after step {stop}");
        assert_eq!((f.in_flight(s), f.doubt(s)), (in_flight, in_doubt), "{case}");
        assert_eq!((report.processes, report.in_doubt), (1, in_doubt), "{case}");
        assert_eq!(f.header(word::IN_DOUBT), in_doubt, "{case}");
        // Reconcile: exact, nothing in doubt, never below the parent's 2.
        let done = f.reconcile();
        assert_eq!(done, Reconciled { slots: u32::from(in_doubt > 0), phantoms: in_flight - 2, pending: 0 }, "{case}");
        assert_eq!((f.in_flight(s), f.doubt(s), f.header(word::IN_DOUBT)), (2, 0, 0), "{case}");
        // The parent's own reservations still release normally.
        f.release(&mut p, s, ALL).unwrap();
        f.release(&mut p, s, ALL).unwrap();
        assert_eq!(f.in_flight(s), 0, "{case}");
    }
}

#[test]
fn reconcile_waits_for_a_quiet_zone_and_never_removes_a_live_unit() {
    let f = Fixture::new();
    let oracle = Oracle::with(&[(1, 10), (2, 20)]);
    let (parent, child) = (f.process(1), f.process(2));
    let s = f.attach(&parent, "a:1");
    let (mut p, mut c) = (f.thread(&parent), f.thread(&child));
    f.hold(&mut p, s, 1);
    f.hold(&mut c, s, 1);
    assert_eq!(f.pick(&mut c, s, 10, 3), None, "killed after its add");
    oracle.kill(2);
    f.sweep(&parent, &oracle);
    assert_eq!((f.in_flight(s), f.doubt(s)), (2, 1));
    // A live thread inside a window: not quiet, nothing changes.
    assert_eq!(f.pick(&mut p, s, 10, 3), None);
    assert_eq!(f.reconcile(), Reconciled { slots: 0, phantoms: 0, pending: 1 });
    assert_eq!((f.in_flight(s), f.doubt(s)), (3, 1));
    // Its window closes (the same steps, completed by hand): quiet again.
    p.seq += 1;
    // SeqCst: the test's store, the simplest ordering.
    f.window(&p).store(window::encode(p.seq, window::IDLE, None), Ordering::SeqCst);
    assert_eq!(f.reconcile(), Reconciled { slots: 1, phantoms: 1, pending: 0 });
    assert_eq!((f.in_flight(s), f.doubt(s)), (2, 0), "both of the parent's reservations stay");
}

#[test]
fn two_sweepers_of_one_dead_record_subtract_once() {
    let f = Fixture::new();
    let oracle = Oracle::with(&[(1, 10), (2, 20), (3, 30)]);
    let (first, second, dead) = (f.process(1), f.process(2), f.process(3));
    let s = f.attach(&first, "a:1");
    let mut t = f.thread(&first);
    f.hold(&mut t, s, 2);
    let mut d = f.thread(&dead);
    f.hold(&mut d, s, 3);
    oracle.kill(3);
    // Both observe the dead record before either claims it.
    let seen_by_second: Vec<_> = procs::dead_records(f.words(), f.layout(), &oracle).collect();
    assert_eq!(f.sweep(&first, &oracle).recovered, 3);
    let late = sweep_records(f.words(), f.layout(), &second, seen_by_second.into_iter(), NEVER);
    assert_eq!(late, SweepReport::default(), "the stale observation claims nothing");
    assert_eq!(f.in_flight(s), 2);
    // The record is free; a new process that takes it is not swept by the stale view either.
    let reborn = f.process(4);
    assert_eq!(reborn.index(), dead.index());
    let seen = procs::DeadRecord {
        index: dead.index(),
        state: ProcState { kind: ProcKind::Live, pid: 3, sweeper: 0, generation: dead.generation() }.encode(),
        pid: 3,
        generation: dead.generation(),
        starttime: 30,
        death: crate::zone::liveness::Death::NoProcess,
    };
    assert_eq!(sweep_records(f.words(), f.layout(), &second, [seen].into_iter(), NEVER), SweepReport::default());
    assert_eq!(f.proc_kind(reborn.index()), ProcKind::Live);
}

#[test]
fn a_sweeper_stopped_at_any_point_is_taken_over_without_under_count() {
    for stop in point::ALL {
        let f = Fixture::new();
        let oracle = Oracle::with(&[(1, 10), (2, 20), (3, 30)]);
        let (taker, sweeper, dead) = (f.process(1), f.process(2), f.process(3));
        let (a, b) = (f.attach(&taker, "a:1"), f.attach(&taker, "b:1"));
        f.attach(&dead, "a:1");
        let mut t = f.thread(&taker);
        f.hold(&mut t, a, 2);
        f.hold(&mut t, b, 1);
        let (mut d1, mut d2) = (f.thread(&dead), f.thread(&dead));
        f.hold(&mut d1, a, 3);
        f.hold(&mut d2, b, 2);
        // d2 dies after its add on b: one unit in doubt there.
        assert_eq!(f.pick(&mut d2, b, 10, 3), None);
        oracle.kill(3);
        let case = format!("sweeper stopped at point {stop}");
        f.sweep_until(&sweeper, &oracle, stop);
        oracle.kill(2);
        let report = f.sweep(&taker, &oracle);
        assert_eq!(report.processes, 2, "{case}: the sweeper and the record it was sweeping");
        // The dead process attributes 3 units on each slot (a: n 3, u 0; b: n 2, u 1).
        for (s, held) in [(a, 2), (b, 1)] {
            let units = f.doubt(s) & DOUBT_UNITS;
            assert!(f.in_flight(s) >= held, "{case}: never an under-count");
            assert!(f.in_flight(s) - held <= units, "{case}: every unit over is in doubt on slot {s}");
            assert!(f.in_flight(s) - held <= 3, "{case}: at most n + u over on slot {s}");
            // The dead sweeper's doubt add and the taker's repeat of it, at most.
            assert!(units <= 2 * 3, "{case}: doubt on slot {s} is {units}");
        }
        assert_eq!([f.proc_kind(1), f.proc_kind(2)], [ProcKind::Free; 2], "{case}");
        assert_eq!(f.owned_records().iter().filter(|&&o| o != owner::FREE).count(), 2, "{case}: the taker's only");
        // Reconcile: exact, and the listers recounted where a listing step was cut.
        let done = f.reconcile();
        assert_eq!(done.pending, 0, "{case}");
        assert_eq!((f.in_flight(a), f.in_flight(b), f.doubt(a), f.doubt(b)), (2, 1, 0, 0), "{case}");
        assert_eq!((f.listers(a), f.listers(b)), (1, 1), "{case}");
    }
}

#[test]
fn listings_of_a_dead_process_are_dropped_and_an_unlisted_idle_slot_is_reclaimed() {
    let f = Fixture::new();
    let oracle = Oracle::with(&[(1, 10), (2, 20)]);
    let (parent, child) = (f.process(1), f.process(2));
    let shared = f.attach(&parent, "a:1");
    assert_eq!(f.attach(&child, "a:1"), shared);
    let own = f.attach(&child, "b:1");
    assert_eq!((f.listers(shared), f.listers(own)), (2, 1));
    oracle.kill(2);
    f.sweep(&parent, &oracle);
    assert_eq!(f.listers(shared), 1);
    assert_eq!(f.kind(shared), Kind::Live);
    assert_eq!(f.kind(own), Kind::Tomb, "listed by nobody, idle: reclaimed");
}

#[test]
fn a_process_killed_inside_a_listing_change_leaves_its_listers_in_doubt_until_reconcile() {
    let f = Fixture::new();
    let oracle = Oracle::with(&[(1, 10), (2, 20)]);
    let (parent, child) = (f.process(1), f.process(2));
    let s = f.attach(&parent, "a:1");
    // The child dies after the listers increment, before its bitmap bit (the change open).
    let key = Key::new("app", "a:1", f.layout()).unwrap();
    let change = begin_listing_change(f.words(), f.layout(), &child, Some(s)).unwrap();
    let slots = Slots::new(f.words(), f.layout());
    slots.attach(&key, child.index(), &crate::zone::slots::NoJournal).unwrap();
    std::mem::forget(change);
    // A claim of another key, never published.
    let other = Key::new("app", "c:1", f.layout()).unwrap();
    let claimed = slots.claim_and_stop(&other, child.index(), 1).unwrap();
    assert_eq!(f.listers(s), 2);
    oracle.kill(2);
    f.sweep(&parent, &oracle);
    assert_eq!(f.doubt(s), LISTERS_IN_DOUBT);
    assert_eq!(f.listers(s), 2, "unknown which way the change went: kept");
    assert_eq!(f.kind(claimed), Kind::Tomb, "the dead claimer's slot");
    assert_eq!(f.reconcile(), Reconciled { slots: 1, phantoms: 0, pending: 0 });
    assert_eq!((f.listers(s), f.doubt(s)), (1, 0));
}

#[test]
#[cfg_attr(miri, ignore = "fork, kill(2) and /proc are not available under Miri")]
fn a_sigkilled_child_holding_reservations_on_two_slots_is_swept_exactly() {
    let f = Fixture::anonymous_or(Some(Zone::anonymous(&CAPS).unwrap()));
    let me =
        register(f.words(), f.layout(), std::process::id(), crate::zone::liveness::self_starttime().unwrap()).unwrap();
    let (a, b) = (f.attach(&me, "a:1"), f.attach(&me, "b:1"));
    let mut mine = f.thread(&me);
    f.hold(&mut mine, a, 1);
    let mut pipe = [0; 2];
    // SAFETY: `pipe` is a writable pair of descriptors.
    assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0);
    // SAFETY: the child runs only the block below (glibc's fork resets the allocator's locks
    // in the child) and never returns into the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let start = crate::zone::liveness::self_starttime().unwrap_or(0);
        let ok = register(f.words(), f.layout(), std::process::id(), start).ok().map(|reg| {
            let mut t = f.thread(&reg);
            f.hold(&mut t, a, 3);
            f.hold(&mut t, b, 2);
            reg.index()
        });
        let answer = ok.unwrap_or(u32::MAX);
        // SAFETY: writes the 4 bytes of a live local; then waits for SIGKILL without
        // returning into the harness.
        unsafe {
            libc::write(pipe[1], (&answer as *const u32).cast(), 4);
            loop {
                libc::pause();
            }
        }
    }
    let mut index = 0u32;
    // SAFETY: reads 4 bytes into a live local; the descriptors are ours, closed once; `pid`
    // is our child, killed and reaped once.
    let status = unsafe {
        assert_eq!(libc::read(pipe[0], (&mut index as *mut u32).cast(), 4), 4);
        libc::close(pipe[0]);
        libc::close(pipe[1]);
        libc::kill(pid, libc::SIGKILL);
        let mut status = 0;
        assert_eq!(libc::waitpid(pid, &mut status, 0), pid);
        status
    };
    assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL, "{status:#x}");
    assert_eq!(index, 1, "the child registered in the next record");
    assert_eq!((f.in_flight(a), f.in_flight(b)), (4, 2));
    let report = sweep(f.words(), f.layout(), &me, &crate::zone::liveness::System);
    assert_eq!(report, SweepReport { processes: 1, recovered: 5, in_doubt: 0 });
    assert_eq!((f.in_flight(a), f.in_flight(b), f.doubt(a), f.doubt(b)), (1, 0, 0, 0));
    assert_eq!(f.proc_kind(1), ProcKind::Free);
}

#[test]
fn attributions_beyond_the_count_never_borrow_the_guard_and_negative_sums_change_nothing() {
    let f = Fixture::new();
    let oracle = Oracle::with(&[(1, 10), (2, 20)]);
    let (parent, child) = (f.process(1), f.process(2));
    let (a, b) = (f.attach(&parent, "a:1"), f.attach(&parent, "b:1"));
    let mut p = f.thread(&parent);
    f.hold(&mut p, b, 1);
    let mut c = f.thread(&child);
    f.hold(&mut c, a, 1);
    let row = procs::attribution_row(f.words(), f.layout(), c.record);
    // SeqCst (both): the test damages the rows directly, the simplest ordering.
    row[a as usize].store(3, Ordering::SeqCst);
    row[b as usize].store(u64::MAX, Ordering::SeqCst);
    oracle.kill(2);
    let report = f.sweep(&parent, &oracle);
    assert_eq!(report, SweepReport { processes: 1, recovered: 1, in_doubt: 0 }, "only what was in flight");
    // SeqCst: a test's probe.
    assert_eq!(f.word(a).load(Ordering::SeqCst) & (GUARD | INFLIGHT_MASK), GUARD, "nothing in flight, GUARD kept");
    assert_eq!((f.in_flight(b), f.doubt(a), f.doubt(b)), (1, 0, 0), "a sum of -1 is refused, the count untouched");
}

/// Design 4.1, "sweep, then register", when every process record is held: a registrant with
/// no record frees one that a dead process holds by sweeping it as the record itself
/// (`free_a_dead_record`), exactly, then registers there. A registrant killed in the middle
/// of that sweep leaves a self-swept record that no one takes while the registrant lives, and
/// that a registered sweeper takes over (resuming the marked step, never under-counting) once
/// it is dead.
#[test]
fn a_registrant_frees_a_dead_record_and_its_own_death_mid_sweep_is_taken_over() {
    let f = Fixture::new();
    let oracle = Oracle::with(&[(1, 10), (2, 20), (3, 30), (4, 40), (5, 0), (6, 0)]);
    let regs: Vec<Registration> = (1..=4).map(|pid| f.process(pid)).collect();
    let a = f.attach(&regs[0], "a:1");
    assert_eq!(f.attach(&regs[1], "a:1"), a);
    let mut p = f.thread(&regs[0]);
    f.hold(&mut p, a, 2);
    let mut d = f.thread(&regs[1]);
    f.hold(&mut d, a, 3);
    assert_eq!(register(f.words(), f.layout(), 5, 0).unwrap_err().kind(), crate::ErrorKind::ZoneFull);

    // Process 2 dies; registrant 5 (alive) frees its record, stopped after the subtraction.
    oracle.kill(2);
    assert!(!free_a_dead_record_until(f.words(), f.layout(), 5, &oracle, point::SUBTRACTED));
    let held = procs::process_state(f.words(), f.layout(), regs[1].index()).unwrap();
    assert_eq!((held.kind, held.pid, held.sweeper), (ProcKind::Sweeping, 5, regs[1].index()));
    assert_eq!((f.in_flight(a), f.doubt(a)), (2, 3));
    // While the registrant lives, its self-swept record is nobody else's.
    assert_eq!(f.sweep(&regs[0], &oracle), SweepReport::default());
    assert_eq!(f.proc_kind(regs[1].index()), ProcKind::Sweeping);

    // The registrant dies: process 1 takes the record over (the marked step stays in doubt).
    oracle.kill(5);
    assert_eq!(f.sweep(&regs[0], &oracle), SweepReport { processes: 1, recovered: 0, in_doubt: 3 });
    assert_eq!((f.in_flight(a), f.doubt(a)), (2, 6));
    assert_eq!(f.proc_kind(regs[1].index()), ProcKind::Free);
    assert_eq!(f.listers(a), 1);
    assert_eq!(f.reconcile(), Reconciled { slots: 1, phantoms: 0, pending: 0 });
    assert_eq!((f.in_flight(a), f.doubt(a)), (2, 0));

    // Process 3 dies holding nothing; registrant 6 frees its record whole and registers.
    oracle.kill(3);
    assert_eq!(register(f.words(), f.layout(), 6, 0).map(|r| r.index()), Ok(regs[1].index()));
    assert_eq!(register(f.words(), f.layout(), 7, 0).unwrap_err().kind(), crate::ErrorKind::ZoneFull);
    assert!(free_a_dead_record(f.words(), f.layout(), 7, &oracle));
    assert_eq!(f.proc_kind(regs[2].index()), ProcKind::Free);
    assert!(!free_a_dead_record(f.words(), f.layout(), 7, &oracle), "no dead process left");
    assert_eq!((f.in_flight(a), f.doubt(a)), (2, 0));
}
