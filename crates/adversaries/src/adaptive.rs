//! `adaptive`: runs one of several attacks at a time and moves to the next when its ROI falls.
//!
//! It wraps the strategies listed in `attacks` (each built by [`crate::build`] with its entry in
//! `params`, on the same group and seed, so each keeps its own RNG stream) and delegates every
//! hook to the current one — or, for a challenge's sub-calls and its `finalize`, to the one that
//! answered that challenge, so a switch never splits a challenge between two attacks. Peers'
//! responses and epoch rewards go to all of them, so an attack switched to later has its
//! material (a copycat's observations, a replayer's cache) ready.
//!
//! Its ROI is measured only from what a miner observes: per epoch, the value of the emission the
//! chain paid it ([`Strategy::on_epoch`]) minus what its sub-calls really cost (replies to calls
//! it let leave; substituted, invented or replayed ones cost nothing). The current attack's ROI
//! is averaged over the last `window` epochs it ran; the best such mean is its reference. When a
//! mean falls below the reference by more than `1 − threshold` of the reference's magnitude
//! (below `threshold × best` for a positive best), the group moves to the next attack in
//! `attacks`, cyclically, and starts measuring afresh. A rising or flat ROI never switches, and
//! neither does anything before `window` epochs of the current attack.
//!
//! Each identity measures and decides on its own: identities of a group meet the same
//! mechanism, so they switch at about the same time without talking to each other.
//!
//! Defence: whatever defeats each inner attack; the question it asks is whether the mechanism
//! still holds when an attacker keeps moving to whatever pays best at the moment.

use crate::params::{Knob, KnobKind, ParamError, Params, check_non_empty, check_range};
use crate::track::CallTracker;
use crate::{BuildError, GroupState, NAMES};
use orchestra_miner::{
    Answer, CallAction, CallRef, EpochReward, Strategy, StrategyCtx, SubCall, SubCallOutcome,
};
use orchestra_protocol::hash::Hash32;
use orchestra_protocol::messages::{Challenge, Response};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Ceiling of `window`, epochs.
pub const MAX_WINDOW: u32 = 100;

/// Calls remembered between leaving and their outcome, and challenges remembered between
/// answer and finalize: far more than a miner has in flight.
const IN_FLIGHT: usize = 1_024;

/// `adaptive` parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdaptiveParams {
    /// The attacks, in the order they are tried (strategy names other than `adaptive`, each at
    /// most once); default `["invented_step", "shell_responder", "replayer"]`. Not a tuner knob:
    /// the set is scenario data.
    pub attacks: Vec<String>,
    /// Each attack's own `params`, by name (default: every attack at its defaults).
    pub params: BTreeMap<String, toml::Table>,
    /// Epochs the current attack's ROI is averaged over, `[1, 100]`, default 3.
    pub window: u32,
    /// Switch when the window's mean ROI falls below this share of the best mean, `[0, 1]`,
    /// default 0.8: 1 switches at any fall, 0 only once a positive ROI is gone entirely (see
    /// [`fall_line`] for a negative best).
    pub threshold: f64,
}

impl Default for AdaptiveParams {
    fn default() -> Self {
        AdaptiveParams {
            attacks: ["invented_step", "shell_responder", "replayer"]
                .map(String::from)
                .to_vec(),
            params: BTreeMap::new(),
            window: 3,
            threshold: 0.8,
        }
    }
}

impl Params for AdaptiveParams {
    const KNOBS: &'static [Knob] = &[
        Knob {
            name: "window",
            min: 1.0,
            max: MAX_WINDOW as f64,
            default: 3.0,
            kind: KnobKind::Int,
            doc: "epochs the current attack's ROI is averaged over",
        },
        Knob {
            name: "threshold",
            min: 0.0,
            max: 1.0,
            default: 0.8,
            kind: KnobKind::Float,
            doc: "switch when mean ROI falls below this share of the best",
        },
    ];

    const EXTRA_KEYS: &'static [(&'static str, &'static str)] = &[
        (
            "attacks",
            "a non-empty list of distinct strategy names other than \"adaptive\"",
        ),
        ("params", "a table of attack name → that attack's params"),
    ];

    fn validate(&self) -> Result<(), ParamError> {
        check_range("window", f64::from(self.window), 1.0, f64::from(MAX_WINDOW))?;
        check_range("threshold", self.threshold, 0.0, 1.0)?;
        check_non_empty("attacks", &self.attacks)?;
        let mut seen = BTreeSet::new();
        for a in &self.attacks {
            if a == "adaptive" || !NAMES.contains(&a.as_str()) || !seen.insert(a.as_str()) {
                let names: Vec<&str> = NAMES.iter().copied().filter(|n| *n != "adaptive").collect();
                return Err(ParamError::new(
                    "attacks",
                    format!("distinct names among {}", names.join(", ")),
                    format!("{a:?}"),
                ));
            }
        }
        // Whether `params` names only listed attacks is checked by `Adaptive::build`: this
        // method also sees each key alone over the defaults.
        Ok(())
    }
}

