//! Zone-wide statistics: capacity and use, the registered processes with what each holds,
//! the crash-recovery counters the header keeps (`layout::word`), and each host slot's shared
//! view (listers, failures ever, doubt). For status pages (nginx's `leastconn_status`) and
//! monitoring; not on the hot path.

use std::collections::HashMap;

use super::layout::{slot, word};
use super::procs::{self, ProcKind, ProcState, owner};
use super::slots::{Kind, Slots};
use super::sweep::{DOUBT_UNITS, LISTERS_IN_DOUBT};
use crate::host::in_flight_of;
use crate::sync::Ordering;

/// A process registered in a zone, as [`Zone::stats`](super::Zone::stats) sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ZoneProcess {
    /// Its pid.
    pub pid: u32,
    /// Reservations attributed to it now, over every host of the zone: what a sweep would
    /// return if it died now.
    pub in_flight: u64,
}

/// What [`Zone::stats`](super::Zone::stats) reports.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ZoneStats {
    /// Host slots: the zone's capacity.
    pub hosts: u32,
    /// Host slots in use (listed by some process, or still holding a removed host's last
    /// requests).
    pub hosts_used: u32,
    /// The registered processes, in record order.
    pub processes: Vec<ZoneProcess>,
    /// Records of dead processes swept, ever.
    pub sweeps: u64,
    /// In-flight units the sweeps returned, ever: what dead processes held.
    pub recovered: u64,
    /// Units in doubt now (a process killed inside a pick or release): kept in the in-flight
    /// counts until a reconcile finds the zone quiet.
    pub in_doubt: u64,
    /// Hosts whose doubt a reconcile removed, ever.
    pub reconciled: u64,
    /// Listings refused because every host slot was taken, ever.
    pub full_refusals: u64,
}

/// A host slot of a zone, as [`Zone::hosts`](super::Zone::hosts) sees it: what every process
/// shares about one address of one pool name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ZoneHost {
    /// The name of the pools that list it ([`Builder::zone`](crate::Builder::zone)).
    pub pool: String,
    /// Its address.
    pub address: String,
    /// Requests in flight, over every process (units in doubt included).
    pub in_flight: u32,
    /// Failures recorded ever, by any process: releases as failures by pools with passive
    /// health on (the failure ticket, which never goes back).
    pub failures: u64,
    /// Units in doubt: kept in `in_flight` for a process killed inside a pick or release,
    /// until a reconcile finds the zone quiet (docs/design-zone.md 4.4).
    pub doubt: u32,
    /// How many registered processes list it.
    pub listers: u32,
    /// `listers` may be off by one listing change of a killed process, until a reconcile
    /// recounts it.
    pub listers_in_doubt: bool,
}

impl super::Zone {
    /// The zone's statistics, read word by word while other processes go on (each number is
    /// one it had during the call; together they are exact when the zone is quiet).
    ///
    /// Costs one load per process record, plus one per host for each thread record in use:
    /// for status pages, not for the hot path.
    ///
    /// ```
    /// use leastconn::{Pool, Static, Zone, ZoneCapacity};
    /// # if cfg!(miri) { return Ok(()); } // Miri has no memfd_create
    ///
    /// let zone = Zone::anonymous(&ZoneCapacity { hosts: 8, ..ZoneCapacity::default() })?;
    /// let pool = Pool::builder(Static::from_addresses(["10.0.0.1:80"])).zone(&zone, "app").build()?;
    /// let held = pool.select()?;
    /// let stats = zone.stats();
    /// assert_eq!((stats.hosts, stats.hosts_used), (8, 1));
    /// assert_eq!(stats.processes.len(), 1);
    /// assert_eq!((stats.processes[0].pid, stats.processes[0].in_flight), (std::process::id(), 1));
    /// # drop(held);
    /// # Ok::<(), leastconn::Error>(())
    /// ```
    pub fn stats(&self) -> ZoneStats {
        let (words, layout) = (self.0.backing.words(), &self.0.layout);
        // Relaxed (these counter loads): statistics; nothing is ordered by them.
        let counter = |w: usize| words[w].load(Ordering::Relaxed);
        let slots = Slots::new(words, layout);
        let hosts_used = (0..layout.caps.hosts).filter(|&s| slots.control(s).kind() == Kind::Live).count() as u32;
        // The LIVE process records, and the owner word their thread records carry.
        let mut processes = Vec::new();
        let mut by_owner = HashMap::new();
        for p in 0..layout.caps.processes {
            if let Some(ProcState { kind: ProcKind::Live, pid, generation, .. }) =
                procs::process_state(words, layout, p)
            {
                by_owner.insert(owner::owned(p, generation), processes.len());
                processes.push((pid, 0u64));
            }
        }
        for t in 0..layout.caps.threads {
            let Some(&i) = by_owner.get(&procs::thread_owner(words, layout, t)) else { continue };
            // Relaxed (the row loads): a statistic; the rows' own protocol is the sweep's.
            let row = procs::attribution_row(words, layout, t);
            let sum = row.iter().fold(0u64, |a, w| a.wrapping_add(w.load(Ordering::Relaxed)));
            processes[i].1 = processes[i].1.wrapping_add(sum);
        }
        ZoneStats {
            hosts: layout.caps.hosts,
            hosts_used,
            // A sum read while the process picks and releases may be off by its moving units,
            // below zero included: clamp rather than show a wrapped number.
            processes: processes
                .into_iter()
                .map(|(pid, sum)| ZoneProcess { pid, in_flight: (sum as i64).max(0) as u64 })
                .collect(),
            sweeps: counter(word::SWEEPS),
            recovered: counter(word::RECOVERED),
            in_doubt: counter(word::IN_DOUBT),
            reconciled: counter(word::RECONCILES),
            full_refusals: counter(word::FULL_REFUSALS),
        }
    }

