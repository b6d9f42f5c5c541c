//! [`Auditor`]: docs/mechanism.md §3 checks 1–5 on a miner's response, as a sans-IO state machine.
//!
//! [`Auditor::begin`] runs checks 1–4 at once (proof chain, bodies, window and dependency order
//! via `orchestra_protocol::proof::verify`; then the replay/copy set) and draws which steps to
//! re-execute (check 5). The returned [`Audit`] hands those re-executions out through
//! [`Audit::poll_call`], takes their results through [`Audit::on_call_result`], and
//! [`Audit::finish`] gives the [`AuditReport`].
//!
//! Choices where docs/mechanism.md is silent:
//! - A late response (past deadline + grace) or one failing checks 1–4 is not re-executed: it
//!   scores nothing whatever the audit would say, so spending sub-call cost on it is waste.
//! - The replay set keeps the *first* sighting of each response hash for `replay_window_ms`;
//!   a later sighting by another miner (copy) or in another challenge (replay) is a hit. Repeats
//!   inside one response (retries) are not.
//! - A re-execution that fails (timeout, subnet down) is **inconclusive**: no pass, no strike —
//!   a subnet outage must not strike honest miners.
//! - A step on an endpoint the validator's Ledger does not know cannot be checked against it and
//!   fails when drawn; a step with a receipt whose signature does not verify fails outright
//!   (a forged receipt is fabrication). A receipt by a hotkey the validator does not know for
//!   that subnet is ignored (the step is drawn like any other).
//! - Under replay binding (the challenge's `replay_binding`, set from `MechanismParams`) every
//!   step's committed request must carry this challenge's nonce for its step, unless the
//!   validator's Ledger says the endpoint cannot carry one; the check needs no subnet, so it runs
//!   on every step before receipts and draws, and a step failing it takes no draw.
//!
//! # Invariants
//!
//! Checked with `debug_assert!` (every debug build and test; free in release):
//!
//! - Every drawn re-execution is in exactly one place — to send, outstanding, or judged — and
//!   moves only forward: [`Audit::poll_call`] sends it once (its `audit_id` is new), a result or
//!   a timeout judges an outstanding one once (results for anything else change nothing), and
//!   [`Audit::finish`] judges whatever is left as inconclusive. So each ends in exactly one
//!   [`StepAudit`]: `to send + outstanding + verdicts` never changes after `begin`, and no step
//!   gets a verdict twice.
//! - The report's `steps` are sorted by pipeline position, without repeats, each position inside
//!   the pipeline; a response that is late or fails checks 1–4 has nothing re-executed.
//! - The replay set: every remembered response hash has exactly one expiry record, carrying the
//!   time of its sighting (`seen` and `expiry` have equal length, and each record leaving
//!   `expiry` names a sighting made at that time).

