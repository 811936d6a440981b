//! Bytes per host (issue item 6): what a pool holds per upstream once built, measured by a
//! counting global allocator (bytes requested) and by glibc's own accounting (bytes in use,
//! allocator overhead and alignment padding included).
//!
//! The address itself is counted apart (its bytes plus the NUL the C API needs), since the
//! target is "256 bytes per host plus its address". Run: `cargo bench --bench memory`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::{Arc, Mutex};

use leastconn::{PassiveHealth, Pool, Upstream, source};

/// Counts live bytes requested through the global allocator.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to `System` unchanged; the counter has no effect on allocation.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // Relaxed: a statistic, read on this thread after the work is done.
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// glibc's `struct mallinfo2`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[repr(C)]
struct MallInfo2 {
    arena: usize,
    ordblks: usize,
    smblks: usize,
    hblks: usize,
    hblkhd: usize,
    usmblks: usize,
    fsmblks: usize,
    uordblks: usize,
    fordblks: usize,
    keepcost: usize,
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
unsafe extern "C" {
    fn mallinfo2() -> MallInfo2;
}

/// Bytes glibc has handed out (chunks in use, headers and padding included), if known.
fn in_use() -> Option<usize> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 only reads the allocator's statistics (glibc >= 2.33).
        let m = unsafe { mallinfo2() };
        Some(m.uordblks + m.hblkhd)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    None
}

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn measure(n: usize, health: PassiveHealth, label: &str) {
    let list: Vec<Upstream> =
        (0..n).map(|i| Upstream::new(format!("10.{}.{}.{}:8080", i >> 16, (i >> 8) & 0xff, i & 0xff))).collect();
    let addr_bytes: usize = list.iter().map(|u| u.address.len() + 1).sum();
    let shared = Arc::new(Mutex::new(list));
    let src = Arc::clone(&shared);
    let (live0, used0) = (live(), in_use());
    let pool = Pool::builder(source::from_fn(move |_| Ok(src.lock().unwrap().clone())))
        .passive_health(health)
        .build()
        .expect("pool");
    // A second refresh: steady state, one snapshot alive, the registry's table at its size.
    pool.refresh().expect("refresh");
    let (live1, used1) = (live(), in_use());
    let requested = (live1 - live0) as f64 / n as f64;
    let addr = addr_bytes as f64 / n as f64;
    print!("MEMORY n={n} {label}: requested {requested:.1} B/host = {:.1} + address {addr:.1}", requested - addr);
    match (used0, used1) {
        (Some(a), Some(b)) => {
            let glibc = (b as f64 - a as f64) / n as f64;
            println!("; glibc in use {glibc:.1} B/host = {:.1} + address {addr:.1}", glibc - addr);
        }
        _ => println!(),
    }
    drop(pool);
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    for n in [1_000, 10_000] {
        measure(n, PassiveHealth::default(), "max_fails=1");
        measure(n, PassiveHealth::OFF, "passive health off");
        measure(n, PassiveHealth { max_fails: 5, fail_duration: std::time::Duration::from_secs(10) }, "max_fails=5");
    }
}
