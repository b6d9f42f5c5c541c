//! [`ProposalVerifier`]: verifies miners' Ledger proposals by probing, then applies the Ledger
//! crate's rules on this validator's replica.
//!
//! ```text
//! let ticket = verifier.submit(uid, proposer_ss58, proposal, arrival_block);
//! while let Some(probe) = verifier.poll_probe() { driver.probe(probe) }      // minimal_input
//! verifier.on_probe_result(probe_id, ProbeResult { ok, latency_ms, response });
//! while let Some(v) = verifier.poll_verdict(block) { scorer.record_proposal(v.record?) }
//! ```
//!
//! Probe plans per kind (docs/mechanism.md §5): `new_subnet` one probe per proposed endpoint;
//! `schema_update` one per touched endpoint (with its proposed `minimal_input` if that changes);
//! `deprecation` `deprecation_probes` spread over the endpoints; `metrics_update`
//! `metrics_min_probes + metrics_spare_probes` on the endpoint the evidence names (else the
//! first). A proposal is judged once all its probes are in, or when its verification window is
//! about to close with what has arrived. The judging — rules, first vs confirmation, the change
//! log — is `orchestra_ledger::Ledger::process`, so simulator and production agree with the
//! Ledger node bit for bit.

use orchestra_ledger::model::ChangeRecord;
use orchestra_ledger::view::LedgerView;
use orchestra_ledger::{Credit, Ledger, LedgerState, Outcome, ProbeResult, ProbeSet};
use orchestra_mechanism::ledger::{ProposalRecord, Verdict};
use orchestra_protocol::Body;
use orchestra_protocol::hash::Hash32;
use orchestra_protocol::ledger::{Entry, Proposal, ProposalChange};
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};

/// Extra probes a metrics update gets beyond the rule's minimum, so one failed probe does not
/// leave it unjudgeable.
pub const METRICS_SPARE_PROBES: usize = 2;

/// A probe the driver must run: call `endpoint` of `netuid` with `request`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeRequest {
    /// Names the probe in [`ProposalVerifier::on_probe_result`].
    pub probe_id: u64,
    /// The proposal it serves.
    pub ticket: u64,
    /// Subnet.
    pub netuid: u16,
    /// Endpoint name.
    pub endpoint: String,
    /// The endpoint's `minimal_input`.
    pub request: Body,
    /// Give up after this long, ms (a slower probe counts as failed anyway).
    pub timeout_ms: u64,
}

/// A judged proposal.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedProposal {
    /// The ticket `submit` returned.
    pub ticket: u64,
    /// The proposer's uid.
    pub uid: u16,
    /// The proposal.
    pub proposal: Proposal,
    /// The Ledger engine's outcome.
    pub outcome: Outcome,
    /// The change record appended to this replica, if accepted.
    pub change: Option<ChangeRecord>,
    /// What the scorer records: `None` for a rejection that is not the proposer's fault (late,
    /// too few probes, duplicate after the window), which neither credits nor slashes.
    pub record: Option<ProposalRecord>,
}

#[derive(Debug, Clone)]
struct Pending {
    uid: u16,
    proposer: String,
    proposal: Proposal,
    arrival_block: u64,
    probes: ProbeSet,
    outstanding: usize,
}

/// The proposal verifier and the Ledger replica it keeps.
#[derive(Debug, Clone)]
pub struct ProposalVerifier {
    validator: String,
    ledger: Ledger,
    pending: BTreeMap<u64, Pending>,
    to_probe: VecDeque<ProbeRequest>,
    probe_owner: BTreeMap<u64, (u64, String)>,
    earliest_evidence: BTreeMap<Hash32, u64>,
    next_ticket: u64,
    next_probe: u64,
}

/// The endpoint index a JSON pointer like `/endpoints/3/output_schema` touches.
fn endpoint_index(path: &str) -> Option<usize> {
    let mut it = path.split('/').skip(1);
    (it.next()? == "endpoints").then_some(())?;
    it.next()?.parse().ok()
}

