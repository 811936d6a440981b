//! Shared zones from C: their capacities and size, the three ways to get one (anonymous
//! shared memory made before `fork`, a file by path, memory the caller owns), and what a zone
//! says about itself. Pools on a zone are made by `lc_pool_new_in_zone()` (src/ffi/pool.rs).
//!
//! Zones exist on Linux only. Elsewhere every function here still exists, so that a program
//! compiles unchanged everywhere: those returning a status return `LC_ERR_OS` (logged: "shared
//! zones exist on Linux only"), `lc_zone_size()` returns 0, and no `lc_zone` is ever made.
//!
//! Refusals that the Rust zone explains (capacities, size, layout, I/O) are logged at
//! `LC_LOG_ERROR` as "FUNCTION: message", so the C caller sees what differs; NULL pointers
//! and unknown enumeration values are not logged.

use std::ffi::{c_char, c_void};
use std::ptr::NonNull;

use crate::error::Error;
use crate::ffi::status::{LC_ERR_INVALID_ARGUMENT, LC_ERR_NULL_POINTER, LC_OK, lc_status, status_of};

/// A shared zone (opaque): host state in memory that several processes map.
///
/// Pools keep their host state in a zone when made by `lc_pool_new_in_zone()`. Zones exist on
/// Linux only: elsewhere every `lc_zone_*` function that returns a status returns
/// `LC_ERR_OS`, and `lc_zone_size()` returns 0. The functions that
/// take a `const lc_zone *` may be called concurrently from any thread. Each handle is freed
/// once with `lc_zone_free()`; after `fork()` the child's copy of a handle refers to the same
/// shared memory and is the child's to use and free.
pub struct lc_zone {
    #[cfg(target_os = "linux")]
    zone: crate::Zone,
    #[cfg(not(target_os = "linux"))]
    never: std::convert::Infallible,
}

/// How much a zone holds, fixed when it is made. Fill it with `lc_zone_capacity_default()`
/// (or `lc_zone_capacity_fit()`) and change what you need.
///
/// The size of a zone follows from these numbers alone (`lc_zone_size()`); every process
/// that opens or attaches to a zone with capacities must give exactly the zone's.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct lc_zone_capacity {
    /// Host slots: addresses listed at once over every pool on the zone (size it at twice
    /// that). 1 to 2^30 - 1. Default 1024.
    pub hosts: u32,
    /// Longest key: a pool's name on the zone, a NUL and an address. 1 to 4095. Default 256.
    pub address_bytes: u32,
    /// Failure timestamps kept per host: the largest `max_fails` a pool on the zone may use.
    /// 1 to `LC_MAX_FAILS_LIMIT`. Default 16.
    pub fail_ring: u32,
    /// Processes attached at once. 1 to 16383. Default 64.
    pub processes: u32,
    /// Threads (and pickers) picking at once, over all processes. 1 to 2^31 - 1. Default 256.
    pub threads: u32,
}

/// How `lc_zone_from_memory()` takes the memory (one of `LC_ZONE_*`).
pub type lc_zone_init = u32;

/// Make a new zone: the memory's bytes 16 to 23 (the init-state word) must be 0, as in fresh
/// shared memory; every other byte is overwritten. Memory that holds a zone (or another
/// process's unfinished one) is refused with `LC_ERR_ZONE_INCOMPATIBLE`.
pub const LC_ZONE_CREATE: lc_zone_init = 0;
/// Use the zone already in the memory (e.g. nginx's shared memory after a reload).
pub const LC_ZONE_ATTACH: lc_zone_init = 1;
/// For unrelated processes that may start at once: make the zone unless one exists, else
/// attach to it. A process that finds another live one initialising waits for it about a
/// second, then gives up with `LC_ERR_ZONE_BUSY`; a dead initialiser's work is redone.
pub const LC_ZONE_CREATE_OR_ATTACH: lc_zone_init = 2;

