//! Verification rules per proposal kind, the window, duplicate credit, slashing, TTLs and the
//! shape of the shipped mock entries.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use orchestra_ledger::engine::Outcome;
use orchestra_ledger::model::{ProposalKind, Ttl};
use orchestra_ledger::verify::verify;
use orchestra_ledger::{Credit, Ledger, ProbeSet, RejectReason, Verdict, VerifyParams};
use orchestra_protocol::ledger::{Change, Entry, Metrics, ProposalChange, Status};
use serde_json::json;

const ME: &str = "validator";

fn params() -> VerifyParams {
    VerifyParams::default()
}

fn rejected(v: Verdict) -> RejectReason {
    match v {
        Verdict::Rejected { reason } => reason,
        Verdict::Accepted => panic!("expected a rejection"),
    }
}

fn schema_update(old: serde_json::Value, new: serde_json::Value) -> ProposalChange {
    ProposalChange::SchemaUpdate {
        changes: vec![Change {
            path: "/endpoints/0/output_schema".into(),
            old,
            new,
        }],
    }
}

/// A Ledger holding `entry(22)`, added at block 10.
fn seeded() -> Ledger {
    let mut l = Ledger::new(params());
    let p = proposal(
        22,
        ProposalChange::NewSubnet {
            entry: Box::new(entry(22)),
        },
        10,
    );
    let (o, r) = l
        .process(
            &p,
            "miner-a",
            &probes(vec![ok(300, response_v1())]),
            10,
            10,
            &[ME.into()],
        )
        .unwrap();
    assert_eq!(
        o,
        Outcome::Accepted {
            credit: Credit::First
        }
    );
    let r = r.unwrap();
    assert_eq!((r.kind, r.path.as_str()), (ProposalKind::NewSubnet, ""));
    l
}

#[test]
fn new_subnet_needs_a_conforming_successful_probe() {
    let p = proposal(
        22,
        ProposalChange::NewSubnet {
            entry: Box::new(entry(22)),
        },
        1,
    );
    let good = probes(vec![ok(300, response_v1())]);
    assert_eq!(verify(None, &p, &good, 3, 1, &params()), Verdict::Accepted);
    let bad_shape = probes(vec![ok(300, response_v2())]);
    assert!(matches!(
        rejected(verify(None, &p, &bad_shape, 3, 1, &params())),
        RejectReason::NonConforming { .. }
    ));
    assert!(matches!(
        rejected(verify(None, &p, &probes(vec![fail()]), 3, 1, &params())),
        RejectReason::ProbeFailed { .. }
    ));
    assert!(matches!(
        rejected(verify(None, &p, &ProbeSet::new(), 3, 1, &params())),
        RejectReason::MissingProbe { .. }
    ));
    let e = entry(22);
    assert_eq!(
        rejected(verify(Some(&e), &p, &good, 3, 1, &params())),
        RejectReason::AlreadyExists
    );
    // The entry must describe the proposal's subnet.
    let wrong = proposal(
        23,
        ProposalChange::NewSubnet {
            entry: Box::new(entry(22)),
        },
        1,
    );
    assert!(matches!(
        rejected(verify(None, &wrong, &good, 3, 1, &params())),
        RejectReason::Malformed(_)
    ));
}

#[test]
fn schema_update_accepts_a_real_change() {
    let mut l = seeded();
    let p = proposal(22, schema_update(schema_v1(), schema_v2()), 20);
    let (o, r) = l
        .process(
            &p,
            "miner-b",
            &probes(vec![ok(300, response_v2())]),
            21,
            20,
            &[ME.into()],
        )
        .unwrap();
    assert_eq!(
        o,
        Outcome::Accepted {
            credit: Credit::First
        }
    );
    let r = r.unwrap();
    assert_eq!(r.path, "/endpoints/0/output_schema");
    let e = l.state().get(22).unwrap();
    assert_eq!(e.endpoints[0].output_schema, schema_v2());
    assert_eq!(e.version, 2);
    assert_eq!(e.last_verified_block, 21);
    assert_eq!(e.verified_by, vec![ME.to_string()]);
}

