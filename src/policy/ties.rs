//! Random tie breaking with one random draw per batch of ties.
//!
//! Reservoir sampling (Caddy's method) draws a random number for every tied host; in an idle
//! pool that is every host. Here tied positions are collected in a 32-slot buffer; when it
//! fills, one draw picks a survivor among `carry` (the earlier survivor, standing for all the
//! earlier ties with their total weight) and the buffered ties, each with its weight. The
//! survivor is therefore chosen with probability proportional to its weight among all ties
//! (uniformly when weights are equal), using `ceil(ties / 32)` draws, and a single draw for the
//! common case of at most 32 ties. A single tie needs no draw.

use std::mem::MaybeUninit;

use super::Random;

const BATCH: usize = 32;

pub(super) struct Ties {
    buf: [MaybeUninit<u32>; BATCH],
    len: usize,
    carry: Option<u32>,
    carry_weight: u64,
}

impl Ties {
    #[inline(always)]
    pub(super) fn new() -> Self {
        Self { buf: [MaybeUninit::uninit(); BATCH], len: 0, carry: None, carry_weight: 0 }
    }

    /// Forgets all ties (a strictly better host was found).
    #[inline(always)]
    pub(super) fn clear(&mut self) {
        self.len = 0;
        self.carry = None;
        self.carry_weight = 0;
    }

    #[inline(always)]
    pub(super) fn push<R: Random>(&mut self, i: u32, rng: &mut R, weight: impl Fn(u32) -> u64) {
        if self.len == BATCH {
            // SAFETY: all BATCH slots were written since the last clear or fold.
            let full = unsafe { buffered(&self.buf, BATCH) };
            fold(full, &mut self.carry, &mut self.carry_weight, rng, &weight);
            self.len = 0;
        }
        self.buf[self.len] = MaybeUninit::new(i);
        self.len += 1;
    }

    /// The chosen tie, if there was any.
    #[inline(always)]
    pub(super) fn finish<R: Random>(&mut self, rng: &mut R, weight: impl Fn(u32) -> u64) -> Option<usize> {
        // SAFETY: the first `len` slots were written by `push` since the last clear or fold.
        let rest = unsafe { buffered(&self.buf, self.len) };
        match (self.carry, rest) {
            (None, []) => None,
            (None, &[only]) => Some(only as usize),
            _ => {
                fold(rest, &mut self.carry, &mut self.carry_weight, rng, &weight);
                self.carry.map(|i| i as usize)
            }
        }
    }
}

/// The first `len` slots of `buf`.
///
/// # Safety
/// Those slots must have been written.
#[inline(always)]
unsafe fn buffered(buf: &[MaybeUninit<u32>; BATCH], len: usize) -> &[u32] {
    debug_assert!(len <= BATCH);
    // SAFETY: the caller guarantees the first `len` slots are initialised; `u32` and
    // `MaybeUninit<u32>` have the same layout.
    unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u32>(), len) }
}

/// Replaces `carry` (standing for earlier ties of total weight `carry_weight`) and `ties` by
/// one survivor drawn in proportion to weight.
///
/// Given the fields one by one rather than `&mut Ties`, so that the scan loop's tie count
/// can stay in a register instead of living in memory.
fn fold<R: Random>(
    ties: &[u32],
    carry: &mut Option<u32>,
    carry_weight: &mut u64,
    rng: &mut R,
    weight: &impl Fn(u32) -> u64,
) {
    let total = *carry_weight + ties.iter().map(|&i| weight(i)).sum::<u64>();
    let mut r = rng.below(total);
    if r >= *carry_weight {
        r -= *carry_weight;
        for &i in ties {
            let w = weight(i);
            if r < w {
                *carry = Some(i);
                break;
            }
            r -= w;
        }
    }
    *carry_weight = total;
}
