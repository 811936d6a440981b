//! Churn stress test: reservations under constant membership changes, down/up flips and
//! reported failures, checked by the test's own accounting.
//!
//! Worker threads reserve and release with random (seeded) hold times, through `Pool::select`,
//! `select_excluding` and per-thread `Picker`s, while the background refresher publishes a new
//! random subset of the same addresses every millisecond (so addresses are removed and re-added
//! all the time, with requests still in flight), a chaos thread marks hosts down and up and
//! refreshes on its own too, and some releases report failures (passive health is on, with a
//! short window). The test checks, for each policy:
//!
//! * `max_requests` is never exceeded: each address's own holder count (raised after a pick,
//!   lowered before its release, so never above the host's real count) stays within its limit;
//! * every release lands on its own host: while a reservation is held, the state the pool has
//!   for its address is the reserved one (sampled), and at the end each listed host's `picks`
//!   equals the picks the workers made on that host state (by `HostId`);
//! * at the end every in-flight counter is exactly zero and the live host states are exactly
//!   the hosts of the final list (removed hosts were reclaimed).
//!
//! `LEASTCONN_STRESS_SECS` sets the duration per policy (default 3 s; three policies); each
//! thread does at least `MIN_OPS` operations however it is scheduled. Under
//! Miri each worker does a few dozen operations instead.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use leastconn::{HostId, Outcome, PassiveHealth, Policy, Pool, Refresher, Reservation, Upstream, source};

const ADDRS: usize = 8;
const WORKERS: usize = if cfg!(miri) { 2 } else { 4 };
/// Operations per worker under Miri (which runs a few thousand times slower).
const MIRI_OPS: u64 = 150;
/// Natively, the fewest operations each worker and the chaos thread do, however the threads
/// are scheduled (on a loaded machine a thread may get little of the test's duration).
const MIN_OPS: u64 = 2_000;
const MAX_HELD: usize = 4;
/// One release in this many reports a failure (more often under Miri, whose runs are short).
const FAIL_ONE_IN: u8 = if cfg!(miri) { 8 } else { 128 };

fn address(i: usize) -> String {
    format!("10.0.0.{}:80", i + 1)
}

/// Fixed per address, so the test can hold each address to one limit (0 = unlimited).
fn limit(i: usize) -> u32 {
    [1, 2, 3, 0][i % 4]
}

fn index_of(addr: &str) -> usize {
    (0..ADDRS).find(|&i| address(i) == addr).expect("an address of the test")
}

/// What the test itself counts, independently of the pool.
#[derive(Default)]
struct Accounting {
    /// Reservations currently held per address (raised after the pick, lowered before release).
    held: [AtomicU32; ADDRS],
    /// The most ever held at once per address.
    peak: [AtomicU32; ADDRS],
    reservations: AtomicU64,
    no_upstream: AtomicU64,
    failures_reported: AtomicU64,
    same_state_checks: AtomicU64,
    down_flips: AtomicU64,
    list_changes: AtomicU64,
    /// Picks per host state, merged from the workers at the end.
    picks_by_host: Mutex<HashMap<HostId, u64>>,
}

struct Held {
    r: Reservation,
    addr: usize,
    /// Operations of this worker left before it releases the reservation.
    hold: u32,
}

/// A source returning a random subset of the addresses (some twice, some in the backup tier,
/// with random weights), different on every call.
fn churning_source(seed: u64, acc: Arc<Accounting>) -> impl leastconn::Source {
    let rng = Mutex::new(fastrand::Rng::with_seed(seed));
    source::from_fn(move |_| {
        let mut rng = rng.lock().unwrap();
        acc.list_changes.fetch_add(1, Ordering::Relaxed);
        let mut list = Vec::new();
        for i in 0..ADDRS {
            if rng.bool() {
                let u = Upstream::new(address(i)).max_requests(limit(i)).weight(rng.u32(1..4)).tier(rng.u32(0..2));
                if rng.u8(..8) == 0 {
                    list.push(u.clone());
                }
                list.push(u);
            }
        }
        Ok(list)
    })
}

/// Natively, until the main thread says stop and at least `MIN_OPS` are done; under Miri, for
/// a fixed number of operations.
fn keep_going(stop: &AtomicBool, done: u64) -> bool {
    if cfg!(miri) { done < MIRI_OPS } else { done < MIN_OPS || !stop.load(Ordering::Relaxed) }
}

