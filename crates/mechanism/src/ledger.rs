//! Ledger scoring terms, per miner per tempo over a window of `W` tempos (docs/mechanism.md §6).
//!
//! The pure term functions ([`update_accuracy`], [`discovery_credits`], [`normalize_discovery`],
//! [`freshness`], [`coverage`]) take counts and verdicts; [`LedgerWindow`] keeps the last `W` tempos
//! of verdicts and routed-step counts and computes every miner's [`LedgerTerms`] from them.
//!
//! # Invariants
//!
//! Checked with `debug_assert!` (every debug build and test; free in release): every term is in
//! `[0, 1]` (checked on the value computed, before any final clamp, wherever the arithmetic
//! guarantees it); demand shares are non-negative and sum to 1, or are all 0 when nothing was
//! routed; [`LedgerTerms::score`] lies in `[0, Σ effective weights]`, i.e. `[0, 1 − s]` for
//! non-negative term weights.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::orchestration::{clamp_finite, clamp01, debug_assert_score_within, unit};
use crate::params::{ConfirmationScope, MechanismParams};

pub use orchestra_protocol::ledger::ProposalKind;

/// A validator's verdict on one proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Valid and the earliest among duplicates: full credit.
    First,
    /// Valid duplicate of an earlier proposal inside the window: `confirmation_factor` credit.
    Confirmation,
    /// Invalid: slashed.
    Rejected,
}

impl Verdict {
    /// Whether the proposal was accepted (first or confirmation).
    pub fn accepted(self) -> bool {
        !matches!(self, Self::Rejected)
    }
}

/// One verified proposal, as the Ledger window records it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProposalRecord {
    /// The proposing miner's uid.
    pub miner: u16,
    /// The subnet the proposal is about.
    pub netuid: u16,
    /// The proposal kind.
    pub kind: ProposalKind,
    /// The verdict.
    pub verdict: Verdict,
    /// Proposal block − earliest block anyone had evidence of the change (see [`freshness_lag`]).
    pub lag_blocks: u64,
}

/// The four Ledger terms of one miner (or their EMAs), each in `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct LedgerTerms {
    /// `(accepted + 1) / (accepted + rejected + 2)` if the miner proposed, else 0.
    pub update_accuracy: f64,
    /// Net discovery credits divided by the window's maximum over miners.
    pub discovery: f64,
    /// Mean `exp(−lag/τ)` over accepted proposals; 0 if none.
    pub freshness: f64,
    /// Demand share of subnets the miner has an accepted proposal for.
    pub coverage: f64,
}

impl LedgerTerms {
    /// The terms in order (accuracy, discovery, freshness, coverage).
    pub fn as_array(&self) -> [f64; 4] {
        [
            self.update_accuracy,
            self.discovery,
            self.freshness,
            self.coverage,
        ]
    }

    /// Builds terms from an array in [`Self::as_array`] order.
    pub fn from_array(a: [f64; 4]) -> Self {
        Self {
            update_accuracy: a[0],
            discovery: a[1],
            freshness: a[2],
            coverage: a[3],
        }
    }

    /// Every term clamped to `[0, 1]`, NaN mapped to 0.
    pub fn sanitized(&self) -> Self {
        Self::from_array(self.as_array().map(clamp01))
    }

    /// The weighted Ledger score `L = Σ effective_w(t) · term(t)`, in `[0, 1 − s]`.
    pub fn score(&self, params: &MechanismParams) -> f64 {
        let w = params.effective_ledger_weights();
        let score = clamp_finite(
            self.sanitized()
                .as_array()
                .iter()
                .zip(w)
                .map(|(t, w)| t * w)
                .sum(),
        );
        debug_assert_score_within(score, &w);
        score
    }
}

/// `update_accuracy = (accepted + 1) / (accepted + rejected + 2)` (a Beta(1,1) prior), or 0 if the
/// miner made no proposal in the window.
pub fn update_accuracy(accepted: u64, rejected: u64) -> f64 {
    if accepted == 0 && rejected == 0 {
        return 0.0;
    }
    unit(
        "update_accuracy",
        (accepted as f64 + 1.0) / (accepted as f64 + rejected as f64 + 2.0),
    )
}

/// Net discovery credits of one miner's verdicts: each first proposal earns its kind's unit, each
/// confirmation `confirmation_factor × unit`, each rejection loses `slash × unit`; floored at 0.
pub fn discovery_credits(
    verdicts: impl IntoIterator<Item = (ProposalKind, Verdict)>,
    params: &MechanismParams,
) -> f64 {
    let total: f64 = verdicts
        .into_iter()
        .map(|(kind, verdict)| {
            let unit = params.credits.unit(kind);
            match verdict {
                Verdict::First => unit,
                Verdict::Confirmation => params.confirmation_factor * unit,
                Verdict::Rejected => -params.slash * unit,
            }
        })
        .sum();
    clamp_finite(total)
}

