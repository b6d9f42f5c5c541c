//! subtensor's Yuma 3 trajectories (`tests/epoch.rs`, the `test_yuma_3_*` cases): three
//! validators, liquid alpha (0.1 .. 0.3, steepness 1000), bonds penalty 0, six epochs of weight
//! changes. The chain asserts each epoch's dividends within 1e-3; we do the same, and also check
//! the bond targets it lists (which its own loop never reaches: it zips two targets with
//! `.skip(3)`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use orchestra_yuma::{EpochInput, NeuronInput, run_epoch};

/// `set_alpha_values_32(0.1, 0.3)` stores `(0.1·65535, 0.3·65535)` truncated.
const ALPHA_LOW: u16 = 6553;
const ALPHA_HIGH: u16 = 19660;

/// The chain's `set_weights` max-upscales a row with rounding.
fn upscale(row: &[u16]) -> Vec<u16> {
    let max = u64::from(*row.iter().max().unwrap());
    row.iter()
        .map(|&w| {
            (u64::from(w) * 65535 + max / 2)
                .checked_div(max)
                .unwrap_or(0) as u16
        })
        .collect()
}

struct Scenario {
    input: EpochInput,
    validators: usize,
}

impl Scenario {
    /// `setup_yuma_3_scenario`: everyone registered at block 1, one permit-setting epoch at
    /// block 2.
    fn new(stakes: &[u64], liquid: bool) -> Self {
        let neurons = stakes
            .iter()
            .map(|&stake| NeuronInput {
                stake,
                registered_at: 1,
                last_update: 1,
                ..NeuronInput::default()
            })
            .collect();
        let mut input: EpochInput = serde_json::from_value(serde_json::json!({
            "block": 2, "emission": 1_000_000_000u64, "neurons": []
        }))
        .unwrap();
        input.neurons = neurons;
        input.tempo = 1;
        input.bonds_penalty = 0;
        input.alpha_sigmoid_steepness = 1000;
        input.bonds_moving_average = 975_000;
        input.kappa = u16::MAX / 2;
        input.liquid_alpha = liquid;
        input.alpha_low = ALPHA_LOW;
        input.alpha_high = ALPHA_HIGH;
        input.yuma3 = true;
        input.max_allowed_validators = 3;
        let mut s = Scenario {
            input,
            validators: 3,
        };
        s.epoch();
        s
    }

    fn epoch(&mut self) -> orchestra_yuma::EpochOutput {
        let out = run_epoch(&self.input).unwrap();
        for (i, nr) in self.input.neurons.iter_mut().enumerate() {
            nr.validator_permit = out.validator_permit[i];
            nr.bonds = out.bonds[i].clone();
        }
        self.input.block += 1;
        out
    }

    /// Validators set `rows` on `servers` at the current block.
    fn set_weights(&mut self, rows: &[&[u16]], servers: &[u16]) {
        let block = self.input.block;
        for (i, row) in rows.iter().enumerate().take(self.validators) {
            let nr = &mut self.input.neurons[i];
            nr.weights = servers.iter().copied().zip(upscale(row)).collect();
            nr.last_update = block;
        }
    }
}

fn check(
    out: &orchestra_yuma::EpochOutput,
    epoch: usize,
    servers: &[u16],
    bonds: Option<&[Vec<f64>]>,
    dividends: &[f64],
) {
    for (i, &t) in dividends.iter().enumerate() {
        let d = f64::from(out.dividends[i]) / 65535.0;
        assert!(
            (d - t).abs() <= 1e-3,
            "epoch {epoch}: dividend[{i}] {d:.4} vs {t}"
        );
    }
    if let Some(bonds) = bonds {
        for (i, row) in bonds.iter().enumerate() {
            for (k, &t) in row.iter().enumerate() {
                let j = servers[k];
                let b = out.bonds[i]
                    .iter()
                    .find(|(c, _)| *c == j)
                    .map_or(0, |(_, b)| *b);
                let b = f64::from(b) / 65535.0;
                assert!(
                    (b - t).abs() <= 1e-3,
                    "epoch {epoch}: bond[{i}][{j}] {b:.4} vs {t}"
                );
            }
        }
    }
}

const A1: &[u16] = &[u16::MAX, 0];
const A2: &[u16] = &[0, u16::MAX];

