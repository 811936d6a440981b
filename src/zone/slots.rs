//! Host slots shared by processes: lock-free lookup, insertion, listing and reclamation
//! (docs/design-zone.md, sections 1.2, 3.1 to 3.3). Refresh path only; nothing here is on
//! the pick or release path.
//!
//! A key is `namespace NUL address` (the namespace is a pool's name on the zone). Slots form
//! one open-addressing table: key K with 64-bit FNV-1a hash `h` probes `h % hosts`, then the
//! following positions, at most `hosts` of them (its *chain*). Each slot has a **control
//! word** `kind:3 | who:14 | len:12 | tag:16 | gen:19`:
//!
//! ```text
//! FREE{0} --claim--> CLAIMING{who: claimer} --publish--> LIVE{who: listers} --last detach--> LIVE{0}
//!   ^                   |  abandon (validation,                                 | try_reclaim
//!   |                   v  sweep of a dead claimer)                             v
//!   |                TOMB{gen+1} <--------- reset state words and ring ---- RECLAIMING
//!   +-- (never again: a FREE slot ends every chain through it; a TOMB does not)
//! ```
//!
//! The key is kept in key words, each `1 << 63 | (gen mod 2^15) << 48 | 48 bits`: the hash
//! word first (the low 48 bits of `h`; the tag holds its high 16), then six key bytes a word.
//! A word of another generation is stale: it is overwritten, never trusted; a word of the
//! current generation is never overwritten. Every writer of a key word (the claimer and any
//! *helper* of the same key) first reads it, then checks that the control word is still the
//! one it is filling, then writes it by CAS against what it read, so a writer delayed across
//! a reuse of the slot cannot overwrite the new generation's words (its CAS fails, or the
//! check does).
//!
//! **One slot per key** (section 3.1). An attacher scans K's chain up to the first FREE:
//! a LIVE K gets `listers + 1`; a CLAIMING slot of K's tag and length is *helped* (its key
//! words are completed with K's); failing both, the first FREE or TOMB is claimed. Every claim
//! is then *validated* by a second scan of the chain before it is published; a validator
//! that finds K LIVE, or CLAIMING at a position earlier in the chain, abandons its own claim;
//! one that finds K CLAIMING later in the chain abandons that one. Two claims x and y of K
//! cannot both survive: both claim CASes and both validation scans are SeqCst, so in the single
//! order of SeqCst operations the later of the two claims comes before the other claimer's
//! scan reads it (no store buffering): at least one validator sees the other claim, and each
//! case leaves one claim standing; a publish and an abandon of one slot are CASes on one
//! control word, where exactly one wins.
//!
//! **Orderings.** Every *write* of a control word (claim, abandon, publish, lister changes,
//! reclaim, the TOMB store, and the FREE written at initialisation) is SeqCst. C11 would
//! accept Release or AcqRel for all but the claims (each is hidden from later scans by the
//! claim that reads it), but one rule is simpler to check, costs nothing where it runs (RMWs
//! are full barriers on x86-64 and `casal` on AArch64 either way; refresh path only), and is
//! what loom can verify: loom models a SeqCst load as an Acquire one that only never returns
//! an SC store older than another SC store (loom 0.7 README, "Unsupported features";
//! `src/rt/atomic.rs`, `match_load_to_stores`), so a non-SC write before a claim would let
//! its model read past the claim. Plain scans load Acquire (a stale read only leads to a claim
//! that validation rejects); validation scans load SeqCst. Key words are loaded with Acquire
//! and written with AcqRel CASes, so whoever publishes (a Release-or-stronger CAS) passes on
//! the key words it read to every process that reads LIVE with Acquire.
//!
//! **Progress**: lock-free. Every retry follows a CAS lost to another process's progress (or
//! a claim this attacher abandoned for one that precedes it); nobody waits for a claimer. A dead
//! claimer's slot is completed by the next attacher of its key or tombstoned by
//! [`Slots::abandon_claims_of`] (the sweep of its process, step S7).
//!
//! **Listing** (sections 3.1 step 4 and 3.2): `listers` counts processes. [`Slots::attach`]
//! adds this process once per call, so a process calls it only when it does not list the key
//! yet (its process-local lister count goes from 0 to 1, step S6), and tells its process
//! record through [`ListingJournal`] around every CAS that may list it. [`Slots::detach`]
//! removes one listing; the caller clears its bitmap bit first (over-count on death, never
//! under-count).
#![cfg_attr(not(any(test, loom)), allow(dead_code, reason = "lookup and NoJournal serve tests and models"))]

