//! Per-miner, per-term exponential moving averages (docs/mechanism.md §7).
//!
//! Each observation moves every term's EMA by `ema ← (1 − α)·ema + α·x` with `x` sanitized to
//! `[0, 1]`. Choices made here:
//! - A miner's EMAs **start at 0**: a new identity earns its score over about `1/α` observations,
//!   so registering fresh identities (sybils, churn) buys nothing up front.
//! - Miners that are not observed **do not decay**: their EMAs stay as they are.
//! - Orchestration and Ledger EMAs are observed separately (per challenge and per tempo).
//! - A **fabrication strike** (failed audit, §3) records an all-zero orchestration observation for
//!   the challenge and then multiplies every orchestration term EMA by `strike_penalty`, which
//!   multiplies the orchestration score `O` by `strike_penalty` because `O` is linear in the terms.
//!
//! # Invariants
//!
//! Checked with `debug_assert!` after every change to a miner (every debug build and test; free
//! in release): every term EMA is in `[0, 1]`, each observation counts once, and a strike never
//! raises an EMA.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ledger::LedgerTerms;
use crate::orchestration::{OrchestrationTerms, clamp01, unit};
use crate::params::MechanismParams;

/// One miner's term EMAs and observation counts.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct MinerEma {
    /// EMA of each orchestration term.
    pub orchestration: OrchestrationTerms,
    /// EMA of each Ledger term.
    pub ledger: LedgerTerms,
    /// Number of orchestration observations so far.
    pub orchestration_observations: u64,
    /// Number of Ledger observations so far.
    pub ledger_observations: u64,
    /// Number of fabrication strikes so far.
    pub strikes: u64,
}

impl MinerEma {
    /// The miner's orchestration score `O` from its EMAs.
    pub fn orchestration_score(&self, params: &MechanismParams) -> f64 {
        self.orchestration.score(params)
    }

    /// The miner's Ledger score `L` from its EMAs.
    pub fn ledger_score(&self, params: &MechanismParams) -> f64 {
        self.ledger.score(params)
    }

    /// Every term EMA in `[0, 1]` (debug builds).
    fn debug_check(&self) {
        for t in self.orchestration.as_array() {
            unit("orchestration EMA", t);
        }
        for t in self.ledger.as_array() {
            unit("Ledger EMA", t);
        }
    }
}

fn ema_step<const N: usize>(ema: [f64; N], x: [f64; N], alpha: f64) -> [f64; N] {
    let alpha = clamp01(alpha);
    let mut out = ema;
    for (o, x) in out.iter_mut().zip(x) {
        *o = clamp01((1.0 - alpha) * *o + alpha * clamp01(x));
    }
    out
}

/// Term EMAs of every miner, keyed by uid (a `BTreeMap`, so iteration is deterministic).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct EmaBook {
    miners: BTreeMap<u16, MinerEma>,
}

impl EmaBook {
    /// An empty book.
    pub fn new() -> Self {
        Self::default()
    }

    /// Folds one challenge's orchestration terms into `uid`'s EMAs.
    pub fn observe_orchestration(&mut self, uid: u16, terms: &OrchestrationTerms, alpha: f64) {
        let m = self.miners.entry(uid).or_default();
        m.orchestration = OrchestrationTerms::from_array(ema_step(
            m.orchestration.as_array(),
            terms.as_array(),
            alpha,
        ));
        m.orchestration_observations += 1;
        m.debug_check();
    }

    /// Folds one tempo's Ledger terms into `uid`'s EMAs.
    pub fn observe_ledger(&mut self, uid: u16, terms: &LedgerTerms, alpha: f64) {
        let m = self.miners.entry(uid).or_default();
        m.ledger = LedgerTerms::from_array(ema_step(m.ledger.as_array(), terms.as_array(), alpha));
        m.ledger_observations += 1;
        m.debug_check();
    }

    /// A failed audit: observes an all-zero challenge, then multiplies the orchestration EMAs by
    /// `params.strike_penalty`.
    pub fn fabrication_strike(&mut self, uid: u16, params: &MechanismParams) {
        self.observe_orchestration(uid, &OrchestrationTerms::ZERO, params.ema_alpha);
        let m = self.miners.entry(uid).or_default();
        let penalty = clamp01(params.strike_penalty);
        let before = m.orchestration;
        m.orchestration =
            OrchestrationTerms::from_array(m.orchestration.as_array().map(|t| t * penalty));
        m.strikes += 1;
        m.debug_check();
        debug_assert!(
            m.orchestration
                .as_array()
                .iter()
                .zip(before.as_array())
                .all(|(after, before)| *after <= before),
            "a strike raised an EMA"
        );
    }

