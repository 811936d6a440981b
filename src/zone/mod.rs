//! Shared zones: host state in memory that several processes map (issue 11).
//!
//! A zone is a fixed-capacity array of 64-bit atomic words laid out with offsets only (no
//! pointers inside), so that every process can map it at any address: a 256-byte header
//! (magic, layout version, byte-order probe, init state, size, capacities, creation id, clock
//! base, boot id, region offsets, counters), then the host slots, the process table, the thread
//! records and the attribution matrix (docs/design-zone.md, section 1.2).
//!
//! This module holds what exists so far: the capacities and the size they imply, the header
//! and its validation, the three ways to get the memory ([`Zone::anonymous`],
//! [`Zone::open`], [`Zone::from_memory`]), and the host slots shared by processes (`slots`:
//! lookup, insertion, listing, reclamation), the process and thread records (`procs`), the
//! crash sweep (`sweep`), and what pools on a zone keep per process (`pools`: registration,
//! lister counts, attribution on the hot path; [`Builder::zone`](crate::Builder::zone)).
//!
//! Under loom the memory is a boxed slice of loom atomics (`model`), and the operating
//! system backings (memfd, files, caller memory) are left out.

#[cfg(any(feature = "crash-points", loom))]
pub mod crash;
mod layout;
mod liveness;
#[cfg(not(loom))]
mod memory;
#[cfg(loom)]
mod model;
#[cfg(all(test, not(loom)))]
mod pool_tests;
mod pools;
mod procs;
#[cfg(test)]
mod slot_tests;
mod slots;
#[cfg(not(loom))]
mod stats;
mod sweep;
#[cfg(test)]
mod tests;

#[cfg(not(loom))]
use std::path::Path;
#[cfg(not(loom))]
use std::ptr::NonNull;

pub use layout::ZoneCapacity;
use layout::{Layout, word};
#[cfg(not(loom))]
use memory::Backing;
#[cfg(not(loom))]
pub use memory::ZoneInit;
#[cfg(loom)]
use model::Backing;
#[cfg(loom)]
pub use model::{ModelHost, SlotView};
#[cfg(not(loom))]
pub use stats::{ZoneHost, ZoneProcess, ZoneStats};
pub use sweep::{SweepReport, ZoneCensus};

use crate::error::{Error, ErrorKind};
use crate::sync::{Arc, Ordering};

/// A shared zone: memory laid out for host state that several processes share.
///
/// Pools keep their host state in a zone with [`Builder::zone`](crate::Builder::zone). Keep
/// a zone handle alive while its pools live; a thread that used a zone pool keeps the mapping
/// until it exits (its cached thread record holds it). Cloning is cheap and refers to the same memory; the mapping (or the borrow of
/// the caller's memory) ends when the last clone is dropped.
///
/// Zones exist on Linux only.
///
/// ```
/// use leastconn::{Zone, ZoneCapacity};
/// # if cfg!(miri) { return Ok(()); } // Miri has no memfd_create
///
/// let caps = ZoneCapacity { hosts: 64, ..ZoneCapacity::default() };
/// let zone = Zone::anonymous(&caps)?; // before fork(): children share it
/// assert_eq!(zone.capacity(), caps);
/// assert_eq!(zone.size(), Zone::size_for(&caps)?);
/// # Ok::<(), leastconn::Error>(())
/// ```
#[derive(Clone)]
pub struct Zone(Arc<ZoneInner>);

pub(crate) struct ZoneInner {
    backing: Backing,
    layout: Layout,
    /// What pools of this process keep about the zone (registration, listers, records).
    pools: pools::ZoneLocal,
    /// Itself, for the thread-record cache (which holds the zone alive).
    #[cfg(not(loom))]
    me: std::sync::Weak<ZoneInner>,
}

impl Drop for ZoneInner {
    /// The process's last use of this attachment ended: its registration ends (design 4.1).
    fn drop(&mut self) {
        self.end_registration();
    }
}

pub(crate) use pools::{Attribution, PickerRecord, warm_up_thread, with_thread_attribution};
pub(crate) use procs::window;
pub(crate) use slots::SlotRef;

