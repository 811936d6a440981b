//! The pool handle: configuration, lifecycle, refresh and the operator's down flag.

use std::ffi::c_char;
use std::time::Duration;

use crate::error::{Error, ErrorKind};
use crate::ffi::source::lc_source;
use crate::ffi::status::{LC_ERR_NULL_POINTER, LC_OK, lc_status, status_of};
use crate::ffi::zone::lc_zone;
use crate::policy::Policy;
use crate::pool::{Builder, PassiveHealth, Pool};

/// A least-connections pool of upstreams (opaque).
///
/// Every `lc_pool_*` function that takes a `const lc_pool *` may be called concurrently with
/// any other from any thread: picks are wait-free, and refreshes, stats and down flags take
/// only internal locks that picks never wait for. Freeing the pool while picks are
/// outstanding is safe: their later `lc_pick_release()` calls are valid.
pub struct lc_pool {
    pub(crate) pool: Pool,
}

/// How a pick chooses among the available hosts of a tier (one of `LC_POLICY_*`).
pub type lc_policy = u32;

/// Fewest in-flight requests per unit of weight; ties broken at random (Caddy's
/// `least_conn`). The default.
pub const LC_POLICY_LEAST_CONN: lc_policy = 0;
/// The first available host in list order (the `multi` failover pattern).
pub const LC_POLICY_FIRST: lc_policy = 1;
/// Two random available hosts; the one with fewer in-flight requests per unit of weight
/// wins (Caddy's `random_choose 2`, nginx's `random two least_conn`).
pub const LC_POLICY_P2C: lc_policy = 2;

/// Pool settings. Start from `lc_pool_config_default()` and change what you need, so that
/// fields added in later versions keep their defaults.
#[repr(C)]
pub struct lc_pool_config {
    /// One of `LC_POLICY_*`. Default `LC_POLICY_LEAST_CONN`.
    pub policy: lc_policy,
    /// Passive health: failed requests (released with `LC_OUTCOME_FAILURE`) inside
    /// `fail_duration_ms` that make a host unavailable until the oldest of them leaves the
    /// window. 0 turns passive health off. At most `LC_MAX_FAILS_LIMIT`. Default 1.
    pub max_fails: u32,
    /// The passive-health window in milliseconds; must be above 0 when `max_fails` is.
    /// Default 10000 (nginx's `fail_timeout`).
    pub fail_duration_ms: u64,
}

/// Fills `*config` with the defaults (least_conn, 1 failure in 10 s). Any thread.
#[unsafe(no_mangle)]
pub extern "C" fn lc_pool_config_default(config: *mut lc_pool_config) -> lc_status {
    ffi_boundary!("lc_pool_config_default", {
        *try_mut!(config) = default_config();
        LC_OK
    })
}

fn default_config() -> lc_pool_config {
    let health = PassiveHealth::default();
    lc_pool_config {
        policy: LC_POLICY_LEAST_CONN,
        max_fails: health.max_fails,
        fail_duration_ms: health.fail_duration.as_millis() as u64,
    }
}

fn policy_from_c(policy: lc_policy) -> Option<Policy> {
    match policy {
        LC_POLICY_LEAST_CONN => Some(Policy::LeastConn),
        LC_POLICY_FIRST => Some(Policy::First),
        LC_POLICY_P2C => Some(Policy::P2c),
        _ => None,
    }
}

/// Creates a pool fed by `source` and refreshes it once.
///
/// `config` may be NULL for the defaults. `source` is consumed in every case, also on
/// error. A failing first refresh is logged and leaves the pool empty (the next refresh
/// may succeed); it is not an error here. Errors: `LC_ERR_NULL_POINTER` (`source` or
/// `out`), `LC_ERR_INVALID_ARGUMENT` (unknown policy), `LC_ERR_INVALID_LIMIT` (`max_fails`
/// above `LC_MAX_FAILS_LIMIT`, or a 0 window with `max_fails` above 0).
///
/// On success `*out` is a new pool owned by the caller (free it with `lc_pool_free()`); on
/// error it is NULL.
#[unsafe(no_mangle)]
pub extern "C" fn lc_pool_new(
    config: *const lc_pool_config,
    source: *mut lc_source,
    out: *mut *mut lc_pool,
) -> lc_status {
    ffi_boundary!("lc_pool_new", {
        let source = take_box!(source);
        let out = try_out!(out);
        let Some(source) = source else {
            return LC_ERR_NULL_POINTER;
        };
        deliver(out, build(config, Pool::builder(source.into_source())))
    })
}

