//! `lc_pool_new_json_in_zone`: its fences (NULL pointers, strings that are not UTF-8, the
//! document's errors and the zone's `max_fails` refusal, each message in the caller's buffer
//! and `*out` NULL), and a JSON pool sharing a host state with an `lc_pool_new_in_zone` pool
//! of its name. The zone is caller memory (a `Vec<u64>`), so Miri runs these (and its leak
//! check sees a refusal that loses what it parsed). The multi-process cases are in C
//! (ffi-tests/c/test_zone_json.c).

use std::ffi::{CStr, c_char};
use std::ptr;

use super::*;
use crate::ffi::pick::{LC_OUTCOME_SUCCESS, lc_pick, lc_pick_release, lc_pool_select};
use crate::ffi::pool::{lc_pool_free, lc_pool_new_in_zone};
use crate::ffi::source::{lc_source_static_new, lc_upstream};
use crate::ffi::stats::{lc_host_stats, lc_pool_host_stats};
use crate::ffi::status::{
    LC_ERR_INVALID_CONFIG, LC_ERR_INVALID_UTF8, LC_ERR_NO_UPSTREAM, LC_ERR_NULL_POINTER, LC_ERR_ZONE_INCOMPATIBLE,
};
use crate::ffi::zone::lc_zone_free;
use crate::ffi::zone::pool_tests::zone_in;

/// `max_fails` 2 fits the ring of 2 of [`zone_in`]'s zone; 3 would not.
const HANDLER: &CStr = cr#"{"upstreams": [{"dial": "a:1", "max_requests": 2}],
    "health_checks": {"passive": {"fail_duration": "10s", "max_fails": 2}}}"#;

/// `lc_pool_new_json_in_zone` with a buffer: the status, the pool (NULL exactly on refusal,
/// checked) and the buffer's message.
fn new_json_in_zone(
    json: *const c_char,
    zone: *const lc_zone,
    name: *const c_char,
) -> (lc_status, *mut lc_pool, String) {
    let mut out = ptr::dangling_mut();
    let mut error = [b'x' as c_char; 128];
    let status = lc_pool_new_json_in_zone(json, zone, name, &mut out, error.as_mut_ptr(), error.len());
    assert_eq!(status == LC_OK, !out.is_null(), "status {status}");
    // SAFETY: the call NUL-terminates the buffer in every case but a NULL `out`.
    let message = unsafe { CStr::from_ptr(error.as_ptr()) }.to_str().unwrap().to_owned();
    (status, out, message)
}

fn in_flight(pool: *const lc_pool) -> u32 {
    let mut s = lc_host_stats::default();
    assert_eq!(lc_pool_host_stats(pool, c"a:1".as_ptr(), &mut s), LC_OK);
    s.in_flight
}

fn zeroed_pick() -> lc_pick {
    lc_pick { address: ptr::null(), tag: ptr::null_mut(), index: 0, host_id: 0, reservation: ptr::null_mut(), check: 0 }
}

#[test]
fn json_in_zone_refuses_nulls_bad_strings_bad_documents_and_a_ring_too_small() {
    let mut buf = Vec::new();
    let zone = zone_in(&mut buf);
    let name = c"app".as_ptr();
    let json = HANDLER.as_ptr();
    let not_utf8 = [b'a', 0xff, 0];
    let refusals: [(*const c_char, *const lc_zone, *const c_char, lc_status, &str); 9] = [
        (ptr::null(), zone, name, LC_ERR_NULL_POINTER, ""),
        (json, ptr::null(), name, LC_ERR_NULL_POINTER, ""),
        (json, zone, ptr::null(), LC_ERR_NULL_POINTER, ""),
        (not_utf8.as_ptr().cast(), zone, name, LC_ERR_INVALID_UTF8, ""),
        (json, zone, not_utf8.as_ptr().cast(), LC_ERR_INVALID_UTF8, ""),
        (c"[]".as_ptr(), zone, name, LC_ERR_INVALID_CONFIG, "expected an object"),
        (c"{}".as_ptr(), zone, name, LC_ERR_INVALID_CONFIG, "no upstreams: set upstreams or dynamic_upstreams"),
        (
            cr#"{"upstreams": [{"dial": "a:1", "colour": 1}]}"#.as_ptr(),
            zone,
            name,
            LC_ERR_INVALID_CONFIG,
            "upstreams[0].colour: unknown field",
        ),
        (
            cr#"{"upstreams": [{"dial": "a:1"}], "health_checks": {"passive": {"fail_duration": "1s", "max_fails": 3}}}"#
                .as_ptr(),
            zone,
            name,
            LC_ERR_ZONE_INCOMPATIBLE,
            "max_fails 3 is above the zone's fail_ring 2",
        ),
    ];
    for (json, zone, name, status, message) in refusals {
        assert_eq!(new_json_in_zone(json, zone, name), (status, ptr::null_mut(), message.to_owned()));
    }
    assert_eq!(lc_pool_new_json_in_zone(json, zone, name, ptr::null_mut(), ptr::null_mut(), 0), LC_ERR_NULL_POINTER);
    lc_zone_free(zone);
}

#[test]
fn json_pool_shares_its_name_with_a_pool_from_lc_pool_new_in_zone() {
    let mut buf = Vec::new();
    let zone = zone_in(&mut buf);
    let (status, json, message) = new_json_in_zone(HANDLER.as_ptr(), zone, c"app".as_ptr());
    assert_eq!((status, message.as_str()), (LC_OK, ""));
    let (_, other, _) = new_json_in_zone(HANDLER.as_ptr(), zone, c"other".as_ptr());
    let u = lc_upstream { address: c"a:1".as_ptr(), weight: 1, max_requests: 2, tier: 0, tag: ptr::null_mut() };
    let mut source = ptr::null_mut();
    assert_eq!(lc_source_static_new(&u, 1, &mut source), LC_OK);
    let mut built = ptr::null_mut();
    assert_eq!(lc_pool_new_in_zone(ptr::null(), zone, c"app".as_ptr(), source, &mut built), LC_OK);
    // The zone handle may go first: the pools keep the zone's memory.
    lc_zone_free(zone);

    let (mut p1, mut p2, mut p3) = (zeroed_pick(), zeroed_pick(), zeroed_pick());
    assert_eq!(lc_pool_select(json, ptr::null(), 0, &mut p1), LC_OK);
    assert_eq!(lc_pool_select(built, ptr::null(), 0, &mut p2), LC_OK);
    assert_eq!((in_flight(json), in_flight(built), in_flight(other)), (2, 2, 0));
    // The document's max_requests 2, reached by the two pools' picks together.
    assert_eq!(lc_pool_select(json, ptr::null(), 0, &mut p3), LC_ERR_NO_UPSTREAM);
    assert_eq!(lc_pool_select(other, ptr::null(), 0, &mut p3), LC_OK);
    assert_eq!((in_flight(json), in_flight(other)), (2, 1));
    for pick in [&mut p1, &mut p2, &mut p3] {
        assert_eq!(lc_pick_release(pick, LC_OUTCOME_SUCCESS), LC_OK);
    }
    assert_eq!((in_flight(json), in_flight(built), in_flight(other)), (0, 0, 0));
    for pool in [json, built, other] {
        lc_pool_free(pool);
    }
}
