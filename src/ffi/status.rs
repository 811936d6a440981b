//! Status codes, their descriptions, and the library version.

use std::ffi::{CStr, CString, c_char};
use std::sync::OnceLock;

use crate::error::{Error, ErrorKind};

/// The result of every fallible function: `LC_OK` (0) or one of the `LC_ERR_*` codes.
///
/// The numbers are stable: they never change meaning and are never reused (they are the
/// Rust crate's `ErrorKind::code()` values). A caller should treat an unknown non-zero
/// value as an error; `lc_status_str()` describes any value.
pub type lc_status = u32;

/// Success.
pub const LC_OK: lc_status = 0;
/// A required pointer argument was NULL.
pub const LC_ERR_NULL_POINTER: lc_status = 1;
/// A string argument was not valid UTF-8.
pub const LC_ERR_INVALID_UTF8: lc_status = 2;
/// An upstream address is empty or not a valid dial address (`host:port`,
/// `[v6]:port` or `unix/PATH`).
pub const LC_ERR_INVALID_ADDRESS: lc_status = 3;
/// A weight is 0 or above `LC_MAX_WEIGHT`.
pub const LC_ERR_INVALID_WEIGHT: lc_status = 4;
/// A `max_requests`, `max_fails`, tier, duration or interval is out of range.
pub const LC_ERR_INVALID_LIMIT: lc_status = 5;
/// No host is available: the list is empty, or every host is down, unhealthy, full or
/// excluded.
pub const LC_ERR_NO_UPSTREAM: lc_status = 6;
/// No host with that address is known to the pool.
pub const LC_ERR_NOT_FOUND: lc_status = 7;
/// The pick holds no reservation: it was released already, or never filled by a select.
pub const LC_ERR_ALREADY_RELEASED: lc_status = 8;
/// A source failed: it returned an error or an invalid upstream, or panicked.
pub const LC_ERR_SOURCE_FAILED: lc_status = 9;
/// The operation was cancelled (a refresh interrupted by a stopping refresher).
pub const LC_ERR_CANCELLED: lc_status = 10;
/// A panic was caught inside the library (a bug; it has been logged).
pub const LC_ERR_PANIC: lc_status = 11;
/// An argument is invalid in a way no more specific code covers (an unknown enum value,
/// a pick that still holds a reservation, ...).
pub const LC_ERR_INVALID_ARGUMENT: lc_status = 12;
/// The operating system refused something (e.g. creating the refresher thread).
pub const LC_ERR_OS: lc_status = 13;
/// The pick was released at another address than the one it was selected into (a copy of
/// the struct); nothing was released. Release the original.
pub const LC_ERR_PICK_MOVED: lc_status = 14;
/// The picked host had nothing in flight, so nothing was released: the reservation had been
/// released already through an undetectable copy of the pick (see `lc_pick`). Logged.
pub const LC_ERR_NOT_IN_FLIGHT: lc_status = 15;

/// A JSON configuration is malformed or asks for something unsupported; the message (the
/// error buffer of `lc_pool_new_json()` / `lc_source_new_json()`, and the log) names the
/// JSON path.
pub const LC_ERR_INVALID_CONFIG: lc_status = 16;
/// A shared zone was made by another layout, version, byte order or boot, is not ready, or
/// has other capacities than those asked for; the log names what differs.
pub const LC_ERR_ZONE_INCOMPATIBLE: lc_status = 17;
/// The memory or file offered for a shared zone is smaller than its capacities need.
pub const LC_ERR_ZONE_TOO_SMALL: lc_status = 18;
/// A shared zone has no room left: no slot for a new address, or no process or thread
/// record. A refresh that gets it keeps serving its current list.
pub const LC_ERR_ZONE_FULL: lc_status = 19;
/// Another live process is still initialising the shared zone and did not finish within
/// the wait (about a second); try again.
pub const LC_ERR_ZONE_BUSY: lc_status = 20;

