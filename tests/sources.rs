//! Sources: `multi` order, failures, empties, nesting, grace periods, bad input, refresher.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use leastconn::source::{self, CancelFlag, Context, Source, fetch_checked};
use leastconn::{Clock, ErrorKind, Grace, ManualClock, Multi, Policy, Pool, Refresher, Static, Upstream};

fn addresses(list: &[Upstream]) -> Vec<&str> {
    list.iter().map(|u| u.address.as_str()).collect()
}

fn fetch(s: &dyn Source) -> Result<Vec<Upstream>, leastconn::Error> {
    let mut out = Vec::new();
    fetch_checked(s, &Context::new(), &mut out).map(|()| out)
}

fn failing(msg: &'static str) -> impl Source {
    source::from_fn(move |_| Err(msg.into()))
}

#[test]
fn multi_appends_in_configured_order_without_dedup_or_shuffle() {
    let m = Multi::new()
        .with(Static::from_addresses(["c:1", "a:1"]))
        .with(Static::from_addresses(["b:1", "a:1"]))
        .with(Static::from_addresses(["z:1"]));
    assert_eq!(addresses(&fetch(&m).unwrap()), ["c:1", "a:1", "b:1", "a:1", "z:1"]);
}

#[test]
fn multi_logs_a_failing_source_with_its_index_and_skips_it() {
    capture_logs();
    let m = Multi::new()
        .with(Static::from_addresses(["a:1"]))
        .with(failing("registry unreachable"))
        .with(Static::from_addresses(["b:1"]));
    assert_eq!(addresses(&fetch(&m).unwrap()), ["a:1", "b:1"]);
    let logs = logs();
    assert!(
        logs.iter().any(|(l, m)| *l == log::Level::Error && m.contains("source 1 failed: registry unreachable")),
        "{logs:?}"
    );
}

#[test]
fn multi_logs_an_empty_source_at_a_lower_level_and_skips_it() {
    capture_logs();
    let m = Multi::new().with(Static::default()).with(Static::from_addresses(["b:1"]));
    assert_eq!(addresses(&fetch(&m).unwrap()), ["b:1"]);
    let logs = logs();
    assert_eq!(logs, [(log::Level::Debug, "multi: source 0 returned no upstreams; skipping".to_owned())]);
}

#[test]
fn multi_with_every_source_failing_or_empty_is_an_empty_list_not_an_error() {
    let m = Multi::new().with(failing("x")).with(Static::default());
    assert_eq!(fetch(&m).unwrap(), []);
    let pool = Pool::builder(m).build().unwrap();
    assert_eq!(pool.select().unwrap_err().kind(), ErrorKind::NoUpstream);
}

#[test]
fn multi_nests() {
    capture_logs();
    let inner = Multi::new().with(Static::from_addresses(["b:1"])).with(failing("inner broken"));
    let m = Multi::new().with(Static::from_addresses(["a:1"])).with(inner).with(Static::from_addresses(["c:1"]));
    assert_eq!(addresses(&fetch(&m).unwrap()), ["a:1", "b:1", "c:1"]);
    assert!(logs().iter().any(|(_, m)| m.contains("source 1 failed: inner broken")));
}

#[test]
fn multi_checks_cancellation_before_each_source_and_keeps_the_partial_list() {
    let flag = Arc::new(CancelFlag::new());
    let f = Arc::clone(&flag);
    let m = Multi::new()
        .with(Static::from_addresses(["a:1"]))
        .with(source::from_fn(move |_| {
            f.cancel();
            Ok(vec![Upstream::new("b:1")])
        }))
        .with(Static::from_addresses(["c:1"]));
    let mut out = Vec::new();
    let err = m.fetch(&Context::with_cancel(&flag), &mut out).unwrap_err();
    assert!(err.is::<source::Cancelled>());
    assert_eq!(addresses(&out), ["a:1", "b:1"]);
}

#[test]
fn first_policy_over_multi_is_failover_to_the_second_cluster() {
    let m = Multi::new().with(Static::from_addresses(["p1:1", "p2:1"])).with(Static::from_addresses(["s1:1"]));
    let pool = Pool::builder(m).policy(Policy::First).build().unwrap();
    assert_eq!(pool.select().unwrap().address(), "p1:1");
    pool.set_down("p1:1", true).unwrap();
    assert_eq!(pool.select().unwrap().address(), "p2:1");
    pool.set_down("p2:1", true).unwrap();
    assert_eq!(pool.select().unwrap().address(), "s1:1");
}

#[test]
fn a_panicking_source_is_a_logged_source_error_not_a_crash() {
    capture_logs();
    let m = Multi::new().with(source::from_fn(|_| panic!("boom in source"))).with(Static::from_addresses(["b:1"]));
    assert_eq!(addresses(&fetch(&m).unwrap()), ["b:1"]);
    assert!(logs().iter().any(|(_, m)| m.contains("source 0 failed: panicked: boom in source")), "{:?}", logs());
    let err = fetch(&source::from_fn(|_| panic!("top"))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SourceFailed);
}

