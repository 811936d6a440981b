//! Refresh: rebuild and publish the list for N = 10, 1,000 and 10,000 hosts, and the pick
//! latency another thread sees while refreshes run (issue item 5).
//!
//! * `refresh/same/N`: the source returns the same list (every host keeps its state).
//! * `refresh/churn/N`: each refresh swaps a tenth of the hosts for new ones (host states
//!   created, the removed ones reclaimed).
//! * Then, outside criterion, one thread refreshes an N-host pool back to back while another
//!   picks from it, timing every pick; the same picks are timed with no refresh running. The
//!   percentiles are printed as `LATENCY` lines.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{address, upstreams};
use criterion::{BenchmarkId, Criterion};
use leastconn::{Outcome, Pool, Upstream, source};

fn config() -> Criterion {
    Criterion::default()
        .without_plots()
        .sample_size(15)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args()
}

/// A pool over a list the caller can replace.
fn settable(list: Vec<Upstream>) -> (Arc<Mutex<Vec<Upstream>>>, Pool) {
    let list = Arc::new(Mutex::new(list));
    let shared = Arc::clone(&list);
    let pool = Pool::builder(source::from_fn(move |_| Ok(shared.lock().unwrap().clone()))).build().expect("pool");
    (list, pool)
}

fn refresh(c: &mut Criterion) {
    let mut g = c.benchmark_group("refresh");
    for n in [10, 1_000, 10_000] {
        let (_list, pool) = settable(upstreams(n));
        g.bench_with_input(BenchmarkId::new("same", n), &n, |b, _| b.iter(|| pool.refresh().expect("refresh")));
        // Two lists sharing 90% of their hosts, published in turn.
        let churn = n / 10;
        let lists = [upstreams(n), (churn..n + churn).map(|i| Upstream::new(address(i))).collect::<Vec<_>>()];
        let (list, pool) = settable(lists[0].clone());
        let mut turn = 0;
        g.bench_with_input(BenchmarkId::new("churn", n), &n, |b, _| {
            b.iter(|| {
                turn ^= 1;
                list.lock().unwrap().clone_from(&lists[turn]);
                pool.refresh().expect("refresh")
            })
        });
    }
    g.finish();
}

/// Per-pick latencies in ns, sorted; counts the picks done in `done`.
fn pick_latencies(pool: &Pool, picks: usize, done: &AtomicU64) -> Vec<u64> {
    let mut picker = pool.picker_seeded(7);
    let mut lat = Vec::with_capacity(picks);
    for _ in 0..picks {
        let start = Instant::now();
        let r = picker.select().expect("pick");
        r.release(Outcome::Success);
        lat.push(start.elapsed().as_nanos() as u64);
        // Relaxed: a statistic.
        done.fetch_add(1, Ordering::Relaxed);
    }
    lat.sort_unstable();
    lat
}

fn pct(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn latency_during_refresh() {
    for n in [10, 1_000, 10_000] {
        let picks = if n == 10_000 { 20_000 } else { 200_000 };
        let (_list, pool) = settable(upstreams(n));
        let done = AtomicU64::new(0);
        let quiet = pick_latencies(&pool, picks, &done);
        done.store(0, Ordering::Relaxed);
        let stop = AtomicBool::new(false);
        let (count, busy_ns, worst_ns) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
        // Picks that completed while a refresh was running, and refreshes that saw any.
        let (overlapped, refreshes_with_picks) = (AtomicU64::new(0), AtomicU64::new(0));
        let busy = std::thread::scope(|scope| {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let before = done.load(Ordering::Relaxed);
                    let start = Instant::now();
                    pool.refresh().expect("refresh");
                    let ns = start.elapsed().as_nanos() as u64;
                    let during = done.load(Ordering::Relaxed) - before;
                    overlapped.fetch_add(during, Ordering::Relaxed);
                    refreshes_with_picks.fetch_add(u64::from(during > 0), Ordering::Relaxed);
                    count.fetch_add(1, Ordering::Relaxed);
                    busy_ns.fetch_add(ns, Ordering::Relaxed);
                    worst_ns.fetch_max(ns, Ordering::Relaxed);
                }
            });
            let lat = pick_latencies(&pool, picks, &done);
            stop.store(true, Ordering::Relaxed);
            lat
        });
        let refreshes = count.load(Ordering::Relaxed).max(1);
        for (what, lat) in [("quiet", &quiet), ("refreshing", &busy)] {
            println!(
                "LATENCY n={n} {what}: picks={} p50={} p99={} p99.9={} max={} ns",
                lat.len(),
                pct(lat, 0.5),
                pct(lat, 0.99),
                pct(lat, 0.999),
                lat[lat.len() - 1]
            );
        }
        println!(
            "LATENCY n={n} refreshes: count={} mean={} max={} ns; picks completed during a refresh: {} (in {} of the refreshes)",
            count.load(Ordering::Relaxed),
            busy_ns.load(Ordering::Relaxed) / refreshes,
            worst_ns.load(Ordering::Relaxed),
            overlapped.load(Ordering::Relaxed),
            refreshes_with_picks.load(Ordering::Relaxed),
        );
    }
}

/// The first pick after a refresh, on the same thread: the picker's cache moves to the new
/// snapshot and lets go of the old one (which the pool's retired list keeps, so the pick does
/// not free it). Compared with the picks that follow it.
fn first_pick_after_refresh() {
    for n in [10, 1_000, 10_000] {
        let (_list, pool) = settable(upstreams(n));
        let mut picker = pool.picker_seeded(9);
        let mut time_pick = || {
            let start = Instant::now();
            picker.select().expect("pick").release(Outcome::Success);
            start.elapsed().as_nanos() as u64
        };
        time_pick();
        let (mut first, mut next) = (Vec::new(), Vec::new());
        for _ in 0..if n == 10_000 { 100 } else { 400 } {
            pool.refresh().expect("refresh");
            first.push(time_pick());
            next.push(time_pick());
        }
        first.sort_unstable();
        next.sort_unstable();
        println!(
            "LATENCY n={n} first pick after a refresh: median={} ns; the pick after it: median={} ns",
            pct(&first, 0.5),
            pct(&next, 0.5)
        );
    }
}

fn main() {
    let mut c = config();
    refresh(&mut c);
    // The latency run takes a few seconds; listing and test mode skip it.
    if !std::env::args().any(|a| a == "--list" || a == "--test") {
        first_pick_after_refresh();
        latency_during_refresh();
    }
    c.final_summary();
}
