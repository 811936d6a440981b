//! Forwarding the library's log records (source errors, refresh failures) to C.
//!
//! The crate logs through the `log` facade. The first `lc_log_set_callback()` installs a
//! `log::Log` implementation that hands each record to the registered C callback. The
//! callback is kept in an `ArcSwapOption`, so logging takes no lock and a callback that
//! itself calls into the library cannot deadlock.

use std::ffi::{CString, c_char, c_void};
use std::sync::Arc;

use arc_swap::ArcSwapOption;

use crate::ffi::status::{LC_ERR_INVALID_ARGUMENT, LC_OK, lc_status};

/// A log level (one of `LC_LOG_*`); a higher number is more verbose.
pub type lc_log_level = u32;

/// No logging.
pub const LC_LOG_OFF: lc_log_level = 0;
/// Errors: a source failed, a refresh failed.
pub const LC_LOG_ERROR: lc_log_level = 1;
/// Warnings: a source's last good list is served within its grace period.
pub const LC_LOG_WARN: lc_log_level = 2;
/// Informational messages.
pub const LC_LOG_INFO: lc_log_level = 3;
/// Debugging: e.g. a source returned no upstreams.
pub const LC_LOG_DEBUG: lc_log_level = 4;
/// Tracing.
pub const LC_LOG_TRACE: lc_log_level = 5;

/// Receives one log record: `message` is NUL-terminated UTF-8, valid only during the call.
///
/// Called on the thread that logs (a refresher thread, or any thread calling into the
/// library), possibly from several threads at once. It may call other `lc_*` functions
/// except `lc_log_set_callback()`.
pub type lc_log_fn = Option<extern "C" fn(userdata: *mut c_void, level: lc_log_level, message: *const c_char)>;

struct Sink {
    callback: extern "C" fn(*mut c_void, lc_log_level, *const c_char),
    userdata: *mut c_void,
}

// SAFETY: the C caller promises (documented on `lc_log_fn`) that the callback may be called
// with this userdata from any thread, concurrently.
unsafe impl Send for Sink {}
// SAFETY: as above.
unsafe impl Sync for Sink {}

struct Forwarder {
    sink: ArcSwapOption<Sink>,
}

static FORWARDER: Forwarder = Forwarder { sink: ArcSwapOption::const_empty() };

impl log::Log for Forwarder {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let sink = self.sink.load();
        let Some(sink) = sink.as_ref() else { return };
        let text = record.args().to_string();
        // A source's error text may contain NULs; C would cut the message there.
        let message = CString::new(text.replace('\0', "\\0")).expect("NULs were replaced");
        (sink.callback)(sink.userdata, record.level() as lc_log_level, message.as_ptr());
    }

    fn flush(&self) {}
}

fn filter_of(level: lc_log_level) -> Option<log::LevelFilter> {
    Some(match level {
        LC_LOG_OFF => log::LevelFilter::Off,
        LC_LOG_ERROR => log::LevelFilter::Error,
        LC_LOG_WARN => log::LevelFilter::Warn,
        LC_LOG_INFO => log::LevelFilter::Info,
        LC_LOG_DEBUG => log::LevelFilter::Debug,
        LC_LOG_TRACE => log::LevelFilter::Trace,
        _ => return None,
    })
}

/// Sends the library's log records up to `max_level` (one of `LC_LOG_*`) to `callback`,
/// with `userdata`, for the whole process; replaces the previous callback. NULL `callback`
/// (or `LC_LOG_OFF`) turns logging off. Without a callback nothing is logged.
///
/// A call already running on another thread may still finish with the previous callback
/// and userdata: free the previous userdata only once no thread can be logging (every pool
/// freed and every refresher stopped), or keep it for the life of the process. A callback
/// that refreshes a pool whose refresh is logging gets `LC_ERR_INVALID_ARGUMENT` from that
/// refresh instead of a deadlock. `LC_ERR_INVALID_ARGUMENT` for an unknown level, or when the process
/// already has another Rust `log` logger (a Rust program that links leastconn as a crate).
#[unsafe(no_mangle)]
pub extern "C" fn lc_log_set_callback(
    callback: lc_log_fn,
    userdata: *mut c_void,
    max_level: lc_log_level,
) -> lc_status {
    ffi_boundary!("lc_log_set_callback", {
        let Some(filter) = filter_of(max_level) else {
            return LC_ERR_INVALID_ARGUMENT;
        };
        let installed = log::set_logger(&FORWARDER).is_ok()
            || std::ptr::addr_eq(log::logger() as *const dyn log::Log, &FORWARDER as *const Forwarder);
        if !installed {
            return LC_ERR_INVALID_ARGUMENT;
        }
        let sink = callback.map(|callback| Arc::new(Sink { callback, userdata }));
        let filter = if sink.is_some() { filter } else { log::LevelFilter::Off };
        FORWARDER.sink.store(sink);
        log::set_max_level(filter);
        LC_OK
    })
}
