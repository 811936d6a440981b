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
