//! The world around the cores: mock subnets, their changing state, their load, and the ground
//! truth the Ledger is measured against.

use orchestra_miner::{SubCallFailure, SubCallOutcome, SubCallReply};
use orchestra_mocks::{CallContext, CallOutcome, ErrorKind, MockSet, SubnetEvent, SubnetState};
use orchestra_protocol::Body;
use orchestra_protocol::ledger::Entry;
use rand::Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The subnets of one run.
pub struct World {
    mocks: Arc<MockSet>,
    states: BTreeMap<u16, SubnetState>,
    /// Subnets serving now (unlisted ones join when launched).
    live: BTreeSet<u16>,
    seed: u64,
    hotkeys: BTreeMap<u16, String>,
    calls_this_block: BTreeMap<u16, u64>,
    load: BTreeMap<u16, f64>,
    block_secs: f64,
}

impl World {
    /// A world of `mocks`, with the subnets in `live` serving, deterministic content keyed by
    /// `seed`.
    pub fn new(mocks: Arc<MockSet>, live: BTreeSet<u16>, seed: u64, block_ms: u64) -> Self {
        let states = mocks.initial_states();
        let hotkeys = mocks
            .iter()
            .map(|m| {
                let key = m.receipt_key().map_or_else(
                    || orchestra_mocks::receipt_dev_key(m.netuid()).ss58(),
                    |k| k.ss58(),
                );
                (m.netuid(), key)
            })
            .collect();
        World {
            mocks,
            states,
            live,
            seed,
            hotkeys,
            calls_this_block: BTreeMap::new(),
            load: BTreeMap::new(),
            block_secs: block_ms as f64 / 1000.0,
        }
    }

    /// The static models.
    pub fn mocks(&self) -> &MockSet {
        &self.mocks
    }

    /// Subnets serving now.
    pub fn live(&self) -> &BTreeSet<u16> {
        &self.live
    }

    /// The hotkey a subnet signs receipts with.
    pub fn hotkey(&self, netuid: u16) -> &str {
        self.hotkeys.get(&netuid).map_or("", String::as_str)
    }

    /// Every subnet's receipt hotkey (what a validator reads from the subnets' metagraphs).
    pub fn hotkeys(&self) -> &BTreeMap<u16, String> {
        &self.hotkeys
    }

    /// A new block began: last block's calls become the offered load.
    pub fn next_block(&mut self) {
        self.load.clear();
        for (&netuid, &calls) in &self.calls_this_block {
            self.load.insert(netuid, calls as f64 / self.block_secs);
        }
        self.calls_this_block.clear();
    }

    /// Serve one call to `netuid`/`endpoint` starting at `now_ms`.
    pub fn call(
        &mut self,
        netuid: u16,
        endpoint: &str,
        request: &Body,
        now_ms: u64,
        rng: &mut impl Rng,
    ) -> CallOutcome {
        let (Some(mock), Some(state)) = (self.mocks.get(netuid), self.states.get(&netuid)) else {
            return CallOutcome::Err {
                kind: ErrorKind::Unavailable,
                latency_ms: 50,
            };
        };
        if !self.live.contains(&netuid) {
            return CallOutcome::Err {
                kind: ErrorKind::Unavailable,
                latency_ms: 50,
            };
        }
        *self.calls_this_block.entry(netuid).or_default() += 1;
        let load = self.load.get(&netuid).copied().unwrap_or(0.0);
        mock.call(
            state,
            endpoint,
            request,
            CallContext {
                seed: self.seed,
                now_ms,
                load,
            },
            rng,
        )
    }

    /// A call as the miner core sees it: outcome and latency.
    pub fn subcall(
        &mut self,
        netuid: u16,
        endpoint: &str,
        request: &Body,
        now_ms: u64,
        rng: &mut impl Rng,
    ) -> (SubCallOutcome, u64, u64) {
        let outcome = self.call(netuid, endpoint, request, now_ms, rng);
        let latency = outcome.latency_ms();
        match outcome {
            CallOutcome::Ok {
                response,
                cost_rao,
                receipt,
                ..
            } => {
                let reply = SubCallReply {
                    response,
                    subnet_hotkey: self.hotkey(netuid).to_string(),
                    cost_rao,
                    receipt,
                };
                (Ok(reply), latency, cost_rao)
            }
            CallOutcome::Err { kind, .. } => (Err(failure(kind)), latency, 0),
        }
    }

    /// Apply a scenario event to one subnet.
    pub fn apply(&mut self, netuid: u16, event: &SubnetEvent) -> Result<(), String> {
        let mock = self
            .mocks
            .get(netuid)
            .ok_or_else(|| format!("no mock subnet {netuid}"))?;
        let state = self
            .states
            .get_mut(&netuid)
            .ok_or_else(|| format!("no mock subnet {netuid}"))?;
        mock.apply(state, event).map_err(|e| e.to_string())
    }

    /// Start serving an unlisted subnet.
    pub fn launch(&mut self, netuid: u16) -> bool {
        self.mocks.get(netuid).is_some() && self.live.insert(netuid)
    }

    /// The true entry of a live subnet now (current schemas, true metrics and status).
    pub fn truth(&self, netuid: u16) -> Option<Entry> {
        let mock = self.mocks.get(netuid)?;
        let state = self.states.get(&netuid)?;
        self.live.contains(&netuid).then(|| mock.true_entry(state))
    }
}

/// How the miner core names a mock failure.
pub fn failure(kind: ErrorKind) -> SubCallFailure {
    match kind {
        ErrorKind::Timeout => SubCallFailure::Timeout,
        ErrorKind::Unavailable => SubCallFailure::Unavailable("503".into()),
        ErrorKind::UnknownEndpoint => SubCallFailure::Unavailable("404".into()),
        ErrorKind::ServerError => SubCallFailure::Rejected("500".into()),
        ErrorKind::BadRequest => SubCallFailure::Rejected("400".into()),
    }
}
