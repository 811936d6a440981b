use std::ptr::NonNull;

use super::*;
use crate::error::ErrorKind;
use crate::zone::liveness::{Oracle, System};
use crate::zone::{Zone, ZoneCapacity, ZoneInit};

/// 3 process records, 4 thread records, 70 slots (a bitmap of two words).
const CAPS: ZoneCapacity = ZoneCapacity { hosts: 70, address_bytes: 16, fail_ring: 1, processes: 3, threads: 4 };

/// A zone on 8-aligned heap memory (runs under Miri).
struct Fixture {
    zone: Zone,
    _mem: Vec<u64>,
}

impl Fixture {
    fn new(caps: ZoneCapacity) -> Self {
        let len = Zone::size_for(&caps).unwrap();
        let mut mem = vec![0u64; len / 8];
        let ptr = NonNull::new(mem.as_mut_ptr().cast::<u8>()).unwrap();
        // SAFETY: `mem` lives in the fixture as long as the zone and is only touched through it.
        let zone = unsafe { Zone::from_memory(ptr, len, ZoneInit::Create(caps)) }.unwrap();
        Fixture { zone, _mem: mem }
    }

    /// A zone in anonymous shared memory, which forked children share.
    fn anonymous(caps: ZoneCapacity) -> Self {
        Fixture { zone: Zone::anonymous(&caps).unwrap(), _mem: Vec::new() }
    }

    fn words(&self) -> &[AtomicU64] {
        self.zone.0.backing.words()
    }

    fn layout(&self) -> &Layout {
        &self.zone.0.layout
    }

    fn register(&self, pid: u32, starttime: u64) -> Result<Registration, Error> {
        register(self.words(), self.layout(), pid, starttime)
    }

    fn state(&self, index: u32) -> ProcState {
        process_state(self.words(), self.layout(), index).unwrap()
    }

    fn owners(&self) -> Vec<u64> {
        (0..self.layout().caps.threads).map(|t| thread_owner(self.words(), self.layout(), t)).collect()
    }

    fn row(&self, record: u32) -> &[AtomicU64] {
        attribution_row(self.words(), self.layout(), record)
    }

    fn change_word(&self, index: u32) -> u64 {
        // SeqCst: a test's probe, the simplest ordering.
        process_word(self.words(), self.layout(), index, pword::CHANGE).load(Ordering::SeqCst)
    }

    fn dead(&self, liveness: &dyn Liveness) -> Vec<(u32, u32, Death)> {
        dead_records(self.words(), self.layout(), liveness).map(|d| (d.index, d.pid, d.death)).collect()
    }
}

fn live(pid: u32, generation: u32) -> ProcState {
    ProcState { kind: ProcKind::Live, pid, sweeper: 0, generation }
}

#[test]
fn word_formats_round_trip_and_zero_is_free() {
    assert_eq!(ProcState::decode(0), Some(ProcState::free(0)));
    let s = ProcState {
        kind: ProcKind::Sweeping,
        pid: PID_LIMIT - 1,
        sweeper: ZoneCapacity::MAX_PROCESSES,
        generation: (1 << 25) - 1,
    };
    assert_eq!(s.encode(), u64::MAX >> 2 & !(1 << 61) | 2 << 61);
    assert_eq!(ProcState::decode(s.encode()), Some(s));
    assert_eq!(ProcState::decode(3 << 61), None);
    assert_eq!(next_gen((1 << 25) - 1), 0);
    assert_eq!(owner::owned(5, 7), 1 << 62 | 5 << 25 | 7);
    assert_eq!(window::open_on(window::encode(9, window::PICK, Some(0))), Some(0));
    assert_eq!(window::open_on(window::encode(9, window::RELEASE, Some(69))), Some(69));
    assert_eq!(window::open_on(window::encode(10, window::IDLE, None)), None);
    assert_eq!(change::busy(3, None), 3 << 32 | 0xffff_ffff);
}

