//! Sources as C handles: a static list, a C callback, `multi` composition and a grace period.
//!
//! An `lc_source` is a source not yet given to a pool. It is consumed by whatever takes it
//! (`lc_pool_new`, `lc_source_multi_add`, `lc_source_grace_new`), so each source has exactly
//! one owner at a time and a pool's sources are never touched by C again. New kinds of
//! source (DNS `a`/`srv`, ...) are added as one more constructor that wraps any Rust
//! [`Source`] with [`lc_source::into_raw`].

use std::ffi::{c_char, c_void};
use std::time::Duration;

use crate::error::{Error, SourceError};
use crate::ffi::boundary::c_str;
use crate::ffi::status::{LC_ERR_INVALID_ARGUMENT, LC_ERR_NULL_POINTER, LC_OK, describe, lc_status, status_of};
use crate::source::{Context, Grace, Multi, Source};
use crate::upstream::Upstream;

/// A source of upstreams (opaque). Owned by the caller until given to a function that
/// consumes it; free an unused one with `lc_source_free()`. The `lc_source_*` functions may
/// be called from any thread, each handle by one thread at a time.
pub struct lc_source {
    kind: Kind,
}

enum Kind {
    /// Kept apart so that `lc_source_multi_add` can append to it.
    Multi(Multi),
    Other(Box<dyn Source>),
}

impl lc_source {
    /// Wraps a Rust source as a new C handle, owned by the caller.
    pub(crate) fn into_raw(source: impl Source + 'static) -> *mut lc_source {
        Box::into_raw(Box::new(lc_source { kind: Kind::Other(Box::new(source)) }))
    }

    /// The Rust source this handle stands for.
    pub(crate) fn into_source(self) -> Box<dyn Source> {
        match self.kind {
            Kind::Multi(m) => Box::new(m),
            Kind::Other(s) => s,
        }
    }
}

/// One upstream, as a C caller describes it. The library copies what it needs: the
/// struct and its address string may be reused or freed as soon as the call returns.
#[repr(C)]
pub struct lc_upstream {
    /// Dial address, NUL-terminated UTF-8: `host:port`, `[v6]:port` or `unix/PATH`.
    /// It is the host's identity: state (in-flight count, failures, down flag) is kept per
    /// exact address string across list changes.
    pub address: *const c_char,
    /// Relative capacity, 1 to `LC_MAX_WEIGHT`. 0 is an error (`LC_ERR_INVALID_WEIGHT`).
    pub weight: u32,
    /// Most requests in flight at once; 0 = unlimited; at most `LC_MAX_REQUESTS_LIMIT`.
    pub max_requests: u32,
    /// 0 = primary; hosts of tier t are picked only when no host of a lower tier is
    /// available. At most `LC_MAX_TIER`.
    pub tier: u32,
    /// Opaque value handed back in every `lc_pick` of this entry; never dereferenced.
    pub tag: *mut c_void,
}

/// Converts and validates a C upstream.
fn upstream_from_c(u: &lc_upstream) -> Result<Upstream, lc_status> {
    // SAFETY: the address of an upstream passed in is documented as NUL-terminated and live
    // for the call.
    let address = unsafe { c_str(u.address) }?;
    let upstream = Upstream::new(address)
        .weight(u.weight)
        .max_requests(u.max_requests)
        .tier(u.tier)
        .tag(u.tag.expose_provenance());
    upstream.validate().map_err(|e| status_of(&e))?;
    Ok(upstream)
}

/// Creates a source that always returns the same list (nginx `server` lines, Caddy `to`).
///
/// `upstreams` points to `len` entries (it may be NULL when `len` is 0: an empty list).
/// Every entry is validated now; the first invalid one fails the call with its status
/// (`LC_ERR_INVALID_ADDRESS`, `LC_ERR_INVALID_WEIGHT`, `LC_ERR_INVALID_LIMIT`,
/// `LC_ERR_INVALID_UTF8`, `LC_ERR_NULL_POINTER` for a NULL address). The entries are copied.
///
/// On success `*out` is a new source owned by the caller; on error it is NULL.
#[unsafe(no_mangle)]
pub extern "C" fn lc_source_static_new(
    upstreams: *const lc_upstream,
    len: usize,
    out: *mut *mut lc_source,
) -> lc_status {
    ffi_boundary!("lc_source_static_new", {
        let out = try_out!(out);
        let list = try_slice!(upstreams, len);
        let list = match list.iter().map(upstream_from_c).collect::<Result<Vec<_>, _>>() {
            Ok(list) => list,
            Err(status) => return status,
        };
        // SAFETY: `try_out!` checked `out`.
        unsafe { out.write(lc_source::into_raw(crate::Static::new(list))) };
        LC_OK
    })
}