    /// Every host slot in use (listed by some process, or holding a removed host's last
    /// requests), in slot order, with what the processes share about it. Each slot is read
    /// word by word while other processes go on; a slot reclaimed or reused meanwhile is
    /// left out.
    ///
    /// Costs a few loads per host slot of the zone's capacity: for status pages, not for the
    /// hot path.
    ///
    /// ```
    /// use leastconn::{Outcome, Pool, Static, Zone, ZoneCapacity, ZoneHost};
    /// # if cfg!(miri) { return Ok(()); } // Miri has no memfd_create
    ///
    /// let zone = Zone::anonymous(&ZoneCapacity { hosts: 8, ..ZoneCapacity::default() })?;
    /// let pool = Pool::builder(Static::from_addresses(["10.0.0.1:80"])).zone(&zone, "app").build()?;
    /// let held = pool.select()?;
    /// pool.select()?.release(Outcome::Failure);
    /// let host = ZoneHost {
    ///     pool: "app".into(),
    ///     address: "10.0.0.1:80".into(),
    ///     in_flight: 1,
    ///     failures: 1,
    ///     doubt: 0,
    ///     listers: 1,
    ///     listers_in_doubt: false,
    /// };
    /// assert_eq!(zone.hosts(), [host]);
    /// # drop(held);
    /// # Ok::<(), leastconn::Error>(())
    /// ```
    pub fn hosts(&self) -> Vec<ZoneHost> {
        let (words, layout) = (self.0.backing.words(), &self.0.layout);
        let slots = Slots::new(words, layout);
        let mut hosts = Vec::new();
        for s in 0..layout.caps.hosts {
            let ctl = slots.control(s);
            if ctl.kind() != Kind::Live {
                continue;
            }
            let Some(key) = slots.key_bytes(s, ctl) else { continue };
            let base = layout.slot(s);
            // Acquire (these three loads): the control word reread below is read after them,
            // so an unchanged generation says they belong to the key read.
            let state = words[base + slot::STATE].load(Ordering::Acquire);
            let failures = words[base + slot::FAIL_NEXT].load(Ordering::Acquire);
            let doubt = words[base + slot::DOUBT].load(Ordering::Acquire);
            let now = slots.control(s);
            if now.kind() != Kind::Live || now.generation() != ctl.generation() {
                continue;
            }
            let (pool, address) = match key.iter().position(|&b| b == 0) {
                Some(nul) => (&key[..nul], &key[nul + 1..]),
                None => continue, // not a key this library writes
            };
            hosts.push(ZoneHost {
                pool: String::from_utf8_lossy(pool).into_owned(),
                address: String::from_utf8_lossy(address).into_owned(),
                in_flight: in_flight_of(state) as u32,
                failures,
                doubt: (doubt & DOUBT_UNITS) as u32,
                listers: now.who(),
                listers_in_doubt: doubt & LISTERS_IN_DOUBT != 0,
            });
        }
        hosts
    }
}

