//! The stress test itself (Linux only, as zones): see `tests/zone_stress.rs`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use leastconn::source::from_fn;
use leastconn::{Outcome, PassiveHealth, Pool, Upstream, Zone, ZoneCapacity};

const K: usize = 3;
const ADDRS: usize = 6;
const LIMIT: u32 = 2;
/// Reservations each thread holds in phase 1.
const HOLDS: usize = 2;
/// Progress records read from the victim before it is killed.
const N: u32 = 40;
const CAPS: ZoneCapacity =
    ZoneCapacity { hosts: 32, address_bytes: 64, fail_ring: 2, processes: K as u32 + 2, threads: 64 };

fn addr(i: usize) -> String {
    format!("10.0.9.{i}:80")
}

fn index_of(address: &str) -> usize {
    (0..ADDRS).find(|&i| addr(i) == address).expect("one of ours")
}

/// The test's counters, in a shared anonymous mapping: `held[a]` and per child `row[c][a]`.
struct Counters {
    held: [AtomicU64; ADDRS],
    rows: [[AtomicU64; ADDRS]; K],
    over: AtomicU64,
}

fn counters() -> &'static Counters {
    // SAFETY: a fresh shared anonymous mapping, zero-filled (all counters 0), never unmapped;
    // atomics of zero bytes are valid values.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            std::mem::size_of::<Counters>(),
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        assert_ne!(p, libc::MAP_FAILED);
        &*(p as *const Counters)
    }
}

fn write_all(fd: i32, bytes: &[u8]) -> bool {
    // SAFETY: writes from a live buffer to our descriptor.
    let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
    n == bytes.len() as isize
}

fn read_some(fd: i32, buf: &mut [u8]) -> usize {
    // SAFETY: reads into a live buffer from our descriptor.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    n.max(0) as usize
}

fn pipe() -> [i32; 2] {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a writable array of two ints.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    fds
}

fn close(fd: i32) {
    // SAFETY: closes a descriptor of ours, used no more by this process.
    unsafe { libc::close(fd) };
}

fn zone_pool(zone: &Zone, list: Arc<Mutex<Vec<usize>>>) -> Pool {
    let source = from_fn(move |_| {
        Ok(list.lock().unwrap().iter().map(|&i| Upstream::new(addr(i)).max_requests(LIMIT)).collect())
    });
    Pool::builder(source)
        .zone(zone, "app")
        .passive_health(PassiveHealth { max_fails: 2, fail_duration: std::time::Duration::from_millis(50) })
        .build()
        .unwrap()
}

fn subset(rng: &mut fastrand::Rng) -> Vec<usize> {
    let v: Vec<usize> = (0..ADDRS).filter(|_| rng.bool()).collect();
    if v.is_empty() { vec![rng.usize(..ADDRS)] } else { v }
}

