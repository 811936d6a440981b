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

/// Z12. Registration when every process record is held (design 4.1, "sweep, then register"):
/// process 1 holds 1 unit and process 2 died holding 2, which fills both records. A registrant
/// (pid 3, no record) frees a dead record by sweeping it as the record itself
/// (`sweep::free_a_dead_record`) while process 1 sweeps. Properties: the dead record is swept
/// exactly once (in-flight ends at exactly 1, no doubt, the counts of both sweeps sum to one
/// process and 2 units); the registrant either registers (in the freed record, generation
/// bumped) or, when process 1's sweep held the record at its look, reports `ZoneFull`. Fails
/// when the registrant's claim is a check of the state word and a store instead of a CAS
/// (both sweep: in-flight 0 or the sweep counts twice).
#[test]
fn a_registrant_and_a_sweeper_free_a_dead_record_once() {
    const CAPS: ZoneCapacity = ZoneCapacity { hosts: 1, address_bytes: 6, fail_ring: 1, processes: 2, threads: 3 };
    loom_support::check("a_registrant_and_a_sweeper_free_a_dead_record_once", || {
        let zone = Arc::new(Zone::model(&CAPS).unwrap());
        let (record, generation, thread_record) = zone.proc_register(1).unwrap();
        let (dead_record, dead_gen, dead_thread) = zone.proc_register(2).unwrap();
        let (mut seq, mut dead_seq) = (0, 0);
        assert_eq!(zone.sweep_sim_pick(thread_record, &mut seq, 0, 8, ALL), Some(true));
        for _ in 0..2 {
            assert_eq!(zone.sweep_sim_pick(dead_thread, &mut dead_seq, 0, 8, ALL), Some(true));
        }
        assert!(zone.proc_register(3).is_err(), "both records held");
        let sweeper = {
            let zone = Arc::clone(&zone);
            thread::spawn(move || zone.sweep_model(record, generation, 1, &[2]))
        };
        let registrant = {
            let zone = Arc::clone(&zone);
            thread::spawn(move || zone.proc_register_sweeping_first(3, &[2]))
        };
        let report = sweeper.join().unwrap();
        let registered = registrant.join().unwrap();
        assert_eq!((zone.sweep_in_flight(0), zone.sweep_doubt(0)), (1, 0), "swept exactly once");
        match registered {
            Ok((r, g, _)) => {
                assert_eq!((r, g), (dead_record, dead_gen + 2), "registered in the freed record");
                assert!(
                    report == SweepReport::default()
                        || report == SweepReport { processes: 1, recovered: 2, in_doubt: 0 }
                );
            }
            Err(e) => {
                assert_eq!(e.kind(), leastconn::ErrorKind::ZoneFull);
                assert_eq!(report, SweepReport { processes: 1, recovered: 2, in_doubt: 0 }, "process 1 swept it");
            }
        }
    });
}

/// Z13. Deregistration at a process's normal end (`procs::deregister_balanced`, design 4.1)
/// racing a reconcile: process 1 ends with two thread records whose rows hold -1 and +1 on
/// the slot (picked through the second, released through the first; sum 0), process 2 holds
/// 1, and process 3 died after its pick's add (one phantom in doubt, swept before the model
/// starts). Process 1 zeroes its rows and frees its records while a reconcile runs.
/// Properties: both records and the process record end FREE; after the joins a reconcile at
/// rest leaves in-flight exactly process 2's 1 and no doubt. Fails when the rows are zeroed
/// without first opening a window on each record: a reconcile that reads the -1 already
/// zeroed and the +1 not yet counts one unit too many as held, removes no phantom and clears
/// the doubt (in-flight 2, doubt 0 at rest: the phantom is never removed).
#[test]
fn deregistration_never_lets_a_reconcile_misread_the_rows() {
    const CAPS: ZoneCapacity = ZoneCapacity { hosts: 1, address_bytes: 6, fail_ring: 1, processes: 3, threads: 4 };
    loom_support::check("deregistration_never_lets_a_reconcile_misread_the_rows", || {
        let zone = Arc::new(Zone::model(&CAPS).unwrap());
        let (ending, ending_gen, first) = zone.proc_register(1).unwrap();
        let (holder, holder_gen, holder_thread) = zone.proc_register(2).unwrap();
        let (_, _, dead_thread) = zone.proc_register(3).unwrap();
        let second = zone.proc_claim_thread_record(ending, ending_gen, 1).unwrap();
        assert!(first < second, "the -1 row is zeroed first");
        let (mut s1, mut s2, mut hs, mut ds) = (0, 0, 0, 0);
        assert_eq!(zone.sweep_sim_pick(second, &mut s2, 0, 8, ALL), Some(true));
        zone.sweep_sim_release(first, &mut s1, 0, ALL).unwrap();
        assert_eq!(zone.sweep_sim_pick(holder_thread, &mut hs, 0, 8, ALL), Some(true));
        assert_eq!(zone.sweep_sim_pick(dead_thread, &mut ds, 0, 8, 3), None, "killed after its add");
        let report = zone.sweep_model(holder, holder_gen, 2, &[3]);
        assert_eq!(report, SweepReport { processes: 1, recovered: 0, in_doubt: 1 });
        assert_eq!((zone.sweep_in_flight(0), zone.sweep_doubt(0)), (2, 1));
        let ender = {
            let zone = Arc::clone(&zone);
            thread::spawn(move || zone.proc_deregister_balanced(ending, ending_gen, 1))
        };
        let reconciler = {
            let zone = Arc::clone(&zone);
            thread::spawn(move || zone.sweep_reconcile())
        };
        ender.join().unwrap().unwrap();
        let (_, phantoms, _) = reconciler.join().unwrap();
        assert!(phantoms <= 1);
        assert_eq!(zone.proc_thread_owner(first), 0, "freed");
        assert_eq!(zone.proc_thread_owner(second), 0, "freed");
        zone.sweep_reconcile();
        assert_eq!((zone.sweep_in_flight(0), zone.sweep_doubt(0)), (1, 0));
    });
}
