#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Commit-reveal in the simulator is the production schedule, not a delay: the validator core
//! commits its weights when a tempo closes and reveals them when its reveal tempo opens, and
//! the simulated chain — checking the commit hash and the reveal epoch as subtensor does —
//! applies them only then. The chain therefore uses a tempo's weights one tempo late.

use orchestra_ledger::{Ledger, VerifyParams};
use orchestra_mechanism::MechanismParams;
use orchestra_mechanism::orchestration::OrchestrationTerms;
use orchestra_sim::inputs::templates;
use orchestra_sim::scenario::ChainConfig;
use orchestra_sim::simchain::SimChain;
use orchestra_validator::{
    ChainInfo, MinerInfo, Validator, ValidatorConfig, ValidatorRngs, WeightRules, WeightsAction,
};

const TEMPO: u64 = 10;

/// Per epoch block, the weights the chain holds for the validator.
type OnChain = Vec<(u64, Vec<(u16, u16)>)>;

/// One validator (uid 0) with fixed scores for miners 1 and 2, on a chain with or without
/// commit-reveal (version 2 or 4), run block by block through three tempos. Returns, per epoch
/// block, the weights the chain holds for the validator, and the weights the core produced per
/// tempo.
fn run_with(commit_reveal: bool, version: u16, tempos: u64) -> (OnChain, Vec<WeightsAction>) {
    let chain = SimChain::new(
        ChainConfig {
            tempo: TEMPO,
            commit_reveal,
            commit_reveal_version: version,
            ..ChainConfig::default()
        },
        1,
        None,
    );
    let v_uid = chain.register("validator".into(), [1; 32], 1_000_000_000, None, 0);
    let m1 = chain.register("m1".into(), [2; 32], 0, None, 0);
    let m2 = chain.register("m2".into(), [3; 32], 0, None, 0);
    let mut core = Validator::new(
        ValidatorConfig {
            challenge_every_blocks: 1_000,
            anchor_every_blocks: 0,
            ..ValidatorConfig::new("validator", MechanismParams::default())
        },
        templates().unwrap(),
        Ledger::new(VerifyParams::default()),
        ValidatorRngs::from_seed([4; 32]),
    )
    .unwrap();
    let mut state = core.state();
    let good = OrchestrationTerms {
        hash_verified: 1.0,
        schema_valid: 1.0,
        completeness: 1.0,
        routing: 1.0,
        latency: 1.0,
        fidelity: 0.0,
    };
    let half = OrchestrationTerms {
        schema_valid: 0.5,
        ..good
    };
    state.scorer.ema.observe_orchestration(m1, &good, 0.5);
    state.scorer.ema.observe_orchestration(m2, &half, 0.5);
    core.restore(state);
    core.handle_chain(ChainInfo {
        miners: [(m1, "m1"), (m2, "m2")]
            .into_iter()
            .map(|(uid, h)| MinerInfo {
                uid,
                hotkey: h.into(),
                coldkey: None,
                incentive: 0,
            })
            .collect(),
        my_uid: Some(v_uid),
        rules: WeightRules {
            commit_reveal,
            reveal_period: 1,
            timelocked: version >= 4,
        },
        ..ChainInfo::default()
    });
    let mut on_chain = Vec::new();
    let mut produced = Vec::new();
    for block in 1..=tempos * TEMPO {
        chain.set_block(block);
        core.handle_tempo(chain.epoch_index(), block, block * 12_000);
        while let Some(action) = core.poll_weights() {
            chain.submit_weights(v_uid, &action).unwrap();
            core.handle_weights_result(action.id(), true);
            produced.push(action);
        }
        if block.is_multiple_of(TEMPO) {
            on_chain.push((block, chain.weights_of(v_uid, 0)));
        }
    }
    (on_chain, produced)
}

/// The (uid, value) pairs the chain stores for `w`.
fn pairs(w: &orchestra_mechanism::combine::MechanismWeights) -> Vec<(u16, u16)> {
    w.uids
        .iter()
        .copied()
        .zip(w.values.iter().copied())
        .collect()
}

fn run(commit_reveal: bool) -> (OnChain, Vec<WeightsAction>) {
    run_with(commit_reveal, 2, 3)
}

