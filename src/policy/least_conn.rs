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
        if ties != 0 && ties & (ties - 1) == 0 && carried == 0 {
            // A single tie so far (the common case under load): no draw, no rank.
            carry = c * CHUNK + ties.trailing_zeros() as usize;
            carried = 1;
        } else if ties != 0 {
            let bits = SetBits::new(ties);
            let total = carried + bits.count();
            let r = if total == 1 { 0 } else { rng.below(total) };
            if r >= carried {
                carry = c * CHUNK + bits.nth(r - carried);
            }
            carried = total;
        }
    }
    (carried > 0).then_some(carry)
}

const L8: u64 = 0x0101_0101_0101_0101;
const H8: u64 = 0x8080_8080_8080_8080;

/// `SELECT8[b][k]`: position of the `k`-th (from 0) set bit of byte `b` (8 if none).
const SELECT8: [[u8; 8]; 256] = {
    let mut t = [[8u8; 8]; 256];
    let mut b = 0;
    while b < 256 {
        let (mut bit, mut k) = (0, 0);
        while bit < 8 {
            if b & (1 << bit) != 0 {
                t[b][k] = bit as u8;
                k += 1;
            }
            bit += 1;
        }
        b += 1;
    }
    t
};

/// Rank and select on the set bits of a 64-bit mask, without branches or a popcount
/// instruction (x86-64's baseline has none): byte counts by the usual SWAR steps, their
/// prefix sums by one multiplication, the byte holding the wanted bit by a lane-wise compare,
/// and the bit inside that byte by a table.
pub(super) struct SetBits {
    mask: u64,
    /// Byte lane `i`: set bits in bytes `0..=i` of `mask` (at most 64, so no lane overflows).
    prefix: u64,
}

impl SetBits {
    #[inline]
    pub(super) fn new(mask: u64) -> Self {
        let x = mask - ((mask >> 1) & 0x5555_5555_5555_5555);
        let x = (x & 0x3333_3333_3333_3333) + ((x >> 2) & 0x3333_3333_3333_3333);
        let bytes = (x + (x >> 4)) & 0x0f0f_0f0f_0f0f_0f0f;
        Self { mask, prefix: bytes.wrapping_mul(L8) }
    }

    #[inline]
    pub(super) fn count(&self) -> u64 {
        self.prefix >> 56
    }

    /// Position of the `r`-th (from 0) set bit; `r < self.count()`.
    #[inline]
    pub(super) fn nth(&self, r: u64) -> usize {
        debug_assert!(r < self.count());
        // Lane `i` gets its high bit iff prefix_i <= r: those bytes lie wholly before the bit.
        // No borrow crosses lanes: each lane computes 0x80 + r - prefix_i with both below 0x80.
        let before = (((r * L8) | H8) - self.prefix) & H8;
        let byte = ((before >> 7).wrapping_mul(L8) >> 56) as u32;
        let skipped = ((self.prefix << 8) >> (8 * byte)) & 0xff;
        let b = (self.mask >> (8 * byte)) & 0xff;
        8 * byte as usize + usize::from(SELECT8[b as usize][(r - skipped) as usize])
    }
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
