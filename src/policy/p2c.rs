//! `p2c`: the better of two distinct random available hosts (power of two choices).
//!
//! The pair is drawn one entry at a time, each among the admissible entries in proportion to
//! weight (uniformly when weights are equal), the second among those left after the first:
//!
//! * **fast**: draw an entry of the whole tier (uniformly, or by weight via the snapshot's
//!   cumulative weights) and keep it if it is admissible; at most [`FAST_TRIES`] draws.
//!   The first admissible draw of a run of independent draws is distributed exactly as one
//!   draw among the admissible entries alone (rejection sampling), and which try succeeded
//!   says nothing about which entry it drew.
//! * **exact**, if every fast try was rejected: count the admissible weight in one pass and
//!   find the drawn unit in another, so a tier that is mostly unavailable cannot make a pick
//!   loop. It draws from the same distribution as a successful fast path, so the mixture of
//!   the two does too: both paths give one distribution of pairs.
//!
//! The winner has fewer in-flight requests per unit of weight; on a tie the first draw wins
//! (it is random).

use super::{Excluded, Now, Random, admissible};
use crate::host::INFLIGHT_MASK;
use crate::snapshot::Entry;
use crate::sync::Ordering;

/// Fast draws per entry of the pair before the exact path.
const FAST_TRIES: usize = 2;

pub(super) fn propose<R: Random>(
    tier: &[Entry],
    cum_weight: &[u64],
    uniform: bool,
    ex: &Excluded<'_>,
    now: &mut Now,
    rng: &mut R,
) -> Option<usize> {
    let mut draws = Draws { tier, cum_weight, uniform, ex, total: None };
    if tier.len() == 1 {
        return draws.ok(0, now).then_some(0);
    }
    let a = draws.one(None, now, rng)?;
    // The second entry, if another one is admissible.
    Some(draws.one(Some(a), now, rng).map_or(a, |b| better(tier, a, b)))
}

struct Draws<'t, 'e, 'u> {
    tier: &'t [Entry],
    cum_weight: &'t [u64],
    uniform: bool,
    ex: &'e Excluded<'u>,
    /// The admissible weight, counted once per pick if the exact path runs.
    total: Option<u64>,
}

impl Draws<'_, '_, '_> {
    fn weight(&self, i: usize) -> u64 {
        if self.uniform { 1 } else { u64::from(self.tier[i].weight) }
    }

    fn ok(&self, i: usize, now: &mut Now) -> bool {
        admissible(&self.tier[i], load_word(&self.tier[i]), self.ex, now)
    }

    /// One admissible entry other than `skip`, in proportion to weight; None if there is none.
    fn one<R: Random>(&mut self, skip: Option<usize>, now: &mut Now, rng: &mut R) -> Option<usize> {
        for _ in 0..FAST_TRIES {
            let i = self.fast(skip, rng);
            if self.ok(i, now) {
                return Some(i);
            }
        }
        self.exact(skip, now, rng)
    }

    /// An entry of the whole tier other than `skip`, in proportion to weight.
    fn fast<R: Random>(&self, skip: Option<usize>, rng: &mut R) -> usize {
        let n = self.tier.len() as u64;
        if self.uniform {
            let mut i = rng.below(n - u64::from(skip.is_some())) as usize;
            if skip.is_some_and(|s| i >= s) {
                i += 1;
            }
            return i;
        }
        let cum = self.cum_weight;
        let total = *cum.last().expect("non-empty tier");
        let Some(s) = skip else {
            let r = rng.below(total);
            return cum.partition_point(|&c| c <= r);
        };
        let ws = self.weight(s);
        let mut r = rng.below(total - ws);
        if r >= cum[s] - ws {
            r += ws;
        }
        cum.partition_point(|&c| c <= r)
    }

    /// Counts the admissible weight (once per pick) and finds a drawn unit of it, skipping
    /// `skip`; None if nothing is admissible, or if the tier changed under us.
    fn exact<R: Random>(&mut self, skip: Option<usize>, now: &mut Now, rng: &mut R) -> Option<usize> {
        let total = match self.total {
            Some(t) => t,
            None => {
                let t = (0..self.tier.len()).filter(|&i| self.ok(i, now)).map(|i| self.weight(i)).sum();
                self.total = Some(t);
                t
            }
        };
        let rest = total.saturating_sub(skip.map_or(0, |s| self.weight(s)));
        if rest == 0 {
            return None;
        }
        let mut r = rng.below(rest);
        (0..self.tier.len()).filter(|&i| Some(i) != skip).find(|&i| {
            if !self.ok(i, now) {
                return false;
            }
            let w = self.weight(i);
            if r < w {
                return true;
            }
            r -= w;
            false
        })
    }
}

#[inline(always)]
fn load_word(e: &Entry) -> u64 {
    // Relaxed: a heuristic read; the reservation RMW decides.
    e.state().word.load(Ordering::Relaxed)
}

fn better(tier: &[Entry], a: usize, b: usize) -> usize {
    let (ea, eb) = (&tier[a], &tier[b]);
    let la = load_word(ea) & INFLIGHT_MASK;
    let lb = load_word(eb) & INFLIGHT_MASK;
    if lb * u64::from(ea.weight) < la * u64::from(eb.weight) { b } else { a }
}
