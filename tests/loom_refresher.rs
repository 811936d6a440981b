//! Loom model: stopping the background refresher while it refreshes.
//!
//! Under loom `Condvar::wait_timeout` never times out, and the interval here is an hour, so
//! the refresher thread refreshes once and then waits until it is woken: the model covers
//! the stop racing with that refresh (before it, inside the source, after it) and with the
//! wait that follows.
#![cfg(loom)]

mod loom_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use leastconn::source::{self, Cancelled};
use leastconn::{PassiveHealth, Pool, Refresher, Upstream};
use loom::thread;

/// A refresher is started and dropped at once while a picker picks. The source returns
/// `[A]` on its first call (the pool's build) and `[B]` afterwards, unless the refresh was
/// cancelled. Property: dropping the refresher wakes and joins its thread in every
/// interleaving (loom reports a deadlock otherwise); no refresh runs after the drop returns;
/// a refresh cancelled inside the source publishes nothing (the list stays `[A]`, generation
/// 1), and one that completed published `[B]` (generation 2). The picker's reservation lands
/// on one of the two states, and both counters end at zero.
#[test]
fn stopping_the_refresher_during_a_refresh_joins_and_publishes_nothing_after() {
    loom_support::check("stopping_the_refresher_during_a_refresh_joins_and_publishes_nothing_after", || {
        // Plain std counters: the source runs under the refresh lock.
        let calls = Arc::new(AtomicUsize::new(0));
        let cancelled = Arc::new(AtomicUsize::new(0));
        let src = {
            let (calls, cancelled) = (Arc::clone(&calls), Arc::clone(&cancelled));
            source::from_fn(move |ctx| {
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    return Ok(vec![Upstream::new("10.0.0.1:80")]);
                }
                if ctx.is_cancelled() {
                    cancelled.fetch_add(1, Ordering::SeqCst);
                    return Err(Cancelled.into());
                }
                Ok(vec![Upstream::new("10.0.0.2:80")])
            })
        };
        let p = Pool::builder(src).passive_health(PassiveHealth::OFF).build().unwrap();
        let refresher = Refresher::spawn(&p, Duration::from_secs(3600)).unwrap();
        let picker = {
            let p = p.clone();
            thread::spawn(move || drop(p.select().unwrap()))
        };
        drop(refresher);
        let (fetches, gen_at_stop) = (calls.load(Ordering::SeqCst), p.generation());
        picker.join().unwrap();
        assert!(fetches <= 2, "the refresher fetched {fetches} times");
        let completed = fetches == 2 && cancelled.load(Ordering::SeqCst) == 0;
        assert_eq!(gen_at_stop, if completed { 2 } else { 1 });
        let expected = if completed { "10.0.0.2:80" } else { "10.0.0.1:80" };
        assert_eq!(p.upstreams(), vec![Upstream::new(expected)]);
        assert_eq!((calls.load(Ordering::SeqCst), p.generation()), (fetches, gen_at_stop), "refreshed after stop");
        p.refresh().unwrap();
        assert!(p.stats().iter().all(|s| s.in_flight == 0));
        assert_eq!(p.live_hosts(), 1);
    });
}
