//! The simulated chain runs its epochs on the chain's scheduler: the legacy modulo rule or spec
//! 459's stateful one, with the owner's `trigger_epoch` and `sudo_set_tempo`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use orchestra_sim::scenario::{ChainConfig, EpochRule};
use orchestra_sim::simchain::SimChain;

fn chain(tempo: u64, epoch_rule: EpochRule) -> SimChain {
    let chain = SimChain::new(
        ChainConfig {
            tempo,
            epoch_rule,
            ..ChainConfig::default()
        },
        1,
        None,
    );
    chain.register("v".into(), [1; 32], 1_000_000_000, None, 0);
    chain.register("m".into(), [2; 32], 0, None, 0);
    chain
}

/// Runs blocks `from..=to`; returns the epoch blocks and what each emitted.
fn run(chain: &SimChain, from: u64, to: u64) -> Vec<(u64, u64)> {
    let mut fired = Vec::new();
    for block in from..=to {
        if chain.set_block(block) {
            fired.push((block, chain.epoch(block).unwrap().emitted));
        }
    }
    fired
}

#[test]
fn the_legacy_rule_runs_every_tempo_plus_one_blocks_at_the_netuids_phase() {
    let c = chain(10, EpochRule::Legacy);
    let blocks: Vec<u64> = run(&c, 1, 40).into_iter().map(|(b, _)| b).collect();
    // netuid 1: (block + 2) % 11 == 0.
    assert_eq!(blocks, vec![9, 20, 31]);
    assert_eq!(c.epoch_index(), 3);
}

#[test]
fn a_trigger_and_a_new_tempo_move_the_epochs_and_what_they_pay() {
    let per_block = ChainConfig::default().emission_per_block_rao;
    let c = chain(400, EpochRule::Stateful);
    assert_eq!(run(&c, 1, 5), vec![]);
    // Triggered at block 5: runs after the admin freeze window (10 blocks), paying 15 blocks.
    assert_eq!(c.trigger_epoch(), Ok(15));
    assert_eq!(run(&c, 6, 20), vec![(15, 15 * per_block)]);
    // The owner's tempo is bounded; a valid one restarts the cycle at its block
    // (`LastEpochBlock = 100`, so `get_next_epoch_start_block` says 460) ...
    assert!(c.set_tempo(30).is_err());
    run(&c, 21, 100);
    c.set_tempo(360).unwrap();
    assert_eq!(c.tempo(), 360);
    // ... but `BlocksSinceLastStep` is not reset with it, so spec 459's safety net
    // (`BlocksSinceLastStep > tempo`) runs the epoch 361 blocks after the last one, at 376,
    // before 460: a tempo set mid-cycle never stretches the cycle it is set in.
    assert_eq!(
        run(&c, 101, 800),
        vec![(376, 361 * per_block), (736, 360 * per_block)]
    );
    assert_eq!(c.epoch_index(), 3);
}

/// A tempo-10 chain under `config` with a staked validator (uid 0) and `miners` miners, the
/// validator's weights `uids` (all 65535) set at block 1.
fn weighted_chain(config: ChainConfig, miners: u8, uids: Vec<u16>) -> SimChain {
    use orchestra_chain::{Chain, WeightsSubmission};
    let chain = SimChain::new(
        ChainConfig {
            tempo: 10,
            ..config
        },
        1,
        None,
    );
    chain.register("v".into(), [1; 32], 1_000_000_000, None, 0);
    for m in 0..miners {
        chain.register(format!("m{m}"), [m + 2; 32], 0, None, 0);
    }
    chain.set_block(1);
    let weights = WeightsSubmission {
        netuid: 1,
        mecid: 0,
        values: vec![u16::MAX; uids.len()],
        uids,
        version_key: 0,
    };
    chain
        .as_signer(0)
        .set_weights(&weights)
        .into_inner()
        .unwrap();
    chain
}

/// `[chain] owner_uid`: the owner's validator keeps its self-weight in the epoch (spec 459's
/// `epoch_mechanism`), and the coinbase burns the incentive that earns it.
#[test]
fn the_owners_self_weight_counts_and_its_incentive_is_burned() {
    let run = |owner_uid: Option<u16>| {
        let config = ChainConfig {
            owner_uid,
            ..ChainConfig::default()
        };
        let chain = weighted_chain(config, 1, vec![0, 1]);
        for b in 2..10 {
            chain.set_block(b);
        }
        assert!(chain.set_block(10));
        chain.epoch(10).unwrap()
    };
    let owned = run(Some(0));
    assert_eq!(owned.server[0], 0, "burned, not paid");
    assert!(owned.burned > 0 && owned.server[1] > 0);
    // Half each, to the rao the fixed-point shares truncate.
    assert!(owned.burned.abs_diff(owned.server[1]) <= 1, "{owned:?}");
    let plain = run(None);
    assert_eq!(
        (plain.server[0], plain.burned),
        (0, 0),
        "self-weight masked"
    );
    assert!(plain.server[1].abs_diff(owned.server[1] + owned.burned) <= 2);
}

/// `[chain] bonds_reset` (`BondsResetOn`): a miner's `ResetBondsFlag` commitment strips every
/// validator's bond to it; with it off (the chain's default) the flag changes nothing.
#[test]
fn a_reset_bonds_commitment_strips_bonds_only_when_the_subnet_allows_it() {
    use orchestra_chain::Chain;
    for on in [true, false] {
        let config = ChainConfig {
            bonds_reset: on,
            ..ChainConfig::default()
        };
        let chain = weighted_chain(config, 2, vec![1, 2]);
        run(&chain, 2, 10);
        let bonds = || {
            let mg = chain.as_signer(0).metagraph(1, 0).into_inner().unwrap();
            mg.neurons[0]
                .bonds
                .iter()
                .map(|&(j, _)| j)
                .collect::<Vec<u16>>()
        };
        assert_eq!(bonds(), vec![1, 2]);
        assert_eq!(chain.reset_bonds(1), on);
        assert_eq!(
            bonds(),
            if on { vec![2] } else { vec![1, 2] },
            "bonds_reset = {on}"
        );
    }
}
