#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The [`Validator`] state machine driven in process: honest miners (the real miner core) answer
//! its challenges against the fake subnets of `support`, and the tests check its schedule —
//! rounds on slots, scoring, tempo close, weights set or committed and revealed one tempo later,
//! users' requests moving on — and that its durable state survives a restart.

#[path = "../../miner/tests/support/mod.rs"]
mod support;

use orchestra_ledger::{Ledger, VerifyParams};
use orchestra_mechanism::MechanismParams;
use orchestra_mechanism::combine::MechanismWeights;
use orchestra_miner::local::drive;
use orchestra_miner::{LedgerView, Miner, MinerConfig, Planner};
use orchestra_protocol::Body;
use orchestra_protocol::messages::Objective;
use orchestra_validator::{
    ChainInfo, ChallengeOutcome, MinerInfo, OrganicFailure, Validator, ValidatorConfig,
    ValidatorEvent, ValidatorRngs, ValidatorStrategy, WeightRules, WeightsAction, WeightsCtx,
    WeightsDecision,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const VALIDATOR: &str = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
const T0: u64 = 1_700_000_000_000;
const BLOCK_MS: u64 = 12_000;

fn hotkey(uid: u16) -> String {
    format!("miner-{uid}")
}

fn validator(every: u64, strategy: Option<Box<dyn ValidatorStrategy>>) -> Validator {
    validator_with(every, strategy, MechanismParams::default())
}

fn validator_with(
    every: u64,
    strategy: Option<Box<dyn ValidatorStrategy>>,
    params: MechanismParams,
) -> Validator {
    let ledger = Ledger::seeded(
        VerifyParams::default(),
        &support::ledger_entries(),
        VALIDATOR,
        0,
    )
    .unwrap();
    let config = ValidatorConfig {
        challenge_every_blocks: every,
        anchor_every_blocks: 0,
        ..ValidatorConfig::new(VALIDATOR, params)
    };
    let v = Validator::new(
        config,
        support::templates(),
        ledger,
        ValidatorRngs::from_seed([7; 32]),
    )
    .unwrap();
    match strategy {
        Some(s) => v.with_strategy(s),
        None => v,
    }
}

fn chain(uids: &[u16], commit_reveal: bool) -> ChainInfo {
    ChainInfo {
        miners: uids
            .iter()
            .map(|&uid| MinerInfo {
                uid,
                hotkey: hotkey(uid),
                coldkey: None,
                incentive: 1,
            })
            .collect(),
        my_uid: Some(0),
        rules: WeightRules {
            commit_reveal,
            reveal_period: 1,
            timelocked: false,
        },
        ..ChainInfo::default()
    }
}

/// Honest miners by uid, answering with the real miner core in virtual time.
struct Miners {
    miners: Vec<(u16, Miner)>,
    view: LedgerView,
    rng: ChaCha8Rng,
}

impl Miners {
    fn new(uids: &[u16]) -> Self {
        let planner = Planner::new(&support::templates());
        Miners {
            miners: uids
                .iter()
                .map(|&u| {
                    (
                        u,
                        Miner::new(hotkey(u), planner.clone(), MinerConfig::default()),
                    )
                })
                .collect(),
            view: LedgerView::new(support::ledger_entries()),
            rng: ChaCha8Rng::seed_from_u64(3),
        }
    }

    /// Answer every challenge the validator has out; `down` miners do not answer.
    fn serve(&mut self, v: &mut Validator, block: u64, down: &[u16], users: &mut ChaCha8Rng) {
        while let Some(t) = v.poll_challenge() {
            let start = t.challenge.issued_at_ms + 40;
            let answer = match self.miners.iter_mut().find(|(u, _)| *u == t.uid) {
                Some((uid, m)) if !down.contains(uid) => {
                    let mut s = m
                        .start(&t.challenge, &self.view, block, start, &mut self.rng)
                        .unwrap();
                    let end = drive(m, &mut s, start, support::subnets);
                    let r = m.finish(s, &self.view, block, end).unwrap().unwrap();
                    (Ok(r), end + 40)
                }
                _ => (Err("connection refused".to_string()), start),
            };
            v.handle_response(t.job, answer.0, answer.1, users);
            while let Some(a) = v.poll_audit(answer.1) {
                let body = support::respond(a.call.netuid, &a.call.endpoint, &a.call.request);
                v.handle_audit_result(a.job, a.call.audit_id, Ok(Body::new(body)));
            }
        }
    }
}

fn events(v: &mut Validator) -> Vec<ValidatorEvent> {
    std::iter::from_fn(|| v.poll_event()).collect()
}

fn weights(v: &mut Validator) -> Vec<WeightsAction> {
    std::iter::from_fn(|| v.poll_weights()).collect()
}

/// Run blocks `from..=to`, serving every challenge; returns the events.
fn run(
    v: &mut Validator,
    miners: &mut Miners,
    blocks: std::ops::RangeInclusive<u64>,
) -> Vec<ValidatorEvent> {
    let mut users = ChaCha8Rng::seed_from_u64(5);
    let mut out = Vec::new();
    for block in blocks {
        v.handle_block(block, T0 + block * BLOCK_MS);
        miners.serve(v, block, &[], &mut users);
        out.extend(events(v));
    }
    out
}

fn scored(events: &[ValidatorEvent]) -> Vec<(u16, ChallengeOutcome)> {
    events
        .iter()
        .filter_map(|e| match e {
            ValidatorEvent::Scored(s) => Some((s.uid, s.score.outcome)),
            _ => None,
        })
        .collect()
}

#[test]
fn rounds_fall_on_slots_and_every_answer_is_scored() {
    let uids = [1, 2, 3];
    let mut v = validator(5, None);
    v.handle_chain(chain(&uids, false));
    let mut miners = Miners::new(&uids);
    let ev = run(&mut v, &mut miners, 1..=12);
    let s = scored(&ev);
    // Slots 5 and 10, three miners each (the sample is larger than the subnet).
    assert_eq!(s.len(), 6, "{s:?}");
    assert!(
        s.iter().all(|(_, o)| *o == ChallengeOutcome::Scored),
        "{s:?}"
    );
    assert_eq!(v.in_flight(), 0);
    let scores = v.scores();
    assert_eq!(scores.keys().copied().collect::<Vec<_>>(), uids);
    assert!(scores.values().all(|(o, _)| *o > 0.0), "{scores:?}");
}

/// Replay binding reaches miners through the challenge the core sends (synthetic and a user's
/// alike), on the wire only when it is on, and honest miners, which then send the nonce, score
/// as before with every step re-executed.
#[test]
fn replay_binding_travels_in_the_challenge_and_bound_honest_miners_score() {
    let uids = [1, 2, 3];
    for binding in [false, true] {
        let params = MechanismParams {
            replay_binding: binding,
            audit_rate: 1.0,
            ..MechanismParams::default()
        };
        let mut v = validator_with(5, None, params.clone());
        v.handle_chain(chain(&uids, false));
        v.handle_block(5, T0 + 5 * BLOCK_MS);
        let (objective, schema) = objective();
        let mut users = ChaCha8Rng::seed_from_u64(5);
        v.handle_organic(objective, schema, 5, T0 + 5 * BLOCK_MS, &mut users);
        let mut sent = 0;
        while let Some(t) = v.poll_challenge() {
            assert_eq!(t.challenge.replay_binding, binding);
            let wire = serde_json::to_value(&*t.challenge).unwrap();
            assert_eq!(wire.get("replay_binding").is_some(), binding);
            sent += 1;
        }
        assert_eq!(sent, 4, "three synthetic challenges and a user's");

        let mut v = validator_with(5, None, params);
        v.handle_chain(chain(&uids, false));
        let ev = run(&mut v, &mut Miners::new(&uids), 1..=6);
        let s = scored(&ev);
        assert_eq!(s.len(), 3, "{s:?}");
        assert!(
            s.iter().all(|(_, o)| *o == ChallengeOutcome::Scored),
            "binding {binding}: {s:?}"
        );
    }
}

#[test]
fn a_skipped_slot_is_made_up_after_a_short_gap_only() {
    let mut v = validator(5, None);
    v.handle_chain(chain(&[1], false));
    let mut miners = Miners::new(&[1]);
    let mut users = ChaCha8Rng::seed_from_u64(5);
    let mut round_at = |v: &mut Validator, block: u64| {
        v.handle_block(block, T0 + block * BLOCK_MS);
        let had = v.in_flight() > 0;
        miners.serve(v, block, &[], &mut users);
        events(v);
        had
    };
    assert!(!round_at(&mut v, 3));
    assert!(
        round_at(&mut v, 6),
        "slot 5 was skipped by one block: made up"
    );
    assert!(!round_at(&mut v, 7));
    assert!(
        !round_at(&mut v, 33),
        "slot 30 was missed long ago (the validator was down)"
    );
    assert!(round_at(&mut v, 35), "back on the slots");
}

#[test]
fn a_closed_tempo_sets_weights_without_commit_reveal() {
    let uids = [1, 2];
    let mut v = validator(5, None);
    v.handle_chain(chain(&uids, false));
    let mut miners = Miners::new(&uids);
    v.handle_tempo(0, 1, T0);
    run(&mut v, &mut miners, 1..=10);
    assert!(
        weights(&mut v).is_empty(),
        "nothing before the tempo closes"
    );
    v.handle_tempo(1, 11, T0 + 11 * BLOCK_MS);
    let ev = events(&mut v);
    let closed: Vec<_> = ev
        .iter()
        .filter_map(|e| match e {
            ValidatorEvent::TempoClosed { tempo, weights, .. } => Some((*tempo, weights.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(closed, vec![(0, WeightsDecision::Queued { vectors: 1 })]);
    let w = weights(&mut v);
    assert_eq!(w.len(), 1);
    match &w[0] {
        WeightsAction::Set { tempo, weights, .. } => {
            assert_eq!(*tempo, 0);
            assert_eq!(weights.uids, vec![1, 2]);
            assert!(weights.values.contains(&u16::MAX));
        }
        other => panic!("expected a plain set, got {other:?}"),
    }
    // The same index again closes nothing.
    v.handle_tempo(1, 12, T0 + 12 * BLOCK_MS);
    assert!(events(&mut v).is_empty() && weights(&mut v).is_empty());
}

#[test]
fn commit_reveal_commits_at_the_close_and_reveals_one_tempo_later() {
    let uids = [1, 2];
    let mut v = validator(5, None);
    v.handle_chain(chain(&uids, true));
    let mut miners = Miners::new(&uids);
    v.handle_tempo(4, 1, T0);
    run(&mut v, &mut miners, 1..=10);
    v.handle_tempo(5, 11, T0);
    let first = weights(&mut v);
    let (id, salt, committed) = match &first[..] {
        [
            WeightsAction::Commit {
                id,
                tempo: 4,
                salt,
                weights,
                reveal_tempo: 6,
            },
        ] => (*id, salt.clone(), weights.clone()),
        other => panic!("expected one commit revealed in tempo 6, got {other:?}"),
    };
    assert_eq!(salt.len(), 8);
    v.handle_weights_result(id, true);
    v.handle_tempo(5, 12, T0);
    assert!(weights(&mut v).is_empty(), "not before the reveal tempo");
    // A landed commit survives a restart.
    let state = v.state();
    assert_eq!(state.weights.pending_reveals.len(), 1);
    let mut restarted = validator(5, None);
    restarted.restore(state);
    restarted.handle_chain(chain(&uids, true));
    restarted.handle_tempo(6, 22, T0);
    let second = weights(&mut restarted);
    // Tempo 5 closes (a new commit, revealed in 7) and tempo 4's commit is revealed.
    assert!(
        matches!(
            &second[0],
            WeightsAction::Commit {
                tempo: 5,
                reveal_tempo: 7,
                ..
            }
        ),
        "{second:?}"
    );
    match &second[1] {
        WeightsAction::Reveal {
            id: rid,
            tempo: 6,
            weights,
            salt: rsalt,
        } => {
            assert_eq!((*rid, weights, rsalt), (id, &committed, &salt));
        }
        other => panic!("expected tempo 4's reveal, got {other:?}"),
    }
    // A commit that failed to land is never revealed.
    if let WeightsAction::Commit { id, .. } = &second[0] {
        restarted.handle_weights_result(*id, false);
    }
    restarted.handle_tempo(7, 33, T0);
    let third = weights(&mut restarted);
    assert!(
        third
            .iter()
            .all(|w| !matches!(w, WeightsAction::Reveal { .. })),
        "{third:?}"
    );
}

/// Commit-reveal v4: each closed tempo is one timelocked commit, and nothing is ever revealed
/// by the validator (the chain opens the commit itself); nothing waits across a restart.
#[test]
fn timelocked_commits_need_no_reveal() {
    let uids = [1, 2];
    let mut v = validator(5, None);
    let mut info = chain(&uids, true);
    info.rules.timelocked = true;
    v.handle_chain(info.clone());
    let mut miners = Miners::new(&uids);
    v.handle_tempo(4, 1, T0);
    run(&mut v, &mut miners, 1..=10);
    v.handle_tempo(5, 11, T0);
    let first = weights(&mut v);
    let id = match &first[..] {
        [
            WeightsAction::CommitTimelocked {
                id,
                tempo: 4,
                weights,
            },
        ] => {
            assert_eq!(weights.uids, vec![1, 2]);
            *id
        }
        other => panic!("expected one timelocked commit, got {other:?}"),
    };
    v.handle_weights_result(id, true);
    assert!(v.state().weights.pending_reveals.is_empty());
    v.handle_tempo(6, 22, T0);
    v.handle_tempo(7, 33, T0);
    assert!(
        weights(&mut v)
            .iter()
            .all(|w| matches!(w, WeightsAction::CommitTimelocked { .. })),
        "no reveal"
    );
}

#[test]
fn miners_that_leave_or_change_hands_are_forgotten() {
    let uids = [1, 2, 3];
    let mut v = validator(5, None);
    v.handle_chain(chain(&uids, false));
    let mut miners = Miners::new(&uids);
    run(&mut v, &mut miners, 1..=5);
    assert_eq!(v.scores().len(), 3);
    let mut now = chain(&[1, 2], false);
    now.miners[1].hotkey = "someone-else".into();
    v.handle_chain(now);
    assert_eq!(v.scores().keys().copied().collect::<Vec<_>>(), vec![1]);
}

#[test]
fn a_response_to_another_challenge_or_from_another_miner_counts_as_missing() {
    let mut v = validator(5, None);
    v.handle_chain(chain(&[1, 2], false));
    let mut miners = Miners::new(&[1, 2]);
    let mut users = ChaCha8Rng::seed_from_u64(1);
    v.handle_block(5, T0);
    let a = v.poll_challenge().unwrap();
    let b = v.poll_challenge().unwrap();
    let mut answer = |t: &orchestra_validator::ChallengeTransmit| {
        let (_, m) = miners.miners.iter_mut().find(|(u, _)| *u == t.uid).unwrap();
        let mut s = m
            .start(&t.challenge, &miners.view, 5, T0, &mut miners.rng)
            .unwrap();
        let end = drive(m, &mut s, T0, support::subnets);
        m.finish(s, &miners.view, 5, end).unwrap().unwrap()
    };
    let mut other_challenge = answer(&a);
    other_challenge.challenge_id = b.challenge.challenge_id;
    let mut other_miner = answer(&b);
    other_miner.miner = "not-the-miner".into();
    v.handle_response(a.job, Ok(other_challenge), T0 + 5_000, &mut users);
    v.handle_response(b.job, Ok(other_miner), T0 + 5_000, &mut users);
    let s = scored(&events(&mut v));
    assert_eq!(
        s.iter().map(|(_, o)| *o).collect::<Vec<_>>(),
        vec![ChallengeOutcome::Missing, ChallengeOutcome::Missing]
    );
}

fn objective() -> (Objective, serde_json::Value) {
    let t = support::templates().remove(0);
    (
        Objective {
            kind: t.kind.clone(),
            text: "find out".into(),
            params: serde_json::json!({}),
        },
        t.target_schema,
    )
}

#[test]
fn a_users_request_moves_on_from_miners_that_fail_then_fails_with_the_reason() {
    let uids = [1, 2, 3];
    let mut v = validator(1_000, None);
    v.handle_chain(chain(&uids, false));
    let mut miners = Miners::new(&uids);
    let mut users = ChaCha8Rng::seed_from_u64(9);
    let (o, schema) = objective();
    // Three attempts (the default); the first two miners asked are down.
    let request = v.handle_organic(o.clone(), schema.clone(), 3, T0, &mut users);
    let first = v.poll_challenge().unwrap();
    v.handle_response(first.job, Err("down".into()), T0 + 10, &mut users);
    let second = v.poll_challenge().unwrap();
    assert_ne!(first.uid, second.uid, "an untried miner");
    v.handle_response(second.job, Err("down too".into()), T0 + 20, &mut users);
    // The third answers.
    miners.serve(&mut v, 3, &[first.uid, second.uid], &mut users);
    let ev = events(&mut v);
    let retries = ev
        .iter()
        .filter(|e| matches!(e, ValidatorEvent::OrganicRetry { request: r, .. } if *r == request))
        .count();
    assert_eq!(retries, 2);
    let quality = ev.iter().find_map(|e| match e {
        ValidatorEvent::OrganicAudited {
            request: r,
            quality,
            ..
        } if *r == request => Some(*quality),
        _ => None,
    });
    let q = quality.expect("the third miner's answer is audited");
    assert!(q > 0.5 && q <= 1.0, "{q}");
    assert!(
        ev.iter()
            .any(|e| matches!(e, ValidatorEvent::OrganicAnswered { request: r, proof_verified: true, .. } if *r == request))
    );
    assert!(
        scored(&ev).is_empty(),
        "users' requests are audited for the record, never scored"
    );

    // With every miner down the request fails with the last reason.
    let request = v.handle_organic(o, schema, 4, T0, &mut users);
    while let Some(t) = v.poll_challenge() {
        v.handle_response(t.job, Err(format!("miner {} down", t.uid)), T0, &mut users);
    }
    let failed = events(&mut v).into_iter().find_map(|e| match e {
        ValidatorEvent::OrganicFailed { request: r, error } if r == request => Some(error),
        _ => None,
    });
    assert!(
        matches!(failed, Some(OrganicFailure::MinerFailed(ref m)) if m.ends_with("down")),
        "{failed:?}"
    );
}

#[test]
fn a_users_request_fails_at_once_without_miners_and_a_cancelled_one_is_dropped() {
    let mut v = validator(1_000, None);
    v.handle_chain(chain(&[], false));
    let mut users = ChaCha8Rng::seed_from_u64(2);
    let (o, schema) = objective();
    let r = v.handle_organic(o.clone(), schema.clone(), 1, T0, &mut users);
    assert!(matches!(
        v.poll_event(),
        Some(ValidatorEvent::OrganicFailed { request, error: OrganicFailure::NoMiners }) if request == r
    ));
    v.handle_chain(chain(&[1, 2], false));
    let r = v.handle_organic(o, schema, 1, T0, &mut users);
    let t = v.poll_challenge().unwrap();
    v.cancel_organic(r);
    v.handle_response(t.job, Err("down".into()), T0, &mut users);
    assert!(
        v.poll_challenge().is_none(),
        "no further miner for a user who left"
    );
    assert!(v.poll_event().is_none(), "and nobody to answer");
}

#[test]
fn unanswered_challenges_time_out_as_missing() {
    let mut v = validator(5, None);
    v.handle_chain(chain(&[1], false));
    let mut users = ChaCha8Rng::seed_from_u64(2);
    v.handle_block(5, T0);
    let t = v.poll_challenge().unwrap();
    let due = v.poll_timeout().unwrap();
    assert_eq!(due, T0 + t.timeout_ms);
    v.handle_timeout(due - 1, &mut users);
    assert!(v.poll_event().is_none());
    v.handle_timeout(due, &mut users);
    assert_eq!(
        scored(&events(&mut v)),
        vec![(1, ChallengeOutcome::Missing)]
    );
    assert_eq!(v.poll_timeout(), None);
}

/// Puts all weight on uid 2.
struct Favour;

impl ValidatorStrategy for Favour {
    fn name(&self) -> &str {
        "favour"
    }
    fn weights(
        &mut self,
        ctx: &WeightsCtx<'_>,
        honest: Vec<MechanismWeights>,
    ) -> Vec<MechanismWeights> {
        assert_eq!(ctx.tempo, 0);
        assert_eq!(ctx.miners.len(), 2);
        honest
            .into_iter()
            .map(|w| MechanismWeights {
                mechanism: w.mechanism,
                uids: vec![2],
                values: vec![u16::MAX],
            })
            .collect()
    }
}

#[test]
fn the_strategy_has_the_last_word_on_weights() {
    let uids = [1, 2];
    let mut v = validator(5, Some(Box::new(Favour)));
    assert_eq!(v.strategy_name(), "favour");
    v.handle_chain(chain(&uids, false));
    let mut miners = Miners::new(&uids);
    v.handle_tempo(0, 1, T0);
    run(&mut v, &mut miners, 1..=5);
    v.handle_tempo(1, 6, T0);
    match &weights(&mut v)[..] {
        [WeightsAction::Set { weights, .. }] => assert_eq!(weights.uids, vec![2]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_state_round_trips_and_an_unregistered_validator_sets_nothing() {
    let uids = [1, 2];
    let mut v = validator(5, None);
    let mut info = chain(&uids, false);
    info.my_uid = None;
    v.handle_chain(info);
    let mut miners = Miners::new(&uids);
    v.handle_tempo(0, 1, T0);
    run(&mut v, &mut miners, 1..=5);
    v.handle_tempo(1, 6, T0);
    let closed = events(&mut v).into_iter().find_map(|e| match e {
        ValidatorEvent::TempoClosed { weights, .. } => Some(weights),
        _ => None,
    });
    assert_eq!(closed, Some(WeightsDecision::NotRegistered));
    assert!(weights(&mut v).is_empty());
    assert!(v.take_dirty() && !v.take_dirty());
    let state = v.state();
    let json = serde_json::to_string(&state).unwrap();
    let mut fresh = validator(5, None);
    fresh.restore(serde_json::from_str(&json).unwrap());
    assert_eq!(fresh.state(), state);
    assert_eq!(fresh.scores(), v.scores());
    assert_eq!(fresh.open_tempo(), Some(1));
}
