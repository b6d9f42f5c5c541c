//! btauth/1 for the nodes: the shared layer of `orchestra-http` (re-exported here), plus the
//! miner's validator-permit set, filled from the subnet's metagraph.
//!
//! Authentication, the refusal statuses and the JSON error shape are `orchestra-http`'s, so the
//! miner, the validator's Ledger API and the mock subnet answer a bad request alike; the table
//! is in [`orchestra_http`]'s docs and `docs/protocol.md`. This module adds [`PermitSet`]: the
//! hotkeys holding a validator permit in the subnet's metagraph (refreshed by
//! [`spawn_permit_refresh`]) plus any the operator allows; a miner passes it to
//! [`RequestAuth::with_permits`] so everyone else gets `403 not_a_validator`.

use orchestra_chain::Chain;
use orchestra_protocol::ss58;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

pub use orchestra_http::client::signed_headers;
pub use orchestra_http::clock::{now_ms, now_ns};
pub use orchestra_http::{
    ApiError, AuthConfig, Credential, Refusal, RequestAuth, json_error, require_auth,
};

/// Hotkeys (ss58) allowed to call: those holding a validator permit in the subnet's metagraph
/// (replaced on every refresh) plus a fixed list the operator allows regardless.
#[derive(Debug, Default)]
pub struct PermitSet {
    from_chain: RwLock<HashSet<String>>,
    fixed: HashSet<String>,
    refreshed_at_block: AtomicU64,
}

impl PermitSet {
    /// A set allowing `fixed` hotkeys until the chain adds its permit holders.
    pub fn new(fixed: impl IntoIterator<Item = String>) -> Self {
        PermitSet {
            from_chain: RwLock::new(HashSet::new()),
            fixed: fixed.into_iter().collect(),
            refreshed_at_block: AtomicU64::new(0),
        }
    }

    /// Whether `hotkey` may call.
    pub fn contains(&self, hotkey: &str) -> bool {
        self.fixed.contains(hotkey)
            || self
                .from_chain
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .contains(hotkey)
    }

    /// Replace the chain part with the permit holders seen at `block`.
    pub fn replace(&self, holders: HashSet<String>, block: u64) {
        *self.from_chain.write().unwrap_or_else(|e| e.into_inner()) = holders;
        self.refreshed_at_block.store(block, Ordering::Relaxed);
    }

