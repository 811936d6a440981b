//! The pool: sources -> merge -> snapshot -> pick -> reservation, tied together.

use std::time::Duration;

use crate::clock::{Clock, duration_ns};
use crate::error::{Error, ErrorKind};
use crate::host::{Health, Host, HostId};
use crate::policy::{self, Policy, Random, ThreadRng};
use crate::registry::Registry;
use crate::reservation::Reservation;
use crate::snapshot::{Entry, Snapshot};
use crate::source::{Context, Source, fetch_checked};
use crate::sync::{Arc, ArcSwap, Cache, Mutex, MutexGuard};
use crate::upstream::Upstream;
use crate::zone::{Attribution, PickerRecord, Zone, ZoneInner, with_thread_attribution};
use crate::{Outcome, zone};

/// Largest accepted `max_fails` (the failure window keeps one timestamp per allowed failure).
pub const MAX_FAILS_LIMIT: u32 = 1024;

/// Passive health: a host with at least `max_fails` failed requests inside the last
/// `fail_duration` is unavailable until the oldest of them leaves the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PassiveHealth {
    /// Failures that make a host unavailable; 0 turns passive health off. Default 1.
    pub max_fails: u32,
    /// The sliding window. Default 10 s (nginx's `fail_timeout`).
    pub fail_duration: Duration,
}

impl Default for PassiveHealth {
    fn default() -> Self {
        Self { max_fails: 1, fail_duration: Duration::from_secs(10) }
    }
}

impl PassiveHealth {
    /// Passive health turned off: failures are not counted.
    pub const OFF: PassiveHealth = PassiveHealth { max_fails: 0, fail_duration: Duration::ZERO };
}

/// Configures and builds a [`Pool`].
pub struct Builder {
    source: Box<dyn Source>,
    policy: Policy,
    health: PassiveHealth,
    clock: Clock,
    zone: Option<(Zone, String)>,
}

impl Builder {
    /// Keeps the pool's host state in `zone`, under the name `name`: every pool on the zone
    /// with the same name, in this process or another, shares the in-flight counts, limits,
    /// failure windows and down flags of its addresses; pools with other names share nothing
    /// (docs/design-zone.md). The first zone pool of a process registers it in the zone (and
    /// again in a child forked after that). With the system clock (the default), failure times
    /// are read from `CLOCK_MONOTONIC` against the zone's clock base, so they agree across
    /// processes.
    ///
    /// `build` fails with `ZoneIncompatible` when `max_fails` is above the zone's
    /// `fail_ring`, `ZoneFull` when the process cannot register, `InvalidArgument` for a name
    /// containing NUL. Build pools in the process that uses them: a pool built before `fork`
    /// is not for use in the child.
    ///
    /// ```
    /// use leastconn::{Pool, Static, Zone, ZoneCapacity};
    /// # if cfg!(miri) { return Ok(()); } // Miri has no memfd_create
    /// let zone = Zone::anonymous(&ZoneCapacity { hosts: 64, ..ZoneCapacity::default() })?;
    /// let a = Pool::builder(Static::from_addresses(["10.0.0.1:80"])).zone(&zone, "app").build()?;
    /// let b = Pool::builder(Static::from_addresses(["10.0.0.1:80"])).zone(&zone, "app").build()?;
    /// let r = a.select()?;
    /// assert_eq!(b.stats()[0].in_flight, 1); // one host state, in the zone
    /// r.release(leastconn::Outcome::Success);
    /// # Ok::<(), leastconn::Error>(())
    /// ```
    ///
    /// Linux only, as [`Zone`].
    #[cfg(any(target_os = "linux", loom))]
    pub fn zone(mut self, zone: &Zone, name: &str) -> Self {
        self.zone = Some((zone.clone(), name.to_owned()));
        self
    }

    /// Sets the selection policy (default [`Policy::LeastConn`]).
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets passive health (default: 1 failure in 10 s).
    pub fn passive_health(mut self, health: PassiveHealth) -> Self {
        self.health = health;
        self
    }

