//! The multi-thread harness of the contention and zone benches: pick plus release from 1 and
//! 2 threads at once (never more threads than cores), optionally with a writer thread
//! republishing the list every [`WRITER_PERIOD`].
//!
//! Each sample starts its threads, lines them up on a barrier, and reports the slowest
//! thread's time for `iters` operations: the per-operation cost each thread sees.

use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkGroup, BenchmarkId, measurement::WallTime};

use super::{Op, Subject};

/// How often the writer refreshes (it sleeps that long between refreshes, so it takes a
/// small share of a core while the pickers run).
pub const WRITER_PERIOD: Duration = Duration::from_micros(100);

/// `threads` threads each doing `iters` operations; the slowest thread's time.
pub fn run<S: Subject>(s: &S, threads: usize, iters: u64) -> Duration {
    let barrier = Barrier::new(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let mut h = s.handle(0x5eed + t as u64);
                    h.op();
                    barrier.wait();
                    let start = Instant::now();
                    for _ in 0..iters {
                        h.op();
                    }
                    start.elapsed()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("worker")).max().expect("one thread")
    })
}

/// Benchmarks `s` as `{name}/{t}t` (bench id `N = n`) for each `t` in `threads` that does not
/// exceed the cores, with a writer thread when `writer` is set (its refresh count is printed
/// as a `WRITER` line).
pub fn bench<S: Subject>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    n: usize,
    threads: &[usize],
    writer: bool,
    s: &S,
) {
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let stop = AtomicBool::new(false);
    let refreshes = AtomicU64::new(0);
    std::thread::scope(|scope| {
        if writer {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(WRITER_PERIOD);
                    s.refresh();
                    refreshes.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        for &t in threads.iter().filter(|&&t| t <= cores) {
            g.bench_with_input(BenchmarkId::new(format!("{name}/{t}t"), n), &n, |b, _| {
                b.iter_custom(|iters| run(s, t, iters))
            });
        }
        stop.store(true, Ordering::Relaxed);
    });
    if writer {
        println!("WRITER {name}/{n}: {} refreshes", refreshes.load(Ordering::Relaxed));
    }
}