use super::ZoneCapacity;
use super::layout::{Layout, slot, word};
use crate::error::{Error, ErrorKind};
use crate::host::{GUARD, INFLIGHT_MASK};
use crate::sync::{AtomicU64, Ordering};

const KIND_SHIFT: u32 = 61;
const WHO_SHIFT: u32 = 47;
const LEN_SHIFT: u32 = 35;
/// The width of the key length field, which bounds `address_bytes`
/// ([`ZoneCapacity::MAX_ADDRESS_BYTES`]).
pub(super) const KEY_LEN_BITS: u32 = 12;
const _: () = assert!(LEN_SHIFT + KEY_LEN_BITS == WHO_SHIFT, "the key length field ends where the who field begins");
const TAG_SHIFT: u32 = 19;
/// The most listers a slot counts: every process the zone can have.
const WHO_MAX: u32 = ZoneCapacity::MAX_PROCESSES;
const _: () = assert!(WHO_MAX < 1 << (KIND_SHIFT - WHO_SHIFT), "the who field holds every process count");
const GEN_MASK: u32 = (1 << 19) - 1;
/// One lister, added to or taken from a LIVE control word.
const LISTER: u64 = 1 << WHO_SHIFT;
/// The generation bits a key word carries (`gen mod 2^15`).
const KEY_GEN_MASK: u64 = (1 << 15) - 1;
const KEY_DATA_MASK: u64 = (1 << 48) - 1;
const KEY_MARK: u64 = 1 << 63;

/// What a slot is doing (the control word's `kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Never used: ends every chain through it.
    Free,
    /// Reclaimed or abandoned: reusable, does not end a chain.
    Tomb,
    /// Claimed; its key words are being written (`who` = the claimer's process index).
    Claiming,
    /// A host (`who` = how many processes list it).
    Live,
    /// Being reset by `try_reclaim`; becomes TOMB{gen+1}.
    Reclaiming,
    /// Not a kind this layout writes (a damaged zone): never matched, never claimed.
    Unknown,
}

/// A decoded control word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Control(u64);

impl Control {
    fn new(kind: Kind, who: u32, len: u32, tag: u16, generation: u32) -> Self {
        let k = match kind {
            Kind::Free => 0,
            Kind::Tomb => 1,
            Kind::Claiming => 2,
            Kind::Live => 3,
            Kind::Reclaiming => 4,
            Kind::Unknown => 7,
        };
        debug_assert!(who <= WHO_MAX && len <= ZoneCapacity::MAX_ADDRESS_BYTES && generation <= GEN_MASK);
        Self(
            k << KIND_SHIFT
                | u64::from(who) << WHO_SHIFT
                | u64::from(len) << LEN_SHIFT
                | u64::from(tag) << TAG_SHIFT
                | u64::from(generation),
        )
    }

    pub(crate) fn kind(self) -> Kind {
        match self.0 >> KIND_SHIFT {
            0 => Kind::Free,
            1 => Kind::Tomb,
            2 => Kind::Claiming,
            3 => Kind::Live,
            4 => Kind::Reclaiming,
            _ => Kind::Unknown,
        }
    }

    /// Listers (LIVE) or the claimer's process index (CLAIMING).
    pub(crate) fn who(self) -> u32 {
        (self.0 >> WHO_SHIFT) as u32 & WHO_MAX
    }

