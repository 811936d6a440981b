//! The `etcd` source as a C handle (see the README's "The `etcd` source" section for its
//! semantics). `lc_source_new_json()` builds the same source from Caddy's JSON.

use std::ffi::{c_char, c_void};
use std::time::Duration;

use crate::ffi::source::lc_source;
use crate::ffi::source_config::{publish, strings, template};
use crate::ffi::status::{LC_OK, lc_status};
use crate::source::etcd::Etcd;

/// Settings of an `etcd` source (`lc_source_etcd_new()`). Start from
/// `lc_etcd_config_default()` and set what you need, so that fields added in later versions
/// keep their defaults. Strings are borrowed for the call and copied.
#[repr(C)]
pub struct lc_etcd_config {
    /// `endpoints_len` etcd client URLs, `http://host:port` (port 2379 if absent), tried in
    /// order. Required (at least one).
    pub endpoints: *const *const c_char,
    /// The number of entries in `endpoints`.
    pub endpoints_len: usize,
    /// The key prefix whose keys hold the upstreams (`"/services/api/"`). Required.
    pub prefix: *const c_char,
    /// The key whose non-empty value selects the JSON entries of that `version`; NULL (the
    /// default): the prefix followed by `.version`.
    pub version_key: *const c_char,
    /// Time limit of each call to etcd, and of the first refresh's wait for the first read,
    /// in milliseconds; 0 (the default): 5000.
    pub timeout_ms: u64,
    /// Interval of the safety-net re-read, in milliseconds; 0 (the default): 300000.
    pub resync_ms: u64,
    /// Weight of every upstream whose entry sets none, 1 to `LC_MAX_WEIGHT`. Default 1.
    pub weight: u32,
    /// `max_requests` of every upstream whose entry sets none (0 = unlimited). Default 0.
    pub max_requests: u32,
    /// Tier of every upstream whose entry sets none (0 = primary). Default 0.
    pub tier: u32,
    /// Tag of every upstream of this source, handed back in its picks. Default NULL.
    pub tag: *mut c_void,
}

/// Fills `*config` with the defaults: no endpoints, no prefix (set both before use), the
/// default version key, a timeout of 5 s, a resync of 5 minutes, weight 1, no request
/// limit, tier 0, tag NULL. Any thread.
#[unsafe(no_mangle)]
pub extern "C" fn lc_etcd_config_default(config: *mut lc_etcd_config) -> lc_status {
    ffi_boundary!("lc_etcd_config_default", {
        *try_mut!(config) = lc_etcd_config {
            endpoints: std::ptr::null(),
            endpoints_len: 0,
            prefix: std::ptr::null(),
            version_key: std::ptr::null(),
            timeout_ms: 0,
            resync_ms: 0,
            weight: 1,
            max_requests: 0,
            tier: 0,
            tag: std::ptr::null_mut(),
        };
        LC_OK
    })
}

/// Creates an `etcd` source: the upstreams under `config->prefix`, each key holding a dial
/// address or deanchou/caddy_etcd's JSON (`{"endpoints":["http://10.0.0.1:8080"],
/// "version":"v"}`, optionally with `weight`, `max_requests`, `tier`), in key order. Nothing
/// is read here: the first refresh starts a watcher thread that reads the prefix and then
/// follows it with a watch; refreshes copy its current list, and never wait for etcd
/// except the first (up to `timeout_ms`). While no endpoint answers, the source fails
/// (inside a `multi`: logged and skipped). Freeing the source (or the pool holding it) stops
/// and joins its thread.
///
/// Errors: `LC_ERR_NULL_POINTER` (`config`, `config->prefix`, an endpoint entry, `out`, or a
/// NULL `endpoints` with a non-zero `endpoints_len`), `LC_ERR_INVALID_UTF8`,
/// `LC_ERR_INVALID_ARGUMENT` (no endpoints, or one that is not `http://host:port`),
/// `LC_ERR_INVALID_WEIGHT`, `LC_ERR_INVALID_LIMIT` (`max_requests` or `tier` out of range).
///
/// `config` and its strings are borrowed for the call. On success `*out` is a new source
/// owned by the caller (give it to `lc_source_multi_add()`, `lc_source_grace_new()` or
/// `lc_pool_new()`, or free it with `lc_source_free()`); on error it is NULL. Any thread.
#[unsafe(no_mangle)]
pub extern "C" fn lc_source_etcd_new(config: *const lc_etcd_config, out: *mut *mut lc_source) -> lc_status {
    ffi_boundary!("lc_source_etcd_new", {
        let out = try_out!(out);
        let config = try_ref!(config);
        let prefix = try_str!(config.prefix);
        let endpoints = match strings(try_slice!(config.endpoints, config.endpoints_len)) {
            Ok(e) => e,
            Err(status) => return status,
        };
        let mut builder = Etcd::builder(endpoints, prefix).template(template(
            config.weight,
            config.max_requests,
            config.tier,
            config.tag,
        ));
        if !config.version_key.is_null() {
            builder = builder.version_key(try_str!(config.version_key));
        }
        if config.timeout_ms != 0 {
            builder = builder.timeout(Duration::from_millis(config.timeout_ms));
        }
        if config.resync_ms != 0 {
            builder = builder.resync(Duration::from_millis(config.resync_ms));
        }
        // SAFETY: `try_out!` checked `out`.
        unsafe { publish(builder.build(), out) }
    })
}