    /// Sets the clock used for failure windows (default: the system's monotonic clock).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Validates the configuration, builds the pool and refreshes it once. A failing first
    /// refresh is logged and leaves the pool empty (the next refresh may succeed).
    pub fn build(self) -> Result<Pool, Error> {
        let h = self.health;
        if h.max_fails > MAX_FAILS_LIMIT {
            return Err(Error::new(
                ErrorKind::InvalidLimit,
                format!("max_fails {} is above {MAX_FAILS_LIMIT}", h.max_fails),
            ));
        }
        if h.max_fails > 0 && h.fail_duration.is_zero() {
            // Caddy 2.6.2 turned this into "every host unavailable"; we refuse it instead.
            return Err(Error::new(ErrorKind::InvalidLimit, "passive health needs a fail_duration above 0"));
        }
        let zone = match self.zone {
            None => None,
            Some((zone, name)) => {
                let inner = Arc::clone(zone.inner());
                if h.max_fails > inner.fail_ring() {
                    return Err(Error::new(
                        ErrorKind::ZoneIncompatible,
                        format!("max_fails {} is above the zone's fail_ring {}", h.max_fails, inner.fail_ring()),
                    ));
                }
                if name.contains('\0') {
                    return Err(Error::new(
                        ErrorKind::InvalidArgument,
                        format!("zone pool name {name:?} contains NUL"),
                    ));
                }
                inner.register_process()?;
                Some((inner, name))
            }
        };
        self.clock.start();
        let health = std::sync::Arc::new(Health {
            max_fails: h.max_fails,
            fail_ns: duration_ns(h.fail_duration),
            clock: self.clock,
            zone_clock: zone.as_ref().map(|(z, _)| z.clock_base()),
            #[cfg(loom)]
            census: Default::default(),
        });
        let (registry, zone) = match zone {
            None => (Registry::default(), None),
            Some((z, name)) => (Registry::in_zone(Arc::clone(&z), name), Some(z)),
        };
        let pool = Pool {
            shared: Arc::new(Shared {
                current: ArcSwap::new(Arc::new(Snapshot::empty())),
                registry: Mutex::new(registry),
                zone,
                refresh_lock: Mutex::new(RefreshState::default()),
                source: self.source,
                policy: self.policy,
                health,
            }),
        };
        // A failure has been logged by the refresh itself (once: issue 10 found it twice).
        let _ = pool.refresh();
        Ok(pool)
    }
}

pub(crate) struct Shared {
    /// The published snapshot: loaded by every pick, replaced by every refresh.
    current: ArcSwap<Snapshot>,
    /// Host states by address; taken by refresh, `set_down` and stats, never by a pick.
    registry: Mutex<Registry>,
    /// Serialises refreshes (so results are published in the order they were fetched) and
    /// holds what only refreshes touch.
    refresh_lock: Mutex<RefreshState>,
    source: Box<dyn Source>,
    policy: Policy,
    health: std::sync::Arc<Health>,
    /// The zone of a zone pool (its registry holds it too).
    zone: Option<Arc<ZoneInner>>,
}

#[derive(Default)]
struct RefreshState {
    generation: u64,
    /// Replaced snapshots that a pick may still use. The pool keeps a reference to each until
    /// it is the only one left, so the last reference to a snapshot is never dropped by a
    /// pick (a `Picker` moving to a new list, a guard ending): freeing a big snapshot is a
    /// refresh's work, never a pick's.
    retired: Vec<Arc<Snapshot>>,
}

/// What a refresh did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefreshReport {
    /// Entries in the new list.
    pub upstreams: usize,
    /// Host states alive after the refresh (listed, or unlisted with requests in flight).
    pub hosts: usize,
    /// Host states reclaimed by this refresh.
    pub reclaimed: usize,
    /// The new snapshot's generation (1 for the first refresh).
    pub generation: u64,
}

