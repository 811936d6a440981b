//! Slot lookup, insertion, listing and reclamation on zones in caller memory (a `Vec<u64>`),
//! one thread: runs under Miri. The races are the loom models' (`tests/loom_zone_slots.rs`).

use std::cell::RefCell;
use std::ptr::NonNull;
use std::time::Duration;

use super::layout::{slot, word};
use super::memory::{self, ZoneInit};
use super::slots::{Key, Kind, ListingJournal, NoJournal, Reclaim, SlotRef, Slots, fnv1a};
use super::{Zone, ZoneCapacity};
use crate::error::ErrorKind;
use crate::host::{DOWN, GUARD};
use crate::sync::Ordering;

/// 8 slots, keys up to 64 bytes (11 key words), a ring of 2, 3 processes.
const CAPS: ZoneCapacity = ZoneCapacity { hosts: 8, address_bytes: 64, fail_ring: 2, processes: 3, threads: 2 };

/// A zone in a `Vec<u64>` it owns (dropped after the zone: fields drop in order).
struct TestZone {
    zone: Zone,
    _mem: Vec<u64>,
}

fn zone(caps: ZoneCapacity) -> TestZone {
    let mut mem = vec![0u64; Zone::size_for(&caps).unwrap() / 8];
    let ptr = NonNull::new(mem.as_mut_ptr().cast::<u8>()).unwrap();
    // SAFETY: `mem` lives in the returned `TestZone` and is dropped after its zone; nothing
    // else touches it (moving the `Vec` does not move its buffer).
    let (backing, layout) =
        unsafe { memory::borrowed(ptr, mem.len() * 8, ZoneInit::Create(caps), &|_| false, Duration::ZERO) }.unwrap();
    TestZone { zone: Zone::new((backing, layout)), _mem: mem }
}

impl TestZone {
    fn slots(&self) -> Slots<'_> {
        self.zone.slots()
    }

    fn key(&self, namespace: &str, address: &str) -> Key {
        Key::new(namespace, address, &self.zone.0.layout).unwrap()
    }

    fn attach(&self, namespace: &str, address: &str, process: u32) -> SlotRef {
        self.slots().attach(&self.key(namespace, address), process, &NoJournal).unwrap()
    }

    fn word(&self, i: usize) -> &crate::sync::AtomicU64 {
        &self.zone.0.backing.words()[i]
    }

    fn slot_word(&self, s: u32, i: usize) -> &crate::sync::AtomicU64 {
        self.word(self.zone.0.layout.slot(s) + i)
    }

    /// LIVE slots holding the key.
    fn live_slots_of(&self, namespace: &str, address: &str) -> Vec<u32> {
        let key = self.key(namespace, address);
        (0..self.zone.capacity().hosts).filter(|&s| self.slots().holds_now(s, &key)).collect()
    }

    fn kinds(&self) -> Vec<Kind> {
        (0..self.zone.capacity().hosts).map(|s| self.slots().control(s).kind()).collect()
    }
}

/// Two addresses of one length whose keys in `namespace` have the same tag and home slot
/// (found by search: 16 + 3 bits).
fn colliding_pair(z: &TestZone, namespace: &str) -> (String, String) {
    let mut seen = std::collections::HashMap::new();
    for i in 0..100_000 {
        let address = format!("10.{}.{}.{}:80", i / 10_000 % 10, i / 100 % 100 + 100, i % 100 + 100);
        let key = z.key(namespace, &address);
        if let Some(first) = seen.insert((key.tag_for_tests(), key.home(&z.zone.0.layout)), address.clone()) {
            if first.len() == address.len() {
                return (first, address);
            }
        }
    }
    panic!("no collision in 100000 keys");
}

