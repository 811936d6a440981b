//! Loom models Z6 and Z8 of docs/design-zone.md (section 6.1): the crash sweep and the
//! reconcile, driving the production `src/zone/sweep.rs` on a zone whose words are loom
//! atomics.
//!
//! A "process" is a model thread with its own pid (`Zone::proc_register`); a dead process is
//! one whose pid the sweep's liveness lists as dead, its words written before the model's
//! threads start. Until pools write attribution (step S6), picks and releases are the design's
//! steps on the words (`Zone::sweep_sim_pick`/`sweep_sim_release`, in the design's order and
//! orderings).
#![cfg(loom)]

mod loom_support;

use leastconn::{SweepReport, Zone, ZoneCapacity};
use loom::sync::Arc;
use loom::thread;

/// No stop: a pick or release runs all its steps.
const ALL: usize = usize::MAX;

/// Z6. Process 3 died holding 2 reservations on the slot, where process 1 holds 1; processes
/// 1 and 2 sweep at once. Property: the dead record is swept exactly once (one report says 1
/// process and 2 units, the other nothing) and in-flight ends at exactly 1. Fails when the
/// claim is a check of the state word followed by a store instead of a CAS (both sweep, and
/// the second subtraction takes process 1's unit).
#[test]
fn two_sweepers_subtract_once() {
    const CAPS: ZoneCapacity = ZoneCapacity { hosts: 1, address_bytes: 6, fail_ring: 1, processes: 3, threads: 3 };
    loom_support::check("two_sweepers_subtract_once", || {
        let zone = Arc::new(Zone::model(&CAPS).unwrap());
        let sweepers: Vec<_> = (1..=2).map(|pid| (pid, zone.proc_register(pid).unwrap())).collect();
        let (_, dead_gen, dead_thread) = zone.proc_register(3).unwrap();
        assert_eq!(dead_gen, 1);
        let (mut seq, mut dead_seq) = (0, 0);
        assert_eq!(zone.sweep_sim_pick(sweepers[0].1.2, &mut seq, 0, 8, ALL), Some(true));
        for _ in 0..2 {
            assert_eq!(zone.sweep_sim_pick(dead_thread, &mut dead_seq, 0, 8, ALL), Some(true));
        }
        let threads: Vec<_> = sweepers
            .into_iter()
            .map(|(pid, (record, generation, _))| {
                let zone = Arc::clone(&zone);
                thread::spawn(move || zone.sweep_model(record, generation, pid, &[3]))
            })
            .collect();
        let mut reports: Vec<SweepReport> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        reports.sort_by_key(|r| r.processes);
        let swept = SweepReport { processes: 1, recovered: 2, in_doubt: 0 };
        assert_eq!(reports, [SweepReport::default(), swept]);
        assert_eq!((zone.sweep_in_flight(0), zone.sweep_doubt(0)), (1, 0));
    });
}

/// Z8. Process 2 died after its pick's add: one phantom unit in doubt, swept before the model
/// starts. Process 1 then picks (limit 1: refused while the phantom is counted) and releases twice while a reconcile runs.
/// Property: while process 1 holds a reservation, in-flight is at least 1; after the joins a
/// reconcile at rest leaves in-flight exactly 0 and no doubt. Fails when the reconcile skips
/// its second pass: it reads a pick's intent without its add, finds no phantom, and clears the
/// doubt, which leaves a phantom unit that nothing counts (in-flight 1 at rest). A `Relaxed`
/// reservation add in the simulated pick is not exhibited by loom here (the intent's Release
/// store comes first).
#[test]
fn reconcile_never_removes_a_live_unit() {
    const CAPS: ZoneCapacity = ZoneCapacity { hosts: 1, address_bytes: 6, fail_ring: 1, processes: 2, threads: 2 };
    loom_support::check("reconcile_never_removes_a_live_unit", || {
        let zone = Arc::new(Zone::model(&CAPS).unwrap());
        let (record, generation, thread_record) = zone.proc_register(1).unwrap();
        let (_, _, dead_thread) = zone.proc_register(2).unwrap();
        let mut dead_seq = 0;
        assert_eq!(zone.sweep_sim_pick(dead_thread, &mut dead_seq, 0, 8, 3), None, "killed after its add");
        let report = zone.sweep_model(record, generation, 1, &[2]);
        assert_eq!(report, SweepReport { processes: 1, recovered: 0, in_doubt: 1 });
        assert_eq!((zone.sweep_in_flight(0), zone.sweep_doubt(0)), (1, 1));
        let picker = {
            let zone = Arc::clone(&zone);
            thread::spawn(move || {
                let mut seq = 0;
                for _ in 0..2 {
                    if zone.sweep_sim_pick(thread_record, &mut seq, 0, 1, ALL) == Some(true) {
                        assert!(zone.sweep_in_flight(0) >= 1, "a held unit was removed");
                        zone.sweep_sim_release(thread_record, &mut seq, 0, ALL).unwrap();
                    }
                }
            })
        };
        let reconciler = {
            let zone = Arc::clone(&zone);
            thread::spawn(move || zone.sweep_reconcile())
        };
        picker.join().unwrap();
        let (slots, phantoms, _) = reconciler.join().unwrap();
        assert!(phantoms <= 1 && slots <= 1);
        zone.sweep_reconcile();
        assert_eq!((zone.sweep_in_flight(0), zone.sweep_doubt(0)), (0, 0));
    });
}
