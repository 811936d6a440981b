//! What the benches measure leastconn against, and the workloads they share.
//!
//! * [`Floor`]: the physical floor of this design: one atomic pointer load, a scan of N
//!   relaxed loads over cache-padded counters, one `fetch_add` and one `fetch_sub`. No
//!   policy, no tie breaking, no reclamation: nothing that picks and reserves can be cheaper.
//! * [`MutexScan`]: `Mutex<Vec<usize>>`, scanned and incremented under the lock, decremented
//!   under it again on release.
//! * [`RwLockScan`]: `RwLock<Vec<Arc<Host>>>` with atomic counters; the pick clones the chosen
//!   host's `Arc` so that its release is safe after a list change.
//! * [`CaddyLike`]: Caddy's `least_conn` algorithm: reservoir sampling with one RNG call per
//!   tied host, the chosen host kept alive by an `Arc` clone (Go's GC does this for Caddy),
//!   and the increment as a separate step after the selection.
//!
//! Every subject offers the same two things: a per-thread handle doing one pick plus its
//! release, and a `refresh` that republishes the same list (what a writer does every 100 us
//! in the contention bench).

#![allow(dead_code)] // each bench binary uses a different subset

pub mod threads;

use std::hint::black_box;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use criterion::Criterion;
use crossbeam_utils::CachePadded;
#[cfg(target_os = "linux")]
use leastconn::Zone;
use leastconn::{Builder, Outcome, Policy, Pool, Upstream};

/// The criterion configuration every bench uses: `samples` samples of 1.5 s after 0.3 s of
/// warm-up, no plots; command-line arguments (`--sample-size`, a filter...) win.
pub fn config(samples: usize) -> Criterion {
    Criterion::default()
        .without_plots()
        .sample_size(samples)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1500))
        .configure_from_args()
}

/// Host sizes the issue asks for.
pub const SIZES: [usize; 5] = [1, 8, 64, 512, 4096];

/// The in-flight counts the hosts start from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Load {
    /// Every host idle: every host ties, the worst case for tie breaking.
    Idle,
    /// A spread of 0..=4 in flight (host `i` has `(7 i + 3) mod 5`): about a fifth tie at 0.
    Spread,
}

impl Load {
    pub fn name(self) -> &'static str {
        match self {
            Load::Idle => "idle",
            Load::Spread => "spread",
        }
    }

    pub fn in_flight(self, i: usize) -> usize {
        match self {
            Load::Idle => 0,
            Load::Spread => (7 * i + 3) % 5,
        }
    }
}

pub fn address(i: usize) -> String {
    format!("10.{}.{}.{}:8080", i >> 16, (i >> 8) & 0xff, i & 0xff)
}

pub fn upstreams(n: usize) -> Vec<Upstream> {
    (0..n).map(|i| Upstream::new(address(i))).collect()
}

/// One pick plus its release, on the calling thread.
pub trait Op {
    fn op(&mut self);
}

/// A shared structure under test: hands out per-thread handles and can be refreshed.
pub trait Subject: Send + Sync {
    type Handle<'a>: Op + Send
    where
        Self: 'a;
    fn handle(&self, seed: u64) -> Self::Handle<'_>;
    fn refresh(&self);
}

// ---------------------------------------------------------------------------------------
// leastconn

/// A leastconn pool with `n` hosts and `load` in flight (the reservations are held here).
pub struct Leastconn {
    pub pool: Pool,
    _held: Vec<leastconn::Reservation>,
}

impl Leastconn {
    pub fn new(n: usize, policy: Policy, load: Load) -> Self {
        Self::with(n, policy, load, |builder| builder)
    }

    /// As [`Leastconn::new`], the host state in `zone` under pool name `name` when given
    /// (Linux only, as zones are).
    #[cfg(target_os = "linux")]
    pub fn new_in(n: usize, policy: Policy, load: Load, zone: Option<(&Zone, &str)>) -> Self {
        Self::with(n, policy, load, |builder| match zone {
            Some((zone, name)) => builder.zone(zone, name),
            None => builder,
        })
    }

    fn with(n: usize, policy: Policy, load: Load, configure: impl FnOnce(Builder) -> Builder) -> Self {
        let list = Arc::new(Mutex::new(upstreams(n)));
        let staged = Arc::clone(&list);
        let source = leastconn::source::from_fn(move |_| Ok(staged.lock().unwrap().clone()));
        let pool = configure(Pool::builder(source).policy(policy)).build().expect("pool");
        let held = hold(&pool, &list, load);
        Self { pool, _held: held }
    }
}

