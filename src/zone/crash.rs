//! Crash points (docs/design-zone.md 4.5): places between the steps of a zone pick, a zone
//! release, a sweep and a sweep's takeover where a test can make the process die, to check
//! what the sweep of a process killed there recovers, what stays in doubt, and that a
//! reconcile then makes the counts exact.
//!
//! `crash_point!(NAME)` (defined in `lib.rs`) expands to nothing unless the crate is built with
//! the feature `crash-points` (never in release builds of a product) or under loom. With the
//! feature, [`hit`] raises `SIGKILL` on the calling process when the point is the armed one:
//! `LEASTCONN_CRASH_POINT=K` (the first hit of point K) or `K@N` (its N-th hit), read once when
//! the process registers in a zone. Under loom, [`hit`] unwinds with a [`Crash`] panic when the
//! point is armed on the calling model thread ([`arm`]); the model catches it at the thread's
//! top, as the thread of a process killed there stops.

/// The points, each named after the step it follows.
pub mod point {
    /// Pick: the window word names the slot; the intent is not counted yet.
    pub const PICK_OPENED: u32 = 1;
    /// Pick: the intent `A[s] += 1` is stored; the reservation add has not run.
    pub const PICK_INTENT: u32 = 2;
    /// Pick, success: the add reserved; the window is still open.
    pub const PICK_RESERVED: u32 = 3;
    /// Pick, success: the window is closed (outside any window).
    pub const PICK_CLOSED: u32 = 4;
    /// Pick, failure: the add found the host full or down; not undone yet.
    pub const PICK_REFUSED: u32 = 5;
    /// Pick, failure: the add is undone; the intent is still counted.
    pub const PICK_UNDONE: u32 = 6;
    /// Pick, failure: the intent is taken back; the window is still open.
    pub const PICK_UNINTENT: u32 = 7;
    /// Pick, failure: the window is closed (outside any window).
    pub const PICK_REFUSED_CLOSED: u32 = 8;
    /// Release: the window word names the slot; nothing else done.
    pub const RELEASE_OPENED: u32 = 11;
    /// Release with a failure outcome: the failure is recorded; the add has not run.
    pub const RELEASE_FAILURE_RECORDED: u32 = 12;
    /// Release: the add (in flight - 1, completed + 1) ran; `A[s]` still counts the unit.
    pub const RELEASE_ADDED: u32 = 13;
    /// Release: `A[s] -= 1` is stored; the window is still open.
    pub const RELEASE_SUBTRACTED: u32 = 14;
    /// Release: the window is closed (outside any window).
    pub const RELEASE_CLOSED: u32 = 15;
    /// Sweep of one slot's counts: the marker `(s, n, u)` is written.
    pub const SWEEP_MARKED: u32 = 21;
    /// Sweep: `doubt[s] += n + u` ran.
    pub const SWEEP_DOUBT_ADDED: u32 = 22;
    /// Sweep: the `n` units are subtracted from the in-flight count.
    pub const SWEEP_SUBTRACTED: u32 = 23;
    /// Sweep: `doubt[s] -= n` ran.
    pub const SWEEP_DOUBT_SUBTRACTED: u32 = 24;
    /// Sweep: the dead rows' words on the slot are zeroed.
    pub const SWEEP_ROWS_ZEROED: u32 = 25;
    /// Sweep: the cursor moved past the slot.
    pub const SWEEP_CURSOR: u32 = 26;
    /// Sweep: the marker is cleared.
    pub const SWEEP_UNMARKED: u32 = 27;
    /// Sweep of a listing: the listing marker is written.
    pub const SWEEP_LISTING_MARKED: u32 = 28;
    /// Sweep of a listing: the dead process's bitmap bit is cleared.
    pub const SWEEP_BIT_CLEARED: u32 = 29;
    /// Sweep of a listing: the slot's listers count is decremented.
    pub const SWEEP_DETACHED: u32 = 30;
    /// Sweep: the dead process's unpublished slot claims are tombstoned.
    pub const SWEEP_CLAIMS_ABANDONED: u32 = 31;
    /// Sweep: every word of the dead process's thread records is zeroed.
    pub const SWEEP_RECORDS_ZEROED: u32 = 32;
    /// Takeover: a record that a dead sweeper held is claimed (SWEEPING{dead} -> SWEEPING{me}).
    pub const TAKEN_OVER: u32 = 41;
    /// Takeover of an unfinished counts step: `doubt[s] += n + u` ran again.
    pub const RESUME_DOUBT_ADDED: u32 = 42;
    /// Takeover of an unfinished counts step: the rows on the slot are zeroed.
    pub const RESUME_ZEROED: u32 = 43;
    /// Takeover: the dead sweeper's marker is settled and cleared.
    pub const RESUMED: u32 = 44;

    /// The offset of the sweep points: sweep point `p` of `sweep::point` is `SWEEP + p`.
    pub(crate) const SWEEP: u32 = 20;
}

/// The panic payload of a crash point under loom.
#[cfg(loom)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crash(pub u32);

#[cfg(all(feature = "crash-points", not(loom)))]
mod armed {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::{Mutex, PoisonError};

