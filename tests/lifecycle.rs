//! List changes: state carried over, releases after removal, reclamation, concurrent refresh.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::*;
use leastconn::{Outcome, Pool, Upstream, source};

/// A source whose list the test sets.
fn settable(initial: &[&str]) -> (Arc<Mutex<Vec<Upstream>>>, impl leastconn::Source + 'static) {
    let list = Arc::new(Mutex::new(initial.iter().map(|a| Upstream::new(*a)).collect::<Vec<_>>()));
    let l = Arc::clone(&list);
    (list, source::from_fn(move |_| Ok(l.lock().unwrap().clone())))
}

fn set(list: &Mutex<Vec<Upstream>>, addrs: &[&str]) {
    *list.lock().unwrap() = addrs.iter().map(|a| Upstream::new(*a)).collect();
}

#[test]
fn counters_carry_over_list_changes() {
    let (list, src) = settable(&["a:1", "b:1"]);
    let pool = Pool::builder(src).build().unwrap();
    let held = hold(&pool, 4); // 2 on a, 2 on b
    set(&list, &["b:1", "c:1", "a:1"]);
    let report = pool.refresh().unwrap();
    assert_eq!((report.upstreams, report.hosts, report.reclaimed), (3, 3, 0));
    assert_eq!(in_flight(&pool, "a:1"), 2);
    assert_eq!(in_flight(&pool, "b:1"), 2);
    // least_conn right after the change sees the old load: the next two picks go to c.
    let c1 = pool.select().unwrap();
    let c2 = pool.select().unwrap();
    assert_eq!((c1.address(), c2.address()), ("c:1", "c:1"));
    drop(held);
    assert_eq!(pool.host_stats("a:1").unwrap().picks, 2);
}

#[test]
fn release_after_removal_lands_on_the_old_host_then_it_is_reclaimed() {
    let (list, src) = settable(&["a:1", "b:1"]);
    let pool = Pool::builder(src).build().unwrap();
    let r = pool.select_excluding(&[pool.host_stats("b:1").unwrap().id]).unwrap();
    assert_eq!(r.address(), "a:1");
    set(&list, &["b:1"]);
    let report = pool.refresh().unwrap();
    assert_eq!((report.hosts, report.reclaimed), (2, 0), "a is draining, not reclaimed");
    let draining = pool.host_stats("a:1").unwrap();
    assert_eq!((draining.in_flight, draining.listed), (1, false));
    assert_eq!(pool.select().unwrap().address(), "b:1");
    r.release(Outcome::Failure);
    assert_eq!(in_flight(&pool, "b:1"), 0, "nothing landed on b");
    assert_eq!(pool.host_stats("a:1").unwrap().in_flight, 0);
    let report = pool.refresh().unwrap();
    assert_eq!((report.hosts, report.reclaimed), (1, 1));
    assert_eq!(pool.live_hosts(), 1);
    assert!(pool.host_stats("a:1").is_err());
}

#[test]
fn a_removed_host_that_comes_back_while_draining_keeps_its_state() {
    let (list, src) = settable(&["a:1"]);
    let pool = Pool::builder(src).build().unwrap();
    let r = pool.select().unwrap();
    let id = r.host_id();
    set(&list, &[]);
    pool.refresh().unwrap();
    set(&list, &["a:1"]);
    pool.refresh().unwrap();
    let s = pool.host_stats("a:1").unwrap();
    assert_eq!((s.id, s.in_flight, s.listed), (id, 1, true), "one state per address");
    drop(r);
    assert_eq!(in_flight(&pool, "a:1"), 0);
}

#[test]
fn endless_churn_does_not_leak_host_states() {
    let (list, src) = settable(&[]);
    let pool = Pool::builder(src).build().unwrap();
    let mut picker = pool.picker_seeded(1);
    for round in 0..if cfg!(miri) { 20 } else { 2000 } {
        let a = format!("h{round}:1");
        let b = format!("h{}:1", round + 1);
        set(&list, &[&a, &b]);
        pool.refresh().unwrap();
        let r = picker.select().unwrap();
        set(&list, &[]);
        pool.refresh().unwrap();
        r.release(Outcome::Success);
    }
    pool.refresh().unwrap();
    drop(picker); // it caches a snapshot, which keeps that snapshot's hosts
    pool.refresh().unwrap();
    assert_eq!(pool.live_hosts(), 0);
}