/// Creates a pool fed by `source` whose host state lives in `zone`, under the name `name`,
/// and refreshes it once: as `lc_pool_new()`, plus the zone.
///
/// Every pool on the zone with the same `name`, in this process or in another one that has
/// the zone, shares the in-flight counts, `max_requests` limits, failure windows and down
/// flags of its addresses; pools with other names share nothing. The first zone pool of a
/// process registers the process in the zone (a forked child registers again with its own
/// first one). `name` is NUL-terminated UTF-8, borrowed for the call; `name NUL address` must
/// fit the zone's `address_bytes` (else the refresh that lists the address fails and is
/// logged).
///
/// `config` may be NULL for the defaults. `source` is consumed in every case, also on error.
/// `zone` is borrowed for the call: the pool keeps its own reference to the zone's memory,
/// so the handle may be freed while the pool lives. Errors, with `*out` NULL: as
/// `lc_pool_new()` (`LC_ERR_NULL_POINTER` now also for `zone` and `name`), and
/// `LC_ERR_INVALID_UTF8` (`name` not UTF-8), `LC_ERR_ZONE_INCOMPATIBLE` (`max_fails` above
/// the zone's `fail_ring`; logged), `LC_ERR_ZONE_FULL` (no process or thread record free in
/// the zone for this process; logged).
///
/// `fork`: build zone pools in the process that uses them, after `fork()` (an nginx worker:
/// in `init_process`); a pool, picker or pick made before `fork()` is not for use in the
/// child (free the child's copies unused, or let the child exit). The zone handle itself may
/// come from the parent (`lc_zone_new_anonymous()` before `fork()`).
///
/// On success `*out` is a new pool owned by the caller (free it with `lc_pool_free()`, which
/// also ends this pool's share in the zone; the zone's state stays for its other pools and
/// processes). Any thread. A thread's first pick or release on the zone (outside a picker)
/// claims the thread's record in the zone, once, under a process-local lock; a picker claims
/// its own when `lc_picker_new()` makes it. After that, picks and releases are wait-free as
/// on a heap pool (with `lc_thread_warmup()` for the allocation-free first pick). When the
/// zone has no record left, picks and releases share the process's spare record under a
/// lock.
#[unsafe(no_mangle)]
pub extern "C" fn lc_pool_new_in_zone(
    config: *const lc_pool_config,
    zone: *const lc_zone,
    name: *const c_char,
    source: *mut lc_source,
    out: *mut *mut lc_pool,
) -> lc_status {
    ffi_boundary!("lc_pool_new_in_zone", {
        let source = take_box!(source);
        let out = try_out!(out);
        let Some(source) = source else {
            return LC_ERR_NULL_POINTER;
        };
        let zone = try_ref!(zone);
        let name = try_str!(name);
        let built = build(config, zone.pool_builder(Pool::builder(source.into_source()), name));
        if let Err(e) = &built
            && matches!(e.kind(), ErrorKind::ZoneIncompatible | ErrorKind::ZoneFull)
        {
            // As the other zone refusals: the zone explains what differs.
            log::error!("lc_pool_new_in_zone: {}", e.message());
        }
        deliver(out, built)
    })
}

/// Builds the pool `builder` with `config` (NULL for the defaults): the configuration
/// handling of `lc_pool_new()` and `lc_pool_new_in_zone()`.
fn build(config: *const lc_pool_config, builder: Builder) -> Result<Pool, Error> {
    let defaults = default_config();
    // SAFETY: a non-NULL `config` points to a live config for the call (documented).
    let config = unsafe { config.as_ref() }.unwrap_or(&defaults);
    let Some(policy) = policy_from_c(config.policy) else {
        return Err(Error::new(ErrorKind::InvalidArgument, format!("unknown policy {}", config.policy)));
    };
    let health =
        PassiveHealth { max_fails: config.max_fails, fail_duration: Duration::from_millis(config.fail_duration_ms) };
    builder.policy(policy).passive_health(health).build()
}