/// Where the current attack's ROI stands.
#[derive(Debug, Clone, Default)]
struct Measure {
    /// ROI of the current attack's epochs, newest last (at most `window`).
    recent: VecDeque<f64>,
    /// The best window mean the current attack reached.
    best: Option<f64>,
}

/// The adaptive strategy (see the module docs).
pub struct Adaptive {
    params: AdaptiveParams,
    attacks: Vec<Box<dyn Strategy>>,
    current: usize,
    /// Which attack answered each recent challenge, for its sub-calls.
    calls: CallTracker<usize>,
    /// Which attack answered each recent challenge, for `finalize`.
    answered: VecDeque<(Hash32, usize)>,
    /// `request_id`s of calls that left for a subnet (not substituted), awaiting their outcome.
    sent: BTreeSet<String>,
    sent_order: VecDeque<String>,
    /// Sub-call spend since the last epoch, rao.
    spend: u64,
    measure: Measure,
    switches: u64,
}

impl std::fmt::Debug for Adaptive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Adaptive")
            .field("attacks", &self.params.attacks)
            .field("current", &self.current_attack())
            .field("switches", &self.switches)
            .finish_non_exhaustive()
    }
}

impl Adaptive {
    /// Build the inner attacks of `params` as members of `group`, with RNG streams keyed by
    /// `seed`. An error names its key inside `params` (`params.<attack>.<key>` for an attack's
    /// own parameter).
    pub fn build(
        params: AdaptiveParams,
        group: &mut GroupState,
        seed: u64,
    ) -> Result<Self, ParamError> {
        if let Some(stray) = params.params.keys().find(|k| !params.attacks.contains(k)) {
            return Err(ParamError::new(
                &format!("params.{stray}"),
                "parameters of an attack listed in `attacks`",
                "an attack not listed",
            ));
        }
        let empty = toml::Table::new();
        let mut attacks = Vec::with_capacity(params.attacks.len());
        for name in &params.attacks {
            let p = params.params.get(name).unwrap_or(&empty);
            let s = crate::build(name, p, group, seed).map_err(|e| match e {
                BuildError::Param(e) => {
                    let key = if e.key.is_empty() {
                        format!("params.{name}")
                    } else {
                        format!("params.{name}.{}", e.key)
                    };
                    ParamError::new(&key, e.expected, e.found)
                }
                BuildError::UnknownStrategy { name } => {
                    ParamError::new("attacks", "known strategy names", name)
                }
            })?;
            attacks.push(s);
        }
        Ok(Adaptive {
            params,
            attacks,
            current: 0,
            calls: CallTracker::default(),
            answered: VecDeque::new(),
            sent: BTreeSet::new(),
            sent_order: VecDeque::new(),
            spend: 0,
            measure: Measure::default(),
            switches: 0,
        })
    }

    /// The name of the attack now running.
    pub fn current_attack(&self) -> &str {
        self.params
            .attacks
            .get(self.current)
            .map_or("", String::as_str)
    }

    /// Switches so far.
    pub fn switches(&self) -> u64 {
        self.switches
    }

    /// Sub-call spend since the last epoch, rao.
    pub fn spend_this_epoch(&self) -> u64 {
        self.spend
    }

    /// The attack that answered the challenge `call` serves (the current one if unknown).
    fn owner_of_call(&mut self, call: &SubCall) -> usize {
        self.calls.find(call).copied().unwrap_or(self.current)
    }

    /// Record one epoch's ROI and switch if it fell (see the module docs).
    fn observe_roi(&mut self, roi: f64) {
        let window = self.params.window.max(1) as usize;
        let m = &mut self.measure;
        m.recent.push_back(roi);
        while m.recent.len() > window {
            m.recent.pop_front();
        }
        if m.recent.len() < window {
            return;
        }
        let mean = m.recent.iter().sum::<f64>() / window as f64;
        match m.best {
            Some(best) if mean < fall_line(best, self.params.threshold) => {
                self.current = (self.current + 1) % self.attacks.len().max(1);
                self.measure = Measure::default();
                self.switches += 1;
            }
            Some(best) if mean <= best => {}
            _ => m.best = Some(mean),
        }
    }
}