/// A point-in-time view of one host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostStats {
    /// Dial address.
    pub address: String,
    /// Identity (for exclusions).
    pub id: HostId,
    /// Requests in flight.
    pub in_flight: u32,
    /// Reservations ever made (released or in flight).
    pub picks: u64,
    /// How many of the host's last `max_fails` failures lie inside the passive-health window
    /// ending now: the failures inside the window, capped at `max_fails` (the host keeps only
    /// the last `max_fails` timestamps, all that availability needs; 0 when passive health is
    /// off).
    pub recent_failures: u32,
    /// Marked down by the integrator.
    pub down: bool,
    /// Inside its passive-failure window.
    pub unhealthy: bool,
    /// At its `max_requests` limit (per its first entry in the list).
    pub full: bool,
    /// `max_requests` of its first entry (0 = unlimited).
    pub max_requests: u32,
    /// In the current list (false: removed, kept until its last request ends).
    pub listed: bool,
}

/// A least-connections pool of upstreams. Cheap to clone (all clones share one pool); all
/// methods may be called concurrently from any thread.
///
/// ```
/// use leastconn::{Outcome, Pool, Static};
/// let pool = Pool::builder(Static::from_addresses(["10.0.0.1:80", "10.0.0.2:80"])).build()?;
/// let a = pool.select()?;          // reserves: a's host now has 1 in flight
/// let b = pool.select()?;          // the other host: it has fewer in flight
/// assert_ne!(a.address(), b.address());
/// a.release(Outcome::Success);
/// drop(b);                         // dropping releases as a success
/// # Ok::<(), leastconn::Error>(())
/// ```
#[derive(Clone)]
pub struct Pool {
    shared: Arc<Shared>,
}

impl Pool {
    /// Starts configuring a pool fed by `source`.
    pub fn builder(source: impl Source + 'static) -> Builder {
        Builder {
            source: Box::new(source),
            policy: Policy::default(),
            health: PassiveHealth::default(),
            clock: Clock::System,
            zone: None,
        }
    }

    /// The policy picks use.
    pub fn policy(&self) -> Policy {
        self.shared.policy
    }

    /// Picks a host and reserves it for one request.
    ///
    /// Wait-free: one snapshot load, one scan, one RMW on the chosen host's counter (see
    /// CONCURRENCY.md for the bound); no allocation once the thread is warmed up
    /// ([`warm_up_thread`]). Fails with [`ErrorKind::NoUpstream`] when no host is available.
    pub fn select(&self) -> Result<Reservation, Error> {
        self.select_excluding(&[])
    }

    /// As [`Pool::select`], never returning a host in `exclude` (the hosts already tried for
    /// this request, from [`Reservation::host_id`]).
    pub fn select_excluding(&self, exclude: &[HostId]) -> Result<Reservation, Error> {
        let snap = self.shared.current.load();
        match &self.shared.zone {
            None => select_in(&snap, self.shared.policy, exclude, &mut ThreadRng, None),
            Some(zone) => with_thread_attribution(zone, |at| {
                let at = at.ok_or_else(unregistered)?;
                select_in(&snap, self.shared.policy, exclude, &mut ThreadRng, Some(at))
            }),
        }
    }

    /// A per-thread selector: like [`Pool::select`] but it keeps the current snapshot cached,
    /// so a steady-state pick costs one pointer load instead of arc-swap's guard protocol,
    /// and it draws random numbers from its own generator (seeded, for reproducible tests).
    pub fn picker(&self) -> Picker {
        self.picker_seeded(fastrand::u64(..))
    }

    /// A [`Picker`] whose random draws come from a generator seeded with `seed`.
    pub fn picker_seeded(&self, seed: u64) -> Picker {
        warm_up_thread();
        Picker {
            cache: Cache::new(CurrentSnapshot(Arc::clone(&self.shared))),
            rng: fastrand::Rng::with_seed(seed),
            policy: self.shared.policy,
            record: self.shared.zone.as_ref().map(PickerRecord::new),
        }
    }