/// Divides every miner's net credits by the window's maximum (all 0 if the maximum is 0).
pub fn normalize_discovery(raw: &BTreeMap<u16, f64>) -> BTreeMap<u16, f64> {
    let max = raw.values().copied().map(clamp_finite).fold(0.0, f64::max);
    raw.iter()
        .map(|(&uid, &c)| {
            (
                uid,
                if max > 0.0 {
                    clamp01(clamp_finite(c) / max)
                } else {
                    0.0
                },
            )
        })
        .collect()
}

/// Lag of a proposal: its block minus the earliest block at which anyone had evidence of the
/// change (0 if the proposal itself was the earliest evidence).
pub fn freshness_lag(proposal_block: u64, earliest_evidence_block: u64) -> u64 {
    proposal_block.saturating_sub(earliest_evidence_block)
}

/// `freshness`: mean of `exp(−lag/τ)` over the accepted proposals' lags; 0 if there are none.
pub fn freshness(lags_blocks: &[u64], tau_blocks: f64) -> f64 {
    if lags_blocks.is_empty() || !(tau_blocks.is_finite() && tau_blocks > 0.0) {
        return 0.0;
    }
    let sum: f64 = lags_blocks
        .iter()
        .map(|&lag| (-(lag as f64) / tau_blocks).exp())
        .sum();
    // A mean of values in [0, 1] (up to the rounding of the sum, hence the clamp).
    clamp01(unit("freshness", (sum / lags_blocks.len() as f64).min(1.0)))
}

/// Demand per subnet: its share of all routed steps in the window.
pub fn demand_shares(routed_steps: &BTreeMap<u16, u64>) -> BTreeMap<u16, f64> {
    let total: u64 = routed_steps.values().sum();
    let shares: BTreeMap<u16, f64> = routed_steps
        .iter()
        .map(|(&netuid, &n)| {
            (
                netuid,
                if total == 0 {
                    0.0
                } else {
                    n as f64 / total as f64
                },
            )
        })
        .collect();
    if cfg!(debug_assertions) {
        let sum: f64 = shares.values().map(|&d| unit("demand share", d)).sum();
        debug_assert!(
            if total == 0 {
                sum == 0.0
            } else {
                (sum - 1.0).abs() <= 1e-9
            },
            "demand shares sum to {sum}"
        );
    }
    shares
}

/// `coverage`: Σ demand of the `covered` subnets ÷ Σ demand (0 if there is no demand).
pub fn coverage(demand: &BTreeMap<u16, f64>, covered: &BTreeSet<u16>) -> f64 {
    let total: f64 = demand.values().copied().map(clamp_finite).sum();
    if total <= 0.0 {
        return 0.0;
    }
    let hit: f64 = demand
        .iter()
        .filter(|(n, _)| covered.contains(n))
        .map(|(_, &d)| clamp_finite(d))
        .sum();
    let share = hit / total;
    if total.is_finite() {
        // A sum over a subset of the same non-negative terms, in the same order, cannot exceed
        // the whole sum.
        unit("coverage", share);
    }
    clamp01(share)
}

/// The Ledger work gate: multiplies each miner's Ledger score `L_i` by `(O_i / max_j O_j)^k`,
/// its orchestration score relative to the best orchestrator's, so Ledger credit needs audited
/// orchestration work behind it (a ledger-only prober or a confirmation farmer that does not
/// orchestrate earns little of it). `k = 0` leaves the scores untouched (the seed's design).
/// When nobody has an orchestration score, nobody keeps Ledger credit.
pub fn work_gate(scores: &mut BTreeMap<u16, (f64, f64)>, k: f64) {
    if !(k.is_finite() && k > 0.0) {
        return;
    }
    let best = scores
        .values()
        .map(|&(o, _)| clamp_finite(o))
        .fold(0.0, f64::max);
    for (o, l) in scores.values_mut() {
        let gate = if best > 0.0 {
            clamp01(clamp_finite(*o) / best).powf(k)
        } else {
            0.0
        };
        let before = *l;
        *l = clamp_finite(*l) * unit("work gate", gate);
        debug_assert!(
            *l <= clamp_finite(before),
            "the work gate raised a Ledger score"
        );
    }
}