impl ProposalVerifier {
    /// A verifier for validator `validator` (ss58) over the replica `ledger`.
    pub fn new(validator: impl Into<String>, ledger: Ledger) -> Self {
        ProposalVerifier {
            validator: validator.into(),
            ledger,
            pending: BTreeMap::new(),
            to_probe: VecDeque::new(),
            probe_owner: BTreeMap::new(),
            earliest_evidence: BTreeMap::new(),
            next_ticket: 0,
            next_probe: 0,
        }
    }

    /// Apply a change another validator verified (resync from a peer's change log, docs/mechanism.md
    /// §5): the record is checked against this replica and appended, or refused.
    pub fn apply_remote(
        &mut self,
        record: &ChangeRecord,
    ) -> Result<(), orchestra_ledger::engine::EngineError> {
        self.ledger.append(record).map(|_| ())
    }

    /// The replica.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The replica's entries.
    pub fn state(&self) -> &LedgerState {
        self.ledger.state()
    }

    /// A routing/auditing view of the replica (rebuild it when [`Ledger::head`]'s size moves).
    pub fn view(&self) -> LedgerView {
        LedgerView::new(self.ledger.state().entries.values().cloned())
    }

    /// [`view`](Self::view), reusing `previous`'s compiled schemas where they still apply
    /// ([`LedgerView::new_reusing`]).
    pub fn view_reusing(&self, previous: &LedgerView) -> LedgerView {
        LedgerView::new_reusing(self.ledger.state().entries.values().cloned(), previous)
    }

