//! Caddy's JSON as the configuration, from C: a pool from a `reverse_proxy` handler, and a
//! source (`etcd`, `a`, `srv`, `multi` ...) from a `dynamic_upstreams` module object.

use std::ffi::c_char;

use crate::error::Error;
use crate::ffi::pool::lc_pool;
use crate::ffi::source::lc_source;
use crate::ffi::status::{LC_OK, lc_status, status_of};
use crate::ffi::zone::lc_zone;
use crate::pool::Pool;

/// Writes an error's message to the caller's buffer (truncated at a character boundary to
/// fit, always NUL-terminated), or logs it at error level when there is no buffer, so that it
/// is never lost. Returns the error's status.
fn report(e: &Error, function: &str, buf: *mut c_char, len: usize) -> lc_status {
    if buf.is_null() || len == 0 {
        log::error!("{function}: {}", e.message());
    } else {
        let message = e.message();
        let mut n = message.len().min(len - 1);
        while !message.is_char_boundary(n) {
            n -= 1;
        }
        // SAFETY: a non-NULL `error` buffer is documented as writable for `error_len` bytes,
        // and `n + 1 <= len`.
        unsafe {
            std::ptr::copy_nonoverlapping(message.as_ptr().cast::<c_char>(), buf, n);
            buf.add(n).write(0);
        }
    }
    status_of(e)
}

/// Empties the caller's error buffer, so that success leaves "" there.
fn clear(buf: *mut c_char, len: usize) {
    if !buf.is_null() && len > 0 {
        // SAFETY: as in `report`: writable for `len >= 1` bytes.
        unsafe { buf.write(0) };
    }
}

/// Creates a pool from the JSON of a Caddy `reverse_proxy` handler (the object `caddy adapt`
/// prints for it: `upstreams`, `dynamic_upstreams`, `load_balancing.selection_policy`,
/// `health_checks.passive`, and leastconn's extensions; the README's "Caddy JSON" section
/// lists what is read and ignored), and refreshes it once. A failing first refresh is logged
/// and leaves the pool empty; it is not an error here.
///
/// `json` is a NUL-terminated UTF-8 string, borrowed for the call. `error` may be NULL;
/// otherwise it is a buffer of `error_len` bytes that receives, on `LC_ERR_INVALID_CONFIG`,
/// the message naming the JSON path (`dynamic_upstreams.sources[1].port: expected a
/// string`), truncated to fit and NUL-terminated, and "" on success. With a NULL `error` the
/// message is logged at `LC_LOG_ERROR` instead.
///
/// Errors: `LC_ERR_NULL_POINTER` (`json` or `out`), `LC_ERR_INVALID_UTF8`,
/// `LC_ERR_INVALID_CONFIG` (anything wrong in the document).
///
/// On success `*out` is a new pool owned by the caller (free it with `lc_pool_free()`); on
/// error it is NULL. Any thread.
#[unsafe(no_mangle)]
pub extern "C" fn lc_pool_new_json(
    json: *const c_char,
    out: *mut *mut lc_pool,
    error: *mut c_char,
    error_len: usize,
) -> lc_status {
    ffi_boundary!("lc_pool_new_json", {
        clear(error, error_len);
        let out = try_out!(out);
        let json = try_str!(json);
        deliver(out, Pool::from_caddy_json(json), "lc_pool_new_json", error, error_len)
    })
}

