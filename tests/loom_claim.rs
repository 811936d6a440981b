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

use leastconn::{Claim, Outcome, PassiveHealth, Pool, Reservation, Static, claim, release_claimed, seal};
use loom::sync::Arc;
use loom::sync::atomic::AtomicPtr;
use loom::thread;

/// The private words of an `lc_pick`.
struct PickWords {
    reservation: AtomicPtr<c_void>,
    check: u64,
}

const A: &str = "10.0.0.1:80";

/// A pool of the one host `A`, without passive health.
fn one_host_pool() -> Pool {
    Pool::builder(Static::from_addresses([A])).passive_health(PassiveHealth::OFF).build().unwrap()
}

/// A pick that a select of `pool` filled (see [`sealed`]).
fn selected(pool: &Pool) -> Arc<PickWords> {
    sealed(pool.select().unwrap())
}

/// A pick that a select filled with `reservation` at its final address (the `Arc`'s
/// allocation). The words are initialised, not stored, before any releaser starts, as in C,
/// where a caller cannot hand out a pick it has not received. (Racing a plain store with the swaps would also trip loom
/// 0.7's open bug tokio-rs/loom#254, where an RMW may read a value that a store which
/// happens-before it has already overwritten.)
fn sealed(reservation: Reservation) -> Arc<PickWords> {
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
        let p = one_host_pool();
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
        let p = one_host_pool();
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

/// The pick of `pool` the caller released, then a copy of it taken before that release,
/// `memcpy`d back over it (no check can catch that): a stand-in at the pick's address, whose
/// words are initialised before any thread starts (see [`sealed`]).
fn released_then_copied_back(pool: &Pool) -> (Arc<PickWords>, usize) {
    let pick = selected(pool);
    let at = Arc::as_ptr(&pick) as usize;
    // Relaxed: the model's own thread filled the pick.
    let bytes = (pick.reservation.load(loom::sync::atomic::Ordering::Relaxed), pick.check);
    assert_eq!(release(&pick, at), Ok(true));
    (Arc::new(PickWords { reservation: AtomicPtr::new(bytes.0), check: bytes.1 }), at)
}

/// `lc_pick_release` of a copied-back pick with `outcome`: the claim succeeds (the words
/// are the original's), so the result is that of the release itself.
fn release_copy(copy: &PickWords, at: usize, outcome: Outcome) -> bool {
    // SAFETY: the words a select filled for the pick at `at`; only this claim reads them.
    let reservation = unsafe { claim(&copy.reservation, copy.check, at) }.unwrap();
    release_claimed(reservation, outcome)
}

/// Picks and releases once; None if the pick fails.
fn pick_and_release(pool: &Pool) -> Option<bool> {
    let pick = sealed(pool.select().ok()?);
    Some(release(&pick, Arc::as_ptr(&pick) as usize).unwrap())
}

/// A copied-back pick is released as a failure while another thread picks and releases on
/// the same host. Property (CONCURRENCY.md, protocol 2, "refused releases"): the bogus
/// release either is refused or takes the other request's count, whose own release is then
/// the one refused: exactly one release is refused. Once both are done, no bit of the word
/// differs from a run without the bogus release: nothing in flight, `picks` counting the
/// real reservations only; the host is still pickable, and it is freed once, retired with
/// nothing in flight, when the pool goes (`Drop for Host` under loom).
#[test]
fn a_copy_released_after_its_original_is_refused_or_takes_a_count_and_changes_no_bit() {
    loom_support::check("a_copy_released_after_its_original_is_refused_or_takes_a_count_and_changes_no_bit", || {
        let p = one_host_pool();
        let census = p.host_census();
        let (copy, at) = released_then_copied_back(&p);
        let bogus = thread::spawn(move || release_copy(&copy, at, Outcome::Failure));
        let other = {
            let p = p.clone();
            thread::spawn(move || pick_and_release(&p))
        };
        let (bogus, other) = (bogus.join().unwrap(), other.join().unwrap());
        let refused = usize::from(!bogus) + other.map_or(0, |released| usize::from(!released));
        assert_eq!(refused, 1, "bogus release {bogus}, other pick's release {other:?}");
        let s = &p.stats()[0];
        assert_eq!((s.in_flight, s.picks), (0, 1 + u64::from(other.is_some())));
        assert_eq!(pick_and_release(&p), Some(true), "the host is still pickable");
        drop(p);
        assert_eq!((census.allocated(), census.freed()), (1, 1));
    });
}

/// Known anomaly, found by this model (CONCURRENCY.md, protocol 2, "refused releases"): as
/// above, with a third thread marking the host down. A pick whose add finds DOWN undoes it;
/// a bogus release whose RMW falls between that add and its undo sees one in flight and is
/// accepted, and the undo then borrows GUARD for good: the host reads as full from then on,
/// every later pick of it fails, and it is never freed. Kept ignored, as the evidence for
/// that entry: run it with `--ignored` to see the schedule.
#[test]
#[ignore = "known anomaly: a copied-back pick released while a pick undoes its add wedges the host"]
fn a_copy_released_while_a_pick_undoes_its_add_wedges_the_host() {
    loom_support::check("a_copy_released_while_a_pick_undoes_its_add_wedges_the_host", || {
        let p = one_host_pool();
        let (copy, at) = released_then_copied_back(&p);
        let bogus = thread::spawn(move || release_copy(&copy, at, Outcome::Failure));
        let other = {
            let p = p.clone();
            thread::spawn(move || pick_and_release(&p))
        };
        let downer = {
            let p = p.clone();
            thread::spawn(move || p.set_down(A, true).unwrap())
        };
        let (bogus, other) = (bogus.join().unwrap(), other.join().unwrap());
        downer.join().unwrap();
        let refused = usize::from(!bogus) + other.map_or(0, |released| usize::from(!released));
        assert_eq!(refused, 1, "bogus release {bogus}, other pick's release {other:?}");
        p.set_down(A, false).unwrap();
        assert_eq!(pick_and_release(&p), Some(true), "the host is still pickable");
    });
}
