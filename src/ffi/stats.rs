//! Per-host statistics.

use std::ffi::{CString, c_char, c_void};

use crate::ffi::pool::lc_pool;
use crate::ffi::status::{LC_ERR_NULL_POINTER, LC_OK, lc_status, status_of};
use crate::pool::HostStats;

/// A point-in-time view of one host. Counters are read one by one, not as one atomic
/// snapshot, while picks go on.
#[repr(C)]
#[derive(Default)]
pub struct lc_host_stats {
    /// The host's identity (as in `lc_pick.host_id`).
    pub host_id: u64,
    /// Reservations ever made on this host (released or in flight).
    pub picks: u64,
    /// Requests in flight.
    pub in_flight: u32,
    /// How many of the host's last `max_fails` failures lie inside the passive-health window
    /// ending now: the failures inside the window, capped at `max_fails` (only the last
    /// `max_fails` timestamps are kept; 0 when passive health is off).
    pub recent_failures: u32,
    /// `max_requests` of its first entry in the list (0 = unlimited).
    pub max_requests: u32,
    /// Marked down with `lc_pool_set_down()`.
    pub down: bool,
    /// Inside its passive-failure window.
    pub unhealthy: bool,
    /// At its `max_requests` limit.
    pub full: bool,
    /// In the current list (false: removed, kept until its last request ends).
    pub listed: bool,
}

impl From<&HostStats> for lc_host_stats {
    fn from(s: &HostStats) -> Self {
        lc_host_stats {
            host_id: s.id.0,
            picks: s.picks,
            in_flight: s.in_flight,
            recent_failures: s.recent_failures,
            max_requests: s.max_requests,
            down: s.down,
            unhealthy: s.unhealthy,
            full: s.full,
            listed: s.listed,
        }
    }
}

/// Receives one host's statistics from `lc_pool_stats()`. `address` and `stats` are valid
/// only during the call. It may call other `lc_pool_*` functions.
pub type lc_stats_fn =
    Option<extern "C" fn(userdata: *mut c_void, address: *const c_char, stats: *const lc_host_stats)>;

/// Calls `callback` once per host of the current list, in list order (once per address),
/// on the calling thread, with `userdata`. The list is read once, before the first call.
/// Any thread, concurrently with picks (which never wait for it).
#[unsafe(no_mangle)]
pub extern "C" fn lc_pool_stats(pool: *const lc_pool, callback: lc_stats_fn, userdata: *mut c_void) -> lc_status {
    ffi_boundary!("lc_pool_stats", {
        let pool = try_ref!(pool);
        let Some(callback) = callback else {
            return LC_ERR_NULL_POINTER;
        };
        for host in pool.pool.stats() {
            let address = CString::new(host.address.as_str()).expect("validated addresses contain no NUL");
            let stats = lc_host_stats::from(&host);
            callback(userdata, address.as_ptr(), &stats);
        }
        LC_OK
    })
}

/// Fills `*out` with the statistics of the host with this address, listed or still
/// draining after its removal. `LC_ERR_NOT_FOUND` when the pool knows no such host.
/// `address` is borrowed for the call. Any thread, concurrently with picks.
#[unsafe(no_mangle)]
pub extern "C" fn lc_pool_host_stats(
    pool: *const lc_pool,
    address: *const c_char,
    out: *mut lc_host_stats,
) -> lc_status {
    ffi_boundary!("lc_pool_host_stats", {
        let pool = try_ref!(pool);
        let address = try_str!(address);
        let out = try_mut!(out);
        match pool.pool.host_stats(address) {
            Ok(s) => {
                *out = lc_host_stats::from(&s);
                LC_OK
            }
            Err(e) => status_of(&e),
        }
    })
}
