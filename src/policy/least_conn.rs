//! `least_conn`: fewest in-flight requests, by weight, ties broken at random.
//!
//! One pass of relaxed loads. With equal weights the in-flight counts are compared directly
//! (exactly Caddy's policy); otherwise `a / wa < b / wb` is decided as `a * wb < b * wa`
//! (nginx's rule; both sides stay below 2^51). Ties cost one random draw per chunk of 64
//! entries that has any (none for a single tie) with equal weights, and one per 32 ties in
//! the weighted [`Ties`] reservoir, rather than Caddy's one draw per tie.

use super::ties::Ties;
use super::{Excluded, Now, Random, admissible};
use crate::host::{DOWN, INFLIGHT_MASK, SUSPECT};
use crate::snapshot::Entry;
use crate::sync::Ordering;

pub(super) fn propose<R: Random>(
    tier: &[Entry],
    uniform: bool,
    ex: &Excluded<'_>,
    now: &mut Now,
    rng: &mut R,
) -> Option<usize> {
    if uniform { propose_uniform(tier, ex, now, rng) } else { propose_weighted(tier, ex, now, rng) }
}

/// Entries scanned per chunk: the tie positions of one chunk fit a 64-byte stack buffer.
pub(super) const CHUNK: usize = 64;

/// Equal weights: fewest in flight, ties uniform.
///
/// The tier is scanned in chunks of [`CHUNK`] entries. Inside a chunk, tied positions go to a
/// stack buffer whose length lives in a register (no call, no store-to-load chain in the
/// loop). After each chunk that had ties, one draw picks among its `n` ties and the
/// `carried` earlier ones (represented by the current survivor), which keeps every tie so
/// far equally likely. So: no draw for a single tie, one draw for up to 64 entries, at most
/// `ceil(len / 64)` draws.
#[inline]
pub(super) fn propose_uniform<R: Random>(
    tier: &[Entry],
    ex: &Excluded<'_>,
    now: &mut Now,
    rng: &mut R,
) -> Option<usize> {
    let mut best = u64::MAX;
    // The survivor among the ties of earlier chunks, and how many ties it stands for.
    let (mut carry, mut carried) = (0usize, 0u64);
    for (c, chunk) in tier.chunks(CHUNK).enumerate() {
        let before = best;
        // Bit `j` set: entry `j` of the chunk ties at `best`. A bit mask rather than a count
        // and a list: one register, which keeps the loop free of spills and stores.
        let mut ties = 0u64;
        for (j, e) in chunk.iter().enumerate() {
            // Relaxed: a heuristic read; the reservation RMW decides.
            let word = e.host().word.load(Ordering::Relaxed);
            // DOWN makes the value huge, so one compare skips busier and down hosts alike.
            // SUSPECT stays out of it: a host whose window has expired must be looked at
            // (and have the flag cleared) however idle the hosts before it are.
            let load = word & (INFLIGHT_MASK | DOWN);
            if load > best || load >= u64::from(e.limit) {
                continue;
            }
            if word & SUSPECT != 0 && !e.host().healthy_at(now.get(e)) {
                continue;
            }
            if !ex.is_empty() && ex.contains(e.host().id) {
                continue;
            }
            if load < best {
                best = load;
                ties = 0;
            }
            ties |= 1 << j;
        }
        if best < before {
            // Earlier chunks' ties were not ties after all.
            carried = 0;
        }
        if ties != 0 {
            let n = u64::from(ties.count_ones());
            let total = carried + n;
            let r = if total == 1 { 0 } else { rng.below(total) };
            if r >= carried {
                carry = c * CHUNK + nth_set_bit(ties, (r - carried) as u32);
            }
            carried = total;
        }
    }
    (carried > 0).then_some(carry)
}

/// Set bits in each byte value.
const POP8: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = (i as u8).count_ones() as u8;
        i += 1;
    }
    t
};

/// Position of the `r`-th (from 0) set bit of `m`; `r < m.count_ones()`. Skips whole bytes,
/// then clears at most 7 bits: no popcount instruction needed (x86-64's baseline has none).
#[inline]
fn nth_set_bit(mut m: u64, mut r: u32) -> usize {
    let mut base = 0;
    loop {
        let c = u32::from(POP8[(m & 0xff) as usize]);
        if r < c {
            break;
        }
        r -= c;
        m >>= 8;
        base += 8;
    }
    for _ in 0..r {
        m &= m - 1;
    }
    base + m.trailing_zeros() as usize
}

fn propose_weighted<R: Random>(tier: &[Entry], ex: &Excluded<'_>, now: &mut Now, rng: &mut R) -> Option<usize> {
    let weight = |i: u32| u64::from(tier[i as usize].weight);
    let mut ties = Ties::new();
    // (in-flight, weight) of the current best; (MAX, 1) compares above everything.
    let (mut best_load, mut best_w) = (u64::MAX >> 21, 1u64);
    for (i, e) in tier.iter().enumerate() {
        // Relaxed: a heuristic read; the reservation RMW decides.
        let word = e.host().word.load(Ordering::Relaxed);
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