/// Mean of values in `[0, 1]`; 0 for none.
fn mean_or_zero(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        0.0
    } else {
        clamp01(xs.iter().sum::<f64>() / xs.len() as f64)
    }
}

/// `freshness` with each accepted record's `exp(−lag/τ)` multiplied by its worth (1 for a first
/// proposal, `confirmation_factor` for a confirmation), averaged over the records.
/// ([`ConfirmationScope::AllTerms`]).
pub fn weighted_freshness(lags_blocks: &[u64], worths: &[f64], tau_blocks: f64) -> f64 {
    debug_assert_eq!(lags_blocks.len(), worths.len());
    if lags_blocks.is_empty() || !(tau_blocks.is_finite() && tau_blocks > 0.0) {
        return 0.0;
    }
    let sum: f64 = lags_blocks
        .iter()
        .zip(worths)
        .map(|(&lag, &w)| clamp01(w) * (-(lag as f64) / tau_blocks).exp())
        .sum();
    clamp01(unit("freshness", (sum / lags_blocks.len() as f64).min(1.0)))
}

/// `coverage` with each subnet's demand multiplied by the miner's best worth on it (1 if it has a
/// first proposal there, `confirmation_factor` if only confirmations)
/// ([`ConfirmationScope::AllTerms`]).
pub fn weighted_coverage(demand: &BTreeMap<u16, f64>, covered: &BTreeMap<u16, f64>) -> f64 {
    let total: f64 = demand.values().copied().map(clamp_finite).sum();
    if total <= 0.0 {
        return 0.0;
    }
    let hit: f64 = demand
        .iter()
        .filter_map(|(n, &d)| covered.get(n).map(|&w| clamp01(w) * clamp_finite(d)))
        .sum();
    clamp01(hit / total)
}

/// One tempo of Ledger activity.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct TempoActivity {
    proposals: Vec<ProposalRecord>,
    routed_steps: BTreeMap<u16, u64>,
}

/// The last `W` tempos of verified proposals and routed steps, from which every miner's
/// [`LedgerTerms`] are computed. Serialisable, so a node can persist it across restarts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerWindow {
    tempos: VecDeque<TempoActivity>,
    capacity: usize,
}

impl LedgerWindow {
    /// An empty window of `window_tempos` tempos (at least 1).
    pub fn new(window_tempos: u32) -> Self {
        Self {
            tempos: VecDeque::new(),
            capacity: (window_tempos as usize).max(1),
        }
    }

    /// Appends one tempo's verdicts and routed-step counts per netuid; the oldest tempo leaves once
    /// the window is full.
    pub fn push_tempo(&mut self, proposals: Vec<ProposalRecord>, routed_steps: BTreeMap<u16, u64>) {
        self.tempos.push_back(TempoActivity {
            proposals,
            routed_steps,
        });
        while self.tempos.len() > self.capacity {
            self.tempos.pop_front();
        }
    }

    /// Number of tempos currently held.
    pub fn len(&self) -> usize {
        self.tempos.len()
    }

    /// Whether no tempo has been pushed yet.
    pub fn is_empty(&self) -> bool {
        self.tempos.is_empty()
    }

    /// Demand share per netuid over the window.
    pub fn demand(&self) -> BTreeMap<u16, f64> {
        let mut steps: BTreeMap<u16, u64> = BTreeMap::new();
        for t in &self.tempos {
            for (&netuid, &n) in &t.routed_steps {
                *steps.entry(netuid).or_default() += n;
            }
        }
        demand_shares(&steps)
    }

