//! Pools on a zone, in one process (docs/design-zone.md step S6): the zone lives in a
//! `Vec<u64>` (caller memory), so that these run under Miri too.

use std::ptr::NonNull;
use std::sync::Mutex;
use std::time::Duration;

use super::slots::{Key, Kind};
use super::{Zone, ZoneCapacity, ZoneInit, memory};
use crate::source::from_fn;
use crate::{Clock, ErrorKind, ManualClock, Outcome, PassiveHealth, Pool, Static, Upstream};

const CAPS: ZoneCapacity = ZoneCapacity { hosts: 8, address_bytes: 64, fail_ring: 2, processes: 3, threads: 8 };

/// A zone in `buf` (which must outlive it and every pool on it).
fn zone_in(buf: &mut Vec<u64>, caps: ZoneCapacity) -> Zone {
    let len = Zone::size_for(&caps).unwrap();
    buf.resize(len.div_ceil(8), 0);
    let mem = NonNull::new(buf.as_mut_ptr().cast::<u8>()).unwrap();
    // SAFETY: `buf` outlives the zone (each test drops its pools and zone before `buf`), and
    // is touched only through the zone.
    unsafe { memory::borrowed(mem, len, ZoneInit::Create(caps), &|_| false, Duration::ZERO) }.map(Zone::new).unwrap()
}

fn limited(addresses: &[&str], limit: u32) -> Static {
    Static::new(addresses.iter().map(|a| Upstream::new(*a).max_requests(limit)).collect())
}

fn pool_on(zone: &Zone, name: &str, source: Static) -> Pool {
    Pool::builder(source).zone(zone, name).passive_health(PassiveHealth::OFF).build().unwrap()
}

/// (kind, listers) of every slot that is not FREE or TOMB.
fn live_slots(zone: &Zone) -> Vec<(Kind, u32)> {
    let slots = zone.slots();
    (0..zone.capacity().hosts)
        .map(|s| slots.control(s))
        .filter(|c| !matches!(c.kind(), Kind::Free | Kind::Tomb))
        .map(|c| (c.kind(), c.who()))
        .collect()
}

#[test]
fn two_pools_with_one_name_share_counters_exactly() {
    let mut buf = Vec::new();
    let zone = zone_in(&mut buf, CAPS);
    let a = pool_on(&zone, "app", limited(&["10.0.0.1:80"], 1));
    let b = pool_on(&zone, "app", limited(&["10.0.0.1:80"], 1));
    let r = a.select().unwrap();
    assert_eq!(b.stats()[0].in_flight, 1, "b sees a's reservation");
    assert_eq!(b.select().unwrap_err().kind(), ErrorKind::NoUpstream, "max_requests 1 across both pools");
    r.release(Outcome::Success);
    let r = b.select().unwrap();
    assert_eq!((a.stats()[0].in_flight, a.stats()[0].picks), (1, 2));
    r.release(Outcome::Success);
    assert_eq!((b.stats()[0].in_flight, b.stats()[0].picks), (0, 2));
    // Both pools list the key once in the zone: one slot, one lister (this process).
    assert_eq!(live_slots(&zone), [(Kind::Live, 1)]);
    drop(a);
    assert_eq!(live_slots(&zone), [(Kind::Live, 1)], "b still lists it");
    drop(b);
    assert_eq!(live_slots(&zone), [], "reclaimed once neither lists it");
}

#[test]
fn pools_with_different_names_do_not_share() {
    let mut buf = Vec::new();
    let zone = zone_in(&mut buf, CAPS);
    let a = pool_on(&zone, "app", limited(&["10.0.0.1:80"], 1));
    let b = pool_on(&zone, "api", limited(&["10.0.0.1:80"], 1));
    let r = a.select().unwrap();
    assert_eq!(b.stats()[0].in_flight, 0);
    let s = b.select().unwrap();
    assert_eq!(live_slots(&zone), [(Kind::Live, 1), (Kind::Live, 1)], "two keys, two slots");
    drop((r, s));
}

#[test]
fn failures_and_down_flags_are_shared_by_pools_of_one_name() {
    let mut buf = Vec::new();
    let zone = zone_in(&mut buf, CAPS);
    let clock = ManualClock::new();
    let health = PassiveHealth { max_fails: 2, fail_duration: Duration::from_secs(10) };
    let build = || {
        Pool::builder(Static::from_addresses(["10.0.0.1:80"]))
            .zone(&zone, "app")
            .passive_health(health)
            .clock(Clock::Manual(clock.clone()))
            .build()
            .unwrap()
    };
    let (a, b) = (build(), build());
    a.select().unwrap().release(Outcome::Failure);
    b.select().unwrap().release(Outcome::Failure);
    assert!(a.stats()[0].unhealthy && b.stats()[0].unhealthy, "2 failures, one in each pool");
    assert_eq!(a.select().unwrap_err().kind(), ErrorKind::NoUpstream);
    clock.advance(Duration::from_secs(11));
    drop(b.select().unwrap());
    a.set_down("10.0.0.1:80", true).unwrap();
    assert!(b.stats()[0].down);
}

