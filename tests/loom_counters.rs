//! Loom model: concurrent picks and releases on shared in-flight counters.
#![cfg(loom)]

mod loom_support;

use leastconn::{Outcome, PassiveHealth, Policy, Pool, Static};
use loom::thread;

fn pool(policy: Policy) -> Pool {
    Pool::builder(Static::from_addresses(["10.0.0.1:80", "10.0.0.2:80"]))
        .policy(policy)
        .passive_health(PassiveHealth::OFF)
        .build()
        .unwrap()
}

/// Two threads pick and release concurrently (one twice through `Pool::select`, one through a
/// seeded `Picker`) while the main thread holds a reservation. Property: every pick succeeds
/// (capacity is unlimited), no increment or decrement is lost (each host's `picks` equals the
/// picks the threads made on it) and every in-flight counter is back to exactly zero.
fn picks_and_releases_return_every_counter_to_zero(policy: Policy) {
    let p = pool(policy);
    let held = p.select().unwrap();
    let a = {
        let p = p.clone();
        thread::spawn(move || {
            let mut addrs = Vec::new();
            for _ in 0..2 {
                let r = p.select().unwrap();
                addrs.push(r.address().to_owned());
                r.release(Outcome::Success);
            }
            addrs
        })
    };
    let b = {
        let mut picker = p.picker_seeded(7);
        thread::spawn(move || {
            let r = picker.select().unwrap();
            let addr = r.address().to_owned();
            drop(r);
            addr
        })
    };
    let mut picked = a.join().unwrap();
    picked.extend([held.address().to_owned(), b.join().unwrap()]);
    held.release(Outcome::Success);
    for s in p.stats() {
        assert_eq!(s.in_flight, 0, "{} still has requests in flight", s.address);
        let made = picked.iter().filter(|a| **a == s.address).count() as u64;
        assert_eq!(s.picks, made, "{}: lost or extra update", s.address);
    }
    assert_eq!(p.stats().iter().map(|s| s.picks).sum::<u64>(), 4);
}

#[test]
fn least_conn_picks_and_releases_return_every_counter_to_zero() {
    loom_support::check("least_conn_picks_and_releases_return_every_counter_to_zero", || {
        picks_and_releases_return_every_counter_to_zero(Policy::LeastConn)
    });
}

#[test]
fn p2c_picks_and_releases_return_every_counter_to_zero() {
    loom_support::check("p2c_picks_and_releases_return_every_counter_to_zero", || {
        picks_and_releases_return_every_counter_to_zero(Policy::P2c)
    });
}

#[test]
fn first_picks_and_releases_return_every_counter_to_zero() {
    loom_support::check("first_picks_and_releases_return_every_counter_to_zero", || {
        picks_and_releases_return_every_counter_to_zero(Policy::First)
    });
}

/// The down flag shares the state word with the counters. One thread marks host A down and up
/// again while two others pick and release. Property: flag RMWs never lose a counter update
/// (counters end at zero, `picks` match), and while A is marked down, a pick whose reservation
/// comes after the flag cannot land on A (the main thread's pick, made after the flag was set
/// and before it was cleared, gets B).
#[test]
fn down_flag_flips_never_lose_counter_updates() {
    loom_support::check("down_flag_flips_never_lose_counter_updates", || {
        let p = pool(Policy::LeastConn);
        p.set_down("10.0.0.1:80", true).unwrap();
        let flipper = {
            let p = p.clone();
            thread::spawn(move || p.set_down("10.0.0.1:80", false).unwrap())
        };
        let pickers: Vec<_> = (0..2)
            .map(|_| {
                let p = p.clone();
                thread::spawn(move || p.select().unwrap().address().to_owned())
            })
            .collect();
        flipper.join().unwrap();
        let mut picked: Vec<String> = pickers.into_iter().map(|t| t.join().unwrap()).collect();
        p.set_down("10.0.0.1:80", true).unwrap();
        let r = p.select().unwrap();
        assert_eq!(r.address(), "10.0.0.2:80", "picked a host marked down");
        picked.push(r.address().to_owned());
        drop(r);
        for s in p.stats() {
            assert_eq!(s.in_flight, 0, "{} still has requests in flight", s.address);
            assert_eq!(s.picks, picked.iter().filter(|a| **a == s.address).count() as u64, "{}", s.address);
            assert_eq!(s.down, s.address == "10.0.0.1:80");
        }
    });
}

