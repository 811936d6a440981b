//! Loom model: the C ABI's release-once claim, where two threads may release one reservation.
//!
//! Rust's ownership makes a double release impossible for `Reservation`. A C caller holds a
//! reservation as a pointer-sized field instead (`lc_pick.reservation`, filled by a select),
//! and `lc_pick_release` claims it by swapping the field to NULL with `AcqRel`: only the
//! thread that swapped out the non-NULL value releases (`src/ffi/pick.rs`). The C ABI is left
//! out of loom builds, so this model runs the same protocol on an `AtomicUsize` holding a
//! boxed real `Reservation`.
#![cfg(loom)]

mod loom_support;

use std::sync::atomic::{AtomicUsize as StdAtomicUsize, Ordering as StdOrdering};

use leastconn::{Outcome, PassiveHealth, Pool, Reservation, Static};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

/// The field a C caller keeps: 0, or a reservation turned into a raw pointer.
struct Slot(AtomicUsize);

impl Slot {
    fn publish(&self, r: Reservation) {
        // Release: a claimer that swaps this value out sees the reservation fully written.
        self.0.store(Box::into_raw(Box::new(r)) as usize, Ordering::Release);
    }

    /// Takes the reservation out of the field if this call is the one that gets it.
    fn claim(&self) -> Option<Box<Reservation>> {
        // AcqRel, as in `lc_pick_release`: the swaps are totally ordered, so exactly one
        // claimer reads the non-zero value; Acquire orders it after the publication.
        let raw = self.0.swap(0, Ordering::AcqRel);
        // SAFETY: a non-zero `raw` came from `Box::into_raw` in `publish`, and the swap handed
        // it to us alone.
        (raw != 0).then(|| unsafe { Box::from_raw(raw as *mut Reservation) })
    }
}

/// A reservation is published in the field, then two threads release it at once while a third
/// picks and releases on the same host. Property: exactly one of the two releases takes
/// effect (one claimer wins, the other sees 0), the host's in-flight count ends at 0 with both
/// picks recorded, and the host is freed (loom's leak check) when the pool goes.
///
/// The publication happens before the claimers start, as in C, where a caller cannot hand
/// out a reservation it has not received. (Racing a plain store with the swaps would also
/// trip loom 0.7's open bug tokio-rs/loom#254, where an RMW may read a value that a store
/// which happens-before it has already overwritten.)
#[test]
fn two_threads_releasing_one_reservation_release_it_once() {
    loom_support::check("two_threads_releasing_one_reservation_release_it_once", || {
        let p =
            Pool::builder(Static::from_addresses(["10.0.0.1:80"])).passive_health(PassiveHealth::OFF).build().unwrap();
        let slot = Arc::new(Slot(AtomicUsize::new(0)));
        slot.publish(p.select().unwrap());
        // Plain std counter: loom runs one thread at a time.
        let wins = std::sync::Arc::new(StdAtomicUsize::new(0));
        let picker = {
            let p = p.clone();
            thread::spawn(move || drop(p.select().unwrap()))
        };
        let claimers: Vec<_> = (0..2)
            .map(|_| {
                let (slot, wins) = (Arc::clone(&slot), wins.clone());
                thread::spawn(move || {
                    if let Some(r) = slot.claim() {
                        if wins.fetch_add(1, StdOrdering::SeqCst) != 0 {
                            // The other winner owns the same box: fail the model, not the heap.
                            std::mem::forget(r);
                            panic!("two claimers took the same reservation");
                        }
                        r.release(Outcome::Success);
                    }
                })
            })
            .collect();
        picker.join().unwrap();
        claimers.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(wins.load(StdOrdering::SeqCst), 1, "no claimer took the reservation");
        assert!(slot.claim().is_none(), "the field still holds the reservation");
        let s = &p.stats()[0];
        assert_eq!((s.in_flight, s.picks), (0, 2));
    });
}