/// A child: `me` is its counter row; `held_phase`: hold HOLDS per thread and park first.
fn child(zone: &Zone, me: usize, seed: u64, held_phase: bool, cmd: i32, prog: i32) -> i32 {
    let c = counters_ref();
    let list = Arc::new(Mutex::new((0..ADDRS).collect::<Vec<_>>()));
    let pool = zone_pool(zone, Arc::clone(&list));
    let stop = Arc::new(AtomicBool::new(false));
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let go_rx = Arc::new(Mutex::new(go_rx));
    let threads: Vec<_> = (0..2u64)
        .map(|t| {
            let (pool, stop, go_rx) = (pool.clone(), Arc::clone(&stop), Arc::clone(&go_rx));
            std::thread::spawn(move || {
                let mut picker = pool.picker_seeded(seed.wrapping_mul(2).wrapping_add(t));
                let mut rng = fastrand::Rng::with_seed(seed ^ ((t + 1) * 0x9e37_79b9));
                let mut holds = Vec::new();
                let take = |r: &leastconn::Reservation| {
                    let a = index_of(r.address());
                    c.rows[me][a].fetch_add(1, Ordering::SeqCst);
                    if c.held[a].fetch_add(1, Ordering::SeqCst) + 1 > u64::from(LIMIT) {
                        c.over.fetch_add(1, Ordering::SeqCst);
                    }
                    a
                };
                let give = |a: usize| {
                    c.held[a].fetch_sub(1, Ordering::SeqCst);
                    c.rows[me][a].fetch_sub(1, Ordering::SeqCst);
                };
                if held_phase {
                    for _ in 0..HOLDS {
                        if let Ok(r) = picker.select() {
                            let a = take(&r);
                            holds.push((a, r));
                            write_all(prog, &[a as u8]);
                        }
                    }
                    write_all(prog, b"P");
                    // Parked outside any window until the parent says go (or kills us).
                    let _ = go_rx.lock().unwrap().recv();
                }
                let mut ops = 0u32;
                while !stop.load(Ordering::SeqCst) {
                    match rng.u32(..8) {
                        0..=3 if holds.len() < 2 => {
                            if let Ok(r) = picker.select() {
                                let a = take(&r);
                                holds.push((a, r));
                            }
                        }
                        7 => {
                            let _ = pool.set_down(&addr(rng.usize(..ADDRS)), rng.u32(..4) == 0);
                        }
                        _ if !holds.is_empty() => {
                            let (a, r) = holds.swap_remove(rng.usize(..holds.len()));
                            give(a);
                            let outcome = if rng.u32(..4) == 0 { Outcome::Failure } else { Outcome::Success };
                            picker.release(r, outcome);
                        }
                        _ => {}
                    }
                    ops += 1;
                    if ops % 8 == 0 && !write_all(prog, b"p") {
                        break;
                    }
                }
                for (a, r) in holds {
                    give(a);
                    picker.release(r, Outcome::Success);
                }
            })
        })
        .collect();
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut buf = [0u8; 1];
    let mut code = 0;
    loop {
        if read_some(cmd, &mut buf) == 0 {
            break;
        }
        match buf[0] {
            b'g' => {
                let _ = go_tx.send(());
                let _ = go_tx.send(());
            }
            b'r' => {
                *list.lock().unwrap() = subset(&mut rng);
                if pool.refresh().is_err() {
                    code |= 1;
                }
                write_all(prog, b"R");
            }
            _ => break,
        }
    }
    stop.store(true, Ordering::SeqCst);
    drop(go_tx);
    for t in threads {
        if t.join().is_err() {
            code |= 2;
        }
    }
    code
}

struct Kid {
    pid: i32,
    cmd: i32,
    prog: i32,
}

/// Forks child `me` (the caller is single-threaded); `others` are descriptors the child closes.
fn spawn(zone: &Zone, me: usize, seed: u64, held_phase: bool, others: &[i32]) -> Kid {
    let (cmd, prog) = (pipe(), pipe());
    // SAFETY: the parent is single-threaded here; the child runs `child` and leaves by
    // `_exit`, never returning into the parent's code.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        others.iter().copied().for_each(close);
        close(cmd[1]);
        close(prog[0]);
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            child(zone, me, seed, held_phase, cmd[0], prog[1])
        }))
        .unwrap_or(101);
        // SAFETY: ends the child without the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    close(cmd[0]);
    close(prog[1]);
    Kid { pid, cmd: cmd[1], prog: prog[0] }
}

fn kill_and_reap(kid: &Kid) {
    // SAFETY: our unreaped child.
    assert_eq!(unsafe { libc::kill(kid.pid, libc::SIGKILL) }, 0);
    let mut status = 0;
    // SAFETY: as above; `status` is writable.
    assert_eq!(unsafe { libc::waitpid(kid.pid, &mut status, 0) }, kid.pid);
    assert!(libc::WIFSIGNALED(status), "status {status:#x}");
    close(kid.cmd);
    close(kid.prog);
}

/// Takes a dead child's counts off the counters (before anything can sweep it).
fn forget_row(me: usize) {
    let c = counters_ref();
    for a in 0..ADDRS {
        let n = c.rows[me][a].swap(0, Ordering::SeqCst);
        c.held[a].fetch_sub(n, Ordering::SeqCst);
    }
}

static COUNTERS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();

fn counters_ref() -> &'static Counters {
    // SAFETY: the address of the mapping made once in `main`, never unmapped.
    unsafe { &*(*COUNTERS.get().expect("mapped in main") as *const Counters) }
}

fn fds(kids: &[Kid]) -> Vec<i32> {
    kids.iter().flat_map(|k| [k.cmd, k.prog]).collect()
}