use orchestra_ledger::view::{CompiledSchema, LedgerView};
use orchestra_mechanism::MechanismParams;
use orchestra_mechanism::agreement::agreement;
use orchestra_mechanism::orchestration::{audit_draw, within_grace};
use orchestra_protocol::Body;
use orchestra_protocol::hash::Hash32;
use orchestra_protocol::keys::{Scheme, VerifyingKey};
use orchestra_protocol::messages::SubCallFailure;
use orchestra_protocol::messages::{
    Challenge, PipelineStep, Receipt, Response, accepts_nonce, call_nonce, receipt_message,
    request_nonce,
};
use orchestra_protocol::proof::{ProofError, verify};
use orchestra_protocol::ss58;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Auditor knobs not in [`MechanismParams`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditorConfig {
    /// A re-execution not answered within this is inconclusive, ms (default 5 000).
    pub call_timeout_ms: u64,
    /// Count an inconclusive re-execution as a failure (default false).
    pub inconclusive_fails: bool,
}

impl Default for AuditorConfig {
    fn default() -> Self {
        AuditorConfig {
            call_timeout_ms: 5_000,
            inconclusive_fails: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Sighting {
    miner: String,
    challenge_id: Hash32,
    at_ms: u64,
}

/// A response hash already seen elsewhere inside the replay window (check 4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayHit {
    /// Pipeline position in the audited response.
    pub step_index: usize,
    /// The repeated hash.
    pub response_hash: Hash32,
    /// The miner it was first seen from.
    pub first_miner: String,
    /// The challenge it was first seen in.
    pub first_challenge: Hash32,
    /// Whether the first sighting was another miner's (copy) rather than the same miner's in
    /// another challenge (replay).
    pub copied: bool,
}

/// A step re-execution the driver must run against the subnet (check 5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditCall {
    /// Names the call in [`Audit::on_call_result`].
    pub audit_id: u64,
    /// Pipeline position of the audited step.
    pub step_index: usize,
    /// Subnet.
    pub netuid: u16,
    /// Endpoint name.
    pub endpoint: String,
    /// The committed request, to send again verbatim.
    pub request: Body,
    /// After this the call is inconclusive, ms.
    pub timeout_at_ms: u64,
}

/// How one drawn or receipted step fared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StepVerdict {
    /// A valid subnet receipt: exempt from audit.
    Receipted,
    /// Deterministic endpoint reproduced the committed response hash.
    Reproduced,
    /// Non-deterministic endpoint: the re-execution fits the Ledger's output schema, agrees on
    /// every stable field and, with the content check on, shares enough content.
    Consistent,
    /// Deterministic endpoint gave a different response hash.
    HashMismatch,
    /// The re-execution does not fit the Ledger's output schema.
    SchemaMismatch,
    /// A stable field differs between committed and re-executed responses.
    StableFieldMismatch {
        /// The JSON pointer.
        pointer: String,
    },
    /// Content check (`audit_agreement_min`): the committed response of a non-deterministic
    /// endpoint agrees with the re-execution on too small a share of its parts.
    Disagrees {
        /// The share that agreed, in `[0, 1)`.
        agreement: f64,
    },
    /// The receipt's signature does not verify.
    ForgedReceipt,
    /// The committed request body was omitted, so the step cannot be re-executed.
    BodyMissing,
    /// The endpoint is not in the validator's Ledger.
    UnknownEndpoint,
    /// Replay binding is on and the committed request does not carry this challenge's nonce for
    /// its step (docs/mechanism.md §3): the call was not made for this challenge, or its request
    /// was omitted so it cannot be checked. Judged without re-executing anything.
    NonceMismatch {
        /// Whether the request carried a nonce at all (another challenge's or step's, when true).
        present: bool,
    },
    /// The re-execution itself failed.
    Inconclusive {
        /// How.
        failure: SubCallFailure,
    },
}

impl StepVerdict {
    /// Whether this verdict is a failed audit (`inconclusive_fails` decides for inconclusive).
    pub fn failed(&self, inconclusive_fails: bool) -> bool {
        match self {
            StepVerdict::Receipted | StepVerdict::Reproduced | StepVerdict::Consistent => false,
            StepVerdict::Inconclusive { .. } => inconclusive_fails,
            _ => true,
        }
    }
}

/// One step's audit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepAudit {
    /// Pipeline position.
    pub step_index: usize,
    /// The verdict.
    pub verdict: StepVerdict,
}

/// Everything the auditor concluded about one response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditReport {
    /// The challenge.
    pub challenge_id: Hash32,
    /// The responding miner (ss58, as the response names it).
    pub miner: String,
    /// When the response was received, ms.
    pub received_at_ms: u64,
    /// Received after deadline + grace.
    pub late: bool,
    /// Checks 1–3, if they failed.
    pub proof_error: Option<String>,
    /// Check 4 hits.
    pub replays: Vec<ReplayHit>,
    /// Check 5: receipted and drawn steps, by pipeline position.
    pub steps: Vec<StepAudit>,
    /// Whether inconclusive re-executions count as failures.
    pub inconclusive_fails: bool,
}

impl AuditReport {
    /// `hash_verified` of docs/mechanism.md §3: checks 1–4 hold and no audited step failed.
    pub fn hash_verified(&self) -> bool {
        !self.late && self.proof_error.is_none() && self.replays.is_empty() && !self.audit_failed()
    }

    /// Whether check 5 failed on some step: a fabrication strike.
    pub fn audit_failed(&self) -> bool {
        self.steps
            .iter()
            .any(|s| s.verdict.failed(self.inconclusive_fails))
    }

    /// Whether checks 1–3 held.
    pub fn proof_ok(&self) -> bool {
        self.proof_error.is_none()
    }
}

