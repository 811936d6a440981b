//! Loom model: refreshes that remove and re-add an address, racing with picks of it.
#![cfg(loom)]

mod loom_support;

use std::sync::atomic::{AtomicUsize, Ordering};

use leastconn::{PassiveHealth, Pool, Upstream, source};
use loom::thread;

const A: &str = "10.0.0.1:80";

/// Two refreshes race with a pick: the source lists `[A]`, then `[]`, then `[A]` again (in
/// whichever order the refreshes take the refresh lock). Property: the address never has two
/// states. While the pick holds its reservation, the registry's state for A is the reserved
/// one (same id) and at most one state for A is alive; a state that was reclaimed while A was
/// unlisted and idle may be replaced by a fresh one, never duplicated. At the end exactly one
/// state is alive, with nothing in flight.
#[test]
fn refresh_racing_with_picks_keeps_one_state_per_address() {
    loom_support::check("refresh_racing_with_picks_keeps_one_state_per_address", || {
        // Plain std counter: refreshes are serialised, and the source is not part of any protocol.
        let calls = AtomicUsize::new(0);
        let src = source::from_fn(move |_| {
            let listed = calls.fetch_add(1, Ordering::SeqCst) != 1;
            Ok(if listed { vec![Upstream::new(A)] } else { vec![] })
        });
        let p = Pool::builder(src).passive_health(PassiveHealth::OFF).build().unwrap();
        let census = p.host_census();
        let refreshers: Vec<_> = (0..2)
            .map(|_| {
                let p = p.clone();
                thread::spawn(move || {
                    p.refresh().unwrap();
                })
            })
            .collect();
        let picker = {
            let (p, census) = (p.clone(), census.clone());
            thread::spawn(move || {
                if let Ok(r) = p.select() {
                    assert_eq!(p.host_stats(A).unwrap().id, r.host_id(), "A has a second state");
                    assert_eq!(census.allocated() - census.freed(), 1, "two states alive for A");
                    drop(r);
                }
            })
        };
        refreshers.into_iter().for_each(|t| t.join().unwrap());
        picker.join().unwrap();
        p.refresh().unwrap();
        assert_eq!((p.live_hosts(), census.allocated() - census.freed()), (1, 1));
        assert_eq!(p.host_stats(A).unwrap().in_flight, 0);
    });
}
