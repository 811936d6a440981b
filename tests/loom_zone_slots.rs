//! Loom models of the zone's host slots (docs/design-zone.md, section 6.1, Z1 to Z3), driving
//! the production `src/zone/slots.rs` on a zone whose words are loom atomics.
//!
//! A "process" is a thread that attaches with its own process index: slots know processes
//! only by that index, and a process's memory writes are what another process sees of it.
//! Zones here have 3 slots and keys of one key word (plus the hash word), so every chain is
//! the whole table and a model explores all of it.
#![cfg(loom)]

mod loom_support;

use leastconn::{Zone, ZoneCapacity};
use loom::sync::Arc;
use loom::thread;

const CAPS: ZoneCapacity = ZoneCapacity { hosts: 3, address_bytes: 6, fail_ring: 1, processes: 3, threads: 1 };
const NS: &str = "p";
const K: &str = "k";

fn model_zone() -> Arc<Zone> {
    Arc::new(Zone::model(&CAPS).unwrap())
}

/// An address other than `K` whose key starts its chain where `K`'s does.
fn same_home_as_k(zone: &Zone, prefix: &str) -> String {
    let home = zone.slot_home(NS, K).unwrap();
    (0..).map(|i| format!("{prefix}{i}")).find(|a| zone.slot_home(NS, a).unwrap() == home).unwrap()
}

/// The slots that are LIVE with `address`'s key.
fn live_slots_of(zone: &Zone, address: &str) -> Vec<u32> {
    (0..CAPS.hosts).filter(|&s| zone.slot_holds(s, NS, address)).collect()
}

fn no_claim_left(zone: &Zone) -> bool {
    (0..CAPS.hosts).all(|s| zone.slot_view(s).kind != "CLAIMING")
}

/// Z1. Two processes attach one new key while a third reclaims an idle slot at the head of
/// the key's chain, so that one attacher may find that slot LIVE (another key) and claim the
/// next, and the other find it TOMB and claim it: two claims of one key at two positions.
/// Property: both attachers get the same slot, the only LIVE slot with the key, with 2
/// listers, and no claim is left. Fails (two LIVE slots) with validation removed, with the
/// claim CAS weakened from SeqCst to AcqRel, with the validation loads weakened from SeqCst to
/// Acquire, and also with the reclaim's TOMB store weakened to Release: C11 would accept that
/// one (the claim reads from it), loom does not (see the orderings in src/zone/slots.rs).
#[test]
fn two_processes_inserting_one_address_get_one_slot() {
    loom_support::check("two_processes_inserting_one_address_get_one_slot", || {
        let zone = model_zone();
        let other = same_home_as_k(&zone, "o");
        let (idle, generation) = zone.slot_attach(NS, &other, 2).unwrap();
        assert_eq!(zone.slot_detach(idle, generation).unwrap(), 0);
        let reclaimer = {
            let zone = Arc::clone(&zone);
            thread::spawn(move || assert!(zone.slot_try_reclaim(idle)))
        };
        let attachers: Vec<_> = (0..2)
            .map(|process| {
                let zone = Arc::clone(&zone);
                thread::spawn(move || zone.slot_attach(NS, K, process).unwrap())
            })
            .collect();
        let got: Vec<(u32, u32)> = attachers.into_iter().map(|t| t.join().unwrap()).collect();
        reclaimer.join().unwrap();
        assert_eq!(got[0], got[1], "both processes attached to one slot");
        assert_eq!(live_slots_of(&zone, K), [got[0].0]);
        let view = zone.slot_view(got[0].0);
        assert_eq!((view.kind, view.who, view.generation), ("LIVE", 2, got[0].1));
        assert!(no_claim_left(&zone));
    });
}