    /// Asks the source for the current list and publishes it.
    ///
    /// Hosts whose address was already known keep their state (in-flight counts, failures,
    /// down flag). If the source fails, the current list stays and the error is returned.
    ///
    /// Called from a source (or the log) during a refresh of the same pool, it fails with
    /// [`ErrorKind::InvalidArgument`] instead of deadlocking on itself. Called during a
    /// refresh of *another* pool, it never waits for this pool's refresh lock: if a refresh
    /// of this pool runs on another thread, it fails with [`ErrorKind::InvalidArgument`] at
    /// once, since that refresh may be waiting for ours (two pools whose sources refresh each
    /// other from two threads would otherwise deadlock).
    pub fn refresh(&self) -> Result<RefreshReport, Error> {
        self.shared.refresh(&Context::new())
    }

    /// The background refresher's refresh: never waits for another refresh in progress
    /// (`None` then: that one publishes fresh data anyway). Not waiting is what lets a thread
    /// that holds the refresh lock (a source or log callback of a manual refresh) stop the
    /// refresher and join it without a deadlock.
    pub(crate) fn refresh_unless_busy(&self, ctx: &Context<'_>) -> Option<Result<RefreshReport, Error>> {
        let state = match self.shared.refresh_lock.try_lock() {
            Ok(state) => state,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        Some(self.shared.refresh_locked(state, ctx))
    }

    /// Marks the host with this address down (`true`) or up. A down host gets no new picks;
    /// its in-flight requests are unaffected. The flag is part of the host's state, so it
    /// survives list changes.
    pub fn set_down(&self, address: &str, down: bool) -> Result<(), Error> {
        let reg = self.shared.registry();
        let host = reg.get(address).ok_or_else(|| not_found(address))?;
        host.set_down(down);
        Ok(())
    }

    /// Statistics for every host of the current list, in list order (once per address).
    pub fn stats(&self) -> Vec<HostStats> {
        let snap = self.shared.current.load_full();
        let mut seen = std::collections::HashSet::new();
        snap.in_list_order()
            .into_iter()
            .filter(|(e, _, _)| seen.insert(e.host().id))
            .map(|(e, _, _)| stats_of(e.host(), Some(e)))
            .collect()
    }

    /// Statistics for one host, listed or still draining.
    pub fn host_stats(&self, address: &str) -> Result<HostStats, Error> {
        let snap = self.shared.current.load_full();
        let reg = self.shared.registry();
        if let Some((e, _, _)) = snap.in_list_order().into_iter().find(|(e, _, _)| e.host().addr() == address) {
            return Ok(stats_of(e.host(), Some(e)));
        }
        let host = reg.get(address).ok_or_else(|| not_found(address))?;
        Ok(stats_of(host, None))
    }

    /// Entries in the current list.
    pub fn len(&self) -> usize {
        self.shared.current.load().len()
    }

    /// Is the current list empty?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Host states alive (listed, or removed with requests still in flight).
    pub fn live_hosts(&self) -> usize {
        self.shared.registry().len()
    }

    /// The current list as upstream specs, in list order (for inspection and tests).
    pub fn upstreams(&self) -> Vec<Upstream> {
        let snap = self.shared.current.load_full();
        snap.in_list_order()
            .into_iter()
            .map(|(e, tag, tier)| {
                Upstream::new(e.host().addr()).weight(e.weight).max_requests(e.max_requests()).tier(tier).tag(tag)
            })
            .collect()
    }

    /// The generation of the current list (increments with every published refresh).
    pub fn generation(&self) -> u64 {
        self.shared.current.load().generation
    }

    /// Loom builds only: the count of this pool's host states allocated and freed.
    #[cfg(loom)]
    #[doc(hidden)]
    pub fn host_census(&self) -> std::sync::Arc<crate::host::HostCensus> {
        std::sync::Arc::clone(&self.shared.health.census)
    }
}

/// One host's statistics; `entry` is its first entry in the current list (None: draining).
fn stats_of(h: &Host, entry: Option<&Entry>) -> HostStats {
    let in_flight = h.in_flight();
    HostStats {
        address: h.addr().to_owned(),
        id: h.id,
        in_flight,
        picks: h.fold_picks(),
        recent_failures: h.recent_failures(),
        down: h.is_down(),
        unhealthy: h.is_unhealthy(),
        full: entry.is_some_and(|e| in_flight >= e.limit),
        max_requests: entry.map_or(0, Entry::max_requests),
        listed: entry.is_some(),
    }
}

fn not_found(address: &str) -> Error {
    Error::new(ErrorKind::NotFound, format!("no host with address {address:?}"))
}

/// What a zone pool's pick fails with when the thread has no attribution (the process could
/// not register in the zone, so it has no spare record either).
#[cold]
fn unregistered() -> Error {
    Error::new(ErrorKind::ZoneFull, "this process has no record in the zone (registration failed)")
}

/// The one pick path of heap and zone pools: `at` is a zone pool's attribution (design 3.4),
/// `None` for a heap pool.
#[inline(always)]
fn select_in<R: Random>(
    snap: &Snapshot,
    policy: Policy,
    exclude: &[HostId],
    rng: &mut R,
    at: Option<&Attribution<'_>>,
) -> Result<Reservation, Error> {
    match policy::pick(snap, policy, exclude, rng, at) {
        Some(i) => Ok(Reservation::new(&snap.entries[i], snap.tags[i])),
        None if snap.len() == 0 => Err(Error::new(ErrorKind::NoUpstream, "the upstream list is empty")),
        None => Err(Error::new(ErrorKind::NoUpstream, "every upstream is down, unhealthy, full or excluded")),
    }
}

impl Shared {
    fn registry(&self) -> MutexGuard<'_, Registry> {
        // A panic never happens under this lock (sources run outside it), but recover anyway.
        self.registry.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn refresh(&self, ctx: &Context<'_>) -> Result<RefreshReport, Error> {
        // A refresh nested in a refresh (a source or log callback) holds that refresh's lock:
        // waiting for ours would deadlock on itself if it is the same pool, and could close a
        // cycle if it is another (two pools whose sources refresh each other from two threads).
        // So it never waits.
        #[cfg(not(loom))]
        if reentry::inside_a_refresh() {
            return match self.refresh_lock.try_lock() {
                Ok(state) => self.refresh_locked(state, ctx),
                Err(std::sync::TryLockError::Poisoned(p)) => self.refresh_locked(p.into_inner(), ctx),
                Err(std::sync::TryLockError::WouldBlock) if reentry::held_by_this_thread(self) => Err(Error::new(
                    ErrorKind::InvalidArgument,
                    "refresh called from a source or log callback of a refresh of the same pool",
                )),
                Err(std::sync::TryLockError::WouldBlock) => Err(Error::new(
                    ErrorKind::InvalidArgument,
                    "refresh called from a callback of another pool's refresh while this pool's refresh runs on \
                     another thread: refused, since waiting could deadlock",
                )),
            };
        }
        let state = self.refresh_lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.refresh_locked(state, ctx)
    }

