//! DNS sources as C handles: `a` (A/AAAA records) and `srv` (SRV records), to put into a
//! `multi` next to a static list (see the README's "DNS sources" section for their semantics).

use std::ffi::{c_char, c_void};
use std::time::Duration;

use crate::ffi::boundary::c_str;
use crate::ffi::source::lc_source;
use crate::ffi::source_config::{publish, strings, template};
use crate::ffi::status::{LC_ERR_INVALID_ARGUMENT, LC_ERR_INVALID_LIMIT, LC_OK, lc_status};
use crate::source::dns::{A, IpVersions, Srv};

/// Which address families an `a` source asks for (one of `LC_IP_*`).
pub type lc_ip_versions = u32;

/// A and AAAA records, asked in parallel; IPv4 addresses first. The default.
pub const LC_IP_BOTH: lc_ip_versions = 0;
/// A records only.
pub const LC_IP_V4: lc_ip_versions = 1;
/// AAAA records only.
pub const LC_IP_V6: lc_ip_versions = 2;

/// `retries` value meaning "the default": 2, or `resolv.conf`'s `attempts` for an `srv`
/// source without explicit resolvers.
pub const LC_DNS_RETRIES_DEFAULT: i32 = -1;

/// Settings of an `a` source (`lc_source_dns_a_new()`). Start from
/// `lc_dns_a_config_default()` and set what you need, so that fields added in later
/// versions keep their defaults. Strings are borrowed for the call and copied.
#[repr(C)]
pub struct lc_dns_a_config {
    /// The DNS name to resolve (NUL-terminated UTF-8), or an IP literal (`192.0.2.7`,
    /// `2001:db8::7`, `[2001:db8::7]`), which yields itself without any query. Required.
    pub name: *const c_char,
    /// The port of every upstream, 1 to 65535. Default 80.
    pub port: u16,
    /// One of `LC_IP_*`. Default `LC_IP_BOTH`.
    pub versions: lc_ip_versions,
    /// How long a successful lookup is reused, in milliseconds; 0 looks up on every
    /// refresh. Default 60000.
    pub refresh_ms: u64,
    /// `resolvers_len` name servers to ask, in order, each `ip` or `ip:port` (port 53 if
    /// absent; IPv6 as `[ipv6]:port`). NULL and 0 (the default): the system's resolution,
    /// `getaddrinfo()`, so `/etc/hosts` and `resolv.conf` apply.
    pub resolvers: *const *const c_char,
    /// The number of entries in `resolvers`.
    pub resolvers_len: usize,
    /// Timeout of each query attempt to explicit resolvers, in milliseconds; 0 (the
    /// default): 5000.
    pub timeout_ms: u64,
    /// Retries after a failed query attempt to explicit resolvers (0: one attempt only);
    /// `LC_DNS_RETRIES_DEFAULT` (the default): 2.
    pub retries: i32,
    /// Weight of every upstream of this source, 1 to `LC_MAX_WEIGHT`. Default 1.
    pub weight: u32,
    /// `max_requests` of every upstream of this source (0 = unlimited). Default 0.
    pub max_requests: u32,
    /// Tier of every upstream of this source (0 = primary). Default 0.
    pub tier: u32,
    /// Tag of every upstream of this source, handed back in its picks. Default NULL.
    pub tag: *mut c_void,
}

/// Settings of an `srv` source (`lc_source_dns_srv_new()`). Start from
/// `lc_dns_srv_config_default()` and set what you need, so that fields added in later
/// versions keep their defaults. Strings are borrowed for the call and copied.
#[repr(C)]
pub struct lc_dns_srv_config {
    /// The service, without its underscore (`"api"`); NULL or `""` together with `proto`:
    /// `name` is the full SRV name.
    pub service: *const c_char,
    /// The protocol, without its underscore (`"tcp"`); see `service`.
    pub proto: *const c_char,
    /// The domain (`"internal"`, making `_api._tcp.internal`), or the full SRV name when
    /// `service` and `proto` are NULL or empty. Required.
    pub name: *const c_char,
    /// How long a successful lookup is reused, in milliseconds; 0 looks up on every
    /// refresh. Default 60000.
    pub refresh_ms: u64,
    /// After a failed lookup, the last good list is served for up to this many milliseconds
    /// from the first failure; 0 (the default) reports failures at once.
    pub grace_period_ms: u64,
    /// `resolvers_len` name servers to ask, in order, each `ip` or `ip:port` (port 53 if
    /// absent). NULL and 0 (the default): those of `/etc/resolv.conf`.
    pub resolvers: *const *const c_char,
    /// The number of entries in `resolvers`.
    pub resolvers_len: usize,
    /// Timeout of each query attempt, in milliseconds; 0 (the default): `resolv.conf`'s,
    /// or 5000.
    pub timeout_ms: u64,
    /// Retries after a failed query attempt (0: one attempt only);
    /// `LC_DNS_RETRIES_DEFAULT` (the default): `resolv.conf`'s, or 2.
    pub retries: i32,
    /// Weight of every upstream of this source, 1 to `LC_MAX_WEIGHT`. Default 1.
    pub weight: u32,
    /// `max_requests` of every upstream of this source (0 = unlimited). Default 0.
    pub max_requests: u32,
    /// Tier of every upstream of this source (0 = primary). Default 0.
    pub tier: u32,
    /// Tag of every upstream of this source, handed back in its picks. Default NULL.
    pub tag: *mut c_void,
}

