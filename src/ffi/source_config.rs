//! What the C config structs of the sources (`lc_dns_a_config`, `lc_dns_srv_config`,
//! `lc_docker_config`, `lc_etcd_config`) convert alike: the template fields, string lists,
//! and handing the built source to the caller.

use std::ffi::{c_char, c_void};

use crate::ffi::boundary::c_str;
use crate::ffi::source::lc_source;
use crate::ffi::status::{LC_OK, lc_status, status_of};
use crate::upstream::Upstream;

/// The template of a source's upstreams from a config's `weight`, `max_requests`, `tier`
/// and `tag` (checked by the source's build).
pub(crate) fn template(weight: u32, max_requests: u32, tier: u32, tag: *mut c_void) -> Upstream {
    Upstream::new("").weight(weight).max_requests(max_requests).tier(tier).tag(tag.expose_provenance())
}

/// Copies a config's list of strings (resolvers, endpoints), or gives the status to return.
pub(crate) fn strings(list: &[*const c_char]) -> Result<Vec<String>, lc_status> {
    list.iter()
        .map(|&s| {
            // SAFETY: each entry is documented as a NUL-terminated string live for the call
            // (NULL is checked by `c_str`).
            unsafe { c_str(s) }.map(str::to_owned)
        })
        .collect()
}

/// Writes a built source to `out` (the caller now owns it), or maps the build error.
///
/// # Safety
/// `out` is valid for a write (checked by `try_out!`).
pub(crate) unsafe fn publish(
    built: Result<impl crate::Source + 'static, crate::Error>,
    out: *mut *mut lc_source,
) -> lc_status {
    match built {
        Ok(source) => {
            // SAFETY: the caller guarantees `out` is valid for a write.
            unsafe { out.write(lc_source::into_raw(source)) };
            LC_OK
        }
        Err(e) => status_of(&e),
    }
}