/// A pick races `set_down(A, true)` while A is the better host (B has a request in flight).
/// The setter then reads A's in-flight count: 0 means the pick had not reserved A when the
/// flag went up, so the pick's reservation RMW on A (if any) comes after the `fetch_or` in
/// the word's modification order. Property: such a pick never lands on A, even when its scan
/// loaded A's word before the flag was set (the RMW's own `prev & DOWN` check refuses it).
fn pick_racing_set_down_never_lands_on_the_down_host(policy: Policy) {
    const A: &str = "10.0.0.1:80";
    let p = pool(policy);
    let held_on_b = p.select_excluding(&[p.host_stats(A).unwrap().id]).unwrap();
    let picker = {
        let p = p.clone();
        thread::spawn(move || p.select().ok())
    };
    p.set_down(A, true).unwrap();
    let in_flight_after_down = p.host_stats(A).unwrap().in_flight;
    let picked = picker.join().unwrap();
    let on_a = picked.as_ref().is_some_and(|r| r.address() == A);
    assert!(
        !on_a || in_flight_after_down == 1,
        "{policy:?}: a pick ordered after set_down(true) reserved the down host"
    );
    picked.into_iter().for_each(|r| r.release(Outcome::Success));
    held_on_b.release(Outcome::Success);
}

#[test]
fn least_conn_pick_racing_set_down_never_lands_on_the_down_host() {
    loom_support::check("least_conn_pick_racing_set_down_never_lands_on_the_down_host", || {
        pick_racing_set_down_never_lands_on_the_down_host(Policy::LeastConn)
    });
}

#[test]
fn p2c_pick_racing_set_down_never_lands_on_the_down_host() {
    loom_support::check("p2c_pick_racing_set_down_never_lands_on_the_down_host", || {
        pick_racing_set_down_never_lands_on_the_down_host(Policy::P2c)
    });
}

#[test]
fn first_pick_racing_set_down_never_lands_on_the_down_host() {
    loom_support::check("first_pick_racing_set_down_never_lands_on_the_down_host", || {
        pick_racing_set_down_never_lands_on_the_down_host(Policy::First)
    });
}

/// The picks total is widened by a CAS on a 64-bit total (no registry lock, so that folds may
/// also come from other processes later). Two threads fold it (`Pool::stats`) while a third
/// releases the host's two reservations, moving them from in flight to completed. Property:
/// every fold reports exactly the 2 picks made (completed and in flight read from one word, a
/// release counted by exactly one fold), and the total ends at 2 with nothing in flight.
#[test]
fn concurrent_folds_during_releases_count_each_pick_once() {
    loom_support::check("concurrent_folds_during_releases_count_each_pick_once", || {
        let p =
            Pool::builder(Static::from_addresses(["10.0.0.1:80"])).passive_health(PassiveHealth::OFF).build().unwrap();
        let held = [p.select().unwrap(), p.select().unwrap()];
        let releaser = thread::spawn(move || {
            for r in held {
                r.release(Outcome::Success);
            }
        });
        let folder = {
            let p = p.clone();
            thread::spawn(move || p.stats()[0].picks)
        };
        assert_eq!(p.stats()[0].picks, 2, "main's fold");
        assert_eq!(folder.join().unwrap(), 2, "the other thread's fold");
        releaser.join().unwrap();
        let s = &p.stats()[0];
        assert_eq!((s.picks, s.in_flight), (2, 0));
    });
}
