//! The reservation a pick returns, and its release.

use std::ffi::CStr;
use std::ptr::NonNull;

use crate::host::{Host, HostBox, HostId};
use crate::snapshot::Entry;

/// How the request sent to a reserved host ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Outcome {
    /// The request completed (whatever the HTTP status: passive health counts transport and
    /// upstream failures as the integrator defines them).
    #[default]
    Success = 0,
    /// The request failed; counts towards the host's passive-failure window.
    Failure = 1,
}

/// One in-flight request to one host: the pick *is* the reservation.
///
/// Created by a pick, which has already counted the request in the host's in-flight counter.
/// Ends with [`Reservation::release`] or, reporting success, when dropped. The release always
/// lands on the host this reservation was made on, even after that host left the list or the
/// pool was dropped; it is one atomic RMW (plus the failure window update on failure).
///
/// A reservation does not borrow the pool; it may be sent to and released on any thread.
#[must_use = "dropping a reservation at once releases it as a success"]
pub struct Reservation {
    host: NonNull<HostBox>,
    tag: usize,
    index: u32,
}

// SAFETY: the reservation's in-flight count keeps the host alive (see `host.rs`), and the
// host is used only through atomics and immutable fields.
unsafe impl Send for Reservation {}
// SAFETY: `&Reservation` only reads immutable host fields.
unsafe impl Sync for Reservation {}

impl Reservation {
    /// Wraps the reservation a successful `try_reserve` on `entry` (tagged `tag`) just made.
    pub(crate) fn new(entry: &Entry, tag: usize) -> Self {
        Self { host: entry.host_ptr(), tag, index: entry.index }
    }

    fn host(&self) -> &Host {
        // SAFETY: our unreleased reservation keeps the host allocated.
        unsafe { self.host.as_ref() }
    }

    /// The host's dial address.
    pub fn address(&self) -> &str {
        self.host().addr()
    }

    /// The host's dial address as a C string (valid as long as this reservation).
    pub fn address_cstr(&self) -> &CStr {
        self.host().addr_cstr()
    }

    /// The tag of the list entry that was picked.
    pub fn tag(&self) -> usize {
        self.tag
    }

    /// Position of the picked entry in the merged list of the snapshot it was picked from.
    pub fn index(&self) -> usize {
        self.index as usize
    }

    /// The host's identity, for excluding it from a retry of the same request.
    pub fn host_id(&self) -> HostId {
        self.host().id
    }

    /// Gives up this reservation without releasing it and returns its host pointer, which
    /// now carries the unreleased reservation (the C ABI keeps it in a caller-owned struct;
    /// the loom model of the claim, `tests/loom_claim.rs`, in a stand-in).
    pub(crate) fn into_raw(self) -> NonNull<HostBox> {
        let host = self.host;
        std::mem::forget(self);
        host
    }

    /// Takes back a reservation given up by [`Reservation::into_raw`]. The tag and index are
    /// not kept by the raw form; the result reports 0 for both.
    ///
    /// # Safety
    /// `host` came from `into_raw` and is passed here at most once.
    pub(crate) unsafe fn from_raw(host: NonNull<HostBox>) -> Self {
        Self { host, tag: 0, index: 0 }
    }

    /// Ends the request with `outcome`.
    ///
    /// Wait-free, no lock, no allocation: one RMW; a failure also updates the host's failure
    /// ring (one CAS loop, whose retries CONCURRENCY.md bounds by the number of threads).
    pub fn release(self, outcome: Outcome) {
        let released = self.release_raw(outcome);
        debug_assert!(released, "a reservation found nothing in flight on its host");
    }

    /// The zone of a zone host (for `Picker::release`), `None` for a heap host.
    pub(crate) fn zone_ptr(&self) -> Option<*const crate::zone::ZoneInner> {
        self.host().zone().map(|z| z as *const _)
    }

    /// Ends the request with `outcome` through attribution `at` (a zone host's; see
    /// `Host::release_in`). Returns as [`Reservation::release_raw`].
    #[inline]
    pub(crate) fn release_in(self, outcome: Outcome, at: Option<&crate::zone::Attribution<'_>>) -> bool {
        let host = self.host;
        std::mem::forget(self);
        // SAFETY: `self` held an unreleased reservation on `host`, and was forgotten, so this
        // is its only release.
        unsafe { Host::release_in(host, outcome == Outcome::Failure, at) }
    }

    /// Ends the request with `outcome`; false when the host had nothing in flight, so that
    /// nothing was released (possible only for a reservation rebuilt by
    /// [`Reservation::from_raw`] from a pointer that was released already: the C ABI reports
    /// it as `LC_ERR_NOT_IN_FLIGHT`). The release has been logged as an error then.
    pub(crate) fn release_raw(self, outcome: Outcome) -> bool {
        let host = self.host;
        std::mem::forget(self);
        // SAFETY: `self` held an unreleased reservation on `host`, and was forgotten, so this
        // is its only release.
        unsafe { Host::release(host, outcome == Outcome::Failure) }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        // SAFETY: dropping is this reservation's one release (`release` forgets `self`).
        let released = unsafe { Host::release(self.host, false) };
        debug_assert!(released, "a reservation found nothing in flight on its host");
    }
}

impl std::fmt::Debug for Reservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reservation")
            .field("address", &self.address())
            .field("index", &self.index)
            .field("tag", &self.tag)
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use crate::{Outcome, Pool, Reservation, Static};

    /// Two handles on one reservation, as a copied `lc_pick` memcpy'd back gives in C.
    fn twice(r: Reservation) -> (Reservation, Reservation) {
        let raw = r.into_raw();
        // SAFETY: a deliberate second handle; the test releases it only after the first.
        unsafe { (Reservation::from_raw(raw), Reservation::from_raw(raw)) }
    }

    #[test]
    fn second_release_of_one_reservation_is_refused_and_changes_no_counter() {
        let address = "192.0.2.15:80";
        let pool = Pool::builder(Static::from_addresses([address])).build().unwrap();
        for outcome in [Outcome::Success, Outcome::Failure] {
            let (first, second) = twice(pool.select().unwrap());
            assert!(first.release_raw(Outcome::Success));
            let before = pool.stats().remove(0);
            assert!(!second.release_raw(outcome), "{outcome:?}");
            assert_eq!(pool.stats().remove(0), before, "{outcome:?}");
            assert_eq!((before.in_flight, before.down, before.unhealthy, before.recent_failures), (0, false, false, 0));
        }
        assert_eq!(pool.stats()[0].picks, 2);
        pool.set_down(address, true).unwrap();
        pool.set_down(address, false).unwrap();
        pool.refresh().unwrap();
        drop(pool.select().expect("the host is still pickable"));
    }
}
