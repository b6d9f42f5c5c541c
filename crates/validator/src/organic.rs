//! Where a validator sends a user's objective (an organic request): to a miner drawn in
//! proportion to its incentive, and on to another miner when the one it tried gave no usable
//! response — a user should not get an error because one miner was down while others were up.

use rand::{Rng, RngExt};
use std::collections::BTreeSet;

/// How many miners one organic request tries, by default, before it fails.
pub const DEFAULT_ORGANIC_ATTEMPTS: u32 = 3;

/// Draw a miner for an organic request.
///
/// `candidates` are `(uid, weight)` pairs, the weight being the miner's incentive in any unit;
/// uids in `tried` are skipped. The draw is proportional to weight among the rest, and uniform
/// when all of their weights are zero (a new subnet, before any incentive). `None` when no
/// untried candidate is left.
pub fn pick_miner(
    candidates: &[(u16, u64)],
    tried: &BTreeSet<u16>,
    rng: &mut impl Rng,
) -> Option<u16> {
    let open: Vec<(u16, u64)> = candidates
        .iter()
        .copied()
        .filter(|(uid, _)| !tried.contains(uid))
        .collect();
    if open.is_empty() {
        return None;
    }
    let total: u128 = open.iter().map(|&(_, w)| u128::from(w)).sum();
    if total == 0 {
        return Some(open[rng.random_range(0..open.len())].0);
    }
    let mut x = rng.random_range(0..total);
    for &(uid, w) in &open {
        let w = u128::from(w);
        if x < w {
            return Some(uid);
        }
        x -= w;
    }
    unreachable!("x < total = the sum of the weights")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn draws_follow_the_weights() {
        let candidates = [(1, 0), (2, 300), (3, 100)];
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut counts = [0u32; 4];
        for _ in 0..4000 {
            let uid = pick_miner(&candidates, &BTreeSet::new(), &mut rng).unwrap();
            counts[usize::from(uid)] += 1;
        }
        assert_eq!(
            counts[1], 0,
            "a zero-weight miner is never drawn while others weigh"
        );
        // 3:1, within a few standard deviations (sd of the count of 2 is ~27).
        assert!((2850..=3150).contains(&counts[2]), "{counts:?}");
    }

    #[test]
    fn all_zero_weights_draw_uniformly_and_tried_miners_are_skipped() {
        let candidates = [(4, 0), (5, 0), (6, 0)];
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let tried = BTreeSet::from([5]);
        let mut seen = BTreeSet::new();
        for _ in 0..200 {
            seen.insert(pick_miner(&candidates, &tried, &mut rng).unwrap());
        }
        assert_eq!(seen, BTreeSet::from([4, 6]));
        let all = BTreeSet::from([4, 5, 6]);
        assert_eq!(pick_miner(&candidates, &all, &mut rng), None);
        assert_eq!(pick_miner(&[], &BTreeSet::new(), &mut rng), None);
    }

    proptest! {
        #[test]
        fn picks_an_untried_candidate_whenever_one_is_left(
            weights in proptest::collection::vec(any::<u64>(), 0..12),
            tried_mask in any::<u16>(),
            seed in any::<u64>(),
        ) {
            let candidates: Vec<(u16, u64)> =
                weights.iter().enumerate().map(|(i, &w)| (i as u16, w)).collect();
            let tried: BTreeSet<u16> =
                (0..weights.len() as u16).filter(|i| tried_mask & (1 << i) != 0).collect();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let left: Vec<&(u16, u64)> =
                candidates.iter().filter(|(u, _)| !tried.contains(u)).collect();
            match pick_miner(&candidates, &tried, &mut rng) {
                None => prop_assert!(left.is_empty()),
                Some(uid) => {
                    prop_assert!(!tried.contains(&uid));
                    prop_assert!(left.iter().any(|(u, _)| *u == uid));
                    // Some untried miner weighs: the pick does too.
                    if left.iter().any(|(_, w)| *w > 0) {
                        prop_assert!(candidates[usize::from(uid)].1 > 0);
                    }
                }
            }
        }
    }
}
