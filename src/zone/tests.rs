use std::ptr::NonNull;
use std::time::Duration;

use super::layout::{self, HEADER_WORDS, READY, initialising, word};
use super::liveness;
use super::memory::{self, ZoneInit};
use super::{Zone, ZoneCapacity};
use crate::error::ErrorKind;
use crate::sync::Ordering;

/// Small capacities: a zone of a few KiB, quick to initialise under Miri.
const SMALL: ZoneCapacity = ZoneCapacity { hosts: 8, address_bytes: 64, fail_ring: 2, processes: 3, threads: 4 };

/// SMALL's size in words.
const SMALL_WORDS: usize = 32 + 8 * 32 + 3 * 16 + 4 * 16 + 4 * 16;

/// 8-aligned caller memory, as nginx's slab allocator hands out.
fn buffer(bytes: usize) -> Vec<u64> {
    vec![0; bytes.div_ceil(8)]
}

fn from_buffer(buf: &mut Vec<u64>, init: ZoneInit) -> Result<Zone, crate::Error> {
    from_prefix(buf, buf.len(), init)
}

/// A zone on the first `words` words of `buf`.
fn from_prefix(buf: &mut Vec<u64>, words: usize, init: ZoneInit) -> Result<Zone, crate::Error> {
    from_prefix_bytes(buf, words * 8, init)
}

/// A zone on the first `len` bytes of `buf`.
fn from_prefix_bytes(buf: &mut Vec<u64>, len: usize, init: ZoneInit) -> Result<Zone, crate::Error> {
    from_buffer_with(buf, len, init, &|_| panic!("no initialiser to judge"), Duration::ZERO)
}

/// A zone on the first `len` bytes of `buf`.
fn from_buffer_with(
    buf: &mut Vec<u64>,
    len: usize,
    init: ZoneInit,
    alive: &dyn Fn(u32) -> bool,
    patience: Duration,
) -> Result<Zone, crate::Error> {
    assert!(len <= buf.len() * 8);
    // `Vec::as_mut_ptr` makes no reference to the elements, so earlier zones on `buf` stay
    // valid (a `&mut [u64]` here would invalidate their pointers under Stacked Borrows).
    let mem = NonNull::new(buf.as_mut_ptr().cast::<u8>()).unwrap();
    // SAFETY: `buf` outlives every zone a test makes from it, and the tests touch it only
    // through zones (atomics) until those are dropped.
    unsafe { memory::borrowed(mem, len, init, alive, patience) }.map(Zone::new)
}

fn word_of(zone: &Zone, i: usize) -> u64 {
    // SeqCst: a test's probe, the simplest ordering; nothing here measures performance.
    zone.0.backing.words()[i].load(Ordering::SeqCst)
}

fn set_word(zone: &Zone, i: usize, v: u64) {
    // SeqCst: as in `word_of`.
    zone.0.backing.words()[i].store(v, Ordering::SeqCst)
}

#[test]
fn size_follows_the_design_formula_and_regions_are_128_byte_aligned() {
    let caps = ZoneCapacity { hosts: 1024, address_bytes: 256, fail_ring: 16, processes: 64, threads: 128 };
    // 256 + 1024 slots x 80 words + 64 processes x 32 words + 128 x 16 + 128 x 1024 words.
    assert_eq!(Zone::size_for(&caps).unwrap(), 256 + 655_360 + 16_384 + 16_384 + 1_048_576);
    let l = layout::Layout::new(&caps).unwrap();
    assert_eq!((l.slot_stride, l.process_stride), (80, 32));
    assert_eq!([l.slots, l.processes, l.threads, l.matrix], [32, 32 + 1024 * 80, 81_952 + 64 * 32, 84_000 + 128 * 16]);
    for off in [l.slot_stride, l.slots, l.process_stride, l.processes, l.threads, l.matrix, l.total_words] {
        assert_eq!(off % 16, 0, "{off}");
    }
    // A key of 6k+1 bytes takes one more key word; 65 hosts one more bitmap word and matrix block.
    let odd = ZoneCapacity { hosts: 65, address_bytes: 61, fail_ring: 1, processes: 1, threads: 1 };
    let l = layout::Layout::new(&odd).unwrap();
    assert_eq!((l.slot_stride, l.process_stride), (32, 16));
    assert_eq!(l.total_words, 32 + 65 * 32 + 16 + 16 + 80);
}

