//! Where everything lives in a zone: capacities, region offsets, the header, and the
//! initialisation and validation of the header.
//!
//! A zone is an array of `AtomicU64` words (docs/design-zone.md, section 1.2); every region
//! starts on a 128-byte (16-word) boundary, and the header records the capacities and region
//! offsets so that a process attaching to a zone made by another one validates them instead
//! of trusting its own arithmetic. Every word is only ever accessed atomically, also during
//! initialisation, so memory shared with other processes (or checked by Miri) never sees a
//! plain access race with an atomic one.

// Under loom the header is only written (a model zone is made, never attached or validated).
#![cfg_attr(loom, allow(dead_code))]

use crate::error::{Error, ErrorKind};
use crate::host::GUARD;
use crate::pool::MAX_FAILS_LIMIT;
use crate::sync::{AtomicU64, Ordering};

/// Words per 128-byte block: the alignment of every region (crossbeam's `CachePadded` size on
/// x86-64, where the adjacent-line prefetcher pulls pairs of 64-byte lines).
const BLOCK_WORDS: u64 = 16;
/// The header's size in words (256 bytes).
pub(crate) const HEADER_WORDS: usize = 32;
/// The header's size in bytes: the least memory in which a zone can say what it is.
pub(crate) const HEADER_BYTES: usize = HEADER_WORDS * 8;

/// Word 0: the bytes `LCZONE\0\x01` in memory order, whatever the byte order.
pub(crate) const MAGIC: u64 = u64::from_ne_bytes(*b"LCZONE\0\x01");
/// The layout this library reads and writes (word 1, low half).
pub(crate) const LAYOUT_VERSION: u32 = 1;
/// Word 1, high half: reads back as another number under another byte order.
const PROBE: u32 = 0x0102_0304;

/// Header word indices (section 1.2 of the design).
pub(crate) mod word {
    pub(crate) const MAGIC: usize = 0;
    pub(crate) const VERSION: usize = 1;
    pub(crate) const INIT_STATE: usize = 2;
    pub(crate) const TOTAL_BYTES: usize = 3;
    /// Five words: hosts, address_bytes, fail_ring, processes, threads.
    pub(crate) const CAPACITIES: usize = 4;
    pub(crate) const CREATION_ID: usize = 9;
    pub(crate) const CLOCK_BASE: usize = 10;
    /// Two words: the kernel's boot id, 0 where it could not be read.
    pub(crate) const BOOT_ID: usize = 11;
    /// Five words: slot stride, then the slots, processes, threads and matrix offsets.
    pub(crate) const OFFSETS: usize = 13;
    /// Dead process records swept, ever (src/zone/sweep.rs).
    pub(crate) const SWEEPS: usize = 18;
    /// In-flight units a sweep subtracted, ever.
    pub(crate) const RECOVERED: usize = 19;
    /// Units in doubt now, over all slots (a statistic: the slots' doubt words decide).
    pub(crate) const IN_DOUBT: usize = 20;
    /// Slots a reconcile made exact, ever.
    pub(crate) const RECONCILES: usize = 21;
    /// Attaches refused because no slot was free (`ZoneFull`), ever.
    pub(crate) const FULL_REFUSALS: usize = 22;
}

/// Word indices inside a slot, from its base (section 1.2 of the design): the host state on
/// the first 128-byte line (alone, as the contended line of a heap host is), then the slot's
/// own words, the key and the failure ring.
pub(crate) mod slot {
    /// `HostState.word`: in-flight, flags and completed count (src/host.rs).
    pub(crate) const STATE: usize = 0;
    /// `HostState.fail_next`: the failure ticket.
    pub(crate) const FAIL_NEXT: usize = 1;
    /// `HostState.picks`: the folded picks total.
    pub(crate) const PICKS: usize = 2;
    /// The control word (src/zone/slots.rs).
    pub(crate) const CONTROL: usize = 16;
    /// Units in doubt (design section 4.4).
    pub(crate) const DOUBT: usize = 17;
    /// The hash word, then the key words: all written as key words (src/zone/slots.rs).
    pub(crate) const HASH: usize = 18;
    /// The first key word.
    pub(crate) const KEY: usize = 19;
}

/// Init-state word values: 0 (never touched), INITIALISING with the initialiser's pid, READY.
pub(crate) const UNINIT: u64 = 0;
pub(crate) const READY: u64 = 2;

pub(crate) const fn initialising(pid: u32) -> u64 {
    (pid as u64) << 2 | 1
}

