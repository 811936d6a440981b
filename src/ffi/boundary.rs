//! The boundary every exported function goes through: the panic fence and the NULL checks.
//!
//! Each `extern "C"` function is an ordinary function (so cbindgen sees its signature) whose
//! whole body sits inside [`ffi_boundary!`], which runs it under `catch_unwind`: a panic
//! becomes `LC_ERR_PANIC` (or the function's documented fallback) and is logged, and never
//! unwinds into C. Inside the body, pointer arguments are taken with the `try_*!` macros,
//! which return `LC_ERR_NULL_POINTER` (or `LC_ERR_INVALID_UTF8`) before anything else
//! happens. Everything a C caller must still guarantee (a pointer is valid, a handle is not
//! freed twice) is written in each function's documentation, which the header carries.

use std::ffi::{CStr, c_char};

use crate::ffi::status::{LC_ERR_INVALID_UTF8, LC_ERR_NULL_POINTER, LC_ERR_PANIC, lc_status};

/// The value an exported function returns when its body panicked.
pub(crate) trait PanicOrDefault {
    fn panic_value() -> Self;
}

impl PanicOrDefault for lc_status {
    fn panic_value() -> Self {
        LC_ERR_PANIC
    }
}

impl PanicOrDefault for () {
    fn panic_value() -> Self {}
}

/// The functions that return a size or an id (`lc_zone_size`, `lc_zone_creation_id`) return
/// 0 after a panic: the value each documents for "none".
impl PanicOrDefault for usize {
    fn panic_value() -> Self {
        0
    }
}

impl PanicOrDefault for u64 {
    fn panic_value() -> Self {
        0
    }
}

/// The functions that return a static string (`lc_status_str`, `lc_version`) promise never
/// to return NULL: after a panic they return a static empty string.
impl PanicOrDefault for *const c_char {
    fn panic_value() -> Self {
        c"".as_ptr()
    }
}

/// `&str` from a NUL-terminated C string: `LC_ERR_NULL_POINTER` for NULL,
/// `LC_ERR_INVALID_UTF8` when it is not UTF-8.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that outlives `'a`.
pub(crate) unsafe fn c_str<'a>(ptr: *const c_char) -> Result<&'a str, lc_status> {
    if ptr.is_null() {
        return Err(LC_ERR_NULL_POINTER);
    }
    // SAFETY: non-NULL, and NUL-terminated and alive for `'a` by the caller's contract.
    unsafe { CStr::from_ptr(ptr) }.to_str().map_err(|_| LC_ERR_INVALID_UTF8)
}

/// Logs a panic caught at the boundary (the default hook has already printed it to stderr).
#[cold]
pub(crate) fn report_panic(function: &str, panic: &(dyn std::any::Any + Send)) {
    log::error!("panic caught at the C boundary in {function}: {}", crate::source::panic_message(panic));
}

/// Runs the body of an exported function under `catch_unwind`. `return` inside the body
/// returns from the function, as usual.
macro_rules! ffi_boundary {
    ($function:literal, $($body:tt)*) => {{
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(move || { $($body)* })) {
            Ok(value) => value,
            Err(panic) => {
                $crate::ffi::boundary::report_panic($function, &*panic);
                $crate::ffi::boundary::PanicOrDefault::panic_value()
            }
        }
    }};
}

/// `&T` from a `const T *` argument, or return `LC_ERR_NULL_POINTER`.
macro_rules! try_ref {
    ($ptr:expr) => {{
        let ptr = $ptr;
        // SAFETY: every function documents that a non-NULL pointer argument must point to a
        // live, properly initialised value for the duration of the call.
        match unsafe { ptr.as_ref() } {
            Some(r) => r,
            None => return $crate::ffi::status::LC_ERR_NULL_POINTER,
        }
    }};
}

/// `&mut T` from a `T *` argument, or return `LC_ERR_NULL_POINTER`.
macro_rules! try_mut {
    ($ptr:expr) => {{
        let ptr = $ptr;
        // SAFETY: as in `try_ref!`, and the caller documents exclusive access for the call.
        match unsafe { ptr.as_mut() } {
            Some(r) => r,
            None => return $crate::ffi::status::LC_ERR_NULL_POINTER,
        }
    }};
}

/// Checks a `T **out` argument (whose target is only written, never read): return
/// `LC_ERR_NULL_POINTER` when it is NULL, otherwise set `*out` to NULL and give it back, so
/// that on every later error the caller finds NULL there.
macro_rules! try_out {
    ($ptr:expr) => {{
        let ptr = $ptr;
        if ptr.is_null() {
            return $crate::ffi::status::LC_ERR_NULL_POINTER;
        }
        // SAFETY: a non-NULL `out` argument points to writable storage for one pointer.
        unsafe { ptr.write(::std::ptr::null_mut()) };
        ptr
    }};
}

/// `&str` from a NUL-terminated `const char *`, or return `LC_ERR_NULL_POINTER` /
/// `LC_ERR_INVALID_UTF8`.
macro_rules! try_str {
    ($ptr:expr) => {{
        let ptr: *const ::std::ffi::c_char = $ptr;
        // SAFETY: string arguments are documented as NUL-terminated and live for the call.
        match unsafe { $crate::ffi::boundary::c_str(ptr) } {
            Ok(s) => s,
            Err(status) => return status,
        }
    }};
}

/// `&[T]` from a pointer and a length: a zero length needs no pointer (it may be NULL);
/// otherwise a NULL pointer returns `LC_ERR_NULL_POINTER`.
macro_rules! try_slice {
    ($ptr:expr, $len:expr) => {{
        let (ptr, len) = ($ptr, $len);
        if len == 0 {
            &[][..]
        } else if ptr.is_null() {
            return $crate::ffi::status::LC_ERR_NULL_POINTER;
        } else {
            // SAFETY: array arguments are documented as `len` initialised elements that stay
            // unchanged for the call.
            unsafe { ::std::slice::from_raw_parts(ptr, len) }
        }
    }};
}

/// Takes ownership of a handle passed by `T *` whose documentation says "consumed": the
/// `Box` is dropped when the caller's body ends, on every path. `None` when NULL.
macro_rules! take_box {
    ($ptr:expr) => {{
        let ptr = $ptr;
        // SAFETY: a consumed handle came from this library's `Box::into_raw` and, as the
        // caller documents, is not used again.
        if ptr.is_null() { None } else { Some(unsafe { Box::from_raw(ptr) }) }
    }};
}