#[test]
fn registrations_are_distinct_and_their_words_exact() {
    let f = Fixture::new(CAPS);
    let a = f.register(100, 1000).unwrap();
    let b = f.register(200, 2000).unwrap();
    assert_eq!((a.index(), a.generation(), a.pid(), a.spare()), (0, 1, 100, 0));
    assert_eq!((b.index(), b.generation(), b.pid(), b.spare()), (1, 1, 200, 1));
    assert_eq!([f.state(0), f.state(1), f.state(2)], [live(100, 1), live(200, 1), ProcState::free(0)]);
    assert_eq!(f.owners(), [owner::owned(0, 1), owner::owned(1, 1), 0, 0]);
    assert_eq!(process_word(f.words(), f.layout(), 1, pword::STARTTIME).load(Ordering::SeqCst), 2000);
}

#[test]
fn registering_until_full_is_zone_full() {
    let f = Fixture::new(CAPS);
    let regs: Vec<_> = (1..=3).map(|pid| f.register(pid, pid.into()).unwrap()).collect();
    let e = f.register(4, 4).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ZoneFull);
    assert_eq!(e.message(), "zone full: all 3 process records are taken");
    assert_eq!(f.owners().iter().filter(|&&o| o != owner::FREE).count(), 3);
    // A freed record is found again.
    deregister(f.words(), f.layout(), &regs[1]).unwrap();
    assert_eq!(f.register(4, 4).unwrap().index(), 1);
}

#[test]
fn registration_without_a_thread_record_for_its_spare_is_zone_full_and_gives_its_record_back() {
    let f = Fixture::new(ZoneCapacity { threads: 1, ..CAPS });
    f.register(1, 1).unwrap();
    let e = f.register(2, 2).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ZoneFull);
    assert_eq!(e.message(), "zone full: all 1 thread records are taken");
    assert_eq!(f.state(1), ProcState::free(2));
    assert_eq!(process_word(f.words(), f.layout(), 1, pword::STARTTIME).load(Ordering::SeqCst), 0);
}

#[test]
fn a_registrant_clears_what_a_sweep_left_in_its_record() {
    let f = Fixture::new(CAPS);
    for (w, v) in [(pword::CHANGE, 5 << 32 | 3), (pword::SWEEP_CURSOR, 9), (pword::SWEEP_MARKER + 2, 1)] {
        // SeqCst: test stores standing in for a sweep that stopped half-way and freed the record.
        process_word(f.words(), f.layout(), 0, w).store(v, Ordering::SeqCst);
    }
    let a = f.register(100, 1).unwrap();
    assert_eq!(a.index(), 0);
    for w in pword::CHANGE..pword::BITMAP {
        assert_eq!(process_word(f.words(), f.layout(), 0, w).load(Ordering::SeqCst), 0, "word {w}");
    }
    // So the registrant can open a listing change at once.
    drop(begin_listing_change(f.words(), f.layout(), &a, Some(0)).unwrap());
}

#[test]
fn invalid_pids_are_refused() {
    let f = Fixture::new(CAPS);
    for pid in [0, PID_LIMIT, u32::MAX] {
        assert_eq!(f.register(pid, 1).unwrap_err().kind(), ErrorKind::InvalidArgument, "pid {pid}");
    }
    assert_eq!(f.state(0), ProcState::free(0));
}

#[test]
fn deregister_frees_every_record_and_the_next_registration_bumps_the_generation() {
    let f = Fixture::new(CAPS);
    let a = f.register(100, 1000).unwrap();
    let t = claim_thread_record(f.words(), f.layout(), &a).unwrap();
    assert_eq!(t, 1);
    deregister(f.words(), f.layout(), &a).unwrap();
    assert_eq!(f.state(0), ProcState::free(2));
    assert_eq!(f.owners(), [0; 4]);
    let again = deregister(f.words(), f.layout(), &a).unwrap_err();
    assert_eq!(again.kind(), ErrorKind::InvalidArgument);
    assert!(again.message().starts_with("process record 0 is no longer this registration's"), "{again}");
    let b = f.register(300, 3000).unwrap();
    assert_eq!((b.index(), b.generation(), b.spare()), (0, 3, 0));
    assert_eq!(f.state(0), live(300, 3));
    // The old registration owns nothing any more.
    assert_eq!(claim_thread_record(f.words(), f.layout(), &a).unwrap_err().kind(), ErrorKind::InvalidArgument);
}