/// The pid of an INITIALISING state word, `None` for any other value.
pub(crate) const fn initialiser(state: u64) -> Option<u32> {
    if state & 3 == 1 && state >> 2 <= u32::MAX as u64 { Some((state >> 2) as u32) } else { None }
}

/// How much a zone holds; fixed when the zone is created.
///
/// The size of a zone follows from these numbers alone ([`Zone::size_for`](super::Zone::size_for)).
/// Every process that attaches with capacities must ask for exactly the zone's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ZoneCapacity {
    /// Host slots (addresses listed at once, over every pool on the zone; size it at twice
    /// that, as lookups never shorten). 1 to 2^30 - 1.
    pub hosts: u32,
    /// Longest key: a pool's name on the zone, a NUL, and an address. 1 to 4095.
    pub address_bytes: u32,
    /// Failure timestamps kept per host: the largest `max_fails` a pool on the zone may use.
    /// 1 to [`MAX_FAILS_LIMIT`](crate::MAX_FAILS_LIMIT).
    pub fail_ring: u32,
    /// Processes attached at once. 1 to 16383.
    pub processes: u32,
    /// Threads (and `Picker`s) picking at once, over all processes. 1 to 2^31 - 1.
    pub threads: u32,
}

/// `hosts 1024, address_bytes 256, fail_ring 16, processes 64, threads 256`: the field names
/// and values, as the errors about capacities name them.
impl std::fmt::Display for ZoneCapacity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (name, value)) in Self::FIELDS.iter().zip(self.as_array()).enumerate() {
            write!(f, "{}{name} {value}", if i == 0 { "" } else { ", " })?;
        }
        Ok(())
    }
}

impl Default for ZoneCapacity {
    /// 1024 hosts, 256 address bytes, a failure ring of 16, 64 processes, 256 threads.
    fn default() -> Self {
        Self { hosts: 1024, address_bytes: 256, fail_ring: 16, processes: 64, threads: 256 }
    }
}

impl ZoneCapacity {
    const FIELDS: [&'static str; 5] = ["hosts", "address_bytes", "fail_ring", "processes", "threads"];

    fn as_array(&self) -> [u32; 5] {
        [self.hosts, self.address_bytes, self.fail_ring, self.processes, self.threads]
    }

    /// The most host slots a zone can have.
    pub(crate) const MAX_HOSTS: u32 = (1 << 30) - 1;

    /// The longest key a zone can hold (`address_bytes`): what a slot's control word has
    /// room to say of a key's length (src/zone/slots.rs).
    pub(crate) const MAX_ADDRESS_BYTES: u32 = (1 << super::slots::KEY_LEN_BITS) - 1;

    /// The most processes a zone can have: what a process record's sweeper field (a process
    /// index, src/zone/procs.rs) has room for; a slot's lister count holds as many.
    pub(crate) const MAX_PROCESSES: u32 = (1 << super::procs::SWEEPER_BITS) - 1;

    fn check(&self) -> Result<(), Error> {
        let limits = [Self::MAX_HOSTS, Self::MAX_ADDRESS_BYTES, MAX_FAILS_LIMIT, Self::MAX_PROCESSES, (1 << 31) - 1];
        for ((name, value), max) in Self::FIELDS.iter().zip(self.as_array()).zip(limits) {
            if value == 0 || value > max {
                return Err(Error::new(
                    ErrorKind::InvalidLimit,
                    format!("zone capacity {name} {value} is outside 1..={max}"),
                ));
            }
        }
        Ok(())
    }
}

const fn round_up(words: u64) -> u64 {
    words.div_ceil(BLOCK_WORDS) * BLOCK_WORDS
}

/// The word offsets of a zone's regions, computed from its capacities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) caps: ZoneCapacity,
    /// Words per slot: `round16(16 + 3 + key_words + fail_ring)`.
    pub(crate) slot_stride: u64,
    pub(crate) slots: u64,
    /// Words per process record: `round16(8 + ceil(hosts / 64))` (the listing bitmap).
    pub(crate) process_stride: u64,
    pub(crate) processes: u64,
    /// Thread records, 16 words each.
    pub(crate) threads: u64,
    /// The attribution matrix: one row of `round16(hosts)` words per thread record.
    pub(crate) matrix: u64,
    pub(crate) total_words: u64,
}