/// Hands a new pool to the caller through a checked `out`, or returns why there is none.
fn deliver(out: *mut *mut lc_pool, built: Result<Pool, Error>) -> lc_status {
    match built {
        Ok(pool) => {
            // SAFETY: the caller's `try_out!` checked `out`.
            unsafe { out.write(Box::into_raw(Box::new(lc_pool { pool }))) };
            LC_OK
        }
        Err(e) => status_of(&e),
    }
}

/// Frees a pool. NULL is ignored. Any thread, once no other thread uses this handle.
///
/// Outstanding picks stay valid and may still be released (from any thread); a running
/// refresher keeps refreshing its own reference to the pool's sources until it is stopped.
/// The sources are dropped (callback sources call their `free_userdata`) once the last of
/// the pool, its refreshers and its pickers is gone. Using the pool after this call, or
/// freeing it twice, is undefined. A log callback or a callback source may free the pool
/// whose `lc_pool_refresh()` is running: that refresh keeps the pool alive until it returns.
#[unsafe(no_mangle)]
pub extern "C" fn lc_pool_free(pool: *mut lc_pool) {
    ffi_boundary!("lc_pool_free", {
        drop(take_box!(pool));
    })
}

/// What a refresh did.
#[repr(C)]
pub struct lc_refresh_report {
    /// Entries in the new list.
    pub upstreams: usize,
    /// Host states alive after the refresh (listed, or unlisted with requests in flight).
    pub hosts: usize,
    /// Host states reclaimed by this refresh.
    pub reclaimed: usize,
    /// The new list's generation (1 for the first refresh, +1 per published refresh).
    pub generation: u64,
}

/// Asks the pool's source for the current list now and publishes it.
///
/// Hosts already known keep their state (in-flight counts, failures, down flag). When the
/// source fails (`LC_ERR_SOURCE_FAILED`; inside a `multi` only when the `multi` itself
/// cannot run) the current list stays. `report` may be NULL; on success it is filled.
/// Refreshes are serialised; picks never wait for them. May be called from any thread.
///
/// The refresh holds its own reference to the pool, so a log callback or a callback source
/// may call `lc_pool_free(pool)` while it runs (the pool goes when the refresh returns). A
/// refresh called from a source or log callback of a refresh of the same pool gets
/// `LC_ERR_INVALID_ARGUMENT`; one called from a callback of another pool's refresh never
/// waits: while that pool's refresh runs on another thread it gets `LC_ERR_INVALID_ARGUMENT`
/// at once (waiting could deadlock, e.g. two pools whose sources refresh each other).
#[unsafe(no_mangle)]
pub extern "C" fn lc_pool_refresh(pool: *const lc_pool, report: *mut lc_refresh_report) -> lc_status {
    ffi_boundary!("lc_pool_refresh", {
        // A clone of the pool (one reference count): a log or source callback may free the
        // handle during the refresh, and the refresh must not outlive what it uses.
        let pool = try_ref!(pool).pool.clone();
        match pool.refresh() {
            Ok(r) => {
                // SAFETY: a non-NULL `report` points to writable storage (documented).
                if let Some(out) = unsafe { report.as_mut() } {
                    *out = lc_refresh_report {
                        upstreams: r.upstreams,
                        hosts: r.hosts,
                        reclaimed: r.reclaimed,
                        generation: r.generation,
                    };
                }
                LC_OK
            }
            Err(e) => status_of(&e),
        }
    })
}

/// Marks the host with this address down (`down` true) or up again. A down host gets no
/// new picks; its requests in flight are unaffected. The flag belongs to the host's state,
/// so it survives list changes. `LC_ERR_NOT_FOUND` when the pool knows no such host.
/// `address` is borrowed for the call. Any thread; picks in progress may still see the old
/// flag, picks that start after this returns see the new one.
#[unsafe(no_mangle)]
pub extern "C" fn lc_pool_set_down(pool: *const lc_pool, address: *const std::ffi::c_char, down: bool) -> lc_status {
    ffi_boundary!("lc_pool_set_down", {
        let pool = try_ref!(pool);
        let address = try_str!(address);
        match pool.pool.set_down(address, down) {
            Ok(()) => LC_OK,
            Err(e) => status_of(&e),
        }
    })
}
