//! Picks into a caller-owned struct, their release, and the per-thread picker.
//!
//! A successful select moves the reservation out of Rust into the pick's `reservation` field,
//! with a `check` word that binds it to the pick's address ([`crate::claim`]). Release
//! verifies the check word (a copy of the struct gets `LC_ERR_PICK_MOVED`) and claims the
//! reservation with one atomic swap to NULL: whoever gets the non-NULL pointer performs the
//! one release, every other (a second release, a racing thread, a zeroed struct) gets
//! `LC_ERR_ALREADY_RELEASED`. Neither changes any counter.

use std::ffi::{c_char, c_void};
use std::ptr;
use std::sync::atomic::AtomicPtr;

use crate::claim::{self, Claim};
use crate::error::Error;
use crate::ffi::pool::lc_pool;
use crate::ffi::status::{
    LC_ERR_ALREADY_RELEASED, LC_ERR_INVALID_ARGUMENT, LC_ERR_NOT_IN_FLIGHT, LC_ERR_NULL_POINTER, LC_ERR_PICK_MOVED,
    LC_OK, lc_status, status_of,
};
use crate::host::HostId;
use crate::pool::Picker;
use crate::reservation::{Outcome, Reservation};

/// One reserved host for one request, in storage the caller owns (stack, request struct).
///
/// Zero-initialise it (`lc_pick pick = {0};` or `memset`) before its first select; a
/// select fills it, `lc_pick_release()` ends it, after which it may be selected into again.
/// The fields are read-only for the caller.
///
/// A pick must be released at the address it was selected into: the reservation is bound
/// to that address, and a copy of the struct (`lc_pick copy = pick;`, a `memcpy` into other
/// storage, a struct returned by value) is refused by `lc_pick_release()` with
/// `LC_ERR_PICK_MOVED`, changing nothing (and a select into such a copy gets
/// `LC_ERR_INVALID_ARGUMENT` until it is zeroed). Two things cannot be detected, because the
/// struct's bytes and address are all a release sees:
/// * a copy `memcpy`d back to the original address after the original was released: it
///   is the original again, and releasing it releases the host a second time. If the host
///   has nothing in flight then, the release is refused with `LC_ERR_NOT_IN_FLIGHT` and
///   logged; if another request holds the host, that request's count is taken instead (its
///   own release later gets `LC_ERR_NOT_IN_FLIGHT`); if it races a select that fails on the
///   host (full or down), the release may succeed and leave the host unpickable for good
///   (CONCURRENCY.md, "refused releases"); and if the host was removed meanwhile it may
///   already be freed (undefined behaviour). Never copy a pick back.
/// * a late duplicate release after reuse: once `lc_pick_release()` returned `LC_OK`, a
///   select into the same struct stores a new reservation, and any release of that struct
///   (including a second, stale call meant for the old one) ends the new reservation. The
///   rule: call `lc_pick_release()` on a pick once per select, and do not select into it
///   again until every call that may release it has returned (e.g. the code path that
///   releases the request owns the pick until it selects again).
///
/// Thread safety: a pick may be released from any thread, and concurrent releases of one
/// pick are safe (exactly one succeeds). Selecting into a pick while another thread
/// releases it is not.
#[repr(C)]
pub struct lc_pick {
    /// The host's dial address, NUL-terminated; valid until this pick is released (also
    /// after the host left the list, and after the pool was freed).
    pub address: *const c_char,
    /// The `tag` of the list entry that was picked.
    pub tag: *mut c_void,
    /// Position of the picked entry in the merged list it was picked from.
    pub index: usize,
    /// The host's identity: pass it in the exclusion array of a retry so that the retry
    /// goes elsewhere. Never 0 and never reused by another host in this process.
    pub host_id: u64,
    /// Private: the reservation this pick holds, NULL once released. Never write it.
    pub reservation: *mut c_void,
    /// Private: binds `reservation` to this struct's address. Never write it.
    pub check: u64,
}

