//! The one switch between real and model-checked synchronisation.
//!
//! Every atomic, `Arc`, lock and thread used by the crate's concurrent protocols comes from
//! here. A normal build gets `std`, `arc_swap` and `crossbeam_utils`; a build with
//! `RUSTFLAGS="--cfg loom"` gets the `loom` model-checking counterparts, so that the loom tests
//! in `tests/loom_*.rs` explore the very code that ships. arc-swap has no loom support, so under
//! loom [`ArcSwap`] is a stand-in with the same method subset, built on a loom mutex: it
//! models the *contract* arc-swap gives us (an atomic, linearizable pointer cell whose loads
//! keep the loaded value alive), not arc-swap's internal debt-list algorithm. The
//! `CONCURRENCY.md` file says what that leaves to arc-swap's own tests.
//!
//! Nothing here is visible to cbindgen: the C ABI types never mention these aliases.

pub(crate) use crossbeam_utils::CachePadded;

#[cfg(not(loom))]
mod imp {
    pub(crate) use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering, fence};
    pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard};
    pub(crate) use std::thread;

    pub(crate) use arc_swap::ArcSwap;
    pub(crate) use arc_swap::cache::Cache;
}

#[cfg(loom)]
mod imp {
    pub(crate) use loom::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering, fence};
    pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard};
    pub(crate) use loom::thread;

    /// Loom stand-in for `arc_swap::ArcSwap`: a linearizable cell holding an `Arc`.
    ///
    /// Loads return a full `Arc` clone (arc-swap's guards are a cheaper way to get the same
    /// guarantee: the loaded value stays alive while the guard lives).
    pub(crate) struct ArcSwap<T> {
        cell: Mutex<Arc<T>>,
    }

    impl<T> ArcSwap<T> {
        pub(crate) fn new(value: Arc<T>) -> Self {
            Self { cell: Mutex::new(value) }
        }

        pub(crate) fn load(&self) -> Arc<T> {
            self.load_full()
        }

        pub(crate) fn load_full(&self) -> Arc<T> {
            Arc::clone(&self.cell.lock().unwrap())
        }

        pub(crate) fn swap(&self, value: Arc<T>) -> Arc<T> {
            std::mem::replace(&mut *self.cell.lock().unwrap(), value)
        }
    }

    /// Loom stand-in for `arc_swap::cache::Cache`: revalidates on every load.
    pub(crate) struct Cache<A, T> {
        source: A,
        current: T,
    }

    impl<A: std::ops::Deref<Target = ArcSwap<T>>, T> Cache<A, Arc<T>> {
        pub(crate) fn new(source: A) -> Self {
            let current = source.load_full();
            Self { source, current }
        }

        pub(crate) fn load(&mut self) -> &Arc<T> {
            let fresh = self.source.load_full();
            if !Arc::ptr_eq(&fresh, &self.current) {
                self.current = fresh;
            }
            &self.current
        }
    }
}

pub(crate) use imp::*;
