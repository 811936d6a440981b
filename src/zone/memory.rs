//! The memory under a zone: an anonymous shared mapping, a file mapped by path, or memory the
//! host program owns; and the init-state protocol that makes exactly one process initialise it.
//!
//! Whatever the backing, the rest of the crate sees `&[AtomicU64]`: the memory is 8-aligned,
//! lives as long as the [`Backing`], and every word of it is only accessed atomically (by this
//! process and by any other that maps it), so a shared slice of atomics is a sound view.
//!
//! * **Anonymous**: memmap2's `map_anon` maps `MAP_PRIVATE | MAP_ANON` (memmap2 0.9.12,
//!   `src/unix.rs`, `MmapInner::map_anon`), which a forked child would get copy-on-write. So
//!   the zone is a `memfd` mapped with `map_raw` (`MmapInner::map_mut`: `MAP_SHARED`); the
//!   descriptor is closed at once, the mapping keeps the memory, and `fork` shares it.
//! * **File by path**: a new zone is initialised under a temporary name in the same
//!   directory and published by `link(2)` (`std::fs::hard_link`), which fails with `EEXIST`
//!   if another process published first; so a file at the path is always complete and no
//!   opener waits.
//! * **Caller memory** (nginx's shared memory): the init-state word decides. `Create` moves it
//!   from UNINIT to INITIALISING(pid) by CAS, writes every word and stores READY; `Attach`
//!   validates; `CreateOrAttach` does whichever applies, waits a bounded time for a live
//!   initialiser, and takes over from a dead one.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::FromRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use memmap2::{MmapOptions, MmapRaw};

use super::layout::{self, Identity, Layout, UNINIT, ZoneCapacity, initialiser, initialising};
use crate::error::{Error, ErrorKind};
use crate::sync::{AtomicU64, Ordering};

/// How to take memory the caller owns as a zone (see [`Zone::from_memory`](super::Zone::from_memory)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZoneInit {
    /// Make a new zone: the memory's init-state word (bytes 16 to 23) must be 0, as in fresh
    /// shared memory; every other byte is overwritten.
    Create(ZoneCapacity),
    /// Use the zone already in the memory, with whatever capacities it was made with.
    Attach,
    /// For unrelated processes that may start at the same time: create the zone if nobody
    /// has, else attach to it (its capacities must be these). A process that finds another
    /// one initialising waits for it about a second, then gives up with `ZoneBusy`; a dead
    /// initialiser's work is redone.
    CreateOrAttach(ZoneCapacity),
}

/// How long `CreateOrAttach` waits for a live initialiser before `ZoneBusy`.
pub(crate) const INIT_PATIENCE: Duration = Duration::from_secs(1);

pub(crate) enum Backing {
    Mapped(MmapRaw),
    Borrowed { ptr: NonNull<AtomicU64>, words: usize },
}

// SAFETY: the backing is a view of memory that is only ever accessed through atomics (module
// docs), so sharing it between threads or sending it to another is no data race; a mapping is
// unmapped only when the `Backing` is dropped, which needs ownership.
unsafe impl Send for Backing {}
// SAFETY: as for `Send`.
unsafe impl Sync for Backing {}

impl Backing {
    /// Whether the memory is ours (a mapping this backing unmaps when dropped), so valid
    /// until then; caller memory is valid only while the caller's `Zone` handles live.
    pub(crate) fn owned(&self) -> bool {
        matches!(self, Backing::Mapped(_))
    }

    pub(crate) fn words(&self) -> &[AtomicU64] {
        let (ptr, words) = match self {
            Backing::Mapped(map) => (map.as_mut_ptr().cast::<AtomicU64>(), map.len() / 8),
            Backing::Borrowed { ptr, words } => (ptr.as_ptr(), *words),
        };
        // SAFETY: `ptr` is 8-aligned (a mapping is page-aligned; borrowed memory is checked in
        // `from_memory`), valid for `words * 8` bytes for as long as `self` lives (the mapping
        // is ours; borrowed memory by `from_memory`'s contract), and only accessed atomically,
        // so no `&mut` or plain access aliases this slice.
        unsafe { std::slice::from_raw_parts(ptr, words) }
    }
}