#[test]
fn key_is_namespace_nul_address_in_six_byte_words_after_the_hash() {
    let z = zone(CAPS);
    let key = z.key("app", "10.0.0.1:80");
    let bytes = b"app\x0010.0.0.1:80";
    assert_eq!(key.hash_for_tests(), fnv1a(bytes));
    // FNV-1a 64 of "a" (the published test vector).
    assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    let s = z.attach("app", "10.0.0.1:80", 0);
    let ctl = z.slots().control(s.index);
    assert_eq!((ctl.kind(), ctl.who(), ctl.len(), ctl.generation()), (Kind::Live, 1, 15, 0));
    assert_eq!(ctl.tag(), (fnv1a(bytes) >> 48) as u16);
    let mark = 1 << 63;
    assert_eq!(z.slot_word(s.index, slot::HASH).load(Ordering::SeqCst), mark | fnv1a(bytes) & ((1 << 48) - 1));
    assert_eq!(z.slot_word(s.index, slot::KEY).load(Ordering::SeqCst), mark | u64::from_le_bytes(*b"app\x0010\0\0"));
    assert_eq!(z.slot_word(s.index, slot::KEY + 1).load(Ordering::SeqCst), mark | u64::from_le_bytes(*b".0.0.1\0\0"));
    assert_eq!(
        z.slot_word(s.index, slot::KEY + 2).load(Ordering::SeqCst),
        mark | u64::from_le_bytes(*b":80\0\0\0\0\0")
    );
    // The first key word past the key's length is never written.
    assert_eq!(z.slot_word(s.index, slot::KEY + 3).load(Ordering::SeqCst), 0);
}

#[test]
fn attached_key_is_found_by_lookup_and_unknown_keys_are_not() {
    let z = zone(CAPS);
    assert_eq!(z.slots().lookup(&z.key("app", "10.0.0.1:80")), None);
    let s = z.attach("app", "10.0.0.1:80", 0);
    assert_eq!(z.slots().lookup(&z.key("app", "10.0.0.1:80")), Some(s));
    assert_eq!(z.slots().lookup(&z.key("app", "10.0.0.2:80")), None);
    // A new slot holds a new host's state: GUARD, nothing in flight, no failures.
    let state: Vec<u64> = z.slots().state_words(s.index).iter().map(|w| w.load(Ordering::SeqCst)).collect();
    assert_eq!(state, [GUARD, 0, 0]);
}

#[test]
fn same_key_attached_by_two_processes_gets_one_slot_with_two_listers() {
    let z = zone(CAPS);
    let first = z.attach("app", "10.0.0.1:80", 0);
    let second = z.attach("app", "10.0.0.1:80", 1);
    assert_eq!(first, second);
    assert_eq!(z.slots().control(first.index).who(), 2);
    assert_eq!(z.live_slots_of("app", "10.0.0.1:80"), [first.index]);
    assert_eq!(z.slots().detach(first).unwrap(), 1);
    assert_eq!(z.slots().detach(first).unwrap(), 0);
}

#[test]
fn same_address_in_two_namespaces_gets_two_slots() {
    let z = zone(CAPS);
    let a = z.attach("app", "10.0.0.1:80", 0);
    let b = z.attach("api", "10.0.0.1:80", 0);
    assert_ne!(a.index, b.index);
    assert_eq!(z.live_slots_of("app", "10.0.0.1:80"), [a.index]);
    assert_eq!(z.live_slots_of("api", "10.0.0.1:80"), [b.index]);
    // NUL ends the namespace, so ("a", "\0b") and ("a\0", "b") cannot be confused.
    let e = Key::new("app\0x", "10.0.0.1:80", &z.zone.0.layout).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
}

#[test]
fn keys_with_equal_tag_length_and_home_get_separate_slots() {
    let z = zone(CAPS);
    let (a, b) = colliding_pair(&z, "app");
    let sa = z.attach("app", &a, 0);
    let sb = z.attach("app", &b, 1);
    assert_ne!(sa.index, sb.index);
    assert_eq!(sb.index, (sa.index + 1) % CAPS.hosts, "the second key takes the next slot of the chain");
    assert_eq!(z.slots().lookup(&z.key("app", &a)), Some(sa));
    assert_eq!(z.slots().lookup(&z.key("app", &b)), Some(sb));
    assert_eq!(z.slots().control(sa.index).who(), 1);
    assert_eq!(z.slots().control(sb.index).who(), 1);
}