/// Creates a pool from the JSON of a Caddy `reverse_proxy` handler, as `lc_pool_new_json()`,
/// whose host state lives in `zone` under the name `name`, as `lc_pool_new_in_zone()`, and
/// refreshes it once. A failing first refresh is logged and leaves the pool empty; it is not
/// an error here.
///
/// Every pool on the zone with the same `name` (from JSON or from `lc_pool_new_in_zone()`, in
/// this process or in another one that has the zone) shares the in-flight counts,
/// `max_requests` limits, failure windows and down flags of its addresses; pools with other
/// names share nothing. The first zone pool of a process registers the process in the zone.
///
/// `json` and `name` are NUL-terminated UTF-8 strings, borrowed for the call; `name NUL
/// address` must fit the zone's `address_bytes` (else the refresh that lists the address
/// fails and is logged). `zone` is borrowed for the call: the pool keeps its own reference to
/// the zone's memory, so the handle may be freed while the pool lives. A zone of another
/// layout or capacities never gets here: `lc_zone_open()` and `lc_zone_from_memory()` refuse
/// it with `LC_ERR_ZONE_INCOMPATIBLE`. `error` and `error_len` are as for
/// `lc_pool_new_json()`: the buffer receives the message of every error below except
/// `LC_ERR_NULL_POINTER` and `LC_ERR_INVALID_UTF8` (truncated to fit, NUL-terminated), and ""
/// on success; with a NULL `error` the message is logged at `LC_LOG_ERROR` instead.
///
/// Errors, with `*out` NULL: `LC_ERR_NULL_POINTER` (`json`, `zone`, `name` or `out`),
/// `LC_ERR_INVALID_UTF8` (`json` or `name`), `LC_ERR_INVALID_CONFIG` (anything wrong in the
/// document), `LC_ERR_ZONE_INCOMPATIBLE` (`health_checks.passive.max_fails` above the zone's
/// `fail_ring`), `LC_ERR_ZONE_FULL` (no process or thread record free in the zone for this
/// process).
///
/// `fork`: as for `lc_pool_new_in_zone()`, build zone pools in the process that uses them,
/// after `fork()`; the zone handle itself may come from the parent.
///
/// On success `*out` is a new pool owned by the caller (free it with `lc_pool_free()`, which
/// also ends this pool's share in the zone; the zone's state stays for its other pools and
/// processes). Any thread; picks and releases are as on a pool from `lc_pool_new_in_zone()`.
#[unsafe(no_mangle)]
pub extern "C" fn lc_pool_new_json_in_zone(
    json: *const c_char,
    zone: *const lc_zone,
    name: *const c_char,
    out: *mut *mut lc_pool,
    error: *mut c_char,
    error_len: usize,
) -> lc_status {
    ffi_boundary!("lc_pool_new_json_in_zone", {
        clear(error, error_len);
        let out = try_out!(out);
        let json = try_str!(json);
        let zone = try_ref!(zone);
        let name = try_str!(name);
        let built = crate::config::handler_from_json(json).and_then(|b| zone.pool_builder(b, name).build());
        deliver(out, built, "lc_pool_new_json_in_zone", error, error_len)
    })
}

/// Hands a new pool to the caller through a checked `out`, or reports why there is none.
fn deliver(
    out: *mut *mut lc_pool,
    built: Result<Pool, Error>,
    function: &str,
    error: *mut c_char,
    error_len: usize,
) -> lc_status {
    match built {
        Ok(pool) => {
            // SAFETY: the caller's `try_out!` checked `out`.
            unsafe { out.write(Box::into_raw(Box::new(lc_pool { pool }))) };
            LC_OK
        }
        Err(e) => report(&e, function, error, error_len),
    }
}

/// Creates a source from the JSON of one Caddy `dynamic_upstreams` module object, such as
/// `{"source": "etcd", "endpoints": ["http://10.0.0.5:2379"], "key": "/services/api/"}`, an
/// `a`, `srv` or `static` source, or a `multi` of several (with leastconn's `weight`, `max_requests`,
/// `tier` and `grace` extensions). Nothing is fetched here: sources run in refreshes
/// (`lc_pool_refresh()`, the refresher), never in a pick. An `etcd` source starts its
/// watcher thread at its first refresh.
///
/// `json` and `error`, `error_len` are as for `lc_pool_new_json()`. Errors:
/// `LC_ERR_NULL_POINTER` (`json` or `out`), `LC_ERR_INVALID_UTF8`, `LC_ERR_INVALID_CONFIG`.
///
/// On success `*out` is a new source owned by the caller (give it to
/// `lc_source_multi_add()`, `lc_source_grace_new()` or `lc_pool_new()`, or free it with
/// `lc_source_free()`); on error it is NULL. Any thread.
#[unsafe(no_mangle)]
pub extern "C" fn lc_source_new_json(
    json: *const c_char,
    out: *mut *mut lc_source,
    error: *mut c_char,
    error_len: usize,
) -> lc_status {
    ffi_boundary!("lc_source_new_json", {
        clear(error, error_len);
        let out = try_out!(out);
        let json = try_str!(json);
        match crate::config::source_from_json(json) {
            Ok(source) => {
                // SAFETY: `try_out!` checked `out`.
                unsafe { out.write(lc_source::into_raw(source)) };
                LC_OK
            }
            Err(e) => report(&e, "lc_source_new_json", error, error_len),
        }
    })
}

#[cfg(all(test, target_os = "linux"))]
mod zone_tests;
