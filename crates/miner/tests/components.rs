#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Unit tests of the miner components against the fake Ledger and subnets in `support`.

mod support;

use orchestra_miner::local::drive;
use orchestra_miner::{
    DetectorConfig, Execution, ExecutionConfig, LedgerView, Miner, MinerConfig, Observation,
    Planner, ProposalDetector, Router, RouterConfig, SubCall, SubCallFailure, SubCallOutcome,
};
use orchestra_protocol::hash::Hash32;
use orchestra_protocol::ledger::{ProposalChange, Status};
use orchestra_protocol::messages::{Challenge, Objective, PipelineStep, Response};
use orchestra_protocol::proof;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use std::collections::BTreeMap;
use support::{ledger_entries, subnets, templates};

const BLOCK: u64 = 1_100;
const T0: u64 = 1_700_000_000_000;

fn challenge(kind: &str, deadline_ms: u64) -> Challenge {
    let t = templates().into_iter().find(|t| t.kind == kind).unwrap();
    Challenge {
        challenge_id: Hash32([7; 32]),
        validator: "validator".into(),
        issued_block: BLOCK,
        issued_at_ms: T0,
        salt: Hash32([9; 32]),
        objective: Objective {
            kind: kind.into(),
            text: "objective".into(),
            params: json!({"topic": "smart rings", "region": "Japan"}),
        },
        target_schema: t.target_schema,
        deadline_ms,
        budget_rao: None,
        replay_binding: false,
    }
}

fn view() -> LedgerView {
    LedgerView::new(ledger_entries())
}

#[test]
fn planner_picks_the_reference_decomposition_for_each_template() {
    let templates = templates();
    let planner = Planner::new(&templates);
    let router = Router::default();
    let view = view();
    for t in &templates {
        let c = challenge(&t.kind, 30_000);
        let routed = planner.plan(&c.objective, &view, &router, BLOCK).unwrap();
        let got: Vec<(String, String, Vec<String>)> = routed
            .plan
            .steps
            .iter()
            .map(|s| (s.id.clone(), s.capability.clone(), s.depends_on.clone()))
            .collect();
        let want: Vec<(String, String, Vec<String>)> = t
            .reference_plan
            .iter()
            .map(|s| {
                let mut d = s.depends_on.clone();
                d.sort();
                (s.id.clone(), s.capability.tag().to_string(), d)
            })
            .collect();
        assert_eq!(got, want, "{}", t.kind);
        routed.plan.validate().unwrap();
        // Every step is routed to an endpoint serving its capability.
        for (s, routes) in routed.plan.steps.iter().zip(&routed.routes) {
            let e = view.entry(s.netuid).unwrap();
            assert!(
                e.endpoints
                    .iter()
                    .any(|ep| ep.name == s.endpoint && ep.capability == s.capability)
            );
            assert_eq!(routes[0].netuid, s.netuid);
        }
    }
    // An unknown kind gets the generic search → synthesis plan.
    let mut c = challenge("market_research", 30_000);
    c.objective.kind = "organic".into();
    let routed = planner.plan(&c.objective, &view, &router, BLOCK).unwrap();
    let caps: Vec<&str> = routed
        .plan
        .steps
        .iter()
        .map(|s| s.capability.as_str())
        .collect();
    assert_eq!(caps, ["web_search", "llm_synthesis"]);
}

#[test]
fn planner_drops_unroutable_steps_and_rewires_dependents() {
    let templates = templates();
    let planner = Planner::new(&templates);
    // No sentiment subnet: synthesis inherits sentiment's dependency on social.
    let view = LedgerView::new(ledger_entries().into_iter().filter(|e| e.netuid != 25));
    let c = challenge("market_research", 30_000);
    let routed = planner
        .plan(&c.objective, &view, &Router::default(), BLOCK)
        .unwrap();
    let synth = routed.plan.step("synthesis").unwrap();
    assert_eq!(synth.depends_on, ["search", "social"]);
    assert!(routed.plan.step("sentiment").is_none());
}