#[test]
fn unfinished_claim_of_a_colliding_key_is_left_to_its_key() {
    let z = zone(CAPS);
    let (a, b) = colliding_pair(&z, "app");
    // Process 2 claimed a slot for `a` and wrote its hash word, then died.
    let claimed = z.slots().claim_and_stop(&z.key("app", &a), 2, 1).unwrap();
    // `b` fits the claim (same tag and length) but the hash word is `a`'s: it goes on.
    let sb = z.attach("app", &b, 0);
    assert_ne!(sb.index, claimed);
    assert_eq!(z.slots().control(claimed).kind(), Kind::Claiming);
    // `a`'s next attacher completes the claim and publishes it as its own listing.
    let sa = z.attach("app", &a, 1);
    assert_eq!(sa.index, claimed);
    assert_eq!(z.slots().control(claimed).who(), 1);
    assert_eq!(z.live_slots_of("app", &a), [claimed]);
    assert_eq!(z.live_slots_of("app", &b), [sb.index]);
}

#[test]
fn empty_claim_of_a_colliding_key_is_completed_by_whichever_key_comes() {
    let z = zone(CAPS);
    let (a, b) = colliding_pair(&z, "app");
    // Process 2 claimed a slot for `a` and died before writing any key word: nothing says
    // which key of that tag and length it was for, so `b` completes it as `b`'s.
    let claimed = z.slots().claim_and_stop(&z.key("app", &a), 2, 0).unwrap();
    let sb = z.attach("app", &b, 0);
    assert_eq!(sb.index, claimed);
    let sa = z.attach("app", &a, 1);
    assert_ne!(sa.index, claimed);
    assert_eq!(z.live_slots_of("app", &a), [sa.index]);
    assert_eq!(z.live_slots_of("app", &b), [claimed]);
}

#[test]
fn validation_keeps_the_earlier_of_two_claims_of_one_key() {
    let z = zone(CAPS);
    let key = z.key("app", "10.0.0.1:80");
    // Two processes claimed the key at consecutive slots of its chain and died before
    // validating (each wrote every key word).
    let first = z.slots().claim_and_stop(&key, 1, usize::MAX).unwrap();
    let second = z.slots().claim_and_stop(&key, 2, usize::MAX).unwrap();
    assert_eq!(second, (first + 1) % CAPS.hosts);
    // The next attacher helps the earlier claim, and its validation abandons the later one.
    let s = z.attach("app", "10.0.0.1:80", 0);
    assert_eq!(s.index, first);
    let (earlier, later) = (z.slots().control(first), z.slots().control(second));
    assert_eq!((earlier.kind(), earlier.who()), (Kind::Live, 1));
    assert_eq!((later.kind(), later.generation()), (Kind::Tomb, 1));
}

#[test]
fn claims_of_dead_processes_are_tombstoned_by_abandon() {
    let z = zone(CAPS);
    let a = z.slots().claim_and_stop(&z.key("app", "10.0.0.1:80"), 2, 1).unwrap();
    let b = z.slots().claim_and_stop(&z.key("app", "10.0.0.2:80"), 1, 0).unwrap();
    assert_eq!(z.slots().abandon_claims_of(2), 1);
    assert_eq!(z.slots().abandon_claims_of(2), 0);
    assert_eq!((z.slots().control(a).kind(), z.slots().control(a).generation()), (Kind::Tomb, 1));
    assert_eq!(z.slots().control(b).kind(), Kind::Claiming);
    // The key comes back in a new generation (the TOMB is the first free slot of its chain
    // only if nothing else took it; either way it is LIVE once, in generation 1 if there).
    let s = z.attach("app", "10.0.0.1:80", 0);
    assert_eq!(z.live_slots_of("app", "10.0.0.1:80"), [s.index]);
    if s.index == a {
        assert_eq!(s.generation, 1);
    }
}