#[test]
fn with_timelocked_commits_the_chain_reveals_once_the_drand_round_is_out() {
    let (on_chain, produced) = run_with(true, 4, 4);
    // One timelocked commit per closed tempo, and no reveal extrinsic.
    let kinds: Vec<(&str, u64)> = produced
        .iter()
        .map(|a| match a {
            WeightsAction::CommitTimelocked { tempo, .. } => ("timelocked", *tempo),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("timelocked", 0),
            ("timelocked", 1),
            ("timelocked", 2),
            ("timelocked", 3)
        ]
    );
    let WeightsAction::CommitTimelocked { weights, .. } = &produced[0] else {
        unreachable!()
    };
    let committed = pairs(weights);
    // Committed at block 10 (epoch 1), opened in epoch 2 once its round is published: the
    // SDK's predictor aims 3 blocks past block 20 (SECURITY_BLOCK_OFFSET), so the chain opens it
    // at block 23, after epoch 20's Yuma; it counts from epoch 30.
    assert_eq!(on_chain[0], (TEMPO, vec![]));
    assert_eq!(
        on_chain[1],
        (2 * TEMPO, vec![]),
        "not yet at the reveal epoch's first block"
    );
    assert_eq!(on_chain[2], (3 * TEMPO, committed));
}

#[test]
fn without_commit_reveal_a_tempos_weights_count_at_its_own_epoch() {
    let (on_chain, produced) = run(false);
    let WeightsAction::Set { weights, .. } = &produced[0] else {
        panic!("{produced:?}");
    };
    assert_eq!(
        on_chain[0],
        (TEMPO, pairs(weights)),
        "in place at the first epoch"
    );
}

#[test]
fn with_commit_reveal_the_core_reveals_one_tempo_later_and_the_chain_waits_for_it() {
    let (on_chain, produced) = run(true);
    // Tempo 0 closes at block 10 with a commit; block 20 closes tempo 1 (another commit) and
    // reveals tempo 0's; block 30 the same one tempo on.
    let kinds: Vec<(&str, u64)> = produced
        .iter()
        .map(|a| match a {
            WeightsAction::Set { tempo, .. } => ("set", *tempo),
            WeightsAction::Commit { tempo, .. } => ("commit", *tempo),
            WeightsAction::Reveal { tempo, .. } => ("reveal", *tempo),
            WeightsAction::CommitTimelocked { tempo, .. } => ("timelocked", *tempo),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("commit", 0),
            ("commit", 1),
            ("reveal", 2),
            ("commit", 2),
            ("reveal", 3)
        ]
    );
    let WeightsAction::Commit { weights, .. } = &produced[0] else {
        unreachable!()
    };
    let committed = pairs(weights);
    assert_eq!(
        on_chain[0],
        (TEMPO, vec![]),
        "nothing counts at the commit's own epoch"
    );
    assert_eq!(
        on_chain[1],
        (2 * TEMPO, committed),
        "tempo 0's weights count one epoch later"
    );
}

#[test]
fn the_chain_refuses_a_reveal_that_does_not_open_a_commit() {
    let chain = SimChain::new(
        ChainConfig {
            tempo: TEMPO,
            commit_reveal: true,
            commit_reveal_version: 2,
            ..ChainConfig::default()
        },
        1,
        None,
    );
    let uid = chain.register("validator".into(), [1; 32], 1, None, 0);
    let weights = orchestra_mechanism::combine::MechanismWeights {
        mechanism: 0,
        uids: vec![0],
        values: vec![u16::MAX],
    };
    let commit = WeightsAction::Commit {
        id: 0,
        tempo: 0,
        weights: weights.clone(),
        salt: vec![1; 8],
        reveal_tempo: 2,
    };
    chain.set_block(5);
    chain.submit_weights(uid, &commit).unwrap();
    let reveal = |salt: Vec<u16>| WeightsAction::Reveal {
        id: 0,
        tempo: 1,
        weights: weights.clone(),
        salt,
    };
    let name = |r: Result<_, orchestra_chain::ChainError>| {
        r.err()
            .and_then(|e| e.module_error().map(|m| m.name.clone()))
    };
    assert_eq!(
        name(chain.submit_weights(uid, &reveal(vec![1; 8]))).as_deref(),
        Some("RevealTooEarly")
    );
    chain.set_block(12);
    assert_eq!(
        name(chain.submit_weights(uid, &reveal(vec![2; 8]))).as_deref(),
        Some("InvalidRevealCommitHashNotMatch")
    );
    assert!(chain.submit_weights(uid, &reveal(vec![1; 8])).is_ok());
    assert_eq!(chain.weights_of(uid, 0), vec![(0, u16::MAX)]);
    let set = WeightsAction::Set {
        id: 1,
        tempo: 1,
        weights,
    };
    assert_eq!(
        name(chain.submit_weights(uid, &set)).as_deref(),
        Some("CommitRevealEnabled")
    );
}
