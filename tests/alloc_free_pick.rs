//! "No allocation on the hot path", counted: a global allocator that counts the allocations
//! made by the measuring thread, around picks and releases after `warm_up_thread`.
#![cfg(not(loom))]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use leastconn::{Clock, ManualClock, Outcome, PassiveHealth, Policy, Pool, Static, warm_up_thread};

struct Counting;

thread_local! {
    /// Allocations (alloc, alloc_zeroed, realloc) by this thread while it is measured, or
    /// `None`. Per thread, so that tests running in parallel never count each other's.
    /// `const` and `Copy`: using it never allocates and registers no destructor.
    static ALLOCATIONS: Cell<Option<u64>> = const { Cell::new(None) };
}

fn note() {
    // `try_with`: the allocator also runs while thread-locals are being destroyed.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get().map(|n| n + 1)));
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Allocations made by `f` on the calling thread.
fn allocations(f: impl FnOnce()) -> u64 {
    ALLOCATIONS.with(|n| n.set(Some(0)));
    f();
    ALLOCATIONS.with(|n| n.replace(None)).expect("measuring")
}

fn pool(policy: Policy, clock: &ManualClock) -> Pool {
    let hosts: Vec<String> = (0..8).map(|i| format!("10.0.0.{i}:80")).collect();
    Pool::builder(Static::from_addresses(hosts))
        .policy(policy)
        .passive_health(PassiveHealth { max_fails: 2, fail_duration: Duration::from_secs(10) })
        .clock(Clock::Manual(clock.clone()))
        .build()
        .unwrap()
}

/// 1,000 picks and releases (a tenth of them failures, which fill failure windows and make
/// later picks check SUSPECT hosts) per policy, each on a fresh thread: 0 allocations after
/// `warm_up_thread`, from the thread's very first pick.
#[test]
fn picks_and_releases_allocate_nothing_after_warm_up() {
    for policy in [Policy::LeastConn, Policy::P2c, Policy::First] {
        let clock = ManualClock::new();
        let pool = pool(policy, &clock);
        let n = std::thread::spawn(move || {
            warm_up_thread();
            allocations(|| {
                for i in 0..1000u32 {
                    let r = pool.select().unwrap();
                    r.release(if i % 10 == 0 { Outcome::Failure } else { Outcome::Success });
                    clock.advance(Duration::from_secs(1));
                }
            })
        })
        .join()
        .unwrap();
        assert_eq!(n, 0, "{policy:?}: allocations in 1,000 Pool::select + release");
    }
}

/// The same through a `Picker` made on the measuring thread (making it warms the thread up),
/// across a refresh that the picker's cache must pick up.
#[test]
fn picker_picks_allocate_nothing_from_the_first() {
    let clock = ManualClock::new();
    let pool = pool(Policy::LeastConn, &clock);
    let clock = clock.clone();
    let n = std::thread::spawn(move || {
        let mut picker = pool.picker_seeded(7);
        let first = allocations(|| picker.select().unwrap().release(Outcome::Success));
        pool.refresh().unwrap();
        let rest = allocations(|| {
            for _ in 0..1000 {
                picker.select().unwrap().release(Outcome::Failure);
                clock.advance(Duration::from_secs(1));
            }
        });
        first + rest
    })
    .join()
    .unwrap();
    assert_eq!(n, 0, "allocations in 1,001 Picker::select + release");
}

/// Zone pools: the same, with attribution (thread record cache on the `Pool::select` path, the
/// picker's own record on the `Picker` path). The thread's first zone use claims its record,
/// which may allocate (hence one warm-up pick outside the count), then nothing.
#[test]
#[cfg(target_os = "linux")] // zones are Linux-only
#[cfg_attr(
    miri,
    ignore = "Zone::anonymous calls memfd_create, which Miri cannot run (src/zone/pool_tests.rs runs zone pools under Miri on heap memory)"
)]
fn zone_picks_and_releases_allocate_nothing_after_warm_up() {
    use leastconn::{Zone, ZoneCapacity};
    let zone = Zone::anonymous(&ZoneCapacity { hosts: 64, ..ZoneCapacity::default() }).unwrap();
    for policy in [Policy::LeastConn, Policy::P2c, Policy::First] {
        let clock = ManualClock::new();
        let hosts: Vec<String> = (0..8).map(|i| format!("10.0.0.{i}:80")).collect();
        let pool = Pool::builder(Static::from_addresses(hosts))
            .policy(policy)
            .zone(&zone, &format!("{policy:?}"))
            .passive_health(PassiveHealth { max_fails: 2, fail_duration: Duration::from_secs(10) })
            .clock(Clock::Manual(clock.clone()))
            .build()
            .unwrap();
        let n = std::thread::spawn(move || {
            warm_up_thread();
            pool.select().unwrap().release(Outcome::Success);
            let mut picker = pool.picker_seeded(5);
            let tls = allocations(|| {
                for i in 0..1000u32 {
                    let r = pool.select().unwrap();
                    r.release(if i % 10 == 0 { Outcome::Failure } else { Outcome::Success });
                    clock.advance(Duration::from_secs(1));
                }
            });
            let own = allocations(|| {
                for i in 0..1000u32 {
                    let r = picker.select().unwrap();
                    picker.release(r, if i % 10 == 0 { Outcome::Failure } else { Outcome::Success });
                    clock.advance(Duration::from_secs(1));
                }
            });
            (tls, own)
        })
        .join()
        .unwrap();
        assert_eq!(n, (0, 0), "{policy:?}: allocations in 1,000 zone picks + releases (TLS path, Picker path)");
    }
}

/// The figures above are not vacuous: the counter sees an allocation made on the measured
/// thread. (Whether a cold thread's first pick allocates is not asserted here: arc-swap hands
/// a new thread the node of a thread that has exited, so it depends on which of this binary's
/// test threads finished first. `ffi-tests/c/test_alloc.c` shows it deterministically: a
/// thread the C program creates has no Rust thread handle yet, so its first select allocates.)
#[test]
fn the_counter_sees_an_allocation_on_the_measured_thread() {
    let n = std::thread::spawn(|| allocations(|| drop(std::hint::black_box(Box::new(7u64))))).join().unwrap();
    assert_eq!(n, 1, "one Box::new on the measured thread");
}
