//! `lc_pool_new_in_zone` and `lc_picker_release`: their fences (NULL pointers, a name that is
//! not UTF-8, `max_fails` above the zone's ring, an unknown policy, `source` consumed on every
//! refusal), pools on one zone sharing a host state by name, and both releases returning the
//! zone's counts to 0. The zone is caller memory (a `Vec<u64>`), so Miri runs these (and its
//! leak check sees a refused call that did not free its source). The multi-process cases are
//! in C (ffi-tests/c/test_zone_pool.c).

use std::ffi::c_char;
use std::ptr;

use super::*;
use crate::ffi::pick::{
    LC_OUTCOME_SUCCESS, lc_pick, lc_pick_release, lc_picker, lc_picker_free, lc_picker_new, lc_picker_release,
    lc_picker_select, lc_pool_select,
};
use crate::ffi::pool::{
    LC_POLICY_FIRST, lc_pool, lc_pool_config, lc_pool_config_default, lc_pool_free, lc_pool_new, lc_pool_new_in_zone,
};
use crate::ffi::source::{lc_source, lc_source_static_new, lc_upstream};
use crate::ffi::stats::{lc_host_stats, lc_pool_host_stats};
use crate::ffi::status::{
    LC_ERR_ALREADY_RELEASED, LC_ERR_INVALID_LIMIT, LC_ERR_INVALID_UTF8, LC_ERR_NO_UPSTREAM, LC_ERR_NOT_IN_FLIGHT,
    LC_ERR_PICK_MOVED, LC_ERR_ZONE_INCOMPATIBLE,
};

/// A small zone (also the JSON-on-a-zone tests', src/ffi/config/zone_tests.rs, through
/// [`zone_in`]); a ring of 2: `max_fails` 3 does not fit.
pub(crate) const CAPS: lc_zone_capacity =
    lc_zone_capacity { hosts: 8, address_bytes: 64, fail_ring: 2, processes: 3, threads: 8 };

/// A zone made in `buf`, which must outlive it and every pool on it.
pub(crate) fn zone_in(buf: &mut Vec<u64>) -> *mut lc_zone {
    let len = lc_zone_size(&CAPS);
    buf.resize(len.div_ceil(8), 0);
    let mut zone = ptr::null_mut();
    assert_eq!(lc_zone_from_memory(buf.as_mut_ptr().cast(), len, &CAPS, LC_ZONE_CREATE, &mut zone), LC_OK);
    zone
}

/// A static source of `address` with `max_requests` (0: no limit).
fn source(address: &std::ffi::CStr, max_requests: u32) -> *mut lc_source {
    let u = lc_upstream { address: address.as_ptr(), weight: 1, max_requests, tier: 0, tag: ptr::null_mut() };
    let mut s = ptr::null_mut();
    assert_eq!(lc_source_static_new(&u, 1, &mut s), LC_OK);
    s
}

fn config(max_fails: u32) -> lc_pool_config {
    let mut c = lc_pool_config { policy: 0, max_fails: 0, fail_duration_ms: 0 };
    assert_eq!(lc_pool_config_default(&mut c), LC_OK);
    c.max_fails = max_fails;
    c
}

/// `lc_pool_new_in_zone` with the status checked against `*out` (NULL exactly on refusal).
fn new_in_zone(
    config: Option<&lc_pool_config>,
    zone: *const lc_zone,
    name: *const c_char,
    source: *mut lc_source,
) -> (lc_status, *mut lc_pool) {
    let mut out = ptr::dangling_mut();
    let status = lc_pool_new_in_zone(config.map_or(ptr::null(), ptr::from_ref), zone, name, source, &mut out);
    assert_eq!(status == LC_OK, !out.is_null(), "status {status}");
    (status, out)
}

fn in_flight(pool: *const lc_pool, address: &std::ffi::CStr) -> u32 {
    let mut s = lc_host_stats::default();
    assert_eq!(lc_pool_host_stats(pool, address.as_ptr(), &mut s), LC_OK);
    s.in_flight
}

fn zeroed_pick() -> lc_pick {
    lc_pick { address: ptr::null(), tag: ptr::null_mut(), index: 0, host_id: 0, reservation: ptr::null_mut(), check: 0 }
}

fn picker_of(pool: *const lc_pool) -> *mut lc_picker {
    let mut p = ptr::null_mut();
    assert_eq!(lc_picker_new(pool, 7, &mut p), LC_OK);
    p
}

#[test]
fn new_in_zone_refuses_nulls_and_bad_names_and_consumes_the_source() {
    let mut buf = Vec::new();
    let zone = zone_in(&mut buf);
    let name = c"app".as_ptr();
    // Every refusal below is given a fresh source: Miri's leak check fails the test if a
    // refusal does not free it.
    assert_eq!(new_in_zone(None, ptr::null(), name, source(c"a:1", 0)).0, LC_ERR_NULL_POINTER);
    assert_eq!(new_in_zone(None, zone, ptr::null(), source(c"a:1", 0)).0, LC_ERR_NULL_POINTER);
    assert_eq!(new_in_zone(None, zone, name, ptr::null_mut()).0, LC_ERR_NULL_POINTER);
    assert_eq!(lc_pool_new_in_zone(ptr::null(), zone, name, source(c"a:1", 0), ptr::null_mut()), LC_ERR_NULL_POINTER);
    let not_utf8 = [b'a', 0xff, 0];
    assert_eq!(new_in_zone(None, zone, not_utf8.as_ptr().cast(), source(c"a:1", 0)).0, LC_ERR_INVALID_UTF8);
    lc_zone_free(zone);
}