#[test]
fn schema_update_with_wrong_old_is_rejected_and_slashed() {
    let mut l = seeded();
    let p = proposal(
        22,
        schema_update(json!({"type": "string"}), schema_v2()),
        20,
    );
    let (o, r) = l
        .process(
            &p,
            "miner-b",
            &probes(vec![ok(300, response_v2())]),
            21,
            20,
            &[ME.into()],
        )
        .unwrap();
    assert!(r.is_none());
    assert_eq!(
        o,
        Outcome::Rejected {
            reason: RejectReason::OldMismatch {
                path: "/endpoints/0/output_schema".into()
            },
            slashed: true
        }
    );
}

#[test]
fn schema_update_whose_response_still_fits_old_is_rejected() {
    let e = entry(22);
    // New schema that the old response also satisfies, and a response fitting both.
    let loose = json!({"type": "object"});
    let p = proposal(22, schema_update(schema_v1(), loose), 20);
    let reason = rejected(verify(
        Some(&e),
        &p,
        &probes(vec![ok(300, response_v1())]),
        21,
        20,
        &params(),
    ));
    assert_eq!(
        reason,
        RejectReason::StillFitsOld {
            endpoint: "search".into()
        }
    );
    assert!(reason.slashable());
    // And a response that fits neither is non-conforming.
    let p = proposal(22, schema_update(schema_v1(), schema_v2()), 20);
    assert!(matches!(
        rejected(verify(
            Some(&e),
            &p,
            &probes(vec![ok(1, json!(5))]),
            21,
            20,
            &params()
        )),
        RejectReason::NonConforming { .. }
    ));
}

#[test]
fn schema_update_after_the_window_is_late_and_not_slashed() {
    let mut l = seeded();
    let p = proposal(22, schema_update(schema_v1(), schema_v2()), 20);
    // Arrived at 20; window 5: verifying at 25 is in time, at 26 late.
    let e = l.state().get(22).unwrap().clone();
    assert_eq!(
        verify(
            Some(&e),
            &p,
            &probes(vec![ok(1, response_v2())]),
            25,
            20,
            &params()
        ),
        Verdict::Accepted
    );
    let (o, r) = l
        .process(
            &p,
            "miner-b",
            &probes(vec![ok(1, response_v2())]),
            26,
            20,
            &[ME.into()],
        )
        .unwrap();
    assert!(r.is_none());
    assert_eq!(
        o,
        Outcome::Rejected {
            reason: RejectReason::Late {
                arrival_block: 20,
                verified_block: 26
            },
            slashed: false
        }
    );
    assert_eq!(
        l.state().get(22).unwrap().endpoints[0].output_schema,
        schema_v1()
    );
}

#[test]
fn schema_update_may_not_touch_bookkeeping_or_metrics() {
    let e = entry(22);
    for path in [
        "/version",
        "/metrics/p50_latency_ms",
        "/status",
        "/endpoints/0/name",
    ] {
        let p = proposal(
            22,
            ProposalChange::SchemaUpdate {
                changes: vec![Change {
                    path: path.into(),
                    old: json!(null),
                    new: json!(1),
                }],
            },
            1,
        );
        assert!(
            matches!(
                rejected(verify(
                    Some(&e),
                    &p,
                    &probes(vec![ok(1, response_v1())]),
                    1,
                    1,
                    &params()
                )),
                RejectReason::DisallowedPath { .. }
            ),
            "{path}"
        );
    }
}

#[test]
fn deprecation_needs_fewer_than_3_of_10_probes_to_succeed() {
    let e = entry(22);
    let p = proposal(
        22,
        ProposalChange::Deprecation {
            reason: "gone".into(),
        },
        1,
    );
    let run = |succ: usize| {
        let mut v: Vec<_> = (0..succ).map(|_| ok(100, response_v1())).collect();
        v.extend((succ..10).map(|_| fail()));
        verify(Some(&e), &p, &probes(v), 2, 1, &params())
    };
    assert_eq!(run(0), Verdict::Accepted);
    assert_eq!(run(2), Verdict::Accepted);
    assert_eq!(
        rejected(run(3)),
        RejectReason::StillServing {
            successes: 3,
            probes: 10
        }
    );
    assert!(matches!(
        rejected(run(10)),
        RejectReason::StillServing { .. }
    ));
    // A probe over the 5 s timeout counts as failed even if it answered.
    let mut v = vec![
        ok(100, response_v1()),
        ok(100, response_v1()),
        ok(5_001, response_v1()),
    ];
    v.extend((3..10).map(|_| fail()));
    assert_eq!(
        verify(Some(&e), &p, &probes(v), 2, 1, &params()),
        Verdict::Accepted
    );
    // Fewer than 10 probes cannot judge it, and that is not the proposer's fault.
    let r = rejected(verify(
        Some(&e),
        &p,
        &probes(vec![fail(); 9]),
        2,
        1,
        &params(),
    ));
    assert_eq!(r, RejectReason::InsufficientProbes { needed: 10, got: 9 });
    assert!(!r.slashable());
}