    fn refresh_locked(
        &self,
        mut state: MutexGuard<'_, RefreshState>,
        ctx: &Context<'_>,
    ) -> Result<RefreshReport, Error> {
        #[cfg(not(loom))]
        let owner = reentry::Owner::enter(self);
        // A zone pool sweeps dead processes before fetching (design 4.3); an error (no record
        // free to register) leaves it to the next refresh.
        #[cfg(not(loom))]
        if let Some(zone) = &self.zone {
            if let Err(e) = zone.sweep() {
                log::warn!("zone sweep before refresh failed: {}", e.message());
            }
        }
        let mut list = Vec::new();
        let fetched = fetch_checked(&*self.source, ctx, &mut list);
        let mut reg = self.registry();
        let published = match fetched {
            Ok(()) => {
                let upstreams = list.len();
                // A zone pool's attach may fail (ZoneFull): then nothing is published, and the
                // sweep below detaches what this list attached (no snapshot holds it).
                let pairs: Result<Vec<_>, Error> = list
                    .into_iter()
                    .map(|u| {
                        let host = reg.get_or_create(&u.address, &self.health)?;
                        Ok((u, host))
                    })
                    .collect();
                pairs.map(|pairs| {
                    state.generation += 1;
                    let snapshot = Arc::new(Snapshot::build(pairs, state.generation));
                    let old = self.current.swap(snapshot);
                    state.retired.push(old);
                    upstreams
                })
            }
            Err(e) => Err(e),
        };
        // Free the replaced snapshots nobody uses any more (arc-swap's swap has paid the debts
        // of every pick still on the one just replaced, so their references are counted), then
        // sweep. A failed refresh does this too, so a source that keeps failing does not keep
        // drained hosts alive or leave the 31-bit completed counters unfolded.
        state.retired.retain(|s| Arc::strong_count(s) > 1);
        let reclaimed = reg.sweep();
        let hosts = reg.len();
        let generation = state.generation;
        drop(reg);
        drop(state);
        #[cfg(not(loom))]
        drop(owner);
        match published {
            Ok(upstreams) => Ok(RefreshReport { upstreams, hosts, reclaimed, generation }),
            Err(e) => {
                // Logged with no lock held: the log callback may call into the pool.
                if e.kind() != ErrorKind::Cancelled {
                    log::error!("refresh failed, keeping the current list: {}", e.message());
                }
                Err(e)
            }
        }
    }
}

/// Which thread holds a pool's refresh lock, so that a source or log callback that calls
/// back into a refresh of the same pool gets an error instead of a self-deadlock, and one
/// that refreshes another pool never waits for that pool's lock (no lock-order cycle). Not under
/// loom, whose threads share one OS thread (and its thread-locals).
#[cfg(not(loom))]
mod reentry {
    use std::cell::RefCell;

