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

/// Two threads pick and release concurrently (one through `Pool::select`, one through a
/// seeded `Picker`) while the main thread holds a reservation. Property: every pick succeeds
/// (capacity is unlimited), no increment or decrement is lost (each host's `picks` equals the
/// picks the threads made on it) and every in-flight counter is back to exactly zero.
fn picks_and_releases_return_every_counter_to_zero(policy: Policy) {
    let p = pool(policy);
    let held = p.select().unwrap();
    let a = {
        let p = p.clone();
        thread::spawn(move || {
            let r = p.select().unwrap();
            let addr = r.address().to_owned();
            r.release(Outcome::Success);
            addr
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
    let mut picked = vec![held.address().to_owned(), a.join().unwrap(), b.join().unwrap()];
    held.release(Outcome::Success);
    picked.sort();
    for s in p.stats() {
        assert_eq!(s.in_flight, 0, "{} still has requests in flight", s.address);
        let made = picked.iter().filter(|a| **a == s.address).count() as u64;
        assert_eq!(s.picks, made, "{}: lost or extra update", s.address);
    }
    assert_eq!(p.stats().iter().map(|s| s.picks).sum::<u64>(), 3);
}

#[test]
fn least_conn_picks_and_releases_return_every_counter_to_zero() {
    loom_support::check("least_conn_picks_and_releases_return_every_counter_to_zero", None, || {
        picks_and_releases_return_every_counter_to_zero(Policy::LeastConn)
    });
}

#[test]
fn p2c_picks_and_releases_return_every_counter_to_zero() {
    loom_support::check("p2c_picks_and_releases_return_every_counter_to_zero", None, || {
        picks_and_releases_return_every_counter_to_zero(Policy::P2c)
    });
}

#[test]
fn first_picks_and_releases_return_every_counter_to_zero() {
    loom_support::check("first_picks_and_releases_return_every_counter_to_zero", None, || {
        picks_and_releases_return_every_counter_to_zero(Policy::First)
    });
}