#[test]
fn router_prefers_cheap_fast_reliable_and_skips_deprecated_and_stale() {
    let router = Router::default();
    let routes = router.routes(&view(), "web_search", BLOCK);
    assert_eq!(
        routes.iter().map(|r| r.netuid).collect::<Vec<_>>(),
        [22, 23]
    );

    // Deprecated: never routed to.
    let mut entries = ledger_entries();
    entries.iter_mut().find(|e| e.netuid == 22).unwrap().status = Status::Deprecated;
    let routes = router.routes(&LedgerView::new(entries), "web_search", BLOCK);
    assert_eq!(routes.iter().map(|r| r.netuid).collect::<Vec<_>>(), [23]);

    // Stale (not verified for more than a day of blocks): after every fresh candidate, or not
    // at all when stale fallbacks are off.
    let mut entries = ledger_entries();
    entries
        .iter_mut()
        .find(|e| e.netuid == 22)
        .unwrap()
        .last_verified_block = 0;
    let stale_view = LedgerView::new(entries);
    let now = 7_300;
    let routes = router.routes(&stale_view, "web_search", now);
    assert_eq!(
        routes
            .iter()
            .map(|r| (r.netuid, r.stale))
            .collect::<Vec<_>>(),
        [(23, false), (22, true)]
    );
    let strict = Router::new(RouterConfig {
        stale_as_last_resort: false,
        ..Default::default()
    });
    let routes = strict.routes(&stale_view, "web_search", now);
    assert_eq!(routes.iter().map(|r| r.netuid).collect::<Vec<_>>(), [23]);
    assert!(
        strict
            .routes(&stale_view, "image_generation", now)
            .is_empty()
    );
}

fn miner() -> Miner {
    Miner::new(
        "miner-a",
        Planner::new(&templates()),
        MinerConfig::default(),
    )
}

fn run(c: &Challenge, subnet: impl FnMut(&SubCall) -> (SubCallOutcome, u64)) -> (Response, u64) {
    let mut m = miner();
    let view = view();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut s = m.start(c, &view, BLOCK, T0, &mut rng).unwrap();
    let end = drive(&mut m, &mut s, T0, subnet);
    let r = m.finish(s, &view, BLOCK, end).unwrap().unwrap();
    (r, end)
}

#[test]
fn router_falls_back_to_the_next_subnet_on_failure() {
    let c = challenge("market_research", 30_000);
    let mut calls: Vec<(u16, u32)> = Vec::new();
    let (r, end) = run(&c, |call| {
        calls.push((call.netuid, call.attempt));
        if call.netuid == 22 {
            (Err(SubCallFailure::Unavailable("down".into())), 50)
        } else {
            subnets(call)
        }
    });
    // Two attempts on 22 (max_attempts_per_route), then 23.
    let search: Vec<_> = calls
        .iter()
        .filter(|(n, _)| *n == 22 || *n == 23)
        .copied()
        .collect();
    assert_eq!(search, [(22, 1), (22, 2), (23, 3)]);
    assert_eq!(r.plan.step("search").unwrap().netuid, 23);
    let ran: Vec<u16> = r.pipeline.iter().map(|s| s.netuid).collect();
    assert!(ran.contains(&23) && !ran.contains(&22));
    proof::verify(&c, &r, end).unwrap();
}

#[test]
fn execution_respects_dag_order_and_proves_what_it_ran() {
    for t in templates() {
        let c = challenge(&t.kind, 30_000);
        let (r, end) = run(&c, subnets);
        assert_eq!(r.pipeline.len(), t.reference_plan.len(), "{}", t.kind);
        let done: BTreeMap<&str, &PipelineStep> =
            r.pipeline.iter().map(|s| (s.step_id.as_str(), s)).collect();
        for step in &r.plan.steps {
            for dep in &step.depends_on {
                assert!(
                    done[dep.as_str()].finished_at_ms() <= done[step.id.as_str()].started_at_ms
                );
            }
        }
        // Independent roots run concurrently.
        let roots: Vec<u64> = r
            .plan
            .steps
            .iter()
            .filter(|s| s.depends_on.is_empty())
            .map(|s| done[s.id.as_str()].started_at_ms)
            .collect();
        assert!(roots.iter().all(|&t| t == T0));
        proof::verify(&c, &r, end).unwrap();
        let schema = jsonschema::draft202012::new(&c.target_schema).unwrap();
        assert!(
            schema.is_valid(&r.standardized_data),
            "{}: {}",
            t.kind,
            r.standardized_data
        );
        // Request ids are bound to the challenge lock, so they differ per step.
        let mut ids: Vec<&str> = r
            .pipeline
            .iter()
            .map(|s| s.request.as_ref().unwrap()["request_id"].as_str().unwrap())
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), r.pipeline.len());
    }
}