    /// Proposals awaiting a verdict.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    fn probe_plan(&self, proposal: &Proposal) -> Vec<(String, Value)> {
        let params = self.ledger.params();
        let current: Option<&Entry> = self.ledger.state().get(proposal.netuid);
        match (&proposal.change, current) {
            (ProposalChange::NewSubnet { entry }, _) => entry
                .endpoints
                .iter()
                .map(|e| (e.name.clone(), e.minimal_input.clone()))
                .collect(),
            (_, None) => Vec::new(),
            (ProposalChange::SchemaUpdate { changes }, Some(cur)) => {
                let mut touched: BTreeMap<usize, Value> = BTreeMap::new();
                for c in changes {
                    if let Some(i) = endpoint_index(&c.path)
                        && let Some(ep) = cur.endpoints.get(i)
                    {
                        let input = if c.path == format!("/endpoints/{i}/minimal_input") {
                            c.new.clone()
                        } else {
                            ep.minimal_input.clone()
                        };
                        let slot = touched.entry(i).or_insert(input.clone());
                        if c.path.ends_with("/minimal_input") {
                            *slot = input;
                        }
                    }
                }
                touched
                    .into_iter()
                    .filter_map(|(i, input)| cur.endpoints.get(i).map(|e| (e.name.clone(), input)))
                    .collect()
            }
            (ProposalChange::Deprecation { .. }, Some(cur)) => {
                if cur.endpoints.is_empty() {
                    return Vec::new();
                }
                (0..params.deprecation_probes)
                    .map(|k| {
                        let e = &cur.endpoints[k % cur.endpoints.len()];
                        (e.name.clone(), e.minimal_input.clone())
                    })
                    .collect()
            }
            (ProposalChange::MetricsUpdate { .. }, Some(cur)) => {
                let named = proposal
                    .evidence
                    .first()
                    .and_then(|ev| cur.endpoints.iter().find(|e| e.name == ev.endpoint));
                match named.or_else(|| cur.endpoints.first()) {
                    Some(e) => (0..params.metrics_min_probes + METRICS_SPARE_PROBES)
                        .map(|_| (e.name.clone(), e.minimal_input.clone()))
                        .collect(),
                    None => Vec::new(),
                }
            }
        }
    }

    /// Queue `proposal` from miner `uid` (hotkey `proposer`), which arrived at `arrival_block`;
    /// its probes come out of [`poll_probe`](Self::poll_probe). Returns its ticket.
    pub fn submit(
        &mut self,
        uid: u16,
        proposer: impl Into<String>,
        proposal: Proposal,
        arrival_block: u64,
    ) -> u64 {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        let plan = self.probe_plan(&proposal);
        let timeout_ms = self.ledger.params().probe_timeout_ms;
        let probes = plan.len();
        for (endpoint, request) in plan {
            let probe_id = self.next_probe;
            self.next_probe += 1;
            self.probe_owner
                .insert(probe_id, (ticket, endpoint.clone()));
            self.to_probe.push_back(ProbeRequest {
                probe_id,
                ticket,
                netuid: proposal.netuid,
                endpoint,
                request: Body::new(request),
                timeout_ms,
            });
        }
        if let Ok(id) = proposal.content_id() {
            let e = self
                .earliest_evidence
                .entry(id)
                .or_insert(proposal.observed_block);
            *e = (*e).min(proposal.observed_block);
        }
        self.pending.insert(
            ticket,
            Pending {
                uid,
                proposer: proposer.into(),
                proposal,
                arrival_block,
                probes: ProbeSet::new(),
                outstanding: probes,
            },
        );
        ticket
    }

    /// The next probe to run.
    pub fn poll_probe(&mut self) -> Option<ProbeRequest> {
        self.to_probe.pop_front()
    }

    /// The result of probe `probe_id`.
    pub fn on_probe_result(&mut self, probe_id: u64, result: ProbeResult) {
        let Some((ticket, endpoint)) = self.probe_owner.remove(&probe_id) else {
            return;
        };
        if let Some(p) = self.pending.get_mut(&ticket) {
            p.probes.0.entry(endpoint).or_default().push(result);
            p.outstanding = p.outstanding.saturating_sub(1);
        }
    }

    /// The next proposal ready to judge at `block`: all probes in, or its window closing
    /// (`block ≥ arrival + window_blocks`). Judged in ticket order.
    pub fn poll_verdict(&mut self, block: u64) -> Option<VerifiedProposal> {
        let window = self.ledger.params().window_blocks;
        let ticket = self
            .pending
            .iter()
            .find(|(_, p)| p.outstanding == 0 || block >= p.arrival_block.saturating_add(window))
            .map(|(&t, _)| t)?;
        let p = self.pending.remove(&ticket)?;
        // Drop probes still queued or in flight for it.
        self.to_probe.retain(|r| r.ticket != ticket);
        self.probe_owner.retain(|_, (t, _)| *t != ticket);
        let verifiers = [self.validator.clone()];
        let (outcome, change) = match self.ledger.process(
            &p.proposal,
            &p.proposer,
            &p.probes,
            block,
            p.arrival_block,
            &verifiers,
        ) {
            Ok(r) => r,
            Err(e) => (
                Outcome::Rejected {
                    reason: orchestra_ledger::RejectReason::Malformed(e.to_string()),
                    slashed: false,
                },
                None,
            ),
        };
        let verdict = match &outcome {
            Outcome::Accepted {
                credit: Credit::First,
            } => Some(Verdict::First),
            Outcome::Accepted {
                credit: Credit::Confirmation,
            } => Some(Verdict::Confirmation),
            Outcome::Rejected { slashed: true, .. } => Some(Verdict::Rejected),
            Outcome::Rejected { slashed: false, .. } => None,
        };
        let earliest = p
            .proposal
            .content_id()
            .ok()
            .and_then(|id| self.earliest_evidence.get(&id).copied())
            .unwrap_or(p.proposal.observed_block);
        let record = verdict.map(|verdict| ProposalRecord {
            miner: p.uid,
            netuid: p.proposal.netuid,
            kind: p.proposal.change.kind(),
            verdict,
            lag_blocks: p.arrival_block.saturating_sub(earliest),
        });
        Some(VerifiedProposal {
            ticket,
            uid: p.uid,
            proposal: p.proposal,
            outcome,
            change,
            record,
        })
    }

    /// Note that the validator itself had evidence of `proposal`'s change at `block` (e.g. its
    /// own re-probe), which counts towards freshness lags.
    pub fn note_evidence(&mut self, proposal: &Proposal, block: u64) {
        if let Ok(id) = proposal.content_id() {
            let e = self.earliest_evidence.entry(id).or_insert(block);
            *e = (*e).min(block);
        }
    }
}