#[test]
fn dropping_the_pool_with_reservations_outstanding_is_safe() {
    let (_list, src) = settable(&["a:1", "b:1"]);
    let pool = Pool::builder(src).build().unwrap();
    let r1 = pool.select().unwrap();
    let r2 = pool.select().unwrap();
    drop(pool);
    assert!(["a:1", "b:1"].contains(&r1.address()));
    r1.release(Outcome::Failure); // records a failure on a retired host, then frees it
    drop(r2);
}

#[test]
fn refresh_concurrent_with_picks_returns_every_counter_to_zero() {
    let names: Vec<String> = (0..6).map(|i| format!("h{i}:1")).collect();
    let (list, src) = settable(&[]);
    let pool = Pool::builder(src).build().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let picks = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..3)
        .map(|t| {
            let (pool, stop, picks) = (pool.clone(), Arc::clone(&stop), Arc::clone(&picks));
            std::thread::spawn(move || {
                let mut picker = pool.picker_seeded(t);
                let mut held = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(r) = picker.select() {
                        picks.fetch_add(1, Ordering::Relaxed);
                        held.push(r);
                    }
                    if held.len() > 3 {
                        held.remove(0).release(Outcome::Success);
                    }
                }
            })
        })
        .collect();
    let (rounds, min_picks) = if cfg!(miri) { (10, 10) } else { (3000, 3000) };
    // Keep changing the list until both enough list changes and enough picks have happened
    // (every list is non-empty, so the workers make progress however they are scheduled).
    let mut round = 0;
    while round < rounds || picks.load(Ordering::Relaxed) < min_picks {
        let take: Vec<&str> = names.iter().skip(round % 3).step_by(1 + round % 2).map(String::as_str).collect();
        set(&list, &take);
        pool.refresh().unwrap();
        round += 1;
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    set(&list, &names.iter().map(String::as_str).collect::<Vec<_>>());
    pool.refresh().unwrap();
    let stats = pool.stats();
    assert_eq!(stats.len(), 6);
    assert!(stats.iter().all(|s| s.in_flight == 0), "{stats:?}");
    let total: u64 = stats.iter().map(|s| s.picks).sum();
    assert!(total <= picks.load(Ordering::Relaxed) as u64);
    set(&list, &[]);
    pool.refresh().unwrap();
    assert_eq!(pool.live_hosts(), 0, "every removed host reclaimed after its last release");
}

#[test]
fn a_pick_never_frees_the_replaced_list_the_next_refresh_does() {
    let (list, src) = settable(&["a:1", "b:1"]);
    let pool = Pool::builder(src).build().unwrap();
    let mut picker = pool.picker_seeded(2);
    drop(picker.select().unwrap()); // the picker now caches the [a, b] list
    set(&list, &["b:1"]);
    let report = pool.refresh().unwrap();
    assert_eq!((report.reclaimed, pool.live_hosts()), (0, 2), "the picker's cached list still lists a");
    // The picker moves to the new list and lets go of the old one: its reference was not the
    // last (the pool keeps replaced lists until they are unused), so nothing is freed here.
    assert_eq!(picker.select().unwrap().address(), "b:1");
    assert_eq!(pool.live_hosts(), 2);
    // The next refresh frees the old list and reclaims a.
    let report = pool.refresh().unwrap();
    assert_eq!((report.reclaimed, pool.live_hosts()), (1, 1));
}

#[test]
fn a_failed_refresh_still_reclaims_drained_hosts() {
    let (list, src) = settable(&["a:1", "b:1"]);
    let broken = Arc::new(AtomicBool::new(false));
    let b = Arc::clone(&broken);
    let pool = Pool::builder(leastconn::source::from_fn(move |ctx| {
        if b.load(Ordering::SeqCst) {
            return Err("registry down".into());
        }
        let mut out = Vec::new();
        leastconn::Source::fetch(&src, ctx, &mut out)?;
        Ok(out)
    }))
    .build()
    .unwrap();
    let held = hold(&pool, 2); // one on each host
    set(&list, &["a:1"]);
    pool.refresh().unwrap(); // b removed while a request is in flight to it
    drop(held);
    broken.store(true, Ordering::SeqCst);
    let err = pool.refresh().unwrap_err();
    assert_eq!(err.kind(), leastconn::ErrorKind::SourceFailed);
    assert_eq!(pool.live_hosts(), 1, "the failed refresh swept the drained host");
    assert_eq!(pool.len(), 1, "and kept the list");
}
