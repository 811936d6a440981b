//! The background refresher handle.

use std::time::Duration;

use crate::ffi::pool::lc_pool;
use crate::ffi::status::{LC_OK, lc_status, status_of};
use crate::refresher::Refresher;

/// A thread that refreshes a pool periodically (opaque).
pub struct lc_refresher {
    refresher: Refresher,
}

/// Starts a thread that refreshes `pool` at once and then every `interval_ms` milliseconds
/// (at least 1, else `LC_ERR_INVALID_LIMIT`). Refresh failures are logged (see
/// `lc_log_set_callback()`). `LC_ERR_OS` when the thread cannot be created.
///
/// The refresher keeps the pool's state alive: the pool may be freed first. In a program
/// that forks (nginx), start it in the child process. On success `*out` is a new refresher
/// owned by the caller (stop it with `lc_refresher_stop()`); on error it is NULL.
#[unsafe(no_mangle)]
pub extern "C" fn lc_refresher_start(pool: *const lc_pool, interval_ms: u64, out: *mut *mut lc_refresher) -> lc_status {
    ffi_boundary!("lc_refresher_start", {
        // `out` first, so that it is NULL on every error, a NULL `pool` included.
        let out = try_out!(out);
        let pool = try_ref!(pool);
        match Refresher::spawn(&pool.pool, Duration::from_millis(interval_ms)) {
            Ok(refresher) => {
                // SAFETY: `try_out!` checked `out`.
                unsafe { out.write(Box::into_raw(Box::new(lc_refresher { refresher }))) };
                LC_OK
            }
            Err(e) => status_of(&e),
        }
    })
}

/// Stops a refresher and frees it: cancels a refresh in progress at its next source
/// boundary, wakes the thread and waits for it to end. NULL is ignored. Any thread but the
/// refresher's own: must not be called from a source callback of the same pool.
#[unsafe(no_mangle)]
pub extern "C" fn lc_refresher_stop(refresher: *mut lc_refresher) {
    ffi_boundary!("lc_refresher_stop", {
        if let Some(r) = take_box!(refresher) {
            r.refresher.stop();
        }
    })
}