/// Fills `*config` with the defaults: port 80, both IP versions, a refresh of 60 s, the
/// system's resolution, weight 1, no request limit, tier 0, tag NULL. `name` is set to NULL:
/// set it before use. Any thread.
#[unsafe(no_mangle)]
pub extern "C" fn lc_dns_a_config_default(config: *mut lc_dns_a_config) -> lc_status {
    ffi_boundary!("lc_dns_a_config_default", {
        *try_mut!(config) = lc_dns_a_config {
            name: std::ptr::null(),
            port: 80,
            versions: LC_IP_BOTH,
            refresh_ms: 60_000,
            resolvers: std::ptr::null(),
            resolvers_len: 0,
            timeout_ms: 0,
            retries: LC_DNS_RETRIES_DEFAULT,
            weight: 1,
            max_requests: 0,
            tier: 0,
            tag: std::ptr::null_mut(),
        };
        LC_OK
    })
}

/// Fills `*config` with the defaults: a refresh of 60 s, no grace period, the name servers
/// of `/etc/resolv.conf`, weight 1, no request limit, tier 0, tag NULL. `service`, `proto`
/// and `name` are set to NULL: set `name` (and possibly `service` and `proto`) before use.
/// Any thread.
#[unsafe(no_mangle)]
pub extern "C" fn lc_dns_srv_config_default(config: *mut lc_dns_srv_config) -> lc_status {
    ffi_boundary!("lc_dns_srv_config_default", {
        *try_mut!(config) = lc_dns_srv_config {
            service: std::ptr::null(),
            proto: std::ptr::null(),
            name: std::ptr::null(),
            refresh_ms: 60_000,
            grace_period_ms: 0,
            resolvers: std::ptr::null(),
            resolvers_len: 0,
            timeout_ms: 0,
            retries: LC_DNS_RETRIES_DEFAULT,
            weight: 1,
            max_requests: 0,
            tier: 0,
            tag: std::ptr::null_mut(),
        };
        LC_OK
    })
}

/// An optional string: NULL reads as empty.
fn optional_str<'a>(ptr: *const c_char) -> Result<&'a str, lc_status> {
    if ptr.is_null() {
        return Ok("");
    }
    // SAFETY: a non-NULL string argument is NUL-terminated and live for the call (documented).
    unsafe { c_str(ptr) }
}

fn timeout_from_c(timeout_ms: u64) -> Option<Duration> {
    (timeout_ms != 0).then(|| Duration::from_millis(timeout_ms))
}

fn retries_from_c(retries: i32) -> Result<Option<usize>, lc_status> {
    match retries {
        LC_DNS_RETRIES_DEFAULT => Ok(None),
        n => usize::try_from(n).map(Some).map_err(|_| LC_ERR_INVALID_LIMIT),
    }
}

