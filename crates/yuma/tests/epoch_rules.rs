//! The spec-459 epoch rules that changed results since spec 103, against the chain's tests:
//! RaoFoundation/subtensor `pallets/subtensor/src/tests/epoch/self_weight.rs`
//! (`test_can_set_self_weight_as_subnet_owner`) and `tests/epoch/snipe_weight_mask.rs`
//! (`test_epoch_masks_incoming_to_sniped_uid_prevents_inheritance`, whose rule — a validator's
//! weights to a uid registered after its earliest live commit are masked — is checked here on a
//! direct input rather than the pallet's block-by-block setup).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use orchestra_yuma::{EpochInput, NeuronInput, run_epoch};

fn input(block: u64, neurons: Vec<NeuronInput>) -> EpochInput {
    let mut input: EpochInput = serde_json::from_value(serde_json::json!({
        "block": block, "emission": 1_000_000_000u64, "neurons": []
    }))
    .unwrap();
    input.neurons = neurons;
    input.stake_threshold = 0;
    input
}

/// The owner (uid 0, 5e12 stake, the only permit) weighs itself and uid 1 equally
/// (`Weights[0] = [(0, 32767), (1, 32767)]`, `LastUpdate = [2, 0]`): its self-weight is kept, so
/// both earn, equally. Without an owner the diagonal is masked and uid 1 takes everything.
#[test]
fn test_can_set_self_weight_as_subnet_owner() {
    let neurons = vec![
        NeuronInput {
            stake: 5_000_000_000_000,
            validator_permit: true,
            last_update: 2,
            weights: vec![(0, 32_767), (1, 32_767)],
            ..NeuronInput::default()
        },
        NeuronInput::default(),
    ];
    let mut owned = input(3, neurons);
    owned.owner_uid = Some(0);
    let out = run_epoch(&owned).unwrap();
    assert!(
        out.incentive[0] > 0 && out.incentive[0] == out.incentive[1],
        "{:?}",
        out.incentive
    );

    owned.owner_uid = None;
    let out = run_epoch(&owned).unwrap();
    assert_eq!(out.incentive, vec![0, u16::MAX]);
}

/// A validator whose latest commit (its `LastUpdate`, 35) is after a miner's registration (30)
/// but whose earliest live commit (20) is before it: the commit-reveal mask drops its weight to
/// that miner (`commit_block < registered_at`), so the sniped uid inherits nothing; the same
/// weights without a live earlier commit count.
#[test]
fn weights_to_a_uid_registered_after_a_live_commit_are_masked() {
    let validator = |commit_block| NeuronInput {
        stake: 10_000,
        validator_permit: true,
        last_update: 35,
        weights: vec![(1, u16::MAX), (2, u16::MAX)],
        commit_block,
        ..NeuronInput::default()
    };
    let miner = |registered_at| NeuronInput {
        registered_at,
        ..NeuronInput::default()
    };
    let sniped = run_epoch(&input(40, vec![validator(Some(20)), miner(30), miner(0)])).unwrap();
    assert_eq!(sniped.incentive, vec![0, 0, u16::MAX]);
    let honest = run_epoch(&input(40, vec![validator(Some(31)), miner(30), miner(0)])).unwrap();
    assert!(honest.incentive[1] > 0 && honest.incentive[1] == honest.incentive[2]);
    // Without commit-reveal the mask is only `last_update <= registered_at`.
    let plain = run_epoch(&input(40, vec![validator(None), miner(30), miner(0)])).unwrap();
    assert_eq!(plain.incentive, honest.incentive);
}