/// Brings host `i` of `pool` to `load.in_flight(i)` requests in flight, whatever the policy:
/// publishes a staging list in which each host's `max_requests` is its target, picks until
/// every host is full, then publishes the real list again (host state survives the change).
fn hold(pool: &Pool, list: &Mutex<Vec<Upstream>>, load: Load) -> Vec<leastconn::Reservation> {
    let n = list.lock().unwrap().len();
    let want: usize = (0..n).map(|i| load.in_flight(i)).sum();
    if want == 0 {
        return Vec::new();
    }
    let real = std::mem::replace(
        &mut *list.lock().unwrap(),
        (0..n)
            .filter(|&i| load.in_flight(i) > 0)
            .map(|i| Upstream::new(address(i)).max_requests(load.in_flight(i) as u32))
            .collect(),
    );
    pool.refresh().expect("staging refresh");
    let held: Vec<_> = (0..want).map(|_| pool.select().expect("staging pick")).collect();
    *list.lock().unwrap() = real;
    pool.refresh().expect("refresh");
    for (i, s) in pool.stats().iter().enumerate() {
        assert_eq!(s.in_flight as usize, load.in_flight(i), "{}", s.address);
    }
    held
}

/// `Picker::select` + `Picker::release` (a zone pool's picker releases through its own
/// thread record; on a heap pool it is `Reservation::release` behind one branch).
pub struct PickerOp(pub leastconn::Picker);

impl Op for PickerOp {
    #[inline]
    fn op(&mut self) {
        let r = self.0.select().expect("pick");
        self.0.release(black_box(r), Outcome::Success);
    }
}

pub struct PoolOp<'a>(pub &'a Pool);

impl Op for PoolOp<'_> {
    #[inline]
    fn op(&mut self) {
        let r = self.0.select().expect("pick");
        black_box(r).release(Outcome::Success);
    }
}

impl Subject for Leastconn {
    type Handle<'a> = PickerOp;

    fn handle(&self, seed: u64) -> Self::Handle<'_> {
        PickerOp(self.pool.picker_seeded(seed))
    }
    fn refresh(&self) {
        self.pool.refresh().expect("refresh");
    }
}

/// `Pool::select` (arc-swap guard per pick) instead of a `Picker`.
pub struct LeastconnPoolSelect(pub Leastconn);

impl Subject for LeastconnPoolSelect {
    type Handle<'a> = PoolOp<'a>;

    fn handle(&self, _seed: u64) -> Self::Handle<'_> {
        PoolOp(&self.0.pool)
    }
    fn refresh(&self) {
        self.0.refresh();
    }
}

// ---------------------------------------------------------------------------------------
// The floor

pub struct Floor {
    current: AtomicPtr<CachePadded<AtomicU64>>,
    list: Box<[CachePadded<AtomicU64>]>,
}

impl Floor {
    pub fn new(n: usize, load: Load) -> Self {
        let list: Box<[CachePadded<AtomicU64>]> =
            (0..n).map(|i| CachePadded::new(AtomicU64::new(load.in_flight(i) as u64))).collect();
        Self { current: AtomicPtr::new(list.as_ptr().cast_mut()), list }
    }

    #[inline]
    pub fn op(&self) {
        // Acquire: as a snapshot load would be.
        let ptr = self.current.load(Ordering::Acquire);
        // SAFETY: `ptr` points to `self.list`, alive as long as `self`.
        let list = unsafe { std::slice::from_raw_parts(ptr, self.list.len()) };
        let (mut best, mut min) = (0, u64::MAX);
        for (i, c) in list.iter().enumerate() {
            let v = c.load(Ordering::Relaxed);
            if v < min {
                (best, min) = (i, v);
            }
        }
        list[best].fetch_add(1, Ordering::Relaxed);
        black_box(best);
        list[best].fetch_sub(1, Ordering::Release);
    }
}

pub struct FloorOp<'a>(&'a Floor);

impl Op for FloorOp<'_> {
    #[inline]
    fn op(&mut self) {
        self.0.op();
    }
}

impl Subject for Floor {
    type Handle<'a> = FloorOp<'a>;

    fn handle(&self, _seed: u64) -> Self::Handle<'_> {
        FloorOp(self)
    }
    /// The floor has no list to rebuild: its writer only republishes the same pointer.
    fn refresh(&self) {
        // Release: as a publication would be.
        self.current.store(self.list.as_ptr().cast_mut(), Ordering::Release);
    }
}

/// A control for the contention bench: the floor, but every thread gets counters of its own,
/// so two threads share nothing. Its 2-thread / 1-thread ratio measures how much CPU the
/// machine really gives two threads (1.0 on two idle cores), not cache-line contention.
pub struct PrivateFloor {
    n: usize,
    load: Load,
}

impl PrivateFloor {
    pub fn new(n: usize, load: Load) -> Self {
        Self { n, load }
    }
}

pub struct OwnFloorOp(Floor);

impl Op for OwnFloorOp {
    #[inline]
    fn op(&mut self) {
        self.0.op();
    }
}