/// Fills `*caps` with the default capacities: 1024 hosts, 256 address bytes, a failure ring
/// of 16, 64 processes, 256 threads. Any thread.
#[unsafe(no_mangle)]
pub extern "C" fn lc_zone_capacity_default(caps: *mut lc_zone_capacity) -> lc_status {
    ffi_boundary!("lc_zone_capacity_default", {
        let caps = try_mut!(caps);
        match sys::default_capacity() {
            Ok(c) => {
                *caps = c;
                LC_OK
            }
            Err(e) => report(&e, "lc_zone_capacity_default"),
        }
    })
}

/// The size in bytes of a zone with capacities `*caps`: what `lc_zone_from_memory()` needs
/// and what `lc_zone_new_anonymous()` and `lc_zone_open()` map.
///
/// 0 when `caps` is NULL or a capacity is out of range (`lc_zone_new_anonymous()` would say
/// which, in the log). Nothing is logged here. Any thread.
#[unsafe(no_mangle)]
pub extern "C" fn lc_zone_size(caps: *const lc_zone_capacity) -> usize {
    ffi_boundary!("lc_zone_size", {
        // SAFETY: a non-NULL `caps` points to a live capacity struct for the call (documented).
        match unsafe { caps.as_ref() } {
            Some(caps) => sys::size_for(caps).unwrap_or(0),
            None => 0,
        }
    })
}

/// Sets `caps->hosts` to the most hosts whose zone fits in `bytes`, the other four fields as
/// given (the `hosts` given is ignored): how to size a zone for memory of a given size, such
/// as nginx's `zone NAME SIZE;`. Afterwards `lc_zone_size(caps) <= bytes`.
///
/// Errors (logged, `*caps` unchanged): `LC_ERR_NULL_POINTER`; `LC_ERR_INVALID_LIMIT` for
/// another field out of range; `LC_ERR_ZONE_TOO_SMALL` when not even one host fits. Any
/// thread.
#[unsafe(no_mangle)]
pub extern "C" fn lc_zone_capacity_fit(bytes: usize, caps: *mut lc_zone_capacity) -> lc_status {
    ffi_boundary!("lc_zone_capacity_fit", {
        let caps = try_mut!(caps);
        match sys::capacity_fit(bytes, caps) {
            Ok(fit) => {
                *caps = fit;
                LC_OK
            }
            Err(e) => report(&e, "lc_zone_capacity_fit"),
        }
    })
}

/// Makes a zone in new anonymous shared memory, with capacities `*caps` (borrowed for the
/// call). Processes forked after this call share it through their copy of the handle: make
/// the zone before `fork()`.
///
/// Errors (logged, `*out` NULL): `LC_ERR_NULL_POINTER` (`caps` or `out`),
/// `LC_ERR_INVALID_LIMIT` (a capacity out of range), `LC_ERR_OS` (no memory to be had).
///
/// On success `*out` is a new zone owned by the caller (free it with `lc_zone_free()`; the
/// memory goes when the last process that has it frees or exits). Any thread.
#[unsafe(no_mangle)]
pub extern "C" fn lc_zone_new_anonymous(caps: *const lc_zone_capacity, out: *mut *mut lc_zone) -> lc_status {
    ffi_boundary!("lc_zone_new_anonymous", {
        let out = try_out!(out);
        let caps = try_ref!(caps);
        deliver(out, sys::anonymous(caps), "lc_zone_new_anonymous")
    })
}

