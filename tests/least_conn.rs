//! The selection rules: least_conn, weights, ties, tiers, first, p2c, exclusions, limits.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use common::*;
use leastconn::{ErrorKind, Outcome, Policy, Pool, Static, Upstream};

fn pool_of(upstreams: Vec<Upstream>, policy: Policy) -> Pool {
    Pool::builder(Static::new(upstreams)).policy(policy).build().unwrap()
}

fn addrs(n: usize) -> Vec<Upstream> {
    (0..n).map(|i| Upstream::new(format!("10.0.0.{}:80", i + 1))).collect()
}

#[test]
fn picks_the_host_with_fewest_in_flight() {
    let pool = pool_of(addrs(3), Policy::LeastConn);
    let mut held = hold(&pool, 3); // one each
    assert_eq!(in_flight(&pool, "10.0.0.1:80"), 1);
    assert_eq!(in_flight(&pool, "10.0.0.2:80"), 1);
    assert_eq!(in_flight(&pool, "10.0.0.3:80"), 1);
    // Release the one on .2: it is now the only host with 0 in flight.
    let i = held.iter().position(|r| r.address() == "10.0.0.2:80").unwrap();
    held.swap_remove(i).release(Outcome::Success);
    for _ in 0..10 {
        let r = pool.select().unwrap();
        assert_eq!(r.address(), "10.0.0.2:80");
        drop(r);
    }
}

#[test]
fn counts_spread_evenly_when_requests_are_held() {
    let pool = pool_of(addrs(4), Policy::LeastConn);
    let held = hold(&pool, 40);
    for s in pool.stats() {
        assert_eq!(s.in_flight, 10, "{}", s.address);
        assert_eq!(s.picks, 10);
    }
    drop(held);
    assert!(pool.stats().iter().all(|s| s.in_flight == 0 && s.picks == 10));
}

#[test]
#[cfg_attr(miri, ignore = "statistical: tens of thousands of picks, too slow under Miri")]
fn ties_are_uniform_chi_square_fixed_seed() {
    for n in [8usize, 100] {
        let pool = pool_of(addrs(n), Policy::LeastConn);
        let mut picker = pool.picker_seeded(0x5eed);
        let draws = 1000 * n;
        let counts = count_idle_picks(&mut picker, draws);
        assert_eq!(counts.len(), n, "every tied host gets picks");
        let observed: Vec<u64> = counts.values().copied().collect();
        let expected = vec![draws as f64 / n as f64; n];
        let chi = chi_square(&observed, &expected);
        assert!(chi < chi_square_critical_001(n - 1), "n={n}: chi-square {chi}");
    }
}

#[test]
fn ties_are_not_fixed_to_one_winner_caddy_5609() {
    let pool = pool_of(addrs(2), Policy::LeastConn);
    let mut picker = pool.picker_seeded(1);
    let counts = count_idle_picks(&mut picker, 200);
    assert!(counts.values().all(|&c| c > 50), "{counts:?}");
}

#[test]
#[cfg_attr(miri, ignore = "statistical: tens of thousands of picks, too slow under Miri")]
fn duplicate_address_is_one_host_with_a_double_share_of_ties() {
    let list = vec![Upstream::new("a:1"), Upstream::new("a:1"), Upstream::new("b:1")];
    let pool = pool_of(list, Policy::LeastConn);
    assert_eq!(pool.stats().len(), 2, "one host per address");
    let mut picker = pool.picker_seeded(7);
    let counts = count_idle_picks(&mut picker, 30_000);
    let chi = chi_square(&[counts["a:1"], counts["b:1"]], &[20_000.0, 10_000.0]);
    assert!(chi < chi_square_critical_001(1), "chi-square {chi}: {counts:?}");
    // One counter: holding two reservations on a:1 shows 2 in flight on it.
    let r1 = pool.select().unwrap();
    let r2 = pool.select().unwrap();
    let on_a = [&r1, &r2].iter().filter(|r| r.address() == "a:1").count() as u32;
    assert_eq!(in_flight(&pool, "a:1"), on_a);
}

#[test]
fn weights_compare_in_flight_per_weight_by_cross_multiplication() {
    let list = vec![Upstream::new("light:1").weight(1), Upstream::new("heavy:1").weight(3)];
    let pool = pool_of(list, Policy::LeastConn);
    let held = hold(&pool, 400);
    let light = in_flight(&pool, "light:1");
    let heavy = in_flight(&pool, "heavy:1");
    assert_eq!(light + heavy, 400);
    // Each pick went to a host with the least in-flight/weight, so the ratio is exact to one.
    assert!((i64::from(heavy) - 3 * i64::from(light)).abs() <= 3, "light {light}, heavy {heavy}");
    drop(held);
}

