//! Loom model Z11 of docs/design-zone.md (section 6.1): process registration and thread
//! records, driving the production `src/zone/procs.rs` on a zone whose words are loom atomics.
//!
//! A "process" is a model thread with its own pid: records know processes only by pid,
//! starttime and record index, and what one process writes to the zone is what another sees
//! of it.
#![cfg(loom)]

mod loom_support;

use leastconn::{ErrorKind, Zone, ZoneCapacity};
use loom::sync::Arc;
use loom::thread;

/// Two process records for three registrants, four thread records: each of the two that
/// register takes its spare and one more, which uses every thread record.
const CAPS: ZoneCapacity = ZoneCapacity { hosts: 1, address_bytes: 6, fail_ring: 1, processes: 2, threads: 4 };

/// Z11. Three processes register at once on two process records and then claim a second
/// thread record each. Property: exactly two register, in distinct records whose state words
/// are exactly LIVE{pid, generation 1}; the third gets ZoneFull and holds nothing; each thread
/// record is claimed by exactly one process and its owner word names exactly that
/// registration. Fails when the thread-record claim is a check followed by a store instead of
/// a CAS (two owners of one record), and when registration stores LIVE instead of CASing it.
#[test]
fn registration_and_thread_records_are_claimed_once() {
    loom_support::check("registration_and_thread_records_are_claimed_once", || {
        let zone = Arc::new(Zone::model(&CAPS).unwrap());
        let processes: Vec<_> = (1..=3u32)
            .map(|pid| {
                let zone = Arc::clone(&zone);
                thread::spawn(move || {
                    let (record, generation, spare) = zone.proc_register(pid)?;
                    let second = zone.proc_claim_thread_record(record, generation, pid)?;
                    Ok::<_, leastconn::Error>((pid, record, generation, [spare, second]))
                })
            })
            .collect();
        let results: Vec<_> = processes.into_iter().map(|p| p.join().unwrap()).collect();
        let registered: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        let refused: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        assert_eq!((registered.len(), refused.len()), (2, 1), "{results:?}");
        assert_eq!(refused[0].kind(), ErrorKind::ZoneFull);
        let mut records: Vec<u32> = registered.iter().map(|r| r.1).collect();
        records.sort();
        assert_eq!(records, [0, 1]);
        let mut owners = [None; 4];
        for &&(pid, record, generation, threads) in &registered {
            assert_eq!(generation, 1);
            assert_eq!(zone.proc_state_word(record), Zone::proc_live_word(pid, generation));
            for t in threads {
                let previous = owners[t as usize].replace(Zone::proc_owner_word(record, generation));
                assert_eq!(previous, None, "thread record {t} claimed twice");
            }
        }
        for (t, owner) in owners.into_iter().enumerate() {
            assert_eq!(Some(zone.proc_thread_owner(t as u32)), owner, "thread record {t}");
        }
    });
}

/// Z11b. One process's two threads claim and free thread records while a second process
/// registers: a freed record is claimed again by exactly one, and no owner word is ever
/// another registration's. Property: the three records in use at the end are distinct and
/// their owner words exact; the fourth is free.
#[test]
fn freed_thread_records_are_claimed_again_once() {
    loom_support::check("freed_thread_records_are_claimed_again_once", || {
        let zone = Arc::new(Zone::model(&CAPS).unwrap());
        let (record, generation, spare) = zone.proc_register(1).unwrap();
        let first = zone.proc_claim_thread_record(record, generation, 1).unwrap();
        let freer = {
            let zone = Arc::clone(&zone);
            thread::spawn(move || assert_eq!(zone.proc_release_thread_record(record, generation, 1, first), Ok(true)))
        };
        let claimer = {
            let zone = Arc::clone(&zone);
            thread::spawn(move || zone.proc_claim_thread_record(record, generation, 1).unwrap())
        };
        let other = {
            let zone = Arc::clone(&zone);
            thread::spawn(move || zone.proc_register(2).unwrap())
        };
        freer.join().unwrap();
        let claimed = claimer.join().unwrap();
        let (other_record, other_generation, other_spare) = other.join().unwrap();
        assert_ne!(other_record, record);
        let mut used = vec![
            (spare, Zone::proc_owner_word(record, generation)),
            (claimed, Zone::proc_owner_word(record, generation)),
            (other_spare, Zone::proc_owner_word(other_record, other_generation)),
        ];
        used.sort();
        used.dedup_by_key(|u| u.0);
        assert_eq!(used.len(), 3, "a thread record was handed out twice: {used:?}");
        for t in 0..CAPS.threads {
            let expected = used.iter().find(|u| u.0 == t).map_or(0, |u| u.1);
            assert_eq!(zone.proc_thread_owner(t), expected, "thread record {t}");
        }
    });
}