/// How the request sent to a picked host ended (one of `LC_OUTCOME_*`).
pub type lc_outcome = u32;

/// The request completed.
pub const LC_OUTCOME_SUCCESS: lc_outcome = 0;
/// The request failed; counts towards the host's passive-health window.
pub const LC_OUTCOME_FAILURE: lc_outcome = 1;

/// The pick's `reservation` field, as the atomic that every release uses.
///
/// # Safety
/// `pick` points to a live `lc_pick`, and every concurrent access to its `reservation` field
/// goes through this function (the documented contract: callers never write the field and
/// never select into a pick that another thread may be releasing).
unsafe fn reservation_cell<'a>(pick: *mut lc_pick) -> &'a AtomicPtr<c_void> {
    // SAFETY: the field is a valid, aligned pointer-sized location, and by the contract above
    // it is only ever accessed atomically while shared.
    unsafe { AtomicPtr::from_ptr(ptr::addr_of_mut!((*pick).reservation)) }
}

/// Fills `out` from a select's result. `out` is a checked, non-NULL pick.
fn fill(out: *mut lc_pick, result: Result<Reservation, Error>) -> lc_status {
    match result {
        Ok(r) => {
            let (address, tag, index, host_id) =
                (r.address_cstr().as_ptr(), ptr::with_exposed_provenance_mut(r.tag()), r.index(), r.host_id().0);
            let (reservation, check) = claim::seal(r, out.addr());
            let pick = lc_pick { address, tag, index, host_id, reservation, check };
            // SAFETY: `out` is a live pick that no other thread touches during a select.
            unsafe { out.write(pick) };
            LC_OK
        }
        Err(e) => status_of(&e),
    }
}

/// Checks the select arguments shared by pools and pickers. `Ok` carries the exclusion set.
fn check_select<'a>(exclude: *const u64, exclude_len: usize, out: *mut lc_pick) -> Result<&'a [HostId], lc_status> {
    if out.is_null() {
        return Err(LC_ERR_NULL_POINTER);
    }
    // SAFETY: `out` is a live pick (documented) and, during a select, not shared.
    if !unsafe { (*out).reservation }.is_null() {
        return Err(LC_ERR_INVALID_ARGUMENT);
    }
    if exclude_len == 0 {
        return Ok(&[]);
    }
    if exclude.is_null() {
        return Err(LC_ERR_NULL_POINTER);
    }
    // SAFETY: `exclude` points to `exclude_len` ids that live for the call (documented), and
    // `HostId` is `repr(transparent)` over `u64`.
    Ok(unsafe { std::slice::from_raw_parts(exclude.cast::<HostId>(), exclude_len) })
}

/// Picks a host by the pool's policy and reserves it for one request, into `*out`.
///
/// `exclude` lists `host_id`s that must not be picked (the hosts already tried for this
/// request); it may be NULL when `exclude_len` is 0. `*out` must not hold a reservation
/// (zeroed or released; otherwise `LC_ERR_INVALID_ARGUMENT`, so that a reservation is never
/// silently lost). On success it holds the new reservation, which must be released exactly
/// once with `lc_pick_release()`. `LC_ERR_NO_UPSTREAM` when no host is available, or when 8
/// reservations in one select lost their race to other threads filling or downing the hosts
/// its scans chose (CONCURRENCY.md, known anomalies): the bound that keeps a select
/// wait-free.
///
/// Wait-free once the thread is warmed up (`lc_thread_warmup()`): no lock, no system call, no
/// allocation. Without the warm-up, the thread's first select may allocate, take the C
/// library's thread-exit lock and make system calls (registering the thread), once. May be
/// called from any thread.
#[unsafe(no_mangle)]
pub extern "C" fn lc_pool_select(
    pool: *const lc_pool,
    exclude: *const u64,
    exclude_len: usize,
    out: *mut lc_pick,
) -> lc_status {
    ffi_boundary!("lc_pool_select", {
        let pool = try_ref!(pool);
        match check_select(exclude, exclude_len, out) {
            Ok(exclude) => fill(out, pool.pool.select_excluding(exclude)),
            Err(status) => status,
        }
    })
}

