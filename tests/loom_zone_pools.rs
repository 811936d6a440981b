//! Loom models of pools on a zone (docs/design-zone.md 6.1), driving the production pick,
//! release, attribution and registry code on a model zone (`Zone::model`).
//!
//! Z10 (one process): two pools with the same name on one zone share one slot, so
//! `max_requests` is exact across them. Under loom every zone operation attributes through
//! the registration's spare record, under its (loom) mutex: the thread-record cache is
//! thread-local, and loom's threads share one OS thread. Two *processes* (two attachments of
//! one zone's words) are not modelled yet: a model zone has one `ZoneInner`.
#![cfg(loom)]

mod common;
mod loom_support;

use common::one_host_zone_pool as pool;
use leastconn::{Pool, Zone, ZoneCapacity};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

const CAPS: ZoneCapacity = ZoneCapacity { hosts: 2, address_bytes: 32, fail_ring: 1, processes: 2, threads: 2 };

/// Z10: two pools of one name on one zone, one thread picking from each (one of them twice),
/// releasing what it got. At no point do two reservations coexist (the model's holder count,
/// raised after a pick and lowered before its release), and both pools end with the shared
/// counter at 0 and this process's attribution at 0 (the slot is reclaimed once both pools
/// are dropped).
#[test]
fn two_pools_on_one_zone_share_counters_and_max_requests() {
    loom_support::check("two_pools_on_one_zone_share_counters_and_max_requests", || {
        let zone = Zone::model(&CAPS).unwrap();
        let (a, b) = (pool(&zone), pool(&zone));
        let holders = Arc::new(AtomicUsize::new(0));
        let spawn = |p: &Pool, rounds: usize| {
            let (p, holders) = (p.clone(), Arc::clone(&holders));
            thread::spawn(move || {
                let mut got = 0;
                for _ in 0..rounds {
                    if let Ok(r) = p.select() {
                        got += 1;
                        let now = holders.fetch_add(1, Ordering::SeqCst) + 1;
                        assert!(now <= 1, "{now} reservations held across two pools with max_requests 1");
                        holders.fetch_sub(1, Ordering::SeqCst);
                        drop(r);
                    }
                }
                got
            })
        };
        let threads = [spawn(&a, 2), spawn(&b, 1)];
        let picks: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        let (sa, sb) = (a.stats().remove(0), b.stats().remove(0));
        assert_eq!((sa.in_flight, sb.in_flight), (0, 0));
        assert_eq!((sa.picks, sb.picks), (picks, picks), "one counter, seen by both pools");
        drop((a, b));
        assert_eq!(zone.slot_lookup("app", "10.0.0.1:80").unwrap(), None, "reclaimed after both pools went");
    });
}