/// The zone files this process has open (`Zone::open`), by (device, inode): a second open of
/// one file returns the same attachment. Entries of dropped zones are pruned at each open.
#[cfg(not(loom))]
static OPENED: std::sync::Mutex<Vec<(FileId, std::sync::Weak<ZoneInner>)>> = std::sync::Mutex::new(Vec::new());

/// A file's (device, inode).
#[cfg(not(loom))]
type FileId = (u64, u64);

/// The (device, inode) of the file at `path`, if it can be read.
#[cfg(not(loom))]
fn file_id(path: &Path) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

impl Zone {
    fn new((backing, layout): (Backing, Layout)) -> Self {
        #[cfg(not(loom))]
        return Zone(Arc::new_cyclic(|me| ZoneInner { backing, layout, pools: Default::default(), me: me.clone() }));
        #[cfg(loom)]
        Zone(Arc::new(ZoneInner { backing, layout, pools: Default::default() }))
    }

    /// The process-local zone this handle refers to.
    pub(crate) fn inner(&self) -> &Arc<ZoneInner> {
        &self.0
    }

    /// The size in bytes of a zone with capacities `caps`.
    ///
    /// Errors: `InvalidLimit` for a capacity out of range (see [`ZoneCapacity`]) or a size
    /// that does not fit in memory.
    pub fn size_for(caps: &ZoneCapacity) -> Result<usize, Error> {
        Ok(Layout::new(caps)?.bytes())
    }

    /// `caps` with the most `hosts` whose zone fits in `bytes` (`caps.hosts` is ignored): how
    /// to size a zone for memory of a given size, such as nginx's `zone NAME SIZE;`.
    ///
    /// Errors: `InvalidLimit` for another capacity out of range; `ZoneTooSmall` when not even
    /// one host fits.
    ///
    /// ```
    /// use leastconn::{Zone, ZoneCapacity};
    ///
    /// let caps = Zone::capacity_fit(1 << 20, &ZoneCapacity { hosts: 0, ..ZoneCapacity::default() })?;
    /// assert!(Zone::size_for(&caps)? <= 1 << 20);
    /// assert!(Zone::size_for(&ZoneCapacity { hosts: caps.hosts + 1, ..caps })? > 1 << 20);
    /// # Ok::<(), leastconn::Error>(())
    /// ```
    pub fn capacity_fit(bytes: usize, caps: &ZoneCapacity) -> Result<ZoneCapacity, Error> {
        let with = |hosts| ZoneCapacity { hosts, ..*caps };
        let least = Layout::new(&with(1))?.bytes();
        if least > bytes {
            return Err(Error::new(
                ErrorKind::ZoneTooSmall,
                format!(
                    "{bytes} bytes cannot hold a zone of even 1 host with address_bytes {}, fail_ring {}, processes {}, threads {} ({least} bytes)",
                    caps.address_bytes, caps.fail_ring, caps.processes, caps.threads
                ),
            ));
        }
        // Every host adds a slot, so the size grows with `hosts`: bisect for the largest that
        // fits (a zone too big for the address space fits nothing).
        let fits = |hosts| Layout::new(&with(hosts)).is_ok_and(|l| l.bytes() <= bytes);
        let (mut fitting, mut over) = (1, ZoneCapacity::MAX_HOSTS + 1);
        while over - fitting > 1 {
            let mid = fitting + (over - fitting) / 2;
            if fits(mid) { fitting = mid } else { over = mid }
        }
        Ok(with(fitting))
    }

    #[cfg(not(loom))]
    /// A new zone in anonymous shared memory: processes forked after this call share it.
    ///
    /// Errors: `InvalidLimit` for invalid capacities, `Os` if the memory cannot be had.
    pub fn anonymous(caps: &ZoneCapacity) -> Result<Zone, Error> {
        memory::anonymous(caps).map(Zone::new)
    }

