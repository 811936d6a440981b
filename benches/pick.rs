//! One pick plus its release on one thread, for every policy, the floor and the baselines,
//! side by side in one run (issue items 1, 2, 3 and 7).
//!
//! Groups `pick_idle` and `pick_spread` (`function/N`): the same workload for every subject.
//! Group `large_n`: the packed-mirror prototype against the floor and leastconn.

mod common;

use common::{
    CaddyLike, Floor, Leastconn, Load, MutexScan, Op, PackedMirror, PoolOp, RwLockScan, SIZES, Subject, config,
};
use criterion::{AxisScale, BenchmarkGroup, BenchmarkId, Criterion, PlotConfiguration, measurement::WallTime};
use leastconn::Policy;

const SEED: u64 = 0x5eed;

fn run<O: Op>(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, n: usize, mut op: O) {
    g.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| b.iter(|| op.op()));
}

fn subject<S: Subject>(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, n: usize, s: &S) {
    run(g, name, n, s.handle(SEED));
}

fn picks(c: &mut Criterion, load: Load) {
    let mut g = c.benchmark_group(format!("pick_{}", load.name()));
    g.plot_config(PlotConfiguration::default().summary_scale(AxisScale::Logarithmic));
    for n in SIZES {
        subject(&mut g, "floor", n, &Floor::new(n, load));
        let lc = Leastconn::new(n, Policy::LeastConn, load);
        subject(&mut g, "least_conn", n, &lc);
        run(&mut g, "least_conn_pool_select", n, PoolOp(&lc.pool));
        subject(&mut g, "p2c", n, &Leastconn::new(n, Policy::P2c, load));
        subject(&mut g, "first", n, &Leastconn::new(n, Policy::First, load));
        subject(&mut g, "mutex_vec", n, &MutexScan::new(n, load));
        subject(&mut g, "rwlock_arc", n, &RwLockScan::new(n, load));
        subject(&mut g, "caddy", n, &CaddyLike::new(n, load));
    }
    g.finish();
}

fn pick_idle(c: &mut Criterion) {
    picks(c, Load::Idle);
}

fn pick_spread(c: &mut Criterion) {
    picks(c, Load::Spread);
}

/// Issue item 7: does a scan over a packed mirror of the counters win at large N?
fn large_n(c: &mut Criterion) {
    let mut g = c.benchmark_group("large_n");
    g.plot_config(PlotConfiguration::default().summary_scale(AxisScale::Logarithmic));
    let load = Load::Spread;
    for n in [8, 64, 512, 4096] {
        subject(&mut g, "floor", n, &Floor::new(n, load));
        subject(&mut g, "least_conn", n, &Leastconn::new(n, Policy::LeastConn, load));
        let m = PackedMirror::new(n, load);
        g.bench_with_input(BenchmarkId::new("mirror_scalar", n), &n, |b, _| b.iter(|| m.op_scalar()));
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            g.bench_with_input(BenchmarkId::new("mirror_avx2", n), &n, |b, _| b.iter(|| m.op_avx2()));
        }
    }
    g.finish();
}

criterion::criterion_group! {
    name = benches;
    config = config(30);
    targets = pick_idle, pick_spread, large_n
}
criterion::criterion_main!(benches);