/// Opens the zone in the file at `path`, made with capacities `*caps` if there is none
/// (mode 0600). Unrelated processes that open one path share one zone; when several make it
/// at once, one file wins and all of them use it (no opener ever sees a half-made zone).
/// Put zone files on a tmpfs such as `/dev/shm`: a zone file from an earlier boot is
/// refused. The file stays after `lc_zone_free()`; removing it is the caller's business.
///
/// `path` is a NUL-terminated file name (any bytes but NUL) and `caps` is borrowed for the
/// call. Errors (logged, `*out` NULL): `LC_ERR_NULL_POINTER`; `LC_ERR_INVALID_LIMIT` (a
/// capacity out of range); `LC_ERR_INVALID_ARGUMENT` (the empty path);
/// `LC_ERR_ZONE_INCOMPATIBLE` (a file that is not a zone, was made by another
/// layout or boot, or has other capacities: the log names what differs);
/// `LC_ERR_ZONE_TOO_SMALL` (a file shorter than its zone); `LC_ERR_OS` (I/O, such as a
/// missing directory or a path that is a directory).
///
/// On success `*out` is a new zone owned by the caller (free it with `lc_zone_free()`).
/// Any thread.
#[unsafe(no_mangle)]
pub extern "C" fn lc_zone_open(
    path: *const c_char,
    caps: *const lc_zone_capacity,
    out: *mut *mut lc_zone,
) -> lc_status {
    ffi_boundary!("lc_zone_open", {
        let out = try_out!(out);
        if path.is_null() {
            return LC_ERR_NULL_POINTER;
        }
        // SAFETY: a non-NULL `path` is NUL-terminated and lives for the call (documented).
        let path = unsafe { std::ffi::CStr::from_ptr(path) };
        let caps = try_ref!(caps);
        deliver(out, sys::open(path, caps), "lc_zone_open")
    })
}

/// Takes `len` bytes at `mem`, memory the caller owns (nginx's shared memory, say), as a
/// zone, as `init` says (one of `LC_ZONE_*`).
///
/// `caps` (borrowed for the call): required by `LC_ZONE_CREATE` and
/// `LC_ZONE_CREATE_OR_ATTACH` (which also requires an existing zone to have exactly these);
/// with `LC_ZONE_ATTACH`, NULL takes the zone with whatever capacities it was made with, and
/// non-NULL requires exactly these. The zone uses `lc_zone_size()` bytes of the memory,
/// which may be less than `len`.
///
/// `mem` must be 8-byte aligned and valid for reads and writes of `len` bytes until the
/// zone is freed, and nothing may touch that memory but this library (in this or another
/// process) meanwhile. `lc_zone_free()` does not free the memory.
///
/// Errors (logged when the zone explains them; `*out` NULL): `LC_ERR_NULL_POINTER` (`mem`,
/// `out`, or `caps` where required); `LC_ERR_INVALID_ARGUMENT` (an unknown `init`, or `mem`
/// not 8-byte aligned); `LC_ERR_INVALID_LIMIT` (a capacity out of range);
/// `LC_ERR_ZONE_TOO_SMALL` (`len` below the zone's size); `LC_ERR_ZONE_INCOMPATIBLE`
/// (attaching to memory that holds no ready zone of this layout, or one with other
/// capacities than `caps`; creating in memory that is not fresh); `LC_ERR_ZONE_BUSY`
/// (`LC_ZONE_CREATE_OR_ATTACH` found another live process initialising the zone for about a
/// second; try again).
///
/// On success `*out` is a new zone owned by the caller (free it with `lc_zone_free()`).
/// Any thread; `LC_ZONE_CREATE_OR_ATTACH` may wait up to about a second.
#[unsafe(no_mangle)]
pub extern "C" fn lc_zone_from_memory(
    mem: *mut c_void,
    len: usize,
    caps: *const lc_zone_capacity,
    init: lc_zone_init,
    out: *mut *mut lc_zone,
) -> lc_status {
    ffi_boundary!("lc_zone_from_memory", {
        let out = try_out!(out);
        let Some(mem) = NonNull::new(mem.cast::<u8>()) else {
            return LC_ERR_NULL_POINTER;
        };
        // SAFETY: a non-NULL `caps` points to a live capacity struct for the call (documented).
        let caps = unsafe { caps.as_ref() };
        let how = match (init, caps) {
            (LC_ZONE_ATTACH, caps) => How::Attach(caps),
            (LC_ZONE_CREATE | LC_ZONE_CREATE_OR_ATTACH, None) => return LC_ERR_NULL_POINTER,
            (LC_ZONE_CREATE, Some(caps)) => How::Create(caps),
            (LC_ZONE_CREATE_OR_ATTACH, Some(caps)) => How::CreateOrAttach(caps),
            _ => return LC_ERR_INVALID_ARGUMENT,
        };
        // SAFETY: the caller keeps the memory contract documented above, which is
        // `Zone::from_memory`'s.
        deliver(out, unsafe { sys::from_memory(mem, len, how) }, "lc_zone_from_memory")
    })
}