#[cfg(test)]
mod tests {
    use std::ptr::NonNull;

    use super::{ZoneHost, ZoneProcess, ZoneStats};
    use crate::zone::liveness::Oracle;
    use crate::zone::procs::{Registration, begin_listing_change, claim_thread_record, register};
    use crate::zone::slots::{Key, Slots};
    use crate::zone::sweep::sim;
    use crate::zone::{Zone, ZoneCapacity, ZoneInit};
    use crate::{Outcome, PassiveHealth, Pool, Static};

    const CAPS: ZoneCapacity = ZoneCapacity { hosts: 8, address_bytes: 32, fail_ring: 1, processes: 4, threads: 6 };

    /// A zone on 8-aligned heap memory (runs under Miri); `mem` must outlive it.
    fn zone_in(mem: &mut Vec<u64>) -> Zone {
        let len = Zone::size_for(&CAPS).unwrap();
        mem.resize(len / 8, 0);
        let ptr = NonNull::new(mem.as_mut_ptr().cast::<u8>()).unwrap();
        // SAFETY: `mem` outlives the zone (each test drops the zone first) and is only touched
        // through it.
        unsafe { Zone::from_memory(ptr, len, ZoneInit::Create(CAPS)) }.unwrap()
    }

    /// Registers process `pid` (starttime `10 * pid`), lists `address` for it, claims a
    /// thread record and makes `held` complete picks there: (registration, slot).
    fn process_holding(zone: &Zone, pid: u32, address: &str, held: usize) -> (Registration, u32) {
        let (words, layout) = (zone.0.backing.words(), &zone.0.layout);
        let reg = register(words, layout, pid, u64::from(pid) * 10).unwrap();
        let key = Key::new("app", address, layout).unwrap();
        let journal = begin_listing_change(words, layout, &reg, None).unwrap();
        let slot = Slots::new(words, layout).attach(&key, reg.index(), &journal).unwrap().index;
        drop(journal);
        let (record, mut seq) = (claim_thread_record(words, layout, &reg).unwrap(), 0);
        for _ in 0..held {
            assert_eq!(sim::pick(words, layout, (record, &mut seq), slot, 1 << 20, usize::MAX), Some(true));
        }
        (reg, slot)
    }

    #[test]
    fn a_fresh_zone_reports_its_capacity_and_nothing_else() {
        let mut mem = Vec::new();
        let zone = zone_in(&mut mem);
        assert_eq!(zone.stats(), ZoneStats { hosts: 8, ..ZoneStats::default() });
    }

    #[test]
    fn each_process_is_reported_with_what_it_holds_and_a_sweep_moves_it_to_recovered() {
        let mut mem = Vec::new();
        let zone = zone_in(&mut mem);
        let oracle = Oracle::with(&[(101, 1010), (102, 1020)]);
        let (survivor, a) = process_holding(&zone, 101, "a:1", 2);
        let (_dead, b) = process_holding(&zone, 102, "b:1", 3);
        assert_ne!(a, b);
        let stats = zone.stats();
        assert_eq!((stats.hosts, stats.hosts_used), (8, 2));
        assert_eq!(stats.processes, [ZoneProcess { pid: 101, in_flight: 2 }, ZoneProcess { pid: 102, in_flight: 3 }]);
        assert_eq!((stats.sweeps, stats.recovered, stats.in_doubt, stats.reconciled), (0, 0, 0, 0));

        oracle.kill(102);
        zone.sweep_as(&survivor, &oracle);
        let stats = zone.stats();
        assert_eq!(stats.processes, [ZoneProcess { pid: 101, in_flight: 2 }], "the dead one is gone");
        assert_eq!((stats.sweeps, stats.recovered, stats.in_doubt), (1, 3, 0));
        assert_eq!(stats.hosts_used, 1, "b:1 had no other lister and nothing in flight: reclaimed");
    }