/// The mean ROI below which an attack whose best window mean was `best` has fallen:
/// `best − (1 − threshold)·|best|`, which is `threshold × best` for a positive best and still
/// below `best` for a negative one.
pub fn fall_line(best: f64, threshold: f64) -> f64 {
    best - (1.0 - threshold) * best.abs()
}

fn request_id(request: &serde_json::Value) -> Option<&str> {
    request
        .get("request_id")
        .and_then(serde_json::Value::as_str)
}

impl Strategy for Adaptive {
    fn name(&self) -> &str {
        "adaptive"
    }

    fn answer(
        &mut self,
        ctx: &StrategyCtx<'_>,
        challenge: &Challenge,
        rng: &mut dyn rand::Rng,
    ) -> Answer {
        let i = self.current;
        let Some(attack) = self.attacks.get_mut(i) else {
            return Answer::Decline;
        };
        let answer = attack.answer(ctx, challenge, rng);
        self.calls.register(challenge, ctx.miner, i);
        self.answered.push_back((challenge.challenge_id, i));
        while self.answered.len() > IN_FLIGHT {
            self.answered.pop_front();
        }
        answer
    }

    fn on_subcall(&mut self, call: &SubCall) -> CallAction {
        let i = self.owner_of_call(call);
        let Some(attack) = self.attacks.get_mut(i) else {
            return CallAction::Send;
        };
        let action = attack.on_subcall(call);
        if action == CallAction::Send
            && let Some(rid) = request_id(&call.request)
            && self.sent.insert(rid.to_string())
        {
            self.sent_order.push_back(rid.to_string());
            // Calls a driver never reports back must not pile up.
            while self.sent_order.len() > IN_FLIGHT {
                if let Some(old) = self.sent_order.pop_front() {
                    self.sent.remove(&old);
                }
            }
        }
        action
    }

    fn on_subcall_outcome(&mut self, call: CallRef<'_>, outcome: &SubCallOutcome) {
        // Only a reply to a call that really left costs anything (the simulator and subnets
        // charge successful calls only).
        if let Some(rid) = request_id(call.request)
            && self.sent.remove(rid)
            && let Ok(reply) = outcome
        {
            self.spend = self.spend.saturating_add(reply.cost_rao);
        }
        let i = self.calls.find_ref(&call).copied().unwrap_or(self.current);
        if let Some(attack) = self.attacks.get_mut(i) {
            attack.on_subcall_outcome(call, outcome);
        }
    }

    fn finalize(
        &mut self,
        ctx: &StrategyCtx<'_>,
        challenge: &Challenge,
        response: Response,
    ) -> Option<Response> {
        let i = match self
            .answered
            .iter()
            .position(|(id, _)| *id == challenge.challenge_id)
        {
            Some(p) => self.answered.remove(p).map_or(self.current, |(_, i)| i),
            None => self.current,
        };
        match self.attacks.get_mut(i) {
            Some(attack) => attack.finalize(ctx, challenge, response),
            None => Some(response),
        }
    }

    fn observe_peer(&mut self, challenge: &Challenge, response: &Response) {
        for a in &mut self.attacks {
            a.observe_peer(challenge, response);
        }
    }

