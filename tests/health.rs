//! Availability: the down flag and the passive-failure sliding window.

mod common;

use std::time::Duration;

use common::*;
use leastconn::{Clock, ErrorKind, ManualClock, Outcome, PassiveHealth, Pool, Static, Upstream};

fn pool(clock: &ManualClock, max_fails: u32, secs: u64) -> Pool {
    Pool::builder(Static::from_addresses(["a:1", "b:1"]))
        .passive_health(PassiveHealth { max_fails, fail_duration: Duration::from_secs(secs) })
        .clock(Clock::Manual(clock.clone()))
        .build()
        .unwrap()
}

/// Reserves on `addr` (by excluding the other host) and releases with `outcome`.
fn request(pool: &Pool, addr: &str, outcome: Outcome) {
    let other = if addr == "a:1" { "b:1" } else { "a:1" };
    let r = pool.select_excluding(&[pool.host_stats(other).unwrap().id]).unwrap();
    assert_eq!(r.address(), addr);
    r.release(outcome);
}

fn available(pool: &Pool, addr: &str) -> bool {
    let other = pool.host_stats(if addr == "a:1" { "b:1" } else { "a:1" }).unwrap().id;
    pool.select_excluding(&[other]).is_ok()
}

#[test]
fn one_failure_makes_a_host_unavailable_for_fail_duration_by_default() {
    let clock = ManualClock::new();
    let pool = pool(&clock, 1, 10);
    request(&pool, "a:1", Outcome::Failure);
    assert!(!available(&pool, "a:1"));
    assert!(pool.host_stats("a:1").unwrap().unhealthy);
    // Every pick goes to b while a is in its window.
    for _ in 0..20 {
        assert_eq!(pool.select().unwrap().address(), "b:1");
    }
    clock.advance(Duration::from_secs(10) - Duration::from_nanos(1));
    assert!(!available(&pool, "a:1"));
    clock.advance(Duration::from_nanos(1));
    assert!(available(&pool, "a:1"));
    assert!(!pool.host_stats("a:1").unwrap().unhealthy);
}

#[test]
fn the_window_slides_failures_expire_one_by_one() {
    let clock = ManualClock::new();
    let pool = pool(&clock, 2, 10);
    request(&pool, "a:1", Outcome::Failure); // t=0
    assert!(available(&pool, "a:1"), "one failure of two allowed");
    clock.advance(Duration::from_secs(5));
    request(&pool, "a:1", Outcome::Failure); // t=5: two inside [t-10, t]
    assert!(!available(&pool, "a:1"));
    assert_eq!(pool.host_stats("a:1").unwrap().recent_failures, 2);
    clock.advance(Duration::from_secs(5)); // t=10: the t=0 failure leaves the window
    assert!(available(&pool, "a:1"));
    assert_eq!(pool.host_stats("a:1").unwrap().recent_failures, 1);
    clock.advance(Duration::from_secs(2));
    request(&pool, "a:1", Outcome::Failure); // t=12: t=5 and t=12 inside
    assert!(!available(&pool, "a:1"));
    clock.advance(Duration::from_secs(3)); // t=15: t=5 leaves
    assert!(available(&pool, "a:1"));
    clock.advance(Duration::from_secs(7)); // t=22: t=12 leaves
    assert_eq!(pool.host_stats("a:1").unwrap().recent_failures, 0);
}

#[test]
fn successes_do_not_count_and_old_failures_do_not_accumulate() {
    let clock = ManualClock::new();
    let pool = pool(&clock, 3, 10);
    for _ in 0..10 {
        request(&pool, "a:1", Outcome::Success);
    }
    for _ in 0..5 {
        request(&pool, "a:1", Outcome::Failure); // one every 6 s: never 3 inside 10 s
        clock.advance(Duration::from_secs(6));
        assert!(available(&pool, "a:1"));
    }
}

#[test]
fn passive_health_off_ignores_failures() {
    let clock = ManualClock::new();
    let pool = Pool::builder(Static::from_addresses(["a:1"]))
        .passive_health(PassiveHealth::OFF)
        .clock(Clock::Manual(clock.clone()))
        .build()
        .unwrap();
    for _ in 0..100 {
        pool.select().unwrap().release(Outcome::Failure);
    }
    assert!(pool.select().is_ok());
    assert_eq!(pool.host_stats("a:1").unwrap().recent_failures, 0);
}

#[test]
fn all_unhealthy_gives_no_upstream() {
    let clock = ManualClock::new();
    let pool = pool(&clock, 1, 10);
    request(&pool, "a:1", Outcome::Failure);
    request(&pool, "b:1", Outcome::Failure);
    assert_eq!(pool.select().unwrap_err().kind(), ErrorKind::NoUpstream);
}

#[test]
fn absurd_passive_health_settings_are_refused() {
    let zero = PassiveHealth { max_fails: 1, fail_duration: Duration::ZERO };
    let err = Pool::builder(Static::default()).passive_health(zero).build().err().unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidLimit);
    let many = PassiveHealth { max_fails: leastconn::MAX_FAILS_LIMIT + 1, fail_duration: Duration::from_secs(1) };
    let err = Pool::builder(Static::default()).passive_health(many).build().err().unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidLimit);
}

#[test]
fn down_hosts_get_no_picks_and_the_flag_survives_list_changes() {
    let pool = Pool::builder(Static::from_addresses(["a:1", "b:1"])).build().unwrap();
    pool.set_down("a:1", true).unwrap();
    for _ in 0..20 {
        assert_eq!(pool.select().unwrap().address(), "b:1");
    }
    pool.refresh().unwrap();
    assert!(pool.host_stats("a:1").unwrap().down);
    assert_eq!(pool.select().unwrap().address(), "b:1");
    pool.set_down("a:1", false).unwrap();
    let held = hold(&pool, 2);
    assert_eq!(in_flight(&pool, "a:1"), 1);
    drop(held);
    assert_eq!(pool.set_down("nope:1", true).unwrap_err().kind(), ErrorKind::NotFound);
}

#[test]
fn in_flight_requests_of_a_host_marked_down_still_release_onto_it() {
    let pool = Pool::builder(Static::new(vec![Upstream::new("a:1")])).build().unwrap();
    let r = pool.select().unwrap();
    pool.set_down("a:1", true).unwrap();
    assert_eq!(in_flight(&pool, "a:1"), 1);
    r.release(Outcome::Success);
    let s = pool.host_stats("a:1").unwrap();
    assert_eq!((s.in_flight, s.picks, s.down), (0, 1, true));
}