#[test]
fn new_in_zone_refuses_a_ring_too_small_and_what_lc_pool_new_refuses() {
    let mut buf = Vec::new();
    let zone = zone_in(&mut buf);
    let name = c"app".as_ptr();
    // max_fails 3 over a ring of 2: the zone's refusal, whatever the heap limit allows.
    assert_eq!(new_in_zone(Some(&config(3)), zone, name, source(c"a:1", 0)).0, LC_ERR_ZONE_INCOMPATIBLE);
    // The configuration handling is lc_pool_new's: its refusals, with its statuses.
    assert_eq!(new_in_zone(Some(&config(u32::MAX)), zone, name, source(c"a:1", 0)).0, LC_ERR_INVALID_LIMIT);
    let mut zero_window = config(1);
    zero_window.fail_duration_ms = 0;
    assert_eq!(new_in_zone(Some(&zero_window), zone, name, source(c"a:1", 0)).0, LC_ERR_INVALID_LIMIT);
    let mut unknown = config(1);
    unknown.policy = 99;
    assert_eq!(new_in_zone(Some(&unknown), zone, name, source(c"a:1", 0)).0, LC_ERR_INVALID_ARGUMENT);
    // A key (`name NUL address`) longer than the zone's 64 address bytes: not a refusal of
    // the pool, but of its first refresh (logged): the pool is made, and lists nothing.
    let long = [b'n'; 70].iter().copied().chain([0]).collect::<Vec<u8>>();
    let (status, pool) = new_in_zone(None, zone, long.as_ptr().cast(), source(c"a:1", 0));
    assert_eq!(status, LC_OK);
    let mut pick = zeroed_pick();
    assert_eq!(lc_pool_select(pool, ptr::null(), 0, &mut pick), LC_ERR_NO_UPSTREAM);
    lc_pool_free(pool);
    // The ring's own size fits; the policy and the rest of the config are applied.
    let mut first = config(2);
    first.policy = LC_POLICY_FIRST;
    let (status, pool) = new_in_zone(Some(&first), zone, name, source(c"a:1", 0));
    assert_eq!(status, LC_OK);
    lc_pool_free(pool);
    lc_zone_free(zone);
}

#[test]
fn pools_with_one_name_share_the_host_state_and_both_releases_return_it() {
    let mut buf = Vec::new();
    let zone = zone_in(&mut buf);
    let (s, a) = new_in_zone(None, zone, c"app".as_ptr(), source(c"a:1", 2));
    assert_eq!(s, LC_OK);
    let (s, b) = new_in_zone(None, zone, c"app".as_ptr(), source(c"a:1", 2));
    assert_eq!(s, LC_OK);
    let (s, other) = new_in_zone(None, zone, c"other".as_ptr(), source(c"a:1", 2));
    assert_eq!(s, LC_OK);
    // The zone handle may go first: the pools keep the zone's memory.
    lc_zone_free(zone);

    let picker = picker_of(a);
    let (mut p1, mut p2) = (zeroed_pick(), zeroed_pick());
    assert_eq!(lc_picker_select(picker, ptr::null(), 0, &mut p1), LC_OK);
    assert_eq!(lc_pool_select(b, ptr::null(), 0, &mut p2), LC_OK);
    assert_eq!((in_flight(a, c"a:1"), in_flight(b, c"a:1"), in_flight(other, c"a:1")), (2, 2, 0));
    // max_requests 2 holds over both pools of the name, not over the other name.
    let mut p3 = zeroed_pick();
    assert_eq!(lc_pool_select(a, ptr::null(), 0, &mut p3), LC_ERR_NO_UPSTREAM);
    assert_eq!(lc_pool_select(other, ptr::null(), 0, &mut p3), LC_OK);
    assert_eq!(lc_pick_release(&mut p3, LC_OUTCOME_SUCCESS), LC_OK);

    // Released through the picker (its record) and through the thread (the other pick).
    assert_eq!(lc_picker_release(picker, &mut p1, LC_OUTCOME_SUCCESS), LC_OK);
    assert_eq!((in_flight(a, c"a:1"), in_flight(b, c"a:1")), (1, 1));
    assert_eq!(lc_picker_release(picker, &mut p1, LC_OUTCOME_SUCCESS), LC_ERR_ALREADY_RELEASED);
    assert_eq!(lc_pick_release(&mut p2, LC_OUTCOME_SUCCESS), LC_OK);
    assert_eq!((in_flight(a, c"a:1"), in_flight(b, c"a:1"), in_flight(other, c"a:1")), (0, 0, 0));

    // A pick of the thread released through the picker, and the other way round.
    assert_eq!(lc_pool_select(b, ptr::null(), 0, &mut p1), LC_OK);
    assert_eq!(lc_picker_select(picker, ptr::null(), 0, &mut p2), LC_OK);
    assert_eq!(in_flight(a, c"a:1"), 2);
    assert_eq!(lc_picker_release(picker, &mut p1, LC_OUTCOME_SUCCESS), LC_OK);
    assert_eq!(lc_pick_release(&mut p2, LC_OUTCOME_SUCCESS), LC_OK);
    assert_eq!((in_flight(a, c"a:1"), in_flight(b, c"a:1")), (0, 0));

    lc_picker_free(picker);
    for pool in [a, b, other] {
        lc_pool_free(pool);
    }
}