#[test]
fn deprecation_applies_and_blocks_further_updates() {
    let mut l = seeded();
    let p = proposal(
        22,
        ProposalChange::Deprecation {
            reason: "gone".into(),
        },
        30,
    );
    let (o, _) = l
        .process(&p, "m", &probes(vec![fail(); 10]), 31, 30, &[ME.into()])
        .unwrap();
    assert_eq!(
        o,
        Outcome::Accepted {
            credit: Credit::First
        }
    );
    assert_eq!(l.state().get(22).unwrap().status, Status::Deprecated);
    let again = proposal(
        22,
        ProposalChange::MetricsUpdate {
            metrics: entry(22).metrics,
        },
        32,
    );
    let (o, _) = l
        .process(
            &again,
            "m",
            &probes(vec![ok(340, response_v1()); 5]),
            33,
            32,
            &[ME.into()],
        )
        .unwrap();
    assert!(matches!(
        o,
        Outcome::Rejected {
            reason: RejectReason::AlreadyDeprecated,
            ..
        }
    ));
}

#[test]
fn metrics_update_within_30_percent_with_5_probes() {
    let e = entry(22);
    let m = |p50| Metrics {
        p50_latency_ms: p50,
        p95_latency_ms: 2_000,
        reliability: 0.95,
        cost_per_query_rao: 1_000_000,
    };
    let lat = |ms: u64| probes((0..5).map(|_| ok(ms, response_v1())).collect());
    let p = proposal(22, ProposalChange::MetricsUpdate { metrics: m(1_000) }, 1);
    assert_eq!(
        verify(Some(&e), &p, &lat(1_300), 1, 1, &params()),
        Verdict::Accepted
    );
    assert_eq!(
        verify(Some(&e), &p, &lat(700), 1, 1, &params()),
        Verdict::Accepted
    );
    assert!(matches!(
        rejected(verify(Some(&e), &p, &lat(1_301), 1, 1, &params())),
        RejectReason::MetricsOutOfTolerance { .. }
    ));
    assert!(matches!(
        rejected(verify(Some(&e), &p, &lat(699), 1, 1, &params())),
        RejectReason::MetricsOutOfTolerance { .. }
    ));
    let four = probes((0..4).map(|_| ok(1_000, response_v1())).collect());
    assert_eq!(
        rejected(verify(Some(&e), &p, &four, 1, 1, &params())),
        RejectReason::InsufficientProbes { needed: 5, got: 4 }
    );
    // Median, not mean: one outlier does not move it.
    let mut v: Vec<_> = (0..4).map(|_| ok(1_000, response_v1())).collect();
    v.push(ok(4_900, response_v1()));
    assert_eq!(
        verify(Some(&e), &p, &probes(v), 1, 1, &params()),
        Verdict::Accepted
    );
}