fn os_error(what: &str, e: io::Error) -> Error {
    Error::new(ErrorKind::Os, format!("{what}: {e}"))
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`), `None` where it cannot be read.
pub(crate) fn boot_id() -> Option<[u64; 2]> {
    if cfg!(miri) {
        // Miri's isolation stops the run at any `open`: zones made under Miri have no boot id.
        return None;
    }
    let text = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let hex: String = text.trim().chars().filter(|c| *c != '-').collect();
    let id = u128::from_str_radix(&hex, 16).ok()?;
    Some([(id >> 64) as u64, id as u64])
}

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    debug_assert_eq!(rc, 0);
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000).wrapping_add(ts.tv_nsec as u64)
}

fn identity(base: usize) -> Identity {
    let boot = boot_id().unwrap_or([0, 0]);
    let clock_base = monotonic_ns();
    let mut id = crate::hash::splitmix64(u64::from(std::process::id()));
    for part in [clock_base, boot[0], boot[1], base as u64] {
        id = crate::hash::splitmix64(id ^ part);
    }
    Identity { creation_id: id, clock_base, boot_id: boot }
}

/// Initialises a zone in `words` for `layout`, after taking the init-state word from `from`
/// to INITIALISING(this pid); `false` if another process changed the word first.
fn claim_and_initialise(words: &[AtomicU64], layout: &Layout, from: u64) -> bool {
    let me = initialising(std::process::id());
    // Acquire on success: orders our writes after the state we replace (a takeover's dead
    // initialiser wrote nothing after it, being gone); Relaxed on failure: the caller reloads
    // the state with Acquire.
    let won = words[layout::word::INIT_STATE].compare_exchange(from, me, Ordering::Acquire, Ordering::Relaxed).is_ok();
    if won {
        layout::initialise(words, layout, &identity(words.as_ptr() as usize));
    }
    won
}

fn needs(layout: &Layout, len: usize) -> Result<(), Error> {
    if len < layout.bytes() {
        return Err(Error::new(
            ErrorKind::ZoneTooSmall,
            format!("a zone of {} needs {} bytes, the memory has {len}", layout.caps, layout.bytes()),
        ));
    }
    Ok(())
}

/// Creates, attaches or both, on `words` (`ZoneInit`'s contract), the whole words of memory
/// of `len` bytes (which the messages name); `alive` judges an initialiser's pid, `patience`
/// bounds the wait on a live one.
pub(crate) fn take(
    words: &[AtomicU64],
    len: usize,
    init: ZoneInit,
    alive: &dyn Fn(u32) -> bool,
    patience: Duration,
) -> Result<Layout, Error> {
    match init {
        ZoneInit::Attach => layout::validate(words, len, None, None),
        ZoneInit::Create(caps) => {
            let layout = Layout::new(&caps)?;
            needs(&layout, len)?;
            if !claim_and_initialise(words, &layout, UNINIT) {
                // Acquire: pairs with a READY store, so validate's message reads its header.
                let state = words[layout::word::INIT_STATE].load(Ordering::Acquire);
                return Err(Error::new(
                    ErrorKind::ZoneIncompatible,
                    match initialiser(state) {
                        Some(pid) => format!("memory is not fresh: pid {pid} is initialising a zone in it"),
                        None => format!("memory is not fresh: init state {state:#x} (use Attach for an existing zone)"),
                    },
                ));
            }
            Ok(layout)
        }
        ZoneInit::CreateOrAttach(caps) => {
            let layout = Layout::new(&caps)?;
            needs(&layout, len)?;
            let deadline = Instant::now() + patience;
            loop {
                // Acquire: pairs with the initialiser's Release store of READY.
                let state = words[layout::word::INIT_STATE].load(Ordering::Acquire);
                if state == UNINIT {
                    if claim_and_initialise(words, &layout, UNINIT) {
                        return Ok(layout);
                    }
                    continue;
                }
                let Some(pid) = initialiser(state) else {
                    return layout::validate(words, len, Some(&caps), None);
                };
                if !alive(pid) {
                    if claim_and_initialise(words, &layout, state) {
                        return Ok(layout);
                    }
                    continue;
                }
                if Instant::now() >= deadline {
                    return Err(Error::new(
                        ErrorKind::ZoneBusy,
                        format!("pid {pid} is still initialising the zone after {patience:?}"),
                    ));
                }
                std::thread::yield_now();
            }
        }
    }
}

/// A zone in a new anonymous shared mapping (memfd), shared with children forked later.
pub(crate) fn anonymous(caps: &ZoneCapacity) -> Result<(Backing, Layout), Error> {
    let layout = Layout::new(caps)?;
    // SAFETY: the name is a NUL-terminated string; the call has no other preconditions.
    let fd = unsafe { libc::memfd_create(c"leastconn-zone".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(os_error("memfd_create", io::Error::last_os_error()));
    }
    // SAFETY: `fd` was just returned by memfd_create and nothing else owns it.
    let file = unsafe { File::from_raw_fd(fd) };
    file.set_len(layout.bytes() as u64).map_err(|e| os_error("sizing the zone's memfd", e))?;
    let map = MmapOptions::new().len(layout.bytes()).map_raw(&file).map_err(|e| os_error("mapping the zone", e))?;
    let backing = Backing::Mapped(map);
    let won = claim_and_initialise(backing.words(), &layout, UNINIT);
    debug_assert!(won, "a new memfd is zero-filled");
    Ok((backing, layout))
}

fn map_file(file: &File, len: usize) -> Result<Backing, Error> {
    if len < layout::HEADER_BYTES {
        return Err(Error::new(
            ErrorKind::ZoneTooSmall,
            format!("{len} bytes cannot hold a zone header ({} bytes)", layout::HEADER_BYTES),
        ));
    }
    let map = MmapOptions::new().len(len).map_raw(file).map_err(|e| os_error("mapping the zone file", e))?;
    Ok(Backing::Mapped(map))
}

/// The zone in the file at `path`, made (with `caps`) if there is none.
pub(crate) fn open(path: &Path, caps: &ZoneCapacity) -> Result<(Backing, Layout), Error> {
    let layout = Layout::new(caps)?;
    let shown = path.display();
    loop {
        match OpenOptions::new().read(true).write(true).open(path) {
            Ok(file) => {
                let len = file.metadata().map_err(|e| os_error(&format!("zone file {shown}"), e))?.len();
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                let backing = map_file(&file, len)
                    .map_err(|e| Error::new(e.kind(), format!("zone file {shown}: {}", e.message())))?;
                let found = layout::validate(backing.words(), len, Some(caps), boot_id())
                    .map_err(|e| Error::new(e.kind(), format!("zone file {shown}: {}", e.message())))?;
                return Ok((backing, found));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(os_error(&format!("opening zone file {shown}"), e)),
        }
        let name = path
            .file_name()
            .ok_or_else(|| Error::new(ErrorKind::InvalidArgument, format!("zone path {shown} does not name a file")))?;
        let mut tmp_name = name.to_os_string();
        tmp_name.push(format!(".{}.{:016x}.tmp", std::process::id(), fastrand::u64(..)));
        let tmp = path.with_file_name(tmp_name);
        let made = (|| {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(|e| os_error(&format!("creating {}", tmp.display()), e))?;
            file.set_len(layout.bytes() as u64).map_err(|e| os_error(&format!("sizing {}", tmp.display()), e))?;
            let backing = map_file(&file, layout.bytes())?;
            let won = claim_and_initialise(backing.words(), &layout, UNINIT);
            debug_assert!(won, "a new file is zero-filled");
            Ok::<_, Error>(backing)
        })();
        let published = made.and_then(|backing| match std::fs::hard_link(&tmp, path) {
            Ok(()) => Ok(Some(backing)),
            // Another process published first: open its zone.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(os_error(&format!("publishing zone file {shown}"), e)),
        });
        // The temporary name is never needed again: published, lost the race, or failed.
        let _ = std::fs::remove_file(&tmp);
        if let Some(backing) = published? {
            return Ok((backing, layout));
        }
    }
}

/// Caller memory as a zone; see [`Zone::from_memory`](super::Zone::from_memory) for the contract.
///
/// # Safety
/// As [`Zone::from_memory`](super::Zone::from_memory).
pub(crate) unsafe fn borrowed(
    mem: NonNull<u8>,
    len: usize,
    init: ZoneInit,
    alive: &dyn Fn(u32) -> bool,
    patience: Duration,
) -> Result<(Backing, Layout), Error> {
    if mem.as_ptr() as usize % 8 != 0 {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!("zone memory at {:p} is not 8-byte aligned", mem.as_ptr()),
        ));
    }
    let backing = Backing::Borrowed { ptr: mem.cast(), words: len / 8 };
    let layout = take(backing.words(), len, init, alive, patience)?;
    Ok((backing, layout))
}
