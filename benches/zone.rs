//! Zone pools against heap pools (docs/design-zone.md section 8, issue 11 point 8: the zone
//! costs at most 1.1x the heap pool on the `Picker` path), in one criterion run:
//!
//! * `zone_picker_idle`, `zone_picker_spread` (`heap/{t}t`, `zone/{t}t`, bench id N = 8 and
//!   64): `Picker::select` + `Picker::release` from 1 and 2 threads (the contention harness,
//!   `common::threads`), hosts idle or holding the spread load of `common::Load`.
//! * `zone_tls`: the thread-local path, `Pool::select` + `Reservation::release`, idle hosts.
//! * `zone_2proc` (`zone/1t+child`): one thread of this process picks through a `Picker` on a
//!   zone pool while a child process, forked before criterion starts any thread, picks on the
//!   same zone and pool name; compare it with `zone_picker_idle`'s `heap/2t` (two threads of
//!   one process on a heap pool). The child's pick count during each such bench is printed as
//!   a `TWOPROC` line, so a starved child shows.
//!
//! `benches/report.py` prints the zone/heap ratios. For instruction counts (callgrind, which
//! a loaded machine does not disturb), `LC_ZONE_PROFILE=heap/8` (or `zone/64`...) runs
//! `LC_ZONE_ITERS` (default 1,000,000) `Picker` picks + releases on idle hosts and exits
//! without criterion.
//!
//! Off Linux, where the library has no shared zones (README.md, "Shared zones"), this bench
//! builds and says so instead of measuring.

mod common;

#[cfg(target_os = "linux")]
#[path = "zone/linux.rs"]
mod linux;

#[cfg(target_os = "linux")]
fn main() {
    linux::main();
}

#[cfg(not(target_os = "linux"))]
fn main() {
    // Still build the shared harness, so it is checked on every target.
    let _ = common::config;
    println!("zone benches: shared zones need Linux (README.md, \"Shared zones\"); nothing measured");
}