#[test]
fn duplicates_give_first_then_confirmation_then_nothing() {
    let mut l = seeded();
    let change = ProposalChange::MetricsUpdate {
        metrics: Metrics {
            p50_latency_ms: 500,
            p95_latency_ms: 1_500,
            reliability: 0.9,
            cost_per_query_rao: 2_000_000,
        },
    };
    let pr = probes((0..5).map(|_| ok(480, response_v1())).collect());
    let a = proposal(22, change.clone(), 40);
    let b = proposal(22, change.clone(), 41); // same content, seen later by another miner
    assert_eq!(a.content_id().unwrap(), b.content_id().unwrap());
    let (oa, ra) = l.process(&a, "miner-a", &pr, 40, 40, &[ME.into()]).unwrap();
    let (ob, rb) = l.process(&b, "miner-b", &pr, 42, 42, &[ME.into()]).unwrap();
    assert_eq!(
        oa,
        Outcome::Accepted {
            credit: Credit::First
        }
    );
    assert_eq!(
        ob,
        Outcome::Accepted {
            credit: Credit::Confirmation
        }
    );
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra.proposal_id, rb.proposal_id);
    assert_eq!(
        (ra.credit, rb.credit),
        (Credit::First, Credit::Confirmation)
    );
    assert_eq!(rb.proposer, "miner-b");
    // The confirmation does not change the entry again.
    assert_eq!(l.state().get(22).unwrap().version, 2);
    // A third copy arriving after the first's window: no credit, no slash.
    let c = proposal(22, change, 46);
    let (oc, rc) = l.process(&c, "miner-c", &pr, 46, 46, &[ME.into()]).unwrap();
    assert!(rc.is_none());
    assert_eq!(
        oc,
        Outcome::Rejected {
            reason: RejectReason::AlreadyApplied,
            slashed: false
        }
    );
    // Replaying the log reproduces everything.
    let mut log = Vec::new();
    let replayed = {
        let mut l2 = Ledger::new(params());
        // Rebuild the same sequence to collect records.
        let p0 = proposal(
            22,
            ProposalChange::NewSubnet {
                entry: Box::new(entry(22)),
            },
            10,
        );
        for (p, who, cur, arr) in [
            (&p0, "miner-a", 10, 10),
            (&a, "miner-a", 40, 40),
            (&b, "miner-b", 42, 42),
        ] {
            let pr0 = if who == "miner-a" && cur == 10 {
                probes(vec![ok(300, response_v1())])
            } else {
                pr.clone()
            };
            let (_, r) = l2.process(p, who, &pr0, cur, arr, &[ME.into()]).unwrap();
            log.push(r.unwrap());
        }
        Ledger::replay(&log, params()).unwrap()
    };
    assert_eq!(replayed.state(), l.state());
    assert_eq!(replayed.head(), l.head());
}

#[test]
fn invalid_duplicates_are_slashed_even_inside_the_window() {
    let mut l = seeded();
    let change = ProposalChange::Deprecation {
        reason: "down".into(),
    };
    let a = proposal(22, change.clone(), 40);
    let (oa, _) = l
        .process(&a, "a", &probes(vec![fail(); 10]), 40, 40, &[ME.into()])
        .unwrap();
    assert_eq!(
        oa,
        Outcome::Accepted {
            credit: Credit::First
        }
    );
    // The same claim judged on probes that show the subnet alive is false for this proposer.
    let b = proposal(22, change, 41);
    let (ob, _) = l
        .process(
            &b,
            "b",
            &probes(vec![ok(10, response_v1()); 10]),
            41,
            41,
            &[ME.into()],
        )
        .unwrap();
    assert!(matches!(ob, Outcome::Rejected { slashed: true, .. }));
}

#[test]
fn ttl_and_staleness() {
    let ttl = Ttl::default();
    assert_eq!(ttl.metrics_blocks, 7_200);
    assert_eq!(ttl.schema_blocks, 50_400);
    let l = seeded(); // verified at block 10
    let s = l.state();
    assert!(!s.staleness(22, 10 + 7_200, &ttl).unwrap().any());
    let st = s.staleness(22, 10 + 7_201, &ttl).unwrap();
    assert!(st.metrics && !st.schemas);
    assert!(s.staleness(22, 10 + 50_401, &ttl).unwrap().schemas);
    assert_eq!(s.stale_first(10 + 7_201, &ttl), vec![22]);
    assert!(s.stale_first(10, &ttl).is_empty());
    let custom = Ttl::from_seconds(60, 120, 12);
    assert_eq!((custom.metrics_blocks, custom.schema_blocks), (5, 10));
}

#[test]
fn all_mock_files_load_and_pass_new_subnet_shape_checks() {
    let entries: Vec<Entry> = mock_entries();
    assert_eq!(entries.len(), 12);
    let tags: std::collections::BTreeSet<&str> = entries
        .iter()
        .flat_map(|e| e.endpoints.iter().map(|ep| ep.capability.as_str()))
        .collect();
    for t in [
        "web_search",
        "social_scrape",
        "web_scrape",
        "llm_synthesis",
        "llm_inference",
        "embedding",
        "image_generation",
        "data_query",
        "sentiment",
        "translation",
    ] {
        assert!(tags.contains(t), "no endpoint for {t}");
    }
    for e in &entries {
        for ep in &e.endpoints {
            assert!(
                e.capabilities.contains(&ep.capability),
                "{}: {}",
                e.name,
                ep.name
            );
            assert!(
                orchestra_ledger::verify::conforms(&ep.input_schema, &ep.minimal_input),
                "{}/{}: minimal_input does not fit input_schema",
                e.name,
                ep.name
            );
        }
    }
}

