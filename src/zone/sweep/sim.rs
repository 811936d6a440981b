//! The hot path's attribution steps (design 3.4) on the zone words, in the design's order,
//! for the tests and loom models of the sweep until pools write them (step S6). A thread is
//! (thread record, window seq); `stop` cuts the steps after step `stop` (0: before the first),
//! as a thread killed there stops; `None`: stopped.

use super::{Layout, state};
use crate::host::{DOWN, INFLIGHT_MASK};
use crate::sync::{AtomicU64, Ordering};
use crate::zone::procs::{self, WINDOW, thread_word, window};

/// A release's add: in-flight - 1 and, through the carry out of bit 32, completed + 1.
const RELEASE_DELTA: u64 = (1 << 33) - 1;

fn parts<'a>(words: &'a [AtomicU64], layout: &Layout, record: u32, s: u32) -> [&'a AtomicU64; 3] {
    [
        thread_word(words, layout, record, WINDOW),
        &procs::attribution_row(words, layout, record)[s as usize],
        state(words, layout, s),
    ]
}

/// A pick of slot `s` under limit `limit`. Steps: 1 window PICK, 2 intent + 1, 3 add; on
/// success 4 window IDLE; on failure 4 undo, 5 intent - 1, 6 window IDLE. `Some(reserved)`.
pub(crate) fn pick(
    words: &[AtomicU64],
    layout: &Layout,
    (record, seq): (u32, &mut u32),
    s: u32,
    limit: u64,
    stop: usize,
) -> Option<bool> {
    let [w, a, word] = parts(words, layout, record, s);
    if stop < 1 {
        return None;
    }
    // Release: the hot path's window store, ordered before the intent and add.
    w.store(window::encode(*seq, window::PICK, Some(s)), Ordering::Release);
    if stop < 2 {
        return None;
    }
    // Relaxed load, Release store: a single writer's counter (design 3.4).
    a.store(a.load(Ordering::Relaxed).wrapping_add(1), Ordering::Release);
    if stop < 3 {
        return None;
    }
    // Release: the reservation add of design 3.4 (a reconcile that sees it sees the window).
    let prev = word.fetch_add(1, Ordering::Release);
    if stop < 4 {
        return None;
    }
    let reserved = prev & INFLIGHT_MASK < limit && prev & DOWN == 0;
    if !reserved {
        // Relaxed: the undo, as today's.
        word.fetch_sub(1, Ordering::Relaxed);
        if stop < 5 {
            return None;
        }
        // Relaxed load, Release store: as the intent.
        a.store(a.load(Ordering::Relaxed).wrapping_sub(1), Ordering::Release);
        if stop < 6 {
            return None;
        }
    }
    *seq = seq.wrapping_add(1);
    // Release: closes the window after the steps inside it.
    w.store(window::encode(*seq, window::IDLE, None), Ordering::Release);
    Some(reserved)
}

/// A release of slot `s`. Steps: 1 window RELEASE, 2 add, 3 intent - 1, 4 window IDLE.
pub(crate) fn release(
    words: &[AtomicU64],
    layout: &Layout,
    (record, seq): (u32, &mut u32),
    s: u32,
    stop: usize,
) -> Option<()> {
    let [w, a, word] = parts(words, layout, record, s);
    if stop < 1 {
        return None;
    }
    // Release: as in `pick`.
    w.store(window::encode(*seq, window::RELEASE, Some(s)), Ordering::Release);
    if stop < 2 {
        return None;
    }
    // Release: the release's add of design 3.4.
    let prev = word.fetch_add(RELEASE_DELTA, Ordering::Release);
    assert!(prev & INFLIGHT_MASK > 0, "the simulation releases only what it holds");
    if stop < 3 {
        return None;
    }
    // Relaxed load, Release store: as in `pick`.
    a.store(a.load(Ordering::Relaxed).wrapping_sub(1), Ordering::Release);
    if stop < 4 {
        return None;
    }
    *seq = seq.wrapping_add(1);
    // Release: as in `pick`.
    w.store(window::encode(*seq, window::IDLE, None), Ordering::Release);
    Some(())
}
