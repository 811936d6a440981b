//! The zone benches proper (Linux only: zones need memfd and /proc); see `benches/zone.rs`.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use crate::common::threads::bench;
use crate::common::{Leastconn, LeastconnPoolSelect, Load, Op, PickerOp, Subject, config};
use criterion::{BenchmarkId, Criterion};
use leastconn::{Policy, Zone, ZoneCapacity};

const SIZES: [usize; 2] = [8, 64];
const THREADS: &[usize] = &[1, 2];

fn zone() -> Zone {
    Zone::anonymous(&ZoneCapacity { hosts: 512, ..ZoneCapacity::default() }).expect("zone")
}

fn picker_groups(c: &mut Criterion, zone: &Zone) {
    for load in [Load::Idle, Load::Spread] {
        let mut g = c.benchmark_group(format!("zone_picker_{}", load.name()));
        for n in SIZES {
            let name = format!("picker_{}_{n}", load.name());
            bench(&mut g, "heap", n, THREADS, false, &Leastconn::new(n, Policy::LeastConn, load));
            bench(
                &mut g,
                "zone",
                n,
                THREADS,
                false,
                &Leastconn::new_in(n, Policy::LeastConn, load, Some((zone, &name))),
            );
        }
        g.finish();
    }
}

fn tls_group(c: &mut Criterion, zone: &Zone) {
    let mut g = c.benchmark_group("zone_tls");
    for n in SIZES {
        let heap = LeastconnPoolSelect(Leastconn::new(n, Policy::LeastConn, Load::Idle));
        bench(&mut g, "heap", n, THREADS, false, &heap);
        let name = format!("tls_{n}");
        let zoned = LeastconnPoolSelect(Leastconn::new_in(n, Policy::LeastConn, Load::Idle, Some((zone, &name))));
        bench(&mut g, "zone", n, THREADS, false, &zoned);
    }
    g.finish();
}

/// The pool name both processes use for N hosts in `zone_2proc`.
fn two_proc_name(n: usize) -> String {
    format!("twoproc_{n}")
}

/// What the parent tells the child, in a shared anonymous mapping made before the fork.
struct Control {
    /// 0: wait; `n` (8 or 64): pick on the N-host pool; `u32::MAX`: exit.
    command: AtomicU32,
    /// Picks the child has made (counted in batches of [`BATCH`]).
    picks: AtomicU64,
}

const WAIT: u32 = 0;
const EXIT: u32 = u32::MAX;
const BATCH: u64 = 256;

/// The child's side of `zone_2proc`: builds its own pools on the zone (a pool built before a
/// fork is not for use in the child) and picks on the one the parent names.
fn child(zone: &Zone, ctl: &Control, parent: libc::pid_t) -> ! {
    let pools: Vec<(u32, Leastconn)> = SIZES
        .iter()
        .map(|&n| (n as u32, Leastconn::new_in(n, Policy::LeastConn, Load::Idle, Some((zone, &two_proc_name(n))))))
        .collect();
    let mut pickers: Vec<(u32, PickerOp)> = pools.iter().map(|(n, p)| (*n, p.handle(0xc41d))).collect();
    loop {
        // Acquire: pairs with the parent's Release store of the command (nothing else to see,
        // but it costs nothing on the benches' machines).
        match ctl.command.load(Ordering::Acquire) {
            EXIT => break,
            // SAFETY: getppid has no preconditions. A parent that died leaves us orphaned.
            WAIT if unsafe { libc::getppid() } != parent => break,
            WAIT => std::thread::sleep(Duration::from_millis(1)),
            n => {
                let (_, op) = pickers.iter_mut().find(|(m, _)| *m == n).expect("a size the child built");
                for _ in 0..BATCH {
                    op.op();
                }
                // Relaxed: a statistic, read after the bench.
                ctl.picks.fetch_add(BATCH, Ordering::Relaxed);
            }
        }
    }
    drop(pickers);
    drop(pools);
    // SAFETY: ends the child without running the parent's atexit handlers or criterion's.
    unsafe { libc::_exit(0) }
}

