//! No shared zones: what the pools name of a zone, off Linux (zones need memfd and `/proc`).
//!
//! The pools, hosts and policies name zone types on their zone paths (a host in a zone slot,
//! a pick attributed to a thread record). Here those types are uninhabited: no zone, slot,
//! attribution or picker record can exist, so every zone path is unreachable and the
//! compiler proves it (`match x {}`), at no cost to the heap paths. The public zone API
//! (`Zone`, `Builder::zone`) does not exist here; the C ABI's `lc_zone_*` functions refuse
//! (src/ffi/zone.rs).

use std::convert::Infallible;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;

use crate::error::Error;
use crate::host::HostBox;
use crate::sync::Arc;

/// A zone: none exists.
pub(crate) enum Zone {}

impl Zone {
    pub(crate) fn inner(&self) -> &Arc<ZoneInner> {
        match *self {}
    }
}

/// A process's view of a zone: none exists.
pub(crate) enum ZoneInner {}

impl ZoneInner {
    pub(crate) fn clock_base(&self) -> u64 {
        match *self {}
    }

    pub(crate) fn slot_words(&self, _: u32) -> (&[AtomicU64], &[AtomicU64]) {
        match *self {}
    }

    pub(crate) fn fail_ring(&self) -> u32 {
        match *self {}
    }

    pub(crate) fn sweep(&self) -> Result<(), Error> {
        match *self {}
    }

    pub(crate) fn register_process(&self) -> Result<(), Error> {
        match *self {}
    }

    pub(crate) fn attach(&self, _: &str, _: &str) -> Result<SlotRef, Error> {
        match *self {}
    }

    pub(crate) fn process_in_flight(&self, _: u32) -> u64 {
        match *self {}
    }

    pub(crate) fn maintain(&self) {
        match *self {}
    }

    /// # Safety
    /// None needed: no zone exists to call it on (the signature is the Linux one's).
    pub(crate) unsafe fn drop_host(&self, _: NonNull<HostBox>) {
        match *self {}
    }
}

/// A zone slot: none exists.
#[derive(Clone, Copy)]
pub(crate) struct SlotRef {
    pub(crate) index: u32,
    #[allow(dead_code)] // never read: it is what makes the type empty
    never: Never,
}

/// [`Infallible`] with `Copy`, for [`SlotRef`].
#[derive(Clone, Copy)]
enum Never {}

/// A thread record's attribution: none exists.
pub(crate) struct Attribution<'a>(Infallible, PhantomData<&'a ()>);

impl Attribution<'_> {
    pub(crate) fn open(&self, _: u64, _: u32) {
        match self.0 {}
    }

    pub(crate) fn add(&self, _: u32, _: u64) {
        match self.0 {}
    }

    pub(crate) fn close(&self) {
        match self.0 {}
    }
}

/// The kinds of attribution window (their values do not matter: no window is ever opened).
pub(crate) mod window {
    pub(crate) const PICK: u64 = 1;
    pub(crate) const RELEASE: u64 = 2;
}

pub(crate) fn with_thread_attribution<R>(zone: &ZoneInner, _: impl FnOnce(Option<&Attribution<'_>>) -> R) -> R {
    match *zone {}
}

/// A picker's thread record: none exists.
pub(crate) struct PickerRecord(Infallible);

impl PickerRecord {
    pub(crate) fn new(zone: &Arc<ZoneInner>) -> Self {
        match **zone {}
    }

    pub(crate) fn own(&self) -> Option<Attribution<'_>> {
        match self.0 {}
    }

    pub(crate) fn with_thread<R>(&self, _: impl FnOnce(Option<&Attribution<'_>>) -> R) -> R {
        match self.0 {}
    }

    pub(crate) fn zone(&self) -> &ZoneInner {
        match self.0 {}
    }
}

/// Nothing to warm up: there is no zone thread record to claim.
pub(crate) fn warm_up_thread() {}
