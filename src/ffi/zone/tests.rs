//! The zone functions' fences: NULL pointers, invalid capacities, refusals with their
//! statuses, and caller memory made and attached (on a `Vec<u64>`, so Miri runs them).
//! Messages are checked in Rust (src/zone/tests.rs) and, through the log, in C
//! (ffi-tests/c/test_zone.c): the log callback is process-wide, and the boundary's log test
//! owns it while it runs.

use std::ptr;

use super::*;
use crate::ffi::status::{LC_ERR_INVALID_LIMIT, LC_ERR_ZONE_BUSY, LC_ERR_ZONE_INCOMPATIBLE, LC_ERR_ZONE_TOO_SMALL};

const SMALL: lc_zone_capacity =
    lc_zone_capacity { hosts: 8, address_bytes: 64, fail_ring: 2, processes: 3, threads: 4 };

/// Something that is not NULL, to see that a refusal sets `*out` to NULL.
fn stale() -> *mut lc_zone {
    ptr::dangling_mut()
}

fn zeroed_buffer(bytes: usize) -> Vec<u64> {
    vec![0; bytes.div_ceil(8)]
}

/// `lc_zone_from_memory` on the first `len` bytes of `buf`: the status and the zone (NULL on
/// refusal, checked).
fn from_memory(
    buf: &mut Vec<u64>,
    len: usize,
    caps: Option<&lc_zone_capacity>,
    init: lc_zone_init,
) -> (lc_status, *mut lc_zone) {
    assert!(len <= buf.len() * 8);
    let mut out = stale();
    // `Vec::as_mut_ptr` makes no reference to the elements, so earlier zones on `buf` stay
    // valid under Stacked Borrows.
    let status =
        lc_zone_from_memory(buf.as_mut_ptr().cast(), len, caps.map_or(ptr::null(), ptr::from_ref), init, &mut out);
    assert_eq!(status == LC_OK, !out.is_null(), "status {status}");
    (status, out)
}

fn capacity_of(zone: *const lc_zone) -> lc_zone_capacity {
    let mut caps = lc_zone_capacity { hosts: 0, address_bytes: 0, fail_ring: 0, processes: 0, threads: 0 };
    assert_eq!(lc_zone_capacity_of(zone, &mut caps), LC_OK);
    caps
}

#[test]
fn null_pointers_are_refused_and_out_is_set_to_null() {
    let mut caps = SMALL;
    let mut out = stale();
    assert_eq!(lc_zone_capacity_default(ptr::null_mut()), LC_ERR_NULL_POINTER);
    assert_eq!(lc_zone_size(ptr::null()), 0);
    assert_eq!(lc_zone_capacity_fit(1 << 20, ptr::null_mut()), LC_ERR_NULL_POINTER);
    assert_eq!(lc_zone_new_anonymous(ptr::null(), &mut out), LC_ERR_NULL_POINTER);
    assert!(out.is_null());
    assert_eq!(lc_zone_new_anonymous(&caps, ptr::null_mut()), LC_ERR_NULL_POINTER);
    out = stale();
    assert_eq!(lc_zone_open(ptr::null(), &caps, &mut out), LC_ERR_NULL_POINTER);
    assert!(out.is_null());
    out = stale();
    assert_eq!(lc_zone_open(c"/dev/shm/never-made".as_ptr(), ptr::null(), &mut out), LC_ERR_NULL_POINTER);
    assert!(out.is_null());
    assert_eq!(lc_zone_open(c"/dev/shm/never-made".as_ptr(), &caps, ptr::null_mut()), LC_ERR_NULL_POINTER);

    let mut buf = zeroed_buffer(lc_zone_size(&SMALL));
    let len = buf.len() * 8;
    out = stale();
    assert_eq!(lc_zone_from_memory(ptr::null_mut(), len, &caps, LC_ZONE_CREATE, &mut out), LC_ERR_NULL_POINTER);
    assert!(out.is_null());
    for init in [LC_ZONE_CREATE, LC_ZONE_CREATE_OR_ATTACH] {
        assert_eq!(from_memory(&mut buf, len, None, init).0, LC_ERR_NULL_POINTER);
    }
    let mem = buf.as_mut_ptr().cast();
    assert_eq!(lc_zone_from_memory(mem, len, &caps, LC_ZONE_CREATE, ptr::null_mut()), LC_ERR_NULL_POINTER);

    assert_eq!(lc_zone_capacity_of(ptr::null(), &mut caps), LC_ERR_NULL_POINTER);
    assert_eq!(lc_zone_size_of(ptr::null()), 0);
    assert_eq!(lc_zone_creation_id(ptr::null()), 0);
    lc_zone_free(ptr::null_mut());
    // None of those touched the memory: it is still fresh.
    let (status, zone) = from_memory(&mut buf, len, Some(&SMALL), LC_ZONE_CREATE);
    assert_eq!(status, LC_OK);
    assert_eq!(lc_zone_capacity_of(zone, ptr::null_mut()), LC_ERR_NULL_POINTER);
    lc_zone_free(zone);
}

