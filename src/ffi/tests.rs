//! Tests of the boundary itself; the C, C++ and Python consumers are in `tests/ffi.rs`.

use std::ffi::{CStr, c_char, c_void};
use std::sync::Mutex;

use super::log::{LC_LOG_DEBUG, LC_LOG_OFF, lc_log_level, lc_log_set_callback};
use super::pick::{LC_OUTCOME_FAILURE, LC_OUTCOME_SUCCESS, lc_pick, lc_pick_release, lc_pool_select};
use super::pool::{lc_pool, lc_pool_free, lc_pool_new, lc_pool_refresh, lc_refresh_report};
use super::source::{lc_source, lc_source_multi_add, lc_source_multi_new, lc_source_static_new, lc_upstream};
use super::stats::{lc_host_stats, lc_pool_host_stats};
use super::status::{LC_ERR_ALREADY_RELEASED, LC_ERR_PANIC, LC_OK, lc_status};

#[test]
#[cfg_attr(miri, ignore = "reads files")]
fn checked_in_header_matches_generated_header() {
    let generated = include_str!(concat!(env!("OUT_DIR"), "/leastconn.h"));
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("include/leastconn.h");
    if std::env::var_os("LC_BLESS").is_some() {
        std::fs::write(&path, generated).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "include/leastconn.h differs from the header cbindgen generates from src/ffi/; \
         review the change and run `LC_BLESS=1 cargo test header` to update it"
    );
}

fn panicking_export() -> lc_status {
    ffi_boundary!("panicking_export", {
        if std::hint::black_box(true) {
            panic!("bug inside an export");
        }
        LC_OK
    })
}

static LOG: Mutex<Vec<(lc_log_level, String)>> = Mutex::new(Vec::new());

thread_local! {
    /// Set on the log test's thread: the callback is process-wide, and the other unit tests
    /// (refused releases, sources with background watchers) log from their own threads while
    /// it runs. Everything the log test checks is logged on its own thread.
    static CAPTURING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

extern "C" fn capture(_userdata: *mut c_void, level: lc_log_level, message: *const c_char) {
    // SAFETY: the library passes a NUL-terminated string valid for the call.
    let text = unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned();
    if CAPTURING.with(std::cell::Cell::get) {
        LOG.lock().unwrap().push((level, text));
    }
}

/// The records logged on this thread since the last call.
fn logged() -> Vec<(lc_log_level, String)> {
    std::mem::take(&mut *LOG.lock().unwrap())
}

static REENTER_POOL: std::sync::atomic::AtomicPtr<lc_pool> = std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());
static REENTERED: Mutex<Option<lc_status>> = Mutex::new(None);

/// A log callback that refreshes a pool (once), recording what that refresh returned.
extern "C" fn refresh_from_log(_userdata: *mut c_void, _level: lc_log_level, _message: *const c_char) {
    let pool = REENTER_POOL.swap(std::ptr::null_mut(), std::sync::atomic::Ordering::SeqCst);
    if !pool.is_null() {
        *REENTERED.lock().unwrap() = Some(lc_pool_refresh(pool, std::ptr::null_mut()));
    }
}

