//! Pools on a zone across processes (docs/design-zone.md step S6): a pool in a forked child
//! and one in the parent, on an anonymous zone, share one host state. Synchronised by pipes,
//! never by sleeps; the child reports by its exit code.
#![cfg(all(target_os = "linux", not(loom)))]

mod common;

use common::one_host_zone_pool as pool;
use leastconn::{ErrorKind, Outcome, PassiveHealth, Pool, Static, Upstream, Zone, ZoneCapacity};

const CAPS: ZoneCapacity = ZoneCapacity { hosts: 16, address_bytes: 64, fail_ring: 2, processes: 4, threads: 16 };

struct Pipe {
    read: i32,
    write: i32,
}

fn pipe() -> Pipe {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a writable array of two ints.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    Pipe { read: fds[0], write: fds[1] }
}

impl Pipe {
    /// Keeps only the reading end (this process only reads from this pipe).
    fn reader(&self) {
        // SAFETY: closes our own descriptor, used no more in this process.
        unsafe { libc::close(self.write) };
    }

    /// Keeps only the writing end.
    fn writer(&self) {
        // SAFETY: as above.
        unsafe { libc::close(self.read) };
    }
}

fn send(p: &Pipe, b: u8) {
    // SAFETY: writes one byte from a live buffer to our pipe.
    assert_eq!(unsafe { libc::write(p.write, (&b as *const u8).cast(), 1) }, 1);
}

/// Blocks until the other process sends a byte (0 if it closed the pipe).
fn recv(p: &Pipe) -> u8 {
    let mut b = 0u8;
    // SAFETY: reads one byte into a live buffer from our pipe.
    let n = unsafe { libc::read(p.read, (&mut b as *mut u8).cast(), 1) };
    if n == 1 { b } else { 0 }
}

/// Forks; the child runs `child` and exits with its code (101 if it panicked).
fn fork(child: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the child runs only `child` and leaves with `_exit`, never returning into the
    // test harness (glibc's fork resets the allocator's locks, so it may allocate).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(101);
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    pid
}

fn wait(pid: i32) -> i32 {
    let mut status = 0;
    // SAFETY: `pid` is our child; `status` is writable.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "child ended by signal: status {status:#x}");
    libc::WEXITSTATUS(status)
}

/// `max_requests` = 1 holds exactly across two processes: while one holds the host, the
/// other's pick fails; after its release, the other's succeeds; both see the same counters.
#[test]
#[cfg_attr(miri, ignore = "forks and maps a memfd, which Miri cannot run")]
fn a_pool_in_a_forked_child_and_one_in_the_parent_share_one_host_state() {
    let zone = Zone::anonymous(&CAPS).unwrap();
    let parent = pool(&zone);
    let held = parent.select().unwrap();
    let (to_child, to_parent) = (pipe(), pipe());
    let pid = fork(|| {
        // Each side keeps one end of each pipe, so that if one side dies the other reads EOF
        // instead of blocking forever.
        to_child.reader();
        to_parent.writer();
        // A pool built in the child: the child registers anew (its own pid) and attaches to
        // the parent's slot.
        let child = pool(&zone);
        let mut code = 0;
        if child.stats()[0].in_flight != 1 {
            code |= 1;
        }
        if child.select().map(drop).map_err(|e| e.kind()) != Err(ErrorKind::NoUpstream) {
            code |= 2;
        }
        send(&to_parent, b'x');
        if recv(&to_child) != b'r' {
            code |= 4;
        }
        let mut picker = child.picker_seeded(3);
        let Ok(mine) = picker.select() else { return code | 8 };
        send(&to_parent, b'y');
        if recv(&to_child) != b'q' {
            code |= 16;
        }
        picker.release(mine, Outcome::Success);
        if child.stats()[0].picks != 2 {
            code |= 32;
        }
        code
    });
    to_child.writer();
    to_parent.reader();
    assert_eq!(recv(&to_parent), b'x');
    held.release(Outcome::Success);
    send(&to_child, b'r');
    assert_eq!(recv(&to_parent), b'y');
    assert_eq!(parent.stats()[0].in_flight, 1, "the child's reservation");
    assert_eq!(parent.select().unwrap_err().kind(), ErrorKind::NoUpstream, "limit 1 across processes");
    send(&to_child, b'q');
    assert_eq!(wait(pid), 0, "child's checks (bit flags)");
    let stats = parent.stats().remove(0);
    assert_eq!((stats.in_flight, stats.picks), (0, 2));
    drop(parent.select().unwrap());
}