#[test]
fn thread_records_are_claimed_once_each() {
    let f = Fixture::new(CAPS);
    let a = f.register(100, 1).unwrap();
    let b = f.register(200, 2).unwrap();
    let claim = |reg| claim_thread_record(f.words(), f.layout(), reg);
    assert_eq!((claim(&a).unwrap(), claim(&b).unwrap()), (2, 3));
    assert_eq!(f.owners(), [owner::owned(0, 1), owner::owned(1, 1), owner::owned(0, 1), owner::owned(1, 1)]);
    let e = claim(&a).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ZoneFull);
    assert_eq!(e.message(), "zone full: all 4 thread records are taken");
    // Only the owner frees a record; then it is claimable again, by anyone.
    let release = |reg, t| release_thread_record(f.words(), f.layout(), reg, t);
    let e = release(&a, 3).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert_eq!(e.message(), "thread record 3 is not owned by process record 0 generation 1");
    assert_eq!(release(&a, 4).unwrap_err().message(), "thread record 4 is outside 0..4");
    assert_eq!(release(&b, 3), Ok(true));
    assert_eq!(claim(&a).unwrap(), 3);
    assert_eq!(f.owners()[3], owner::owned(0, 1));
}

#[test]
fn a_thread_record_that_still_attributes_reservations_is_kept() {
    let f = Fixture::new(CAPS);
    let a = f.register(100, 1).unwrap();
    let t = claim_thread_record(f.words(), f.layout(), &a).unwrap();
    // SeqCst: test stores standing in for the hot path's.
    f.row(t)[69].store(1, Ordering::SeqCst);
    assert_eq!(release_thread_record(f.words(), f.layout(), &a, t), Ok(false));
    assert_eq!(f.owners()[t as usize], a.owner());
    let e = deregister(f.words(), f.layout(), &a).unwrap_err();
    assert_eq!(e.message(), "thread record 1 still attributes reservations on slot 69");
    f.row(t)[69].store(0, Ordering::SeqCst);
    let w = thread_word(f.words(), f.layout(), t, WINDOW);
    w.store(window::encode(7, window::RELEASE, Some(5)), Ordering::SeqCst);
    let e = release_thread_record(f.words(), f.layout(), &a, t).unwrap_err();
    assert_eq!(e.message(), "thread record 1 is inside a window on slot 5");
    w.store(window::encode(8, window::IDLE, None), Ordering::SeqCst);
    assert_eq!(release_thread_record(f.words(), f.layout(), &a, t), Ok(true));
    assert_eq!(w.load(Ordering::SeqCst), 0);
    assert_eq!(f.state(0), live(100, 1), "refusals changed nothing");
}