/// A metrics update whose evidence is one probe (request hash all `request`) started at
/// `started_at_ms`.
fn evidenced(started_at_ms: u64, request: u8) -> orchestra_protocol::ledger::Proposal {
    let mut p = proposal(
        22,
        ProposalChange::MetricsUpdate {
            metrics: Metrics {
                p50_latency_ms: 500,
                p95_latency_ms: 1_500,
                reliability: 0.9,
                cost_per_query_rao: 2_000_000,
            },
        },
        40,
    );
    p.evidence = vec![orchestra_protocol::ledger::ProbeEvidence {
        endpoint: "search".into(),
        request_hash: orchestra_protocol::Hash32([request; 32]),
        response_hash: Some(orchestra_protocol::Hash32([7; 32])),
        started_at_ms,
        latency_ms: 480,
        ok: true,
    }];
    p
}

#[test]
fn a_verbatim_copy_of_accepted_evidence_is_rejected_and_slashed_on_every_replica() {
    let pr = probes((0..5).map(|_| ok(480, response_v1())).collect());
    let first = evidenced(1_000, 1);
    let mut l = seeded();
    let (o, record) = l
        .process(&first, "miner-a", &pr, 40, 40, &[ME.into()])
        .unwrap();
    assert_eq!(
        o,
        Outcome::Accepted {
            credit: Credit::First
        }
    );
    // Another miner's own observation of the same change (its own probe) confirms it.
    let own = evidenced(1_200, 2);
    let (o, _) = l
        .process(&own, "miner-b", &pr, 41, 41, &[ME.into()])
        .unwrap();
    assert_eq!(
        o,
        Outcome::Accepted {
            credit: Credit::Confirmation
        }
    );
    // The first proposer's evidence under a third name is a copy: rejected, slashed, not logged.
    let size = l.tree().size();
    let (o, r) = l
        .process(&first, "farmer", &pr, 42, 42, &[ME.into()])
        .unwrap();
    assert_eq!(
        o,
        Outcome::Rejected {
            reason: RejectReason::CopiedEvidence {
                original: "miner-a".into()
            },
            slashed: true
        }
    );
    assert!(r.is_none());
    assert_eq!(l.tree().size(), size);

    // A replica that only received the log (a peer validator's) knows the evidence too.
    let mut peer = seeded();
    peer.append(&record.unwrap().clone()).unwrap();
    let (o, _) = peer
        .process(&first, "farmer", &pr, 42, 42, &[ME.into()])
        .unwrap();
    assert!(matches!(
        o,
        Outcome::Rejected {
            reason: RejectReason::CopiedEvidence { .. },
            slashed: true
        }
    ));

    // Switched off (the seed's rules) the same copy is a confirmation.
    let mut seed = seeded();
    seed.set_params(VerifyParams {
        reject_copied_evidence: false,
        ..params()
    });
    seed.process(&first, "miner-a", &pr, 40, 40, &[ME.into()])
        .unwrap();
    let (o, _) = seed
        .process(&first, "farmer", &pr, 42, 42, &[ME.into()])
        .unwrap();
    assert_eq!(
        o,
        Outcome::Accepted {
            credit: Credit::Confirmation
        }
    );
}

#[test]
fn copied_evidence_is_forgotten_after_the_memory() {
    let pr = probes((0..5).map(|_| ok(480, response_v1())).collect());
    let first = evidenced(1_000, 1);
    let mut l = seeded();
    l.process(&first, "miner-a", &pr, 40, 40, &[ME.into()])
        .unwrap();
    let later = 40 + params().evidence_memory_blocks + 1;
    // Past the memory the evidence is forgotten: the proposal is judged by the other rules only.
    let (o, _) = l
        .process(&first, "farmer", &pr, later, later, &[ME.into()])
        .unwrap();
    assert!(
        !matches!(
            o,
            Outcome::Rejected {
                reason: RejectReason::CopiedEvidence { .. },
                ..
            }
        ),
        "{o:?}"
    );
}