#[derive(Debug, Clone)]
struct Expectation {
    step_index: usize,
    deterministic: bool,
    response_hash: Hash32,
    schema: Option<CompiledSchema>,
    /// (pointer, committed value) for every stable field the committed body has.
    stable: Vec<(String, Value)>,
    /// The committed body and the least agreement it must show, when the content check is on
    /// and the endpoint is non-deterministic.
    content: Option<(Body, f64)>,
}

/// One response under audit (see the module docs).
#[derive(Debug, Clone)]
pub struct Audit {
    report: AuditReport,
    to_send: VecDeque<(AuditCall, Expectation)>,
    outstanding: BTreeMap<u64, (u64, Expectation)>,
    call_timeout_ms: u64,
}

impl Audit {
    /// The next re-execution to run, issued at `now_ms`.
    pub fn poll_call(&mut self, now_ms: u64) -> Option<AuditCall> {
        let tracked = self.to_send.len() + self.outstanding.len() + self.report.steps.len();
        let (mut call, exp) = self.to_send.pop_front()?;
        call.timeout_at_ms = now_ms.saturating_add(self.call_timeout_ms);
        let earlier = self
            .outstanding
            .insert(call.audit_id, (call.timeout_at_ms, exp));
        debug_assert!(earlier.is_none(), "audit {} sent twice", call.audit_id);
        debug_assert_eq!(
            self.to_send.len() + self.outstanding.len() + self.report.steps.len(),
            tracked,
            "a re-execution was lost or duplicated on sending"
        );
        Some(call)
    }

    /// The result of re-execution `audit_id` (the response body, or how it failed).
    pub fn on_call_result(&mut self, audit_id: u64, result: Result<Body, SubCallFailure>) {
        let tracked = self.to_send.len() + self.outstanding.len() + self.report.steps.len();
        let Some((_, exp)) = self.outstanding.remove(&audit_id) else {
            return;
        };
        debug_assert!(
            !self
                .report
                .steps
                .iter()
                .any(|s| s.step_index == exp.step_index),
            "step {} judged twice",
            exp.step_index
        );
        let verdict = match result {
            Err(failure) => StepVerdict::Inconclusive { failure },
            Ok(live) => judge(&exp, &live),
        };
        self.report.steps.push(StepAudit {
            step_index: exp.step_index,
            verdict,
        });
        debug_assert_eq!(
            self.to_send.len() + self.outstanding.len() + self.report.steps.len(),
            tracked,
            "a re-execution was lost or duplicated on judging"
        );
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.outstanding.values().map(|(t, _)| *t).min()
    }

    /// Re-executions past their timeout at `now_ms` become inconclusive.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        let due: Vec<u64> = self
            .outstanding
            .iter()
            .filter(|(_, (t, _))| *t <= now_ms)
            .map(|(&id, _)| id)
            .collect();
        for id in due {
            self.on_call_result(id, Err(SubCallFailure::Timeout));
        }
    }

    /// Whether every re-execution has been sent and answered.
    pub fn is_finished(&self) -> bool {
        self.to_send.is_empty() && self.outstanding.is_empty()
    }

    /// The report so far (what `finish` would return).
    pub fn report(&self) -> &AuditReport {
        &self.report
    }

    /// The report; re-executions never sent or answered are inconclusive.
    pub fn finish(mut self) -> AuditReport {
        let tracked = self.to_send.len() + self.outstanding.len() + self.report.steps.len();
        let open = self.to_send.drain(..).map(|(_, e)| e).chain(
            std::mem::take(&mut self.outstanding)
                .into_values()
                .map(|(_, e)| e),
        );
        for exp in open {
            self.report.steps.push(StepAudit {
                step_index: exp.step_index,
                verdict: StepVerdict::Inconclusive {
                    failure: SubCallFailure::Timeout,
                },
            });
        }
        self.report.steps.sort_by_key(|s| s.step_index);
        debug_assert_eq!(
            self.report.steps.len(),
            tracked,
            "every re-execution ends in one verdict"
        );
        debug_assert!(
            self.report
                .steps
                .windows(2)
                .all(|w| w[0].step_index < w[1].step_index),
            "a step has two verdicts"
        );
        self.report
    }
}