#[test]
fn a_source_returning_garbage_is_rejected_whole_with_the_reason() {
    for (bad, why) in [
        (Upstream::new(""), "empty address"),
        (Upstream::new("no-port"), "missing ':port'"),
        (Upstream::new("a:1").weight(0), "weight 0"),
        (Upstream::new("a:1").max_requests(u32::MAX), "max_requests"),
        (Upstream::new("a:1").tier(1000), "tier"),
    ] {
        let src = Static::new(vec![Upstream::new("good:1"), bad]);
        let err = fetch(&src).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::SourceFailed);
        assert!(err.message().contains(why), "{err}");
    }
}

#[test]
fn a_failing_top_level_source_keeps_the_current_list_and_counters() {
    let broken = Arc::new(AtomicBool::new(false));
    let b = Arc::clone(&broken);
    let src = source::from_fn(move |_| {
        if b.load(Ordering::SeqCst) {
            return Ok(vec![Upstream::new("x:1").weight(0)]); // garbage
        }
        Ok(vec![Upstream::new("a:1"), Upstream::new("b:1")])
    });
    let pool = Pool::builder(src).build().unwrap();
    let r = pool.select().unwrap();
    broken.store(true, Ordering::SeqCst);
    let err = pool.refresh().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SourceFailed);
    assert_eq!(pool.len(), 2);
    assert_eq!(pool.generation(), 1);
    assert_eq!(in_flight(&pool, r.address()), 1);
    drop(r);
}

#[test]
fn grace_keeps_the_last_good_result_for_the_period_then_lets_it_go() {
    capture_logs();
    let clock = ManualClock::new();
    let fail = Arc::new(AtomicBool::new(false));
    let f = Arc::clone(&fail);
    let flaky = source::from_fn(move |_| {
        if f.load(Ordering::SeqCst) { Err("lookup failed".into()) } else { Ok(vec![Upstream::new("a:1")]) }
    });
    let grace = Grace::with_clock(flaky, Duration::from_secs(30), Clock::Manual(clock.clone()));
    let m = Multi::new().with(grace).with(Static::from_addresses(["b:1"]));
    assert_eq!(addresses(&fetch(&m).unwrap()), ["a:1", "b:1"]);
    fail.store(true, Ordering::SeqCst);
    clock.advance(Duration::from_secs(5));
    assert_eq!(addresses(&fetch(&m).unwrap()), ["a:1", "b:1"], "first failure: served from grace");
    assert!(logs().iter().any(|(l, m)| *l == log::Level::Warn && m.contains("lookup failed")));
    clock.advance(Duration::from_secs(29));
    assert_eq!(addresses(&fetch(&m).unwrap()), ["a:1", "b:1"], "29 s after the first failure");
    clock.advance(Duration::from_secs(1));
    assert_eq!(addresses(&fetch(&m).unwrap()), ["b:1"], "30 s: grace over, source skipped");
    fail.store(false, Ordering::SeqCst);
    assert_eq!(addresses(&fetch(&m).unwrap()), ["a:1", "b:1"]);
    fail.store(true, Ordering::SeqCst);
    assert_eq!(addresses(&fetch(&m).unwrap()), ["a:1", "b:1"], "a new failure episode gets a new grace");
}

#[test]
fn grace_without_a_good_result_reports_the_failure() {
    let g = Grace::new(failing("never worked"), Duration::from_secs(60));
    let err = fetch(&g).unwrap_err();
    assert!(err.message().contains("never worked"));
}

#[test]
fn refresher_refreshes_in_the_background_and_stops_on_drop() {
    let (tx, rx) = std::sync::mpsc::sync_channel::<()>(0);
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let tx = std::sync::Mutex::new(tx);
    let src = source::from_fn(move |_| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        if n >= 1 {
            // Rendezvous with the test for the first few background refreshes.
            let _ = tx.lock().unwrap().try_send(());
        }
        Ok(vec![Upstream::new(format!("gen{n}:1"))])
    });
    let pool = Pool::builder(src).build().unwrap();
    assert_eq!(pool.upstreams()[0].address, "gen0:1");
    let refresher = Refresher::spawn(&pool, Duration::from_millis(1)).unwrap();
    let mut seen = 0;
    while seen < 3 {
        // A bound on a broken refresher, not a delay: each refresh signals as it happens.
        if rx.recv_timeout(Duration::from_secs(120)).is_ok() {
            seen += 1;
        } else {
            panic!("the refresher did not refresh");
        }
    }
    drop(refresher); // joins
    let after = calls.load(Ordering::SeqCst);
    assert!(after >= 4);
    assert!(pool.generation() >= 2);
    assert_eq!(calls.load(Ordering::SeqCst), after, "no refresh after the join");
    assert!(Refresher::spawn(&pool, Duration::ZERO).is_err());
}