    use super::Shared;

    thread_local! {
        /// The pools whose refresh lock this thread holds (a refresh of another pool nested
        /// in one of them takes that pool's lock only if it is free).
        static HELD: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
    }

    fn key(shared: &Shared) -> usize {
        shared as *const Shared as usize
    }

    pub(super) fn held_by_this_thread(shared: &Shared) -> bool {
        HELD.with(|h| h.borrow().contains(&key(shared)))
    }

    /// Does this thread hold any pool's refresh lock (is it inside a refresh)?
    pub(super) fn inside_a_refresh() -> bool {
        HELD.with(|h| !h.borrow().is_empty())
    }

    /// Marks the refresh lock of `shared` as held by this thread until dropped.
    pub(super) struct Owner(usize);

    impl Owner {
        pub(super) fn enter(shared: &Shared) -> Self {
            HELD.with(|h| h.borrow_mut().push(key(shared)));
            Owner(key(shared))
        }
    }

    impl Drop for Owner {
        fn drop(&mut self) {
            HELD.with(|h| {
                let mut h = h.borrow_mut();
                if let Some(i) = h.iter().rposition(|&k| k == self.0) {
                    h.remove(i);
                }
            });
        }
    }
}

/// Lets arc-swap's `Cache` reach the pool's `ArcSwap` through the shared state.
struct CurrentSnapshot(Arc<Shared>);

impl std::ops::Deref for CurrentSnapshot {
    type Target = ArcSwap<Snapshot>;
    fn deref(&self) -> &ArcSwap<Snapshot> {
        &self.0.current
    }
}

/// Makes the calling thread's first pick allocation-free: registers the thread with arc-swap
/// (its per-thread debt node, allocated or reused once per thread, and the thread-local's
/// destructor) and seeds the thread's random generator (fastrand, which hashes
/// `thread::current()`). A thread's first pick does this itself otherwise, and allocates.
///
/// Cheap and idempotent; [`Pool::picker`] calls it on the thread that makes the picker. Call it
/// once on each thread that picks with [`Pool::select`], or uses a [`Picker`] made on another
/// thread, before the picks that must not allocate.
///
/// ```
/// leastconn::warm_up_thread();
/// ```
pub fn warm_up_thread() {
    #[cfg(not(loom))]
    {
        static ANY: arc_swap::ArcSwapOption<()> = arc_swap::ArcSwapOption::const_empty();
        // The debt node is per thread, shared by every `ArcSwap`: loading any one registers it.
        drop(ANY.load());
        fastrand::u64(..);
    }
    zone::warm_up_thread();
}

/// A per-thread selector with a cached snapshot and its own random generator.
///
/// `Send` but not `Sync`: give each thread its own (e.g. one per nginx worker, or one per
/// thread in a thread-local). Holding a picker keeps the pool alive. While it is idle it also
/// keeps the snapshot it last used, and with it the state of hosts removed since, until its
/// next pick. Making a picker warms up the calling thread ([`warm_up_thread`]).
pub struct Picker {
    cache: Cache<CurrentSnapshot, Arc<Snapshot>>,
    rng: fastrand::Rng,
    policy: Policy,
    /// A zone pool's picker: its own thread record (design 3.4).
    record: Option<PickerRecord>,
}

impl Picker {
    /// Ends a reservation, attributing it through this picker's own thread record when it is
    /// a zone pool's (no thread-local lookup); otherwise as [`Reservation::release`]. The
    /// reservation may come from any pool.
    #[inline]
    pub fn release(&mut self, r: Reservation, outcome: Outcome) {
        let released = self.release_raw(r, outcome);
        debug_assert!(released, "a reservation found nothing in flight on its host");
    }