    pub(crate) fn len(self) -> u32 {
        (self.0 >> LEN_SHIFT) as u32 & ZoneCapacity::MAX_ADDRESS_BYTES
    }

    pub(crate) fn tag(self) -> u16 {
        (self.0 >> TAG_SHIFT) as u16
    }

    pub(crate) fn generation(self) -> u32 {
        self.0 as u32 & GEN_MASK
    }

    /// Whether this slot may hold `key`: same tag and length.
    fn fits(self, key: &Key) -> bool {
        self.tag() == key.tag && self.len() == key.len
    }

    /// The TOMB that ends this generation of the slot.
    fn tomb(self) -> Self {
        Self::new(Kind::Tomb, 0, 0, 0, (self.generation() + 1) & GEN_MASK)
    }
}

/// A slot as attached: its index and the generation it was attached in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct SlotRef {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

/// A key, encoded for the zone: `namespace NUL address`, its hash, and its key-word payloads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Key {
    hash: u64,
    tag: u16,
    len: u32,
    /// The 48-bit payloads of the hash word and then of each key word.
    data: Box<[u64]>,
}

/// The key hash (for the tests too).
pub(crate) use crate::hash::fnv1a;

impl Key {
    /// The key of `address` in pool `namespace` on a zone laid out as `layout`.
    ///
    /// Errors: `InvalidArgument` for a namespace containing NUL (the key would be ambiguous);
    /// `ZoneIncompatible` for a key longer than the zone's `address_bytes`.
    pub(crate) fn new(namespace: &str, address: &str, layout: &Layout) -> Result<Self, Error> {
        if namespace.contains('\0') {
            return Err(Error::new(ErrorKind::InvalidArgument, format!("zone pool name {namespace:?} contains NUL")));
        }
        let bytes: Vec<u8> = [namespace.as_bytes(), b"\0", address.as_bytes()].concat();
        if bytes.len() > layout.caps.address_bytes as usize {
            return Err(Error::new(
                ErrorKind::ZoneIncompatible,
                format!(
                    "key {namespace:?} NUL {address:?} is {} bytes, the zone holds keys of at most {} (address_bytes)",
                    bytes.len(),
                    layout.caps.address_bytes
                ),
            ));
        }
        let hash = fnv1a(&bytes);
        let chunks = bytes.chunks(6).map(|c| c.iter().rev().fold(0u64, |w, &b| w << 8 | u64::from(b)));
        let data = std::iter::once(hash & KEY_DATA_MASK).chain(chunks).collect();
        Ok(Self { hash, tag: (hash >> 48) as u16, len: bytes.len() as u32, data })
    }

    #[cfg(test)]
    pub(crate) fn tag_for_tests(&self) -> u16 {
        self.tag
    }

    #[cfg(test)]
    pub(crate) fn hash_for_tests(&self) -> u64 {
        self.hash
    }

    /// The first position of this key's chain.
    pub(crate) fn home(&self, layout: &Layout) -> u32 {
        (self.hash % u64::from(layout.caps.hosts)) as u32
    }
}

/// A key word: payload, generation, and the mark bit that keeps it from ever being 0.
fn key_word(data: u64, generation: u32) -> u64 {
    KEY_MARK | (u64::from(generation) & KEY_GEN_MASK) << 48 | data
}

/// Whether key word `v` was written for generation `generation` (of any key).
fn of_generation(v: u64, generation: u32) -> bool {
    v & KEY_MARK != 0 && (v >> 48) & KEY_GEN_MASK == u64::from(generation) & KEY_GEN_MASK
}