#[test]
fn listing_changes_set_bits_inside_a_bracket_and_refuse_a_second_one() {
    let f = Fixture::new(CAPS);
    let a = f.register(100, 1).unwrap();
    let begin = |slot| begin_listing_change(f.words(), f.layout(), &a, slot);
    {
        let attach = begin(None).unwrap();
        assert_eq!(f.change_word(0), 1 << 32 | 0xffff_ffff, "busy, slot not known yet");
        let e = begin(Some(3)).unwrap_err();
        assert_eq!(e.message(), "process record 0 already has a listing change open");
        assert_eq!(attach.list(65), Ok(true));
        assert_eq!(f.change_word(0), 1 << 32 | 66);
        assert_eq!(attach.list(65), Ok(false));
        assert_eq!(attach.list(70).unwrap_err().message(), "slot 70 is outside 0..70");
    }
    assert_eq!(f.change_word(0), 2 << 32, "idle, seq moved on");
    assert!(is_listed(f.words(), f.layout(), 0, 65));
    assert!(!is_listed(f.words(), f.layout(), 0, 1));
    let e = deregister(f.words(), f.layout(), &a).unwrap_err();
    assert_eq!(e.message(), "process record 0 still lists slot 65");
    {
        let detach = begin(Some(65)).unwrap();
        assert_eq!(f.change_word(0), 3 << 32 | 66);
        let e = deregister(f.words(), f.layout(), &a).unwrap_err();
        assert_eq!(e.message(), "process record 0 is inside a listing change");
        assert_eq!(detach.unlist(65), Ok(true));
        assert_eq!(detach.unlist(65), Ok(false));
    }
    assert_eq!(f.change_word(0), 4 << 32);
    assert!(!is_listed(f.words(), f.layout(), 0, 65));
    deregister(f.words(), f.layout(), &a).unwrap();
}

#[test]
fn dead_records_are_the_live_records_the_oracle_finds_dead() {
    let f = Fixture::new(CAPS);
    let oracle = Oracle::with(&[(100, 1000), (200, 2000), (300, 3000)]);
    let regs = [f.register(100, 1000).unwrap(), f.register(200, 2000).unwrap(), f.register(300, 9999).unwrap()];
    // 300 registered with a starttime its pid does not have: a reused pid.
    assert_eq!(f.dead(&oracle), [(2, 300, Death::Reused { recorded: 9999, found: 3000 })]);
    oracle.kill(200);
    assert_eq!(f.dead(&oracle), [(1, 200, Death::NoProcess), (2, 300, Death::Reused { recorded: 9999, found: 3000 })]);
    // A record whose starttime is not written yet is judged by its pid alone.
    process_word(f.words(), f.layout(), 2, pword::STARTTIME).store(0, Ordering::SeqCst);
    assert_eq!(f.dead(&oracle), [(1, 200, Death::NoProcess)]);
    // Free and swept records are not candidates.
    deregister(f.words(), f.layout(), &regs[0]).unwrap();
    oracle.kill(100);
    let dead = dead_records(f.words(), f.layout(), &oracle).next().unwrap();
    assert!(claim_for_sweep(f.words(), f.layout(), &dead, &regs[2]));
    assert_eq!(f.dead(&oracle), []);
}

#[test]
fn claim_for_sweep_has_one_winner() {
    let f = Fixture::new(CAPS);
    let oracle = Oracle::with(&[(100, 1), (200, 2)]);
    let sweepers = [f.register(100, 1).unwrap(), f.register(200, 2).unwrap()];
    f.register(300, 3).unwrap();
    let dead: Vec<DeadRecord> = dead_records(f.words(), f.layout(), &oracle).collect();
    assert_eq!(dead.len(), 1);
    let dead = dead[0];
    assert_eq!((dead.index, dead.pid, dead.generation, dead.starttime), (2, 300, 1, 3));
    let f = &f;
    let won: Vec<bool> = std::thread::scope(|s| {
        let claims: Vec<_> =
            sweepers.iter().map(|me| s.spawn(move || claim_for_sweep(f.words(), f.layout(), &dead, me))).collect();
        claims.into_iter().map(|c| c.join().unwrap()).collect()
    });
    assert_eq!(won.iter().filter(|&&w| w).count(), 1, "{won:?}");
    let winner = won.iter().position(|&w| w).unwrap() as u32;
    assert_eq!(f.state(2), ProcState { kind: ProcKind::Sweeping, pid: 300, sweeper: winner, generation: 1 });
    // A stale observation never claims again.
    assert!(!claim_for_sweep(f.words(), f.layout(), &dead, &sweepers[0]));
}

/// A child process, killed and reaped on drop unless the test reaped it (so a failed
/// assertion leaves no child waiting, and no reaped pid, maybe reused, is ever signalled).
struct Child(Option<libc::pid_t>);