/// Forks the `zone_2proc` child; returns its pid and the control block. Called before
/// criterion (or anything else) starts a thread.
fn fork_child(zone: &Zone) -> (libc::pid_t, &'static Control) {
    // SAFETY: a fresh shared anonymous mapping of one page; checked below.
    let page = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(page, libc::MAP_FAILED, "mmap of the control page");
    // SAFETY: the page is zeroed, page-aligned and never unmapped, and `Control` is two
    // atomics whose all-zero value is valid (WAIT, 0 picks).
    let ctl: &'static Control = unsafe { &*page.cast::<Control>() };
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    // SAFETY: this process has one thread here (main, before criterion and any pool), so the
    // child may run any code.
    match unsafe { libc::fork() } {
        -1 => panic!("fork: {}", std::io::Error::last_os_error()),
        0 => child(zone, ctl, parent),
        pid => (pid, ctl),
    }
}

/// `zone_2proc`: `zone/1t+child` (see the module docs) and, in the same harness with a thread
/// of this process in the child's place, `heap/1t+thread`: one measured thread picking on a
/// heap pool while another thread picks flat out on the same pool for the whole bench, as the
/// child does on the zone. (`zone_picker_idle`'s `heap/2t` measures both threads, which start
/// together at a barrier and may not overlap for all of a sample.)
fn two_proc_group(c: &mut Criterion, zone: &Zone, ctl: &Control) {
    let mut g = c.benchmark_group("zone_2proc");
    for n in SIZES {
        let heap = Leastconn::new(n, Policy::LeastConn, Load::Idle);
        let stop = AtomicBool::new(false);
        let picks = AtomicU64::new(0);
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut op = heap.handle(0xc41d);
                // Relaxed: a stop flag; nothing is published with it.
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..BATCH {
                        op.op();
                    }
                    // Relaxed: a statistic, read after the join.
                    picks.fetch_add(BATCH, Ordering::Relaxed);
                }
            });
            g.bench_with_input(BenchmarkId::new("heap/1t+thread", n), &n, |b, _| {
                b.iter_custom(|iters| crate::common::threads::run(&heap, 1, iters))
            });
            stop.store(true, Ordering::Relaxed);
        });
        println!("TWOPROC {n}: the other thread picked {} times during heap/1t+thread", picks.into_inner());
        let pool = Leastconn::new_in(n, Policy::LeastConn, Load::Idle, Some((zone, &two_proc_name(n))));
        // Relaxed: a statistic.
        let before = ctl.picks.load(Ordering::Relaxed);
        // Release: see the child's Acquire load.
        ctl.command.store(n as u32, Ordering::Release);
        g.bench_with_input(BenchmarkId::new("zone/1t+child", n), &n, |b, _| {
            b.iter_custom(|iters| crate::common::threads::run(&pool, 1, iters))
        });
        ctl.command.store(WAIT, Ordering::Release);
        println!("TWOPROC {n}: the child picked {} times during the bench", ctl.picks.load(Ordering::Relaxed) - before);
    }
    g.finish();
}

/// `LC_ZONE_PROFILE=heap/8`: a fixed number of picks for callgrind (see the module docs).
fn profile(what: &str) {
    let (kind, n) = what.split_once('/').expect("LC_ZONE_PROFILE is heap/N or zone/N");
    let n: usize = n.parse().expect("N");
    let iters: u64 = std::env::var("LC_ZONE_ITERS").map_or(1_000_000, |v| v.parse().expect("LC_ZONE_ITERS"));
    let zone = zone();
    let pool = match kind {
        "heap" => Leastconn::new(n, Policy::LeastConn, Load::Idle),
        "zone" => Leastconn::new_in(n, Policy::LeastConn, Load::Idle, Some((&zone, "profile"))),
        _ => panic!("LC_ZONE_PROFILE is heap/N or zone/N"),
    };
    let mut op = pool.handle(0x5eed);
    let start = std::time::Instant::now();
    for _ in 0..iters {
        op.op();
    }
    println!("{what}: {:.1} ns per pick + release", start.elapsed().as_nanos() as f64 / iters as f64);
}

pub fn main() {
    if let Ok(what) = std::env::var("LC_ZONE_PROFILE") {
        profile(&what);
        return;
    }
    let zone = zone();
    // `cargo bench --no-run` never gets here; `cargo test --benches` runs each bench once.
    let (pid, ctl) = fork_child(&zone);
    let mut c = config(30);
    picker_groups(&mut c, &zone);
    tls_group(&mut c, &zone);
    two_proc_group(&mut c, &zone, ctl);
    c.final_summary();
    ctl.command.store(EXIT, Ordering::Release);
    let mut status = 0;
    // SAFETY: waits for our own child.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid, "waitpid: {}", std::io::Error::last_os_error());
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "the child failed: status {status}");
}