fn run_two_server_case(
    stakes: &[u64],
    liquid: bool,
    weights: &dyn Fn(usize) -> Option<[&'static [u16]; 3]>,
    bonds: Option<&[[[f64; 2]; 3]; 6]>,
    dividends: &[[f64; 5]; 6],
) {
    let mut s = Scenario::new(stakes, liquid);
    for epoch in 0..6 {
        if let Some(rows) = weights(epoch) {
            s.set_weights(&rows, &[3, 4]);
        }
        let out = s.epoch();
        let b: Option<Vec<Vec<f64>>> = bonds.map(|b| b[epoch].iter().map(|r| r.to_vec()).collect());
        check(&out, epoch, &[3, 4], b.as_deref(), &dividends[epoch]);
    }
}

#[test]
fn kappa_moves_first() {
    run_two_server_case(
        &[8, 1, 1, 0, 0],
        true,
        &|e| match e {
            0 => Some([A1, A1, A1]),
            1 => Some([A2, A1, A1]),
            2 => Some([A2, A2, A1]),
            3 => Some([A2, A2, A2]),
            _ => None,
        },
        Some(&[
            [[0.1013, 0.0], [0.1013, 0.0], [0.1013, 0.0]],
            [[0.0908, 0.1013], [0.3697, 0.0], [0.3697, 0.0]],
            [[0.0815, 0.1924], [0.3170, 0.1013], [0.5580, 0.0]],
            [[0.0731, 0.2742], [0.2765, 0.1924], [0.4306, 0.1013]],
            [[0.0656, 0.3478], [0.2435, 0.2742], [0.3589, 0.1924]],
            [[0.0588, 0.4139], [0.2157, 0.3478], [0.3089, 0.2742]],
        ]),
        &[
            [0.8000, 0.1000, 0.1000, 0.0, 0.0],
            [1.0000, 0.0000, 0.0000, 0.0, 0.0],
            [0.9382, 0.0618, 0.0000, 0.0, 0.0],
            [0.8819, 0.0773, 0.0407, 0.0, 0.0],
            [0.8564, 0.0844, 0.0592, 0.0, 0.0],
            [0.8418, 0.0884, 0.0697, 0.0, 0.0],
        ],
    );
}

#[test]
fn kappa_moves_second() {
    run_two_server_case(
        &[8, 1, 1, 0, 0],
        true,
        &|e| match e {
            0 => Some([A1, A1, A1]),
            1 => Some([A1, A2, A1]),
            2 => Some([A2, A2, A1]),
            3 => Some([A2, A2, A2]),
            _ => None,
        },
        Some(&[
            [[0.1013, 0.0], [0.1013, 0.0], [0.1013, 0.0]],
            [[0.1924, 0.0], [0.0908, 0.2987], [0.1924, 0.0]],
            [[0.1715, 0.1013], [0.0815, 0.3697], [0.4336, 0.0]],
            [[0.1531, 0.1924], [0.0731, 0.4336], [0.3608, 0.1013]],
            [[0.1369, 0.2742], [0.0656, 0.4910], [0.3103, 0.1924]],
            [[0.1225, 0.3478], [0.0588, 0.5426], [0.2712, 0.2742]],
        ]),
        &[
            [0.8000, 0.1000, 0.1000, 0.0, 0.0],
            [0.8446, 0.0498, 0.1056, 0.0, 0.0],
            [0.6868, 0.3132, 0.0000, 0.0, 0.0],
            [0.7421, 0.2090, 0.0489, 0.0, 0.0],
            [0.7625, 0.1706, 0.0669, 0.0, 0.0],
            [0.7730, 0.1508, 0.0762, 0.0, 0.0],
        ],
    );
}

#[test]
fn kappa_moves_last() {
    run_two_server_case(
        &[8, 1, 1, 0, 0],
        true,
        &|e| match e {
            0 => Some([A1, A1, A1]),
            1 => Some([A1, A2, A1]),
            2 => Some([A1, A2, A2]),
            3 => Some([A2, A2, A2]),
            _ => None,
        },
        Some(&[
            [[0.1013, 0.0], [0.1013, 0.0], [0.1013, 0.0]],
            [[0.1924, 0.0], [0.0908, 0.2987], [0.1924, 0.0]],
            [[0.2742, 0.0], [0.0815, 0.5081], [0.1715, 0.2987]],
            [[0.2416, 0.1013], [0.0731, 0.5580], [0.1531, 0.3697]],
            [[0.2141, 0.1924], [0.0656, 0.6028], [0.1369, 0.4336]],
            [[0.1903, 0.2742], [0.0588, 0.6430], [0.1225, 0.4910]],
        ]),
        &[
            [0.8000, 0.1000, 0.1000, 0.0, 0.0],
            [0.8446, 0.0498, 0.1056, 0.0, 0.0],
            [0.8966, 0.0333, 0.0701, 0.0, 0.0],
            [0.4663, 0.3210, 0.2127, 0.0, 0.0],
            [0.5976, 0.2340, 0.1683, 0.0, 0.0],
            [0.6592, 0.1932, 0.1475, 0.0, 0.0],
        ],
    );
}

#[test]
fn one_epoch_switch() {
    run_two_server_case(
        &[33, 33, 34, 0, 0],
        true,
        &|e| match e {
            2 => Some([A1, A1, A2]),
            _ => Some([A1, A1, A1]),
        },
        Some(&[
            [[0.1013, 0.0], [0.1013, 0.0], [0.1013, 0.0]],
            [[0.1924, 0.0], [0.1924, 0.0], [0.1924, 0.0]],
            [[0.2742, 0.0], [0.2742, 0.0], [0.1715, 0.2987]],
            [[0.3478, 0.0], [0.3478, 0.0], [0.2554, 0.2618]],
            [[0.4139, 0.0], [0.4139, 0.0], [0.3309, 0.2312]],
            [[0.4733, 0.0], [0.4733, 0.0], [0.3987, 0.2051]],
        ]),
        &[
            [0.3300, 0.3300, 0.3400, 0.0, 0.0],
            [0.3300, 0.3300, 0.3400, 0.0, 0.0],
            [0.3782, 0.3782, 0.2436, 0.0, 0.0],
            [0.3628, 0.3628, 0.2745, 0.0, 0.0],
            [0.3541, 0.3541, 0.2917, 0.0, 0.0],
            [0.3487, 0.3487, 0.3026, 0.0, 0.0],
        ],
    );
}

/// Liquid alpha off: the plain EMA with bonds moving average 975_000 (alpha 0.025). The chain
/// lists its bond targets in a different shape here, so only dividends are checked.
#[test]
fn liquid_alpha_disabled() {
    run_two_server_case(
        &[33, 33, 34, 0, 0],
        false,
        &|e| match e {
            2 => Some([A1, A1, A2]),
            _ => Some([A1, A1, A1]),
        },
        None,
        &[
            [0.3300, 0.3300, 0.3400, 0.0, 0.0],
            [0.3300, 0.3300, 0.3400, 0.0, 0.0],
            [0.3734, 0.3734, 0.2532, 0.0, 0.0],
            [0.3611, 0.3611, 0.2779, 0.0, 0.0],
            [0.3541, 0.3541, 0.2919, 0.0, 0.0],
            [0.3495, 0.3495, 0.3009, 0.0, 0.0],
        ],
    );
}

#[test]
fn stable_miner() {
    let mut s = Scenario::new(&[8, 1, 1, 0, 0, 0], true);
    let h = u16::MAX / 2;
    let bonds = [
        [
            [0.0507, 0.0, 0.0507],
            [0.0507, 0.0, 0.0507],
            [0.0507, 0.0, 0.0507],
        ],
        [
            [0.0962, 0.0, 0.0962],
            [0.0455, 0.1000, 0.0962],
            [0.0962, 0.0, 0.0962],
        ],
        [
            [0.0863, 0.0507, 0.1371],
            [0.0408, 0.1405, 0.1371],
            [0.1770, 0.0, 0.1371],
        ],
        [
            [0.0774, 0.0962, 0.1739],
            [0.0367, 0.1770, 0.1739],
            [0.1579, 0.0507, 0.1739],
        ],
        [
            [0.0694, 0.1371, 0.2069],
            [0.0329, 0.2097, 0.2069],
            [0.1411, 0.0962, 0.2069],
        ],
        [
            [0.0623, 0.1739, 0.2366],
            [0.0296, 0.2391, 0.2366],
            [0.1263, 0.1371, 0.2366],
        ],
    ];
    let dividends = [
        [0.8000, 0.1000, 0.1000, 0.0, 0.0, 0.0],
        [0.8226, 0.0745, 0.1028, 0.0, 0.0, 0.0],
        [0.7750, 0.1685, 0.0565, 0.0, 0.0, 0.0],
        [0.7864, 0.1372, 0.0764, 0.0, 0.0, 0.0],
        [0.7912, 0.1241, 0.0847, 0.0, 0.0, 0.0],
        [0.7937, 0.1173, 0.0890, 0.0, 0.0, 0.0],
    ];
    let p: &[u16] = &[h, 0, h];
    let q: &[u16] = &[0, h, h];
    for epoch in 0..6 {
        match epoch {
            0 => s.set_weights(&[p, p, p], &[3, 4, 5]),
            1 => s.set_weights(&[p, q, p], &[3, 4, 5]),
            2 => s.set_weights(&[q, q, p], &[3, 4, 5]),
            3 => s.set_weights(&[q, q, q], &[3, 4, 5]),
            _ => {}
        }
        let out = s.epoch();
        let b: Vec<Vec<f64>> = bonds[epoch].iter().map(|r| r.to_vec()).collect();
        check(&out, epoch, &[3, 4, 5], Some(&b), &dividends[epoch]);
    }
}