#[test]
fn execution_retries_within_the_deadline() {
    // The first search call times out (never answers in time); the retry succeeds.
    let c = challenge("market_research", 30_000);
    let mut search_calls = 0;
    let (r, end) = run(&c, |call| {
        if call.netuid == 22 {
            search_calls += 1;
            if search_calls == 1 {
                return (Err(SubCallFailure::Timeout), 1_000_000);
            }
        }
        subnets(call)
    });
    assert_eq!(search_calls, 2);
    let search = r.pipeline.iter().find(|s| s.step_id == "search").unwrap();
    assert_eq!(search.netuid, 22);
    // Timed out at 3 × p95 = 1800 ms after issue, then retried.
    assert_eq!(search.started_at_ms, T0 + 1_800);
    proof::verify(&c, &r, end).unwrap();

    // With a deadline too short for any retry, the step fails instead and the response still
    // goes out on time, with what succeeded.
    let c = challenge("market_research", 2_000);
    let (r, end) = run(&c, |call| {
        if call.netuid == 22 || call.netuid == 23 {
            (Err(SubCallFailure::Timeout), 1_000_000)
        } else {
            subnets(call)
        }
    });
    assert!(end <= c.due_at_ms());
    assert!(r.plan.step("search").is_none());
    assert!(r.pipeline.iter().all(|s| s.step_id != "search"));
    proof::verify(&c, &r, end).unwrap();
}

#[test]
fn execution_can_be_driven_by_hand() {
    let c = challenge("data_aggregation", 30_000);
    let templates = templates();
    let routed = Planner::new(&templates)
        .plan(&c.objective, &view(), &Router::default(), BLOCK)
        .unwrap();
    let mut exec = Execution::new(&c, "miner-a", routed, ExecutionConfig::default()).unwrap();
    // query and search are ready; translate waits for both.
    let a = exec.poll_subcall(T0).unwrap();
    let b = exec.poll_subcall(T0).unwrap();
    assert!(exec.poll_subcall(T0).is_none());
    assert_eq!(
        (a.step_id.as_str(), b.step_id.as_str()),
        ("query", "search")
    );
    exec.on_subcall_result(b.call_id, subnets(&b).0, T0 + 100);
    assert!(
        exec.poll_subcall(T0 + 100).is_none(),
        "translate still waits for query"
    );
    exec.on_subcall_result(a.call_id, subnets(&a).0, T0 + 200);
    let t = exec.poll_subcall(T0 + 200).unwrap();
    assert_eq!(t.step_id, "translate");
    assert_eq!(t.request["inputs"].as_object().unwrap().len(), 2);
    // A duplicate or unknown result is ignored.
    exec.on_subcall_result(a.call_id, subnets(&a).0, T0 + 300);
    assert_eq!(exec.pipeline().len(), 2);
    assert!(!exec.is_finished());
    assert_eq!(exec.poll_timeout(), Some(t.timeout_at_ms));
}

fn observation(
    netuid: u16,
    ok: bool,
    latency_ms: u64,
    pipeline_index: Option<usize>,
) -> Observation {
    Observation {
        step_id: "search".into(),
        netuid,
        endpoint: "web_search".into(),
        endpoint_index: 0,
        request_hash: Hash32([1; 32]),
        response_hash: ok.then_some(Hash32([2; 32])),
        started_at_ms: T0,
        latency_ms,
        ok,
        pipeline_index,
    }
}

fn pipeline_step(response: serde_json::Value) -> PipelineStep {
    PipelineStep {
        step_id: "search".into(),
        netuid: 22,
        endpoint: "web_search".into(),
        subnet_hotkey: "h".into(),
        request: Some(json!({}).into()),
        response: Some(response.into()),
        request_hash: Hash32([1; 32]),
        response_hash: Hash32([2; 32]),
        started_at_ms: T0,
        latency_ms: 300,
        cost_rao: 1,
        receipt: None,
    }
}

#[test]
fn detector_emits_schema_update_when_a_live_response_no_longer_fits() {
    let view = view();
    let mut d = ProposalDetector::new(DetectorConfig::default());
    // Fits: nothing.
    let fits = pipeline_step(json!({"request_id": "x", "items": []}));
    assert!(
        d.observe(
            &view,
            &[observation(22, true, 300, Some(0))],
            &[fits],
            BLOCK
        )
        .is_empty()
    );
    // `items` renamed to `results`: a schema update with the old schema and one the live
    // response fits.
    let live = json!({"request_id": "x", "results": [{"title": "t", "url": "u", "score": 1}]});
    let out = d.observe(
        &view,
        &[observation(22, true, 300, Some(0))],
        &[pipeline_step(live.clone())],
        BLOCK,
    );
    assert_eq!(out.len(), 1);
    let ProposalChange::SchemaUpdate { changes } = &out[0].change else {
        panic!("{:?}", out[0]);
    };
    assert_eq!(changes[0].path, "/endpoints/0/output_schema");
    assert_eq!(changes[0].old, support::items_schema());
    let new = jsonschema::draft202012::new(&changes[0].new).unwrap();
    assert!(new.is_valid(&live));
    assert_eq!(out[0].netuid, 22);
    assert_eq!(out[0].evidence.len(), 1);
    // Not proposed again inside the cooldown.
    assert!(
        d.observe(
            &view,
            &[observation(22, true, 300, Some(0))],
            &[pipeline_step(live)],
            BLOCK + 1
        )
        .is_empty()
    );
}

