//! The C ABI's release-once claim: how a reservation kept in caller-owned memory (an
//! `lc_pick`) is released at most once, and only from the struct it was selected into.
//!
//! A select stores two private words in the pick: the reservation (the host pointer, which
//! carries one in-flight count) and a check word that binds it to the pick's own address
//! ([`seal`]). A release ([`claim`]) first verifies the check word against the address it was
//! given, so that a *copy* of the struct (`lc_pick copy = a;`) is refused before anything
//! changes, then takes the reservation with one atomic swap to NULL: the swaps on the field
//! are totally ordered, so exactly one of any number of concurrent releases gets it.
//!
//! What cannot be told apart, by construction: a copy `memcpy`d back to the original address
//! (it *is* the original struct, bit for bit), and a late release of a struct that was
//! selected into again (it holds the new reservation). The header states the caller's rules.
//!
//! The C ABI (`src/ffi/pick.rs`) runs these functions on the fields of a real `lc_pick`; the
//! loom model `tests/loom_claim.rs` runs them on loom's atomics.

use std::ffi::c_void;
use std::ptr::{self, NonNull};

use crate::reservation::{Outcome, Reservation};
use crate::sync::{AtomicPtr, Ordering};

/// Mixed into every check word, so that an all-zero struct, or a check word left 0 by a
/// caller who filled a pick by hand, never verifies.
const CHECK_KEY: u64 = 0x9E37_79B9_7F4A_7C15;

/// The check word of `reservation` held at address `at`. Exact for the copy it must catch:
/// for one reservation, two addresses give two different words (XOR is injective).
fn check_word(reservation: *mut c_void, at: usize) -> u64 {
    (reservation.addr() as u64) ^ (at as u64) ^ CHECK_KEY
}

/// Why a claim took nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The field holds no reservation: released already (or by a racing release), or zeroed.
    Empty,
    /// The check word does not match this address: the struct was copied (or corrupted).
    Moved,
}

/// Gives up `reservation` into the two private words of a pick at address `at`:
/// `(reservation, check)`.
pub fn seal(reservation: Reservation, at: usize) -> (*mut c_void, u64) {
    let raw = reservation.into_raw().as_ptr().cast::<c_void>();
    (raw, check_word(raw, at))
}

/// Takes the reservation out of the pick at address `at` whose reservation field is `cell`
/// and whose check word is `check`, if this call is the one that gets it.
///
/// # Safety
/// `cell` and `check` are the fields of a pick filled by [`seal`] for address `at` (or
/// zeroed, or released), and nothing writes them during the call but other claims.
pub unsafe fn claim(cell: &AtomicPtr<c_void>, check: u64, at: usize) -> Result<Reservation, Claim> {
    // Relaxed: only decides whether to try; the swap below is what claims.
    let seen = cell.load(Ordering::Relaxed);
    if seen.is_null() {
        return Err(Claim::Empty);
    }
    if check_word(seen, at) != check {
        return Err(Claim::Moved);
    }
    // AcqRel: the swaps on this field are totally ordered, so exactly one sees the pointer;
    // Acquire also orders the winner after the write that stored it.
    let Some(host) = NonNull::new(cell.swap(ptr::null_mut(), Ordering::AcqRel)) else {
        return Err(Claim::Empty);
    };
    // The field changes only by claims (the caller's contract), so it still held `seen`.
    debug_assert_eq!(host.as_ptr(), seen);
    // SAFETY: the pointer came from `Reservation::into_raw` in `seal`, and the swap above
    // made this the only call that holds it.
    Ok(unsafe { Reservation::from_raw(host.cast()) })
}

/// Releases a claimed reservation with `outcome`; false when its host had nothing in flight
/// (a reservation released twice through a copy that no check could catch; nothing changed,
/// and it was logged).
pub fn release_claimed(reservation: Reservation, outcome: Outcome) -> bool {
    reservation.release_raw(outcome)
}