/// Prepares the calling thread so that its picks never allocate, from the first one on.
///
/// A thread's first select (`lc_pool_select()` or `lc_picker_select()`) otherwise allocates
/// once: arc-swap's per-thread record (and its thread-local destructor) and the seeding of
/// the thread's random generator. Call this once on each thread that selects, before the
/// selects that must not allocate (an nginx worker: in `init_process`); `lc_picker_new()`
/// does it for the thread that calls it. After it, select and release make no allocation.
///
/// Cheap and idempotent; may allocate (once per thread). Any thread, at any time.
#[unsafe(no_mangle)]
pub extern "C" fn lc_thread_warmup() {
    ffi_boundary!("lc_thread_warmup", {
        crate::pool::warm_up_thread();
    })
}

/// Ends the request `pick` was reserved for, with `outcome` (one of `LC_OUTCOME_*`).
///
/// The release lands on the host the pick was made on, even after that host left the list
/// or the pool was freed; afterwards `pick->address` is no longer valid. A pick that holds
/// no reservation (released already, or zeroed) gives `LC_ERR_ALREADY_RELEASED`, and a copy
/// of a pick at another address gives `LC_ERR_PICK_MOVED`; neither changes any counter. When
/// several threads release one pick at once exactly one gets `LC_OK`. An unknown outcome
/// gives `LC_ERR_INVALID_ARGUMENT` and releases nothing. `LC_ERR_NOT_IN_FLIGHT` (logged as
/// an error) says the host had nothing in flight, so nothing was released: the reservation
/// had been released already through a copy that no check can catch (see `lc_pick`: a copy
/// `memcpy`d back to this address); the pick is consumed. Nothing is detected when the
/// struct was selected into again: the release then ends the new reservation (see `lc_pick`
/// for the rule).
///
/// Wait-free (with `LC_OUTCOME_FAILURE` too; CONCURRENCY.md gives the step bound): no lock,
/// no allocation, no system call. The exception is a refused release
/// (`LC_ERR_NOT_IN_FLIGHT`, a caller's bug), which logs an error: it formats a message and
/// calls the log callback. May be called from any thread.
#[unsafe(no_mangle)]
pub extern "C" fn lc_pick_release(pick: *mut lc_pick, outcome: lc_outcome) -> lc_status {
    ffi_boundary!("lc_pick_release", release(pick, outcome, claim::release_claimed))
}

/// The release protocol of `lc_pick_release()` and `lc_picker_release()`: check the
/// arguments, claim the pick's reservation (once, at its own address), and end it with
/// `end`, which returns false when the host had nothing in flight.
fn release(pick: *mut lc_pick, outcome: lc_outcome, end: impl FnOnce(Reservation, Outcome) -> bool) -> lc_status {
    if pick.is_null() {
        return LC_ERR_NULL_POINTER;
    }
    let outcome = match outcome {
        LC_OUTCOME_SUCCESS => Outcome::Success,
        LC_OUTCOME_FAILURE => Outcome::Failure,
        _ => return LC_ERR_INVALID_ARGUMENT,
    };
    // SAFETY: `pick` is a live pick (documented); see `reservation_cell`.
    let cell = unsafe { reservation_cell(pick) };
    // SAFETY: as above; only `fill` writes `check`, never during a release (documented).
    let check = unsafe { ptr::addr_of!((*pick).check).read() };
    // SAFETY: `cell` and `check` are the fields of the pick at `pick`, filled by `fill`
    // (with `seal` for this address) or zeroed or released; only claims write them now.
    match unsafe { claim::claim(cell, check, pick.addr()) } {
        Ok(reservation) => {
            if end(reservation, outcome) {
                LC_OK
            } else {
                LC_ERR_NOT_IN_FLIGHT
            }
        }
        Err(Claim::Empty) => LC_ERR_ALREADY_RELEASED,
        Err(Claim::Moved) => LC_ERR_PICK_MOVED,
    }
}