/// `Zone::sweep` recovers exactly what a SIGKILLed process held (design 4.3): its two
/// reservations leave the in-flight count, nothing stays in doubt (it died outside any pick or
/// release window), and its process record is free for a new registration.
#[test]
#[cfg_attr(miri, ignore = "forks and maps a memfd, which Miri cannot run")]
fn zone_sweep_recovers_the_reservations_of_a_killed_process() {
    let caps = ZoneCapacity { processes: 2, ..CAPS };
    let zone = Zone::anonymous(&caps).unwrap();
    let many = |zone: &Zone| {
        Pool::builder(Static::new(vec![Upstream::new("10.0.0.1:80")]))
            .zone(zone, "app")
            .passive_health(PassiveHealth::OFF)
            .build()
            .unwrap()
    };
    let parent = many(&zone);
    let mine = parent.select().unwrap();
    let (to_child, to_parent) = (pipe(), pipe());
    let pid = fork(|| {
        to_child.reader();
        to_parent.writer();
        let child = many(&zone);
        let held = [child.select().unwrap(), child.select().unwrap()];
        send(&to_parent, b'h');
        // Blocks until killed (the parent never writes; EOF only if the parent died).
        recv(&to_child);
        drop(held);
        1
    });
    to_child.writer();
    to_parent.reader();
    assert_eq!(recv(&to_parent), b'h');
    assert_eq!(parent.stats()[0].in_flight, 3, "the child's two and ours");
    // SAFETY: `pid` is our child, still unreaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let mut status = 0;
    // SAFETY: as above; `status` is writable.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL, "status {status:#x}");
    let report = zone.sweep().unwrap();
    assert_eq!((report.processes, report.recovered, report.in_doubt), (1, 2, 0));
    assert_eq!(parent.stats()[0].in_flight, 1, "only ours");
    // The child's record is free: a new process registers although `processes` is 2.
    let again = fork(|| {
        let p = many(&zone);
        i32::from(p.stats()[0].in_flight != 1)
    });
    assert_eq!(wait(again), 0, "a fresh registration after the sweep");
    mine.release(Outcome::Success);
    assert_eq!(parent.stats()[0].in_flight, 0);
    // The second child left by `_exit` without deregistering: its record is swept, empty.
    let report = zone.sweep().unwrap();
    assert_eq!((report.processes, report.recovered, report.in_doubt), (1, 0, 0));
    assert_eq!(zone.sweep().unwrap(), leastconn::SweepReport::default(), "nothing more to sweep");
}

/// Registration when every process record is held by exited processes (design 4.1: a
/// registrant sweeps first): two forked children register, each takes a reservation, and
/// exits without deregistering, which fills both process records. The parent's first pool
/// then registers (before: `ZoneFull` until some registered process swept): it frees one
/// record by sweeping it without a registration, registers there, and its registration's
/// sweep takes the other; both children's reservations are returned, only the parent's
/// record is left, and the parent's pool works.
#[test]
#[cfg_attr(miri, ignore = "forks and maps a memfd, which Miri cannot run")]
fn registration_sweeps_the_dead_when_every_process_record_is_held() {
    let caps = ZoneCapacity { hosts: 4, address_bytes: 64, fail_ring: 2, processes: 2, threads: 8 };
    let limit_2 = |zone: &Zone| {
        Pool::builder(Static::new(vec![Upstream::new("10.0.0.1:80").max_requests(2)]))
            .zone(zone, "app")
            .passive_health(PassiveHealth::OFF)
            .build()
            .unwrap()
    };
    let zone = Zone::anonymous(&caps).unwrap();
    // Both children are registered (alive) before either exits, so neither sweeps the other.
    let (ready, go) = (pipe(), pipe());
    let children: Vec<i32> = (0..2)
        .map(|_| {
            fork(|| {
                ready.writer();
                go.reader();
                let p = limit_2(&zone);
                let r = p.select().expect("the host has room");
                std::mem::forget((p, r));
                send(&ready, b'r');
                recv(&go);
                0
            })
        })
        .collect();
    ready.reader();
    go.writer();
    assert_eq!((recv(&ready), recv(&ready)), (b'r', b'r'));
    send(&go, b'g');
    send(&go, b'g');
    for pid in children {
        assert_eq!(wait(pid), 0);
    }
    let census = zone.census();
    assert_eq!(census.processes.len(), 2, "both records held by the exited children");
    assert_eq!(census.in_flight.iter().map(|&(_, n)| n).sum::<u64>(), 2);
    let p = pool(&zone);
    let census = zone.census();
    assert_eq!(census.processes.iter().map(|&(_, pid)| pid).collect::<Vec<_>>(), [std::process::id()]);
    assert_eq!((census.in_flight, census.doubt), (vec![], vec![]), "the children's reservations are returned");
    assert_eq!(census.live.iter().map(|&(_, listers)| listers).collect::<Vec<_>>(), [1]);
    let r = p.select().expect("max_requests 1, nothing held");
    assert_eq!(p.stats()[0].in_flight, 1);
    r.release(Outcome::Success);
}