#[test]
fn max_fails_above_the_zone_ring_is_refused() {
    let mut buf = Vec::new();
    let zone = zone_in(&mut buf, CAPS);
    let e = Pool::builder(Static::from_addresses(["a:1"]))
        .zone(&zone, "app")
        .passive_health(PassiveHealth { max_fails: 3, fail_duration: Duration::from_secs(1) })
        .build()
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::ZoneIncompatible, "{}", e.message());
}

/// A source whose list the test sets.
fn switchable(list: &[&str]) -> (std::sync::Arc<Mutex<Vec<String>>>, impl crate::Source + 'static) {
    let cell = std::sync::Arc::new(Mutex::new(list.iter().map(|s| s.to_string()).collect::<Vec<_>>()));
    let c = std::sync::Arc::clone(&cell);
    (cell, from_fn(move |_| Ok(c.lock().unwrap().iter().map(Upstream::new).collect())))
}

fn set(cell: &Mutex<Vec<String>>, list: &[&str]) {
    *cell.lock().unwrap() = list.iter().map(|s| s.to_string()).collect();
}

#[test]
fn an_unlisted_slot_is_reclaimed_only_after_its_last_release() {
    let mut buf = Vec::new();
    let zone = zone_in(&mut buf, CAPS);
    let (list, source) = switchable(&["10.0.0.1:80"]);
    let pool = Pool::builder(source).zone(&zone, "app").build().unwrap();
    let r = pool.select().unwrap();
    set(&list, &[]);
    pool.refresh().unwrap();
    pool.refresh().unwrap();
    assert_eq!(pool.live_hosts(), 1, "kept: a request is in flight");
    assert_eq!(live_slots(&zone), [(Kind::Live, 1)]);
    r.release(Outcome::Success);
    assert_eq!(pool.refresh().unwrap().reclaimed, 1);
    assert_eq!((pool.live_hosts(), live_slots(&zone)), (0, vec![]), "detached and reclaimed");
}

#[test]
fn zone_full_on_refresh_keeps_the_list_and_detaches_what_it_attached() {
    let mut buf = Vec::new();
    let zone = zone_in(&mut buf, ZoneCapacity { hosts: 3, ..CAPS });
    let (list, source) = switchable(&["a:1", "b:1"]);
    let pool = Pool::builder(source).zone(&zone, "app").build().unwrap();
    set(&list, &["c:1", "d:1"]); // c takes the third slot, d finds none
    let e = pool.refresh().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ZoneFull, "{}", e.message());
    let kept: Vec<String> = pool.upstreams().into_iter().map(|u| u.address).collect();
    assert_eq!(kept, ["a:1", "b:1"], "the pool keeps serving its list");
    assert_eq!(live_slots(&zone).len(), 2, "c was detached and reclaimed");
    assert_eq!(pool.live_hosts(), 2);
    drop(pool.select().unwrap());
    set(&list, &["a:1", "c:1"]);
    assert_eq!(pool.refresh().unwrap().upstreams, 2, "b's slot is free now: c fits");
}

#[test]
fn picker_and_thread_paths_attribute_to_this_process() {
    let mut buf = Vec::new();
    let zone = zone_in(&mut buf, CAPS);
    let (list, source) = switchable(&["10.0.0.1:80", "10.0.0.2:80"]);
    let pool = Pool::builder(source).zone(&zone, "app").build().unwrap();
    let mut picker = pool.picker_seeded(1);
    let a = picker.select().unwrap();
    let b = pool.select().unwrap();
    assert_ne!(a.address(), b.address(), "least_conn across the shared counters");
    let slot = |addr: &str| zone.slots().lookup(&Key::new("app", addr, &zone.0.layout).unwrap()).unwrap().index;
    let (sa, sb) = (slot(a.address()), slot(b.address()));
    assert_eq!((zone.0.process_in_flight(sa), zone.0.process_in_flight(sb)), (1, 1));
    // Released crosswise: the picker's record gets b's -1, the thread's a's.
    picker.release(b, Outcome::Success);
    a.release(Outcome::Success);
    assert_eq!((zone.0.process_in_flight(sa), zone.0.process_in_flight(sb)), (0, 0));
    set(&list, &[]);
    pool.refresh().unwrap();
    drop(picker); // its cached snapshot still listed both
    pool.refresh().unwrap();
    assert_eq!((pool.live_hosts(), live_slots(&zone)), (0, vec![]));
}

#[test]
fn a_pool_dropped_with_requests_in_flight_parks_its_hosts_until_their_release() {
    let mut buf = Vec::new();
    let zone = zone_in(&mut buf, CAPS);
    let other = pool_on(&zone, "other", limited(&["x:1"], 0));
    let pool = pool_on(&zone, "app", limited(&["10.0.0.1:80"], 0));
    let r = pool.select().unwrap();
    drop(pool);
    assert_eq!(zone.0.draining(), 1);
    assert_eq!(live_slots(&zone).len(), 2, "still listed: in flight");
    r.release(Outcome::Success);
    other.refresh().unwrap(); // any zone pool's maintenance frees it
    assert_eq!((zone.0.draining(), live_slots(&zone).len()), (0, 1));
}