/// A per-thread selector (opaque): picks like `lc_pool_select()`, with the current list
/// cached and its own random generator.
///
/// Not thread-safe: use each picker from one thread at a time (e.g. one per nginx worker
/// or per thread). It keeps the pool alive, and while idle it keeps the list it last used
/// (and the state of hosts removed since) until its next pick.
pub struct lc_picker {
    picker: Picker,
}

/// Creates a picker for `pool`. `seed` seeds its random generator (tie breaks and p2c
/// draws); 0 picks a random seed. Any thread. On success `*out` is a new picker owned by
/// the caller (free it with `lc_picker_free()`); on error it is NULL.
#[unsafe(no_mangle)]
pub extern "C" fn lc_picker_new(pool: *const lc_pool, seed: u64, out: *mut *mut lc_picker) -> lc_status {
    ffi_boundary!("lc_picker_new", {
        // `out` first, so that it is NULL on every error, a NULL `pool` included.
        let out = try_out!(out);
        let pool = try_ref!(pool);
        let picker = if seed == 0 { pool.pool.picker() } else { pool.pool.picker_seeded(seed) };
        // SAFETY: `try_out!` checked `out`.
        unsafe { out.write(Box::into_raw(Box::new(lc_picker { picker }))) };
        LC_OK
    })
}

/// As `lc_pool_select()`, through a picker. Wait-free. One thread at a time per picker;
/// the picks it makes may be released from any thread.
#[unsafe(no_mangle)]
pub extern "C" fn lc_picker_select(
    picker: *mut lc_picker,
    exclude: *const u64,
    exclude_len: usize,
    out: *mut lc_pick,
) -> lc_status {
    ffi_boundary!("lc_picker_select", {
        let picker = try_mut!(picker);
        match check_select(exclude, exclude_len, out) {
            Ok(exclude) => fill(out, picker.picker.select_excluding(exclude)),
            Err(status) => status,
        }
    })
}

/// Ends the request `pick` was reserved for, with `outcome`, through `picker`: as
/// `lc_pick_release()` (the same claim, statuses and refusals), but a pick on a zone pool's
/// host is attributed through the picker's own record in the zone instead of the calling
/// thread's, so the release needs no per-thread lookup, and a thread that only picks and
/// releases through its picker needs no record of its own (design 3.4). A pick from a heap pool, or from a pool on another zone, is released
/// exactly as by `lc_pick_release()`.
///
/// Which to use: a pick made by a picker and released on the thread that uses that picker
/// (an nginx worker's `free` handler): `lc_picker_release()` with that picker; any other
/// pick, or a release from another thread: `lc_pick_release()`. Both end the same
/// reservation exactly once; the counts in the zone are the same either way.
///
/// `picker` is used like `lc_picker_select()`: by one thread at a time, the same thread that
/// selects with it (a picker made before `fork()` is not for use in the child). The pick may
/// come from any pool. Wait-free as `lc_pick_release()`, with the same statuses (a refused
/// release, `LC_ERR_NOT_IN_FLIGHT`, is logged as an error as there).
#[unsafe(no_mangle)]
pub extern "C" fn lc_picker_release(picker: *mut lc_picker, pick: *mut lc_pick, outcome: lc_outcome) -> lc_status {
    ffi_boundary!("lc_picker_release", {
        let picker = try_mut!(picker);
        release(pick, outcome, |reservation, outcome| picker.picker.release_raw(reservation, outcome))
    })
}

/// Frees a picker. NULL is ignored. Its picks stay valid.
#[unsafe(no_mangle)]
pub extern "C" fn lc_picker_free(picker: *mut lc_picker) {
    ffi_boundary!("lc_picker_free", {
        drop(take_box!(picker));
    })
}