/// Z2. The last lister of a key detaches and reclaims its slot while another process attaches
/// the key and a third attaches another key of the same chain (which may reuse the reclaimed
/// slot). Property: right after its attach, the attacher's slot is LIVE in the generation it
/// attached, holds its key and lists it; at the end each key has exactly one slot with one
/// lister, and an attach that follows the reclaim is in a new generation or another slot.
/// Fails when `add_lister` ignores a reclaim (a plain store instead of its CAS: the attacher
/// finds its slot TOMB).
#[test]
fn attach_racing_reclaim_never_lands_on_a_reused_slot() {
    loom_support::check("attach_racing_reclaim_never_lands_on_a_reused_slot", || {
        let zone = model_zone();
        let other = same_home_as_k(&zone, "o");
        let (held, generation) = zone.slot_attach(NS, K, 1).unwrap();
        let reclaimer = {
            let zone = Arc::clone(&zone);
            thread::spawn(move || {
                // 1 left if the other attach of the key came first: then no reclaim.
                zone.slot_detach(held, generation).unwrap();
                zone.slot_try_reclaim(held)
            })
        };
        let attach = |address: String, process| {
            let zone = Arc::clone(&zone);
            thread::spawn(move || {
                let (s, g) = zone.slot_attach(NS, &address, process).unwrap();
                let view = zone.slot_view(s);
                assert_eq!((view.kind, view.generation), ("LIVE", g), "attached slot {s}: {view:?}");
                assert!(view.who >= 1, "LIVE with no lister while attached: {view:?}");
                assert!(zone.slot_holds(s, NS, &address), "slot {s} does not hold {address}");
                (s, g)
            })
        };
        let again = attach(K.to_string(), 0);
        let newcomer = attach(other.clone(), 2);
        let (s, g) = again.join().unwrap();
        let (o, _) = newcomer.join().unwrap();
        let reclaimed = reclaimer.join().unwrap();
        assert_ne!(s, o);
        assert_eq!(live_slots_of(&zone, K), [s]);
        assert_eq!(live_slots_of(&zone, &other), [o]);
        assert_eq!(zone.slot_view(s).who, 1);
        assert_eq!(zone.slot_view(o).who, 1);
        if reclaimed {
            assert_ne!((s, g), (held, generation), "attached to the reclaimed generation");
        } else {
            assert_eq!((s, g), (held, generation));
        }
        assert!(no_claim_left(&zone));
    });
}

/// Z3. A process claimed a slot for a key and died after writing `words` of its key words
/// (0: none; 1: the hash word; 2: all). A live process attaches the key while the dead one's
/// sweep tombstones its claims. Property: the attacher ends on the only LIVE slot with the
/// key (never a slot with a half-written key), with one lister; the dead claim was either
/// completed and published by the attacher (then the sweep found nothing) or tombstoned.
/// Fails when `fill` counts a key word of another generation (or never written) as its own
/// instead of writing it: a half-written key is published and found by nobody.
#[test]
fn dead_claimer_is_completed_or_tombstoned() {
    for words in 0..=2 {
        loom_support::check(&format!("dead_claimer_is_completed_or_tombstoned (words {words})"), move || {
            let zone = model_zone();
            let claimed = zone.slot_claim_and_stop(NS, K, 2, words).unwrap();
            let sweeper = {
                let zone = Arc::clone(&zone);
                thread::spawn(move || zone.slot_abandon_claims_of(2))
            };
            let helper = {
                let zone = Arc::clone(&zone);
                thread::spawn(move || zone.slot_attach(NS, K, 0).unwrap())
            };
            let (s, g) = helper.join().unwrap();
            let abandoned = sweeper.join().unwrap();
            assert_eq!(live_slots_of(&zone, K), [s]);
            let view = zone.slot_view(s);
            assert_eq!((view.kind, view.who, view.generation), ("LIVE", 1, g));
            if abandoned == 0 {
                assert_eq!((s, g), (claimed, 0), "the helper published the dead claim");
            } else {
                assert_eq!(abandoned, 1);
                assert_ne!((s, g), (claimed, 0), "a tombstoned claim was published");
            }
            assert!(no_claim_left(&zone));
        });
    }
}