/// Fills `*caps` with the capacities `zone` was made with. Errors: `LC_ERR_NULL_POINTER`.
/// Any thread.
#[unsafe(no_mangle)]
pub extern "C" fn lc_zone_capacity_of(zone: *const lc_zone, caps: *mut lc_zone_capacity) -> lc_status {
    ffi_boundary!("lc_zone_capacity_of", {
        let zone = try_ref!(zone);
        *try_mut!(caps) = sys::capacity_of(zone);
        LC_OK
    })
}

/// The zone's size in bytes (the memory it uses, `lc_zone_size()` of its capacities); 0 for
/// a NULL `zone`. Any thread.
#[unsafe(no_mangle)]
pub extern "C" fn lc_zone_size_of(zone: *const lc_zone) -> usize {
    ffi_boundary!("lc_zone_size_of", {
        // SAFETY: a non-NULL `zone` is a live handle for the call (documented).
        unsafe { zone.as_ref() }.map_or(0, sys::size_of)
    })
}

/// A number that identifies the zone's creation: equal in every process (and through every
/// handle) using the same zone, different for a zone made again in the same memory or file
/// path. 0 for a NULL `zone` (a zone's own id is 0 with probability 2^-64). Any thread.
#[unsafe(no_mangle)]
pub extern "C" fn lc_zone_creation_id(zone: *const lc_zone) -> u64 {
    ffi_boundary!("lc_zone_creation_id", {
        // SAFETY: a non-NULL `zone` is a live handle for the call (documented).
        unsafe { zone.as_ref() }.map_or(0, sys::creation_id)
    })
}

/// What `lc_zone_sweep()` did.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct lc_zone_sweep_report {
    /// Records of dead processes swept (sweeps taken over from a dead sweeper included).
    pub processes: u32,
    /// In-flight units subtracted: the reservations the dead processes held.
    pub recovered: u64,
    /// Units left in doubt (a thread killed inside a pick or release, or a sweeper killed
    /// mid-step): kept in the in-flight count, each on a known host, until a later sweep
    /// finds the zone quiet and removes them exactly.
    pub in_doubt: u64,
}

/// Returns what processes that died (SIGKILL, crash) while attached to `zone` held: their
/// reservations are subtracted from the shared in-flight counts, their listings dropped and
/// their records freed; then the units in doubt are reconciled if the zone is quiet. Fills
/// `*report` when it is not NULL (zeroed on error).
///
/// A dead process is one whose pid is gone, is a zombie, or now belongs to another process
/// (its start time differs). Every refresh of a pool on the zone sweeps too; call this from
/// a timer when refreshes are rare (nginx: once a second per worker). Registers the calling
/// process in the zone if none of its pools did yet. Not on the hot path: lock-free, it
/// allocates, and when every process is alive it costs one `kill(pid, 0)` and one read of
/// `/proc/PID/stat` per registered process. Any thread.
///
/// Errors: `LC_ERR_NULL_POINTER` (`zone`), `LC_ERR_ZONE_FULL` (the process had to register
/// and no process record is free), `LC_ERR_OS` (not Linux).
#[unsafe(no_mangle)]
pub extern "C" fn lc_zone_sweep(zone: *const lc_zone, report: *mut lc_zone_sweep_report) -> lc_status {
    ffi_boundary!("lc_zone_sweep", {
        // SAFETY: a non-NULL `report` is writable for the call (documented).
        let mut out = unsafe { report.as_mut() };
        if let Some(r) = out.as_deref_mut() {
            *r = lc_zone_sweep_report::default();
        }
        let zone = try_ref!(zone);
        match sys::sweep(zone) {
            Ok(done) => {
                if let Some(r) = out {
                    *r = done;
                }
                LC_OK
            }
            Err(e) => self::report(&e, "lc_zone_sweep"),
        }
    })
}

