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
    /// Model memory is ours.
    pub(crate) fn owned(&self) -> bool {
        true
    }

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

/// A zone host on one slot of a model zone, for the crash models (`tests/loom_zone_crash.rs`):
/// the production pick and release steps (`HostState::try_reserve_in`, `Host::release_in`,
/// with their crash points) attributed to a thread record the model names, as if made by the
/// process that owns that record. No pool, no registry: the model keeps the host until it
/// drops this handle.
pub struct ModelHost {
    host: std::ptr::NonNull<crate::host::HostBox>,
    zone: crate::sync::Arc<super::ZoneInner>,
    slot: u32,
}

// SAFETY: the host is only accessed through atomics and immutable fields (as `HostRef`); it
// is freed only by this handle's `Drop`.
unsafe impl Send for ModelHost {}
// SAFETY: as above.
unsafe impl Sync for ModelHost {}

#[doc(hidden)]
impl Zone {
    /// A host on slot `slot` (passive health off; the slot need not be attached: the model
    /// uses only its state words).
    pub fn model_host(&self, slot: u32) -> ModelHost {
        let health = std::sync::Arc::new(crate::host::Health {
            max_fails: 0,
            fail_ns: 0,
            clock: crate::clock::Clock::System,
            zone_clock: None,
            census: Default::default(),
        });
        let at = SlotRef { index: slot, generation: 0 };
        let host = crate::host::Host::alloc_zone("model", &health, &self.0, at);
        ModelHost { host, zone: crate::sync::Arc::clone(&self.0), slot }
    }
}

impl ModelHost {
    /// A pick of this host under `limit` by thread record `record` whose window sequence is
    /// `seq`: `true` when it reserved.
    pub fn pick(&self, record: u32, seq: &std::cell::Cell<u32>, limit: u64) -> bool {
        let at = self.zone.attribution(record, seq);
        // SAFETY: the host lives until this handle is dropped.
        unsafe { self.host.as_ref() }.state().try_reserve_in(limit, Some((&at, self.slot)))
    }

    /// A release of one reservation of this host (made by `pick`) through thread record
    /// `record`: `false` when refused.
    pub fn release(&self, record: u32, seq: &std::cell::Cell<u32>) -> bool {
        let at = self.zone.attribution(record, seq);
        // SAFETY: the caller holds a reservation made by `pick` (the models release only
        // those); the host lives until this handle is dropped.
        unsafe { crate::host::Host::release_in(self.host, false, Some(&at)) }
    }
}

impl Drop for ModelHost {
    fn drop(&mut self) {
        // SAFETY: allocated by `Host::alloc_zone` for this handle alone, freed only here; no
        // pick or release runs once the model dropped it.
        drop(unsafe { Box::from_raw(self.host.as_ptr()) });
    }
}