    /// The armed point (0: none) and how many of its hits are left before the kill.
    static POINT: AtomicU32 = AtomicU32::new(0);
    static HITS: AtomicU32 = AtomicU32::new(0);

    /// The environment variable that arms a point: `K` or `K@N`.
    pub(super) const VAR: &str = "LEASTCONN_CRASH_POINT";

    /// Reads [`VAR`] (at registration). A malformed value disarms and is logged.
    pub(super) fn from_env() {
        let (point, hits) = match std::env::var(VAR) {
            Ok(v) => match parse(&v) {
                Some(armed) => armed,
                None => {
                    log::error!("{VAR}={v:?} is not K or K@N (N >= 1): no crash point armed");
                    (0, 0)
                }
            },
            Err(_) => (0, 0),
        };
        // Relaxed (both): set at registration, before this process's zone operations, by the
        // thread that then runs them in the crash tests; a hit on another thread that misses
        // the change would only not crash, and no test relies on that.
        HITS.store(hits, Ordering::Relaxed);
        // Relaxed: as above.
        POINT.store(point, Ordering::Relaxed);
    }

    fn parse(v: &str) -> Option<(u32, u32)> {
        let (k, n) = v.split_once('@').unwrap_or((v, "1"));
        let (k, n) = (k.trim().parse::<u32>().ok()?, n.trim().parse::<u32>().ok()?);
        (k != 0 && n != 0).then_some((k, n))
    }

    #[inline(never)]
    #[cold]
    fn kill() -> ! {
        // SAFETY: sends SIGKILL to this process; nothing of ours runs after it.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        unreachable!("SIGKILL is not caught");
    }

    /// The point whose next hit runs [`HOOK`] (0: none).
    static HOOK_POINT: AtomicU32 = AtomicU32::new(0);
    type Hook = Box<dyn FnOnce() + Send>;
    static HOOK: Mutex<Option<Hook>> = Mutex::new(None);

    pub(super) fn on(k: u32, f: Hook) {
        *HOOK.lock().unwrap_or_else(PoisonError::into_inner) = Some(f);
        // Release: a hit that sees the point (Acquire) finds the hook stored.
        HOOK_POINT.store(k, Ordering::Release);
    }

    #[inline(never)]
    #[cold]
    fn run_hook(k: u32) {
        // AcqRel: one hit takes the hook (Acquire: pairs with `on`'s Release store).
        if HOOK_POINT.compare_exchange(k, 0, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            let hook = HOOK.lock().unwrap_or_else(PoisonError::into_inner).take();
            if let Some(f) = hook {
                f();
            }
        }
    }

    #[inline(always)]
    pub(super) fn hit(k: u32) {
        // Relaxed: a cheap test; `run_hook` checks again with its CAS.
        if HOOK_POINT.load(Ordering::Relaxed) == k {
            run_hook(k);
        }
        // Relaxed (both): see `from_env`; the count is an RMW, so exactly one hit is the N-th.
        if POINT.load(Ordering::Relaxed) == k && HITS.fetch_sub(1, Ordering::Relaxed) == 1 {
            kill();
        }
    }

    #[cfg(test)]
    #[test]
    fn parses_k_and_k_at_n() {
        assert_eq!(parse("7"), Some((7, 1)));
        assert_eq!(parse("7@3"), Some((7, 3)));
        assert_eq!(parse("0"), None);
        assert_eq!(parse("7@0"), None);
        assert_eq!(parse("x"), None);
        assert_eq!(parse("7@"), None);
    }
}

#[cfg(loom)]
mod armed {
    use std::cell::Cell;

    loom::thread_local! {
        static POINT: Cell<u32> = Cell::new(0);
    }

    pub(super) fn arm(k: u32) {
        POINT.with(|p| p.set(k));
    }

    pub(super) fn hit(k: u32) {
        if POINT.with(|p| p.get()) == k {
            POINT.with(|p| p.set(0));
            std::panic::panic_any(super::Crash(k));
        }
    }
}

/// Arms the crash point named by `LEASTCONN_CRASH_POINT` in this process (at registration).
#[cfg(all(feature = "crash-points", not(loom)))]
pub(crate) fn arm_from_env() {
    armed::from_env();
}

/// Runs `f` at the next hit of point `k` in this process (once), before that hit may kill:
/// what a test uses to make another operation happen at a precise step of this one (e.g. a
/// pick that fills the host between a pick's scan and its add, so the add fails). The hook
/// must not use the thread record of the operation it interrupts (use a `Picker`).
#[cfg(all(feature = "crash-points", not(loom)))]
pub fn on_point(k: u32, f: impl FnOnce() + Send + 'static) {
    armed::on(k, Box::new(f));
}

/// Arms point `k` on the calling loom thread (0 disarms): its next hit there unwinds with
/// [`Crash`].
#[cfg(loom)]
pub fn arm(k: u32) {
    armed::arm(k);
}

/// A crash point was reached: dies there if it is the armed one.
#[cfg(any(feature = "crash-points", loom))]
#[inline(always)]
pub(crate) fn hit(k: u32) {
    armed::hit(k);
}

/// The crash point of sweep step `p` (`sweep::point`).
#[cfg(any(feature = "crash-points", loom))]
pub(crate) const fn sweep(p: u32) -> u32 {
    point::SWEEP + p
}