impl Layout {
    /// The layout for `caps`: `InvalidLimit` for a capacity out of range or a zone whose size
    /// does not fit in this process's address space.
    pub(crate) fn new(caps: &ZoneCapacity) -> Result<Self, Error> {
        caps.check()?;
        let too_big = || Error::new(ErrorKind::InvalidLimit, format!("a zone of {caps} would not fit in memory"));
        let [hosts, address_bytes, fail_ring, processes, threads] = caps.as_array().map(u64::from);
        let key_words = address_bytes.div_ceil(6);
        let slot_stride = round_up(16 + 3 + key_words + fail_ring);
        let process_stride = round_up(8 + hosts.div_ceil(64));
        let slots = HEADER_WORDS as u64;
        let after = |start: u64, count: u64, stride: u64| count.checked_mul(stride)?.checked_add(start);
        let processes_at = after(slots, hosts, slot_stride).ok_or_else(too_big)?;
        let threads_at = after(processes_at, processes, process_stride).ok_or_else(too_big)?;
        let matrix = after(threads_at, threads, BLOCK_WORDS).ok_or_else(too_big)?;
        let total_words = after(matrix, threads, round_up(hosts)).ok_or_else(too_big)?;
        let layout = Self {
            caps: *caps,
            slot_stride,
            slots,
            process_stride,
            processes: processes_at,
            threads: threads_at,
            matrix,
            total_words,
        };
        match total_words.checked_mul(8).and_then(|b| usize::try_from(b).ok()).filter(|&b| b <= isize::MAX as usize) {
            Some(_) => Ok(layout),
            None => Err(too_big()),
        }
    }

    /// The zone's size in bytes (checked to fit in `usize` by [`Layout::new`]).
    pub(crate) fn bytes(&self) -> usize {
        (self.total_words * 8) as usize
    }

    /// Key words per slot: `ceil(address_bytes / 6)`, six key bytes a word.
    pub(crate) fn key_words(&self) -> usize {
        self.caps.address_bytes.div_ceil(6) as usize
    }

    /// The index of slot `s`'s first word (`s < hosts`).
    pub(crate) fn slot(&self, s: u32) -> usize {
        debug_assert!(s < self.caps.hosts);
        (self.slots + u64::from(s) * self.slot_stride) as usize
    }

    /// The index of slot `s`'s failure ring (`fail_ring` words), right after its key words.
    pub(crate) fn ring(&self, s: u32) -> usize {
        self.slot(s) + slot::KEY + self.key_words()
    }

    fn offsets(&self) -> [u64; 5] {
        [self.slot_stride, self.slots, self.processes, self.threads, self.matrix]
    }
}

/// What a process writes into a new zone's header besides its layout.
pub(crate) struct Identity {
    pub(crate) creation_id: u64,
    pub(crate) clock_base: u64,
    pub(crate) boot_id: [u64; 2],
}

/// Writes a complete zone into `words`, whose init-state word this process owns (it moved it
/// to INITIALISING): every word outside the header to 0 except each slot's state word, which
/// starts as a new host's (`GUARD`: a FREE slot holds the state a claim publishes), then the
/// header, then READY.
///
/// Idempotent, so a process that took over from a dead initialiser simply runs it again.
pub(crate) fn initialise(words: &[AtomicU64], layout: &Layout, id: &Identity) {
    debug_assert!(words.len() as u64 >= layout.total_words);
    for w in &words[HEADER_WORDS..layout.total_words as usize] {
        // Relaxed: published by the Release store of READY below.
        w.store(0, Ordering::Relaxed);
    }
    for s in 0..layout.caps.hosts {
        let base = layout.slot(s);
        // Relaxed: published by the Release store of READY below.
        words[base + slot::STATE].store(GUARD, Ordering::Relaxed);
        // SeqCst: every write of a control word is SeqCst (src/zone/slots.rs), this first
        // FREE included, so the claim order argument has no exception (and loom, which lets
        // an SC load return a non-SC store older than an SC one, checks the same code).
        words[base + slot::CONTROL].store(0, Ordering::SeqCst);
    }
    let mut header = [0u64; HEADER_WORDS];
    header[word::MAGIC] = MAGIC;
    header[word::VERSION] = u64::from(PROBE) << 32 | u64::from(LAYOUT_VERSION);
    header[word::TOTAL_BYTES] = layout.total_words * 8;
    for (i, c) in layout.caps.as_array().into_iter().enumerate() {
        header[word::CAPACITIES + i] = u64::from(c);
    }
    header[word::CREATION_ID] = id.creation_id;
    header[word::CLOCK_BASE] = id.clock_base;
    header[word::BOOT_ID..word::BOOT_ID + 2].copy_from_slice(&id.boot_id);
    header[word::OFFSETS..word::OFFSETS + 5].copy_from_slice(&layout.offsets());
    for (i, (w, v)) in words.iter().zip(header).enumerate() {
        if i != word::INIT_STATE {
            // Relaxed: published by the Release store of READY below.
            w.store(v, Ordering::Relaxed);
        }
    }
    // Release: whoever reads READY with Acquire sees every word written above.
    words[word::INIT_STATE].store(READY, Ordering::Release);
}

