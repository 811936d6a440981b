//! `first`: the first admissible entry in list order.

use super::{Excluded, Now, admissible};
use crate::snapshot::Entry;
use crate::sync::Ordering;

/// The first admissible entry at or after `from`. At most `tier.len() - from` loads.
pub(super) fn propose(tier: &[Entry], from: usize, ex: &Excluded<'_>, now: &mut Now) -> Option<usize> {
    tier.iter().enumerate().skip(from).find_map(|(i, e)| {
        // Relaxed: a heuristic read; the reservation RMW decides.
        let word = e.state().word.load(Ordering::Relaxed);
        admissible(e, word, ex, now).then_some(i)
    })
}
