//! Loom models Z4 and Z9 of docs/design-zone.md (section 6.1): the per-process lifetime of a
//! zone pool's `Host`s (design 3.5) and the lock-free fold of a zone slot's picks total
//! (CONCURRENCY.md protocol 7), driving the production pool, registry, release, attribution
//! and stats code on a model zone (`Zone::model`).
//!
//! Under loom a zone `Host` carries a loom cell that every use of its state pointer reads
//! (`Host::state`) and its free writes (`with_mut`, in `Drop for Host`), so loom fails a model
//! in which any access to the host is not ordered before its free; the pool's `host_census`
//! counts allocations and frees ("exactly once"), and loom's `Track` reports a host never freed.
//! Under loom every zone pick and release attributes through the registration's spare record
//! (see `tests/loom_zone_pools.rs`).
#![cfg(loom)]

mod loom_support;

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize as StdAtomicUsize, Ordering as StdOrdering};

use leastconn::{Outcome, PassiveHealth, Pool, SlotView, Static, Upstream, Zone, ZoneCapacity, source};
use loom::thread;

const A: &str = "10.0.0.1:80";
const B: &str = "10.0.0.2:80";
const CAPS: ZoneCapacity = ZoneCapacity { hosts: 4, address_bytes: 32, fail_ring: 1, processes: 2, threads: 2 };
/// The state word's bias and in-flight field (src/host.rs): a word whose low 30 bits are
/// `GUARD` has nothing in flight.
const GUARD: u64 = 1 << 29;
const COUNT: u64 = (GUARD << 1) - 1;
/// The state word's 31-bit `completed` field starts here.
const COMPLETED_SHIFT: u32 = 33;

/// A pool named `name` on `zone` whose source returns `[A, B]` on its first call (the build)
/// and `[B]` afterwards.
fn pool_that_drops_a(zone: &Zone, name: &str) -> Pool {
    // Plain std counter: refreshes are serialised, and the source is not part of any protocol.
    let calls = StdAtomicUsize::new(0);
    let src = source::from_fn(move |_| {
        let list = if calls.fetch_add(1, StdOrdering::SeqCst) == 0 { vec![A, B] } else { vec![B] };
        Ok(list.into_iter().map(Upstream::new).collect())
    });
    Pool::builder(src).zone(zone, name).passive_health(PassiveHealth::OFF).build().unwrap()
}

/// A pool named `name` on `zone` listing `addr` alone, without `max_requests`.
fn static_pool(zone: &Zone, name: &str, addr: &str) -> Pool {
    Pool::builder(Static::from_addresses([addr])).zone(zone, name).passive_health(PassiveHealth::OFF).build().unwrap()
}

/// How many executions of a model ended each way (plain std counters: they live across
/// executions, which is what they count), so that a model can assert that loom explored
/// every outcome it claims to cover.
struct Outcomes([StdAtomicUsize; 3]);

impl Outcomes {
    fn saw(&self, which: usize) {
        self.0[which].fetch_add(1, StdOrdering::Relaxed);
    }

    fn counts(&self) -> [usize; 3] {
        self.0.each_ref().map(|n| n.load(StdOrdering::Relaxed))
    }
}

/// The view of a slot LIVE in generation `generation` with exactly `listers` listers.
fn live(generation: u32, listers: u32) -> SlotView {
    SlotView { kind: "LIVE", who: listers, generation }
}

/// The view of a slot reclaimed once after generation `generation` (a TOMB of the next one).
fn reclaimed(generation: u32) -> SlotView {
    SlotView { kind: "TOMB", who: 0, generation: generation + 1 }
}

