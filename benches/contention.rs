//! Pick plus release from 1 and 2 threads at once (never more threads than cores), at N = 8
//! and 64 idle hosts, with and without a writer republishing the list every 100 us (issue
//! item 4).
//!
//! Each sample starts its threads, lines them up on a barrier, and reports the slowest
//! thread's time for `iters` operations: the per-operation cost each thread sees. The
//! `private_floor` control shares nothing between threads: its 2-thread / 1-thread ratio
//! shows how much CPU the machine actually gives two threads. The writer
//! (group `contention_writer`) is an extra thread that sleeps 100 us between refreshes, so it
//! takes a small share of a core while the pickers run.

mod common;

use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{
    CaddyLike, Floor, Leastconn, LeastconnPoolSelect, Load, MutexScan, Op, PrivateFloor, RwLockScan, Subject,
};
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, measurement::WallTime};
use leastconn::Policy;

const WRITER_PERIOD: Duration = Duration::from_micros(100);

fn config() -> Criterion {
    Criterion::default()
        .without_plots()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1500))
        .configure_from_args()
}

/// `threads` threads each doing `iters` operations; the slowest thread's time.
fn run<S: Subject>(s: &S, threads: usize, iters: u64) -> Duration {
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

fn bench<S: Subject>(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, n: usize, writer: bool, s: &S) {
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
        for threads in [1, 2].into_iter().filter(|&t| t <= cores) {
            g.bench_with_input(BenchmarkId::new(format!("{name}/{threads}t"), n), &n, |b, _| {
                b.iter_custom(|iters| run(s, threads, iters))
            });
        }
        stop.store(true, Ordering::Relaxed);
    });
    if writer {
        println!("WRITER {name}/{n}: {} refreshes", refreshes.load(Ordering::Relaxed));
    }
}

fn contention(c: &mut Criterion, writer: bool) {
    let load = Load::Idle;
    let mut g = c.benchmark_group(if writer { "contention_writer" } else { "contention" });
    for n in [8, 64] {
        bench(&mut g, "private_floor", n, writer, &PrivateFloor::new(n, load));
        bench(&mut g, "floor", n, writer, &Floor::new(n, load));
        bench(&mut g, "least_conn", n, writer, &Leastconn::new(n, Policy::LeastConn, load));
        bench(
            &mut g,
            "least_conn_pool_select",
            n,
            writer,
            &LeastconnPoolSelect(Leastconn::new(n, Policy::LeastConn, load)),
        );
        bench(&mut g, "mutex_vec", n, writer, &MutexScan::new(n, load));
        bench(&mut g, "rwlock_arc", n, writer, &RwLockScan::new(n, load));
        bench(&mut g, "caddy", n, writer, &CaddyLike::new(n, load));
    }
    g.finish();
}

fn without_writer(c: &mut Criterion) {
    contention(c, false);
}

fn with_writer(c: &mut Criterion) {
    contention(c, true);
}

criterion::criterion_group! {
    name = benches;
    config = config();
    targets = without_writer, with_writer
}
criterion::criterion_main!(benches);
