//! Builders shared by the integration tests.
#![allow(dead_code)]

use orchestra_yuma::{EpochInput, NeuronInput, defaults};

/// The `epoch_logs.rs` setup: tempo 10, activity cutoff 10, 1e9 rao, no commit-reveal, Yuma off.
pub fn logs_setup(block: u64, neurons: Vec<NeuronInput>) -> EpochInput {
    EpochInput {
        block,
        tempo: 10,
        activity_cutoff: 10,
        emission: 1_000_000_000,
        kappa: defaults::KAPPA,
        bonds_penalty: defaults::BONDS_PENALTY,
        bonds_moving_average: defaults::BONDS_MOVING_AVERAGE,
        yuma3: false,
        liquid_alpha: false,
        alpha_low: defaults::ALPHA_LOW,
        alpha_high: defaults::ALPHA_HIGH,
        alpha_sigmoid_steepness: defaults::ALPHA_SIGMOID_STEEPNESS,
        max_allowed_validators: defaults::MAX_ALLOWED_VALIDATORS,
        stake_threshold: 0,
        owner_uid: None,
        last_mechanism_step_block: 0,
        neurons,
    }
}

/// `Neuron::new(uid, hotkey, validator, stake, reg, upd)` of `epoch_logs.rs`.
pub fn neuron(validator: bool, stake: u64, registered_at: u64, last_update: u64) -> NeuronInput {
    NeuronInput {
        stake,
        validator_permit: validator,
        registered_at,
        last_update,
        ..NeuronInput::default()
    }
}

/// `set_weights(netuid, rows, indices)`: row i sets `rows[i]` on `indices` (stored as given,
/// already max-upscaled in these tests).
pub fn set_weights(input: &mut EpochInput, rows: &[&[u16]], indices: &[u16]) {
    for (i, row) in rows.iter().enumerate() {
        input.neurons[i].weights = indices.iter().copied().zip(row.iter().copied()).collect();
    }
}

/// Feeds an epoch's new permits and bonds back into the next input.
pub fn carry(input: &mut EpochInput, out: &orchestra_yuma::EpochOutput) {
    for (i, nr) in input.neurons.iter_mut().enumerate() {
        nr.validator_permit = out.validator_permit[i];
        nr.bonds = out.bonds[i].clone();
    }
}
