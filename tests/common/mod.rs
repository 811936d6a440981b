//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::HashMap;

use leastconn::{Outcome, Picker, Pool, Reservation};

/// Pearson's chi-square statistic of `observed` against `expected` counts.
pub fn chi_square(observed: &[u64], expected: &[f64]) -> f64 {
    observed.iter().zip(expected).map(|(&o, &e)| (o as f64 - e).powi(2) / e).sum()
}

/// Upper critical values of chi-square at p = 0.001 for the degrees of freedom used here.
pub fn chi_square_critical_001(dof: usize) -> f64 {
    match dof {
        1 => 10.828,
        2 => 13.816,
        3 => 16.266,
        4 => 18.467,
        7 => 24.322,
        9 => 27.877,
        99 => 148.230,
        _ => panic!("no table entry for {dof} degrees of freedom"),
    }
}

/// Picks `n` times, releasing each reservation at once, and counts picks per address.
pub fn count_idle_picks(picker: &mut Picker, n: usize) -> HashMap<String, u64> {
    let mut counts = HashMap::new();
    for _ in 0..n {
        let r = picker.select().expect("a host");
        *counts.entry(r.address().to_owned()).or_insert(0) += 1;
        r.release(Outcome::Success);
    }
    counts
}

/// Reserves `n` times without releasing.
pub fn hold(pool: &Pool, n: usize) -> Vec<Reservation> {
    (0..n).map(|_| pool.select().expect("a host")).collect()
}

pub fn in_flight(pool: &Pool, addr: &str) -> u32 {
    pool.host_stats(addr).expect("known host").in_flight
}

// A logger that keeps each thread's records, so parallel tests see only their own.
struct Capture;

thread_local! {
    static RECORDS: RefCell<Vec<(log::Level, String)>> = const { RefCell::new(Vec::new()) };
}

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        RECORDS.with(|r| r.borrow_mut().push((record.level(), record.args().to_string())));
    }
    fn flush(&self) {}
}

/// Starts capturing this thread's log records (idempotent) and clears earlier ones.
pub fn capture_logs() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        log::set_boxed_logger(Box::new(Capture)).expect("no other logger");
        log::set_max_level(log::LevelFilter::Trace);
    });
    RECORDS.with(|r| r.borrow_mut().clear());
}

/// This thread's log records since `capture_logs`.
pub fn logs() -> Vec<(log::Level, String)> {
    RECORDS.with(|r| r.borrow().clone())
}

/// A pool on `zone`, named "app", of one host with `max_requests` 1 and passive health off:
/// the probe of "pools of one name share one host state" (`zone_pools.rs`, the loom model Z10).
#[cfg(any(target_os = "linux", loom))]
pub fn one_host_zone_pool(zone: &leastconn::Zone) -> Pool {
    Pool::builder(leastconn::Static::new(vec![leastconn::Upstream::new("10.0.0.1:80").max_requests(1)]))
        .zone(zone, "app")
        .passive_health(leastconn::PassiveHealth::OFF)
        .build()
        .unwrap()
}