    /// A process holding 1 unit on "a:1" is killed in its second pick after step `stop` (of
    /// `sim::pick`) and swept by another lister; `zone.hosts()` after the sweep and after a
    /// reconcile.
    fn killed_in_a_pick(stop: usize) -> (Vec<ZoneHost>, Vec<ZoneHost>) {
        let mut mem = Vec::new();
        let zone = zone_in(&mut mem);
        let oracle = Oracle::with(&[(101, 1010), (102, 1020)]);
        let (survivor, _) = process_holding(&zone, 101, "a:1", 0);
        let (dead, slot) = process_holding(&zone, 102, "a:1", 1);
        let (words, layout) = (zone.0.backing.words(), &zone.0.layout);
        let record = claim_thread_record(words, layout, &dead).unwrap();
        assert_eq!(sim::pick(words, layout, (record, &mut 0), slot, 1 << 20, stop), None);
        assert_eq!(zone.stats().processes[1], ZoneProcess { pid: 102, in_flight: 2 });
        oracle.kill(102);
        zone.sweep_as(&survivor, &oracle);
        let stats = zone.stats();
        assert_eq!((stats.sweeps, stats.recovered, stats.in_doubt, stats.reconciled), (1, 1, 1, 0));
        let swept = zone.hosts();
        zone.reconcile();
        let stats = zone.stats();
        assert_eq!((stats.in_doubt, stats.reconciled), (0, 1));
        (swept, zone.hosts())
    }

    fn host(in_flight: u32, doubt: u32) -> ZoneHost {
        ZoneHost {
            pool: "app".into(),
            address: "a:1".into(),
            in_flight,
            failures: 0,
            doubt,
            listers: 1,
            listers_in_doubt: false,
        }
    }

    #[test]
    fn doubt_and_reconcile_are_reported_killed_after_the_add() {
        let (swept, reconciled) = killed_in_a_pick(3);
        assert_eq!(swept, [host(1, 1)], "the unit in doubt stays in flight, on its host");
        assert_eq!(reconciled, [host(0, 0)]);
    }

    #[test]
    fn doubt_and_reconcile_are_reported_killed_before_the_add() {
        // After the intent, before the shared add: the unit in doubt was never added, so the
        // host's in-flight count is below its doubt (in_flight <= doubt, not ==).
        let (swept, reconciled) = killed_in_a_pick(2);
        assert_eq!(swept, [host(0, 1)]);
        assert_eq!(reconciled, [host(0, 0)]);
    }

    #[test]
    fn hosts_show_failures_ever_and_listers_of_every_pool() {
        let mut mem = Vec::new();
        let zone = zone_in(&mut mem);
        // The pool first: its registration sweeps, and the made-up pids below look dead.
        let pool = Pool::builder(Static::from_addresses(["a:1"]))
            .zone(&zone, "other")
            .passive_health(PassiveHealth { max_fails: 1, fail_duration: std::time::Duration::from_secs(3600) })
            .build()
            .unwrap();
        let (_a, _) = process_holding(&zone, 101, "a:1", 2);
        let (_b, _) = process_holding(&zone, 102, "a:1", 1);
        pool.select().unwrap().release(Outcome::Failure);
        let other = ZoneHost { pool: "other".into(), failures: 1, listers: 1, ..host(0, 0) };
        let mut hosts = zone.hosts();
        hosts.sort_by(|x, y| x.pool.cmp(&y.pool));
        assert_eq!(hosts, [ZoneHost { in_flight: 3, listers: 2, ..host(0, 0) }, other]);
        drop(pool);
    }

    #[test]
    fn a_pool_on_the_zone_is_this_process_with_its_reservations() {
        let mut mem = Vec::new();
        let zone = zone_in(&mut mem);
        let pool = Pool::builder(Static::from_addresses(["10.0.0.1:80", "10.0.0.2:80"]))
            .zone(&zone, "app")
            .passive_health(PassiveHealth::OFF)
            .build()
            .unwrap();
        let held = [pool.select().unwrap(), pool.select().unwrap(), pool.select().unwrap()];
        let stats = zone.stats();
        assert_eq!(stats.hosts_used, 2);
        assert_eq!(stats.processes, [ZoneProcess { pid: std::process::id(), in_flight: 3 }]);
        for r in held {
            r.release(Outcome::Success);
        }
        assert_eq!(zone.stats().processes, [ZoneProcess { pid: std::process::id(), in_flight: 0 }]);
        drop(pool);
    }
}
