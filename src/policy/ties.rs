//! Random tie breaking with one random draw per batch of ties.
//!
//! Reservoir sampling (Caddy's method) draws a random number for every tied host; in an idle
//! pool that is every host. Here tied positions are collected in a 32-slot buffer; when it
//! fills, one draw picks a survivor among `carry` (the earlier survivor, standing for all the
//! earlier ties with their total weight) and the buffered ties, each with its weight. The
//! survivor is therefore chosen with probability proportional to its weight among all ties
//! (uniformly when weights are equal), using `ceil(ties / 32)` draws, and a single draw for the
//! common case of at most 32 ties. A single tie needs no draw.
//!
//! The reservoir lives on the picking thread's stack and is never moved (`&mut` only), so the
//! 128-byte buffer costs neither initialisation nor copies.

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

    /// As [`Ties::push`] for equally weighted ties: a full buffer folds in O(1).
    #[inline(always)]
    pub(super) fn push_uniform<R: Random>(&mut self, i: u32, rng: &mut R) {
        if self.len == BATCH {
            self.carry = self.finish_uniform(rng).map(|c| c as u32);
            self.carry_weight += BATCH as u64;
            self.len = 0;
        }
        self.buf[self.len] = MaybeUninit::new(i);
        self.len += 1;
    }

    #[inline(always)]
    fn buffered(&self) -> &[u32] {
        // SAFETY: the first `len` slots were written by `push` since the last clear or fold.
        unsafe { std::slice::from_raw_parts(self.buf.as_ptr().cast::<u32>(), self.len) }
    }

    /// Replaces carry + buffer by one survivor drawn in proportion to weight.
    #[inline(never)]
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

    /// The chosen tie among equally weighted ones, if there was any.
    #[inline(always)]
    pub(super) fn finish_uniform<R: Random>(&mut self, rng: &mut R) -> Option<usize> {
        if self.carry.is_none() && self.len <= 1 {
            return (self.len == 1).then(|| self.buffered()[0] as usize);
        }
        let r = rng.below(self.carry_weight + self.len as u64);
        match r.checked_sub(self.carry_weight) {
            Some(j) => Some(self.buffered()[j as usize] as usize),
            None => self.carry.map(|i| i as usize),
        }
    }

    /// The chosen tie, drawn in proportion to `weight`, if there was any.
    #[inline]
    pub(super) fn finish<R: Random>(&mut self, rng: &mut R, weight: impl Fn(u32) -> u64) -> Option<usize> {
        if self.carry.is_none() && self.len <= 1 {
            return (self.len == 1).then(|| self.buffered()[0] as usize);
        }
        self.fold(rng, &weight);
        self.carry.map(|i| i as usize)
    }
}