#[test]
fn detector_emits_metrics_update_when_p50_drifts_past_the_threshold() {
    let view = view();
    let fits = pipeline_step(json!({"request_id": "x", "items": []}));
    // Ledger p50 of subnet 22 is 300 ms; the default threshold is +50 % after 20 samples.
    // 440 ms is +47 %: no proposal, however many samples.
    let mut d = ProposalDetector::new(DetectorConfig::default());
    for i in 0..30 {
        let out = d.observe(
            &view,
            &[observation(22, true, 440, Some(0))],
            std::slice::from_ref(&fits),
            BLOCK + i,
        );
        assert!(out.is_empty());
    }
    // 460 ms is +53 %: proposed once twenty samples are in.
    let mut d = ProposalDetector::new(DetectorConfig::default());
    let mut proposals = Vec::new();
    for i in 0..20 {
        let out = d.observe(
            &view,
            &[observation(22, true, 460, Some(0))],
            std::slice::from_ref(&fits),
            BLOCK + i,
        );
        if i < 19 {
            assert!(out.is_empty(), "too few samples at {i}");
        }
        proposals.extend(out);
    }
    assert_eq!(proposals.len(), 1);
    let ProposalChange::MetricsUpdate { metrics } = &proposals[0].change else {
        panic!("{:?}", proposals[0]);
    };
    assert_eq!(metrics.p50_latency_ms, 460);
    assert_eq!(metrics.cost_per_query_rao, 300_000);
    assert_eq!(proposals[0].evidence.len(), 20);
    assert_eq!(proposals[0].observed_block, BLOCK);

    // A configured threshold is honoured: 30 % after 5 samples (the validator's band).
    let config = DetectorConfig {
        min_latency_samples: 5,
        drift_threshold: 0.30,
        ..DetectorConfig::default()
    };
    let mut d = ProposalDetector::new(config);
    let fired: usize = (0..5)
        .map(|i| {
            d.observe(
                &view,
                &[observation(22, true, 400, Some(0))],
                std::slice::from_ref(&fits),
                BLOCK + i,
            )
            .len()
        })
        .sum();
    assert_eq!(fired, 1);
}

#[test]
fn detector_emits_deprecation_when_a_subnet_stops_answering() {
    let view = view();
    let mut d = ProposalDetector::new(DetectorConfig::default());
    let mut out = Vec::new();
    for i in 0..10 {
        out.extend(d.observe(
            &view,
            &[observation(24, false, 5_000, None)],
            &[],
            BLOCK + i,
        ));
    }
    assert_eq!(out.len(), 1);
    assert!(matches!(out[0].change, ProposalChange::Deprecation { .. }));
    assert_eq!(out[0].netuid, 24);
}

#[test]
fn execution_stays_within_the_budget() {
    // market_research costs 300k + 300k + 200k + 400k at the primary routes. With 900k the
    // three first steps fit and synthesis does not (no cheaper synthesis route exists).
    let mut c = challenge("market_research", 30_000);
    c.budget_rao = Some(900_000);
    let (r, end) = run(&c, subnets);
    assert!(r.total_cost_rao() <= 900_000);
    assert!(r.plan.step("synthesis").is_none());
    assert_eq!(r.pipeline.len(), 3);
    proof::verify(&c, &r, end).unwrap();
}

#[test]
fn core_types_can_move_between_threads() {
    fn send<T: Send>() {}
    fn sync<T: Sync>() {}
    send::<Miner>();
    send::<orchestra_miner::Session>();
    send::<Execution>();
    send::<LedgerView>();
    sync::<LedgerView>();
}

/// A rebuilt view takes over compiled output schemas whose schema did not change, and compiles
/// changed ones afresh.
#[test]
fn rebuilt_views_reuse_unchanged_compiled_schemas() {
    use orchestra_miner::LedgerView;
    use std::sync::Arc;
    let entries = support::ledger_entries();
    let (netuid, index) = (entries[0].netuid, 0);
    let old = LedgerView::new(entries.clone());
    let compiled = old.output_schema(netuid, index).cloned().expect("compiles");
    let same = LedgerView::new_reusing(entries.clone(), &old);
    let reused = same.output_schema(netuid, index).expect("compiles");
    assert!(Arc::ptr_eq(&compiled, reused));
    let mut changed = entries;
    changed[0].endpoints[index].output_schema = json!({"type": "object", "required": ["x"]});
    let fresh = LedgerView::new_reusing(changed, &old);
    let recompiled = fresh.output_schema(netuid, index).expect("compiles");
    assert!(!Arc::ptr_eq(&compiled, recompiled));
    assert!(!recompiled.is_valid(&json!({})));
    assert!(recompiled.is_valid(&json!({"x": 1})));
}