fn judge(exp: &Expectation, live: &Body) -> StepVerdict {
    if exp.deterministic {
        return if live.hash() == exp.response_hash {
            StepVerdict::Reproduced
        } else {
            StepVerdict::HashMismatch
        };
    }
    if exp.schema.as_ref().is_none_or(|s| !s.is_valid(live)) {
        return StepVerdict::SchemaMismatch;
    }
    for (pointer, committed) in &exp.stable {
        if live.pointer(pointer) != Some(committed) {
            return StepVerdict::StableFieldMismatch {
                pointer: pointer.clone(),
            };
        }
    }
    if let Some((committed, min)) = &exp.content {
        let agreement = agreement(committed, live);
        if agreement < *min {
            return StepVerdict::Disagrees { agreement };
        }
    }
    StepVerdict::Consistent
}

/// Keeps the replay set and the subnet hotkeys receipts are checked against; starts audits.
#[derive(Debug, Clone, Default)]
pub struct Auditor {
    config: AuditorConfig,
    seen: BTreeMap<Hash32, Sighting>,
    expiry: VecDeque<(u64, Hash32)>,
    subnet_hotkeys: BTreeMap<u16, BTreeSet<String>>,
    /// Decoded keys of known subnet hotkeys (`None`: not a valid key). Decoding an ss58 address
    /// and its curve point costs a fair part of a verification, and the same few keys sign
    /// every receipt. Only known hotkeys are cached, so the map stays as small as the metagraphs.
    receipt_keys: BTreeMap<String, Vec<(Scheme, Option<VerifyingKey>)>>,
    next_audit_id: u64,
}

/// Whether `receipt` is `subnet_hotkey`'s valid signature over the step's hashes and start time.
pub fn receipt_valid(step: &PipelineStep, receipt: &Receipt) -> bool {
    let Some(scheme) = Scheme::from_name(&receipt.scheme) else {
        return false;
    };
    let Some(key) = decode_key(scheme, &step.subnet_hotkey) else {
        return false;
    };
    receipt_signed_by(step, receipt, &key)
}

fn decode_key(scheme: Scheme, ss58_address: &str) -> Option<VerifyingKey> {
    let (public, _) = ss58::decode(ss58_address).ok()?;
    VerifyingKey::from_bytes(scheme, &public)
}

/// Whether `receipt`'s signature over the step verifies under `key`.
fn receipt_signed_by(step: &PipelineStep, receipt: &Receipt, key: &VerifyingKey) -> bool {
    let hex_sig = receipt
        .signature
        .strip_prefix("0x")
        .unwrap_or(&receipt.signature);
    let mut sig = [0u8; 64];
    if hex::decode_to_slice(hex_sig, &mut sig).is_err() {
        return false;
    }
    let msg = receipt_message(&step.request_hash, &step.response_hash, step.started_at_ms);
    key.verify(&msg, &sig)
}

impl Auditor {
    /// An auditor with `config` and an empty replay set.
    pub fn new(config: AuditorConfig) -> Self {
        Auditor {
            config,
            ..Default::default()
        }
    }

    /// The hotkeys (ss58) of subnet `netuid`'s neurons, from its metagraph: receipts signed by
    /// one of them exempt a step from audit.
    pub fn set_subnet_hotkeys(&mut self, netuid: u16, hotkeys: BTreeSet<String>) {
        self.subnet_hotkeys.insert(netuid, hotkeys);
        let known = &self.subnet_hotkeys;
        self.receipt_keys
            .retain(|k, _| known.values().any(|keys| keys.contains(k)));
    }

    /// [`receipt_valid`], with the key of a known subnet hotkey decoded once.
    fn receipt_valid_known(&mut self, step: &PipelineStep, receipt: &Receipt) -> bool {
        let Some(scheme) = Scheme::from_name(&receipt.scheme) else {
            return false;
        };
        let hotkey = step.subnet_hotkey.as_str();
        let cached = self
            .receipt_keys
            .get(hotkey)
            .and_then(|keys| keys.iter().find(|(s, _)| *s == scheme));
        if let Some((_, key)) = cached {
            return key
                .as_ref()
                .is_some_and(|k| receipt_signed_by(step, receipt, k));
        }
        let key = decode_key(scheme, hotkey);
        let valid = key
            .as_ref()
            .is_some_and(|k| receipt_signed_by(step, receipt, k));
        self.receipt_keys
            .entry(hotkey.to_string())
            .or_default()
            .push((scheme, key));
        valid
    }