/// Creates an `a` source: it resolves `config->name` and yields `ip:port` (`[ipv6]:port`)
/// for each address, in the resolver's order (Caddy's `a` upstreams). Nothing is looked up
/// here: lookups run in refreshes (`lc_pool_refresh()`, the refresher), never in a pick.
/// A successful result is reused for `refresh_ms`; a failed lookup is the source's error
/// (inside a `multi`: logged and skipped) and is not cached.
///
/// Errors: `LC_ERR_NULL_POINTER` (`config`, `config->name`, a resolver entry, `out`, or a
/// NULL `resolvers` with a non-zero `resolvers_len`), `LC_ERR_INVALID_UTF8`,
/// `LC_ERR_INVALID_ADDRESS` (a name, port 0 or resolver that cannot work),
/// `LC_ERR_INVALID_ARGUMENT` (an unknown `versions`, or an IP literal of an excluded
/// version), `LC_ERR_INVALID_WEIGHT`, `LC_ERR_INVALID_LIMIT` (`max_requests` or `tier` out
/// of range, or a negative `retries` other than `LC_DNS_RETRIES_DEFAULT`).
///
/// `config` and its strings are borrowed for the call. On success `*out` is a new source
/// owned by the caller (give it to `lc_source_multi_add()` or `lc_pool_new()`, or free it
/// with `lc_source_free()`); on error it is NULL. Any thread.
#[unsafe(no_mangle)]
pub extern "C" fn lc_source_dns_a_new(config: *const lc_dns_a_config, out: *mut *mut lc_source) -> lc_status {
    ffi_boundary!("lc_source_dns_a_new", {
        let out = try_out!(out);
        let config = try_ref!(config);
        let name = try_str!(config.name);
        let versions = match config.versions {
            LC_IP_BOTH => IpVersions::Both,
            LC_IP_V4 => IpVersions::V4,
            LC_IP_V6 => IpVersions::V6,
            _ => return LC_ERR_INVALID_ARGUMENT,
        };
        let resolvers = match strings(try_slice!(config.resolvers, config.resolvers_len)) {
            Ok(r) => r,
            Err(status) => return status,
        };
        let mut builder = A::builder(name)
            .port(config.port)
            .versions(versions)
            .refresh(Duration::from_millis(config.refresh_ms))
            .resolvers(resolvers)
            .template(template(config.weight, config.max_requests, config.tier, config.tag));
        if let Some(t) = timeout_from_c(config.timeout_ms) {
            builder = builder.timeout(t);
        }
        match retries_from_c(config.retries) {
            Ok(Some(n)) => builder = builder.retries(n),
            Ok(None) => {}
            Err(status) => return status,
        }
        // SAFETY: `try_out!` checked `out`.
        unsafe { publish(builder.build(), out) }
    })
}

/// Creates an `srv` source: it looks up the SRV records of `_service._proto.name` and
/// yields `target:port` for each (the target fully qualified, with its final dot), ordered
/// by priority and, within a priority, by RFC 2782's weighted random order (Caddy's `srv`
/// upstreams). Lookups run in refreshes, never in a pick. A successful result is reused
/// for `refresh_ms`; a failed lookup is not cached and, after `grace_period_ms` of serving
/// the last good list, is the source's error (inside a `multi`: logged and skipped).
///
/// Errors: `LC_ERR_NULL_POINTER` (`config`, `config->name`, a resolver entry, `out`, or a
/// NULL `resolvers` with a non-zero `resolvers_len`), `LC_ERR_INVALID_UTF8`,
/// `LC_ERR_INVALID_ADDRESS` (an invalid name or resolver), `LC_ERR_INVALID_ARGUMENT` (only
/// one of `service` and `proto` given), `LC_ERR_INVALID_WEIGHT`, `LC_ERR_INVALID_LIMIT`
/// (`max_requests` or `tier` out of range, or a negative `retries` other than
/// `LC_DNS_RETRIES_DEFAULT`).
///
/// `config` and its strings are borrowed for the call. On success `*out` is a new source
/// owned by the caller; on error it is NULL. Any thread.
#[unsafe(no_mangle)]
pub extern "C" fn lc_source_dns_srv_new(config: *const lc_dns_srv_config, out: *mut *mut lc_source) -> lc_status {
    ffi_boundary!("lc_source_dns_srv_new", {
        let out = try_out!(out);
        let config = try_ref!(config);
        let name = try_str!(config.name);
        let (service, proto) = match (optional_str(config.service), optional_str(config.proto)) {
            (Ok(s), Ok(p)) if s.is_empty() == p.is_empty() => (s, p),
            (Ok(_), Ok(_)) => return LC_ERR_INVALID_ARGUMENT,
            (Err(status), _) | (_, Err(status)) => return status,
        };
        let resolvers = match strings(try_slice!(config.resolvers, config.resolvers_len)) {
            Ok(r) => r,
            Err(status) => return status,
        };
        let mut builder = Srv::service(service, proto, name)
            .refresh(Duration::from_millis(config.refresh_ms))
            .grace_period(Duration::from_millis(config.grace_period_ms))
            .resolvers(resolvers)
            .template(template(config.weight, config.max_requests, config.tier, config.tag));
        if let Some(t) = timeout_from_c(config.timeout_ms) {
            builder = builder.timeout(t);
        }
        match retries_from_c(config.retries) {
            Ok(Some(n)) => builder = builder.retries(n),
            Ok(None) => {}
            Err(status) => return status,
        }
        // SAFETY: `try_out!` checked `out`.
        unsafe { publish(builder.build(), out) }
    })
}