/// A process registered in a zone, as `lc_zone_stats()` reports it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct lc_zone_process {
    /// Its pid.
    pub pid: u32,
    /// Reservations attributed to it now, over every host of the zone: what a sweep would
    /// return if it died now.
    pub in_flight: u64,
}

/// What `lc_zone_stats()` reports about a zone. The caller owns the struct and the array
/// `processes` points to; set `processes` and `processes_cap` before the call.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct lc_zone_statistics {
    /// Host slots: the zone's capacity.
    pub hosts: u32,
    /// Host slots in use (listed by some process, or holding a removed host's last requests).
    pub hosts_used: u32,
    /// Registered processes: how many there are (may exceed `processes_cap`).
    pub processes_len: u32,
    /// In: how many entries `processes` has room for (0 with a NULL `processes`).
    pub processes_cap: u32,
    /// In: caller-owned room for `processes_cap` entries, or NULL; out: the first
    /// `min(processes_len, processes_cap)` registered processes, in record order.
    pub processes: *mut lc_zone_process,
    /// Records of dead processes swept, ever.
    pub sweeps: u64,
    /// In-flight units the sweeps returned, ever: what dead processes held.
    pub recovered: u64,
    /// Units in doubt now (a process killed inside a pick or release): kept in the in-flight
    /// counts until a sweep finds the zone quiet and reconciles them.
    pub in_doubt: u64,
    /// Hosts whose doubt a reconcile removed, ever.
    pub reconciled: u64,
    /// Listings refused because every host slot was taken, ever.
    pub full_refusals: u64,
}

/// Fills `*out` with the zone's statistics: capacity and use, the registered processes (pid
/// and the reservations attributed to each), and the crash-recovery counters. Numbers are
/// read one by one while other processes go on; together they are exact when the zone is
/// quiet. Not on the hot path: one load per process record, plus one per host for each
/// thread record in use.
///
/// `out->processes` (caller-owned, `out->processes_cap` entries, or NULL with a cap of 0)
/// receives the first registered processes; `out->processes_len` says how many there are,
/// so a caller whose array was too small can call again with a bigger one. Nothing is kept
/// after the call. Any thread, concurrently with picks and sweeps in any process.
///
/// Errors (`*out` unchanged): `LC_ERR_NULL_POINTER` (`zone`, `out`, or `out->processes`
/// NULL with a non-zero `out->processes_cap`).
#[unsafe(no_mangle)]
pub extern "C" fn lc_zone_stats(zone: *const lc_zone, out: *mut lc_zone_statistics) -> lc_status {
    ffi_boundary!("lc_zone_stats", {
        let zone = try_ref!(zone);
        let out = try_mut!(out);
        if out.processes.is_null() && out.processes_cap != 0 {
            return LC_ERR_NULL_POINTER;
        }
        let (mut stats, processes) = sys::stats(zone);
        stats.processes_cap = out.processes_cap;
        stats.processes = out.processes;
        for (i, p) in processes.iter().take(out.processes_cap as usize).enumerate() {
            // SAFETY: `processes` has room for `processes_cap` entries (documented), and
            // `i < processes_cap`.
            unsafe { out.processes.add(i).write(*p) };
        }
        *out = stats;
        LC_OK
    })
}

/// One host slot of a zone, as `lc_zone_hosts()` reports it: what every process shares about
/// one address of one pool name.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct lc_zone_host {
    /// Requests in flight, over every process (units in doubt included).
    pub in_flight: u32,
    /// Units in doubt: kept in `in_flight` for a process killed inside a pick or release (at
    /// most one per thread it had inside one), until a sweep finds the zone quiet and removes
    /// them exactly.
    pub doubt: u32,
    /// Failures recorded ever, by any process: releases as `LC_OUTCOME_FAILURE` by pools with
    /// passive health on.
    pub failures: u64,
    /// How many registered processes list the host.
    pub listers: u32,
    /// `listers` may be off by one listing change of a killed process, until a sweep
    /// recounts it.
    pub listers_in_doubt: bool,
}