    /// Response hashes currently remembered.
    pub fn replay_set_len(&self) -> usize {
        self.seen.len()
    }

    fn expire(&mut self, now_ms: u64, window_ms: u64) {
        while let Some(&(at, h)) = self.expiry.front() {
            if at.saturating_add(window_ms) >= now_ms {
                break;
            }
            self.expiry.pop_front();
            let matches = self.seen.get(&h).is_some_and(|s| s.at_ms == at);
            debug_assert!(
                matches,
                "expiry record ({at}, {h}) names no sighting at that time"
            );
            if matches {
                self.seen.remove(&h);
            }
        }
    }

    /// Start auditing `response` to `challenge`, received at `received_at_ms`, against the
    /// validator's Ledger `view`. Checks 1–4 run now; check 5's re-executions come out of the
    /// returned [`Audit`].
    pub fn begin(
        &mut self,
        challenge: &Challenge,
        response: &Response,
        received_at_ms: u64,
        view: &LedgerView,
        params: &MechanismParams,
        rng: &mut impl rand::Rng,
    ) -> Audit {
        let mut report = AuditReport {
            challenge_id: challenge.challenge_id,
            miner: response.miner.clone(),
            received_at_ms,
            late: !within_grace(
                received_at_ms.saturating_sub(challenge.issued_at_ms),
                challenge.deadline_ms,
                params,
            ),
            proof_error: None,
            replays: Vec::new(),
            steps: Vec::new(),
            inconclusive_fails: self.config.inconclusive_fails,
        };
        let call_timeout_ms = self.config.call_timeout_ms;
        let audit = move |report: AuditReport, to_send: VecDeque<(AuditCall, Expectation)>| Audit {
            report,
            to_send,
            outstanding: BTreeMap::new(),
            call_timeout_ms,
        };
        if report.late {
            return audit(report, VecDeque::new());
        }
        if let Err(e) = verify(challenge, response, received_at_ms) {
            report.proof_error = Some(proof_error_text(&e));
        }
        // Check 4 — and remember this response's hashes whatever the outcome, so whoever copies
        // it later is caught.
        self.expire(received_at_ms, params.replay_window_ms);
        for (step_index, step) in response.pipeline.iter().enumerate() {
            match self.seen.get(&step.response_hash) {
                Some(s)
                    if s.miner != response.miner || s.challenge_id != challenge.challenge_id =>
                {
                    report.replays.push(ReplayHit {
                        step_index,
                        response_hash: step.response_hash,
                        first_miner: s.miner.clone(),
                        first_challenge: s.challenge_id,
                        copied: s.miner != response.miner,
                    });
                }
                Some(_) => {}
                None => {
                    self.seen.insert(
                        step.response_hash,
                        Sighting {
                            miner: response.miner.clone(),
                            challenge_id: challenge.challenge_id,
                            at_ms: received_at_ms,
                        },
                    );
                    self.expiry.push_back((received_at_ms, step.response_hash));
                }
            }
        }
        debug_assert_eq!(
            self.seen.len(),
            self.expiry.len(),
            "every remembered hash has one expiry record"
        );
        if report.proof_error.is_some() || !report.replays.is_empty() {
            return audit(report, VecDeque::new());
        }
        let mut to_send = VecDeque::new();
        // Check 5: the nonce under replay binding, then receipts, then draws, step by step (one
        // draw per unreceipted step, in pipeline order, so the RNG stream is a function of the
        // response alone).
        for (step_index, step) in response.pipeline.iter().enumerate() {
            if challenge.replay_binding
                && let Some(present) = nonce_failure(challenge, step, view)
            {
                report.steps.push(StepAudit {
                    step_index,
                    verdict: StepVerdict::NonceMismatch { present },
                });
                continue;
            }
            if let Some(receipt) = &step.receipt {
                let known = self
                    .subnet_hotkeys
                    .get(&step.netuid)
                    .is_some_and(|keys| keys.contains(&step.subnet_hotkey));
                let valid = if known {
                    self.receipt_valid_known(step, receipt)
                } else {
                    receipt_valid(step, receipt)
                };
                if !valid {
                    report.steps.push(StepAudit {
                        step_index,
                        verdict: StepVerdict::ForgedReceipt,
                    });
                    continue;
                }
                if known {
                    report.steps.push(StepAudit {
                        step_index,
                        verdict: StepVerdict::Receipted,
                    });
                    continue;
                }
            }
            if !audit_draw(rng, params.audit_rate) {
                continue;
            }
            let Some((index, ep)) = view.endpoint(step.netuid, &step.endpoint) else {
                report.steps.push(StepAudit {
                    step_index,
                    verdict: StepVerdict::UnknownEndpoint,
                });
                continue;
            };
            let Some(request) = step.request.clone() else {
                report.steps.push(StepAudit {
                    step_index,
                    verdict: StepVerdict::BodyMissing,
                });
                continue;
            };
            let stable = match (&step.response, ep.deterministic) {
                (Some(body), false) => ep
                    .stable_fields
                    .iter()
                    .filter_map(|p| body.pointer(p).map(|v| (p.clone(), v.clone())))
                    .collect(),
                _ => Vec::new(),
            };
            let content = match &step.response {
                Some(body) if !ep.deterministic && params.audit_agreement_min > 0.0 => {
                    Some((body.clone(), params.audit_agreement_min))
                }
                _ => None,
            };
            let exp = Expectation {
                content,
                step_index,
                deterministic: ep.deterministic,
                response_hash: step.response_hash,
                schema: if ep.deterministic {
                    None
                } else {
                    view.output_schema(step.netuid, index).cloned()
                },
                stable,
            };
            let audit_id = self.next_audit_id;
            self.next_audit_id += 1;
            to_send.push_back((
                AuditCall {
                    audit_id,
                    step_index,
                    netuid: step.netuid,
                    endpoint: step.endpoint.clone(),
                    request,
                    timeout_at_ms: 0,
                },
                exp,
            ));
        }
        if cfg!(debug_assertions) {
            // One place per step: a verdict now, or a re-execution to send (in pipeline order).
            let mut positions: Vec<usize> = report
                .steps
                .iter()
                .map(|s| s.step_index)
                .chain(to_send.iter().map(|(c, _)| c.step_index))
                .collect();
            let n = positions.len();
            positions.sort_unstable();
            positions.dedup();
            debug_assert_eq!(positions.len(), n, "a step both judged and drawn, or twice");
            debug_assert!(
                positions
                    .last()
                    .is_none_or(|&p| p < response.pipeline.len())
            );
            debug_assert!(
                to_send.is_empty()
                    || (!report.late && report.proof_error.is_none() && report.replays.is_empty()),
                "a response failing checks 1-4 is re-executed"
            );
            debug_assert!(
                to_send
                    .iter()
                    .all(|(c, e)| c.step_index == e.step_index && c.audit_id < self.next_audit_id)
            );
        }
        audit(report, to_send)
    }
}

/// Under replay binding, why `step`'s request fails the nonce check: `Some(false)` when it
/// carries no nonce (or its body was omitted, so nothing can be checked), `Some(true)` when it
/// carries another one; `None` when it passes. An endpoint the validator's Ledger lists with an
/// input schema that cannot carry the nonce (`accepts_nonce`) is not asked for one: an honest
/// miner leaves it out there. The check needs no subnet, so it runs on every step, drawn or not,
/// receipted or not — a receipt over a request for another challenge is such a request.
fn nonce_failure(challenge: &Challenge, step: &PipelineStep, view: &LedgerView) -> Option<bool> {
    if let Some((_, ep)) = view.endpoint(step.netuid, &step.endpoint)
        && !accepts_nonce(&ep.input_schema)
    {
        return None;
    }
    let Some(request) = step.request.as_deref() else {
        return Some(false);
    };
    let Some(found) = request_nonce(request) else {
        return Some(false);
    };
    let expected = call_nonce(&challenge.challenge_id, &step.step_id);
    // Compared as hex text: the nonce is sent as lowercase hex, and anything else is not it.
    (found != expected.to_hex()).then_some(true)
}

fn proof_error_text(e: &ProofError) -> String {
    e.to_string()
}
