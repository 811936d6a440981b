//! The doubt bound of a crash, tested point by point (docs/design-zone.md 4.5): for every crash
//! point of a zone pick (success and failure paths), a zone release (success and failure
//! outcomes), a sweep and a sweep's takeover, a forked child is killed there by `SIGKILL`
//! (the feature `crash-points`, armed by `LEASTCONN_CRASH_POINT`), and the parent, which holds
//! 2 reservations on the same host, sweeps and checks the exact table: what the sweep
//! recovered and left in doubt, the in-flight count and doubt word after it, the phantoms the
//! reconcile then removes, and, at the end, in-flight exactly 2 (never below it at any step),
//! no doubt, the slot listed once (by the parent) and no process record but the parent's.
//!
//! `harness = false`: one process, single-threaded at every `fork`; a child is forked, does its
//! steps and dies at the armed point; the parent `waitpid`s it (killed by signal 9, or the
//! case fails). No sleeps, no timing: each step waits for a process's end.
//!
//! Without the feature this prints that it did not run and how to run it (`.ci/run` does:
//! `cargo test --features crash-points --test zone_crash_points`).

#[cfg(not(all(target_os = "linux", feature = "crash-points")))]
fn main() {
    println!(
        "zone_crash_points: NOT RUN (built without the feature `crash-points`); run it with \
         `cargo test --features crash-points --test zone_crash_points` (.ci/run does)"
    );
}

#[cfg(all(target_os = "linux", feature = "crash-points"))]
fn main() {
    cases::run();
}

#[cfg(all(target_os = "linux", feature = "crash-points"))]
mod cases {
    use leastconn::crash_points::{on_point, point as p};
    use leastconn::{Outcome, PassiveHealth, Pool, Static, SweepReport, Zone, ZoneCapacity};

    const CAPS: ZoneCapacity = ZoneCapacity { hosts: 8, address_bytes: 64, fail_ring: 4, processes: 6, threads: 16 };
    const ADDRESS: &str = "10.0.0.1:80";
    /// The parent's holds: the count must never go below them.
    const PARENT: u64 = 2;
    const DOUBT_LISTERS: u64 = 1 << 32;

    fn pool(zone: &Zone, limit: u32) -> Pool {
        Pool::builder(Static::new(vec![leastconn::Upstream::new(ADDRESS).max_requests(limit)]))
            .zone(zone, "app")
            // Failures are recorded (the failure-outcome release point) but never make the
            // host unhealthy here.
            .passive_health(PassiveHealth { max_fails: 4, fail_duration: std::time::Duration::from_secs(1) })
            .build()
            .unwrap()
    }

    /// What a child does before and at its crash point.
    #[derive(Clone, Copy, Debug)]
    enum Act {
        /// Holds 3 (limit 8), then picks once more.
        Pick,
        /// Limit 5: holds 2, then picks; at that pick's window opening a `Picker` takes the
        /// third, so the pick's add finds the host full (2 + 3) and fails.
        PickRefused,
        /// Holds 3, then releases one with this outcome.
        Release(Outcome),
        /// A process died holding 3 outside any window; this child sweeps it.
        Sweep,
        /// As `Sweep`, and the first sweeper died after its subtraction; this child takes over.
        Takeover,
    }

    /// One row of the table.
    struct Case {
        name: &'static str,
        point: u32,
        act: Act,
        /// The parent's sweep: (processes, recovered, in doubt).
        report: (u32, u64, u64),
        /// After the sweep: (in flight, doubt word).
        after: (u64, u64),
        /// Phantom units the reconcile removes.
        phantoms: u64,
    }

    const fn case(
        name: &'static str,
        point: u32,
        act: Act,
        report: (u32, u64, u64),
        after: (u64, u64),
        phantoms: u64,
    ) -> Case {
        Case { name, point, act, report, after, phantoms }
    }

