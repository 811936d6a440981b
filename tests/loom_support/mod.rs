//! Shared by the `loom_*` models: runs one model and reports how much loom explored.
//!
//! The preemption bound comes from `LOOM_MAX_PREEMPTIONS` (3 when unset: loom's own default is
//! unbounded, which no model here finishes). Every model runs at 3 within a minute.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Explores every interleaving of `f` (within the preemption bound) and prints
/// `loom model NAME: N executions in T s (preemption bound B)`.
pub fn check(name: &str, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    let bound = builder.preemption_bound.unwrap_or(3);
    builder.preemption_bound = Some(bound);
    // Plain std counter: it lives across executions, which is what we count.
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&runs);
    let start = Instant::now();
    builder.check(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        f();
    });
    let runs = runs.load(Ordering::Relaxed);
    let secs = start.elapsed().as_secs_f64();
    println!("loom model {name}: {runs} executions in {secs:.1} s (preemption bound {bound})");
}
