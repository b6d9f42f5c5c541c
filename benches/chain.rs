//! Commit-reveal v4 benches: timelock-encrypting a weights commit to a drand round (what a
//! validator does once per mechanism per tempo, and the simulator for every validator), opening
//! it with the round's signature (what the chain does per commit at reveal), and predicting the
//! reveal round from the epoch schedule.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use orchestra_chain::crv4::{
    self, Beacon, QUICKNET_ROUND_1000_SIGNATURE, ScheduleState, WeightsTlockPayload,
};
use std::hint::black_box;

/// A commit of 256 weights (a full subnet's worth).
fn payload() -> Vec<u8> {
    WeightsTlockPayload {
        hotkey: vec![7; 32],
        uids: (0..256).collect(),
        values: (0..256).map(|i| (i * 255) as u16).collect(),
        version_key: 3,
    }
    .to_bytes()
}

fn timelock(c: &mut Criterion) {
    let beacon = Beacon::quicknet();
    let p = payload();
    c.bench_function("crv4_encrypt_256_weights", |b| {
        b.iter(|| crv4::encrypt(&beacon, black_box(&p), 1000, [5; 32]).unwrap())
    });
    let commit = crv4::encrypt(&beacon, &p, 1000, [5; 32]).unwrap();
    let sig = hex::decode(QUICKNET_ROUND_1000_SIGNATURE).unwrap();
    c.bench_function("crv4_decrypt_256_weights", |b| {
        b.iter(|| crv4::decrypt(black_box(&commit), &sig).unwrap())
    });
    let state = ScheduleState {
        tempo: 360,
        last_epoch_block: 1000,
        pending_epoch_at: 0,
        epoch_index: 10,
        blocks_since_last_step: 50,
    };
    c.bench_function("crv4_reveal_round_tempo_360", |b| {
        b.iter(|| crv4::reveal_round(black_box(state), 1050, 1, 12.0, 1.764e9).unwrap())
    });
}

criterion_group!(benches, timelock);
criterion_main!(benches);