    /// The table (design 4.5). Pick and release rows: the child's rows sum to `A`, its window
    /// (if open) names the slot, so the sweep subtracts `A - 1` and leaves 1 in doubt, or
    /// subtracts `A` outside a window. Sweep rows: the dead holder's 3 are subtracted once
    /// (by the killed sweeper or the parent); a takeover of an unfinished step adds its
    /// `n + u = 3` to the doubt again and subtracts nothing.
    const CASES: &[Case] = &[
        // Child: A = 3 at the 4th pick's start; in flight 2 + 3.
        case("pick: window open, no intent", p::PICK_OPENED, Act::Pick, (1, 2, 1), (3, 1), 1),
        case("pick: intent, no add", p::PICK_INTENT, Act::Pick, (1, 3, 1), (2, 1), 0),
        case("pick: reserved, window open", p::PICK_RESERVED, Act::Pick, (1, 3, 1), (3, 1), 1),
        case("pick: reserved, window closed", p::PICK_CLOSED, Act::Pick, (1, 4, 0), (2, 0), 0),
        // Child: 2 held + 1 by the picker = 3; the pick's add finds 5 (full).
        case("failed pick: add, not undone", p::PICK_REFUSED, Act::PickRefused, (1, 3, 1), (3, 1), 1),
        case("failed pick: undone, intent counted", p::PICK_UNDONE, Act::PickRefused, (1, 3, 1), (2, 1), 0),
        case("failed pick: intent taken back", p::PICK_UNINTENT, Act::PickRefused, (1, 2, 1), (3, 1), 1),
        case("failed pick: window closed", p::PICK_REFUSED_CLOSED, Act::PickRefused, (1, 3, 0), (2, 0), 0),
        // Child: holds 3, releases one.
        case("release: window open", p::RELEASE_OPENED, Act::Release(Outcome::Success), (1, 2, 1), (3, 1), 1),
        case(
            "release: failure recorded",
            p::RELEASE_FAILURE_RECORDED,
            Act::Release(Outcome::Failure),
            (1, 2, 1),
            (3, 1),
            1,
        ),
        case("release: add, A not taken back", p::RELEASE_ADDED, Act::Release(Outcome::Success), (1, 2, 1), (2, 1), 0),
        case(
            "release: A taken back, window open",
            p::RELEASE_SUBTRACTED,
            Act::Release(Outcome::Success),
            (1, 1, 1),
            (3, 1),
            1,
        ),
        case("release: window closed", p::RELEASE_CLOSED, Act::Release(Outcome::Success), (1, 2, 0), (2, 0), 0),
        // A holder (3, no window) died; a sweeper dies at the point; the parent takes over
        // (processes: the sweeper and the holder).
        case("sweep: marked", p::SWEEP_MARKED, Act::Sweep, (2, 0, 3), (5, 3), 3),
        case("sweep: doubt added", p::SWEEP_DOUBT_ADDED, Act::Sweep, (2, 0, 3), (5, 6), 3),
        case("sweep: subtracted", p::SWEEP_SUBTRACTED, Act::Sweep, (2, 0, 3), (2, 6), 0),
        case("sweep: doubt subtracted", p::SWEEP_DOUBT_SUBTRACTED, Act::Sweep, (2, 0, 3), (2, 3), 0),
        case("sweep: rows zeroed", p::SWEEP_ROWS_ZEROED, Act::Sweep, (2, 0, 0), (2, 0), 0),
        case("sweep: cursor", p::SWEEP_CURSOR, Act::Sweep, (2, 0, 0), (2, 0), 0),
        case("sweep: unmarked", p::SWEEP_UNMARKED, Act::Sweep, (2, 0, 0), (2, 0), 0),
        case("sweep: listing marked", p::SWEEP_LISTING_MARKED, Act::Sweep, (2, 0, 0), (2, 0), 0),
        case("sweep: bit cleared", p::SWEEP_BIT_CLEARED, Act::Sweep, (2, 0, 0), (2, DOUBT_LISTERS), 0),
        case("sweep: listers decremented", p::SWEEP_DETACHED, Act::Sweep, (2, 0, 0), (2, DOUBT_LISTERS), 0),
        case("sweep: claims abandoned", p::SWEEP_CLAIMS_ABANDONED, Act::Sweep, (2, 0, 0), (2, 0), 0),
        case("sweep: records zeroed", p::SWEEP_RECORDS_ZEROED, Act::Sweep, (2, 0, 0), (2, 0), 0),
        // The first sweeper died after subtracting (in flight 2, doubt 3, marker set, rows not
        // zeroed); a second dies at the point; the parent takes over from it.
        case("takeover: record taken", p::TAKEN_OVER, Act::Takeover, (3, 0, 3), (2, 6), 0),
        case("takeover: doubt added again", p::RESUME_DOUBT_ADDED, Act::Takeover, (2, 0, 3), (2, 9), 0),
        case("takeover: rows zeroed", p::RESUME_ZEROED, Act::Takeover, (2, 0, 0), (2, 6), 0),
        case("takeover: marker settled", p::RESUMED, Act::Takeover, (2, 0, 0), (2, 6), 0),
    ];

