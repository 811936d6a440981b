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

use common::threads::bench;
use common::{CaddyLike, Floor, Leastconn, LeastconnPoolSelect, Load, MutexScan, PrivateFloor, RwLockScan, config};
use criterion::Criterion;
use leastconn::Policy;

const THREADS: &[usize] = &[1, 2];

fn contention(c: &mut Criterion, writer: bool) {
    let load = Load::Idle;
    let mut g = c.benchmark_group(if writer { "contention_writer" } else { "contention" });
    for n in [8, 64] {
        bench(&mut g, "private_floor", n, THREADS, writer, &PrivateFloor::new(n, load));
        bench(&mut g, "floor", n, THREADS, writer, &Floor::new(n, load));
        bench(&mut g, "least_conn", n, THREADS, writer, &Leastconn::new(n, Policy::LeastConn, load));
        bench(
            &mut g,
            "least_conn_pool_select",
            n,
            THREADS,
            writer,
            &LeastconnPoolSelect(Leastconn::new(n, Policy::LeastConn, load)),
        );
        bench(&mut g, "mutex_vec", n, THREADS, writer, &MutexScan::new(n, load));
        bench(&mut g, "rwlock_arc", n, THREADS, writer, &RwLockScan::new(n, load));
        bench(&mut g, "caddy", n, THREADS, writer, &CaddyLike::new(n, load));
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
    config = config(20);
    targets = without_writer, with_writer
}
criterion::criterion_main!(benches);
