//! Loom model: the C ABI's release-once claim, where two threads may release one pick.
//!
//! Rust's ownership makes a double release impossible for `Reservation`. A C caller holds a
//! reservation in two private words of an `lc_pick` instead (the reservation pointer and a
//! check word binding it to the struct's address), and `lc_pick_release` verifies the check
//! word and claims the pointer with one atomic swap to NULL. Both steps are the production
//! functions of `src/claim.rs` ([`seal`] fills the words, [`claim`] takes them), driven here
//! on a stand-in for the struct: the C ABI is left out of loom builds, and `lc_pick_release`
//! views the real field as a std `AtomicPtr` where this model gives loom's.
#![cfg(loom)]

mod loom_support;

use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize as StdAtomicUsize, Ordering as StdOrdering};

use leastconn::{Claim, Outcome, PassiveHealth, Pool, Static, claim, release_claimed, seal};
use loom::sync::Arc;
use loom::sync::atomic::AtomicPtr;
use loom::thread;

/// The private words of an `lc_pick`.
struct PickWords {
    reservation: AtomicPtr<c_void>,
    check: u64,
}

/// A pick filled by a select at its final address (the `Arc`'s allocation). The words are
/// initialised, not stored, before any releaser starts, as in C, where a caller cannot hand
/// out a pick it has not received. (Racing a plain store with the swaps would also trip loom
/// 0.7's open bug tokio-rs/loom#254, where an RMW may read a value that a store which
/// happens-before it has already overwritten.)
fn selected(pool: &Pool) -> Arc<PickWords> {
    let reservation = pool.select().unwrap();
    let mut words = Arc::new(PickWords { reservation: AtomicPtr::new(std::ptr::null_mut()), check: 0 });
    let at = Arc::as_ptr(&words) as usize;
    let (raw, check) = seal(reservation, at);
    *Arc::get_mut(&mut words).unwrap() = PickWords { reservation: AtomicPtr::new(raw), check };
    words
}

/// `lc_pick_release` on the pick at `at` whose words are `words`.
fn release(words: &PickWords, at: usize) -> Result<bool, Claim> {
    // SAFETY: `words` were filled by `seal` for the pick at `at`; only claims write them now.
    let reservation = unsafe { claim(&words.reservation, words.check, at) }?;
    Ok(release_claimed(reservation, Outcome::Success))
}

/// A pick is released by two threads at once while a third picks and releases on the same
/// host. Property: exactly one release takes effect (the other gets `Empty`), the host's
/// in-flight count ends at 0 with both picks recorded, and the host is freed (loom's leak
/// check) when the pool goes. Replacing the swap in `claim` by a load and a store makes both
/// releases win, and this model fails.
#[test]
fn two_threads_releasing_one_pick_release_it_once() {
    loom_support::check("two_threads_releasing_one_pick_release_it_once", || {
        let p =
            Pool::builder(Static::from_addresses(["10.0.0.1:80"])).passive_health(PassiveHealth::OFF).build().unwrap();
        let pick = selected(&p);
        let at = Arc::as_ptr(&pick) as usize;
        // Plain std counter: loom runs one thread at a time.
        let wins = std::sync::Arc::new(StdAtomicUsize::new(0));
        let picker = {
            let p = p.clone();
            thread::spawn(move || drop(p.select().unwrap()))
        };
        let releasers: Vec<_> = (0..2)
            .map(|_| {
                let (pick, wins) = (Arc::clone(&pick), wins.clone());
                thread::spawn(move || match release(&pick, at) {
                    Ok(released) => {
                        assert!(released, "the claimed reservation found nothing in flight");
                        assert_eq!(wins.fetch_add(1, StdOrdering::SeqCst), 0, "two releases claimed one pick");
                    }
                    Err(e) => assert_eq!(e, Claim::Empty),
                })
            })
            .collect();
        picker.join().unwrap();
        releasers.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(wins.load(StdOrdering::SeqCst), 1, "no release claimed the pick");
        assert_eq!(release(&pick, at), Err(Claim::Empty), "the pick still holds the reservation");
        let s = &p.stats()[0];
        assert_eq!((s.in_flight, s.picks), (0, 2));
    });
}

/// A copy of a pick (same words, another address) is released while the original is: the
/// copy is refused as moved, the original releases once, and no counter moves otherwise.
#[test]
fn a_copy_released_at_another_address_is_refused() {
    loom_support::check("a_copy_released_at_another_address_is_refused", || {
        let p =
            Pool::builder(Static::from_addresses(["10.0.0.1:80"])).passive_health(PassiveHealth::OFF).build().unwrap();
        let pick = selected(&p);
        let held = p.select().unwrap();
        let at = Arc::as_ptr(&pick) as usize;
        let copy = Arc::new(PickWords {
            // Relaxed: the model's own thread filled the original.
            reservation: AtomicPtr::new(pick.reservation.load(loom::sync::atomic::Ordering::Relaxed)),
            check: pick.check,
        });
        let copy_at = Arc::as_ptr(&copy) as usize;
        let original = {
            let pick = Arc::clone(&pick);
            thread::spawn(move || release(&pick, at))
        };
        let copied = thread::spawn(move || release(&copy, copy_at));
        assert_eq!(original.join().unwrap(), Ok(true));
        assert_eq!(copied.join().unwrap(), Err(Claim::Moved));
        let s = &p.stats()[0];
        assert_eq!((s.in_flight, s.picks), (1, 2));
        held.release(Outcome::Success);
        assert_eq!(p.stats()[0].in_flight, 0);
    });
}