#[test]
fn default_capacity_is_the_rust_default_and_its_size_the_design_figure() {
    let mut caps = SMALL;
    assert_eq!(lc_zone_capacity_default(&mut caps), LC_OK);
    assert_eq!(caps, lc_zone_capacity { hosts: 1024, address_bytes: 256, fail_ring: 16, processes: 64, threads: 256 });
    // 256 + 1024 slots x 640 + 64 processes x 256 + 256 threads x 128 + 256 x 1024 x 8.
    assert_eq!(lc_zone_size(&caps), 256 + 655_360 + 16_384 + 32_768 + 2_097_152);
}

#[test]
fn invalid_capacities_have_size_0_and_are_invalid_limits() {
    let mut buf = zeroed_buffer(1 << 16);
    let len = buf.len() * 8;
    for bad in [
        lc_zone_capacity { hosts: 0, ..SMALL },
        lc_zone_capacity { hosts: 1 << 30, ..SMALL },
        lc_zone_capacity { address_bytes: 0, ..SMALL },
        lc_zone_capacity { address_bytes: 4096, ..SMALL },
        lc_zone_capacity { fail_ring: 1025, ..SMALL },
        lc_zone_capacity { processes: 16384, ..SMALL },
        lc_zone_capacity { threads: 1 << 31, ..SMALL },
        lc_zone_capacity { hosts: (1 << 30) - 1, threads: (1 << 31) - 1, ..SMALL },
    ] {
        assert_eq!(lc_zone_size(&bad), 0, "{bad:?}");
        let mut out = stale();
        // Refused before any memory is asked for, so this runs under Miri too.
        assert_eq!(lc_zone_new_anonymous(&bad, &mut out), LC_ERR_INVALID_LIMIT, "{bad:?}");
        assert!(out.is_null());
        for init in [LC_ZONE_CREATE, LC_ZONE_CREATE_OR_ATTACH] {
            assert_eq!(from_memory(&mut buf, len, Some(&bad), init).0, LC_ERR_INVALID_LIMIT, "{bad:?}");
        }
    }
    assert!(buf.iter().all(|w| *w == 0), "a refusal wrote to the memory");
}

#[test]
fn capacity_fit_fills_the_most_hosts_and_leaves_caps_alone_on_refusal() {
    let size = |hosts| lc_zone_size(&lc_zone_capacity { hosts, ..SMALL });
    let fit = |bytes, hosts_given| {
        let mut caps = lc_zone_capacity { hosts: hosts_given, ..SMALL };
        (lc_zone_capacity_fit(bytes, &mut caps), caps)
    };
    for hosts in [1, 2, 64, 65, 500] {
        assert_eq!(fit(size(hosts), 0), (LC_OK, lc_zone_capacity { hosts, ..SMALL }));
        assert_eq!(fit(size(hosts + 1) - 1, u32::MAX), (LC_OK, lc_zone_capacity { hosts, ..SMALL }));
    }
    assert_eq!(fit(usize::MAX, 7).1.hosts, (1 << 30) - 1);
    // Not one host fits: the status, and `caps` as it was.
    assert_eq!(fit(size(1) - 1, 7), (LC_ERR_ZONE_TOO_SMALL, lc_zone_capacity { hosts: 7, ..SMALL }));
    assert_eq!(fit(0, 7), (LC_ERR_ZONE_TOO_SMALL, lc_zone_capacity { hosts: 7, ..SMALL }));
    let mut bad = lc_zone_capacity { threads: 0, ..SMALL };
    assert_eq!(lc_zone_capacity_fit(1 << 20, &mut bad), LC_ERR_INVALID_LIMIT);
    assert_eq!(bad, lc_zone_capacity { threads: 0, ..SMALL });
}