/// Z4: a reservation on A is released (as a failure: one more access to the host) on one
/// thread while another refreshes the pool to `[B]`, whose registry sweep drops A's `Host` as
/// soon as no snapshot lists it and this process's attribution sum on A's slot is 0.
/// Property: the `Host` is freed exactly once, and only after every access of the release
/// (loom's `with_mut` check); freed by the racing sweep or else by the next refresh, never
/// earlier than the release's `A[s] -= 1`; the slot is detached and reclaimed exactly at that
/// free (LIVE with this process as its one lister until then, a TOMB of the next generation
/// after), its in-flight count is 0 once the release is done, and B is untouched.
#[test]
fn release_after_detach_frees_the_host_after_its_last_access() {
    static SEEN: Outcomes = Outcomes([const { StdAtomicUsize::new(0) }; 3]);
    loom_support::check("release_after_detach_frees_the_host_after_its_last_access", || {
        let zone = Zone::model(&CAPS).unwrap();
        let p = pool_that_drops_a(&zone, "app");
        let census = p.host_census();
        let (slot, generation) = zone.slot_lookup("app", A).unwrap().expect("A is listed");
        let r = p.select_excluding(&[p.host_stats(B).unwrap().id]).unwrap();
        assert_eq!(r.address(), A);
        let releaser = thread::spawn(move || r.release(Outcome::Failure));
        let refresher = {
            let p = p.clone();
            thread::spawn(move || p.refresh().unwrap().reclaimed)
        };
        releaser.join().unwrap();
        let swept = refresher.join().unwrap();
        let freed = census.freed();
        assert!(freed <= 1, "freed {freed} times");
        assert_eq!(swept, freed, "only the sweep frees A while the pool lives");
        assert_eq!(zone.slot_state_word(slot) & COUNT, GUARD, "nothing in flight on A's slot after the release");
        if freed == 0 {
            // The sweep ran before the release's last step: A waits, listed by this process.
            assert_eq!(zone.slot_view(slot), live(generation, 1), "detached before the host was freed");
            let a = p.host_stats(A).unwrap();
            assert_eq!((a.listed, a.in_flight, a.picks), (false, 0, 1));
        } else {
            assert_eq!(zone.slot_view(slot), reclaimed(generation), "freed without detaching and reclaiming");
        }
        assert_eq!(p.live_hosts(), 2 - freed);
        SEEN.saw(freed);
        p.refresh().unwrap(); // the release is done: this sweep frees A at the latest
        assert_eq!((census.allocated(), census.freed(), p.live_hosts()), (2, 1, 1));
        assert_eq!(zone.slot_view(slot), reclaimed(generation));
        assert_eq!(zone.slot_lookup("app", A).unwrap(), None);
        assert_eq!(zone.slot_state_word(slot), GUARD, "the reclaim resets the slot's words");
        let b = p.host_stats(B).unwrap();
        assert_eq!((b.in_flight, b.picks), (0, 0));
        drop(p);
        assert_eq!(census.freed(), 2);
        let left = zone.census();
        assert!(left.live.is_empty() && left.in_flight.is_empty() && left.doubt.is_empty(), "{left:?}");
    });
    let [later, racing, _] = SEEN.counts();
    assert!(later > 0 && racing > 0, "freed by the next refresh {later} times, by the racing one {racing} times");
}

/// Z4b: the pool goes while a reservation on A is held, so A's `Host` waits in the zone's
/// draining list; the release runs on one thread while another pool of the process on the
/// same zone refreshes (its maintenance frees the draining hosts whose slot has nothing of
/// this process in flight). Property: A's `Host` is freed exactly once, only after every access
/// of the release, by the pool's drop, by the racing maintenance, or else by the next one; its
/// slot stays LIVE with one lister until then and is reclaimed at the free.
#[test]
fn release_after_pool_drop_frees_the_draining_host_once() {
    static SEEN: Outcomes = Outcomes([const { StdAtomicUsize::new(0) }; 3]);
    loom_support::check("release_after_pool_drop_frees_the_draining_host_once", || {
        let zone = Zone::model(&CAPS).unwrap();
        let (p, other) = (static_pool(&zone, "app", A), static_pool(&zone, "other", B));
        let census = p.host_census();
        let (slot, generation) = zone.slot_lookup("app", A).unwrap().expect("A is listed");
        let r = p.select().unwrap();
        let releaser = thread::spawn(move || r.release(Outcome::Success));
        let maintainer = {
            let other = other.clone();
            thread::spawn(move || {
                other.refresh().unwrap();
            })
        };
        drop(p);
        // No loom operation between the drop's last one and this read: no other thread runs.
        let freed_by_then = census.freed();
        releaser.join().unwrap();
        maintainer.join().unwrap();
        let freed = census.freed();
        assert!(freed <= 1, "freed {freed} times");
        SEEN.saw(if freed_by_then == 1 {
            0
        } else if freed == 1 {
            1
        } else {
            2
        });
        assert_eq!(zone.slot_state_word(slot) & COUNT, GUARD, "nothing in flight on A's slot after the release");
        if freed == 0 {
            assert_eq!(zone.slot_view(slot), live(generation, 1), "detached before the host was freed");
        } else {
            assert_eq!(zone.slot_view(slot), reclaimed(generation), "freed without detaching and reclaiming");
        }
        other.refresh().unwrap(); // the release is done: this maintenance frees A at the latest
        assert_eq!((census.allocated(), census.freed()), (1, 1));
        assert_eq!(zone.slot_view(slot), reclaimed(generation));
        assert_eq!(zone.slot_state_word(slot), GUARD, "the reclaim resets the slot's words");
    });
    let [by_drop, by_maintenance, later] = SEEN.counts();
    assert!(
        by_drop > 0 && by_maintenance > 0 && later > 0,
        "freed by the drop {by_drop}, the racing maintenance {by_maintenance}, the next one {later} times"
    );
}