    fn on_epoch(&mut self, reward: &EpochReward) {
        let roi = reward.value_rao as f64 - self.spend as f64;
        self.spend = 0;
        for a in &mut self.attacks {
            a.on_epoch(reward);
        }
        self.observe_roi(roi);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::{prop_assert, prop_assert_eq, proptest};

    fn adaptive(window: u32, threshold: f64) -> Adaptive {
        let params = AdaptiveParams {
            attacks: vec!["honest".into(), "shell_responder".into(), "replayer".into()],
            window,
            threshold,
            ..AdaptiveParams::default()
        };
        Adaptive::build(params, &mut GroupState::default(), 1).unwrap()
    }

    fn epoch(a: &mut Adaptive, value: u64) {
        a.on_epoch(&EpochReward {
            block: 0,
            emission_rao: value,
            value_rao: value,
        });
    }

    #[test]
    fn switches_once_the_window_mean_falls_and_not_before() {
        let mut a = adaptive(2, 0.8);
        for _ in 0..6 {
            epoch(&mut a, 100);
        }
        assert_eq!((a.current_attack(), a.switches()), ("honest", 0));
        // Mean (100 + 70) / 2 = 85: above 0.8 × 100, no switch yet.
        epoch(&mut a, 70);
        assert_eq!(a.current_attack(), "honest");
        // Mean (70 + 70) / 2 = 70 < 80: the fall.
        epoch(&mut a, 70);
        assert_eq!((a.current_attack(), a.switches()), ("shell_responder", 1));
        // A fresh attack needs a full window before it can switch again, however bad.
        epoch(&mut a, 0);
        assert_eq!(a.current_attack(), "shell_responder");
        // Its first window sets its reference: (0 + 10) / 2 = 5, kept.
        epoch(&mut a, 10);
        assert_eq!(a.current_attack(), "shell_responder");
        // Cyclic: replayer, then back to honest.
        for _ in 0..2 {
            epoch(&mut a, 0);
        }
        assert_eq!(a.current_attack(), "replayer");
    }

    #[test]
    fn spend_lowers_the_measured_roi() {
        use orchestra_miner::SubCallReply;
        use serde_json::json;
        let mut a = adaptive(1, 0.5);
        epoch(&mut a, 1_000);
        let request = json!({"request_id": "r1"});
        let call = SubCall {
            call_id: 0,
            step_id: "search".into(),
            capability: "web_search".into(),
            netuid: 22,
            endpoint: "web_search".into(),
            request: request.clone().into(),
            request_hash: Hash32::default(),
            attempt: 1,
            started_at_ms: 0,
            timeout_at_ms: 1,
            deterministic: false,
        };
        assert_eq!(a.on_subcall(&call), CallAction::Send);
        let reply = SubCallReply {
            response: json!({}).into(),
            subnet_hotkey: "h".into(),
            cost_rao: 700,
            receipt: None,
        };
        let call_ref = CallRef {
            step_id: "search",
            netuid: 22,
            endpoint: "web_search",
            request: &request,
        };
        a.on_subcall_outcome(call_ref, &Ok(reply.clone()));
        // Reported twice: paid once.
        a.on_subcall_outcome(call_ref, &Ok(reply));
        assert_eq!(a.spend_this_epoch(), 700);
        // Same emission, 700 spent: ROI 300 < 0.5 × 1000.
        epoch(&mut a, 1_000);
        assert_eq!(a.current_attack(), "shell_responder");
        assert_eq!(a.spend_this_epoch(), 0);
    }

    #[test]
    fn params_must_name_listed_attacks() {
        let params = AdaptiveParams {
            attacks: vec!["replayer".into()],
            params: [("fabricator".to_string(), toml::Table::new())].into(),
            ..AdaptiveParams::default()
        };
        let e = Adaptive::build(params, &mut GroupState::default(), 0).unwrap_err();
        assert_eq!(e.key, "params.fabricator");
    }

    #[test]
    fn fall_line_is_below_best_whatever_its_sign() {
        assert_eq!(fall_line(100.0, 0.8), 80.0);
        assert_eq!(fall_line(-100.0, 0.8), -120.0);
        assert_eq!(fall_line(0.0, 0.8), 0.0);
    }

    proptest! {
        /// ROI that never decreases never switches attacks.
        #[test]
        fn a_rising_roi_never_switches(
            start in 0u64..1_000_000,
            steps in proptest::collection::vec(0u64..10_000, 1..40),
            window in 1u32..6,
            threshold in 0.0f64..=1.0,
        ) {
            let mut a = adaptive(window, threshold);
            let mut v = start;
            for s in steps {
                v += s;
                epoch(&mut a, v);
            }
            prop_assert_eq!(a.switches(), 0);
        }

        /// However ROI moves, an attack runs at least `window` epochs before the next switch.
        #[test]
        fn every_attack_runs_a_full_window(
            values in proptest::collection::vec(0u64..1_000, 1..60),
            window in 1u32..6,
            threshold in 0.0f64..=1.0,
        ) {
            let mut a = adaptive(window, threshold);
            let mut since = 0u32;
            for v in values {
                let before = a.switches();
                epoch(&mut a, v);
                since += 1;
                if a.switches() > before {
                    prop_assert!(since > window, "switched after {} epochs", since);
                    since = 0;
                }
            }
        }
    }
}