impl Subject for PrivateFloor {
    type Handle<'a> = OwnFloorOp;

    fn handle(&self, _seed: u64) -> Self::Handle<'_> {
        OwnFloorOp(Floor::new(self.n, self.load))
    }
    fn refresh(&self) {}
}

// ---------------------------------------------------------------------------------------
// Baseline 1: Mutex<Vec<usize>>

pub struct MutexScan(Mutex<Vec<usize>>);

impl MutexScan {
    pub fn new(n: usize, load: Load) -> Self {
        Self(Mutex::new((0..n).map(|i| load.in_flight(i)).collect()))
    }

    #[inline]
    pub fn op(&self) {
        let i = {
            let mut v = self.0.lock().unwrap();
            let i = argmin(v.iter().copied());
            v[i] += 1;
            i
        };
        black_box(i);
        self.0.lock().unwrap()[i] -= 1;
    }
}

fn argmin(it: impl Iterator<Item = usize>) -> usize {
    let (mut best, mut min) = (0, usize::MAX);
    for (i, v) in it.enumerate() {
        if v < min {
            (best, min) = (i, v);
        }
    }
    best
}

pub struct MutexOp<'a>(&'a MutexScan);

impl Op for MutexOp<'_> {
    #[inline]
    fn op(&mut self) {
        self.0.op();
    }
}

impl Subject for MutexScan {
    type Handle<'a> = MutexOp<'a>;

    fn handle(&self, _seed: u64) -> Self::Handle<'_> {
        MutexOp(self)
    }
    /// A rebuilt list replaces the old one under the lock.
    fn refresh(&self) {
        let mut v = self.0.lock().unwrap();
        let fresh = v.clone();
        *v = fresh;
    }
}

// ---------------------------------------------------------------------------------------
// Baseline 2: RwLock<Vec<Arc<Host>>> with atomic counters

pub struct Host {
    pub in_flight: AtomicUsize,
    pub addr: String,
}

fn hosts(n: usize, load: Load) -> Vec<Arc<Host>> {
    (0..n).map(|i| Arc::new(Host { in_flight: AtomicUsize::new(load.in_flight(i)), addr: address(i) })).collect()
}

pub struct RwLockScan(RwLock<Vec<Arc<Host>>>);

impl RwLockScan {
    pub fn new(n: usize, load: Load) -> Self {
        Self(RwLock::new(hosts(n, load)))
    }

    #[inline]
    pub fn op(&self) {
        let host = {
            let list = self.0.read().unwrap();
            let i = argmin(list.iter().map(|h| h.in_flight.load(Ordering::Relaxed)));
            let host = Arc::clone(&list[i]);
            host.in_flight.fetch_add(1, Ordering::Relaxed);
            host
        };
        black_box(&host).in_flight.fetch_sub(1, Ordering::Release);
    }
}

pub struct RwLockOp<'a>(&'a RwLockScan);

impl Op for RwLockOp<'_> {
    #[inline]
    fn op(&mut self) {
        self.0.op();
    }
}

impl Subject for RwLockScan {
    type Handle<'a> = RwLockOp<'a>;

    fn handle(&self, _seed: u64) -> Self::Handle<'_> {
        RwLockOp(self)
    }
    fn refresh(&self) {
        let fresh = self.0.read().unwrap().clone();
        *self.0.write().unwrap() = fresh;
    }
}

// ---------------------------------------------------------------------------------------
// Baseline 3: Caddy's algorithm

pub struct CaddyLike(ArcSwap<Vec<Arc<Host>>>);

impl CaddyLike {
    pub fn new(n: usize, load: Load) -> Self {
        Self(ArcSwap::from_pointee(hosts(n, load)))
    }

    /// `selectionPolicy.Select`: reservoir sampling over the hosts with the fewest requests.
    #[inline]
    fn select(&self, rng: &mut fastrand::Rng) -> Option<Arc<Host>> {
        let list = self.0.load();
        let (mut best, mut least, mut count) = (None, 0usize, 0usize);
        for h in list.iter() {
            let n = h.in_flight.load(Ordering::Relaxed);
            if best.is_none() || n < least {
                least = n;
                count = 0;
            }
            if n == least {
                count += 1;
                if count == 1 || rng.usize(..count) == 0 {
                    best = Some(h);
                }
            }
        }
        best.map(Arc::clone)
    }

    #[inline]
    pub fn op(&self, rng: &mut fastrand::Rng) {
        let host = self.select(rng).expect("pick");
        // `countRequest(1)`, a separate step after the selection.
        host.in_flight.fetch_add(1, Ordering::Relaxed);
        black_box(&host).in_flight.fetch_sub(1, Ordering::Release);
    }
}

pub struct CaddyOp<'a>(&'a CaddyLike, fastrand::Rng);