    /// How many hotkeys the chain part holds.
    pub fn chain_len(&self) -> usize {
        self.from_chain
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Block of the last refresh from the chain (0 = never).
    pub fn refreshed_at_block(&self) -> u64 {
        self.refreshed_at_block.load(Ordering::Relaxed)
    }
}

impl orchestra_http::Permits for PermitSet {
    fn allows(&self, hotkey: &str) -> bool {
        self.contains(hotkey)
    }
}

/// Read the validator-permit holders of `netuid` (mechanism 0) into `set`; returns how many.
pub async fn refresh_permits<C: Chain>(
    chain: &C,
    netuid: u16,
    set: &PermitSet,
) -> orchestra_chain::ChainResult<usize> {
    let mg = chain.metagraph(netuid, 0).await?;
    let holders: HashSet<String> = mg
        .neurons
        .iter()
        .filter(|n| n.validator_permit)
        .map(|n| ss58::encode(&n.hotkey, ss58::BITTENSOR_PREFIX))
        .collect();
    let n = holders.len();
    set.replace(holders, mg.block);
    Ok(n)
}

/// Refresh `set` from the chain every `every` (first refresh at once); failures are logged and
/// retried at the next tick, keeping the last good set.
pub fn spawn_permit_refresh<C: Chain + Send + Sync + 'static>(
    chain: Arc<C>,
    netuid: u16,
    set: Arc<PermitSet>,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match refresh_permits(chain.as_ref(), netuid, &set).await {
                Ok(n) => tracing::debug!(netuid, holders = n, "validator permits refreshed"),
                Err(e) => tracing::warn!(netuid, error = %e, "refreshing validator permits failed"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use orchestra_protocol::Hotkey;
    use std::future::Future;

    /// A chain whose metagraph is fixed; every other call fails.
    struct FakeChain(Vec<(Hotkey, bool)>);

    fn unsupported<T>() -> std::future::Ready<orchestra_chain::ChainResult<T>> {
        std::future::ready(Err(orchestra_chain::ChainError::Rpc {
            what: "fake".into(),
            reason: "not supported".into(),
        }))
    }

    impl Chain for FakeChain {
        fn runtime_shape(&self) -> orchestra_chain::RuntimeShape {
            orchestra_chain::RuntimeShape {
                spec_name: "fake".into(),
                spec_version: 1,
                transaction_version: 1,
                subtensor_pallet_index: 7,
                stake_item: orchestra_chain::StakeItem::TotalHotkeyAlpha,
                has_mechanisms: false,
                indexed_by_netuid_index: false,
                has_commit_reveal: false,
                has_timelocked_commits: false,
                has_commitments: false,
                has_subnet_info_api: false,
                features: Default::default(),
            }
        }
        fn signer(&self) -> Option<orchestra_chain::AccountId> {
            None
        }
        fn current_block(&self) -> impl Future<Output = orchestra_chain::ChainResult<u64>> + Send {
            std::future::ready(Ok(42))
        }
        fn tempo_schedule(
            &self,
            _: u16,
        ) -> impl Future<Output = orchestra_chain::ChainResult<orchestra_chain::TempoSchedule>> + Send
        {
            unsupported()
        }
        fn metagraph(
            &self,
            netuid: u16,
            mecid: u8,
        ) -> impl Future<Output = orchestra_chain::ChainResult<orchestra_chain::Metagraph>> + Send
        {
            let neurons = self
                .0
                .iter()
                .enumerate()
                .map(|(uid, (key, permit))| orchestra_chain::Neuron {
                    uid: uid as u16,
                    hotkey: key.public_key(),
                    coldkey: None,
                    stake: 0,
                    validator_permit: *permit,
                    active: true,
                    axon: None,
                    last_update: 0,
                    registered_at: 0,
                    weights: vec![],
                    bonds: vec![],
                    incentive: 0,
                    dividends: 0,
                    consensus: 0,
                    emission: 0,
                })
                .collect();
            std::future::ready(Ok(orchestra_chain::Metagraph {
                netuid,
                mecid,
                block: 42,
                neurons,
            }))
        }
        fn hyperparams(
            &self,
            _: u16,
        ) -> impl Future<Output = orchestra_chain::ChainResult<orchestra_chain::Hyperparams>> + Send
        {
            unsupported()
        }
        fn set_weights(
            &self,
            _: &orchestra_chain::WeightsSubmission,
        ) -> impl Future<Output = orchestra_chain::ChainResult<orchestra_chain::TxOutcome>> + Send
        {
            unsupported()
        }
        fn commit_weights(
            &self,
            _: &orchestra_chain::WeightsCommit,
        ) -> impl Future<Output = orchestra_chain::ChainResult<orchestra_chain::TxOutcome>> + Send
        {
            unsupported()
        }
        fn reveal_weights(
            &self,
            _: &orchestra_chain::WeightsReveal,
        ) -> impl Future<Output = orchestra_chain::ChainResult<orchestra_chain::TxOutcome>> + Send
        {
            unsupported()
        }
        fn serve_axon(
            &self,
            _: &orchestra_chain::AxonServe,
        ) -> impl Future<Output = orchestra_chain::ChainResult<orchestra_chain::TxOutcome>> + Send
        {
            unsupported()
        }
        fn anchor_commitment(
            &self,
            _: u16,
            _: &[u8],
        ) -> impl Future<Output = orchestra_chain::ChainResult<orchestra_chain::TxOutcome>> + Send
        {
            unsupported()
        }
    }

    #[test]
    fn permits_come_from_the_metagraph() {
        let alice = Hotkey::from_uri("//Alice").unwrap();
        let dave = Hotkey::from_uri("//Dave").unwrap();
        let chain = FakeChain(vec![(alice.clone(), true), (dave.clone(), false)]);
        let set = PermitSet::new(["5Fixed".to_string()]);
        let n = orchestra_chain::resolve_ready(refresh_permits(&chain, 1, &set))
            .unwrap()
            .unwrap();
        assert_eq!(n, 1);
        assert!(set.contains(&alice.ss58()));
        assert!(!set.contains(&dave.ss58()));
        assert!(set.contains("5Fixed"));
        assert_eq!(set.refreshed_at_block(), 42);
        assert_eq!(set.chain_len(), 1);
    }
}
