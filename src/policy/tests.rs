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
    let _ = t;
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
    assert_eq!(Ties::new().finish_uniform(&mut rng), None);
}

#[test]
#[cfg_attr(miri, ignore = "exhaustive enumeration, far too slow under Miri")]
fn equal_weight_ties_are_exactly_uniform_across_batches() {
    // 70 ties: two folds of 32 plus a final one; every tie must win equally often.
    let wins = enumerate_wins(&[1; 70]);
    assert!(wins.iter().all(|&w| w == wins[0]), "{wins:?}");
}

#[test]
#[cfg_attr(miri, ignore = "exhaustive enumeration, far too slow under Miri")]
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

#[test]
#[cfg_attr(miri, ignore = "exhaustive enumeration, far too slow under Miri")]
fn uniform_finish_is_exactly_uniform_across_batches() {
    // 70 ties: folds at 32 and 64 (weight 1 each), then one draw among carry (64) + 6.
    let mut bounds = Vec::new();
    let mut wins = vec![0u64; 70];
    for a in 0..32 {
        for b in 0..64 {
            for c in 0..70 {
                let mut rng = Script { draws: vec![a, b, c], bounds: Vec::new() };
                let mut t = Ties::new();
                for i in 0..70 {
                    t.push_uniform(i, &mut rng);
                }
                wins[t.finish_uniform(&mut rng).unwrap()] += 1;
                bounds = rng.bounds;
            }
        }
    }
    assert_eq!(bounds, [32, 64, 70]);
    assert!(wins.iter().all(|&w| w == wins[0]), "{wins:?}");
}

#[test]
fn seventy_ties_fold_twice_and_keep_the_scripted_survivor() {
    // A cheap walk through both fold paths (the exhaustive checks above are too slow for Miri,
    // which checks the reservoir's `MaybeUninit` buffer here). Uniform: the first fold keeps
    // tie 5, the second takes buffered tie 40 (draw 40 >= carry weight 32), the final draw 3
    // falls on the carry. Weighted (all weights 1): the same survivors by the same draws.
    let mut rng = Script { draws: vec![5, 40, 3], bounds: Vec::new() };
    let mut t = Ties::new();
    for i in 0..70 {
        t.push_uniform(i, &mut rng);
    }
    assert_eq!(t.finish_uniform(&mut rng), Some(40));
    assert_eq!(rng.bounds, [32, 64, 70]);
    let mut rng = Script { draws: vec![5, 10, 66], bounds: Vec::new() };
    let mut t = Ties::new();
    for i in 0..70 {
        t.push(i, &mut rng, |_| 1);
    }
    assert_eq!(t.finish(&mut rng, |_| 1), Some(66));
    assert_eq!(rng.bounds, [32, 64, 70]);
}