impl Child {
    /// Waits for the child to end and returns its wait status.
    fn reap(&mut self) -> i32 {
        let pid = self.0.take().expect("reaped once");
        let mut status = 0;
        // SAFETY: `pid` is our unreaped child; `status` is writable.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        status
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            // SAFETY: `pid` is our child, not reaped yet, so no other process has its pid.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
    }
}

/// A forked child that registers with its own pid and starttime and then waits to be killed;
/// returns its pid and the record index it registered in.
fn registered_child(f: &Fixture, parent: &Registration) -> (libc::pid_t, u32) {
    let mut pipe = [0; 2];
    // SAFETY: `pipe` is a writable pair of descriptors.
    assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0);
    // SAFETY: the child runs only the block below (glibc's fork resets the allocator's locks
    // in the child) and never returns into the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // The parent's registration is not the child's: it registers anew.
        let answer = match (parent.is_current(), crate::zone::liveness::self_starttime()) {
            (false, Some(start)) => {
                register(f.words(), f.layout(), std::process::id(), start).map_or(u32::MAX, |r| r.index())
            }
            _ => u32::MAX - 1,
        };
        // SAFETY: writes the 4 bytes of a live local; then waits for SIGKILL without
        // returning into the harness.
        unsafe {
            libc::write(pipe[1], (&answer as *const u32).cast(), 4);
            loop {
                libc::pause();
            }
        }
    }
    let mut index = 0u32;
    // SAFETY: reads 4 bytes into a live local; the descriptors are ours, closed once.
    unsafe {
        assert_eq!(libc::read(pipe[0], (&mut index as *mut u32).cast(), 4), 4);
        libc::close(pipe[0]);
        libc::close(pipe[1]);
    }
    (pid, index)
}

#[test]
#[cfg_attr(miri, ignore = "fork, kill(2) and /proc are not available under Miri")]
fn a_sigkilled_child_is_found_dead_as_a_zombie_and_after_it_is_reaped() {
    let f = Fixture::anonymous(CAPS);
    let me = f.register(std::process::id(), crate::zone::liveness::self_starttime().unwrap()).unwrap();
    assert!(me.is_current());
    let (child, index) = registered_child(&f, &me);
    let mut guard = Child(Some(child));
    assert_eq!(index, 1, "the child registered anew, in the next record");
    assert_eq!(f.state(1).pid, child as u32);
    assert_eq!(f.dead(&System), [], "both alive");
    // SAFETY: `child` is our child process.
    assert_eq!(unsafe { libc::kill(child, libc::SIGKILL) }, 0);
    // The kill is asynchronous: wait (without reaping) until the child has exited.
    // SAFETY: siginfo_t is plain data, for which all zeroes is a valid value.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is writable; WNOWAIT leaves the child a zombie.
    assert_eq!(unsafe { libc::waitid(libc::P_PID, child as libc::id_t, &mut info, libc::WEXITED | libc::WNOWAIT) }, 0);
    assert_eq!(f.dead(&System), [(1, child as u32, Death::Zombie)]);
    let status = guard.reap();
    assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL, "{status:#x}");
    assert_eq!(f.dead(&System), [(1, child as u32, Death::NoProcess)]);
    let dead = dead_records(f.words(), f.layout(), &System).next().unwrap();
    assert!(claim_for_sweep(f.words(), f.layout(), &dead, &me));
}

#[test]
#[cfg_attr(miri, ignore = "kill(2) and /proc are not available under Miri")]
fn a_live_pid_with_another_starttime_is_judged_dead() {
    let f = Fixture::new(CAPS);
    let pid = std::process::id();
    let start = crate::zone::liveness::starttime_of(pid).unwrap();
    f.register(pid, start).unwrap();
    f.register(pid, start + 1).unwrap();
    assert_eq!(f.dead(&System), [(1, pid, Death::Reused { recorded: start + 1, found: start })]);
}