    /// Ledger terms of every miner that proposed in the window. Miners absent from the map made
    /// no proposal and score [`LedgerTerms::default`] (all 0).
    pub fn terms(&self, params: &MechanismParams) -> BTreeMap<u16, LedgerTerms> {
        let mut by_miner: BTreeMap<u16, Vec<&ProposalRecord>> = BTreeMap::new();
        for p in self.tempos.iter().flat_map(|t| &t.proposals) {
            by_miner.entry(p.miner).or_default().push(p);
        }
        let demand = self.demand();
        let raw: BTreeMap<u16, f64> = by_miner
            .iter()
            .map(|(&m, ps)| {
                (
                    m,
                    discovery_credits(ps.iter().map(|p| (p.kind, p.verdict)), params),
                )
            })
            .collect();
        let discovery = normalize_discovery(&raw);
        by_miner
            .iter()
            .map(|(&m, ps)| {
                let accepted: Vec<_> = ps.iter().filter(|p| p.verdict.accepted()).collect();
                let rejected = (ps.len() - accepted.len()) as u64;
                let lags: Vec<u64> = accepted.iter().map(|p| p.lag_blocks).collect();
                let discovery = discovery.get(&m).copied().unwrap_or(0.0);
                let terms = match params.confirmation_scope {
                    ConfirmationScope::Discovery => {
                        let covered: BTreeSet<u16> = accepted.iter().map(|p| p.netuid).collect();
                        LedgerTerms {
                            update_accuracy: update_accuracy(accepted.len() as u64, rejected),
                            discovery,
                            freshness: freshness(&lags, params.freshness_tau_blocks),
                            coverage: coverage(&demand, &covered),
                        }
                    }
                    ConfirmationScope::AllTerms => {
                        let worth = |p: &ProposalRecord| match p.verdict {
                            Verdict::First => 1.0,
                            _ => clamp01(params.confirmation_factor),
                        };
                        let worths: Vec<f64> = accepted.iter().map(|p| worth(p)).collect();
                        let mut covered: BTreeMap<u16, f64> = BTreeMap::new();
                        for (p, &w) in accepted.iter().zip(&worths) {
                            let c = covered.entry(p.netuid).or_default();
                            *c = c.max(w);
                        }
                        LedgerTerms {
                            update_accuracy: update_accuracy(accepted.len() as u64, rejected)
                                * mean_or_zero(&worths),
                            discovery,
                            freshness: weighted_freshness(
                                &lags,
                                &worths,
                                params.freshness_tau_blocks,
                            ),
                            coverage: weighted_coverage(&demand, &covered),
                        }
                    }
                };
                for t in terms.as_array() {
                    unit("Ledger term", t);
                }
                (m, terms)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_accuracy_worked_numbers() {
        assert_eq!(update_accuracy(0, 0), 0.0);
        assert_eq!(update_accuracy(1, 0), 2.0 / 3.0);
        assert_eq!(update_accuracy(3, 1), 4.0 / 6.0);
        assert_eq!(update_accuracy(0, 8), 0.1);
    }

    #[test]
    fn discovery_worked_numbers() {
        let p = MechanismParams::default();
        use ProposalKind::*;
        use Verdict::*;
        // new_subnet first 5 + schema confirmation 0.2 + metrics first 0.2 − deprecation slash 0.5.
        let c = discovery_credits(
            [
                (NewSubnet, First),
                (SchemaUpdate, Confirmation),
                (MetricsUpdate, First),
                (Deprecation, Rejected),
            ],
            &p,
        );
        assert!((c - 4.9).abs() < 1e-12, "{c}");
        // A spammer: three rejected new_subnet proposals → −7.5, floored at 0.
        assert_eq!(discovery_credits([(NewSubnet, Rejected); 3], &p), 0.0);
        let norm = normalize_discovery(&BTreeMap::from([
            (1, 4.9),
            (2, 0.0),
            (3, 2.45),
            (4, f64::NAN),
        ]));
        assert_eq!(
            norm,
            BTreeMap::from([(1, 1.0), (2, 0.0), (3, 0.5), (4, 0.0)])
        );
        assert_eq!(
            normalize_discovery(&BTreeMap::from([(1, 0.0)])),
            BTreeMap::from([(1, 0.0)])
        );
    }

    #[test]
    fn freshness_worked_numbers() {
        assert_eq!(freshness(&[], 7200.0), 0.0);
        assert_eq!(freshness(&[0], 7200.0), 1.0);
        // lag = τ → e^−1; mean with a zero lag → (1 + e^−1)/2.
        let f = freshness(&[0, 7200], 7200.0);
        assert!((f - (1.0 + (-1.0f64).exp()) / 2.0).abs() < 1e-12);
        assert_eq!(freshness_lag(100, 120), 0);
        assert_eq!(freshness_lag(150, 120), 30);
    }

    #[test]
    fn coverage_worked_numbers() {
        let demand = demand_shares(&BTreeMap::from([(1, 60), (2, 30), (3, 10)]));
        assert!((coverage(&demand, &BTreeSet::from([1, 3])) - 0.7).abs() < 1e-12);
        assert_eq!(coverage(&demand, &BTreeSet::from([9])), 0.0);
        assert_eq!(coverage(&BTreeMap::new(), &BTreeSet::from([1])), 0.0);
    }

    #[test]
    fn all_terms_scope_discounts_confirmations_in_every_term() {
        let mut p = MechanismParams {
            confirmation_scope: ConfirmationScope::AllTerms,
            ..Default::default()
        };
        let rec = |miner, netuid, verdict, lag| ProposalRecord {
            miner,
            netuid,
            kind: ProposalKind::SchemaUpdate,
            verdict,
            lag_blocks: lag,
        };
        let mut w = LedgerWindow::new(4);
        w.push_tempo(
            vec![
                rec(1, 1, Verdict::First, 0),
                rec(2, 1, Verdict::Confirmation, 0),
                rec(2, 2, Verdict::Confirmation, 0),
                rec(3, 1, Verdict::First, 0),
                rec(3, 2, Verdict::Confirmation, 7200),
            ],
            BTreeMap::from([(1, 60), (2, 40)]),
        );
        let t = w.terms(&p);
        // The discoverer keeps the seed's terms.
        assert_eq!(t[&1].update_accuracy, 2.0 / 3.0);
        assert_eq!(t[&1].freshness, 1.0);
        assert!((t[&1].coverage - 0.6).abs() < 1e-12);
        // The farmer: accuracy (2+1)/(2+2) × mean worth 0.2; freshness 0.2; coverage 0.2 × 1.
        assert!((t[&2].update_accuracy - 0.75 * 0.2).abs() < 1e-12);
        assert!((t[&2].freshness - 0.2).abs() < 1e-12);
        assert!((t[&2].coverage - 0.2).abs() < 1e-12);
        // Mixed: accuracy 0.75 × 0.6; freshness (1 + 0.2 e^−1)/2; coverage 0.6 + 0.2 × 0.4.
        assert!((t[&3].update_accuracy - 0.75 * 0.6).abs() < 1e-12);
        let f = (1.0 + 0.2 * (-1.0f64).exp()) / 2.0;
        assert!((t[&3].freshness - f).abs() < 1e-12);
        assert!((t[&3].coverage - 0.68).abs() < 1e-12);
        // With a full confirmation factor the scope changes nothing.
        p.confirmation_factor = 1.0;
        let seed = MechanismParams {
            confirmation_factor: 1.0,
            ..Default::default()
        };
        assert_eq!(w.terms(&p), w.terms(&seed));
    }

    #[test]
    fn work_gate_scales_ledger_scores_by_relative_orchestration() {
        let mut s = BTreeMap::from([(1, (0.4, 0.3)), (2, (0.2, 0.3)), (3, (0.0, 0.3))]);
        work_gate(&mut s, 0.0);
        assert_eq!(s[&2], (0.2, 0.3));
        work_gate(&mut s, 2.0);
        assert_eq!(s[&1], (0.4, 0.3));
        assert!((s[&2].1 - 0.3 * 0.25).abs() < 1e-12);
        assert_eq!(s[&3], (0.0, 0.0));
        let mut nobody = BTreeMap::from([(1, (0.0, 0.3))]);
        work_gate(&mut nobody, 1.0);
        assert_eq!(nobody[&1], (0.0, 0.0));
    }

    #[test]
    fn window_computes_terms_and_evicts_old_tempos() {
        let p = MechanismParams::default();
        let rec = |miner, netuid, kind, verdict, lag| ProposalRecord {
            miner,
            netuid,
            kind,
            verdict,
            lag_blocks: lag,
        };
        let mut w = LedgerWindow::new(2);
        w.push_tempo(
            vec![rec(7, 1, ProposalKind::NewSubnet, Verdict::First, 0)],
            BTreeMap::from([(1, 75), (2, 25)]),
        );
        w.push_tempo(
            vec![
                rec(8, 2, ProposalKind::SchemaUpdate, Verdict::First, 7200),
                rec(8, 1, ProposalKind::NewSubnet, Verdict::Rejected, 0),
            ],
            BTreeMap::new(),
        );
        let t = w.terms(&p);
        assert_eq!(
            t[&7],
            LedgerTerms {
                update_accuracy: 2.0 / 3.0,
                discovery: 1.0,
                freshness: 1.0,
                coverage: 0.75
            }
        );
        // Miner 8: credits 1 − 2.5 → 0; accuracy (1+1)/(1+1+2) = 0.5; freshness e^−1; coverage 0.25.
        assert_eq!(t[&8].update_accuracy, 0.5);
        assert_eq!(t[&8].discovery, 0.0);
        assert!((t[&8].freshness - (-1.0f64).exp()).abs() < 1e-12);
        assert_eq!(t[&8].coverage, 0.25);
        // A third tempo pushes the first out: miner 7 is gone, demand is empty.
        w.push_tempo(vec![], BTreeMap::new());
        assert_eq!(w.len(), 2);
        let t = w.terms(&p);
        assert!(!t.contains_key(&7));
        assert_eq!(t[&8].coverage, 0.0);
        assert_eq!(t[&8].discovery, 0.0);
    }
}