/// The list a callback source fills (opaque). Valid only during the callback call that
/// received it; only `lc_upstream_list_push()` and `lc_upstream_list_set_error()` use it.
#[derive(Default)]
pub struct lc_upstream_list {
    items: Vec<Upstream>,
    message: Option<String>,
    /// The first invalid upstream pushed: it fails the fetch, as in the Rust API.
    invalid: Option<Error>,
}

/// Called on every refresh to produce the current list: push each upstream into `list`
/// with `lc_upstream_list_push()` and return `LC_OK`. To report a failure, optionally call
/// `lc_upstream_list_set_error()` and return any other status: the source's result is then
/// discarded and the failure logged (inside a `multi`, the other sources still count).
///
/// May be called from the refresher's thread and from any thread calling
/// `lc_pool_refresh()` (never concurrently for one pool: refreshes are serialised), so it
/// and `userdata` must be usable from any thread. It may free its own pool with
/// `lc_pool_free()`: the refresh that called it (`lc_pool_refresh()` or a refresher) holds
/// its own reference to the pool, so this source and `userdata` stay alive until that
/// refresh returns, and `free_userdata` runs after the callback, never during it. A
/// `lc_pool_refresh()` of its own pool from inside it returns `LC_ERR_INVALID_ARGUMENT`
/// instead of waiting for itself.
pub type lc_source_fn = Option<extern "C" fn(userdata: *mut c_void, list: *mut lc_upstream_list) -> lc_status>;

/// Frees a callback source's `userdata` when the source is dropped.
pub type lc_free_fn = Option<extern "C" fn(userdata: *mut c_void)>;

/// Adds a copy of `upstream` to the list being built (see `lc_source_fn`).
///
/// An invalid upstream is not added, returns its status (as for `lc_source_static_new`)
/// and fails this fetch whatever the callback returns, so that a half-valid list is never
/// used.
#[unsafe(no_mangle)]
pub extern "C" fn lc_upstream_list_push(list: *mut lc_upstream_list, upstream: *const lc_upstream) -> lc_status {
    ffi_boundary!("lc_upstream_list_push", {
        let list = try_mut!(list);
        // SAFETY: a non-NULL `upstream` points to a live value for the call (documented).
        let result = unsafe { upstream.as_ref() }.ok_or(LC_ERR_NULL_POINTER).and_then(upstream_from_c);
        match result {
            Ok(u) => {
                list.items.push(u);
                LC_OK
            }
            Err(status) => {
                if list.invalid.is_none() {
                    let what = describe(status);
                    let index = list.items.len();
                    list.invalid = Some(Error::new(
                        crate::ErrorKind::SourceFailed,
                        format!("callback pushed an invalid upstream after {index} valid ones: {what}"),
                    ));
                }
                status
            }
        }
    })
}

/// Sets the message logged when the callback returns a failure (the last one set wins).
/// `message` is NUL-terminated UTF-8 and is copied.
#[unsafe(no_mangle)]
pub extern "C" fn lc_upstream_list_set_error(list: *mut lc_upstream_list, message: *const c_char) -> lc_status {
    ffi_boundary!("lc_upstream_list_set_error", {
        let list = try_mut!(list);
        let message = try_str!(message);
        list.message = Some(message.to_owned());
        LC_OK
    })
}

struct UserData(*mut c_void);

// SAFETY: the C caller promises (documented on `lc_source_fn` and `lc_source_callback_new`)
// that the callback and `free_userdata` may be called with this pointer from any thread.
unsafe impl Send for UserData {}
// SAFETY: as above.
unsafe impl Sync for UserData {}

struct Callback {
    fetch: extern "C" fn(*mut c_void, *mut lc_upstream_list) -> lc_status,
    free: lc_free_fn,
    userdata: UserData,
}

impl Source for Callback {
    fn fetch(&self, _ctx: &Context<'_>, out: &mut Vec<Upstream>) -> Result<(), SourceError> {
        let mut list = lc_upstream_list::default();
        let status = (self.fetch)(self.userdata.0, &mut list);
        if let Some(e) = list.invalid {
            return Err(Box::new(e));
        }
        if status != LC_OK {
            let why = list.message.unwrap_or_else(|| {
                let text = describe(status);
                format!("callback returned status {status} ({text})")
            });
            return Err(why.into());
        }
        out.append(&mut list.items);
        Ok(())
    }
}