/// Deregistration at a process's last use of an attachment (design 4.1, "normal end"): when
/// the pools, `Picker`s, reservations, the thread-record caches of the threads that used them
/// (they end with their threads) and the `Zone` handles of an attachment are gone, its process
/// record is freed and its thread records go back to the zone, exactly, though one record
/// counts +1 and another -1 (a reservation picked on one thread and released on another).
/// The same process then registers again and works. An attachment kept alive by a reservation
/// that was never released stays registered (the sweep returns it when the process exits).
/// Observed through a second attachment of the same file (its own mapping, through
/// `Zone::from_memory`, since `Zone::open` of an open file returns the same attachment) that
/// never registers.
#[test]
#[cfg_attr(miri, ignore = "forks and maps a memfd, which Miri cannot run")]
fn the_last_use_of_an_attachment_frees_its_process_and_thread_records() {
    let path = std::env::temp_dir().join(format!("leastconn-zone-dereg-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    drop(Zone::open(&path, &CAPS).unwrap());
    let (_map, observer) = observer_of(&path);
    let records = |z: &Zone| {
        let c = z.census();
        (c.processes.len(), c.thread_records)
    };
    assert_eq!(records(&observer), (0, 0));
    for _ in 0..2 {
        let user = Zone::open(&path, &CAPS).unwrap();
        let p = pool(&user);
        assert_eq!(records(&observer), (1, 1), "registered, with its spare record");
        // Picked on one thread, released on another while the first still runs (so the two
        // use two records): +1 and -1 in two records' rows.
        let (picked_tx, picked_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let picker_thread = std::thread::spawn({
            let p = p.clone();
            move || {
                picked_tx.send(p.select().unwrap()).unwrap();
                done_rx.recv().unwrap();
            }
        });
        let picked = picked_rx.recv().unwrap();
        std::thread::spawn(move || picked.release(Outcome::Success)).join().unwrap();
        done_tx.send(()).unwrap();
        picker_thread.join().unwrap();
        std::thread::spawn({
            let p = p.clone();
            move || {
                let mut picker = p.picker();
                let r = picker.select().unwrap();
                picker.release(r, Outcome::Success);
            }
        })
        .join()
        .unwrap();
        // The picker reuses a record the threads gave back (the process's free list).
        assert_eq!(records(&observer), (1, 3), "the spare and the two threads' records");
        assert_eq!(p.stats()[0].in_flight, 0);
        drop(p);
        assert_eq!(records(&observer).0, 1, "the zone handle is still in use");
        drop(user);
        assert_eq!(records(&observer), (0, 0), "process and thread records freed");
        assert_eq!(observer.census().in_flight, vec![]);
    }
    // A reservation never released keeps its host, so the attachment and its registration.
    let user = Zone::open(&path, &CAPS).unwrap();
    let p = pool(&user);
    std::thread::spawn({
        let p = p.clone();
        move || std::mem::forget(p.select().unwrap())
    })
    .join()
    .unwrap();
    drop((p, user));
    assert_eq!(records(&observer).0, 1, "still registered: the sweep returns it at exit");
    let _ = std::fs::remove_file(&path);
}

/// A separate attachment of the zone file at `path`: its own shared mapping, attached with
/// `Zone::from_memory`. The mapping lives as long as the returned `Mapping`.
fn observer_of(path: &std::path::Path) -> (Mapping, Zone) {
    use std::os::fd::AsRawFd;
    let file = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    let len = file.metadata().unwrap().len() as usize;
    // SAFETY: maps the whole file shared; unmapped by `Mapping`'s drop, after the zone handle
    // that uses it (the caller keeps the zone no longer than the mapping).
    let ptr = unsafe {
        libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, file.as_raw_fd(), 0)
    };
    assert_ne!(ptr, libc::MAP_FAILED);
    let mem = std::ptr::NonNull::new(ptr.cast::<u8>()).unwrap();
    // SAFETY: the mapping is page-aligned, `len` bytes, and outlives the zone (see above).
    let zone = unsafe { Zone::from_memory(mem, len, leastconn::ZoneInit::Attach) }.unwrap();
    (Mapping(ptr, len), zone)
}

struct Mapping(*mut libc::c_void, usize);

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: our own mapping, used no more: the caller binds `(mapping, zone)` in one
        // `let`, so the zone (bound later) is dropped first.
        unsafe { libc::munmap(self.0, self.1) };
    }
}

/// `Zone::open` of a file this process already has open returns the same attachment (design
/// 2.2): pools built on two opens register the process once, share one lister count, and a
/// third open with other capacities is refused while the zone is open. Before: two mappings,
/// two registrations of the same pid.
#[test]
#[cfg_attr(miri, ignore = "forks and maps a memfd, which Miri cannot run")]
fn opening_one_file_twice_in_a_process_gives_one_attachment() {
    let path = std::env::temp_dir().join(format!("leastconn-zone-dedup-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let (a, b) = (Zone::open(&path, &CAPS).unwrap(), Zone::open(&path, &CAPS).unwrap());
    let (pa, pb) = (pool(&a), pool(&b));
    let census = a.census();
    assert_eq!(census.processes.len(), 1, "one registration: {:?}", census.processes);
    assert_eq!(census.live.iter().map(|&(_, listers)| listers).collect::<Vec<_>>(), [1], "one lister");
    let e = Zone::open(&path, &ZoneCapacity { processes: 5, ..CAPS }).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ZoneIncompatible);
    drop((pa, pb, a, b));
    let _ = std::fs::remove_file(&path);
}