#[test]
fn full_zone_refuses_a_new_key_but_attaches_existing_ones() {
    let z = zone(ZoneCapacity { hosts: 4, ..CAPS });
    let held: Vec<SlotRef> = (1..=4).map(|i| z.attach("app", &format!("10.0.0.{i}:80"), 0)).collect();
    assert_eq!(z.kinds(), [Kind::Live; 4]);
    let e = z.slots().attach(&z.key("app", "10.0.0.5:80"), 0, &NoJournal).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ZoneFull);
    assert_eq!(e.message(), "zone full: no free slot for a new key among its 4 host slots");
    assert_eq!(z.word(word::FULL_REFUSALS).load(Ordering::SeqCst), 1);
    assert_eq!(z.attach("app", "10.0.0.3:80", 1), held[2]);
    // A reclaimed slot makes room.
    assert_eq!(z.slots().detach(held[0]).unwrap(), 0);
    assert_eq!(z.slots().try_reclaim(held[0].index), Reclaim::Reclaimed);
    let s = z.attach("app", "10.0.0.5:80", 0);
    assert_eq!(s, SlotRef { index: held[0].index, generation: 1 });
}

#[test]
fn reclaimed_slot_is_reset_and_reused_in_the_next_generation() {
    let z = zone(ZoneCapacity { hosts: 1, ..CAPS });
    let s = z.attach("app", "10.0.0.1:80", 0);
    // State the host had: down, 5 failures, 9 picks, a ring of timestamps.
    z.slot_word(s.index, slot::STATE).fetch_or(DOWN, Ordering::SeqCst);
    z.slot_word(s.index, slot::FAIL_NEXT).store(5, Ordering::SeqCst);
    z.slot_word(s.index, slot::PICKS).store(9, Ordering::SeqCst);
    z.slots().ring(s.index).iter().for_each(|r| r.store(77, Ordering::SeqCst));
    assert_eq!(z.slots().detach(s).unwrap(), 0);
    assert_eq!(z.slots().try_reclaim(s.index), Reclaim::Reclaimed);
    let ctl = z.slots().control(s.index);
    assert_eq!((ctl.kind(), ctl.generation()), (Kind::Tomb, 1));
    assert_eq!(z.slots().lookup(&z.key("app", "10.0.0.1:80")), None);
    let state: Vec<u64> = z.slots().state_words(s.index).iter().map(|w| w.load(Ordering::SeqCst)).collect();
    assert_eq!(state, [GUARD, 0, 0]);
    assert!(z.slots().ring(s.index).iter().all(|r| r.load(Ordering::SeqCst) == 0));
    // Another key reuses it, in generation 1; a detach of the old generation is refused.
    let t = z.attach("app", "10.0.0.2:80", 1);
    assert_eq!(t, SlotRef { index: s.index, generation: 1 });
    let e = z.slots().detach(s).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert_eq!(z.slots().control(s.index).who(), 1);
}

#[test]
fn reclaim_refuses_listed_busy_doubtful_and_non_live_slots() {
    let z = zone(CAPS);
    let s = z.attach("app", "10.0.0.1:80", 0);
    assert_eq!(z.slots().try_reclaim(s.index), Reclaim::NotIdle, "listed");
    z.slots().detach(s).unwrap();
    z.slot_word(s.index, slot::STATE).fetch_add(1, Ordering::SeqCst);
    assert_eq!(z.slots().try_reclaim(s.index), Reclaim::InFlight);
    z.slot_word(s.index, slot::STATE).fetch_sub(2, Ordering::SeqCst); // a refused release's borrow
    assert_eq!(z.slots().try_reclaim(s.index), Reclaim::InFlight);
    z.slot_word(s.index, slot::STATE).fetch_add(1, Ordering::SeqCst);
    z.slot_word(s.index, slot::DOUBT).store(1, Ordering::SeqCst);
    assert_eq!(z.slots().try_reclaim(s.index), Reclaim::InDoubt);
    z.slot_word(s.index, slot::DOUBT).store(0, Ordering::SeqCst);
    assert_eq!(z.slots().try_reclaim(s.index), Reclaim::Reclaimed);
    assert_eq!(z.slots().try_reclaim(s.index), Reclaim::NotIdle, "a TOMB");
    assert_eq!(z.slots().try_reclaim((s.index + 1) % CAPS.hosts), Reclaim::NotIdle, "FREE");
}