fn incompatible(message: String) -> Error {
    Error::new(ErrorKind::ZoneIncompatible, message)
}

/// Reads and checks the header of a zone in `words` that must be READY: magic, version and
/// byte order, size against the memory's, the capacities (against `expected` when given) and
/// the offsets they imply, and the boot id when `boot_id` is given. `bytes` is the memory's
/// length, which `words` covers but for the bytes after its last whole word.
pub(crate) fn validate(
    words: &[AtomicU64],
    bytes: usize,
    expected: Option<&ZoneCapacity>,
    boot_id: Option<[u64; 2]>,
) -> Result<Layout, Error> {
    if words.len() < HEADER_WORDS {
        return Err(Error::new(
            ErrorKind::ZoneTooSmall,
            format!("{bytes} bytes cannot hold a zone header ({HEADER_BYTES} bytes)"),
        ));
    }
    // Acquire: pairs with the initialiser's Release store of READY, so the header read
    // below is the complete one.
    let state = words[word::INIT_STATE].load(Ordering::Acquire);
    // Relaxed: ordered after the Acquire load above; before READY they are only read to
    // name what is wrong.
    let read = |i: usize| words[i].load(Ordering::Relaxed);
    if let Some(pid) = initialiser(state) {
        return Err(incompatible(format!("zone not ready: its initialisation by pid {pid} did not finish")));
    }
    let magic = read(word::MAGIC);
    if magic != MAGIC {
        return Err(incompatible(format!(
            "not a leastconn zone: magic {:?}, expected {:?}",
            magic.to_ne_bytes(),
            MAGIC.to_ne_bytes()
        )));
    }
    let version = read(word::VERSION);
    if (version >> 32) as u32 != PROBE {
        return Err(incompatible(format!(
            "zone made with another byte order or word width (probe {version:#018x}, expected {PROBE:#010x} in the high half)"
        )));
    }
    if version as u32 != LAYOUT_VERSION {
        return Err(incompatible(format!(
            "zone layout version {}, this library reads version {LAYOUT_VERSION}",
            version as u32
        )));
    }
    if state != READY {
        return Err(incompatible(format!("zone not ready: init state {state:#x}")));
    }
    let mut caps = [0u32; 5];
    for (i, c) in caps.iter_mut().enumerate() {
        *c = u32::try_from(read(word::CAPACITIES + i))
            .map_err(|_| incompatible(format!("zone capacity {} out of range", ZoneCapacity::FIELDS[i])))?;
    }
    let [hosts, address_bytes, fail_ring, processes, threads] = caps;
    let caps = ZoneCapacity { hosts, address_bytes, fail_ring, processes, threads };
    if let Some(asked) = expected {
        let differ: Vec<String> = ZoneCapacity::FIELDS
            .iter()
            .zip(caps.as_array().into_iter().zip(asked.as_array()))
            .filter(|(_, (have, want))| have != want)
            .map(|(name, (have, want))| format!("{name} {have} in the zone, {want} asked"))
            .collect();
        if !differ.is_empty() {
            return Err(incompatible(format!("zone capacities differ: {}", differ.join(", "))));
        }
    }
    let layout = Layout::new(&caps).map_err(|e| incompatible(format!("zone header: {}", e.message())))?;
    let total = read(word::TOTAL_BYTES);
    let stored: Vec<u64> = (0..5).map(|i| read(word::OFFSETS + i)).collect();
    if total != layout.total_words * 8 || stored != layout.offsets() {
        return Err(incompatible(format!(
            "zone header inconsistent: {total} bytes and offsets {stored:?}, its capacities give {} bytes and {:?}",
            layout.total_words * 8,
            layout.offsets()
        )));
    }
    if (words.len() as u64) < layout.total_words {
        return Err(Error::new(ErrorKind::ZoneTooSmall, format!("zone needs {total} bytes, the memory has {bytes}")));
    }
    if let Some(ours) = boot_id {
        let theirs = [read(word::BOOT_ID), read(word::BOOT_ID + 1)];
        if theirs != ours {
            return Err(incompatible(format!(
                "zone made during another boot (boot id {:016x}{:016x}, this boot {:016x}{:016x}): its clock and pids mean nothing now",
                theirs[0], theirs[1], ours[0], ours[1]
            )));
        }
    }
    Ok(layout)
}
