//! Exact checks of the tie-break reservoir, by enumerating every random draw.

use super::Random;
use super::ties::Ties;

/// Replays a fixed sequence of draws and records the bounds it was asked for.
struct Script {
    draws: Vec<u64>,
    bounds: Vec<u64>,
}

impl Random for Script {
    fn below(&mut self, n: u64) -> u64 {
        self.bounds.push(n);
        let v = self.draws.remove(0);
        assert!(v < n);
        v
    }
}

/// For `n` ties with the given weights, counts how often each wins over all draw sequences.
fn enumerate_wins(weights: &[u64]) -> Vec<u64> {
    let n = weights.len();
    let weight = |i: u32| weights[i as usize];
    // First learn the bounds the reservoir asks for (they do not depend on the values).
    let mut probe = Script { draws: vec![0; n], bounds: Vec::new() };
    let mut t = Ties::new();
    for i in 0..n as u32 {
        t.push(i, &mut probe, weight);
    }
    t.finish(&mut probe, weight);
    let bounds = probe.bounds;
    let mut wins = vec![0u64; n];
    let combos: u64 = bounds.iter().product();
    for mut code in 0..combos {
        let mut draws = Vec::new();
        for &b in &bounds {
            draws.push(code % b);
            code /= b;
        }
        let mut rng = Script { draws, bounds: Vec::new() };
        let mut t = Ties::new();
        for i in 0..n as u32 {
            t.push(i, &mut rng, weight);
        }
        wins[t.finish(&mut rng, weight).unwrap()] += 1;
    }
    wins
}

#[test]
fn a_single_tie_needs_no_draw() {
    let mut rng = Script { draws: vec![], bounds: vec![] };
    let mut t = Ties::new();
    t.push(5, &mut rng, |_| 1);
    assert_eq!(t.finish(&mut rng, |_| 1), Some(5));
    assert!(rng.bounds.is_empty());
}

#[test]
fn no_ties_no_pick() {
    let mut rng = Script { draws: vec![], bounds: vec![] };
    assert_eq!(Ties::new().finish(&mut rng, |_| 1), None);
}

#[test]
fn equal_weight_ties_are_exactly_uniform_across_batches() {
    // 70 ties: two folds of 32 plus a final one; every tie must win equally often.
    let wins = enumerate_wins(&[1; 70]);
    assert!(wins.iter().all(|&w| w == wins[0]), "{wins:?}");
}

#[test]
fn weighted_ties_win_exactly_in_proportion_to_weight() {
    let weights: Vec<u64> = (0..40).map(|i| 1 + i % 3).collect();
    let wins = enumerate_wins(&weights);
    let unit = wins[0] / weights[0];
    for (i, (&w, &won)) in weights.iter().zip(&wins).enumerate() {
        assert_eq!(won, unit * w, "tie {i}");
    }
}

#[test]
fn at_most_32_ties_take_one_draw() {
    let mut rng = Script { draws: vec![7], bounds: vec![] };
    let mut t = Ties::new();
    for i in 0..32 {
        t.push(i, &mut rng, |_| 1);
    }
    assert_eq!(t.finish(&mut rng, |_| 1), Some(7));
    assert_eq!(rng.bounds, [32]);
}

/// A snapshot of `n` idle, equal-weight hosts (the states live as long as the snapshot).
fn idle_snapshot(n: usize) -> crate::snapshot::Snapshot {
    use crate::host::{Health, HostRef};
    let health = std::sync::Arc::new(Health { max_fails: 0, fail_ns: 0, clock: crate::Clock::System });
    let list = (0..n)
        .map(|i| {
            let addr = format!("10.0.0.{i}:80");
            let host = crate::sync::Arc::new(HostRef::new(&addr, &health));
            (crate::Upstream::new(addr), host)
        })
        .collect();
    crate::snapshot::Snapshot::build(list, 1)
}

/// For a tier of `n` idle hosts, counts how often each wins the uniform least_conn scan over
/// every sequence of draws it can be given; also returns the bounds it asked for.
fn enumerate_uniform_scan(n: usize) -> (Vec<u64>, Vec<u64>) {
    let snap = idle_snapshot(n);
    let scan = |rng: &mut Script| {
        let ex = super::Excluded::new(&[]);
        super::least_conn::propose_uniform(&snap.entries, &ex, &mut super::Now::default(), rng)
    };
    let mut probe = Script { draws: vec![0; n], bounds: Vec::new() };
    scan(&mut probe);
    let bounds = probe.bounds;
    let mut wins = vec![0u64; n];
    for mut code in 0..bounds.iter().product::<u64>() {
        let mut draws = Vec::new();
        for &b in &bounds {
            draws.push(code % b);
            code /= b;
        }
        wins[scan(&mut Script { draws, bounds: Vec::new() }).unwrap()] += 1;
    }
    (wins, bounds)
}

#[test]
fn uniform_scan_ties_are_exactly_uniform_across_chunks() {
    // 70 ties: a full chunk of 64, then 6 more drawn against the 64 carried.
    let (wins, bounds) = enumerate_uniform_scan(70);
    assert_eq!(bounds, [64, 70]);
    assert!(wins.iter().all(|&w| w == wins[0]), "{wins:?}");
}

#[test]
fn uniform_scan_takes_one_draw_up_to_64_entries_and_none_for_one() {
    let (wins, bounds) = enumerate_uniform_scan(64);
    assert_eq!(bounds, [64]);
    assert!(wins.iter().all(|&w| w == 1), "{wins:?}");
    assert_eq!(enumerate_uniform_scan(1), (vec![1], vec![]));
}

#[test]
fn uniform_scan_forgets_ties_of_earlier_chunks_when_a_later_host_is_idler() {
    let snap = idle_snapshot(130);
    // Everything busy except entries 100 and 129. The first chunk's 64 busy ties take a
    // draw; entry 100 then makes them irrelevant, and only 100 and 129 tie.
    for (i, e) in snap.entries.iter().enumerate() {
        if i != 100 && i != 129 {
            assert!(e.host().try_reserve(u64::from(e.limit)));
        }
    }
    let ex = super::Excluded::new(&[]);
    for (draw, want) in [(0, 100), (1, 129)] {
        let mut rng = Script { draws: vec![63, draw], bounds: Vec::new() };
        let got = super::least_conn::propose_uniform(&snap.entries, &ex, &mut super::Now::default(), &mut rng);
        assert_eq!(got, Some(want));
        assert_eq!(rng.bounds, [64, 2]);
    }
}

#[test]
fn set_bits_rank_and_select_match_a_plain_scan() {
    use super::least_conn::SetBits;
    let mut rng = fastrand::Rng::with_seed(0x5e1ec7);
    let masks = [0u64, 1, 1 << 63, u64::MAX, 0x8000_0000_0000_0001, 0x00ff_0000_0000_ff00];
    for mask in masks.into_iter().chain((0..2000).map(|_| rng.u64(..) & rng.u64(..))) {
        let bits = SetBits::new(mask);
        let want: Vec<usize> = (0..64).filter(|&b| mask & (1 << b) != 0).collect();
        assert_eq!(bits.count(), want.len() as u64, "{mask:#x}");
        for (r, &pos) in want.iter().enumerate() {
            assert_eq!(bits.nth(r as u64), pos, "{mask:#x} r={r}");
        }
    }
}
