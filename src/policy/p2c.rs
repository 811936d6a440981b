//! `p2c`: the better of two distinct random available hosts (power of two choices).
//!
//! Fast path: draw two distinct entries of the tier (uniformly, or in proportion to weight
//! via the snapshot's cumulative weights) and accept the pair only if both are admissible;
//! rejection keeps the accepted pair uniform over admissible pairs. After two rejected pairs
//! the exact path counts the admissible entries and draws among them (two or three passes),
//! so a tier that is mostly unavailable cannot make a pick loop. The winner has fewer
//! in-flight requests per unit of weight; on a tie the first draw wins (it is random).

use super::{Excluded, Now, Random, admissible};
use crate::host::INFLIGHT_MASK;
use crate::snapshot::Entry;
use crate::sync::Ordering;

const FAST_TRIES: usize = 2;

pub(super) fn propose<R: Random>(
    tier: &[Entry],
    cum_weight: &[u64],
    uniform: bool,
    ex: &Excluded<'_>,
    now: &mut Now,
    rng: &mut R,
) -> Option<usize> {
    let n = tier.len();
    let ok = |i: usize, now: &mut Now| admissible(&tier[i], load_word(&tier[i]), ex, now);
    if n == 1 {
        return ok(0, now).then_some(0);
    }
    for _ in 0..FAST_TRIES {
        let (a, b) = if uniform { draw_uniform(n, rng) } else { draw_weighted(cum_weight, rng) };
        if ok(a, now) && ok(b, now) {
            return Some(better(tier, a, b));
        }
    }
    exact(tier, uniform, ex, now, rng)
}

#[inline(always)]
fn load_word(e: &Entry) -> u64 {
    // Relaxed: a heuristic read; the reservation RMW decides.
    e.host().word.load(Ordering::Relaxed)
}

fn better(tier: &[Entry], a: usize, b: usize) -> usize {
    let (ea, eb) = (&tier[a], &tier[b]);
    let la = load_word(ea) & INFLIGHT_MASK;
    let lb = load_word(eb) & INFLIGHT_MASK;
    if lb * u64::from(ea.weight) < la * u64::from(eb.weight) { b } else { a }
}

fn draw_uniform<R: Random>(n: usize, rng: &mut R) -> (usize, usize) {
    let a = rng.below(n as u64) as usize;
    let mut b = rng.below(n as u64 - 1) as usize;
    if b >= a {
        b += 1;
    }
    (a, b)
}

/// Two distinct entries, each drawn in proportion to weight (the second among the rest).
fn draw_weighted<R: Random>(cum: &[u64], rng: &mut R) -> (usize, usize) {
    let total = *cum.last().expect("non-empty tier");
    let r = rng.below(total);
    let a = cum.partition_point(|&c| c <= r);
    let wa = cum[a] - if a == 0 { 0 } else { cum[a - 1] };
    let mut r = rng.below(total - wa);
    if r >= cum[a] - wa {
        r += wa;
    }
    let b = cum.partition_point(|&c| c <= r);
    (a, b)
}

/// Counts the admissible entries and draws two of them: uniform over admissible pairs (or in
/// proportion to weight, the second among the rest).
fn exact<R: Random>(tier: &[Entry], uniform: bool, ex: &Excluded<'_>, now: &mut Now, rng: &mut R) -> Option<usize> {
    let weight = |i: usize| if uniform { 1 } else { u64::from(tier[i].weight) };
    let ok = |i: usize, now: &mut Now| admissible(&tier[i], load_word(&tier[i]), ex, now);
    let mut total = 0u64;
    let mut last = None;
    for i in 0..tier.len() {
        if ok(i, now) {
            total += weight(i);
            last = Some(i);
        }
    }
    let last = last?;
    if total == weight(last) {
        return Some(last);
    }
    // The `r`-th unit of admissible weight, skipping `skip`; None if the tier changed under us.
    let find = |mut r: u64, skip: Option<usize>, now: &mut Now| {
        (0..tier.len()).filter(|&i| Some(i) != skip).find(|&i| {
            if !ok(i, now) {
                return false;
            }
            let w = weight(i);
            if r < w {
                return true;
            }
            r -= w;
            false
        })
    };
    let a = find(rng.below(total), None, now)?;
    let rest = total.saturating_sub(weight(a));
    match (rest > 0).then(|| find(rng.below(rest), Some(a), now)).flatten() {
        Some(b) => Some(better(tier, a, b)),
        None => Some(a),
    }
}