#[test]
fn a_source_refreshing_its_own_pool_gets_an_error_not_a_deadlock() {
    // The source reaches its own pool through this cell (emptied at the end: the pool owns
    // the source, so a pool left in it would be a reference cycle).
    let cell: Arc<std::sync::Mutex<Option<Pool>>> = Arc::new(std::sync::Mutex::new(None));
    let c = Arc::clone(&cell);
    let inner_result = Arc::new(std::sync::Mutex::new(None));
    let r = Arc::clone(&inner_result);
    let src = source::from_fn(move |_| {
        let pool = c.lock().unwrap().clone();
        if let Some(pool) = pool {
            *r.lock().unwrap() = Some(pool.refresh().map(|_| ()));
        }
        Ok(vec![Upstream::new("a:1")])
    });
    let pool = Pool::builder(src).build().unwrap();
    *cell.lock().unwrap() = Some(pool.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    let p = pool.clone();
    std::thread::spawn(move || tx.send(p.refresh().map(|_| ())).unwrap());
    let outer = rx.recv_timeout(Duration::from_secs(120)).expect("the refresh returned");
    cell.lock().unwrap().take();
    assert_eq!(outer, Ok(()));
    let inner = inner_result.lock().unwrap().take().expect("the source ran");
    assert_eq!(inner.unwrap_err().kind(), ErrorKind::InvalidArgument);
}

#[test]
fn a_refresher_stopped_from_a_source_of_another_threads_refresh_does_not_deadlock() {
    let slot: Arc<std::sync::Mutex<Option<Refresher>>> = Arc::new(std::sync::Mutex::new(None));
    let armed = Arc::new(AtomicBool::new(false));
    let (s, a) = (Arc::clone(&slot), Arc::clone(&armed));
    let src = source::from_fn(move |_| {
        let on_refresher = std::thread::current().name() == Some("leastconn-refresh");
        if !on_refresher && a.swap(false, Ordering::SeqCst) {
            // Joins the refresher thread while this thread holds the refresh lock.
            drop(s.lock().unwrap().take());
        }
        Ok(vec![Upstream::new("a:1")])
    });
    let pool = Pool::builder(src).build().unwrap();
    *slot.lock().unwrap() = Some(Refresher::spawn(&pool, Duration::from_millis(1)).unwrap());
    armed.store(true, Ordering::SeqCst);
    let (tx, rx) = std::sync::mpsc::channel();
    let p = pool.clone();
    std::thread::spawn(move || tx.send(p.refresh().map(|_| ())).unwrap());
    assert_eq!(rx.recv_timeout(Duration::from_secs(120)).expect("no deadlock"), Ok(()));
    assert!(slot.lock().unwrap().is_none());
}

#[test]
fn two_pools_whose_sources_refresh_each_other_do_not_deadlock() {
    // Each source, once armed, waits until both threads are inside their own pool's refresh
    // (each holding its refresh lock), refreshes the other pool, and waits again until both
    // tried: so both nested refreshes run while the other lock is held, on every schedule.
    // The cells are emptied at the end (a pool left in its peer's source is a cycle).
    let cells: [Arc<std::sync::Mutex<Option<Pool>>>; 2] = Default::default();
    type Slot = Arc<std::sync::Mutex<Option<Result<(), ErrorKind>>>>;
    let results: [Slot; 2] = Default::default();
    let armed = Arc::new(AtomicBool::new(false));
    let inside = Arc::new(std::sync::Barrier::new(2));
    let tried = Arc::new(std::sync::Barrier::new(2));
    let pools: Vec<Pool> = (0..2)
        .map(|i| {
            let (peer, result) = (Arc::clone(&cells[1 - i]), Arc::clone(&results[i]));
            let (armed, inside, tried) = (Arc::clone(&armed), Arc::clone(&inside), Arc::clone(&tried));
            let src = source::from_fn(move |_| {
                if armed.load(Ordering::SeqCst) {
                    inside.wait();
                    let peer = peer.lock().unwrap().clone().expect("armed after both pools exist");
                    *result.lock().unwrap() = Some(peer.refresh().map(|_| ()).map_err(|e| e.kind()));
                    tried.wait();
                }
                Ok(vec![Upstream::new(if i == 0 { "a:1" } else { "b:1" })])
            });
            Pool::builder(src).build().unwrap()
        })
        .collect();
    for (cell, pool) in cells.iter().zip(&pools) {
        *cell.lock().unwrap() = Some(pool.clone());
    }
    armed.store(true, Ordering::SeqCst);
    let (tx, rx) = std::sync::mpsc::channel();
    for pool in &pools {
        let (pool, tx) = (pool.clone(), tx.clone());
        std::thread::spawn(move || tx.send(pool.refresh().map(|_| ())).unwrap());
    }
    // A guard against a regression hanging the suite, not a synchronisation: the refreshes
    // either deadlock (no answer ever) or answer at once.
    let outer: Vec<_> = (0..2).map(|_| rx.recv_timeout(Duration::from_secs(60)).expect("no deadlock")).collect();
    cells.iter().for_each(|c| drop(c.lock().unwrap().take()));
    assert_eq!(outer, [Ok(()), Ok(())]);
    for r in &results {
        assert_eq!(r.lock().unwrap().take(), Some(Err(ErrorKind::InvalidArgument)));
    }
}