#[test]
fn capacities_out_of_range_are_invalid_limits_naming_the_field() {
    for (caps, field) in [
        (ZoneCapacity { hosts: 0, ..SMALL }, "hosts 0"),
        (ZoneCapacity { hosts: 1 << 30, ..SMALL }, "hosts 1073741824"),
        (ZoneCapacity { address_bytes: 4096, ..SMALL }, "address_bytes 4096"),
        (ZoneCapacity { fail_ring: crate::MAX_FAILS_LIMIT + 1, ..SMALL }, "fail_ring 1025"),
        (ZoneCapacity { processes: 16384, ..SMALL }, "processes 16384"),
        (ZoneCapacity { threads: 0, ..SMALL }, "threads 0"),
    ] {
        let e = Zone::size_for(&caps).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidLimit);
        assert!(e.message().starts_with(&format!("zone capacity {field} is outside 1..=")), "{e}");
    }
    // The documented maxima (layout.rs and the header: processes 1 to 16383, address_bytes
    // 1 to 4095) are the field widths' and accepted.
    assert_eq!((ZoneCapacity::MAX_PROCESSES, ZoneCapacity::MAX_ADDRESS_BYTES), (16383, 4095));
    Zone::size_for(&ZoneCapacity { processes: 16383, address_bytes: 4095, ..SMALL }).unwrap();
    let huge = ZoneCapacity { hosts: (1 << 30) - 1, threads: (1 << 31) - 1, ..SMALL };
    let e = Zone::size_for(&huge).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidLimit);
    assert_eq!(
        e.message(),
        "a zone of hosts 1073741823, address_bytes 64, fail_ring 2, processes 3, threads 2147483647 would not fit in memory"
    );
}

#[test]
fn created_zone_validates_on_attach_with_the_same_header() {
    let mut buf = buffer(Zone::size_for(&SMALL).unwrap());
    buf[HEADER_WORDS + 3] = 0xdead; // junk past the header: creation zeroes it
    let made = from_buffer(&mut buf, ZoneInit::Create(SMALL)).unwrap();
    assert_eq!(made.capacity(), SMALL);
    assert_eq!(made.size(), buf.len() * 8);
    assert_eq!(word_of(&made, word::INIT_STATE), READY);
    assert_eq!(word_of(&made, HEADER_WORDS + 3), 0);
    let attached = from_buffer(&mut buf, ZoneInit::Attach).unwrap();
    assert_eq!(attached.capacity(), SMALL);
    assert_eq!(attached.creation_id(), made.creation_id());
    let both = from_buffer(&mut buf, ZoneInit::CreateOrAttach(SMALL)).unwrap();
    assert_eq!(both.creation_id(), made.creation_id());
}

#[test]
fn memory_larger_than_the_zone_is_fine_and_the_zone_uses_its_own_size() {
    let mut buf = buffer(Zone::size_for(&SMALL).unwrap() + 4096);
    let zone = from_buffer(&mut buf, ZoneInit::Create(SMALL)).unwrap();
    assert_eq!(zone.size(), Zone::size_for(&SMALL).unwrap());
    assert_eq!(from_buffer(&mut buf, ZoneInit::Attach).unwrap().creation_id(), zone.creation_id());
}

/// Makes a zone in `buf`, lets `spoil` change its words, and returns what Attach says.
fn attach_after(spoil: impl FnOnce(&Zone)) -> crate::Error {
    let mut buf = buffer(Zone::size_for(&SMALL).unwrap());
    spoil(&from_buffer(&mut buf, ZoneInit::Create(SMALL)).unwrap());
    from_buffer(&mut buf, ZoneInit::Attach).unwrap_err()
}

#[test]
fn attach_refuses_bad_magic() {
    let e = attach_after(|z| set_word(z, word::MAGIC, u64::from_ne_bytes(*b"NGXSLAB\0")));
    assert_eq!(e.kind(), ErrorKind::ZoneIncompatible);
    assert!(e.message().starts_with("not a leastconn zone: magic [78, 71, 88, 83, 76, 65, 66, 0]"), "{e}");
}

