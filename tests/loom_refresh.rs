//! Loom models: list changes while picks are in flight, and the reclamation of removed hosts.
//!
//! Under loom every host state carries a `loom::alloc::Track`, so a host that is never freed
//! fails the model ("Allocation leaked"), and freeing one runs checks of its own (see
//! `Drop for Host` in `src/host.rs`): the state word is read with `with_mut`, so loom proves
//! that every pick and release on the host happens-before the free (no use after free), and
//! the word must say "retired, nothing in flight" (freed once, after its last release). The
//! pool's `host_census` counts allocations and frees, so the models assert "exactly once".
#![cfg(loom)]

mod loom_support;

use std::sync::atomic::{AtomicUsize, Ordering};

use leastconn::{Error, Outcome, PassiveHealth, Pool, Reservation, Upstream, source};
use loom::thread;

const A: &str = "10.0.0.1:80";
const B: &str = "10.0.0.2:80";

/// A pool whose source returns `[A, B]` on its first call (the build) and `[B]` afterwards.
fn pool_that_drops_a() -> Pool {
    // Plain std counter: refreshes are serialised, and the source is not part of any protocol.
    let calls = AtomicUsize::new(0);
    let src = source::from_fn(move |_| {
        let list = if calls.fetch_add(1, Ordering::SeqCst) == 0 { vec![A, B] } else { vec![B] };
        Ok(list.into_iter().map(Upstream::new).collect())
    });
    Pool::builder(src).passive_health(PassiveHealth::OFF).build().unwrap()
}

/// Picks with `pick`, checks that the address's state is the reserved one while it is held,
/// releases.
fn pick_check_release(p: &Pool, mut pick: impl FnMut(&Pool) -> Result<Reservation, Error>) -> String {
    let r = pick(p).unwrap();
    let stats = p.host_stats(r.address()).unwrap();
    assert_eq!(stats.id, r.host_id(), "the address has a state other than the reserved one");
    assert!(stats.in_flight >= 1, "the reservation is not counted on its host");
    let addr = r.address().to_owned();
    r.release(Outcome::Success);
    addr
}

/// Two picks and releases (one through `Pool::select`, one through a seeded `Picker`) race
/// with a refresh that removes host A. Property: each release lands on the host its pick
/// reserved (the address's state is the reserved one while it is held, and counters end at
/// zero); A's state is freed exactly once, only after its last release, and by the refresh
/// that follows its last release at the latest; B's state is never freed while the pool lives.
#[test]
fn release_after_removal_lands_on_the_reserved_host() {
    loom_support::check("release_after_removal_lands_on_the_reserved_host", || {
        let p = pool_that_drops_a();
        let census = p.host_census();
        let select = {
            let p = p.clone();
            thread::spawn(move || pick_check_release(&p, |p| p.select()))
        };
        let cached = {
            let (p, mut picker) = (p.clone(), p.picker_seeded(5));
            thread::spawn(move || pick_check_release(&p, |_| picker.select()))
        };
        let refresher = {
            let p = p.clone();
            thread::spawn(move || p.refresh().unwrap())
        };
        let picked = [select.join().unwrap(), cached.join().unwrap()];
        refresher.join().unwrap();
        p.refresh().unwrap(); // A's last release is done: this sweep reclaims A at the latest.
        assert_eq!((census.allocated(), census.freed()), (2, 1));
        assert_eq!(p.live_hosts(), 1);
        let b = p.host_stats(B).unwrap();
        assert_eq!((b.in_flight, b.picks), (0, picked.iter().filter(|a| *a == B).count() as u64));
        drop(p);
        assert_eq!(census.freed(), 2);
    });
}

/// A reservation outlives the pool: one thread releases it (as a failure) while the main
/// thread drops its pool handle, a second thread picks through a `Picker` (which keeps the
/// pool alive) and drops it, and a third refreshes (removing A) and drops its handle.
/// Property: whoever comes last (a releaser, the sweep, or the pool's final drop) frees each
/// host, exactly once, and only after its last release.
#[test]
fn release_after_pool_drop_frees_each_host_once() {
    loom_support::check("release_after_pool_drop_frees_each_host_once", || {
        let p = pool_that_drops_a();
        let census = p.host_census();
        let r = p.select().unwrap();
        let mut picker = p.picker_seeded(1);
        let releaser = thread::spawn(move || r.release(Outcome::Failure));
        let other = thread::spawn(move || drop(picker.select().unwrap()));
        let refresher = {
            let p = p.clone();
            thread::spawn(move || {
                p.refresh().unwrap();
            })
        };
        drop(p);
        releaser.join().unwrap();
        other.join().unwrap();
        refresher.join().unwrap();
        assert_eq!((census.allocated(), census.freed()), (2, 2));
    });
}

/// A `Picker` picks twice while a refresh removes host A; its cached snapshot keeps A's state
/// alive until its next pick revalidates the cache. Property: the state is freed exactly once,
/// after the picker's last release and once the picker no longer caches the old list.
#[test]
fn picker_cache_releases_removed_host_on_its_next_pick() {
    loom_support::check("picker_cache_releases_removed_host_on_its_next_pick", || {
        let p = pool_that_drops_a();
        let census = p.host_census();
        let mut picker = p.picker_seeded(3);
        let pick = thread::spawn(move || {
            drop(picker.select().unwrap());
            let second = picker.select().unwrap();
            // Only the list before the refresh has A, or B at index 1.
            let from_old_list = second.address() == A || second.index() == 1;
            (picker, from_old_list)
        });
        let refresher = {
            let p = p.clone();
            thread::spawn(move || p.refresh().unwrap())
        };
        refresher.join().unwrap();
        let (picker, from_old_list) = pick.join().unwrap();
        p.refresh().unwrap();
        // The picker still caches the list of its second pick, which keeps A alive iff it lists A.
        assert_eq!(census.freed(), usize::from(!from_old_list));
        drop(picker);
        p.refresh().unwrap();
        assert_eq!((census.allocated(), census.freed(), p.live_hosts()), (2, 1, 1));
    });
}