#[test]
#[cfg_attr(miri, ignore = "statistical: tens of thousands of picks, too slow under Miri")]
fn weighted_ties_are_broken_in_proportion_to_weight() {
    let list = vec![Upstream::new("w1:1").weight(1), Upstream::new("w2:1").weight(2), Upstream::new("w5:1").weight(5)];
    let pool = pool_of(list, Policy::LeastConn);
    let mut picker = pool.picker_seeded(99);
    let counts = count_idle_picks(&mut picker, 80_000);
    let observed = [counts["w1:1"], counts["w2:1"], counts["w5:1"]];
    let chi = chi_square(&observed, &[10_000.0, 20_000.0, 50_000.0]);
    assert!(chi < chi_square_critical_001(2), "chi-square {chi}: {observed:?}");
}

#[test]
fn backup_tier_only_when_no_primary_is_available() {
    let list = vec![
        Upstream::new("p1:1").max_requests(1),
        Upstream::new("b1:1").tier(1),
        Upstream::new("p2:1").max_requests(1),
        Upstream::new("b2:1").tier(2),
    ];
    let pool = pool_of(list, Policy::LeastConn);
    let a = pool.select().unwrap();
    let b = pool.select().unwrap();
    let mut primaries = [a.address(), b.address()];
    primaries.sort();
    assert_eq!(primaries, ["p1:1", "p2:1"]);
    // Both primaries full: tier 1 serves, repeatedly, even though it is busier.
    let c = pool.select().unwrap();
    let d = pool.select().unwrap();
    assert_eq!((c.address(), d.address()), ("b1:1", "b1:1"));
    // Tier 1 down: tier 2.
    pool.set_down("b1:1", true).unwrap();
    assert_eq!(pool.select().unwrap().address(), "b2:1");
    // A primary frees up: back to it at once.
    drop(a);
    let e = pool.select().unwrap();
    assert!(e.address().starts_with('p'), "{}", e.address());
}

#[test]
fn first_takes_the_first_available_in_list_order() {
    let list =
        vec![Upstream::new("one:1").max_requests(2), Upstream::new("two:1").max_requests(1), Upstream::new("three:1")];
    let pool = pool_of(list, Policy::First);
    let held = hold(&pool, 5);
    let got: Vec<&str> = held.iter().map(|r| r.address()).collect();
    assert_eq!(got, ["one:1", "one:1", "two:1", "three:1", "three:1"]);
    pool.set_down("three:1", true).unwrap();
    assert_eq!(pool.select().unwrap_err().kind(), ErrorKind::NoUpstream);
}

#[test]
#[cfg_attr(miri, ignore = "statistical: tens of thousands of picks, too slow under Miri")]
fn p2c_never_picks_the_busiest_and_prefers_the_idlest_two_to_one() {
    let list = addrs(3);
    let pool = pool_of(list, Policy::P2c);
    // Loads 0, 1, 2 on .1, .2, .3, set up through exclusions.
    let id_of = |addr: &str| pool.host_stats(addr).unwrap().id;
    let (id1, id2, id3) = (id_of("10.0.0.1:80"), id_of("10.0.0.2:80"), id_of("10.0.0.3:80"));
    let _b = pool.select_excluding(&[id1, id3]).unwrap();
    let _c1 = pool.select_excluding(&[id1, id2]).unwrap();
    let _c2 = pool.select_excluding(&[id1, id2]).unwrap();
    assert_eq!(
        (in_flight(&pool, "10.0.0.1:80"), in_flight(&pool, "10.0.0.2:80"), in_flight(&pool, "10.0.0.3:80")),
        (0, 1, 2)
    );
    let mut picker = pool.picker_seeded(3);
    let counts = count_idle_picks(&mut picker, 30_000);
    assert_eq!(counts.get("10.0.0.3:80"), None, "the busiest loses every pair");
    let chi = chi_square(&[counts["10.0.0.1:80"], counts["10.0.0.2:80"]], &[20_000.0, 10_000.0]);
    assert!(chi < chi_square_critical_001(1), "chi-square {chi}: {counts:?}");
}

#[test]
#[cfg_attr(miri, ignore = "statistical: tens of thousands of picks, too slow under Miri")]
fn p2c_picks_two_distinct_hosts_uniformly_when_idle() {
    let pool = pool_of(addrs(10), Policy::P2c);
    let mut picker = pool.picker_seeded(11);
    let counts = count_idle_picks(&mut picker, 50_000);
    let observed: Vec<u64> = counts.values().copied().collect();
    assert_eq!(observed.len(), 10);
    let chi = chi_square(&observed, &[5_000.0; 10]);
    assert!(chi < chi_square_critical_001(9), "chi-square {chi}");
}