#[test]
fn attach_refuses_another_layout_version() {
    let e = attach_after(|z| set_word(z, word::VERSION, word_of(z, word::VERSION) + 1));
    assert_eq!(e.kind(), ErrorKind::ZoneIncompatible);
    assert_eq!(e.message(), "zone layout version 2, this library reads version 1");
}

#[test]
fn attach_refuses_another_byte_order() {
    let e = attach_after(|z| set_word(z, word::VERSION, word_of(z, word::VERSION).swap_bytes()));
    assert_eq!(e.kind(), ErrorKind::ZoneIncompatible);
    assert!(e.message().starts_with("zone made with another byte order or word width"), "{e}");
}

#[test]
fn attach_refuses_a_zone_whose_initialisation_did_not_finish() {
    let e = attach_after(|z| set_word(z, word::INIT_STATE, initialising(4242)));
    assert_eq!(e.kind(), ErrorKind::ZoneIncompatible);
    assert_eq!(e.message(), "zone not ready: its initialisation by pid 4242 did not finish");
}

#[test]
fn attach_refuses_a_header_inconsistent_with_its_capacities() {
    let e = attach_after(|z| set_word(z, word::OFFSETS + 2, word_of(z, word::OFFSETS + 2) + 16));
    assert_eq!(e.kind(), ErrorKind::ZoneIncompatible);
    assert!(e.message().starts_with("zone header inconsistent"), "{e}");
}

#[test]
fn memory_shorter_than_the_zone_is_too_small() {
    let size = Zone::size_for(&SMALL).unwrap();
    let mut buf = buffer(size - 8);
    for init in [ZoneInit::Create(SMALL), ZoneInit::CreateOrAttach(SMALL)] {
        let e = from_buffer(&mut buf, init).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ZoneTooSmall);
        let want = format!(
            "a zone of hosts 8, address_bytes 64, fail_ring 2, processes 3, threads 4 needs {size} bytes, the memory has {}",
            size - 8
        );
        assert_eq!(e.message(), want);
        // Not a whole number of words: the message says the memory's real length.
        let e = from_prefix_bytes(&mut buf, size - 11, init).unwrap_err();
        assert!(e.message().ends_with(&format!("the memory has {}", size - 11)), "{e}");
    }
    // Attach to a zone whose memory is offered shorter than its header says.
    let mut buf = buffer(size);
    from_buffer(&mut buf, ZoneInit::Create(SMALL)).unwrap();
    let e = from_prefix(&mut buf, size / 8 - 1, ZoneInit::Attach).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ZoneTooSmall);
    assert_eq!(e.message(), format!("zone needs {size} bytes, the memory has {}", size - 8));
    let e = from_prefix_bytes(&mut buf, size - 3, ZoneInit::Attach).unwrap_err();
    assert_eq!(e.message(), format!("zone needs {size} bytes, the memory has {}", size - 3));
    let e = from_prefix(&mut buf, HEADER_WORDS - 1, ZoneInit::Attach).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ZoneTooSmall);
    // Attach to 100 bytes: too short for a header, and the message says 100, not 96.
    let e = from_prefix_bytes(&mut buf, 100, ZoneInit::Attach).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ZoneTooSmall);
    assert_eq!(e.message(), "100 bytes cannot hold a zone header (256 bytes)");
}

#[test]
fn attach_with_other_capacities_names_each_difference() {
    let mut buf = buffer(Zone::size_for(&ZoneCapacity { hosts: 16, ..SMALL }).unwrap());
    from_buffer(&mut buf, ZoneInit::Create(SMALL)).unwrap();
    let asked = ZoneCapacity { hosts: 16, threads: 2, ..SMALL };
    let e = from_buffer(&mut buf, ZoneInit::CreateOrAttach(asked)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ZoneIncompatible);
    assert_eq!(e.message(), "zone capacities differ: hosts 8 in the zone, 16 asked, threads 4 in the zone, 2 asked");
}