    /// Forks a child that arms `armed` (`LEASTCONN_CRASH_POINT`) and runs `f`; returns once
    /// it is dead. Fails unless it was killed by SIGKILL (it reached its point).
    fn child_killed_at(armed: &str, f: impl FnOnce(&Zone), zone: &Zone) {
        // SAFETY: this process is single-threaded (no pool here runs a thread); the child runs
        // `f` and leaves with `_exit`, never returning into the parent's code.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // SAFETY: the child is single-threaded: nothing reads the environment meanwhile.
            unsafe { std::env::set_var("LEASTCONN_CRASH_POINT", armed) };
            let code = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(zone))) {
                Ok(()) => 3,
                Err(_) => 101,
            };
            // SAFETY: ends the child (which did not reach its point) without destructors.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: `pid` is our child; `status` is writable.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(
            libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL,
            "the child armed with {armed} was not killed at its point: status {status:#x} (exit 3: it ran past it)"
        );
    }

    /// Holds `n` reservations of `pool`, never released (this process dies holding them).
    fn hold(pool: &Pool, n: usize) {
        for _ in 0..n {
            std::mem::forget(pool.select().expect("a free host"));
        }
    }

    fn counts(zone: &Zone) -> (u64, u64) {
        let c = zone.census();
        let in_flight = c.in_flight.iter().map(|&(_, n)| n).sum();
        let doubt = c.doubt.iter().map(|&(_, d)| d).sum();
        (in_flight, doubt)
    }

    /// A child that registers, holds 3 outside any window and dies (at its 3rd pick's end).
    fn holder(zone: &Zone) {
        child_killed_at(&format!("{}@3", p::PICK_CLOSED), |zone| hold(&pool(zone, 8), 4), zone);
    }

    fn run_case(c: &Case) {
        let zone = Zone::anonymous(&CAPS).unwrap();
        let parent = pool(&zone, 8);
        let held: Vec<_> = (0..PARENT).map(|_| parent.select().unwrap()).collect();
        let armed = c.point.to_string();
        match c.act {
            Act::Pick => child_killed_at(
                &format!("{}@4", c.point),
                |zone| {
                    let pool = pool(zone, 8);
                    hold(&pool, 3);
                    hold(&pool, 1);
                },
                &zone,
            ),
            Act::PickRefused => child_killed_at(
                &armed,
                |zone| {
                    let pool = pool(zone, 5);
                    hold(&pool, 2);
                    let mut picker = pool.picker();
                    on_point(p::PICK_OPENED, move || std::mem::forget(picker.select().expect("the 5th unit")));
                    assert!(pool.select().is_err(), "the host is full");
                },
                &zone,
            ),
            Act::Release(outcome) => child_killed_at(
                &armed,
                |zone| {
                    let pool = pool(zone, 8);
                    let mut held: Vec<_> = (0..3).map(|_| pool.select().unwrap()).collect();
                    held.pop().unwrap().release(outcome);
                    std::mem::forget(held);
                },
                &zone,
            ),
            Act::Sweep => {
                holder(&zone);
                child_killed_at(&armed, |zone| drop(zone.sweep()), &zone);
            }
            Act::Takeover => {
                holder(&zone);
                child_killed_at(&p::SWEEP_SUBTRACTED.to_string(), |zone| drop(zone.sweep()), &zone);
                child_killed_at(&armed, |zone| drop(zone.sweep()), &zone);
            }
        }
        let before = counts(&zone);
        assert!(before.0 >= PARENT, "{}: {before:?} before the sweep", c.name);
        let report = zone.crash_sweep().unwrap();
        let (processes, recovered, in_doubt) = c.report;
        assert_eq!(report, SweepReport { processes, recovered, in_doubt }, "{}: the sweep's report", c.name);
        assert_eq!(counts(&zone), c.after, "{}: (in flight, doubt) after the sweep", c.name);
        let (slots, phantoms, pending) = zone.crash_reconcile();
        assert_eq!((phantoms, pending), (c.phantoms, 0), "{}: the reconcile", c.name);
        assert_eq!(slots, u32::from(c.after.1 != 0), "{}: slots reconciled", c.name);
        let census = zone.census();
        assert_eq!(counts(&zone), (PARENT, 0), "{}: (in flight, doubt) after the reconcile", c.name);
        assert_eq!(census.live.iter().map(|&(_, listers)| listers).collect::<Vec<_>>(), [1], "{}: listers", c.name);
        assert_eq!(census.processes.len(), 1, "{}: process records left: {:?}", c.name, census.processes);
        assert_eq!(census.processes[0].1, std::process::id(), "{}: the parent's record", c.name);
        for r in held {
            r.release(Outcome::Success);
        }
        assert_eq!(counts(&zone), (0, 0), "{}: after the parent's releases", c.name);
    }

    pub(super) fn run() {
        println!("zone_crash_points: {} cases", CASES.len());
        for c in CASES {
            run_case(c);
            println!("  ok  {:>2} {}", c.point, c.name);
        }
        println!("zone_crash_points: {} cases passed", CASES.len());
    }
}
