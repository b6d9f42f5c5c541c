//! Per-actor random streams (DESIGN.md "Determinism").
//!
//! Every actor and purpose draws from its own ChaCha8 stream keyed by
//! `blake3::derive_key("orchestra sim rng v1", root_seed ‖ actor ‖ purpose)`, so adding an actor or
//! an event never shifts another actor's randomness. `actor` and `purpose` enter length-prefixed
//! so that no two (actor, purpose) pairs share a key.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The `derive_key` context of simulator streams.
pub const CONTEXT: &str = "orchestra sim rng v1";

/// The stream of `actor` (e.g. `validator/3`) for `purpose` (e.g. `challenges`) in run `root_seed`.
pub fn stream(root_seed: u64, actor: &str, purpose: &str) -> ChaCha8Rng {
    ChaCha8Rng::from_seed(key(root_seed, actor, purpose))
}

/// A 64-bit seed derived the same way, for components that take a plain seed.
pub fn seed(root_seed: u64, actor: &str, purpose: &str) -> u64 {
    let k = key(root_seed, actor, purpose);
    u64::from_le_bytes([k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7]])
}

fn key(root_seed: u64, actor: &str, purpose: &str) -> [u8; 32] {
    let mut material = Vec::with_capacity(24 + actor.len() + purpose.len());
    material.extend_from_slice(&root_seed.to_le_bytes());
    material.extend_from_slice(&(actor.len() as u64).to_le_bytes());
    material.extend_from_slice(actor.as_bytes());
    material.extend_from_slice(&(purpose.len() as u64).to_le_bytes());
    material.extend_from_slice(purpose.as_bytes());
    blake3::derive_key(CONTEXT, &material)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn streams_are_independent_and_reproducible() {
        let a1: u64 = stream(7, "miner/1", "calls").next_u64();
        let a2: u64 = stream(7, "miner/1", "calls").next_u64();
        let b: u64 = stream(7, "miner/2", "calls").next_u64();
        let c: u64 = stream(8, "miner/1", "calls").next_u64();
        assert_eq!(a1, a2);
        assert_ne!(a1, b);
        assert_ne!(a1, c);
        // Length prefixes keep ("ab", "c") and ("a", "bc") apart.
        assert_ne!(seed(1, "ab", "c"), seed(1, "a", "bc"));
    }

    #[test]
    fn adding_actors_never_shifts_another_actors_draws() {
        // A world with one miner, and the same world with more actors drawing in between: the
        // miner's draws are the same, because no stream is shared or derived from a counter.
        let alone: Vec<u64> = {
            let mut m = stream(3, "miner/honest/0", "strategy");
            (0..64).map(|_| m.next_u64()).collect()
        };
        let crowded: Vec<u64> = {
            let mut m = stream(3, "miner/honest/0", "strategy");
            let mut others: Vec<_> = (0..16)
                .map(|i| stream(3, &format!("miner/sybil/{i}"), "strategy"))
                .collect();
            (0..64)
                .map(|_| {
                    for o in &mut others {
                        o.next_u64();
                    }
                    m.next_u64()
                })
                .collect()
        };
        assert_eq!(alone, crowded);
    }
}