/// Receives one host slot from `lc_zone_hosts()`: `pool` is the name its pools were made with
/// (`lc_pool_new_in_zone()`), `address` its address. All three are valid only during the call.
/// It may call other `lc_*` functions.
pub type lc_zone_host_fn = Option<
    extern "C" fn(userdata: *mut c_void, pool: *const c_char, address: *const c_char, host: *const lc_zone_host),
>;

/// Calls `callback` once per host slot in use in `zone` (listed by some process, or holding a
/// removed host's last requests), in slot order, on the calling thread, with `userdata`: the
/// shared view of every pool on the zone, in every process. Each slot is read word by word
/// while other processes go on (a slot reclaimed meanwhile is left out). Not on the hot path:
/// a few loads per host slot of the zone's capacity, and it allocates. Any thread.
///
/// Errors: `LC_ERR_NULL_POINTER` (`zone`, `callback`).
#[unsafe(no_mangle)]
pub extern "C" fn lc_zone_hosts(zone: *const lc_zone, callback: lc_zone_host_fn, userdata: *mut c_void) -> lc_status {
    ffi_boundary!("lc_zone_hosts", {
        let zone = try_ref!(zone);
        let Some(callback) = callback else {
            return LC_ERR_NULL_POINTER;
        };
        for (pool, address, host) in sys::hosts(zone) {
            callback(userdata, pool.as_ptr(), address.as_ptr(), &host);
        }
        LC_OK
    })
}

/// Frees a zone handle. NULL is ignored. Any thread, once no other thread uses this handle;
/// using it afterwards, or freeing it twice, is undefined.
///
/// The memory stays for the other handles and processes that have the zone: an anonymous
/// zone's memory goes with the last of them, a zone file stays on disk, and caller memory is
/// the caller's (it may be reused once every handle on it is freed).
#[unsafe(no_mangle)]
pub extern "C" fn lc_zone_free(zone: *mut lc_zone) {
    ffi_boundary!("lc_zone_free", {
        drop(take_box!(zone));
    })
}

impl lc_zone {
    /// `builder` with its host state in this zone under `name` (`lc_pool_new_in_zone()`).
    pub(crate) fn pool_builder(&self, builder: crate::pool::Builder, name: &str) -> crate::pool::Builder {
        sys::pool_builder(self, builder, name)
    }
}

