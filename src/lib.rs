//! # leastconn
//!
//! A wait-free least-connections upstream selector, for Rust and (through its C ABI) for C,
//! C++, nginx modules and anything with an FFI.
//!
//! Requests flow one way:
//!
//! ```text
//! sources --multi--> merged list --refresh--> snapshot (arc-swap) --pick--> Reservation --release
//! ```
//!
//! * A [`Source`] says which upstreams exist: [`Static`], a closure ([`source::from_fn`]),
//!   or [`Multi`], which asks several in order and appends their results (Caddy's `multi`).
//!   [`Grace`] keeps a failing source's last good list for a while. [`dns::A`] and
//!   [`dns::Srv`] resolve DNS (Caddy's `a` and `srv` sources); [`docker::Docker`] follows
//!   container labels through the Docker (or Podman) API; [`etcd::Etcd`] watches a key
//!   prefix in etcd. [`Pool::from_caddy_json`] builds all of it from a Caddy
//!   `reverse_proxy` handler's JSON ([`config`]).
//! * [`Pool::refresh`] (or a [`Refresher`] thread) merges the sources into an immutable
//!   snapshot and publishes it with `arc_swap`. Host state lives in a registry keyed by dial
//!   address, so in-flight counts, failures and down flags survive every list change.
//! * [`Pool::select`] (or a per-thread [`Picker`]) picks a host by [`Policy`] and reserves it
//!   in the same step: the pick *is* the in-flight increment, so `max_requests` is exact.
//! * The [`Reservation`] is released exactly once, with an [`Outcome`]; the release lands on
//!   the host it was made on, even after that host left the list.
//!
//! Semantics follow Caddy's `least_conn` and `multi` (see the README for the comparison with
//! Caddy and nginx); the protocols and their progress guarantees are in `CONCURRENCY.md`.
//!
//! ```
//! use leastconn::{Multi, Outcome, Pool, Static, source};
//!
//! let sources = Multi::new()
//!     .with(Static::from_addresses(["10.0.0.1:80", "10.0.0.2:80"]))
//!     .with(source::from_fn(|_| Err("service registry unreachable".into()))); // logged, skipped
//! let pool = Pool::builder(sources).build()?;
//!
//! let first = pool.select()?;
//! let retry = pool.select_excluding(&[first.host_id()])?; // never the host just tried
//! assert_ne!(first.address(), retry.address());
//! first.release(Outcome::Failure); // counts towards passive health
//! retry.release(Outcome::Success);
//! # Ok::<(), leastconn::Error>(())
//! ```

#![warn(missing_docs)]

/// A crash point (docs/design-zone.md 4.5; `zone::crash`): nothing unless the crate is built
/// with the feature `crash-points` or under loom. One statement per point.
macro_rules! crash_point {
    ($point:ident) => {
        #[cfg(any(feature = "crash-points", loom))]
        $crate::zone::crash::hit($crate::zone::crash::point::$point);
    };
}

mod claim;
mod clock;
#[cfg(not(loom))]
pub mod config;
mod error;
#[cfg(not(loom))]
mod ffi;
// Used by the zone and the loom models only.
#[cfg(any(target_os = "linux", loom))]
mod hash;
mod host;
mod policy;
mod pool;
mod refresher;
mod registry;
mod reservation;
mod snapshot;
pub mod source;
mod sync;
mod upstream;
// Zones are Linux-only (memfd, /proc); under loom their memory is a slice of loom atomics
// and the operating system backings are left out. Elsewhere `zone_off` names the zone types
// the pools use, uninhabited: the library builds without zones.
#[cfg(any(target_os = "linux", loom))]
mod zone;
#[cfg(not(any(target_os = "linux", loom)))]
#[path = "zone_off.rs"]
mod zone;

#[cfg(loom)]
#[doc(hidden)]
pub use claim::{Claim, claim, release_claimed, seal};
pub use clock::{Clock, ManualClock};
pub use error::{Error, ErrorKind, SourceError};
#[cfg(loom)]
#[doc(hidden)]
pub use host::HostCensus;
pub use host::{HostId, MAX_REQUESTS_LIMIT};
pub use policy::{MAX_FAILED_RESERVATIONS, Policy};
pub use pool::{Builder, HostStats, MAX_FAILS_LIMIT, PassiveHealth, Picker, Pool, RefreshReport, warm_up_thread};
pub use refresher::Refresher;
pub use reservation::{Outcome, Reservation};
#[cfg(not(loom))]
pub use source::dns;
#[cfg(not(loom))]
pub use source::docker;
#[cfg(not(loom))]
pub use source::etcd;
pub use source::{Grace, Multi, Source, Static};
pub use upstream::{MAX_ADDRESS_LEN, MAX_TIER, MAX_WEIGHT, Upstream, validate_address};
/// Test introspection of a zone (not a stable API).
#[cfg(all(target_os = "linux", not(loom)))]
#[doc(hidden)]
pub use zone::ZoneCensus;
/// Crash points of the zone protocols, for the crash tests (feature `crash-points`, and loom;
/// not a stable API).
#[cfg(any(all(target_os = "linux", feature = "crash-points"), loom))]
#[doc(hidden)]
pub use zone::crash as crash_points;
#[cfg(loom)]
#[doc(hidden)]
pub use zone::{ModelHost, SlotView, SweepReport, Zone, ZoneCapacity, ZoneCensus};
#[cfg(all(target_os = "linux", not(loom)))]
pub use zone::{SweepReport, Zone, ZoneCapacity, ZoneHost, ZoneInit, ZoneProcess, ZoneStats};

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