    /// A slashed Ledger proposal: multiplies the orchestration EMAs by
    /// `params.proposal_strike_penalty` (no observation is recorded).
    pub fn proposal_strike(&mut self, uid: u16, params: &MechanismParams) {
        let m = self.miners.entry(uid).or_default();
        let penalty = clamp01(params.proposal_strike_penalty);
        let before = m.orchestration;
        m.orchestration =
            OrchestrationTerms::from_array(m.orchestration.as_array().map(|t| t * penalty));
        m.debug_check();
        debug_assert!(
            m.orchestration
                .as_array()
                .iter()
                .zip(before.as_array())
                .all(|(after, before)| *after <= before),
            "a strike raised an EMA"
        );
    }

    /// Forgets a miner (deregistered, or its uid was recycled).
    pub fn remove(&mut self, uid: u16) -> Option<MinerEma> {
        self.miners.remove(&uid)
    }

    /// One miner's EMAs, if it was ever observed.
    pub fn get(&self, uid: u16) -> Option<&MinerEma> {
        self.miners.get(&uid)
    }

    /// Every observed miner, by ascending uid.
    pub fn iter(&self) -> impl Iterator<Item = (u16, &MinerEma)> {
        self.miners.iter().map(|(&u, m)| (u, m))
    }

    /// `(O_i, L_i)` of every observed miner, by ascending uid, with the Ledger work gate
    /// ([`crate::ledger::work_gate`]) applied to `L_i`.
    pub fn scores(&self, params: &MechanismParams) -> BTreeMap<u16, (f64, f64)> {
        let mut scores = self
            .iter()
            .map(|(u, m)| (u, (m.orchestration_score(params), m.ledger_score(params))))
            .collect();
        crate::ledger::work_gate(&mut scores, params.ledger_work_exponent);
        scores
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(x: f64) -> OrchestrationTerms {
        OrchestrationTerms::from_array([x; 6])
    }

    #[test]
    fn a_proposal_strike_scales_orchestration_only() {
        let mut b = EmaBook::new();
        b.observe_orchestration(3, &terms(1.0), 0.5);
        let params = MechanismParams::default();
        b.proposal_strike(3, &params);
        let m = b.get(3).unwrap();
        assert!((m.orchestration.routing - 0.45).abs() < 1e-12);
        assert_eq!(m.strikes, 0);
    }

    #[test]
    fn ema_starts_at_zero_and_moves_by_alpha() {
        let mut b = EmaBook::new();
        b.observe_orchestration(3, &terms(1.0), 0.1);
        assert!((b.get(3).unwrap().orchestration.routing - 0.1).abs() < 1e-12);
        b.observe_orchestration(3, &terms(1.0), 0.1);
        // 0.9·0.1 + 0.1 = 0.19
        assert!((b.get(3).unwrap().orchestration.routing - 0.19).abs() < 1e-12);
        b.observe_orchestration(3, &terms(0.0), 0.1);
        assert!((b.get(3).unwrap().orchestration.routing - 0.171).abs() < 1e-12);
        assert_eq!(b.get(3).unwrap().orchestration_observations, 3);
        assert_eq!(b.get(3).unwrap().ledger, LedgerTerms::default());
    }

    #[test]
    fn unobserved_miners_do_not_decay() {
        let mut b = EmaBook::new();
        b.observe_ledger(1, &LedgerTerms::from_array([1.0; 4]), 0.5);
        b.observe_ledger(2, &LedgerTerms::from_array([1.0; 4]), 0.5);
        let before = *b.get(1).unwrap();
        for _ in 0..10 {
            b.observe_ledger(2, &LedgerTerms::default(), 0.5);
        }
        assert_eq!(*b.get(1).unwrap(), before);
        assert!(b.get(2).unwrap().ledger.discovery < 0.001);
    }

    #[test]
    fn fabrication_strike_zeroes_the_challenge_and_halves_the_ema() {
        let p = MechanismParams::default();
        let mut b = EmaBook::new();
        b.observe_orchestration(5, &terms(1.0), 1.0); // α = 1: EMA = 1
        b.observe_ledger(5, &LedgerTerms::from_array([1.0; 4]), 1.0);
        b.fabrication_strike(5, &p);
        let m = b.get(5).unwrap();
        // zero observation: 0.9·1 = 0.9, then × 0.5 = 0.45
        assert!((m.orchestration.hash_verified - 0.45).abs() < 1e-12);
        assert!((m.orchestration_score(&p) - 0.45 * p.orchestration_share).abs() < 1e-12);
        assert_eq!(
            m.ledger,
            LedgerTerms::from_array([1.0; 4]),
            "Ledger EMA untouched"
        );
        assert_eq!(m.strikes, 1);
    }

    #[test]
    fn nan_observations_count_as_zero() {
        let mut b = EmaBook::new();
        b.observe_orchestration(1, &terms(f64::NAN), 0.5);
        assert_eq!(b.get(1).unwrap().orchestration, terms(0.0));
        b.observe_orchestration(1, &terms(1.0), f64::NAN);
        assert_eq!(b.get(1).unwrap().orchestration, terms(0.0));
        assert!(b.remove(1).is_some());
        assert!(b.get(1).is_none());
    }
}
