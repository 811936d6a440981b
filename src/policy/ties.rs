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
            self.fold(rng, &weight);
        }
        self.buf[self.len] = MaybeUninit::new(i);
        self.len += 1;
    }

    fn buffered(&self) -> &[u32] {
        // SAFETY: the first `len` slots were written by `push` since the last clear or fold.
        unsafe { std::slice::from_raw_parts(self.buf.as_ptr().cast::<u32>(), self.len) }
    }

    /// Replaces carry + buffer by one survivor drawn in proportion to weight.
    fn fold<R: Random>(&mut self, rng: &mut R, weight: &impl Fn(u32) -> u64) {
        let total = self.carry_weight + self.buffered().iter().map(|&i| weight(i)).sum::<u64>();
        let mut r = rng.below(total);
        if r >= self.carry_weight {
            r -= self.carry_weight;
            for &i in self.buffered() {
                let w = weight(i);
                if r < w {
                    self.carry = Some(i);
                    break;
                }
                r -= w;
            }
        }
        self.carry_weight = total;
        self.len = 0;
    }

    /// The chosen tie, if there was any.
    #[inline(always)]
    pub(super) fn finish<R: Random>(mut self, rng: &mut R, weight: impl Fn(u32) -> u64) -> Option<usize> {
        match (self.carry, self.len) {
            (None, 0) => None,
            (None, 1) => Some(self.buffered()[0] as usize),
            _ => {
                self.fold(rng, &weight);
                self.carry.map(|i| i as usize)
            }
        }
    }
}
