//! The C ABI: `include/leastconn.h` is generated from this module by cbindgen (`build.rs`).
//!
//! Conventions, after rustls-ffi:
//!
//! * One naming scheme from C type to function: `lc_pool` is made by `lc_pool_new` and
//!   used by `lc_pool_select`, `lc_pick` is ended by `lc_pick_release`, and so on.
//! * Ownership shows in the prototype: `const T *` is borrowed for the call, `T **out`
//!   hands the caller a new object, and a `T *` that a function documents as *consumed* is
//!   the library's from then on, also when the function fails.
//! * Every fallible function returns an `lc_status`: `LC_OK` (0) or a stable error number,
//!   the Rust [`ErrorKind::code`](crate::ErrorKind::code). Enumerations the caller passes
//!   in (`lc_policy`, `lc_outcome`, `lc_log_level`) are plain `uint32_t`s checked here,
//!   because C may hand over any number.
//! * Every exported function runs inside the same fence ([`boundary`]): NULL checks first,
//!   and a `catch_unwind` around the body, so no panic crosses into C.
//! * Thread safety is stated per type: pool functions may be called concurrently from any
//!   thread; a pick may be released from any thread; a picker is one thread's at a time.
//!
//! Adding a kind of source (DNS `a`/`srv`, ...): put its constructor in its own file here,
//! `lc_source_<kind>_new(..., lc_source **out) -> lc_status`, written like
//! `lc_source_static_new` (`ffi_boundary!`, `try_out!`, then
//! `out.write(lc_source::into_raw(the_rust_source))`), declare the module below, and refresh
//! the header (`LC_BLESS=1 cargo test header`): `build.rs` reads every file of this
//! directory, so the new functions land in `include/leastconn.h` after the core ones.

// C names and `extern "C"` functions with pointer arguments are the point of this module:
// the functions cannot be `unsafe` for a C caller, so each documents its pointer contract
// and the fence checks what can be checked (NULL, UTF-8).
#![allow(non_camel_case_types, clippy::not_unsafe_ptr_arg_deref)]

#[macro_use]
mod boundary;
mod config;
mod dns;
mod docker;
mod etcd;
mod limits;
mod log;
mod pick;
mod pool;
mod refresher;
pub(crate) mod source;
mod source_config;
mod stats;
mod status;
mod zone;

#[cfg(test)]
mod tests;
