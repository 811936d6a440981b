//! Multi-process stress test of zone pools and the crash sweep (docs/design-zone.md 6.2, scaled
//! to a 2-core machine): K children with two picking threads each, killed by SIGKILL on events
//! (never on a timer), restarted; the parent checks the counts the sweeps leave.
//!
//! Event-driven: the parent acts on the bytes it reads from the children's pipes (hold
//! records, progress records, refresh acknowledgements), so the assertions hold on every
//! schedule. A watchdog `alarm` ends a hung run after 5 minutes. `fork` is only ever called
//! from the parent's single thread. `LEASTCONN_ZONE_STRESS_KILLS` sets the phase-2 kills.
//!
//! `max_requests` is checked with the test's own counters in a second shared mapping: a
//! child adds 1 after a reservation and subtracts 1 before its release, so a counter never
//! exceeds the true holds, and `held <= limit` is asserted on every add. A killed child's
//! counts are taken off by the parent after `waitpid` and before anything can sweep it (no
//! refresh is outstanding then and no child is being started), so the counter stays below the
//! true in-flight count.

// Zones are Linux-only: elsewhere the test has nothing to run.
#[cfg(target_os = "linux")]
#[path = "zone_stress/linux.rs"]
mod linux;

fn main() {
    #[cfg(target_os = "linux")]
    linux::main();
    #[cfg(not(target_os = "linux"))]
    println!("zone_stress: skipped (zones are Linux-only)");
}