    #[cfg(not(loom))]
    /// The zone in the file at `path`, created with `caps` if there is none (mode 0600).
    ///
    /// Unrelated processes that open one path share one zone; when several create it at once,
    /// one file wins and all of them use it (it is initialised under a temporary name in the
    /// same directory and published by `link(2)`). Put zone files on a tmpfs such as
    /// `/dev/shm`: a zone file from an earlier boot is refused.
    ///
    /// Within one process, opening a file that a live `Zone` of this process already has open
    /// (the same file: device and inode) returns a handle to that zone, not a second mapping,
    /// so the process registers in the zone once (design 2.2).
    ///
    /// Errors: `InvalidLimit` for invalid capacities; `ZoneIncompatible` for a file that is not
    /// a zone, was made by another layout or boot, or has other capacities (the message names
    /// what differs); `ZoneTooSmall` for a file shorter than its zone; `Os` for I/O failures.
    pub fn open(path: impl AsRef<Path>, caps: &ZoneCapacity) -> Result<Zone, Error> {
        let path = path.as_ref();
        let mut opened = OPENED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        opened.retain(|(_, zone)| zone.strong_count() > 0);
        if let Some(id) = file_id(path) {
            if let Some(inner) = opened.iter().filter(|(k, _)| *k == id).find_map(|(_, zone)| zone.upgrade()) {
                if inner.layout.caps != *caps {
                    return Err(Error::new(
                        ErrorKind::ZoneIncompatible,
                        format!(
                            "zone file {} is open in this process with capacities {:?}, not {caps:?}",
                            path.display(),
                            inner.layout.caps
                        ),
                    ));
                }
                return Ok(Zone(inner));
            }
        }
        let zone = memory::open(path, caps).map(Zone::new)?;
        // The file as it is now: one replaced since it was mapped only misses the table.
        if let Some(id) = file_id(path) {
            opened.push((id, Arc::downgrade(&zone.0)));
        }
        Ok(zone)
    }

    #[cfg(not(loom))]
    /// A zone in memory that the caller owns (for example nginx's shared memory), made or
    /// attached as `init` says.
    ///
    /// Errors: `InvalidArgument` for memory that is not 8-byte aligned; `InvalidLimit` for
    /// invalid capacities; `ZoneTooSmall` if `len` is below the zone's size; `ZoneIncompatible`
    /// for memory that holds no ready zone of this layout and these capacities (or, for
    /// `Create`, memory that is not fresh); `ZoneBusy` when `CreateOrAttach` finds another live
    /// process initialising the zone for about a second.
    ///
    /// # Safety
    /// `mem` must be valid for reads and writes of `len` bytes for as long as the returned
    /// zone or any clone of it lives, and nothing may access that memory except through this
    /// library (in this or another process) in the meantime.
    pub unsafe fn from_memory(mem: NonNull<u8>, len: usize, init: ZoneInit) -> Result<Zone, Error> {
        // SAFETY: the caller keeps `from_memory`'s contract, which is `borrowed`'s.
        unsafe { memory::borrowed(mem, len, init, &liveness::pid_alive, memory::INIT_PATIENCE) }.map(Zone::new)
    }

    /// The capacities the zone was made with.
    pub fn capacity(&self) -> ZoneCapacity {
        self.0.layout.caps
    }

    /// The zone's size in bytes (the memory it uses, which may be less than was offered).
    pub fn size(&self) -> usize {
        self.0.layout.bytes()
    }

    /// A number that identifies this zone's creation: equal in every process attached to the
    /// same zone, different for a zone made again in the same memory.
    pub fn creation_id(&self) -> u64 {
        // Relaxed: written before READY, which this zone's validation read with Acquire.
        self.0.backing.words()[word::CREATION_ID].load(Ordering::Relaxed)
    }
}

impl Zone {
    /// The zone's host slots.
    #[cfg_attr(not(any(test, loom)), allow(dead_code))]
    pub(crate) fn slots(&self) -> slots::Slots<'_> {
        self.0.slots()
    }
}

impl ZoneInner {
    /// The zone's host slots.
    pub(crate) fn slots(&self) -> slots::Slots<'_> {
        slots::Slots::new(self.backing.words(), &self.layout)
    }
}

impl std::fmt::Debug for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Zone")
            .field("capacity", &self.capacity())
            .field("size", &self.size())
            .field("creation_id", &format_args!("{:#018x}", self.creation_id()))
            .finish()
    }
}