#[test]
fn p2c_finds_the_only_available_hosts_among_many_unavailable() {
    let pool = pool_of(addrs(50), Policy::P2c);
    for i in 0..50 {
        if i != 17 && i != 33 {
            pool.set_down(&format!("10.0.0.{}:80", i + 1), true).unwrap();
        }
    }
    let mut picker = pool.picker_seeded(5);
    let counts = count_idle_picks(&mut picker, 1000);
    let mut got: Vec<_> = counts.keys().cloned().collect();
    got.sort();
    assert_eq!(got, ["10.0.0.18:80", "10.0.0.34:80"]);
}

#[test]
fn exclusions_keep_retries_off_hosts_already_tried() {
    for policy in [Policy::LeastConn, Policy::First, Policy::P2c] {
        let pool = pool_of(addrs(3), policy);
        let first = pool.select().unwrap();
        let second = pool.select_excluding(&[first.host_id()]).unwrap();
        let third = pool.select_excluding(&[first.host_id(), second.host_id()]).unwrap();
        let mut seen = [first.address(), second.address(), third.address()];
        seen.sort();
        assert_eq!(seen, ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"], "{policy:?}");
        let all = [first.host_id(), second.host_id(), third.host_id()];
        assert_eq!(pool.select_excluding(&all).unwrap_err().kind(), ErrorKind::NoUpstream, "{policy:?}");
    }
}

#[test]
fn max_requests_is_never_exceeded_by_concurrent_pickers() {
    const LIMIT: u32 = 3;
    for policy in [Policy::LeastConn, Policy::First, Policy::P2c] {
        let list = vec![Upstream::new("a:1").max_requests(LIMIT), Upstream::new("b:1").max_requests(LIMIT)];
        let pool = pool_of(list, policy);
        let mine: Arc<HashMap<String, AtomicU32>> =
            Arc::new(["a:1", "b:1"].iter().map(|a| (a.to_string(), AtomicU32::new(0))).collect());
        let peak = Arc::new(AtomicU32::new(0));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let (pool, mine, peak) = (pool.clone(), Arc::clone(&mine), Arc::clone(&peak));
                std::thread::spawn(move || {
                    let mut picker = pool.picker_seeded(t);
                    let mut held = Vec::new();
                    let (mut ok, mut full) = (0u32, 0u32);
                    for i in 0..if cfg!(miri) { 50 } else { 20_000 } {
                        match picker.select() {
                            Ok(r) => {
                                ok += 1;
                                let now = mine[r.address()].fetch_add(1, Ordering::SeqCst) + 1;
                                peak.fetch_max(now, Ordering::SeqCst);
                                held.push(r);
                            }
                            Err(e) => {
                                assert_eq!(e.kind(), ErrorKind::NoUpstream);
                                full += 1;
                            }
                        }
                        if held.len() > 1 || (i % 3 == 0 && !held.is_empty()) {
                            let r = held.remove(0);
                            mine[r.address()].fetch_sub(1, Ordering::SeqCst);
                            r.release(Outcome::Success);
                        }
                    }
                    for r in held {
                        mine[r.address()].fetch_sub(1, Ordering::SeqCst);
                        drop(r);
                    }
                    (ok, full)
                })
            })
            .collect();
        let mut total_ok = 0;
        for t in threads {
            total_ok += t.join().unwrap().0;
        }
        assert!(total_ok > 0);
        assert!(peak.load(Ordering::SeqCst) <= LIMIT, "{policy:?}: peak {}", peak.load(Ordering::SeqCst));
        assert!(pool.stats().iter().all(|s| s.in_flight == 0), "{policy:?}");
        let picks: u64 = pool.stats().iter().map(|s| s.picks).sum();
        assert_eq!(picks, u64::from(total_ok), "{policy:?}: picks count only successful reservations");
    }
}

#[test]
fn a_full_host_is_skipped_and_reported_full() {
    let pool = pool_of(vec![Upstream::new("a:1").max_requests(1)], Policy::LeastConn);
    let r = pool.select().unwrap();
    assert!(pool.host_stats("a:1").unwrap().full);
    let err = pool.select().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoUpstream);
    assert!(err.message().contains("full"), "{err}");
    drop(r);
    assert!(!pool.host_stats("a:1").unwrap().full);
    assert!(pool.select().is_ok());
}

#[test]
fn empty_list_gives_no_upstream() {
    let pool = pool_of(vec![], Policy::LeastConn);
    let err = pool.select().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoUpstream);
    assert!(err.message().contains("empty"));
}

#[test]
fn tags_and_indexes_come_back_with_the_pick() {
    let list = vec![Upstream::new("x:1").tag(0xAA).tier(1), Upstream::new("y:1").tag(0xBB)];
    let pool = pool_of(list, Policy::LeastConn);
    let r = pool.select().unwrap();
    assert_eq!((r.address(), r.tag(), r.index()), ("y:1", 0xBB, 1));
    assert_eq!(r.address_cstr().to_str().unwrap(), "y:1");
}
