//! `least_conn`: fewest in-flight requests, by weight, ties broken at random.
//!
//! One pass of relaxed loads. With equal weights the in-flight counts are compared directly
//! (exactly Caddy's policy); otherwise `a / wa < b / wb` is decided as `a * wb < b * wa`
//! (nginx's rule; both sides stay below 2^52: the in-flight field with DOWN is below 2^32,
//! weights below 2^20). Tied entries go to a [`Ties`] reservoir, which draws one random
//! number per 32 ties rather than one per tie.

use super::ties::Ties;
use super::{Excluded, Now, Random, admissible};
use crate::host::{DOWN, INFLIGHT_MASK};
use crate::snapshot::Entry;
use crate::sync::Ordering;

#[inline(always)]
pub(super) fn propose<R: Random>(
    tier: &[Entry],
    uniform: bool,
    ex: &Excluded<'_>,
    now: &mut Now,
    rng: &mut R,
) -> Option<usize> {
    if uniform { propose_uniform(tier, ex, now, rng) } else { propose_weighted(tier, ex, now, rng) }
}

#[inline(always)]
fn propose_uniform<R: Random>(tier: &[Entry], ex: &Excluded<'_>, now: &mut Now, rng: &mut R) -> Option<usize> {
    let mut ties = Ties::new();
    let mut best = u64::MAX;
    for (i, e) in tier.iter().enumerate() {
        // Relaxed: a heuristic read; the reservation RMW decides.
        let word = e.state().word.load(Ordering::Relaxed);
        // DOWN sits above the in-flight bits, so one compare skips busier and down hosts.
        // SUSPECT is left out: a host whose failure window has expired must be looked at (and
        // have its flag cleared) however idle the hosts before it are.
        let load = word & (INFLIGHT_MASK | DOWN);
        if load > best || !admissible(e, word, ex, now) {
            continue;
        }
        if load != best {
            // Strictly fewer in flight (`admissible` refused DOWN, so `load` is in-flight only).
            best = load;
            ties.clear();
        }
        ties.push_uniform(i as u32, rng);
    }
    ties.finish_uniform(rng)
}

fn propose_weighted<R: Random>(tier: &[Entry], ex: &Excluded<'_>, now: &mut Now, rng: &mut R) -> Option<usize> {
    let weight = |i: u32| u64::from(tier[i as usize].weight);
    let mut ties = Ties::new();
    // (in-flight, weight) of the current best; (MAX, 1) compares above everything.
    let (mut best_load, mut best_w) = (u64::MAX >> 21, 1u64);
    for (i, e) in tier.iter().enumerate() {
        // Relaxed: a heuristic read; the reservation RMW decides.
        let word = e.state().word.load(Ordering::Relaxed);
        let w = u64::from(e.weight);
        // As in `propose_uniform`: DOWN, not SUSPECT, takes part in the quick skip.
        if (word & (INFLIGHT_MASK | DOWN)) * best_w > best_load * w || !admissible(e, word, ex, now) {
            continue;
        }
        let load = word & INFLIGHT_MASK;
        if load * best_w < best_load * w {
            (best_load, best_w) = (load, w);
            ties.clear();
        }
        ties.push(i as u32, rng, weight);
    }
    ties.finish(rng, weight)
}