fn worker(pool: Pool, acc: Arc<Accounting>, stop: Arc<AtomicBool>, seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut picker = pool.picker_seeded(seed);
    let mut held: Vec<Held> = Vec::new();
    let mut picks: HashMap<HostId, u64> = HashMap::new();
    let mut last: Option<HostId> = None;
    let mut ops = 0u64;
    while keep_going(&stop, ops) {
        ops += 1;
        held.iter_mut().for_each(|h| h.hold = h.hold.saturating_sub(1));
        if let Some(pos) = held.iter().position(|h| h.hold == 0) {
            let h = held.swap_remove(pos);
            acc.held[h.addr].fetch_sub(1, Ordering::SeqCst);
            let outcome = if rng.u8(..FAIL_ONE_IN) == 0 { Outcome::Failure } else { Outcome::Success };
            if outcome == Outcome::Failure {
                acc.failures_reported.fetch_add(1, Ordering::Relaxed);
            }
            h.r.release(outcome);
            continue;
        }
        if held.len() == MAX_HELD {
            continue;
        }
        let picked = match rng.u8(..4) {
            0 => pool.select(),
            1 => pool.select_excluding(last.as_slice()),
            _ => picker.select(),
        };
        let Ok(r) = picked else {
            acc.no_upstream.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let i = index_of(r.address());
        let now = acc.held[i].fetch_add(1, Ordering::SeqCst) + 1;
        acc.peak[i].fetch_max(now, Ordering::Relaxed);
        assert!(limit(i) == 0 || now <= limit(i), "{} held {now} times, max_requests {}", r.address(), limit(i));
        acc.reservations.fetch_add(1, Ordering::Relaxed);
        *picks.entry(r.host_id()).or_default() += 1;
        last = Some(r.host_id());
        if rng.u8(..8) == 0 {
            // While we hold it, the pool's state for this address must be the reserved one.
            let stats = pool.host_stats(r.address()).unwrap();
            assert_eq!(stats.id, r.host_id(), "{} has a state other than the reserved one", r.address());
            assert!(stats.in_flight >= 1);
            acc.same_state_checks.fetch_add(1, Ordering::Relaxed);
        }
        held.push(Held { r, addr: i, hold: rng.u32(1..64) });
    }
    for h in held {
        acc.held[h.addr].fetch_sub(1, Ordering::SeqCst);
        h.r.release(Outcome::Success);
    }
    let mut all = acc.picks_by_host.lock().unwrap();
    for (id, n) in picks {
        *all.entry(id).or_default() += n;
    }
}

fn chaos(pool: Pool, acc: Arc<Accounting>, stop: Arc<AtomicBool>, seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut rounds = 0;
    while keep_going(&stop, rounds) {
        rounds += 1;
        let i = rng.usize(..ADDRS);
        // Unknown addresses (never listed or reclaimed) are refused; that is fine here.
        if pool.set_down(&address(i), rng.u8(..4) == 0).is_ok() {
            acc.down_flips.fetch_add(1, Ordering::Relaxed);
        }
        if rng.u8(..16) == 0 {
            pool.refresh().unwrap();
        }
        thread::yield_now();
    }
}

fn run(policy: Policy, seed: u64, duration: Duration) {
    let acc = Arc::new(Accounting::default());
    let pool = Pool::builder(churning_source(seed, Arc::clone(&acc)))
        .policy(policy)
        .passive_health(PassiveHealth { max_fails: 2, fail_duration: Duration::from_millis(1) })
        .build()
        .unwrap();
    let refresher = Refresher::spawn(&pool, Duration::from_millis(1)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads: Vec<_> = (0..WORKERS as u64)
        .map(|t| {
            let (pool, acc, stop) = (pool.clone(), Arc::clone(&acc), Arc::clone(&stop));
            thread::spawn(move || worker(pool, acc, stop, seed * 100 + t))
        })
        .collect();
    let chaos_thread = {
        let (pool, acc, stop) = (pool.clone(), Arc::clone(&acc), Arc::clone(&stop));
        thread::spawn(move || chaos(pool, acc, stop, seed * 100 + 99))
    };
    if !cfg!(miri) {
        // Not synchronisation: this is how long the test runs; the joins below synchronise.
        thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
    }
    threads.drain(..).for_each(|t| t.join().unwrap());
    stop.store(true, Ordering::Relaxed);
    chaos_thread.join().unwrap();
    refresher.stop();

    // Every picker is gone, so this refresh's sweep reclaims every unlisted host.
    pool.refresh().unwrap();
    let listed: std::collections::HashSet<String> = pool.upstreams().into_iter().map(|u| u.address).collect();
    let stats = pool.stats();
    let picks = acc.picks_by_host.lock().unwrap();
    for s in &stats {
        assert_eq!(s.in_flight, 0, "{} ends with requests in flight", s.address);
        assert_eq!(s.picks, picks.get(&s.id).copied().unwrap_or(0), "{}: picks differ from the workers'", s.address);
    }
    assert_eq!(pool.live_hosts(), listed.len(), "host states other than the final list's are alive");
    assert_eq!(stats.len(), listed.len());
    for i in 0..ADDRS {
        assert_eq!(acc.held[i].load(Ordering::SeqCst), 0);
        let peak = acc.peak[i].load(Ordering::Relaxed);
        assert!(limit(i) == 0 || peak <= limit(i));
    }
    let peaks: Vec<String> =
        (0..ADDRS).map(|i| format!("{}/{}", acc.peak[i].load(Ordering::Relaxed), limit(i))).collect();
    println!(
        "stress {policy:?}: {} reservations, {} no-upstream picks, {} failures reported, {} list changes, \
         {} down/up flips, {} same-state checks; final: {} listed, {} live states, in-flight all 0; \
         peak held/max_requests per address (0 = unlimited): {}",
        acc.reservations.load(Ordering::Relaxed),
        acc.no_upstream.load(Ordering::Relaxed),
        acc.failures_reported.load(Ordering::Relaxed),
        acc.list_changes.load(Ordering::Relaxed),
        acc.down_flips.load(Ordering::Relaxed),
        acc.same_state_checks.load(Ordering::Relaxed),
        listed.len(),
        pool.live_hosts(),
        peaks.join(" "),
    );
    assert!(acc.reservations.load(Ordering::Relaxed) > 0);
}

fn duration() -> Duration {
    let secs = std::env::var("LEASTCONN_STRESS_SECS").ok().and_then(|s| s.parse::<f64>().ok()).unwrap_or(3.0);
    Duration::from_secs_f64(secs)
}

#[test]
fn churn_keeps_counters_exact_and_reclaims_removed_hosts() {
    for (seed, policy) in [(1, Policy::LeastConn), (2, Policy::P2c), (3, Policy::First)] {
        run(policy, seed, duration());
    }
}