/// One test for everything that logs: the log callback is process-wide.
#[test]
fn panics_become_statuses_and_log_records_at_the_boundary() {
    CAPTURING.with(|c| c.set(true));
    assert_eq!(lc_log_set_callback(Some(capture), std::ptr::null_mut(), LC_LOG_DEBUG), LC_OK);

    assert_eq!(panicking_export(), LC_ERR_PANIC);
    let records = logged();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].0, 1);
    assert_eq!(records[0].1, "panic caught at the C boundary in panicking_export: bug inside an export");

    // A Rust source that panics inside a C-built multi is a logged, skipped source error.
    let exploding = lc_source::into_raw(crate::source::from_fn(|_| panic!("source exploded")));
    let address = c"10.0.0.1:80";
    let upstream =
        lc_upstream { address: address.as_ptr(), weight: 1, max_requests: 0, tier: 0, tag: std::ptr::null_mut() };
    let mut fixed = std::ptr::null_mut();
    assert_eq!(lc_source_static_new(&upstream, 1, &mut fixed), LC_OK);
    let mut multi = std::ptr::null_mut();
    assert_eq!(lc_source_multi_new(&mut multi), LC_OK);
    assert_eq!(lc_source_multi_add(multi, exploding), LC_OK);
    assert_eq!(lc_source_multi_add(multi, fixed), LC_OK);
    let mut pool: *mut lc_pool = std::ptr::null_mut();
    assert_eq!(lc_pool_new(std::ptr::null(), multi, &mut pool), LC_OK);
    let mut report = lc_refresh_report { upstreams: 0, hosts: 0, reclaimed: 0, generation: 0 };
    assert_eq!(lc_pool_refresh(pool, &mut report), LC_OK);
    assert_eq!((report.upstreams, report.generation), (1, 2));
    let failures: Vec<_> = logged().into_iter().filter(|(level, _)| *level == 1).map(|(_, m)| m).collect();
    assert_eq!(failures, ["multi: source 0 failed: panicked: source exploded; skipping"; 2]);
    lc_pool_free(pool);

    // A log callback that refreshes the pool whose refresh is logging gets an error from that
    // inner refresh, not a self-deadlock (the outer refresh holds the refresh lock while its
    // sources log).
    let mut multi = std::ptr::null_mut();
    assert_eq!(lc_source_multi_new(&mut multi), LC_OK);
    let failing = lc_source::into_raw(crate::source::from_fn(|_| Err("registry down".into())));
    assert_eq!(lc_source_multi_add(multi, failing), LC_OK);
    let mut pool: *mut lc_pool = std::ptr::null_mut();
    assert_eq!(lc_pool_new(std::ptr::null(), multi, &mut pool), LC_OK);
    logged();
    REENTER_POOL.store(pool, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(lc_log_set_callback(Some(refresh_from_log), std::ptr::null_mut(), LC_LOG_DEBUG), LC_OK);
    assert_eq!(lc_pool_refresh(pool, std::ptr::null_mut()), LC_OK);
    assert_eq!(*REENTERED.lock().unwrap(), Some(super::status::LC_ERR_INVALID_ARGUMENT));
    REENTER_POOL.store(std::ptr::null_mut(), std::sync::atomic::Ordering::SeqCst);
    lc_pool_free(pool);

    assert_eq!(lc_log_set_callback(None, std::ptr::null_mut(), LC_LOG_DEBUG), LC_OK);
    assert_eq!(panicking_export(), LC_ERR_PANIC);
    assert_eq!(logged(), []);
    assert_eq!(lc_log_set_callback(Some(capture), std::ptr::null_mut(), 6), super::status::LC_ERR_INVALID_ARGUMENT);
    assert_eq!(lc_log_set_callback(Some(capture), std::ptr::null_mut(), LC_LOG_OFF), LC_OK);
}

/// A pick shared by threads, as C code would share it.
#[derive(Clone, Copy)]
struct SharedPick(*mut lc_pick);
// SAFETY: `lc_pick_release` may be called on one pick from several threads at once.
unsafe impl Send for SharedPick {}

#[test]
fn racing_releases_of_one_pick_release_it_once_even_after_the_pool_is_freed() {
    let address = c"10.0.0.1:80";
    let upstream = lc_upstream {
        address: address.as_ptr(),
        weight: 1,
        max_requests: 0,
        tier: 0,
        tag: std::ptr::without_provenance_mut(7),
    };
    let mut source = std::ptr::null_mut();
    assert_eq!(lc_source_static_new(&upstream, 1, &mut source), LC_OK);
    let mut pool = std::ptr::null_mut();
    assert_eq!(lc_pool_new(std::ptr::null(), source, &mut pool), LC_OK);
    let mut stats = lc_host_stats::default();
    let rounds = if cfg!(miri) { 3 } else { 200 };
    let mut kept = lc_pick_zeroed();
    assert_eq!(lc_pool_select(pool, std::ptr::null(), 0, &mut kept), LC_OK);
    for round in 1..=rounds {
        let mut pick = lc_pick_zeroed();
        assert_eq!(lc_pool_select(pool, std::ptr::null(), 0, &mut pick), LC_OK);
        assert_eq!((pick.tag as usize, pick.index), (7, 0));
        // SAFETY: a select filled `address` with a C string valid until the release.
        assert_eq!(unsafe { CStr::from_ptr(pick.address) }, address);
        let shared = SharedPick(&mut pick);
        let statuses: Vec<lc_status> = std::thread::scope(|s| {
            let racers: Vec<_> =
                (0..2).map(|_| s.spawn(move || lc_pick_release({ shared }.0, LC_OUTCOME_SUCCESS))).collect();
            racers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        let mut sorted = statuses.clone();
        sorted.sort();
        assert_eq!(sorted, [LC_OK, LC_ERR_ALREADY_RELEASED], "round {round}");
        assert_eq!(lc_pool_host_stats(pool, address.as_ptr(), &mut stats), LC_OK);
        assert_eq!((stats.in_flight, stats.picks), (1, round + 1));
    }
    // The pool goes first; the kept pick still holds the host alive, and releases once.
    lc_pool_free(pool);
    assert_eq!(lc_pick_release(&mut kept, LC_OUTCOME_FAILURE), LC_OK);
    assert_eq!(lc_pick_release(&mut kept, LC_OUTCOME_FAILURE), LC_ERR_ALREADY_RELEASED);
}

fn lc_pick_zeroed() -> lc_pick {
    lc_pick {
        address: std::ptr::null(),
        tag: std::ptr::null_mut(),
        index: 0,
        host_id: 0,
        reservation: std::ptr::null_mut(),
        check: 0,
    }
}
