//! Loom models: the passive-failure window (`Host::record_failure`, on a failed release)
//! updated while picks read availability (`Host::healthy_at`, which may clear SUSPECT).
#![cfg(loom)]

mod loom_support;

use std::time::Duration;

use leastconn::{Clock, ErrorKind, ManualClock, Outcome, PassiveHealth, Pool, Static};
use loom::thread;

const A: &str = "10.0.0.1:80";

fn pool(max_fails: u32, clock: &ManualClock) -> Pool {
    Pool::builder(Static::from_addresses([A]))
        .passive_health(PassiveHealth { max_fails, fail_duration: Duration::from_secs(10) })
        .clock(Clock::Manual(clock.clone()))
        .build()
        .unwrap()
}

/// The host had a failure whose window has expired, so SUSPECT is still set and the next
/// pick clears it. A new failure is recorded while two threads pick. Property: the failure
/// is never lost. Whatever the interleaving (a picker clearing SUSPECT just after the failure
/// set it must see the new deadline and set it again), the host is unavailable afterwards.
#[test]
fn failure_recorded_while_pickers_clear_suspect_is_not_lost() {
    loom_support::check("failure_recorded_while_pickers_clear_suspect_is_not_lost", || {
        let clock = ManualClock::new();
        let p = pool(1, &clock);
        let (old, new) = (p.select().unwrap(), p.select().unwrap());
        old.release(Outcome::Failure);
        clock.advance(Duration::from_secs(11)); // the old failure has left its window
        let failer = thread::spawn(move || new.release(Outcome::Failure));
        let pickers: Vec<_> = (0..2)
            .map(|_| {
                let p = p.clone();
                thread::spawn(move || drop(p.select()))
            })
            .collect();
        failer.join().unwrap();
        pickers.into_iter().for_each(|t| t.join().unwrap());
        assert!(p.host_stats(A).unwrap().unhealthy, "the new failure was lost");
        assert_eq!(p.select().unwrap_err().kind(), ErrorKind::NoUpstream);
    });
}

/// With `max_fails = 2`, two failures are recorded at once by two threads while a third
/// picks. Property: two failures inside the window make the host unavailable, whichever
/// thread's failure completes the window.
///
/// Regression: each `record_failure` stored its own slot and then loaded the others with
/// Release/Acquire only, the store-buffering pattern, so both threads could miss the other's
/// store, both conclude "fewer than two failures", and neither set SUSPECT. A SeqCst fence
/// between the store and the loads now makes the later of the two see both.
#[test]
fn concurrent_failures_must_not_each_miss_the_other() {
    loom_support::check("concurrent_failures_must_not_each_miss_the_other", || {
        let clock = ManualClock::new();
        let p = pool(2, &clock);
        let failers: Vec<_> = (0..2)
            .map(|_| {
                let r = p.select().unwrap();
                thread::spawn(move || r.release(Outcome::Failure))
            })
            .collect();
        let picker = {
            let p = p.clone();
            thread::spawn(move || drop(p.select()))
        };
        failers.into_iter().for_each(|t| t.join().unwrap());
        picker.join().unwrap();
        let s = p.host_stats(A).unwrap();
        assert_eq!(s.recent_failures, 2);
        assert!(s.unhealthy, "two failures inside the window, but the host is available");
        assert_eq!(p.select().unwrap_err().kind(), ErrorKind::NoUpstream);
    });
}

/// `max_fails = 2`, `fail_duration = 10 s`. A thread releases with a failure at about t = 0
/// while the main thread fails at t = 1 s and t = 8 s, then (after joining it) at t = 12 s.
/// Property: the failures at 8 s and 12 s are both inside the window ending at 12 s, so the
/// host is unavailable at the end, in every interleaving.
///
/// Regression: `record_failure` read the clock, then took a ring slot with `fetch_add`, then
/// stored with a plain store. The thread descheduled after its clock read (t = 0) took its
/// slot after the main thread's failures at 1 s and 8 s and overwrote the 8 s timestamp with
/// its older 0 s, so the ring held {0 s, 12 s} at the end and the host stayed available with
/// two failures inside the window. Now the ticket comes before the clock read and a slot only
/// moves forward in time (a CAS that never writes an older value); either change alone still
/// fails this model.
#[test]
fn delayed_failure_never_overwrites_a_newer_one_in_the_ring() {
    loom_support::check("delayed_failure_never_overwrites_a_newer_one_in_the_ring", || {
        let clock = ManualClock::new();
        let p = pool(2, &clock);
        let delayed = p.select().unwrap();
        let mine: Vec<_> = (0..3).map(|_| p.select().unwrap()).collect();
        let failer = thread::spawn(move || delayed.release(Outcome::Failure));
        let mut mine = mine.into_iter();
        clock.advance(Duration::from_secs(1));
        mine.next().unwrap().release(Outcome::Failure);
        clock.advance(Duration::from_secs(7));
        mine.next().unwrap().release(Outcome::Failure);
        failer.join().unwrap();
        clock.advance(Duration::from_secs(4));
        mine.next().unwrap().release(Outcome::Failure);
        let s = p.host_stats(A).unwrap();
        assert!(s.unhealthy, "failures at 8 s and 12 s are inside the 10 s window: {s:?}");
        assert_eq!(p.select().unwrap_err().kind(), ErrorKind::NoUpstream);
    });
}