#[test]
fn create_refuses_memory_that_already_holds_a_zone() {
    let mut buf = buffer(Zone::size_for(&SMALL).unwrap());
    from_buffer(&mut buf, ZoneInit::Create(SMALL)).unwrap();
    let e = from_buffer(&mut buf, ZoneInit::Create(SMALL)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ZoneIncompatible);
    assert_eq!(e.message(), "memory is not fresh: init state 0x2 (use Attach for an existing zone)");
}

#[test]
fn misaligned_memory_is_an_invalid_argument() {
    let mut buf = buffer(Zone::size_for(&SMALL).unwrap() + 8);
    let mem = NonNull::new(buf.as_mut_ptr().cast::<u8>().wrapping_add(4)).unwrap();
    // SAFETY: refused before any access.
    let e = unsafe { Zone::from_memory(mem, buf.len() * 8 - 4, ZoneInit::Create(SMALL)) }.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
}

/// Memory in which process `pid` began to initialise a zone and stopped half-way.
fn half_initialised(pid: u32) -> Vec<u64> {
    let mut buf = buffer(Zone::size_for(&SMALL).unwrap());
    assert_eq!(buf.len(), SMALL_WORDS);
    buf[word::INIT_STATE] = initialising(pid);
    buf[word::MAGIC] = layout::MAGIC;
    buf[HEADER_WORDS + 5] = 0xdead;
    buf
}

#[test]
fn create_or_attach_takes_over_from_a_dead_initialiser() {
    let mut buf = half_initialised(4242);
    let judged = std::cell::Cell::new(None);
    let alive = |pid| {
        judged.set(Some(pid));
        false
    };
    let zone =
        from_buffer_with(&mut buf, SMALL_WORDS * 8, ZoneInit::CreateOrAttach(SMALL), &alive, Duration::ZERO).unwrap();
    assert_eq!(judged.get(), Some(4242));
    assert_eq!(word_of(&zone, word::INIT_STATE), READY);
    assert_eq!(word_of(&zone, HEADER_WORDS + 5), 0);
    assert_eq!(from_buffer(&mut buf, ZoneInit::Attach).unwrap().capacity(), SMALL);
}

#[test]
#[cfg_attr(miri, ignore = "kill(2) and /proc are not available under Miri's isolation")]
fn create_or_attach_takes_over_from_an_initialiser_pid_that_does_not_exist() {
    // Pids are below pid_max, so this one names no process.
    let pid_max: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max").unwrap().trim().parse().unwrap();
    assert!(!liveness::pid_alive(pid_max));
    assert!(liveness::pid_alive(std::process::id()));
    let mut buf = half_initialised(pid_max);
    let len = buf.len() * 8;
    let mem = NonNull::new(buf.as_mut_ptr().cast::<u8>()).unwrap();
    // SAFETY: `buf` outlives the zone, and is touched only through it meanwhile.
    let zone = unsafe { Zone::from_memory(mem, len, ZoneInit::CreateOrAttach(SMALL)) }.unwrap();
    assert_eq!(word_of(&zone, word::INIT_STATE), READY);
    assert_eq!(word_of(&zone, HEADER_WORDS + 5), 0);
}

#[test]
fn create_or_attach_gives_zone_busy_while_a_live_initialiser_has_not_finished() {
    let mut buf = half_initialised(4242);
    let e = from_buffer_with(&mut buf, SMALL_WORDS * 8, ZoneInit::CreateOrAttach(SMALL), &|_| true, Duration::ZERO)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ZoneBusy);
    assert_eq!(e.message(), "pid 4242 is still initialising the zone after 0ns");
    // Nothing was written: the initialiser's work is left alone.
    assert_eq!((buf[word::INIT_STATE], buf[HEADER_WORDS + 5]), (initialising(4242), 0xdead));
}