    /// As [`Picker::release`]; false when the host had nothing in flight, so that nothing was
    /// released (see `Reservation::release_raw`: the C ABI reports it as
    /// `LC_ERR_NOT_IN_FLIGHT`).
    #[inline]
    pub(crate) fn release_raw(&mut self, r: Reservation, outcome: Outcome) -> bool {
        match &self.record {
            Some(rec) if r.zone_ptr() == Some(rec.zone() as *const ZoneInner) => match rec.own() {
                Some(at) => r.release_in(outcome, Some(&at)),
                None => rec.with_thread(|at| r.release_in(outcome, at)),
            },
            _ => r.release_raw(outcome),
        }
    }

    /// Picks a host and reserves it (see [`Pool::select`]).
    #[inline]
    pub fn select(&mut self) -> Result<Reservation, Error> {
        self.select_excluding(&[])
    }

    /// Picks a host not in `exclude` and reserves it (see [`Pool::select_excluding`]).
    #[inline]
    pub fn select_excluding(&mut self, exclude: &[HostId]) -> Result<Reservation, Error> {
        let snap = self.cache.load();
        let at = match &self.record {
            None => None,
            Some(rec) => match rec.own() {
                Some(at) => Some(at),
                None => {
                    let rng = &mut self.rng;
                    return rec.with_thread(|at| {
                        select_in(snap, self.policy, exclude, rng, Some(at.ok_or_else(unregistered)?))
                    });
                }
            },
        };
        select_in(snap, self.policy, exclude, &mut self.rng, at.as_ref())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::mpsc;

    use super::*;
    use crate::source::from_fn;

    /// The refresher's path must never wait for a refresh in progress: a thread inside that
    /// refresh (a source, a log callback) may be about to join the refresher.
    #[test]
    fn the_refreshers_refresh_skips_instead_of_waiting_for_a_refresh_in_progress() {
        let (entered_tx, entered_rx) = mpsc::channel::<()>();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let gate = std::sync::Arc::new(std::sync::Mutex::new(None));
        let g = std::sync::Arc::clone(&gate);
        let pool = Pool::builder(from_fn(move |_| {
            let armed: Option<(mpsc::Sender<()>, mpsc::Receiver<()>)> = g.lock().unwrap().take();
            if let Some((entered, go)) = armed {
                entered.send(()).unwrap();
                go.recv().unwrap();
            }
            Ok(vec![Upstream::new("a:1")])
        }))
        .build()
        .unwrap();
        *gate.lock().unwrap() = Some((entered_tx, go_rx)); // armed after the build's refresh
        let busy = {
            let pool = pool.clone();
            std::thread::spawn(move || pool.refresh())
        };
        entered_rx.recv().unwrap(); // the other refresh holds the lock and sits in its source
        assert!(pool.refresh_unless_busy(&Context::new()).is_none());
        go_tx.send(()).unwrap();
        assert!(busy.join().unwrap().is_ok());
        assert!(pool.refresh_unless_busy(&Context::new()).is_some_and(|r| r.is_ok()));
    }
}
