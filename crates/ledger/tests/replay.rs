//! Property tests: any sequence of proposals and probe outcomes gives a log whose replay
//! reproduces the state and head; every proof verifies; tampered records and forked logs fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use orchestra_ledger::log::record_leaf_hash;
use orchestra_ledger::merkle::{MerkleTree, verify_consistency, verify_inclusion};
use orchestra_ledger::{ChangeRecord, Ledger, ProbeResult, VerifyParams};
use orchestra_protocol::ledger::{Change, Metrics, Proposal, ProposalChange};
use proptest::prelude::*;
use serde_json::json;

#[derive(Debug, Clone)]
enum Op {
    New {
        netuid: u16,
        response: u8,
    },
    Schema {
        netuid: u16,
        to_v2: bool,
        wrong_old: bool,
        response: u8,
    },
    Deprecate {
        netuid: u16,
        successes: usize,
    },
    Metrics {
        netuid: u16,
        p50: u64,
        probe_ms: u64,
        n: usize,
    },
    Duplicate {
        back: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let netuid = 1u16..6;
    prop_oneof![
        2 => (netuid.clone(), resp()).prop_map(|(netuid, response)| Op::New { netuid, response }),
        4 => (netuid.clone(), any::<bool>(), prop::bool::weighted(0.2), resp()).prop_map(
            |(netuid, to_v2, wrong_old, response)| Op::Schema { netuid, to_v2, wrong_old, response }
        ),
        1 => (netuid.clone(), 0usize..10).prop_map(|(netuid, successes)| Op::Deprecate { netuid, successes }),
        4 => (netuid, 100u64..2_000, 50u64..150, 3usize..8).prop_map(|(netuid, p50, pct, n)| Op::Metrics {
            netuid,
            p50,
            probe_ms: p50 * pct / 100,
            n
        }),
        2 => (0usize..6).prop_map(|back| Op::Duplicate { back }),
    ]
}

/// Probe outcome: mostly a v1 response, sometimes v2, sometimes a failure.
fn resp() -> impl Strategy<Value = u8> {
    prop_oneof![6 => Just(0u8), 2 => Just(1u8), 2 => Just(2u8)]
}

/// Arrival lag: mostly inside the 5-block window, sometimes late.
fn lag() -> impl Strategy<Value = u64> {
    prop_oneof![8 => 0u64..4, 1 => 4u64..10]
}

fn response(kind: u8) -> ProbeResult {
    match kind {
        0 => ok(200, response_v1()),
        1 => ok(200, response_v2()),
        _ => fail(),
    }
}

/// Drive a Ledger through `ops`; returns it and its log.
fn run(ops: &[(Op, u64, u64)]) -> (Ledger, Vec<ChangeRecord>) {
    let mut l = Ledger::new(VerifyParams::default());
    let mut log = Vec::new();
    let mut sent: Vec<(Proposal, orchestra_ledger::ProbeSet)> = Vec::new();
    let mut block = 0u64;
    // Most runs start from a populated Ledger so later ops have something to change.
    let seed: Vec<(Op, u64, u64)> = (1..4)
        .map(|netuid| {
            (
                Op::New {
                    netuid,
                    response: 0,
                },
                0,
                0,
            )
        })
        .collect();
    for (i, (op, advance, lag)) in seed.iter().chain(ops).enumerate() {
        block += advance;
        let (p, probes_) = match op.clone() {
            Op::New {
                netuid,
                response: r,
            } => (
                proposal(
                    netuid,
                    ProposalChange::NewSubnet {
                        entry: Box::new(entry(netuid)),
                    },
                    block,
                ),
                probes(vec![response(r)]),
            ),
            Op::Schema {
                netuid,
                to_v2,
                wrong_old,
                response: r,
            } => {
                let (old, new) = if to_v2 {
                    (schema_v1(), schema_v2())
                } else {
                    (schema_v2(), schema_v1())
                };
                let old = if wrong_old {
                    json!({"type": "null"})
                } else {
                    old
                };
                let ch = ProposalChange::SchemaUpdate {
                    changes: vec![Change {
                        path: "/endpoints/0/output_schema".into(),
                        old,
                        new,
                    }],
                };
                (proposal(netuid, ch, block), probes(vec![response(r)]))
            }
            Op::Deprecate { netuid, successes } => {
                let mut v: Vec<_> = (0..successes).map(|_| ok(100, response_v1())).collect();
                v.extend((successes..10).map(|_| fail()));
                (
                    proposal(
                        netuid,
                        ProposalChange::Deprecation {
                            reason: "down".into(),
                        },
                        block,
                    ),
                    probes(v),
                )
            }
            Op::Metrics {
                netuid,
                p50,
                probe_ms,
                n,
            } => {
                let m = Metrics {
                    p50_latency_ms: p50,
                    p95_latency_ms: 3_000,
                    reliability: 0.9,
                    cost_per_query_rao: 1_000,
                };
                (
                    proposal(netuid, ProposalChange::MetricsUpdate { metrics: m }, block),
                    probes((0..n).map(|_| ok(probe_ms, response_v1())).collect()),
                )
            }
            Op::Duplicate { back } => {
                match sent.len().checked_sub(back + 1).map(|j| sent[j].clone()) {
                    Some(x) => x,
                    None => continue,
                }
            }
        };
        let arrival = block.saturating_sub(*lag);
        let (_, rec) = l
            .process(
                &p,
                &format!("miner-{}", i % 3),
                &probes_,
                block,
                arrival,
                &["v".into()],
            )
            .unwrap();
        if let Some(r) = rec {
            log.push(r);
        }
        sent.push((p, probes_));
    }
    (l, log)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn replay_reproduces_state_head_and_proofs(
        ops in prop::collection::vec((op(), 0u64..3, lag()), 1..60),
        picks in prop::collection::vec(any::<prop::sample::Index>(), 4),
    ) {
        let (l, log) = run(&ops);
        // Replay from empty.
        let r = Ledger::replay(&log, VerifyParams::default()).unwrap();
        prop_assert_eq!(r.state(), l.state());
        prop_assert_eq!(r.head(), l.head());
        for (i, rec) in log.iter().enumerate() {
            prop_assert_eq!(rec.seq, i as u64);
        }
        let tree = l.tree();
        let n = tree.size();
        prop_assert_eq!(n, log.len() as u64);
        if n == 0 {
            return Ok(());
        }
        let root = tree.root();
        // Every inclusion proof at the final size verifies; a tampered record does not.
        for rec in &log {
            let leaf = record_leaf_hash(rec).unwrap();
            let path = tree.inclusion_proof(rec.seq, n).unwrap();
            prop_assert!(verify_inclusion(rec.seq, n, &leaf, &path, &root).is_ok());
            let mut t = rec.clone();
            t.proposer.push('!');
            let bad = record_leaf_hash(&t).unwrap();
            prop_assert!(verify_inclusion(rec.seq, n, &bad, &path, &root).is_err());
        }
        // Proofs at intermediate sizes and consistency between them.
        let a = picks[0].index(n as usize + 1) as u64;
        let b = a + picks[1].index((n - a) as usize + 1) as u64;
        let cp = tree.consistency_proof(a, b).unwrap();
        prop_assert!(verify_consistency(a, b, &tree.root_at(a).unwrap(), &tree.root_at(b).unwrap(), &cp).is_ok());
        if b > 0 {
            let i = picks[2].index(b as usize) as u64;
            let p = tree.inclusion_proof(i, b).unwrap();
            prop_assert!(verify_inclusion(i, b, &tree.leaf(i).unwrap(), &p, &tree.root_at(b).unwrap()).is_ok());
        }
        // A fork: same prefix up to k, then a different record. Its head is not consistent with
        // ours, whichever proof is offered.
        let k = picks[3].index(n as usize) as u64;
        let mut forked: Vec<_> = log.iter().map(|r| record_leaf_hash(r).unwrap()).collect();
        let mut other = log[k as usize].clone();
        other.evidence_hash = orchestra_protocol::Hash32([7; 32]);
        forked[k as usize] = record_leaf_hash(&other).unwrap();
        let fork = MerkleTree::from_leaf_hashes(forked);
        for m in (k + 1)..=n {
            let fork_root = fork.root_at(m).unwrap();
            let proof = tree.consistency_proof(m, n).unwrap();
            prop_assert!(verify_consistency(m, n, &fork_root, &root, &proof).is_err());
            let fproof = fork.consistency_proof(m, n).unwrap();
            prop_assert!(verify_consistency(m, n, &fork_root, &root, &fproof).is_err());
        }
        // A tampered log does not replay to the same head.
        let mut tampered = log.clone();
        tampered[k as usize].verifiers.push("mallory".into());
        if let Ok(t) = Ledger::replay(&tampered, VerifyParams::default()) {
            prop_assert_ne!(t.head().root, l.head().root);
        }
    }
}