impl Drop for Callback {
    fn drop(&mut self) {
        if let Some(free) = self.free {
            free(self.userdata.0);
        }
    }
}

/// Creates a source that asks a C function for the list on every refresh (see
/// `lc_source_fn`).
///
/// `callback` must not be NULL. `userdata` is passed to every call and is never
/// dereferenced by the library. `free_userdata`, if not NULL, is called once with
/// `userdata` when the source is dropped (when its pool is freed and its last refresh has
/// ended, or by `lc_source_free()`), from whichever thread drops it. If this function fails,
/// `free_userdata` is not called: `userdata` stays the caller's.
///
/// On success `*out` is a new source owned by the caller; on error it is NULL.
#[unsafe(no_mangle)]
pub extern "C" fn lc_source_callback_new(
    callback: lc_source_fn,
    userdata: *mut c_void,
    free_userdata: lc_free_fn,
    out: *mut *mut lc_source,
) -> lc_status {
    ffi_boundary!("lc_source_callback_new", {
        let out = try_out!(out);
        let Some(fetch) = callback else {
            return LC_ERR_NULL_POINTER;
        };
        let source = Callback { fetch, free: free_userdata, userdata: UserData(userdata) };
        // SAFETY: `try_out!` checked `out`.
        unsafe { out.write(lc_source::into_raw(source)) };
        LC_OK
    })
}

/// Creates an empty `multi` source: it asks each source added with `lc_source_multi_add()`
/// in order and appends their results, without de-duplication (Caddy's `multi`). A source
/// that fails is logged and skipped; the others still count. With no sources (or all
/// failing) the list is empty.
///
/// On success `*out` is a new source owned by the caller; on error it is NULL.
#[unsafe(no_mangle)]
pub extern "C" fn lc_source_multi_new(out: *mut *mut lc_source) -> lc_status {
    ffi_boundary!("lc_source_multi_new", {
        let out = try_out!(out);
        let multi = Box::new(lc_source { kind: Kind::Multi(Multi::new()) });
        // SAFETY: `try_out!` checked `out`.
        unsafe { out.write(Box::into_raw(multi)) };
        LC_OK
    })
}

/// Appends `source` to `multi` (made by `lc_source_multi_new()`); it will be asked after the
/// sources added before it. A `multi` may be added to another `multi`.
///
/// `source` is consumed in every case, also on error, except when it is `multi` itself
/// (`LC_ERR_INVALID_ARGUMENT`, nothing consumed). `LC_ERR_INVALID_ARGUMENT` also when
/// `multi` is not a `multi` source.
///
/// Not thread-safe for one `multi`: build a source on one thread before giving it away.
#[unsafe(no_mangle)]
pub extern "C" fn lc_source_multi_add(multi: *mut lc_source, source: *mut lc_source) -> lc_status {
    ffi_boundary!("lc_source_multi_add", {
        if !multi.is_null() && multi == source {
            return LC_ERR_INVALID_ARGUMENT;
        }
        let source = take_box!(source);
        let multi = try_mut!(multi);
        let Some(source) = source else {
            return LC_ERR_NULL_POINTER;
        };
        match &mut multi.kind {
            Kind::Multi(m) => {
                m.push(source.into_source());
                LC_OK
            }
            Kind::Other(_) => LC_ERR_INVALID_ARGUMENT,
        }
    })
}

/// Wraps `inner` so that when it fails, its last good list is served for up to `period_ms`
/// milliseconds from the first failure (any source can have Caddy's `srv` grace period).
///
/// `inner` is consumed in every case, also on error. `period_ms` 0 disables the grace.
/// On success `*out` is a new source owned by the caller; on error it is NULL.
#[unsafe(no_mangle)]
pub extern "C" fn lc_source_grace_new(inner: *mut lc_source, period_ms: u64, out: *mut *mut lc_source) -> lc_status {
    ffi_boundary!("lc_source_grace_new", {
        let inner = take_box!(inner);
        let out = try_out!(out);
        let Some(inner) = inner else {
            return LC_ERR_NULL_POINTER;
        };
        let grace = Grace::new(inner.into_source(), Duration::from_millis(period_ms));
        // SAFETY: `try_out!` checked `out`.
        unsafe { out.write(lc_source::into_raw(grace)) };
        LC_OK
    })
}

/// Frees a source that was not given away (a callback source calls its `free_userdata`).
/// NULL is ignored. Freeing a source that was consumed, or freeing twice, is undefined.
#[unsafe(no_mangle)]
pub extern "C" fn lc_source_free(source: *mut lc_source) {
    ffi_boundary!("lc_source_free", {
        drop(take_box!(source));
    })
}
