//! Loom models Z5 and Z7 of docs/design-zone.md (section 6.1): processes killed at the crash
//! points (design 4.5) of the production pick, release and sweep, on a zone of loom atomics.
//!
//! A "process" is a model thread with its own pid and thread record (`Zone::proc_register`:
//! its spare record); a process is dead once its thread stopped and the sweep's liveness lists
//! its pid. Under loom a crash point armed on a model thread (`crash_points::arm`) unwinds
//! with a `Crash` panic, caught at the thread's top, as the thread of a process killed there
//! stops: its words are left as they were (nothing is dropped inside the zone). Picks and
//! releases are the production `HostState::try_reserve_in` / `Host::release_in` steps
//! (`Zone::model_host`), the sweep and the reconcile the production `src/zone/sweep.rs`. One
//! crash point per `loom::model` call (a loop in each test).
#![cfg(loom)]

mod loom_support;

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};

use leastconn::crash_points::{Crash, arm, point as p};
use leastconn::{Zone, ZoneCapacity};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicU64, Ordering};
use loom::thread;

const CAPS: ZoneCapacity = ZoneCapacity { hosts: 1, address_bytes: 6, fail_ring: 1, processes: 3, threads: 3 };
const UNITS: u64 = (1 << 32) - 1;

/// Silences the default panic message of a crash point's unwind (other panics still print).
fn quiet_crashes() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<Crash>().is_none() {
                default(info);
            }
        }));
    });
}

/// Runs `f` with crash point `k` armed on this thread: `true` if it stopped there.
fn killed_at(k: u32, f: impl FnOnce()) -> bool {
    arm(k);
    let out = catch_unwind(AssertUnwindSafe(f));
    arm(0);
    match out {
        Ok(()) => false,
        Err(e) if e.downcast_ref::<Crash>() == Some(&Crash(k)) => true,
        Err(e) => std::panic::resume_unwind(e),
    }
}

/// What P does before dying at its point: its limit and whether it holds one unit first.
fn plan(k: u32) -> (bool, Op) {
    match k {
        p::PICK_OPENED | p::PICK_INTENT | p::PICK_RESERVED | p::PICK_CLOSED => (false, Op::Pick),
        // P holds the one unit of limit 1 already, so its second pick is refused.
        p::PICK_REFUSED | p::PICK_UNDONE | p::PICK_UNINTENT | p::PICK_REFUSED_CLOSED => (true, Op::Pick),
        _ => (true, Op::Release),
    }
}

#[derive(Clone, Copy)]
enum Op {
    Pick,
    Release,
}

/// Points after which P is outside any window (its sweep is exact: no doubt).
fn outside_window(k: u32) -> bool {
    matches!(k, p::PICK_CLOSED | p::PICK_REFUSED_CLOSED | p::RELEASE_CLOSED)
}

/// Z5. Process P (pid 1) picks or releases on the slot and is killed at crash point k; live
/// process Q (pid 2) picks once with limit 1 and keeps what it got; once P has stopped,
/// sweeper R (pid 3) sweeps P while Q runs. Properties: while Q holds its reservation, no live
/// process holds one (the model's holder count, raised after a reservation, lowered before a
/// release and by P's holds when P stops: limit 1 never exceeded among live requests); after the joins, Q's holds <= in-flight <= Q's holds +
/// doubt, the doubt is at most 1 unit and 0 when P died outside a window; a reconcile at rest
/// then leaves in-flight exactly Q's holds and no doubt. Fails when the intent is written
/// after the reservation add (P killed between them leaves a unit counted that no row or
/// doubt accounts for: in-flight above Q's holds with no doubt).
#[test]
fn sweep_of_a_dead_process_is_exact_or_in_doubt() {
    quiet_crashes();
    let points = [
        p::PICK_OPENED,
        p::PICK_INTENT,
        p::PICK_RESERVED,
        p::PICK_CLOSED,
        p::PICK_REFUSED,
        p::PICK_UNDONE,
        p::PICK_UNINTENT,
        p::PICK_REFUSED_CLOSED,
        p::RELEASE_OPENED,
        p::RELEASE_ADDED,
        p::RELEASE_SUBTRACTED,
        p::RELEASE_CLOSED,
    ];
    for k in points {
        loom_support::check(&format!("sweep_of_a_dead_process_is_exact_or_in_doubt (point {k})"), move || {
            let zone = Arc::new(Zone::model(&CAPS).unwrap());
            let (_, _, p_record) = zone.proc_register(1).unwrap();
            let (_, _, q_record) = zone.proc_register(2).unwrap();
            let (r_index, r_gen, _) = zone.proc_register(3).unwrap();
            let host = Arc::new(zone.model_host(0));
            let holders = Arc::new(AtomicU64::new(0));
            let (pre_hold, op) = plan(k);
            let p_seq = Cell::new(0);
            if pre_hold {
                assert!(host.pick(p_record, &p_seq, 1));
                holders.fetch_add(1, Ordering::SeqCst);
            }
            let p_thread = {
                let (host, holders) = (Arc::clone(&host), Arc::clone(&holders));
                thread::spawn(move || {
                    let seq = Cell::new(p_seq.get());
                    let held = Cell::new(u64::from(pre_hold));
                    killed_at(k, || match op {
                        Op::Pick => {
                            if host.pick(p_record, &seq, 1) {
                                holders.fetch_add(1, Ordering::SeqCst);
                                held.set(held.get() + 1);
                            }
                        }
                        Op::Release => {
                            holders.fetch_sub(1, Ordering::SeqCst);
                            held.set(held.get() - 1);
                            assert!(host.release(p_record, &seq));
                        }
                    });
                    // P is dead from here on (killed, or ended): its requests are over, what
                    // the count still holds of them is the sweep's to return.
                    holders.fetch_sub(held.get(), Ordering::SeqCst);
                })
            };
            let q_thread = {
                let (host, holders) = (Arc::clone(&host), Arc::clone(&holders));
                thread::spawn(move || {
                    let seq = Cell::new(0);
                    if host.pick(q_record, &seq, 1) {
                        let now = holders.fetch_add(1, Ordering::SeqCst) + 1;
                        assert!(now <= 1, "{now} reservations held under limit 1");
                        1
                    } else {
                        0
                    }
                })
            };
            p_thread.join().unwrap();
            let sweeper = {
                let zone = Arc::clone(&zone);
                thread::spawn(move || zone.sweep_model(r_index, r_gen, 3, &[1]))
            };
            let report = sweeper.join().unwrap();
            let q_holds = q_thread.join().unwrap();
            assert_eq!(report.processes, 1, "P is swept once");
            let (in_flight, doubt) = (zone.sweep_in_flight(0), zone.sweep_doubt(0));
            let units = doubt & UNITS;
            assert!(units <= 1, "doubt {units} > 1 (point {k})");
            assert!(!outside_window(k) || units == 0, "doubt {units} outside a window (point {k})");
            assert!(
                q_holds <= in_flight && in_flight <= q_holds + units,
                "in flight {in_flight}, Q holds {q_holds}, doubt {units} (point {k})"
            );
            zone.sweep_reconcile();
            assert_eq!((zone.sweep_in_flight(0), zone.sweep_doubt(0)), (q_holds, 0), "after the reconcile (point {k})");
        });
    }
}