/// What a process records around the CASes that change its listing of a slot (design
/// section 3.1 step 4): procs.rs (step S4) implements it on the process record, opening the
/// change word (seq, slot) before and setting the listing bitmap bit after, so a sweep of a
/// process that died between the two finds the listing in doubt instead of leaking it.
pub(crate) trait ListingJournal {
    /// Before a CAS that would make this process a lister of `slot`.
    fn opening(&self, slot: u32);
    /// After it: `listed` says whether it did (then the bitmap bit is set, after the
    /// listers increment: over-count on death, never under-count).
    fn closed(&self, slot: u32, listed: bool);
}

/// For callers without a process record (tests, models).
pub(crate) struct NoJournal;

impl ListingJournal for NoJournal {
    fn opening(&self, _: u32) {}
    fn closed(&self, _: u32, _: bool) {}
}

/// How far filling a CLAIMING slot's key words with a key got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fill {
    /// Every key word is the key's, in the claim's generation: the slot holds the key.
    Ours,
    /// A key word of the claim's generation is another key's (same tag and length).
    Other,
    /// The control word is no longer the claim that was being filled.
    Moved,
}

/// What [`Slots::try_reclaim`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reclaim {
    /// The slot is TOMB{gen+1} now, its state words and ring reset.
    Reclaimed,
    /// Not LIVE with 0 listers (listed again, not live, or another reclaimer won).
    NotIdle,
    /// Requests in flight on it (or a refused release's borrow).
    InFlight,
    /// Units or listers in doubt (section 4.4): reconcile first.
    InDoubt,
}

/// The slot region of a zone: `&[AtomicU64]` plus the layout that says where slots are.
pub(crate) struct Slots<'a> {
    words: &'a [AtomicU64],
    layout: &'a Layout,
}

impl<'a> Slots<'a> {
    pub(crate) fn new(words: &'a [AtomicU64], layout: &'a Layout) -> Self {
        debug_assert!(words.len() as u64 >= layout.total_words);
        Self { words, layout }
    }

    fn hosts(&self) -> u32 {
        self.layout.caps.hosts
    }

    fn control_word(&self, s: u32) -> &AtomicU64 {
        &self.words[self.layout.slot(s) + slot::CONTROL]
    }

    /// Key word `j` of slot `s`: 0 is the hash word, 1.. the key bytes.
    fn key_word_at(&self, s: u32, j: usize) -> &AtomicU64 {
        &self.words[self.layout.slot(s) + slot::HASH + j]
    }

    /// The slot at distance `d` along `key`'s chain.
    fn position(&self, key: &Key, d: u32) -> u32 {
        ((u64::from(key.home(self.layout)) + u64::from(d)) % u64::from(self.hosts())) as u32
    }

    /// Slot `s`'s control word, as it is now.
    pub(crate) fn control(&self, s: u32) -> Control {
        // SeqCst: a diagnostic read, ordered with every control write.
        Control(self.control_word(s).load(Ordering::SeqCst))
    }