/// Z9: two pools of one name on the zone (two `Host`s of one slot: what the pools of two
/// processes are to the fold, which reads and CASes only the slot's words) each fold the slot's
/// picks total (`Pool::stats`) while a third thread releases a reservation made through one of
/// them (a first one was picked and released before) and then makes a release with nothing in
/// flight (a copied C pick released twice, here through the thread record of a second
/// registered process), which is refused. Property: that release is refused; every fold reports
/// the 2 picks made, or 3 while the refused release is between its two RMWs (protocol 2: "picks
/// one higher per pending refusal"), and loom reaches both; at rest both pools report exactly 2
/// (a fold that stored 3 was stepped back, no release counted twice or lost) and the slot's word
/// shows 2 completed, nothing in flight.
///
/// The fold's CAS (rather than a load and a store) and its Acquire/Release pairing keep the
/// total's bits above the 31-bit `completed` field right; below 2^31 releases every fold
/// computes `completed + in-flight` of the word it read whatever the total it started from, so a
/// model (which cannot make 2^31 releases) does not tell those variants apart: what it pins is
/// the step-back rule and the refusal's undo.
#[test]
fn concurrent_folds_count_every_pick() {
    static SEEN: Outcomes = Outcomes([const { StdAtomicUsize::new(0) }; 3]);
    loom_support::check("concurrent_folds_count_every_pick", || {
        let zone = Zone::model(&CAPS).unwrap();
        let (a, b) = (static_pool(&zone, "app", A), static_pool(&zone, "app", A));
        let (slot, _) = zone.slot_lookup("app", A).unwrap().expect("A is listed");
        let (_, _, second_process_record) = zone.proc_register(2).unwrap();
        a.select().unwrap().release(Outcome::Success);
        let held = b.select().unwrap();
        let copy = zone.model_host(slot);
        let releaser = thread::spawn(move || {
            held.release(Outcome::Success);
            copy.release(second_process_record, &Cell::new(0))
        });
        let folder = {
            let b = b.clone();
            thread::spawn(move || b.stats()[0].picks)
        };
        let mine = a.stats()[0].picks;
        let theirs = folder.join().unwrap();
        assert!(!releaser.join().unwrap(), "a release with nothing in flight was accepted");
        for (who, picks) in [("main", mine), ("the other thread", theirs)] {
            assert!(picks == 2 || picks == 3, "{who}'s fold reported {picks} picks of 2");
            SEEN.saw(picks as usize - 2);
        }
        for p in [&a, &b] {
            let s = &p.stats()[0];
            assert_eq!((s.picks, s.in_flight), (2, 0));
        }
        let word = zone.slot_state_word(slot);
        assert_eq!((word >> COMPLETED_SHIFT, word & COUNT), (2, GUARD));
    });
    let [two, three, _] = SEEN.counts();
    assert!(two > 0 && three > 0, "folds reported 2 picks {two} times, 3 {three} times");
}
