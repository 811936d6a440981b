//! Zone-wide statistics: capacity and use, the registered processes with what each holds,
//! and the crash-recovery counters the header keeps (`layout::word`). For status pages
//! (nginx's `leastconn_status`) and monitoring; not on the hot path.

use std::collections::HashMap;

use super::layout::word;
use super::procs::{self, ProcKind, ProcState, owner};
use super::slots::{Kind, Slots};
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
}

#[cfg(test)]
mod tests {
    use std::ptr::NonNull;

    use super::{ZoneProcess, ZoneStats};
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

    #[test]
    fn doubt_and_reconcile_are_reported() {
        let mut mem = Vec::new();
        let zone = zone_in(&mut mem);
        let oracle = Oracle::with(&[(101, 1010), (102, 1020)]);
        let (survivor, _) = process_holding(&zone, 101, "a:1", 0);
        let (dead, slot) = process_holding(&zone, 102, "a:1", 1);
        // The dying process's second pick stops inside its window, after the intent.
        let (words, layout) = (zone.0.backing.words(), &zone.0.layout);
        let record = claim_thread_record(words, layout, &dead).unwrap();
        assert_eq!(sim::pick(words, layout, (record, &mut 0), slot, 1 << 20, 2), None);
        assert_eq!(zone.stats().processes[1], ZoneProcess { pid: 102, in_flight: 2 });
        oracle.kill(102);
        zone.sweep_as(&survivor, &oracle);
        let stats = zone.stats();
        assert_eq!((stats.sweeps, stats.recovered, stats.in_doubt, stats.reconciled), (1, 1, 1, 0));
        zone.reconcile();
        let stats = zone.stats();
        assert_eq!((stats.in_doubt, stats.reconciled), (0, 1));
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