/// Runs `child` in a forked child process and returns its exit code (101 if it panicked).
fn in_child(child: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the child runs only `child` (which allocates: glibc's fork resets the allocator's
    // locks in the child) and leaves with `_exit`, never returning into the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(101);
        // SAFETY: ends the child without running the parent's atexit handlers or destructors.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: `pid` is our child; `status` is writable.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "child ended by signal: status {status:#x}");
    libc::WEXITSTATUS(status)
}

#[test]
#[cfg_attr(miri, ignore = "memfd, mmap and fork are not available under Miri")]
fn anonymous_zone_is_shared_with_a_forked_child() {
    let zone = Zone::anonymous(&SMALL).unwrap();
    let slot = zone.0.layout.slots as usize;
    set_word(&zone, slot + 1, 7);
    let id = zone.creation_id();
    let code = in_child(|| {
        // The child sees the parent's zone, and what it writes the parent sees.
        let seen = (zone.creation_id() == id && word_of(&zone, slot + 1) == 7) as i32;
        set_word(&zone, slot, 0xc0ffee);
        seen
    });
    assert_eq!(code, 1);
    // waitpid: the child's stores came before its exit.
    assert_eq!(word_of(&zone, slot), 0xc0ffee);
}

/// A fresh directory for zone files, removed at the end.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("leastconn-zone-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        TempDir(dir)
    }

    fn entries(&self) -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(&self.0).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
#[cfg_attr(miri, ignore = "files and mmap are not available under Miri's isolation")]
fn open_creates_a_file_zone_and_a_second_open_attaches_to_it() {
    let dir = TempDir::new("open");
    let path = dir.0.join("app.zone");
    let made = Zone::open(&path, &SMALL).unwrap();
    let again = Zone::open(&path, &SMALL).unwrap();
    assert_eq!(again.creation_id(), made.creation_id());
    set_word(&made, made.0.layout.slots as usize, 99);
    assert_eq!(word_of(&again, again.0.layout.slots as usize), 99);
    assert_eq!(dir.entries(), ["app.zone"]);
    assert_eq!(std::fs::metadata(&path).unwrap().len() as usize, Zone::size_for(&SMALL).unwrap());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
}

#[test]
#[cfg_attr(miri, ignore = "files and mmap are not available under Miri's isolation")]
fn open_refuses_files_that_are_not_zones_of_these_capacities() {
    let dir = TempDir::new("refuse");
    let path = dir.0.join("app.zone");
    drop(Zone::open(&path, &SMALL).unwrap());
    let e = Zone::open(&path, &ZoneCapacity { processes: 5, ..SMALL }).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ZoneIncompatible);
    assert_eq!(
        e.message(),
        format!("zone file {}: zone capacities differ: processes 3 in the zone, 5 asked", path.display())
    );

    let other = Zone::open(&path, &SMALL).unwrap();
    set_word(&other, word::BOOT_ID, word_of(&other, word::BOOT_ID) ^ 1);
    drop(other);
    let e = Zone::open(&path, &SMALL).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ZoneIncompatible);
    assert!(e.message().contains("zone made during another boot"), "{e}");

    let short = dir.0.join("short.zone");
    std::fs::write(&short, [0u8; 100]).unwrap();
    let e = Zone::open(&short, &SMALL).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ZoneTooSmall);
    let text = dir.0.join("text.zone");
    std::fs::write(&text, vec![b'x'; 4096]).unwrap();
    let e = Zone::open(&text, &SMALL).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ZoneIncompatible);
    assert!(e.message().contains("not a leastconn zone"), "{e}");
}