impl Op for CaddyOp<'_> {
    #[inline]
    fn op(&mut self) {
        self.0.op(&mut self.1);
    }
}

impl Subject for CaddyLike {
    type Handle<'a> = CaddyOp<'a>;

    fn handle(&self, seed: u64) -> Self::Handle<'_> {
        CaddyOp(self, fastrand::Rng::with_seed(seed))
    }
    fn refresh(&self) {
        let fresh = Vec::clone(&self.0.load());
        self.0.store(Arc::new(fresh));
    }
}

// ---------------------------------------------------------------------------------------
// Issue item 7: a scan touching fewer cache lines at large N

/// Prototype for large N: the floor's cache-padded words stay authoritative, and a packed
/// mirror of the in-flight counts (16 per cache line) is what the scan reads. Every reserve
/// and release updates both, so the scan touches N/16 lines instead of N, at the price of
/// two more RMWs per pick and of hosts sharing mirror lines (false sharing between threads).
pub struct PackedMirror {
    current: AtomicPtr<AtomicU32>,
    words: Box<[CachePadded<AtomicU64>]>,
    mirror: Box<[AtomicU32]>,
}

impl PackedMirror {
    pub fn new(n: usize, load: Load) -> Self {
        let words = (0..n).map(|i| CachePadded::new(AtomicU64::new(load.in_flight(i) as u64))).collect();
        let mirror: Box<[AtomicU32]> = (0..n).map(|i| AtomicU32::new(load.in_flight(i) as u32)).collect();
        let current = AtomicPtr::new(mirror.as_ptr().cast_mut());
        Self { current, words, mirror }
    }

    fn mirror(&self) -> &[AtomicU32] {
        // Acquire: as a snapshot load would be.
        let ptr = self.current.load(Ordering::Acquire);
        // SAFETY: `ptr` is `self.mirror`'s, alive as long as `self`.
        unsafe { std::slice::from_raw_parts(ptr, self.mirror.len()) }
    }

    #[inline]
    fn reserve_release(&self, i: usize) {
        self.words[i].fetch_add(1, Ordering::Relaxed);
        self.mirror[i].fetch_add(1, Ordering::Relaxed);
        black_box(i);
        self.words[i].fetch_sub(1, Ordering::Release);
        self.mirror[i].fetch_sub(1, Ordering::Relaxed);
    }

    /// Scalar scan of the mirror with relaxed loads.
    #[inline]
    pub fn op_scalar(&self) {
        let i = argmin(self.mirror().iter().map(|c| c.load(Ordering::Relaxed) as usize));
        self.reserve_release(i);
    }

    /// AVX2 scan of the mirror: one pass for the minimum, one for its first position.
    ///
    /// The vector loads read the atomics non-atomically, a data race in Rust's memory model
    /// (x86 happens to load each aligned lane whole). A real implementation would need that
    /// argued or an `asm!` block; this prototype only measures whether it would pay.
    #[cfg(target_arch = "x86_64")]
    #[inline]
    pub fn op_avx2(&self) {
        assert!(std::is_x86_feature_detected!("avx2"));
        let m = self.mirror();
        // SAFETY: AVX2 is present (checked above); `m` is valid for `m.len()` u32 reads.
        let i = unsafe { argmin_avx2(m.as_ptr().cast::<u32>(), m.len()) };
        self.reserve_release(i);
    }
}

/// The first position of the minimum of `len` u32 at `p`.
///
/// # Safety
/// AVX2 must be available and `p` valid for `len` reads.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn argmin_avx2(p: *const u32, len: usize) -> usize {
    use std::arch::x86_64::*;
    let lanes = len / 8 * 8;
    let mut min = u32::MAX;
    // SAFETY: every load below reads 8 u32 inside `p[..lanes]`.
    unsafe {
        let mut acc = _mm256_set1_epi32(-1);
        for k in (0..lanes).step_by(8) {
            acc = _mm256_min_epu32(acc, _mm256_loadu_si256(p.add(k).cast()));
        }
        let mut lane = [0u32; 8];
        _mm256_storeu_si256(lane.as_mut_ptr().cast(), acc);
        min = lane.iter().copied().fold(min, u32::min);
    }
    for k in lanes..len {
        // SAFETY: `k < len`.
        min = min.min(unsafe { p.add(k).read_volatile() });
    }
    // SAFETY: as above.
    unsafe {
        let want = _mm256_set1_epi32(min as i32);
        for k in (0..lanes).step_by(8) {
            let eq =
                _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_loadu_si256(p.add(k).cast()), want)));
            if eq != 0 {
                return k + eq.trailing_zeros() as usize;
            }
        }
    }
    // The minimum moved under us (or sits in the tail): fall back to the tail, then to 0.
    // SAFETY: `k < len`.
    (lanes..len).find(|&k| unsafe { p.add(k).read_volatile() } == min).unwrap_or(0)
}
