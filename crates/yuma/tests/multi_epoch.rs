//! Bonds carried from one epoch to the next, for original Yuma and Yuma 3 (with and without
//! liquid alpha): the caller feeds each output's permits and bonds back in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{carry, neuron};
use orchestra_yuma::{EpochInput, EpochOutput, run_epoch};

/// Two validators (3:1 stake) and two miners. Both validators start on miner 2 / miner 3 split;
/// from epoch 2 on, validator 1 moves all its weight to miner 2.
fn scenario(yuma3: bool, liquid: bool) -> EpochInput {
    let mut input = common::logs_setup(
        100,
        vec![
            neuron(true, 3_000_000_000, 0, 100),
            neuron(true, 1_000_000_000, 0, 100),
            neuron(false, 0, 0, 100),
            neuron(false, 0, 0, 100),
        ],
    );
    input.tempo = 100;
    input.activity_cutoff = 5000;
    input.yuma3 = yuma3;
    input.liquid_alpha = liquid;
    input.neurons[0].weights = vec![(2, 65535), (3, 20000)];
    input.neurons[1].weights = vec![(3, 65535)];
    input
}

fn run(yuma3: bool, liquid: bool, epochs: usize) -> Vec<EpochOutput> {
    let mut input = scenario(yuma3, liquid);
    let mut outs = Vec::new();
    for e in 0..epochs {
        if e == 1 {
            input.neurons[1].weights = vec![(2, 65535)];
        }
        let out = run_epoch(&input).unwrap();
        carry(&mut input, &out);
        input.block += 100;
        for nr in &mut input.neurons {
            nr.last_update = input.block;
        }
        outs.push(out);
    }
    outs
}

fn bond(out: &EpochOutput, i: usize, j: u16) -> u16 {
    out.bonds[i]
        .iter()
        .find(|(c, _)| *c == j)
        .map_or(0, |(_, b)| *b)
}

#[test]
fn original_yuma_bonds_move_gradually() {
    let outs = run(false, false, 6);
    // Epoch 0: validator 1 holds no bond on miner 2; afterwards its (max-upscaled) bond there
    // climbs each epoch at the EMA pace while validator 0 keeps the column maximum.
    assert_eq!(bond(&outs[0], 1, 2), 0);
    let v1: Vec<u16> = outs.iter().map(|o| bond(o, 1, 2)).collect();
    for w in v1[1..].windows(2) {
        assert!(w[1] > w[0], "{v1:?}");
    }
    assert!(v1[5] < 65535, "{v1:?}");
    for o in &outs {
        assert_eq!(bond(o, 0, 2), 65535);
    }
    // Validator 1's dividends follow its growing bond on miner 2 (now the only miner in
    // consensus), so they rise epoch over epoch.
    let d1: Vec<u16> = outs[1..].iter().map(|o| o.dividends[1]).collect();
    for w in d1.windows(2) {
        assert!(w[1] > w[0], "{d1:?}");
    }
    // Miners hold no bonds.
    assert!(
        outs.iter()
            .all(|o| o.bonds[2].is_empty() && o.bonds[3].is_empty())
    );
}

#[test]
fn yuma3_bonds_follow_the_ema() {
    let outs = run(true, false, 6);
    // Validator 0's normalised weight on miner 2 (65535 / 85535) is the consensus there, so its
    // bond is the EMA (1 − 0.9^k) of it (u16, truncated); each epoch strictly above the last.
    let b: Vec<u16> = outs.iter().map(|o| bond(o, 0, 2)).collect();
    assert!(outs.iter().all(|o| o.consensus[2] == 50211));
    for (k, &v) in b.iter().enumerate() {
        let exact = (1.0 - 0.9f64.powi(k as i32 + 1)) * 65535.0 * 65535.0 / 85535.0;
        assert!(
            (f64::from(v) - exact).abs() < 4.0,
            "epoch {k}: {v} vs {exact}"
        );
    }
    // Validator 1's bond on miner 3 decays geometrically once it stops weighting it (without
    // liquid alpha the EMA runs densely over old bonds too).
    let b13: Vec<u16> = outs.iter().map(|o| bond(o, 1, 3)).collect();
    assert!(b13[0] > 0);
    for w in b13[1..].windows(2) {
        assert!(w[1] < w[0], "{b13:?}");
    }
}

#[test]
fn yuma3_liquid_alpha_bonds_evolve() {
    let outs = run(true, true, 6);
    let plain = run(true, false, 6);
    let b: Vec<u16> = outs.iter().map(|o| bond(o, 0, 2)).collect();
    for w in b.windows(2) {
        assert!(w[1] > w[0], "{b:?}");
    }
    // Liquid alpha (0.7 .. 0.9 per edge) moves bonds much faster than the 0.1 moving average.
    assert!(b[0] > bond(&plain[0], 0, 2) * 5, "{b:?}");
    // A bond whose weight disappeared is not carried (entries exist only where weights do).
    assert!(outs[2..].iter().all(|o| bond(o, 1, 3) == 0));
    // ... and converges on the consensus weight (50211) from below.
    assert!(b[0] >= 35_000 && b.iter().all(|&v| v <= 50211), "{b:?}");
}