#[test]
fn stale_generation_key_words_are_overwritten_not_trusted() {
    let z = zone(ZoneCapacity { hosts: 1, ..CAPS });
    let key = z.key("app", "10.0.0.1:80");
    let s = z.attach("app", "10.0.0.1:80", 0);
    z.slots().detach(s).unwrap();
    assert_eq!(z.slots().try_reclaim(s.index), Reclaim::Reclaimed);
    // Generation 1 claimed for the same key by a process that died before writing: the key
    // words still hold the key, in generation 0.
    assert_eq!(z.slots().claim_and_stop(&key, 2, 0), Some(s.index));
    let stale = z.slot_word(s.index, slot::KEY).load(Ordering::SeqCst);
    assert_eq!(stale >> 48 & 0x7fff, 0);
    assert_eq!(z.slots().lookup(&key), None);
    // The next attacher rewrites every word in generation 1 before publishing.
    let t = z.attach("app", "10.0.0.1:80", 0);
    assert_eq!(t, SlotRef { index: s.index, generation: 1 });
    for j in 0..4 {
        let w = z.slot_word(s.index, slot::HASH + j).load(Ordering::SeqCst);
        assert_eq!(w >> 48, 1 << 15 | 1, "key word {j}: {w:#x}");
    }
    // A word of an older generation in a LIVE slot (a helper delayed across a reuse) makes
    // it hold no key: lookups never trust it.
    z.slot_word(s.index, slot::KEY + 1).store(stale, Ordering::SeqCst);
    assert_eq!(z.slots().lookup(&key), None);
}

#[test]
fn bad_keys_processes_and_detaches_are_clear_errors() {
    let z = zone(ZoneCapacity { address_bytes: 16, ..CAPS });
    let layout = &z.zone.0.layout;
    let e = Key::new("app", "10.0.0.100:8080", layout).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ZoneIncompatible);
    assert_eq!(
        e.message(),
        "key \"app\" NUL \"10.0.0.100:8080\" is 19 bytes, the zone holds keys of at most 16 (address_bytes)"
    );
    assert!(Key::new("app", "10.0.0.1:808", layout).is_ok(), "16 bytes fit");
    let key = z.key("app", "10.0.0.1:80");
    let e = z.slots().attach(&key, 3, &NoJournal).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert_eq!(e.message(), "process index 3 is outside the zone's 3 processes");
    let e = z.slots().detach(SlotRef { index: 0, generation: 0 }).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    let s = z.slots().attach(&key, 0, &NoJournal).unwrap();
    z.slots().detach(s).unwrap();
    let e = z.slots().detach(s).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "listers 0");
    assert!(e.message().starts_with(&format!("detach of zone slot {} generation 0", s.index)), "{e}");
}

/// Records what the journal hears.
#[derive(Default)]
struct Recorder(RefCell<Vec<(&'static str, u32, bool)>>);

impl ListingJournal for Recorder {
    fn opening(&self, slot: u32) {
        self.0.borrow_mut().push(("opening", slot, false));
    }
    fn closed(&self, slot: u32, listed: bool) {
        self.0.borrow_mut().push(("closed", slot, listed));
    }
}

#[test]
fn journal_brackets_the_publish_and_the_lister_increment() {
    let z = zone(CAPS);
    let key = z.key("app", "10.0.0.1:80");
    let (p0, p1) = (Recorder::default(), Recorder::default());
    let s = z.slots().attach(&key, 0, &p0).unwrap();
    assert_eq!(*p0.0.borrow(), [("opening", s.index, false), ("closed", s.index, true)]);
    z.slots().attach(&key, 1, &p1).unwrap();
    assert_eq!(*p1.0.borrow(), [("opening", s.index, false), ("closed", s.index, true)]);
}