#[test]
#[cfg_attr(miri, ignore = "files, mmap and fork are not available under Miri")]
fn two_processes_creating_one_path_at_once_share_one_zone() {
    let dir = TempDir::new("race");
    for round in 0..32 {
        let path = dir.0.join(format!("z{round:02}.zone"));
        let mut go = [0; 2];
        let mut report = [0; 2];
        // SAFETY: both arrays are writable pairs of descriptors.
        assert_eq!(unsafe { libc::pipe(go.as_mut_ptr()) }, 0);
        // SAFETY: as above.
        assert_eq!(unsafe { libc::pipe(report.as_mut_ptr()) }, 0);
        let child_path = path.clone();
        let child = std::thread::scope(|s| {
            // The parent's open runs on a thread of its own that starts when the child is
            // released, so both creations race.
            let parent = s.spawn(|| {
                let mut byte = 0u8;
                // SAFETY: reads one byte into `byte`; blocks until the child has forked.
                assert_eq!(unsafe { libc::read(report[0], (&mut byte as *mut u8).cast(), 1) }, 1);
                // SAFETY: writes one byte from a live local.
                assert_eq!(unsafe { libc::write(go[1], (&byte as *const u8).cast(), 1) }, 1);
                Zone::open(&path, &SMALL).unwrap().creation_id()
            });
            let code = in_child(|| {
                let mut byte = 1u8;
                // SAFETY: one byte from and into live locals; the pipes are the parent's.
                unsafe {
                    libc::write(report[1], (&byte as *const u8).cast(), 1);
                    libc::read(go[0], (&mut byte as *mut u8).cast(), 1);
                }
                let id = Zone::open(&child_path, &SMALL).unwrap().creation_id();
                // SAFETY: writes the 8 bytes of a live local.
                unsafe { libc::write(report[1], (&id as *const u64).cast(), 8) };
                0
            });
            (code, parent.join().unwrap())
        });
        let mut id = 0u64;
        // SAFETY: reads 8 bytes into a live local; the child wrote them before exiting.
        assert_eq!(unsafe { libc::read(report[0], (&mut id as *mut u64).cast(), 8) }, 8);
        for fd in go.into_iter().chain(report) {
            // SAFETY: our descriptors, closed once.
            unsafe { libc::close(fd) };
        }
        assert_eq!(child.0, 0, "round {round}");
        assert_eq!(id, child.1, "round {round}: both processes use the same zone");
    }
    let names: Vec<String> = (0..32).map(|r| format!("z{r:02}.zone")).collect();
    assert_eq!(dir.entries(), names, "one file per path, no temporary left");
}

#[test]
fn capacity_fit_gives_the_most_hosts_that_fit_and_ignores_the_hosts_asked() {
    let size = |hosts| Zone::size_for(&ZoneCapacity { hosts, ..SMALL }).unwrap();
    for hosts in [1, 2, 63, 64, 65, 1000] {
        let asked = ZoneCapacity { hosts: 0, ..SMALL };
        assert_eq!(Zone::capacity_fit(size(hosts), &asked).unwrap(), ZoneCapacity { hosts, ..SMALL });
        assert_eq!(Zone::capacity_fit(size(hosts + 1) - 1, &SMALL).unwrap().hosts, hosts);
    }
    // The design's sizing example: nginx's `zone app 1m` with 32 threads, 64-byte keys, ring 2.
    let nginx = ZoneCapacity { hosts: 7, address_bytes: 64, fail_ring: 2, processes: 32, threads: 32 };
    let fit = Zone::capacity_fit(1 << 20, &nginx).unwrap();
    assert!(size_of(&fit) <= 1 << 20 && size_of(&ZoneCapacity { hosts: fit.hosts + 1, ..fit }) > 1 << 20);
    // 256 + 2015 x 256 (slots) + 32 x 384 (processes) + 32 x 128 + 32 x 2016 x 8: exactly 1 MiB.
    assert_eq!(fit.hosts, 2015);
    // No memory is too large: the host limit caps the answer.
    assert_eq!(Zone::capacity_fit(usize::MAX, &SMALL).unwrap().hosts, (1 << 30) - 1);
}

fn size_of(caps: &ZoneCapacity) -> usize {
    Zone::size_for(caps).unwrap()
}

#[test]
fn capacity_fit_refuses_memory_without_room_for_one_host_and_invalid_capacities() {
    let one = size_of(&ZoneCapacity { hosts: 1, ..SMALL });
    assert_eq!(Zone::capacity_fit(one, &SMALL).unwrap().hosts, 1);
    let e = Zone::capacity_fit(one - 1, &SMALL).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ZoneTooSmall);
    assert_eq!(
        e.message(),
        format!(
            "{} bytes cannot hold a zone of even 1 host with address_bytes 64, fail_ring 2, processes 3, threads 4 ({one} bytes)",
            one - 1
        )
    );
    assert_eq!(Zone::capacity_fit(0, &SMALL).unwrap_err().kind(), ErrorKind::ZoneTooSmall);
    let e = Zone::capacity_fit(1 << 20, &ZoneCapacity { fail_ring: 0, ..SMALL }).unwrap_err();
    assert_eq!((e.kind(), e.message()), (ErrorKind::InvalidLimit, "zone capacity fail_ring 0 is outside 1..=1024"));
}