fn run() {
    let kills: u32 = std::env::var("LEASTCONN_ZONE_STRESS_KILLS").ok().and_then(|s| s.parse().ok()).unwrap_or(8);
    let c = counters_ref();
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    let zone = Zone::anonymous(&CAPS).unwrap();
    let parent_list = Arc::new(Mutex::new((0..ADDRS).collect::<Vec<_>>()));
    let app = zone_pool(&zone, Arc::clone(&parent_list));

    // Phase 1: held kill, exact.
    let mut kids: Vec<Kid> = Vec::new();
    for me in 0..K {
        let others = fds(&kids);
        kids.push(spawn(&zone, me, rng.u64(..), true, &others));
    }
    let mut holds = [[0u64; ADDRS]; K];
    for (me, kid) in kids.iter().enumerate() {
        let mut parked = 0;
        let mut buf = [0u8; 1];
        while parked < 2 {
            assert_eq!(read_some(kid.prog, &mut buf), 1, "child {me} ended in phase 1");
            match buf[0] {
                b'P' => parked += 1,
                a => holds[me][a as usize] += 1,
            }
        }
    }
    let victim = rng.usize(..K);
    kill_and_reap(&kids[victim]);
    forget_row(victim);
    let report = zone.sweep().unwrap();
    let dead: u64 = holds[victim].iter().sum();
    assert_eq!((report.processes, report.recovered, report.in_doubt), (1, dead, 0), "phase 1 sweep");
    for a in 0..ADDRS {
        let survivors: u64 = holds.iter().enumerate().filter(|&(k, _)| k != victim).map(|(_, h)| h[a]).sum();
        assert_eq!(u64::from(app.host_stats(&addr(a)).unwrap().in_flight), survivors, "phase 1, {}", addr(a));
    }
    let others: Vec<i32> =
        kids.iter().enumerate().filter(|(k, _)| *k != victim).flat_map(|(_, k)| [k.cmd, k.prog]).collect();
    kids[victim] = spawn(&zone, victim, rng.u64(..), false, &others);
    for (me, kid) in kids.iter().enumerate() {
        if me != victim {
            assert!(write_all(kid.cmd, b"g"));
        }
    }

    // Phase 2: kill a seeded victim each time N progress records came from it.
    let mut progress = [0u32; K];
    // A child that reported progress has built its pool: its registration sweep is done, so
    // nothing but the parent's own steps can sweep a child killed from then on.
    let mut started = [false; K];
    let mut refreshing = [false; K];
    let mut total = 0u32;
    let mut victim = rng.usize(..K);
    let mut done = 0;
    let mut buf = [0u8; 256];
    while done < kills {
        let mut polls: Vec<libc::pollfd> =
            kids.iter().map(|k| libc::pollfd { fd: k.prog, events: libc::POLLIN, revents: 0 }).collect();
        // SAFETY: `polls` is a live array of pollfds; no timeout (blocks until an event).
        assert!(unsafe { libc::poll(polls.as_mut_ptr(), K as libc::nfds_t, -1) } > 0);
        for (k, p) in polls.iter().enumerate() {
            if p.revents == 0 {
                continue;
            }
            let n = read_some(kids[k].prog, &mut buf);
            assert!(n > 0, "child {k} ended in phase 2");
            for &b in &buf[..n] {
                match b {
                    b'p' => {
                        progress[k] += 1;
                        started[k] = true;
                        total += 1;
                    }
                    b'R' => refreshing[k] = false,
                    other => panic!("unexpected record {other}"),
                }
            }
        }
        if total >= 16 {
            total = 0;
            let j = rng.usize(..K);
            if !refreshing[j] {
                refreshing[j] = true;
                assert!(write_all(kids[j].cmd, b"r"));
            }
        }
        if progress[victim] >= N && started.iter().all(|&s| s) && !refreshing.iter().any(|&r| r) {
            kill_and_reap(&kids[victim]);
            forget_row(victim);
            let others: Vec<i32> =
                kids.iter().enumerate().filter(|(k, _)| *k != victim).flat_map(|(_, k)| [k.cmd, k.prog]).collect();
            kids[victim] = spawn(&zone, victim, rng.u64(..), false, &others);
            progress = [0; K];
            started[victim] = false;
            done += 1;
            victim = rng.usize(..K);
        }
    }

    // End: survivors release and exit.
    for kid in &kids {
        assert!(write_all(kid.cmd, b"q"));
    }
    for (k, kid) in kids.iter().enumerate() {
        while read_some(kid.prog, &mut buf) > 0 {}
        let mut status = 0;
        // SAFETY: our unreaped child; `status` is writable.
        assert_eq!(unsafe { libc::waitpid(kid.pid, &mut status, 0) }, kid.pid);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "child {k}: status {status:#x}");
        close(kid.cmd);
        close(kid.prog);
    }
    assert_eq!(c.over.load(Ordering::SeqCst), 0, "max_requests exceeded");
    for a in 0..ADDRS {
        assert_eq!(c.held[a].load(Ordering::SeqCst), 0, "test counter of {}", addr(a));
    }
    // Doubt left by kills inside a window (not reconciled yet if the zone was never quiet at
    // a sweep since): at most one unit per thread of each killed child.
    let doubt: u64 = zone.census().doubt.iter().map(|&(_, d)| d & 0xffff_ffff).sum();
    assert!(doubt <= 2 * u64::from(kills + 1), "doubt {doubt} after {} kills", kills + 1);
    *parent_list.lock().unwrap() = subset(&mut rng);
    app.refresh().unwrap();
    let report = zone.sweep().unwrap();
    assert!(report.in_doubt <= 2 * u64::from(kills + 1), "doubt {report:?}");
    assert_eq!(zone.sweep().unwrap(), leastconn::SweepReport::default(), "nothing left to sweep");
    // Every slot's in-flight count 0, no doubt, the LIVE slots exactly the parent's final
    // list (one lister each), no process record but the parent's.
    let census = zone.census();
    assert_eq!((census.in_flight.len(), census.doubt.len()), (0, 0), "{census:?}");
    let me = std::process::id();
    assert_eq!(census.processes.iter().map(|p| p.1).collect::<Vec<_>>(), vec![me], "{census:?}");
    let want = parent_list.lock().unwrap().clone();
    assert_eq!(census.live.len(), want.len(), "{census:?} vs {want:?}");
    for &a in &want {
        let found = census.live.iter().filter(|&&(s, _)| zone.slot_is(s, "app", &addr(a))).collect::<Vec<_>>();
        assert_eq!(found.len(), 1, "{} in {census:?}", addr(a));
        assert_eq!(found[0].1, 1, "listers of {}", addr(a));
    }
    // Every address's in-flight count is 0 through a pool's stats too.
    let all = zone_pool(&zone, Arc::new(Mutex::new((0..ADDRS).collect())));
    for a in 0..ADDRS {
        assert_eq!(all.host_stats(&addr(a)).unwrap().in_flight, 0, "in flight on {}", addr(a));
    }
    drop(all);
    // No process record but ours: K + 1 fresh processes register at once (capacity K + 2).
    let (gate, done_pipe) = (pipe(), pipe());
    let pids: Vec<i32> = (0..=K)
        .map(|_| {
            // SAFETY: single-threaded parent; the child leaves by `_exit`.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0);
            if pid == 0 {
                close(gate[1]);
                let ok =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| zone.sweep().is_ok())).unwrap_or(false);
                write_all(done_pipe[1], b"d");
                let mut b = [0u8; 1];
                read_some(gate[0], &mut b);
                // SAFETY: ends the child.
                unsafe { libc::_exit(i32::from(!ok)) };
            }
            pid
        })
        .collect();
    let mut b = [0u8; 1];
    for _ in 0..=K {
        assert_eq!(read_some(done_pipe[0], &mut b), 1);
    }
    close(gate[1]);
    for pid in pids {
        let mut status = 0;
        // SAFETY: our child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "fresh registration failed");
    }
    println!("zone_stress: ok ({kills} kills in phase 2)");
}

pub(crate) fn main() {
    if cfg!(miri) {
        println!("zone_stress: skipped (needs fork)");
        return;
    }
    // Watchdog: a hung run fails (SIGALRM ends the process) after 5 minutes.
    // SAFETY: alarm only schedules a signal.
    unsafe { libc::alarm(300) };
    let c = counters();
    COUNTERS.set(c as *const Counters as usize).unwrap();
    run();
}
