//! The zone under loom: memory that is a boxed slice of loom atomics, and what the loom
//! models (`tests/loom_zone*.rs`) need to drive the production slot code on it. Nothing here
//! is built outside `--cfg loom`.

use super::Zone;
use super::layout::{self, Identity, Layout, ZoneCapacity};
use super::slots::{Key, Kind, NoJournal, Reclaim, SlotRef};
use crate::error::Error;
use crate::sync::{AtomicU64, Ordering};

/// The words of a model zone.
pub(crate) struct Backing(Box<[AtomicU64]>);

impl Backing {
    pub(crate) fn words(&self) -> &[AtomicU64] {
        &self.0
    }
}

/// A slot's control word, decoded for a model's assertions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotView {
    /// `"FREE"`, `"TOMB"`, `"CLAIMING"`, `"LIVE"`, `"RECLAIMING"` (or `"?"`).
    pub kind: &'static str,
    /// Listers (LIVE) or the claimer's process index (CLAIMING).
    pub who: u32,
    /// The slot's generation.
    pub generation: u32,
}

#[doc(hidden)]
impl Zone {
    /// A zone with capacities `caps` in loom atomics, initialised as a new zone is.
    pub fn model(caps: &ZoneCapacity) -> Result<Zone, Error> {
        let layout = Layout::new(caps)?;
        let words: Box<[AtomicU64]> = (0..layout.total_words).map(|_| AtomicU64::new(0)).collect();
        layout::initialise(&words, &layout, &Identity { creation_id: 1, clock_base: 0, boot_id: [0, 0] });
        Ok(Zone::new((Backing(words), layout)))
    }

    fn key(&self, namespace: &str, address: &str) -> Result<Key, Error> {
        Key::new(namespace, address, &self.0.layout)
    }

    /// The first slot of the key's chain.
    pub fn slot_home(&self, namespace: &str, address: &str) -> Result<u32, Error> {
        Ok(self.key(namespace, address)?.home(&self.0.layout))
    }

    /// `Slots::attach` as process `process`: the slot and its generation.
    pub fn slot_attach(&self, namespace: &str, address: &str, process: u32) -> Result<(u32, u32), Error> {
        let slot = self.slots().attach(&self.key(namespace, address)?, process, &NoJournal)?;
        Ok((slot.index, slot.generation))
    }

    /// `Slots::lookup`.
    pub fn slot_lookup(&self, namespace: &str, address: &str) -> Result<Option<(u32, u32)>, Error> {
        Ok(self.slots().lookup(&self.key(namespace, address)?).map(|s| (s.index, s.generation)))
    }

    /// `Slots::detach`: the listers left.
    pub fn slot_detach(&self, index: u32, generation: u32) -> Result<u32, Error> {
        self.slots().detach(SlotRef { index, generation })
    }

    /// `Slots::try_reclaim`: whether the slot was reclaimed.
    pub fn slot_try_reclaim(&self, index: u32) -> bool {
        self.slots().try_reclaim(index) == Reclaim::Reclaimed
    }

    /// `Slots::abandon_claims_of`.
    pub fn slot_abandon_claims_of(&self, process: u32) -> u32 {
        self.slots().abandon_claims_of(process)
    }

    /// `Slots::claim_and_stop`: a claimer that dies after writing `words` key words.
    pub fn slot_claim_and_stop(&self, namespace: &str, address: &str, process: u32, words: usize) -> Option<u32> {
        self.slots().claim_and_stop(&self.key(namespace, address).ok()?, process, words)
    }

    /// Slot `index`'s control word, decoded.
    pub fn slot_view(&self, index: u32) -> SlotView {
        let ctl = self.slots().control(index);
        let kind = match ctl.kind() {
            Kind::Free => "FREE",
            Kind::Tomb => "TOMB",
            Kind::Claiming => "CLAIMING",
            Kind::Live => "LIVE",
            Kind::Reclaiming => "RECLAIMING",
            Kind::Unknown => "?",
        };
        SlotView { kind, who: ctl.who(), generation: ctl.generation() }
    }

    /// Whether slot `index` is LIVE with the key's words in its generation.
    pub fn slot_holds(&self, index: u32, namespace: &str, address: &str) -> bool {
        self.key(namespace, address).is_ok_and(|key| self.slots().holds_now(index, &key))
    }

    /// Slot `index`'s `HostState.word`.
    pub fn slot_state_word(&self, index: u32) -> u64 {
        // SeqCst: a model's probe.
        self.slots().state_words(index)[0].load(Ordering::SeqCst)
    }
}
