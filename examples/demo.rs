//! The main demo: `cargo run --release --example demo`.
//!
//! A pool merged by `multi` from two sources (a static cluster and a service registry that is
//! down), eight client threads sending simulated requests of varied duration, one backend ten
//! times slower than the others. Prints how least_conn spread the requests, changes the list
//! mid-run (showing the in-flight counters carried over) and prints the spread again.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use leastconn::{HostStats, Multi, Outcome, Pool, Refresher, Static, Upstream, source};

const CLIENTS: usize = 8;
const PHASE: Duration = Duration::from_millis(1500);
const SLOW: &str = "10.0.0.2:8080";

/// Simulated service time: ~2 ms (0.5..3.5 ms), ten times that on the slow backend.
fn service_time(addr: &str, rng: &mut fastrand::Rng) -> Duration {
    let base = Duration::from_micros(500 + rng.u64(..3000));
    if addr == SLOW { base * 10 } else { base }
}

/// Prints warnings and errors once each (the failing source fails on every refresh).
struct StderrLogger(Mutex<Vec<String>>);
impl log::Log for StderrLogger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Warn
    }
    fn log(&self, r: &log::Record<'_>) {
        let line = format!("[{}] {}", r.level(), r.args());
        let mut seen = self.0.lock().unwrap();
        if self.enabled(r.metadata()) && !seen.contains(&line) {
            eprintln!("  {line}  (logged on every refresh; shown once)");
            seen.push(line);
        }
    }
    fn flush(&self) {}
}

static LOGGER: StderrLogger = StderrLogger(Mutex::new(Vec::new()));

fn main() -> Result<(), leastconn::Error> {
    log::set_logger(&LOGGER).expect("first logger");
    log::set_max_level(log::LevelFilter::Warn);

    // Source 0: a static cluster. Source 1: a registry whose list the demo edits mid-run.
    // Source 2: a registry that is unreachable; multi logs it with its index and skips it.
    let registry = Arc::new(Mutex::new(vec![Upstream::new("10.0.1.1:8080"), Upstream::new("10.0.1.2:8080")]));
    let reg = Arc::clone(&registry);
    let sources = Multi::new()
        .with(Static::from_addresses(["10.0.0.1:8080", SLOW, "10.0.0.3:8080"]))
        .with(source::from_fn(move |_| Ok(reg.lock().unwrap().clone())))
        .with(source::from_fn(|_| Err("consul at 127.0.0.1:8500: connection refused".into())));
    println!("leastconn demo: {CLIENTS} clients, least_conn, {SLOW} is 10x slower\n");
    println!("building the pool (multi of 3 sources, one failing):");
    let pool = Pool::builder(sources).build()?;
    let refresher = Refresher::spawn(&pool, Duration::from_millis(250))?;

    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (pool, stop) = (pool.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut picker = pool.picker();
                let mut rng = fastrand::Rng::with_seed(i as u64);
                while !stop.load(Ordering::Relaxed) {
                    match picker.select() {
                        Ok(r) => {
                            std::thread::sleep(service_time(r.address(), &mut rng));
                            r.release(Outcome::Success);
                        }
                        Err(e) => eprintln!("client {i}: {e}"),
                    }
                }
            })
        })
        .collect();

    let t0 = Instant::now();
    std::thread::sleep(PHASE);
    let first = picks(&pool);
    println!("\nphase 1 ({:.1} s): requests per backend", t0.elapsed().as_secs_f64());
    histogram(&first);

    // Change the list while requests are in flight: 10.0.1.2 leaves, 10.0.1.3 joins.
    let before = pool.stats();
    *registry.lock().unwrap() = vec![Upstream::new("10.0.1.1:8080"), Upstream::new("10.0.1.3:8080")];
    let report = pool.refresh()?;
    let after = pool.stats();
    println!(
        "\nlist changed: 10.0.1.2 removed, 10.0.1.3 added ({} upstreams, {} host states alive)",
        report.upstreams, report.hosts
    );
    println!("  {:<16} {:>22} {:>22}", "backend", "in flight / picks before", "in flight / picks after");
    for b in &before {
        let a = after.iter().find(|a| a.address == b.address);
        let after_col = a.map_or("(removed, draining)".to_owned(), |a| format!("{} / {}", a.in_flight, a.picks));
        println!("  {:<16} {:>22} {:>22}", b.address, format!("{} / {}", b.in_flight, b.picks), after_col);
    }
    for a in after.iter().filter(|a| !before.iter().any(|b| b.address == a.address)) {
        println!("  {:<16} {:>22} {:>22}", a.address, "(new)", format!("{} / {}", a.in_flight, a.picks));
    }
    println!("  (state is keyed by address: counters of backends that stayed carried over)");

    let t1 = Instant::now();
    std::thread::sleep(PHASE);
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().expect("client thread");
    }
    drop(refresher);
    let second: BTreeMap<String, u64> = picks(&pool)
        .into_iter()
        .map(|(a, n)| {
            let earlier = first.get(&a).copied().unwrap_or(0);
            (a, n - earlier)
        })
        .collect();
    println!("\nphase 2 ({:.1} s): requests per backend", t1.elapsed().as_secs_f64());
    histogram(&second);

    let stats = pool.stats();
    let in_flight: u32 = stats.iter().map(|s: &HostStats| s.in_flight).sum();
    let total: u64 = first.values().sum::<u64>() + second.values().sum::<u64>();
    let slow: u64 = first.get(SLOW).copied().unwrap_or(0) + second.get(SLOW).copied().unwrap_or(0);
    println!(
        "\n{total} requests; the slow backend got {:.1}% (round robin would send {:.1}%); {in_flight} still in flight",
        100.0 * slow as f64 / total as f64,
        100.0 / 5.0
    );
    Ok(())
}

fn picks(pool: &Pool) -> BTreeMap<String, u64> {
    pool.stats().into_iter().map(|s| (s.address, s.picks)).collect()
}

fn histogram(counts: &BTreeMap<String, u64>) {
    let total: u64 = counts.values().sum();
    let max = counts.values().copied().max().unwrap_or(1).max(1);
    for (addr, &n) in counts {
        let bar = "#".repeat((50 * n / max) as usize);
        let tag = if addr == SLOW { "  <- 10x slower" } else { "" };
        println!("  {addr:<16} {n:>6} {:>5.1}% {bar}{tag}", 100.0 * n as f64 / total.max(1) as f64);
    }
}