#[test]
fn picker_release_refuses_as_pick_release_does() {
    let mut buf = Vec::new();
    let zone = zone_in(&mut buf);
    let (s, pool) = new_in_zone(None, zone, c"app".as_ptr(), source(c"a:1", 0));
    assert_eq!(s, LC_OK);
    let picker = picker_of(pool);
    let mut pick = zeroed_pick();
    assert_eq!(lc_picker_release(ptr::null_mut(), &mut pick, LC_OUTCOME_SUCCESS), LC_ERR_NULL_POINTER);
    assert_eq!(lc_picker_release(picker, ptr::null_mut(), LC_OUTCOME_SUCCESS), LC_ERR_NULL_POINTER);
    assert_eq!(lc_picker_release(picker, &mut pick, LC_OUTCOME_SUCCESS), LC_ERR_ALREADY_RELEASED);
    assert_eq!(lc_picker_select(picker, ptr::null(), 0, &mut pick), LC_OK);
    assert_eq!(lc_picker_release(picker, &mut pick, 7), LC_ERR_INVALID_ARGUMENT);
    // SAFETY: a bitwise copy at another address, which the release must refuse untouched.
    let mut copy = unsafe { ptr::read(&pick) };
    assert_eq!(lc_picker_release(picker, &mut copy, LC_OUTCOME_SUCCESS), LC_ERR_PICK_MOVED);
    assert_eq!(in_flight(pool, c"a:1"), 1);
    assert_eq!(lc_picker_release(picker, &mut pick, LC_OUTCOME_SUCCESS), LC_OK);
    assert_eq!(in_flight(pool, c"a:1"), 0);
    lc_picker_free(picker);
    lc_pool_free(pool);
    lc_zone_free(zone);
}

#[test]
fn picker_release_of_a_heap_pick_is_pick_release() {
    let mut heap = ptr::null_mut();
    assert_eq!(lc_pool_new(ptr::null(), source(c"a:1", 0), &mut heap), LC_OK);
    let picker = picker_of(heap);
    let mut pick = zeroed_pick();
    assert_eq!(lc_picker_select(picker, ptr::null(), 0, &mut pick), LC_OK);
    // SAFETY: a bitwise copy of the pick, kept to be written back after its release.
    let saved = unsafe { ptr::read(&pick) };
    assert_eq!(in_flight(heap, c"a:1"), 1);
    assert_eq!(lc_picker_release(picker, &mut pick, LC_OUTCOME_SUCCESS), LC_OK);
    assert_eq!(in_flight(heap, c"a:1"), 0);
    // The copy written back is the original again: the host has nothing in flight, so the
    // release is refused with lc_pick_release's status, and the count stays 0.
    pick = saved;
    assert_eq!(lc_picker_release(picker, &mut pick, LC_OUTCOME_SUCCESS), LC_ERR_NOT_IN_FLIGHT);
    assert_eq!(in_flight(heap, c"a:1"), 0);
    lc_picker_free(picker);
    lc_pool_free(heap);
}

/// As above on a zone pool: a pick written back after its release through the picker's own
/// record is refused with `LC_ERR_NOT_IN_FLIGHT` (as by `lc_pick_release`), not `LC_OK`, and
/// the shared count stays 0.
#[test]
fn picker_release_of_a_zone_pick_written_back_is_refused_as_not_in_flight() {
    let mut buf = Vec::new();
    let zone = zone_in(&mut buf);
    let (status, pool) = new_in_zone(None, zone, c"app".as_ptr(), source(c"a:1", 0));
    assert_eq!(status, LC_OK);
    let picker = picker_of(pool);
    let mut pick = zeroed_pick();
    assert_eq!(lc_picker_select(picker, ptr::null(), 0, &mut pick), LC_OK);
    // SAFETY: a bitwise copy of the pick, kept to be written back after its release.
    let saved = unsafe { ptr::read(&pick) };
    assert_eq!(in_flight(pool, c"a:1"), 1);
    assert_eq!(lc_picker_release(picker, &mut pick, LC_OUTCOME_SUCCESS), LC_OK);
    assert_eq!(in_flight(pool, c"a:1"), 0);
    pick = saved;
    assert_eq!(lc_picker_release(picker, &mut pick, LC_OUTCOME_SUCCESS), LC_ERR_NOT_IN_FLIGHT);
    assert_eq!(in_flight(pool, c"a:1"), 0);
    lc_picker_free(picker);
    lc_pool_free(pool);
    lc_zone_free(zone);
}