/// Z7. Process D (pid 3) died holding 2 units outside any window; process Q (pid 1) holds 1
/// and picks and releases once more (limit 2) while sweeper S1 (pid 2) sweeps D and is killed
/// at sweep point k; once S1 has stopped, Q sweeps S1 and D (taking over). Properties: while Q
/// holds a reservation the count is at least its holds (never an under-count); after the
/// joins, Q's 1 <= in-flight <= 1 + 2 (the units over are at most D's n = 2), the doubt is at
/// most 2n (the dead sweeper's add and the taker's), S1's and D's records are freed; a
/// reconcile at rest leaves exactly 1 and no doubt. Fails when a taker subtracts a marked
/// step's n again instead of keeping it in doubt (in-flight below Q's holds).
#[test]
fn sweeper_killed_mid_sweep_is_taken_over() {
    quiet_crashes();
    let points = [
        p::SWEEP_MARKED,
        p::SWEEP_DOUBT_ADDED,
        p::SWEEP_SUBTRACTED,
        p::SWEEP_DOUBT_SUBTRACTED,
        p::SWEEP_ROWS_ZEROED,
        p::SWEEP_CURSOR,
        p::SWEEP_UNMARKED,
        p::SWEEP_CLAIMS_ABANDONED,
        p::SWEEP_RECORDS_ZEROED,
    ];
    for k in points {
        loom_support::check(&format!("sweeper_killed_mid_sweep_is_taken_over (point {k})"), move || {
            let zone = Arc::new(Zone::model(&CAPS).unwrap());
            let (q_index, q_gen, q_record) = zone.proc_register(1).unwrap();
            let (s_index, s_gen, _) = zone.proc_register(2).unwrap();
            let (_, _, d_record) = zone.proc_register(3).unwrap();
            let host = Arc::new(zone.model_host(0));
            let d_seq = Cell::new(0);
            for _ in 0..2 {
                assert!(host.pick(d_record, &d_seq, 8));
            }
            let q_seq = Cell::new(0);
            assert!(host.pick(q_record, &q_seq, 8));
            let s1 = {
                let zone = Arc::clone(&zone);
                thread::spawn(move || {
                    assert!(
                        killed_at(k, || {
                            let _ = zone.sweep_model(s_index, s_gen, 2, &[3]);
                        }),
                        "stopped at {k}"
                    );
                })
            };
            let q = {
                let (zone, host) = (Arc::clone(&zone), Arc::clone(&host));
                thread::spawn(move || {
                    let seq = Cell::new(q_seq.get());
                    if host.pick(q_record, &seq, 4) {
                        assert!(zone.sweep_in_flight(0) >= 2, "a unit Q holds was subtracted");
                        assert!(host.release(q_record, &seq));
                    }
                    assert!(zone.sweep_in_flight(0) >= 1, "the unit Q holds was subtracted");
                })
            };
            s1.join().unwrap();
            let report = zone.sweep_model(q_index, q_gen, 1, &[2, 3]);
            q.join().unwrap();
            assert_eq!(report.processes, 2, "S1 and D swept (point {k})");
            let (in_flight, units) = (zone.sweep_in_flight(0), zone.sweep_doubt(0) & UNITS);
            assert!((1..=3).contains(&in_flight), "in flight {in_flight} (point {k})");
            assert!(in_flight - 1 <= units && units <= 4, "in flight {in_flight}, doubt {units} (point {k})");
            zone.sweep_reconcile();
            assert_eq!((zone.sweep_in_flight(0), zone.sweep_doubt(0)), (1, 0), "after the reconcile (point {k})");
        });
    }
}