/// How `lc_zone_from_memory()` was asked to take the memory, its checks done.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
enum How<'a> {
    Create(&'a lc_zone_capacity),
    Attach(Option<&'a lc_zone_capacity>),
    CreateOrAttach(&'a lc_zone_capacity),
}

/// Logs a refusal the zone explained, and returns its status.
fn report(e: &Error, function: &str) -> lc_status {
    log::error!("{function}: {}", e.message());
    status_of(e)
}

/// Hands a new zone to the caller through a checked `out`, or reports why there is none.
fn deliver(out: *mut *mut lc_zone, made: Result<lc_zone, Error>, function: &str) -> lc_status {
    match made {
        Ok(zone) => {
            // SAFETY: `try_out!` checked `out`.
            unsafe { out.write(Box::into_raw(Box::new(zone))) };
            LC_OK
        }
        Err(e) => report(&e, function),
    }
}

/// The Rust zone behind each function.
#[cfg(target_os = "linux")]
mod sys {
    use std::ffi::{CStr, CString};
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;
    use std::ptr::NonNull;

    use super::{How, lc_zone, lc_zone_capacity};
    use crate::error::{Error, ErrorKind};
    use crate::{Zone, ZoneCapacity, ZoneInit};

    fn to_rust(c: &lc_zone_capacity) -> ZoneCapacity {
        ZoneCapacity {
            hosts: c.hosts,
            address_bytes: c.address_bytes,
            fail_ring: c.fail_ring,
            processes: c.processes,
            threads: c.threads,
        }
    }

    fn to_c(c: ZoneCapacity) -> lc_zone_capacity {
        lc_zone_capacity {
            hosts: c.hosts,
            address_bytes: c.address_bytes,
            fail_ring: c.fail_ring,
            processes: c.processes,
            threads: c.threads,
        }
    }

    pub(super) fn default_capacity() -> Result<lc_zone_capacity, Error> {
        Ok(to_c(ZoneCapacity::default()))
    }

    pub(super) fn size_for(caps: &lc_zone_capacity) -> Result<usize, Error> {
        Zone::size_for(&to_rust(caps))
    }

    pub(super) fn capacity_fit(bytes: usize, caps: &lc_zone_capacity) -> Result<lc_zone_capacity, Error> {
        Zone::capacity_fit(bytes, &to_rust(caps)).map(to_c)
    }

    pub(super) fn anonymous(caps: &lc_zone_capacity) -> Result<lc_zone, Error> {
        Zone::anonymous(&to_rust(caps)).map(|zone| lc_zone { zone })
    }

    pub(super) fn open(path: &CStr, caps: &lc_zone_capacity) -> Result<lc_zone, Error> {
        let path = Path::new(std::ffi::OsStr::from_bytes(path.to_bytes()));
        Zone::open(path, &to_rust(caps)).map(|zone| lc_zone { zone })
    }

    /// # Safety
    /// As `Zone::from_memory`.
    pub(super) unsafe fn from_memory(mem: NonNull<u8>, len: usize, how: How<'_>) -> Result<lc_zone, Error> {
        let (init, expected) = match how {
            How::Create(caps) => (ZoneInit::Create(to_rust(caps)), None),
            How::Attach(caps) => (ZoneInit::Attach, caps.map(to_rust)),
            How::CreateOrAttach(caps) => (ZoneInit::CreateOrAttach(to_rust(caps)), None),
        };
        // SAFETY: the caller keeps `Zone::from_memory`'s contract.
        let zone = unsafe { Zone::from_memory(mem, len, init) }?;
        if let Some(asked) = expected {
            let have = zone.capacity();
            if have != asked {
                return Err(Error::new(
                    ErrorKind::ZoneIncompatible,
                    format!("zone capacities differ: {}", differences(&have, &asked)),
                ));
            }
        }
        Ok(lc_zone { zone })
    }

    /// "hosts 8 in the zone, 16 asked, ...": the fields of `have` and `asked` that differ.
    fn differences(have: &ZoneCapacity, asked: &ZoneCapacity) -> String {
        let fields = |c: &ZoneCapacity| {
            [
                ("hosts", c.hosts),
                ("address_bytes", c.address_bytes),
                ("fail_ring", c.fail_ring),
                ("processes", c.processes),
                ("threads", c.threads),
            ]
        };
        fields(have)
            .into_iter()
            .zip(fields(asked))
            .filter(|((_, h), (_, a))| h != a)
            .map(|((name, h), (_, a))| format!("{name} {h} in the zone, {a} asked"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub(super) fn capacity_of(zone: &lc_zone) -> lc_zone_capacity {
        to_c(zone.zone.capacity())
    }

    pub(super) fn size_of(zone: &lc_zone) -> usize {
        zone.zone.size()
    }

    pub(super) fn creation_id(zone: &lc_zone) -> u64 {
        zone.zone.creation_id()
    }

    pub(super) fn pool_builder(zone: &lc_zone, builder: crate::pool::Builder, name: &str) -> crate::pool::Builder {
        builder.zone(&zone.zone, name)
    }

    pub(super) fn sweep(zone: &lc_zone) -> Result<super::lc_zone_sweep_report, Error> {
        let r = zone.zone.sweep()?;
        Ok(super::lc_zone_sweep_report { processes: r.processes, recovered: r.recovered, in_doubt: r.in_doubt })
    }

    pub(super) fn stats(zone: &lc_zone) -> (super::lc_zone_statistics, Vec<super::lc_zone_process>) {
        let s = zone.zone.stats();
        let processes: Vec<_> =
            s.processes.iter().map(|p| super::lc_zone_process { pid: p.pid, in_flight: p.in_flight }).collect();
        let stats = super::lc_zone_statistics {
            hosts: s.hosts,
            hosts_used: s.hosts_used,
            processes_len: u32::try_from(processes.len()).expect("process records are at most 16383"),
            processes_cap: 0,
            processes: std::ptr::null_mut(),
            sweeps: s.sweeps,
            recovered: s.recovered,
            in_doubt: s.in_doubt,
            reconciled: s.reconciled,
            full_refusals: s.full_refusals,
        };
        (stats, processes)
    }

    pub(super) fn hosts(zone: &lc_zone) -> Vec<(CString, CString, super::lc_zone_host)> {
        zone.zone
            .hosts()
            .into_iter()
            .filter_map(|h| {
                let host = super::lc_zone_host {
                    in_flight: h.in_flight,
                    doubt: h.doubt,
                    failures: h.failures,
                    listers: h.listers,
                    listers_in_doubt: h.listers_in_doubt,
                };
                // Keys this library writes hold no NUL but the separator: skip any other.
                Some((CString::new(h.pool).ok()?, CString::new(h.address).ok()?, host))
            })
            .collect()
    }
}

/// No zones: every constructor refuses, and no `lc_zone` exists to inspect.
#[cfg(not(target_os = "linux"))]
mod sys {
    use std::ffi::CStr;
    use std::ptr::NonNull;

    use super::{How, lc_zone, lc_zone_capacity};
    use crate::error::{Error, ErrorKind};

    fn unsupported<T>() -> Result<T, Error> {
        Err(Error::new(ErrorKind::Os, "shared zones exist on Linux only"))
    }

    pub(super) fn default_capacity() -> Result<lc_zone_capacity, Error> {
        unsupported()
    }

    pub(super) fn size_for(_: &lc_zone_capacity) -> Result<usize, Error> {
        unsupported()
    }

    pub(super) fn capacity_fit(_: usize, _: &lc_zone_capacity) -> Result<lc_zone_capacity, Error> {
        unsupported()
    }

    pub(super) fn anonymous(_: &lc_zone_capacity) -> Result<lc_zone, Error> {
        unsupported()
    }

    pub(super) fn open(_: &CStr, _: &lc_zone_capacity) -> Result<lc_zone, Error> {
        unsupported()
    }

    pub(super) unsafe fn from_memory(_: NonNull<u8>, _: usize, _: How<'_>) -> Result<lc_zone, Error> {
        unsupported()
    }

    pub(super) fn capacity_of(zone: &lc_zone) -> lc_zone_capacity {
        match zone.never {}
    }

    pub(super) fn size_of(zone: &lc_zone) -> usize {
        match zone.never {}
    }

    pub(super) fn creation_id(zone: &lc_zone) -> u64 {
        match zone.never {}
    }

    pub(super) fn pool_builder(zone: &lc_zone, _: crate::pool::Builder, _: &str) -> crate::pool::Builder {
        match zone.never {}
    }

    pub(super) fn sweep(zone: &lc_zone) -> Result<super::lc_zone_sweep_report, Error> {
        match zone.never {}
    }

    pub(super) fn stats(zone: &lc_zone) -> (super::lc_zone_statistics, Vec<super::lc_zone_process>) {
        match zone.never {}
    }

    pub(super) fn hosts(zone: &lc_zone) -> Vec<(std::ffi::CString, std::ffi::CString, super::lc_zone_host)> {
        match zone.never {}
    }
}

#[cfg(test)]
mod tests;

#[cfg(all(test, target_os = "linux"))]
pub(super) mod pool_tests;
