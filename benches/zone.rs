//! The first zone/heap figure (docs/design-zone.md step S6, section 8, "riskiest part 2"):
//! `Picker` select + `Picker::release` on one thread, heap pool vs zone pool, N = 8 and 64,
//! all hosts idle between operations, side by side in one run. Target: zone <= 1.1x heap.
//!
//! The full `benches/zone.rs` of step S10 (spread load, two threads, the TLS path, two
//! processes) extends this file.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion};
use leastconn::{Outcome, Pool, Static, Zone, ZoneCapacity};

fn config() -> Criterion {
    Criterion::default()
        .without_plots()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1500))
        .configure_from_args()
}

fn addresses(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("10.0.{}.{}:80", i / 256, i % 256)).collect()
}

fn picker_select_release(c: &mut Criterion) {
    let zone = Zone::anonymous(&ZoneCapacity { hosts: 256, ..ZoneCapacity::default() }).unwrap();
    let mut g = c.benchmark_group("zone_picker");
    for n in [8usize, 64] {
        let heap = Pool::builder(Static::from_addresses(addresses(n))).build().unwrap();
        let zoned = Pool::builder(Static::from_addresses(addresses(n))).zone(&zone, &format!("n{n}")).build().unwrap();
        for (name, pool) in [("heap", &heap), ("zone", &zoned)] {
            let mut picker = pool.picker_seeded(0x5eed);
            g.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
                b.iter(|| {
                    let r = picker.select().unwrap();
                    picker.release(r, Outcome::Success);
                })
            });
        }
    }
    g.finish();
}

criterion::criterion_group! {
    name = benches;
    config = config();
    targets = picker_select_release
}
criterion::criterion_main!(benches);