/// Every error kind with its status code, in code order. The compiler checks that each code
/// is the kind's `code()` and that the codes run 1, 2, 3 ... without a gap, so the header's
/// numbers cannot drift from the Rust ones and a code's entry is `KINDS[code - 1]`.
const KINDS: [(lc_status, ErrorKind); 20] = [
    (LC_ERR_NULL_POINTER, ErrorKind::NullPointer),
    (LC_ERR_INVALID_UTF8, ErrorKind::InvalidUtf8),
    (LC_ERR_INVALID_ADDRESS, ErrorKind::InvalidAddress),
    (LC_ERR_INVALID_WEIGHT, ErrorKind::InvalidWeight),
    (LC_ERR_INVALID_LIMIT, ErrorKind::InvalidLimit),
    (LC_ERR_NO_UPSTREAM, ErrorKind::NoUpstream),
    (LC_ERR_NOT_FOUND, ErrorKind::NotFound),
    (LC_ERR_ALREADY_RELEASED, ErrorKind::AlreadyReleased),
    (LC_ERR_SOURCE_FAILED, ErrorKind::SourceFailed),
    (LC_ERR_CANCELLED, ErrorKind::Cancelled),
    (LC_ERR_PANIC, ErrorKind::Panic),
    (LC_ERR_INVALID_ARGUMENT, ErrorKind::InvalidArgument),
    (LC_ERR_OS, ErrorKind::Os),
    (LC_ERR_PICK_MOVED, ErrorKind::PickMoved),
    (LC_ERR_NOT_IN_FLIGHT, ErrorKind::NotInFlight),
    (LC_ERR_INVALID_CONFIG, ErrorKind::InvalidConfig),
    (LC_ERR_ZONE_INCOMPATIBLE, ErrorKind::ZoneIncompatible),
    (LC_ERR_ZONE_TOO_SMALL, ErrorKind::ZoneTooSmall),
    (LC_ERR_ZONE_FULL, ErrorKind::ZoneFull),
    (LC_ERR_ZONE_BUSY, ErrorKind::ZoneBusy),
];

const _: () = {
    let mut i = 0;
    while i < KINDS.len() {
        assert!(KINDS[i].0 == KINDS[i].1.code() && KINDS[i].0 as usize == i + 1);
        i += 1;
    }
};

/// The status code of a Rust error.
pub(crate) fn status_of(error: &Error) -> lc_status {
    error.kind().code()
}

/// The description of a status, as Rust text.
pub(crate) fn describe(status: lc_status) -> &'static str {
    match status {
        LC_OK => "ok",
        code => KINDS.get((code as usize).wrapping_sub(1)).map_or("unknown status", |(_, k)| k.as_str()),
    }
}

fn descriptions() -> &'static [CString] {
    static TABLE: OnceLock<Vec<CString>> = OnceLock::new();
    TABLE.get_or_init(|| {
        KINDS.iter().map(|(_, k)| CString::new(k.as_str()).expect("descriptions contain no NUL")).collect()
    })
}

/// Describes a status code: a static, NUL-terminated English string, never NULL.
///
/// Any value is accepted; an unknown one gives "unknown status". The string lives as long
/// as the process and may be used from any thread. (Like every function, it runs inside the
/// panic fence; were it ever to panic, it would return a static empty string.)
#[unsafe(no_mangle)]
pub extern "C" fn lc_status_str(status: lc_status) -> *const c_char {
    ffi_boundary!("lc_status_str", {
        const OK: &CStr = c"ok";
        const UNKNOWN: &CStr = c"unknown status";
        match status {
            LC_OK => OK.as_ptr(),
            code => match descriptions().get((code as usize).wrapping_sub(1)) {
                Some(s) => s.as_ptr(),
                None => UNKNOWN.as_ptr(),
            },
        }
    })
}

const VERSION: &CStr = match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
    Ok(v) => v,
    Err(_) => panic!("the package version contains a NUL"),
};

/// The library's version, "MAJOR.MINOR.PATCH": a static NUL-terminated string.
///
/// Compare with the `LC_VERSION_*` macros to check that the library loaded at run time is
/// the one the program was compiled against. Never NULL; inside the panic fence like every
/// function.
#[unsafe(no_mangle)]
pub extern "C" fn lc_version() -> *const c_char {
    ffi_boundary!("lc_version", VERSION.as_ptr())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_str_describes_every_code_and_survives_unknown_ones() {
        let text = |s| {
            // SAFETY: `lc_status_str` returns a static C string.
            unsafe { CStr::from_ptr(lc_status_str(s)) }.to_str().unwrap()
        };
        assert_eq!(text(LC_OK), "ok");
        for (status, kind) in KINDS {
            assert_eq!(text(status), kind.as_str());
        }
        assert_eq!(text(KINDS.len() as lc_status + 1), "unknown status");
        assert_eq!(text(u32::MAX), "unknown status");
    }

    #[test]
    fn zone_statuses_are_17_to_20_with_their_kinds() {
        assert_eq!(
            [LC_ERR_ZONE_INCOMPATIBLE, LC_ERR_ZONE_TOO_SMALL, LC_ERR_ZONE_FULL, LC_ERR_ZONE_BUSY],
            [17, 18, 19, 20]
        );
        for (status, kind) in [
            (17, ErrorKind::ZoneIncompatible),
            (18, ErrorKind::ZoneTooSmall),
            (19, ErrorKind::ZoneFull),
            (20, ErrorKind::ZoneBusy),
        ] {
            assert_eq!(status_of(&Error::new(kind, "m")), status);
            assert_eq!(describe(status), kind.as_str());
        }
        assert_eq!(KINDS.len(), 20);
    }

    #[test]
    fn version_is_the_package_version() {
        // SAFETY: `lc_version` returns a static C string.
        let v = unsafe { CStr::from_ptr(lc_version()) };
        assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }
}
