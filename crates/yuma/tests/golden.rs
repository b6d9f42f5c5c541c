//! A regression pin: a hash of every output of several multi-epoch runs on pseudo-random
//! subnets (both Yuma variants, liquid alpha, a partial bonds penalty, unsorted rows, masks).
//! The constant was recorded from the straightforward port; any optimisation must keep it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use orchestra_yuma::{EpochInput, NeuronInput, run_epoch};

struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn subnet(seed: u64, yuma3: bool, liquid: bool, penalty: u16) -> EpochInput {
    let mut r = XorShift(seed);
    let n = 300usize;
    let neurons = (0..n)
        .map(|u| {
            let validator = u % 7 == 0;
            let mut weights: Vec<(u16, u16)> = Vec::new();
            if validator || r.below(10) == 0 {
                for j in 0..n {
                    if r.below(3) == 0 {
                        weights.push((j as u16, r.below(65536) as u16));
                    }
                }
                if r.below(4) == 0 {
                    weights.reverse(); // stored order need not be sorted
                }
            }
            NeuronInput {
                stake: if validator {
                    r.below(1_000_000_000_000)
                } else {
                    r.below(1000)
                },
                validator_permit: validator || r.below(5) == 0,
                registered_at: r.below(50),
                last_update: 40 + r.below(70),
                weights,
                bonds: Vec::new(),
                commit_block: (r.below(8) == 0).then(|| r.below(60)),
            }
        })
        .collect();
    let mut input: EpochInput = serde_json::from_value(serde_json::json!({
        "block": 100, "emission": 1_000_000_000u64, "neurons": []
    }))
    .unwrap();
    input.neurons = neurons;
    input.tempo = 20;
    input.activity_cutoff = 50;
    input.max_allowed_validators = 48;
    input.yuma3 = yuma3;
    input.liquid_alpha = liquid;
    input.bonds_penalty = penalty;
    input.owner_uid = Some(3);
    input
}

fn fnv(h: &mut u64, bytes: &[u8]) {
    for b in bytes {
        *h ^= u64::from(*b);
        *h = h.wrapping_mul(0x100_0000_01b3);
    }
}

#[test]
fn outputs_are_pinned() {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for (seed, yuma3, liquid, penalty) in [
        (1, false, false, 65535),
        (2, false, false, 32768),
        (3, true, false, 65535),
        (4, true, true, 65535),
        (5, true, true, 20000),
        (6, false, false, 0),
    ] {
        let mut input = subnet(seed, yuma3, liquid, penalty);
        for _ in 0..3 {
            let out = run_epoch(&input).unwrap();
            fnv(&mut h, serde_json::to_string(&out).unwrap().as_bytes());
            for (i, nr) in input.neurons.iter_mut().enumerate() {
                nr.validator_permit = out.validator_permit[i];
                nr.bonds = out.bonds[i].clone();
                nr.last_update += 20;
            }
            input.block += 20;
        }
    }
    assert_eq!(h, 0xfecc_0330_84d6_676a, "golden hash changed: {h:#x}");
}