#[test]
fn caller_memory_is_created_then_attached_and_refused_when_too_small() {
    let size = lc_zone_size(&SMALL);
    let mut buf = zeroed_buffer(size + 64);
    // Too small to create in, and too small for a header to attach to: nothing is written.
    assert_eq!(from_memory(&mut buf, size - 8, Some(&SMALL), LC_ZONE_CREATE).0, LC_ERR_ZONE_TOO_SMALL);
    assert_eq!(from_memory(&mut buf, size - 8, Some(&SMALL), LC_ZONE_CREATE_OR_ATTACH).0, LC_ERR_ZONE_TOO_SMALL);
    assert_eq!(from_memory(&mut buf, 248, None, LC_ZONE_ATTACH).0, LC_ERR_ZONE_TOO_SMALL);
    // Zeroed memory holds no zone.
    assert_eq!(from_memory(&mut buf, size, None, LC_ZONE_ATTACH).0, LC_ERR_ZONE_INCOMPATIBLE);
    assert!(buf.iter().all(|w| *w == 0), "a refusal wrote to the memory");

    let (status, made) = from_memory(&mut buf, size + 64, Some(&SMALL), LC_ZONE_CREATE);
    assert_eq!(status, LC_OK);
    assert_eq!((capacity_of(made), lc_zone_size_of(made)), (SMALL, size));
    let id = lc_zone_creation_id(made);
    for caps in [None, Some(&SMALL)] {
        let (status, attached) = from_memory(&mut buf, size, caps, LC_ZONE_ATTACH);
        assert_eq!(status, LC_OK);
        assert_eq!(
            (lc_zone_creation_id(attached), capacity_of(attached), lc_zone_size_of(attached)),
            (id, SMALL, size)
        );
        lc_zone_free(attached);
    }
    let (status, both) = from_memory(&mut buf, size, Some(&SMALL), LC_ZONE_CREATE_OR_ATTACH);
    assert_eq!((status, lc_zone_creation_id(both)), (LC_OK, id));
    lc_zone_free(both);

    // The zone is there: creating again, or asking for other capacities, is refused.
    let other = lc_zone_capacity { hosts: 7, ..SMALL }; // smaller, so not refused as too small first
    assert_eq!(from_memory(&mut buf, size, Some(&SMALL), LC_ZONE_CREATE).0, LC_ERR_ZONE_INCOMPATIBLE);
    assert_eq!(from_memory(&mut buf, size, Some(&other), LC_ZONE_ATTACH).0, LC_ERR_ZONE_INCOMPATIBLE);
    assert_eq!(from_memory(&mut buf, size, Some(&other), LC_ZONE_CREATE_OR_ATTACH).0, LC_ERR_ZONE_INCOMPATIBLE);
    // Memory cut short of the zone's size.
    assert_eq!(from_memory(&mut buf, size - 8, None, LC_ZONE_ATTACH).0, LC_ERR_ZONE_TOO_SMALL);
    assert_eq!(lc_zone_creation_id(made), id);
    lc_zone_free(made);
}

#[test]
fn attach_of_garbage_is_incompatible_and_bad_arguments_are_invalid() {
    let size = lc_zone_size(&SMALL);
    let mut buf: Vec<u64> = (0..size as u64 / 8).map(|i| 0x5a5a_5a5a_5a5a_5a5a ^ i.wrapping_mul(0x9e37_79b9)).collect();
    for init in [LC_ZONE_ATTACH, LC_ZONE_CREATE_OR_ATTACH] {
        assert_eq!(from_memory(&mut buf, size, Some(&SMALL), init).0, LC_ERR_ZONE_INCOMPATIBLE);
    }
    assert_eq!(from_memory(&mut buf, size, None, LC_ZONE_ATTACH).0, LC_ERR_ZONE_INCOMPATIBLE);
    // Garbage whose init-state word looks like an unfinished initialisation by a live
    // process (this one): Create refuses at once, CreateOrAttach after its wait.
    buf[2] = u64::from(std::process::id()) << 2 | 1;
    assert_eq!(from_memory(&mut buf, size, Some(&SMALL), LC_ZONE_CREATE).0, LC_ERR_ZONE_INCOMPATIBLE);
    if !cfg!(miri) {
        // kill(2) judges the initialiser: not under Miri's isolation.
        assert_eq!(from_memory(&mut buf, size, Some(&SMALL), LC_ZONE_CREATE_OR_ATTACH).0, LC_ERR_ZONE_BUSY);
    }

    let mut fresh = zeroed_buffer(size + 8);
    for init in [3, u32::MAX] {
        assert_eq!(from_memory(&mut fresh, size, Some(&SMALL), init).0, LC_ERR_INVALID_ARGUMENT);
    }
    let mut out = stale();
    // SAFETY: one byte into a buffer of `size + 8` bytes leaves `size` bytes.
    let misaligned = unsafe { fresh.as_mut_ptr().cast::<u8>().add(1) };
    assert_eq!(lc_zone_from_memory(misaligned.cast(), size, &SMALL, LC_ZONE_CREATE, &mut out), LC_ERR_INVALID_ARGUMENT);
    assert!(out.is_null());
    assert!(fresh.iter().all(|w| *w == 0), "a refusal wrote to the memory");
}

#[test]
#[cfg_attr(miri, ignore = "memfd and mmap are not available under Miri")]
fn anonymous_zone_reports_its_capacity_size_and_id() {
    let mut zone = stale();
    assert_eq!(lc_zone_new_anonymous(&SMALL, &mut zone), LC_OK);
    assert_eq!((capacity_of(zone), lc_zone_size_of(zone)), (SMALL, lc_zone_size(&SMALL)));
    assert_ne!(lc_zone_creation_id(zone), 0);
    lc_zone_free(zone);
}
