//! The `docker` source as a C handle (see the README's "Docker source" section for its
//! semantics).

use std::ffi::{c_char, c_void};
use std::time::Duration;

use crate::ffi::boundary::c_str;
use crate::ffi::source::lc_source;
use crate::ffi::source_config::{publish, template};
use crate::ffi::status::{LC_OK, lc_status};
use crate::source::docker::Docker;

/// One label requirement of a `docker` source: the container must carry label `key`, with
/// the value `value` (or any value if `value` is NULL). Requirements with different keys are
/// ANDed; several with the same key accept any of their values.
#[repr(C)]
pub struct lc_docker_label {
    /// The label key (NUL-terminated UTF-8). Required.
    pub key: *const c_char,
    /// An accepted value (NUL-terminated UTF-8), or NULL for any value (unless another entry
    /// with the same key gives a value: then only the values given are accepted).
    pub value: *const c_char,
}

/// Settings of a `docker` source (`lc_source_docker_new()`). Start from
/// `lc_docker_config_default()` and set what you need, so that fields added in later
/// versions keep their defaults. Strings are borrowed for the call and copied.
#[repr(C)]
pub struct lc_docker_config {
    /// The daemon's socket, `unix:///path` (NUL-terminated UTF-8). NULL (the default): the
    /// environment's `DOCKER_HOST` at the time of the call, else
    /// `unix:///var/run/docker.sock`. Other schemes (`tcp://`, `ssh://`) are refused.
    pub host: *const c_char,
    /// The port of every upstream; 0 (the default): each container's label
    /// `com.caddyserver.http.upstream.port`.
    pub port: u16,
    /// `labels_len` label requirements (see `lc_docker_label`). NULL and 0 (the default):
    /// every opted-in container.
    pub labels: *const lc_docker_label,
    /// The number of entries in `labels`.
    pub labels_len: usize,
    /// The safety-net re-list period in milliseconds (events trigger re-lists in between).
    /// Default 30000; 0 and more than 365 days are refused.
    pub refresh_ms: u64,
    /// The bound on each request to the daemon, in milliseconds. Default 5000; 0 and more
    /// than 365 days are refused.
    pub timeout_ms: u64,
    /// Weight of every upstream of this source, 1 to `LC_MAX_WEIGHT`. Default 1.
    pub weight: u32,
    /// `max_requests` of every upstream of this source (0 = unlimited). Default 0.
    pub max_requests: u32,
    /// Tier of every upstream of this source (0 = primary). Default 0.
    pub tier: u32,
    /// Tag of every upstream of this source, handed back in its picks. Default NULL.
    pub tag: *mut c_void,
}

/// Fills `*config` with the defaults: the socket of `DOCKER_HOST` (`host` NULL), ports from
/// labels, no label requirement, a refresh of 30 s, a request timeout of 5 s, weight 1, no
/// request limit, tier 0, tag NULL. Any thread.
#[unsafe(no_mangle)]
pub extern "C" fn lc_docker_config_default(config: *mut lc_docker_config) -> lc_status {
    ffi_boundary!("lc_docker_config_default", {
        *try_mut!(config) = lc_docker_config {
            host: std::ptr::null(),
            port: 0,
            labels: std::ptr::null(),
            labels_len: 0,
            refresh_ms: 30_000,
            timeout_ms: 5_000,
            weight: 1,
            max_requests: 0,
            tier: 0,
            tag: std::ptr::null_mut(),
        };
        LC_OK
    })
}

/// Creates a `docker` source: one upstream `ip:port` per running container labelled
/// `com.caddyserver.http.enable=true` that is healthy or has no healthcheck and meets the
/// label requirements, ordered by container name (Caddy's `docker` upstreams). The IP is
/// the one on the network named by label `com.caddyserver.http.network` (or
/// `<com.docker.compose.project>_<network>`), else on the first network in name order; a
/// container without an IP or a port is skipped with a warning (`lc_log_set_callback()`).
///
/// Nothing is contacted here. The first refresh that asks the source (`lc_pool_new()`,
/// `lc_pool_refresh()`, the refresher) starts a watcher thread in the calling process
/// (after `fork()`, again in the child) and waits for its first listing, at most
/// 2 x `timeout_ms`; the watcher follows the daemon's events and re-lists off the pick
/// path. A refresh returns the latest listing, or the daemon's latest error (inside a
/// `multi`: logged and skipped).
///
/// Errors: `LC_ERR_NULL_POINTER` (`config`, `out`, a label `key`, or a NULL `labels` with a
/// non-zero `labels_len`), `LC_ERR_INVALID_UTF8`, `LC_ERR_INVALID_ARGUMENT` (a `host`, or
/// `DOCKER_HOST`, that is not `unix:///path`), `LC_ERR_INVALID_LIMIT` (`refresh_ms` or
/// `timeout_ms` 0 or above 365 days, `max_requests` or `tier` out of range),
/// `LC_ERR_INVALID_WEIGHT`.
///
/// `config` and its strings are borrowed for the call. On success `*out` is a new source
/// owned by the caller (give it to `lc_source_multi_add()` or `lc_pool_new()`, or free it
/// with `lc_source_free()`, which stops the watcher); on error it is NULL. Any thread.
#[unsafe(no_mangle)]
pub extern "C" fn lc_source_docker_new(config: *const lc_docker_config, out: *mut *mut lc_source) -> lc_status {
    ffi_boundary!("lc_source_docker_new", {
        let out = try_out!(out);
        let config = try_ref!(config);
        let mut builder = Docker::builder()
            .refresh(Duration::from_millis(config.refresh_ms))
            .timeout(Duration::from_millis(config.timeout_ms))
            .template(template(config.weight, config.max_requests, config.tier, config.tag));
        if !config.host.is_null() {
            builder = builder.host(try_str!(config.host));
        }
        if config.port != 0 {
            builder = builder.port(config.port);
        }
        for label in try_slice!(config.labels, config.labels_len) {
            let key = try_str!(label.key);
            let value = if label.value.is_null() {
                None
            } else {
                // SAFETY: a non-NULL `value` is documented as a NUL-terminated string live
                // for the call.
                match unsafe { c_str(label.value) } {
                    Ok(v) => Some(v),
                    Err(status) => return status,
                }
            };
            builder = builder.label(key, value);
        }
        // SAFETY: `try_out!` checked `out`.
        unsafe { publish(builder.build(), out) }
    })
}