    /// Slot `s`'s host state (`HostState.word`, `fail_next`, `picks`), as raw words.
    pub(crate) fn state_words(&self, s: u32) -> &'a [AtomicU64] {
        let base = self.layout.slot(s);
        &self.words[base + slot::STATE..base + slot::PICKS + 1]
    }

    /// Slot `s`'s failure ring (`fail_ring` words).
    pub(crate) fn ring(&self, s: u32) -> &'a [AtomicU64] {
        let at = self.layout.ring(s);
        &self.words[at..at + self.layout.caps.fail_ring as usize]
    }

    /// Whether LIVE slot `s`, read as `ctl`, holds `key` (its key words under `ctl`'s gen).
    fn holds(&self, s: u32, ctl: Control, key: &Key) -> bool {
        ctl.fits(key)
            && key.data.iter().enumerate().all(|(j, &d)| {
                // Acquire: the key words a publisher read, passed on by its publish CAS,
                // which the caller's load of `ctl` read.
                self.key_word_at(s, j).load(Ordering::Acquire) == key_word(d, ctl.generation())
            })
    }

    /// The key bytes (`namespace NUL address`) of slot `s`, read as LIVE `ctl`; `None` when a
    /// key word is not of `ctl`'s generation (the slot was reclaimed and refilled meanwhile:
    /// the caller rereads the control word to know that what it read belongs to `ctl`).
    #[cfg(not(loom))]
    pub(crate) fn key_bytes(&self, s: u32, ctl: Control) -> Option<Vec<u8>> {
        let len = ctl.len() as usize;
        let mut bytes = Vec::with_capacity(len.next_multiple_of(6));
        // Word 0 is the hash word; the bytes follow, six per word, the first in the low bits.
        for j in 1..=len.div_ceil(6) {
            // Acquire: as in `holds`, the key words passed on by the publish CAS that `ctl` read.
            let w = self.key_word_at(s, j).load(Ordering::Acquire);
            if !of_generation(w, ctl.generation()) {
                return None;
            }
            bytes.extend((0..6).map(|i| (w >> (8 * i)) as u8));
        }
        bytes.truncate(len);
        Some(bytes)
    }

    /// Whether slot `s` is LIVE now with `key` in it.
    pub(crate) fn holds_now(&self, s: u32, key: &Key) -> bool {
        let ctl = self.control(s);
        ctl.kind() == Kind::Live && self.holds(s, ctl, key)
    }

    /// The LIVE slot holding `key`, if any.
    pub(crate) fn lookup(&self, key: &Key) -> Option<SlotRef> {
        for d in 0..self.hosts() {
            let s = self.position(key, d);
            // Acquire: pairs with the publish CAS, so the key words compared are complete.
            let ctl = Control(self.control_word(s).load(Ordering::Acquire));
            match ctl.kind() {
                Kind::Free => return None,
                Kind::Live if self.holds(s, ctl, key) => {
                    return Some(SlotRef { index: s, generation: ctl.generation() });
                }
                _ => {}
            }
        }
        None
    }

    /// Completes the first `words` key words of slot `s`, claimed as `ctl`, with `key`'s (for
    /// the claimer and for helpers alike; `usize::MAX` for all of them).
    fn fill(&self, s: u32, ctl: Control, key: &Key, words: usize) -> Fill {
        let g = ctl.generation();
        for (j, &d) in key.data.iter().enumerate().take(words) {
            let w = self.key_word_at(s, j);
            let ours = key_word(d, g);
            // Acquire: a word of a newer generation carries its claim with it, so the
            // control word check below sees that claim.
            let mut v = w.load(Ordering::Acquire);
            loop {
                if of_generation(v, g) {
                    if v != ours {
                        return Fill::Other;
                    }
                    break;
                }
                // Acquire: ordered after the load of `v` above; if `v` is still this
                // generation's predecessor, the CAS below fails should anyone write the word
                // after we read it.
                if self.control_word(s).load(Ordering::Acquire) != ctl.0 {
                    return Fill::Moved;
                }
                // AcqRel: Release passes the word on to whoever publishes after reading it;
                // Acquire (also on failure) as for the load above.
                match w.compare_exchange(v, ours, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => break,
                    Err(now) => v = now,
                }
            }
        }
        Fill::Ours
    }

    /// Turns slot `s`'s claim `ctl` into TOMB{gen+1}; `false` if it is no longer that claim.
    fn abandon(&self, s: u32, ctl: Control) -> bool {
        // SeqCst: a control word write (module docs).
        self.control_word(s).compare_exchange(ctl.0, ctl.tomb().0, Ordering::SeqCst, Ordering::SeqCst).is_ok()
    }

    /// Makes process `me` a lister of `key`'s slot, creating the slot if the key has none.
    ///
    /// Call it once per process and key (section 3.2: when the process-local lister count goes
    /// from 0 to 1), with no other attach or detach of that key in this process meanwhile;
    /// `journal` hears of every CAS that may list the process.
    ///
    /// Errors: `InvalidArgument` for a process index outside the zone's `processes`;
    /// `ZoneFull` when the key has no slot and its chain has no FREE or TOMB slot.
    pub(crate) fn attach(&self, key: &Key, me: u32, journal: &dyn ListingJournal) -> Result<SlotRef, Error> {
        if me >= self.layout.caps.processes {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("process index {me} is outside the zone's {} processes", self.layout.caps.processes),
            ));
        }
        'rescan: loop {
            let mut free = None;
            let mut d = 0;
            while d < self.hosts() {
                let s = self.position(key, d);
                // Acquire: pairs with the publish CAS (key words) and the TOMB store (the reset
                // state words a claim takes over).
                let ctl = Control(self.control_word(s).load(Ordering::Acquire));
                match ctl.kind() {
                    Kind::Free => {
                        free.get_or_insert((d, ctl));
                        break;
                    }
                    Kind::Tomb => {
                        free.get_or_insert((d, ctl));
                    }
                    Kind::Live if self.holds(s, ctl, key) => match self.add_lister(s, ctl, journal)? {
                        Some(slot) => return Ok(slot),
                        // The control word changed: read this position again.
                        None => continue,
                    },
                    Kind::Claiming if ctl.fits(key) => match self.fill(s, ctl, key, usize::MAX) {
                        Fill::Ours => match self.validate_and_publish(s, d, ctl, key, journal) {
                            Some(slot) => return Ok(slot),
                            None => continue 'rescan,
                        },
                        Fill::Other => {}
                        Fill::Moved => continue,
                    },
                    _ => {}
                }
                d += 1;
            }
            let Some((d, seen)) = free else {
                // Relaxed: a statistic.
                self.words[word::FULL_REFUSALS].fetch_add(1, Ordering::Relaxed);
                return Err(Error::new(
                    ErrorKind::ZoneFull,
                    format!("zone full: no free slot for a new key among its {} host slots", self.hosts()),
                ));
            };
            let s = self.position(key, d);
            // Failure: someone else's progress; rescan.
            let Some(claim) = self.claim(s, seen, key, me) else { continue };
            match self.fill(s, claim, key, usize::MAX) {
                Fill::Ours => {
                    if let Some(slot) = self.validate_and_publish(s, d, claim, key, journal) {
                        return Ok(slot);
                    }
                }
                // A helper of a colliding key (same tag and length) wrote one of our words.
                Fill::Other => {
                    self.abandon(s, claim);
                }
                // Abandoned by a validator or a sweep, or published by a helper (the rescan
                // attaches to it).
                Fill::Moved => {}
            }
        }
    }

    /// Claims slot `s`, read as the FREE or TOMB `seen`, for `key` as process `me`.
    fn claim(&self, s: u32, seen: Control, key: &Key, me: u32) -> Option<Control> {
        let claim = Control::new(Kind::Claiming, me, key.len, key.tag, seen.generation());
        // SeqCst: the claim; with the SeqCst validation scans it makes two claims of one key
        // see each other (module docs).
        let won = self.control_word(s).compare_exchange(seen.0, claim.0, Ordering::SeqCst, Ordering::SeqCst).is_ok();
        won.then_some(claim)
    }

    /// `listers + 1` on LIVE slot `s` read as `ctl`; `None` if the control word changed.
    fn add_lister(&self, s: u32, ctl: Control, journal: &dyn ListingJournal) -> Result<Option<SlotRef>, Error> {
        if ctl.who() == WHO_MAX {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("zone slot {s} already has {WHO_MAX} listers, the most a zone has processes"),
            ));
        }
        journal.opening(s);
        // SeqCst: a control word write (module docs); against a reclaim, exactly one of the
        // two CASes on this word wins.
        let listed =
            self.control_word(s).compare_exchange(ctl.0, ctl.0 + LISTER, Ordering::SeqCst, Ordering::SeqCst).is_ok();
        journal.closed(s, listed);
        Ok(listed.then_some(SlotRef { index: s, generation: ctl.generation() }))
    }

    /// Step 3 of section 3.1 for the claim `ctl` of slot `s`, at distance `d` of `key`'s
    /// chain, whose key words all hold `key`: a SeqCst scan of the chain for another claim or
    /// slot of `key`, then the publish. `None`: the caller rescans (this claim was abandoned,
    /// or a helper published it; a rescan attaches to whichever slot now holds the key).
    fn validate_and_publish(
        &self,
        s: u32,
        d: u32,
        ctl: Control,
        key: &Key,
        journal: &dyn ListingJournal,
    ) -> Option<SlotRef> {
        let mut e = 0;
        while e < self.hosts() {
            if e == d {
                e += 1;
                continue;
            }
            let t = self.position(key, e);
            // SeqCst: the validation scan (module docs).
            let other = Control(self.control_word(t).load(Ordering::SeqCst));
            match other.kind() {
                Kind::Free => break,
                Kind::Live if self.holds(t, other, key) => {
                    self.abandon(s, ctl);
                    return None;
                }
                Kind::Claiming if other.fits(key) => match self.fill(t, other, key, usize::MAX) {
                    // An earlier claim of the key: it wins (the rescan helps it).
                    Fill::Ours if e < d => {
                        self.abandon(s, ctl);
                        return None;
                    }
                    // A later one: ours wins. If it is no longer that claim, read it again.
                    Fill::Ours => {
                        if !self.abandon(t, other) {
                            continue;
                        }
                    }
                    Fill::Other => {}
                    Fill::Moved => continue,
                },
                _ => {}
            }
            e += 1;
        }
        let live = Control::new(Kind::Live, 1, key.len, key.tag, ctl.generation());
        journal.opening(s);
        // SeqCst: a control word write (module docs); Release in it publishes the key words.
        let published =
            self.control_word(s).compare_exchange(ctl.0, live.0, Ordering::SeqCst, Ordering::SeqCst).is_ok();
        journal.closed(s, published);
        published.then_some(SlotRef { index: s, generation: ctl.generation() })
    }

    /// Removes one listing from `slot`; returns the listers left. The caller clears its
    /// listing bitmap bit first, and then tries [`Slots::try_reclaim`] when 0 are left.
    ///
    /// Errors: `InvalidArgument` if the slot is not LIVE in that generation or has no
    /// listers (a detach without its attach).
    pub(crate) fn detach(&self, slot: SlotRef) -> Result<u32, Error> {
        let w = self.control_word(slot.index);
        // Acquire: the CAS below rereads it anyway.
        let mut ctl = Control(w.load(Ordering::Acquire));
        loop {
            if ctl.kind() != Kind::Live || ctl.generation() != slot.generation || ctl.who() == 0 {
                return Err(Error::new(
                    ErrorKind::InvalidArgument,
                    format!("detach of zone slot {} generation {}, which is {ctl:?}", slot.index, slot.generation),
                ));
            }
            // SeqCst: a control word write (module docs). Failure: another process attached
            // or detached; try again on what it left.
            match w.compare_exchange(ctl.0, ctl.0 - LISTER, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => return Ok(ctl.who() - 1),
                Err(now) => ctl = Control(now),
            }
        }
    }

    /// Reclaims slot `s` if it is LIVE with no listers, nothing in flight and nothing in doubt
    /// (section 3.3): its state words and ring are reset and it becomes TOMB{gen+1}.
    ///
    /// Listers 0 means every process detached, and a process detaches only with nothing in
    /// flight on the slot and no snapshot listing it, so no pick can start on it; an attach
    /// racing this wins or loses on the same control word. The checks come before the CAS
    /// only: a RECLAIMING slot cannot go back to LIVE (an attacher that skipped it may have
    /// claimed the key elsewhere meanwhile), so the CAS is the commitment.
    pub(crate) fn try_reclaim(&self, s: u32) -> Reclaim {
        let w = self.control_word(s);
        // SeqCst: as every control word access here; the CAS below decides.
        let ctl = Control(w.load(Ordering::SeqCst));
        if ctl.kind() != Kind::Live || ctl.who() != 0 {
            return Reclaim::NotIdle;
        }
        let base = self.layout.slot(s);
        // Acquire: a sweep's doubt changes are RMWs made before its listers decrement.
        if self.words[base + slot::DOUBT].load(Ordering::Acquire) != 0 {
            return Reclaim::InDoubt;
        }
        // Acquire: the last release's add is ordered before the detach that made listers 0.
        if self.words[base + slot::STATE].load(Ordering::Acquire) & (GUARD | INFLIGHT_MASK) != GUARD {
            return Reclaim::InFlight;
        }
        let reclaiming = Control::new(Kind::Reclaiming, 0, 0, 0, ctl.generation());
        // SeqCst: a control word write (module docs).
        if w.compare_exchange(ctl.0, reclaiming.0, Ordering::SeqCst, Ordering::SeqCst).is_err() {
            return Reclaim::NotIdle;
        }
        // Relaxed (all the resets): published by the TOMB store below, which the next claim
        // reads.
        self.words[base + slot::STATE].store(GUARD, Ordering::Relaxed);
        self.words[base + slot::FAIL_NEXT].store(0, Ordering::Relaxed);
        self.words[base + slot::PICKS].store(0, Ordering::Relaxed);
        for r in self.ring(s) {
            r.store(0, Ordering::Relaxed);
        }
        // SeqCst: a control word write (module docs); Release in it publishes the reset.
        w.store(ctl.tomb().0, Ordering::SeqCst);
        Reclaim::Reclaimed
    }

    /// Sets the listers of LIVE slot `s`, read as `seen`, to `listers` (a reconcile of
    /// listers in doubt, src/zone/sweep.rs); `false` if the control word changed meanwhile.
    pub(crate) fn set_listers(&self, s: u32, seen: Control, listers: u32) -> bool {
        if seen.kind() != Kind::Live || listers > WHO_MAX {
            return false;
        }
        let now = Control::new(Kind::Live, listers, seen.len(), seen.tag(), seen.generation());
        // SeqCst: a control word write (module docs); against an attach, detach or reclaim,
        // exactly one CAS on this word wins.
        self.control_word(s).compare_exchange(seen.0, now.0, Ordering::SeqCst, Ordering::SeqCst).is_ok()
    }

    /// Tombstones every slot that process `who` claimed and never published (it died between
    /// its claim and its publish): the sweep's step for slots (section 4.3, step 3). A helper
    /// completing such a slot at the same time fails its publish and rescans. Returns how many.
    pub(crate) fn abandon_claims_of(&self, who: u32) -> u32 {
        let mut abandoned = 0;
        for s in 0..self.hosts() {
            let ctl = self.control(s);
            if ctl.kind() == Kind::Claiming && ctl.who() == who && self.abandon(s, ctl) {
                abandoned += 1;
            }
        }
        abandoned
    }

    /// Claims a slot for `key` as process `me` and writes its first `words` key words (the
    /// hash word counts as one), then stops, as a claimer that dies there does (loom model Z3).
    /// Returns the slot, `None` if the key's chain has no FREE or TOMB slot.
    #[cfg(any(test, loom))]
    pub(crate) fn claim_and_stop(&self, key: &Key, me: u32, words: usize) -> Option<u32> {
        for d in 0..self.hosts() {
            let s = self.position(key, d);
            let seen = self.control(s);
            if matches!(seen.kind(), Kind::Free | Kind::Tomb) {
                let claim = self.claim(s, seen, key, me)?;
                let filled = self.fill(s, claim, key, words);
                debug_assert_eq!(filled, Fill::Ours, "a claim nobody else touches");
                return Some(s);
            }
        }
        None
    }
}
