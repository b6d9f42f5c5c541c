//! [`SubtensorChain`]: the live [`Chain`] over subxt's dynamic API.
//!
//! Everything is looked up by name in the metadata the node serves at connect time, so one
//! binary works across runtime upgrades; the differences between runtime generations are
//! captured once in a [`RuntimeShape`] and every read or call that the runtime lacks fails with
//! [`ChainError::MissingStorage`] / [`ChainError::MissingCall`] naming it.

pub mod calls;
pub mod shape;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use orchestra_protocol::keys::Hotkey;
use subxt::backend::{BlockRef, LegacyBackend};
use subxt::client::{ClientAtBlock, OnlineClientAtBlockImpl};
use subxt::config::substrate::H256;
use subxt::config::{Header as _, RpcConfigFor};
use subxt::dynamic::Value;
use subxt::error::DispatchError;
use subxt::events::Phase;
use subxt::ext::codec::Encode as _;
use subxt::ext::futures::future::try_join_all;
use subxt::ext::scale_decode::DecodeAsType;
use subxt::rpcs::LegacyRpcMethods;
use subxt::rpcs::client::{RpcClient, RpcParams};
use subxt::transactions::TransactionStatus;
use subxt::{OnlineClient, SubstrateConfig};
use subxt_signer::sr25519::Keypair;

use crate::chain::{Chain, ChainResult};
use crate::error::{ChainError, ModuleError};
use crate::hash::{blake2_256, netuid_index};
use crate::precheck::{WeightsContext, check_weights};
use crate::types::{
    AccountId, AxonInfo, AxonServe, ChainEvent, Hyperparams, MechId, Metagraph, NetUid, Neuron,
    RuntimeShape, StakeItem, TempoSchedule, TimelockedCommit, Transfer, TransferLookup,
    TransferReceipt, TxOutcome, WaitFor, WeightsCommit, WeightsReveal, WeightsSubmission,
};
use shape::{COMMITMENTS, SUBTENSOR};

type Api = OnlineClient<SubstrateConfig>;
type AtBlock = ClientAtBlock<SubstrateConfig, OnlineClientAtBlockImpl<SubstrateConfig>>;
type Legacy = LegacyRpcMethods<RpcConfigFor<SubstrateConfig>>;

/// The pallet TAO transfers go through.
const BALANCES: &str = "Balances";

/// Well-known endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Network {
    /// Bittensor mainnet.
    Finney,
    /// Bittensor testnet.
    Test,
    /// A local node on `ws://127.0.0.1:9944`.
    Local,
    /// Any `ws://` or `wss://` URL.
    Url(String),
}

impl Network {
    /// Parses `finney`, `test`, `local` or a URL.
    pub fn parse(s: &str) -> Network {
        match s {
            "finney" | "main" | "mainnet" => Network::Finney,
            "test" | "testnet" => Network::Test,
            "local" => Network::Local,
            url => Network::Url(url.to_owned()),
        }
    }

    /// The WebSocket URL.
    pub fn url(&self) -> &str {
        match self {
            Network::Finney => "wss://entrypoint-finney.opentensor.ai:443",
            Network::Test => "wss://test.finney.opentensor.ai:443",
            Network::Local => "ws://127.0.0.1:9944",
            Network::Url(u) => u,
        }
    }
}

/// Connection and submission settings.
#[derive(Debug, Clone)]
pub struct SubtensorConfig {
    /// Node URL.
    pub url: String,
    /// Connection attempts before giving up (≥ 1).
    pub connect_attempts: u32,
    /// First backoff delay; doubles per attempt up to `max_backoff`.
    pub initial_backoff: Duration,
    /// Backoff ceiling.
    pub max_backoff: Duration,
    /// How long to wait for a submitted extrinsic.
    pub wait_for: WaitFor,
    /// Give up waiting for an extrinsic's inclusion after this long.
    pub tx_timeout: Duration,
}

impl SubtensorConfig {
    /// Defaults for `url`: 5 attempts from 500 ms backoff, wait for finality, 2 min timeout.
    pub fn new(url: impl Into<String>) -> SubtensorConfig {
        SubtensorConfig {
            url: url.into(),
            connect_attempts: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            wait_for: WaitFor::Finalized,
            tx_timeout: Duration::from_secs(120),
        }
    }
}

/// One live connection and what we learned about the runtime behind it.
#[derive(Clone)]
struct Conn {
    api: Api,
    rpc: RpcClient,
    shape: RuntimeShape,
}

/// The subtensor client.
pub struct SubtensorChain {
    cfg: SubtensorConfig,
    conn: Mutex<Conn>,
    signer: Option<Keypair>,
}

impl std::fmt::Debug for SubtensorChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubtensorChain")
            .field("url", &self.cfg.url)
            .field("shape", &self.shape())
            .field("signer", &self.signer().map(hex::encode))
            .finish()
    }
}

fn display_err<E: std::fmt::Display>(what: impl Into<String>) -> impl FnOnce(E) -> ChainError {
    let what = what.into();
    move |e| ChainError::Rpc {
        what,
        reason: e.to_string(),
    }
}

/// Whether plain `ws://` to this URL is acceptable (loopback only, as subxt's `from_url`).
fn is_loopback_ws(url: &str) -> bool {
    let rest = url.strip_prefix("ws://").unwrap_or("");
    rest.starts_with("127.") || rest.starts_with("localhost") || rest.starts_with("[::1]")
}

async fn connect_once(url: &str) -> Result<Conn, String> {
    let rpc = if url.starts_with("wss://") || is_loopback_ws(url) {
        RpcClient::from_insecure_url(url).await
    } else {
        // A remote ws:// node was asked for explicitly; subxt refuses it through `from_url`.
        tracing::warn!(url, "connecting without TLS to a non-loopback node");
        RpcClient::from_insecure_url(url).await
    }
    .map_err(|e| e.to_string())?;
    // The legacy JSON-RPC backend is what every subtensor node and Chopsticks serve in full;
    // the chainHead backend is newer and less uniformly supported.
    let backend = LegacyBackend::<SubstrateConfig>::builder().build(rpc.clone());
    let api = Api::from_backend(Arc::new(backend))
        .await
        .map_err(|e| e.to_string())?;
    let at = api.at_current_block().await.map_err(|e| e.to_string())?;
    let version: serde_json::Value = rpc
        .request("state_getRuntimeVersion", RpcParams::new())
        .await
        .map_err(|e| e.to_string())?;
    let spec_name = version
        .get("specName")
        .and_then(|v| v.as_str())
        .unwrap_or("unknown")
        .to_owned();
    let shape = shape::detect(
        at.metadata_ref(),
        spec_name,
        at.spec_version(),
        at.transaction_version(),
    )
    .ok_or_else(|| {
        format!(
            "runtime spec {} has no {SUBTENSOR} pallet with TotalHotkeyAlpha or TotalHotkeyStake: not a subtensor chain",
            at.spec_version()
        )
    })?;
    Ok(Conn { api, rpc, shape })
}

async fn connect_with_backoff(cfg: &SubtensorConfig) -> ChainResult<Conn> {
    let attempts = cfg.connect_attempts.max(1);
    let mut delay = cfg.initial_backoff;
    let mut last = String::new();
    for attempt in 1..=attempts {
        match connect_once(&cfg.url).await {
            Ok(conn) => return Ok(conn),
            Err(e) => {
                tracing::warn!(url = %cfg.url, attempt, error = %e, "connect failed");
                last = e;
                if attempt < attempts {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(cfg.max_backoff);
                }
            }
        }
    }
    Err(ChainError::Connect {
        url: cfg.url.clone(),
        attempts,
        reason: last,
    })
}

/// `AxonInfo` as stored; field names are matched, extra fields ignored.
#[derive(DecodeAsType)]
#[decode_as_type(crate_path = "subxt::ext::scale_decode")]
struct RawAxon {
    block: u64,
    version: u32,
    ip: u128,
    port: u16,
    ip_type: u8,
    protocol: u8,
}

/// `Balances.Transfer` fields, matched by name (`from`, `to`, `amount`), or by position on a
/// runtime whose event fields are unnamed.
#[derive(DecodeAsType)]
#[decode_as_type(crate_path = "subxt::ext::scale_decode")]
struct RawTransfer {
    from: AccountId,
    to: AccountId,
    amount: u64,
}

fn v_u(x: impl Into<u128>) -> Value {
    Value::u128(x.into())
}

fn v_account(a: &AccountId) -> Value {
    Value::from_bytes(a)
}

fn h256(bytes: impl AsRef<[u8]>) -> [u8; 32] {
    let mut out = [0u8; 32];
    let b = bytes.as_ref();
    if b.len() == 32 {
        out.copy_from_slice(b);
    }
    out
}

/// Storage reads at one block, with errors naming the item.
struct Reader<'a> {
    at: &'a AtBlock,
    spec_version: u32,
}

impl Reader<'_> {
    fn require(&self, item: &'static str) -> ChainResult<()> {
        if shape::has_storage(self.at.metadata_ref(), SUBTENSOR, item) {
            Ok(())
        } else {
            Err(ChainError::MissingStorage {
                pallet: SUBTENSOR,
                item,
                spec_version: self.spec_version,
            })
        }
    }

    fn has(&self, item: &str) -> bool {
        shape::has_storage(self.at.metadata_ref(), SUBTENSOR, item)
    }

    /// The value at `keys`, or the item's default; `None` only when there is neither.
    async fn get_in<V: DecodeAsType>(
        &self,
        pallet: &'static str,
        item: &'static str,
        keys: Vec<Value>,
    ) -> ChainResult<Option<V>> {
        if !shape::has_storage(self.at.metadata_ref(), pallet, item) {
            return Err(ChainError::MissingStorage {
                pallet,
                item,
                spec_version: self.spec_version,
            });
        }
        let addr = subxt::dynamic::storage::<Vec<Value>, V>(pallet, item);
        let value = self
            .at
            .storage()
            .try_fetch(addr, keys)
            .await
            .map_err(display_err(format!("{pallet}.{item}")))?;
        value
            .map(|v| v.decode())
            .transpose()
            .map_err(|e| ChainError::Decode {
                what: format!("{pallet}.{item}"),
                reason: e.to_string(),
            })
    }

    async fn get<V: DecodeAsType>(
        &self,
        item: &'static str,
        keys: Vec<Value>,
    ) -> ChainResult<Option<V>> {
        self.get_in(SUBTENSOR, item, keys).await
    }

    /// A value-query item (one with a default), as the chain would return it.
    async fn value<V: DecodeAsType>(&self, item: &'static str, keys: Vec<Value>) -> ChainResult<V> {
        self.get(item, keys)
            .await?
            .ok_or_else(|| ChainError::Decode {
                what: format!("{SUBTENSOR}.{item}"),
                reason: "no value and no default".into(),
            })
    }

    /// Like [`Reader::value`] but `None` when the runtime lacks the item.
    async fn optional<V: DecodeAsType>(
        &self,
        item: &'static str,
        keys: Vec<Value>,
    ) -> ChainResult<Option<V>> {
        if self.has(item) {
            self.get(item, keys).await
        } else {
            Ok(None)
        }
    }

    /// Every `(last key, value)` under `prefix` of a map whose last key is readable (Identity
    /// or `*Concat` hasher).
    async fn iter_last_key<K: DecodeAsType, V: DecodeAsType>(
        &self,
        item: &'static str,
        prefix: Vec<Value>,
    ) -> ChainResult<Vec<(K, V)>> {
        self.require(item)?;
        let what = format!("{SUBTENSOR}.{item}");
        let addr = subxt::dynamic::storage::<Vec<Value>, V>(SUBTENSOR, item);
        let depth = prefix.len();
        let mut entries = self
            .at
            .storage()
            .iter(addr, prefix)
            .await
            .map_err(display_err(what.clone()))?;
        let mut out = Vec::new();
        while let Some(kv) = entries.next().await {
            let kv = kv.map_err(display_err(what.clone()))?;
            let decode = |e: String| ChainError::Decode {
                what: what.clone(),
                reason: e,
            };
            let key = kv.key().map_err(|e| decode(e.to_string()))?;
            let part = key
                .part(depth)
                .ok_or_else(|| decode(format!("key has no part {depth}")))?;
            let k = part
                .decode_as::<K>()
                .map_err(|e| decode(e.to_string()))?
                .ok_or_else(|| decode("key part is hashed, not readable".into()))?;
            let v = kv.value().decode().map_err(|e| decode(e.to_string()))?;
            out.push((k, v));
        }
        Ok(out)
    }
}

impl SubtensorChain {
    /// Connects (with backoff), detects the runtime shape, and signs with `hotkey` if given
    /// (subtensor accounts are sr25519; an ed25519 hotkey is refused).
    pub async fn connect(cfg: SubtensorConfig, hotkey: Option<&Hotkey>) -> ChainResult<Self> {
        let signer = match hotkey {
            None => None,
            Some(Hotkey::Sr25519(kp)) => Some(kp.clone()),
            Some(other) => {
                return Err(ChainError::Signer(format!(
                    "{other:?}: subtensor extrinsics need an sr25519 hotkey"
                )));
            }
        };
        let conn = connect_with_backoff(&cfg).await?;
        tracing::info!(url = %cfg.url, shape = ?conn.shape, "connected to subtensor");
        Ok(SubtensorChain {
            cfg,
            conn: Mutex::new(conn),
            signer,
        })
    }

    /// The runtime shape detected at (re)connect time.
    pub fn shape(&self) -> RuntimeShape {
        self.conn().shape
    }

    /// The raw JSON-RPC client (diagnostics and tests use it for node-specific methods).
    pub fn rpc(&self) -> RpcClient {
        self.conn().rpc
    }

    /// The genesis hash of the connected chain (what [`caip2_network`](crate::caip2_network)
    /// names it by).
    pub fn genesis_hash(&self) -> [u8; 32] {
        h256(self.conn().api.genesis_hash())
    }

    fn conn(&self) -> Conn {
        self.conn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Drops the current connection and connects again with backoff, re-detecting the shape
    /// (a runtime upgrade may have changed it).
    pub async fn reconnect(&self) -> ChainResult<()> {
        let conn = connect_with_backoff(&self.cfg).await?;
        *self.conn.lock().unwrap_or_else(PoisonError::into_inner) = conn;
        Ok(())
    }

    /// The latest finalized block, reconnecting once if the connection is gone.
    async fn at_latest(&self) -> ChainResult<(AtBlock, RuntimeShape)> {
        let conn = self.conn();
        match conn.api.at_current_block().await {
            Ok(at) => Ok((at, conn.shape)),
            Err(first) => {
                tracing::warn!(error = %first, "chain read failed; reconnecting");
                self.reconnect().await?;
                let conn = self.conn();
                let at = conn
                    .api
                    .at_current_block()
                    .await
                    .map_err(display_err("fetching the latest block"))?;
                Ok((at, conn.shape))
            }
        }
    }

    /// Reads the metagraph and hyperparameters and runs [`check_weights`] for the signer, so a
    /// refusal costs no fee.
    pub async fn precheck_weights(&self, weights: &WeightsSubmission) -> ChainResult<()> {
        let me = self.require_signer()?.public_key().0;
        let metagraph = self.metagraph(weights.netuid, weights.mecid).await?;
        let hyper = self.hyperparams(weights.netuid).await?;
        let mut ctx = WeightsContext::from_metagraph(&metagraph, &hyper, &me, metagraph.block + 1);
        let (at, _) = self.at_latest().await?;
        let reader = Reader {
            at: &at,
            spec_version: at.spec_version(),
        };
        if let Some(min) = reader.optional::<u64>("StakeThreshold", vec![]).await? {
            ctx.min_stake = min;
        }
        check_weights(&ctx, weights, true)?;
        Ok(())
    }

    /// [`Chain::set_weights`] after [`SubtensorChain::precheck_weights`].
    pub async fn set_weights_checked(&self, weights: &WeightsSubmission) -> ChainResult<TxOutcome> {
        self.precheck_weights(weights).await?;
        self.set_weights(weights).await
    }

    fn require_signer(&self) -> ChainResult<&Keypair> {
        self.signer
            .as_ref()
            .ok_or_else(|| ChainError::Signer("no hotkey configured for writes".into()))
    }

    fn require_call(
        &self,
        shape: &RuntimeShape,
        at: &AtBlock,
        pallet: &'static str,
        call: &'static str,
    ) -> ChainResult<()> {
        if shape::has_call(at.metadata_ref(), pallet, call) {
            Ok(())
        } else {
            Err(ChainError::MissingCall {
                pallet,
                call,
                spec_version: shape.spec_version,
            })
        }
    }

    /// Signs, submits and watches `pallet.call(args)`; returns once the extrinsic is in a
    /// (best or finalized, per config) block and succeeded, or the typed reason it did not.
    async fn submit(&self, pallet: &'static str, data: calls::CallData) -> ChainResult<TxOutcome> {
        self.submit_indexed(pallet, data)
            .await
            .map(|(outcome, _)| outcome)
    }

    /// [`SubtensorChain::submit`], also returning the extrinsic's index in its block.
    async fn submit_indexed(
        &self,
        pallet: &'static str,
        data: calls::CallData,
    ) -> ChainResult<(TxOutcome, u32)> {
        let call = data.call;
        let signer = self.require_signer()?;
        let (at, shape) = self.at_latest().await?;
        self.require_call(&shape, &at, pallet, call)?;
        let payload = subxt::dynamic::transaction(pallet, call, data.composite());
        let name = format!("{pallet}.{call}");
        let mut progress = at
            .transactions()
            .sign_and_submit_then_watch_default(&payload, signer)
            .await
            .map_err(|e| ChainError::Invalid {
                call: name.clone(),
                reason: e.to_string(),
            })?;
        let tx_hash = h256(progress.extrinsic_hash());
        let wait = async {
            while let Some(status) = progress.next().await {
                let status = status.map_err(display_err(format!("watching {name}")))?;
                let (in_block, finalized) = match status {
                    TransactionStatus::InFinalizedBlock(b) => (b, true),
                    TransactionStatus::InBestBlock(b) if self.cfg.wait_for == WaitFor::InBlock => {
                        (b, false)
                    }
                    TransactionStatus::Error { message }
                    | TransactionStatus::Invalid { message }
                    | TransactionStatus::Dropped { message } => {
                        return Err(ChainError::Invalid {
                            call: name.clone(),
                            reason: message,
                        });
                    }
                    _ => continue,
                };
                let block_hash = h256(in_block.block_hash());
                let events = in_block
                    .fetch_events()
                    .await
                    .map_err(display_err(format!("events of {name}")))?;
                let metadata = at.metadata();
                let mut out = Vec::new();
                for ev in events.iter() {
                    let ev = ev.map_err(|e| ChainError::Decode {
                        what: format!("events of {name}"),
                        reason: e.to_string(),
                    })?;
                    if ev.pallet_name() == "System" && ev.event_name() == "ExtrinsicFailed" {
                        return Err(dispatch_failure(
                            &name,
                            block_hash,
                            ev.field_bytes(),
                            &metadata,
                        ));
                    }
                    out.push(ChainEvent {
                        pallet: ev.pallet_name().to_owned(),
                        name: ev.event_name().to_owned(),
                    });
                }
                let index =
                    u32::try_from(events.extrinsic_index()).map_err(|e| ChainError::Decode {
                        what: format!("extrinsic index of {name}"),
                        reason: e.to_string(),
                    })?;
                return Ok((
                    TxOutcome {
                        tx_hash,
                        block_hash,
                        finalized,
                        events: out,
                    },
                    index,
                ));
            }
            Err(ChainError::Rpc {
                what: format!("watching {name}"),
                reason: "status stream ended before inclusion".into(),
            })
        };
        tokio::time::timeout(self.cfg.tx_timeout, wait)
            .await
            .map_err(|_| ChainError::Rpc {
                what: format!("watching {pallet}.{call}"),
                reason: format!("not included within {:?}", self.cfg.tx_timeout),
            })?
    }
}

/// The number of block `block_hash`, from its header; [`ChainError::UnknownBlock`] when the node
/// has no such block. A node answers `null` for an unknown hash, Chopsticks an error object, or
/// (on a genesis spec) the genesis header whatever the hash: a header is only taken for the
/// block whose hash it hashes to.
async fn block_number_of(legacy: &Legacy, block_hash: [u8; 32]) -> ChainResult<u64> {
    match legacy.chain_get_header(Some(H256(block_hash))).await {
        Ok(Some(header)) if blake2_256(&header.encode()) == block_hash => Ok(header.number()),
        Ok(Some(header)) => {
            tracing::debug!(
                block = %hex::encode(block_hash),
                number = header.number(),
                "the node answered with the header of another block"
            );
            Err(ChainError::UnknownBlock { block_hash })
        }
        Ok(None) => Err(ChainError::UnknownBlock { block_hash }),
        Err(subxt::rpcs::Error::User(e)) => {
            tracing::debug!(block = %hex::encode(block_hash), error = %e.message, "header refused");
            Err(ChainError::UnknownBlock { block_hash })
        }
        Err(e) => Err(ChainError::Rpc {
            what: format!("header of block 0x{}", hex::encode(block_hash)),
            reason: e.to_string(),
        }),
    }
}

/// Whether block `block_hash` (number `number`) is finalized on the canonical chain: at or below
/// the finalized head (`finalized_number`) and the block the node has at that height.
async fn is_finalized_canonical(
    legacy: &Legacy,
    block_hash: [u8; 32],
    number: u64,
    finalized_number: u64,
) -> ChainResult<bool> {
    if number > finalized_number {
        return Ok(false);
    }
    let canonical = legacy
        .chain_get_block_hash(Some(number.into()))
        .await
        .map_err(display_err(format!("hash of block {number}")))?;
    Ok(canonical.is_some_and(|h| h256(h) == block_hash))
}

/// Turns an `ExtrinsicFailed` event's fields into a typed error with the module error's name.
fn dispatch_failure(
    call: &str,
    block_hash: [u8; 32],
    field_bytes: &[u8],
    metadata: &subxt::metadata::ArcMetadata,
) -> ChainError {
    match DispatchError::decode_from(field_bytes, metadata.clone()) {
        Ok(DispatchError::Module(m)) => match m.details() {
            Ok(d) => ChainError::Dispatch {
                call: call.to_owned(),
                block_hash,
                error: Box::new(ModuleError {
                    pallet: d.pallet.name().to_owned(),
                    name: d.variant.name.clone(),
                    docs: d.variant.docs.join(" ").trim().to_owned(),
                }),
            },
            Err(_) => ChainError::DispatchOther {
                call: call.to_owned(),
                reason: m.details_string(),
            },
        },
        Ok(other) => ChainError::DispatchOther {
            call: call.to_owned(),
            reason: other.to_string(),
        },
        Err(e) => ChainError::Decode {
            what: format!("dispatch error of {call}"),
            reason: e.to_string(),
        },
    }
}

impl Chain for SubtensorChain {
    fn runtime_shape(&self) -> RuntimeShape {
        self.shape()
    }

    fn signer(&self) -> Option<AccountId> {
        self.signer.as_ref().map(|k| k.public_key().0)
    }

    async fn current_block(&self) -> ChainResult<u64> {
        let (at, _) = self.at_latest().await?;
        Ok(at.block_number())
    }

    async fn tempo_schedule(&self, netuid: NetUid) -> ChainResult<TempoSchedule> {
        let (at, _) = self.at_latest().await?;
        let r = Reader {
            at: &at,
            spec_version: at.spec_version(),
        };
        let tempo: u16 = r.value("Tempo", vec![v_u(netuid)]).await?;
        let block = at.block_number();
        if !self.shape().features.stateful_epochs {
            return Ok(TempoSchedule::at(block, netuid, tempo));
        }
        let k = || vec![v_u(netuid)];
        Ok(TempoSchedule::stateful(
            block,
            netuid,
            tempo,
            r.value("LastEpochBlock", k()).await?,
            r.optional("PendingEpochAt", k()).await?.unwrap_or(0),
            r.value("SubnetEpochIndex", k()).await?,
            r.value("BlocksSinceLastStep", k()).await?,
        ))
    }

    async fn metagraph(&self, netuid: NetUid, mecid: MechId) -> ChainResult<Metagraph> {
        let (at, shape) = self.at_latest().await?;
        let r = &Reader {
            at: &at,
            spec_version: shape.spec_version,
        };
        let idx = if shape.indexed_by_netuid_index {
            netuid_index(netuid, mecid).ok_or_else(|| {
                ChainError::Unsupported(format!("mechanism {mecid} of netuid {netuid}"))
            })?
        } else {
            calls::uses_mechanism_call(&shape, netuid, mecid)?;
            netuid
        };
        let n: u16 = r.value("SubnetworkN", vec![v_u(netuid)]).await?;
        let keys: BTreeMap<u16, AccountId> = r
            .iter_last_key::<u16, AccountId>("Keys", vec![v_u(netuid)])
            .await?
            .into_iter()
            .collect();
        let vec_u16 = |item: &'static str, key: u16| async move {
            Ok::<_, ChainError>(
                r.optional::<Vec<u16>>(item, vec![v_u(key)])
                    .await?
                    .unwrap_or_default(),
            )
        };
        let active: Vec<bool> = r
            .optional::<Vec<bool>>("Active", vec![v_u(netuid)])
            .await?
            .unwrap_or_default();
        let permits: Vec<bool> = r.value("ValidatorPermit", vec![v_u(netuid)]).await?;
        let consensus = vec_u16("Consensus", netuid).await?;
        let dividends = vec_u16("Dividends", netuid).await?;
        let incentive = vec_u16("Incentive", idx).await?;
        let emission: Vec<u64> = r
            .optional::<Vec<u64>>("Emission", vec![v_u(netuid)])
            .await?
            .unwrap_or_default();
        let last_update: Vec<u64> = r.value("LastUpdate", vec![v_u(idx)]).await?;
        let registered: BTreeMap<u16, u64> = r
            .iter_last_key::<u16, u64>("BlockAtRegistration", vec![v_u(netuid)])
            .await?
            .into_iter()
            .collect();
        let mut weights: BTreeMap<u16, Vec<(u16, u16)>> = r
            .iter_last_key::<u16, Vec<(u16, u16)>>("Weights", vec![v_u(idx)])
            .await?
            .into_iter()
            .collect();
        let mut bonds: BTreeMap<u16, Vec<(u16, u16)>> = r
            .iter_last_key::<u16, Vec<(u16, u16)>>("Bonds", vec![v_u(idx)])
            .await?
            .into_iter()
            .collect();
        let axons: BTreeMap<AccountId, AxonInfo> = r
            .iter_last_key::<AccountId, RawAxon>("Axons", vec![v_u(netuid)])
            .await?
            .into_iter()
            .map(|(k, a)| {
                (
                    k,
                    AxonInfo {
                        block: a.block,
                        version: a.version,
                        ip: a.ip,
                        port: a.port,
                        ip_type: a.ip_type,
                        protocol: a.protocol,
                    },
                )
            })
            .collect();

        let hotkeys: Vec<(u16, AccountId)> = (0..n)
            .map(|uid| (uid, keys.get(&uid).copied().unwrap_or([0; 32])))
            .collect();
        let stake_item = match shape.stake_item {
            StakeItem::TotalHotkeyAlpha => "TotalHotkeyAlpha",
            StakeItem::TotalHotkeyStake => "TotalHotkeyStake",
        };
        r.require(stake_item)?;
        let stakes = try_join_all(hotkeys.iter().map(|(_, hk)| {
            let keys = match shape.stake_item {
                StakeItem::TotalHotkeyAlpha => vec![v_account(hk), v_u(netuid)],
                StakeItem::TotalHotkeyStake => vec![v_account(hk)],
            };
            r.value::<u64>(stake_item, keys)
        }))
        .await?;
        let has_owner = r.has("Owner");
        let owners = try_join_all(hotkeys.iter().map(|(_, hk)| async move {
            if has_owner {
                r.get::<AccountId>("Owner", vec![v_account(hk)]).await
            } else {
                Ok(None)
            }
        }))
        .await?;

        let at_uid = |v: &[u16], uid: u16| v.get(usize::from(uid)).copied().unwrap_or(0);
        let neurons = hotkeys
            .iter()
            .zip(stakes)
            .zip(owners)
            .map(|(((uid, hotkey), stake), owner)| {
                let i = usize::from(*uid);
                Neuron {
                    uid: *uid,
                    hotkey: *hotkey,
                    coldkey: owner.filter(|o| o != &[0u8; 32]),
                    stake,
                    validator_permit: permits.get(i).copied().unwrap_or(false),
                    active: active.get(i).copied().unwrap_or(false),
                    axon: axons.get(hotkey).copied(),
                    last_update: last_update.get(i).copied().unwrap_or(0),
                    registered_at: registered.get(uid).copied().unwrap_or(0),
                    weights: weights.remove(uid).unwrap_or_default(),
                    bonds: bonds.remove(uid).unwrap_or_default(),
                    incentive: at_uid(&incentive, *uid),
                    dividends: at_uid(&dividends, *uid),
                    consensus: at_uid(&consensus, *uid),
                    emission: emission.get(i).copied().unwrap_or(0),
                }
            })
            .collect();
        Ok(Metagraph {
            netuid,
            mecid,
            block: at.block_number(),
            neurons,
        })
    }

    async fn hyperparams(&self, netuid: NetUid) -> ChainResult<Hyperparams> {
        let (at, shape) = self.at_latest().await?;
        let r = Reader {
            at: &at,
            spec_version: shape.spec_version,
        };
        let k = || vec![v_u(netuid)];
        Ok(Hyperparams {
            netuid,
            tempo: r.value("Tempo", k()).await?,
            rho: r.value("Rho", k()).await?,
            kappa: r.value("Kappa", k()).await?,
            immunity_period: r.value("ImmunityPeriod", k()).await?,
            min_allowed_weights: r.value("MinAllowedWeights", k()).await?,
            max_weights_limit: r.value("MaxWeightsLimit", k()).await?,
            weights_version_key: r.value("WeightsVersionKey", k()).await?,
            weights_rate_limit: r.value("WeightsSetRateLimit", k()).await?,
            activity_cutoff: r.value("ActivityCutoff", k()).await?,
            max_allowed_uids: r.value("MaxAllowedUids", k()).await?,
            max_allowed_validators: r.value("MaxAllowedValidators", k()).await?,
            bonds_moving_average: r.value("BondsMovingAverage", k()).await?,
            serving_rate_limit: r.value("ServingRateLimit", k()).await?,
            commit_reveal_enabled: r.optional("CommitRevealWeightsEnabled", k()).await?,
            reveal_period_epochs: r.optional("RevealPeriodEpochs", k()).await?,
            liquid_alpha_on: r.optional("LiquidAlphaOn", k()).await?,
            yuma3_on: r.optional("Yuma3On", k()).await?,
            mechanism_count: r.optional("MechanismCountCurrent", k()).await?.unwrap_or(1),
            activity_cutoff_factor_milli: r.optional("ActivityCutoffFactorMilli", k()).await?,
            bonds_reset_on: r.optional("BondsResetOn", k()).await?,
            // A plain value (not per subnet) on the runtimes that have it.
            commit_reveal_version: r.optional("CommitRevealWeightsVersion", vec![]).await?,
            mechanism_emission_split: r.optional("MechanismEmissionSplit", k()).await?,
        })
    }

    async fn set_weights(&self, w: &WeightsSubmission) -> ChainResult<TxOutcome> {
        let data = calls::set_weights(&self.shape(), w)?;
        self.submit(SUBTENSOR, data).await
    }

    async fn commit_weights(&self, c: &WeightsCommit) -> ChainResult<TxOutcome> {
        let data = calls::commit_weights(&self.shape(), c)?;
        self.submit(SUBTENSOR, data).await
    }

    async fn commit_timelocked_weights(&self, c: &TimelockedCommit) -> ChainResult<TxOutcome> {
        let data = calls::commit_timelocked_weights(&self.shape(), c)?;
        self.submit(SUBTENSOR, data).await
    }

    async fn reveal_weights(&self, rv: &WeightsReveal) -> ChainResult<TxOutcome> {
        let data = calls::reveal_weights(&self.shape(), rv)?;
        self.submit(SUBTENSOR, data).await
    }

    async fn serve_axon(&self, a: &AxonServe) -> ChainResult<TxOutcome> {
        self.submit(SUBTENSOR, calls::serve_axon(a)).await
    }

    async fn anchor_commitment(&self, netuid: NetUid, data: &[u8]) -> ChainResult<TxOutcome> {
        let data = calls::set_commitment(netuid, data)?;
        self.submit(COMMITMENTS, data).await
    }

    async fn transfer(&self, dest: &AccountId, amount_rao: u64) -> ChainResult<TransferReceipt> {
        let data = calls::transfer_keep_alive(dest, amount_rao);
        let (outcome, extrinsic_index) = self.submit_indexed(BALANCES, data).await?;
        let legacy = Legacy::new(self.rpc());
        let block_number = block_number_of(&legacy, outcome.block_hash).await?;
        Ok(TransferReceipt {
            block_hash: outcome.block_hash,
            block_number,
            extrinsic_index,
            finalized: outcome.finalized,
        })
    }

    async fn transfer_at(
        &self,
        block_hash: [u8; 32],
        extrinsic_index: u32,
    ) -> ChainResult<TransferLookup> {
        // The finalized head first (reconnecting if the connection is gone): a block finalized
        // after this read is reported unfinalized, never the other way round.
        let (head, _) = self.at_latest().await?;
        let finalized_number = head.block_number();
        let conn = self.conn();
        let legacy = Legacy::new(conn.rpc.clone());
        let block_number = block_number_of(&legacy, block_hash).await?;
        let what = || format!("events of block 0x{}", hex::encode(block_hash));
        let at = conn
            .api
            .at_block_hash_and_number(BlockRef::from_hash(H256(block_hash)), block_number)
            .await
            .map_err(display_err(what()))?;
        let events = at.events().fetch().await.map_err(display_err(what()))?;
        let mut succeeded = false;
        let mut transfers = Vec::new();
        for ev in events.iter() {
            let ev = ev.map_err(|e| ChainError::Decode {
                what: what(),
                reason: e.to_string(),
            })?;
            if ev.phase() != Phase::ApplyExtrinsic(extrinsic_index) {
                continue;
            }
            match (ev.pallet_name(), ev.event_name()) {
                ("System", "ExtrinsicSuccess") => succeeded = true,
                (BALANCES, "Transfer") => {
                    let t = ev
                        .decode_fields_unchecked_as::<RawTransfer>()
                        .map_err(|e| ChainError::Decode {
                            what: format!(
                                "Balances.Transfer in block 0x{}",
                                hex::encode(block_hash)
                            ),
                            reason: e.to_string(),
                        })?;
                    transfers.push(Transfer {
                        from: t.from,
                        to: t.to,
                        amount_rao: t.amount,
                    });
                }
                _ => {}
            }
        }
        let finalized =
            is_finalized_canonical(&legacy, block_hash, block_number, finalized_number).await?;
        Ok(TransferLookup {
            block_number,
            finalized_head: finalized_number,
            finalized,
            succeeded,
            transfers,
        })
    }
}

/// The newest runtime this client was checked against, by its sources (RaoFoundation/subtensor
/// `runtime/src/lib.rs` at spec 459); the only one it runs against here is the shipped spec-103
/// test runtime (under Chopsticks).
pub const NEWEST_RUNTIME_READ: u32 = 459;

/// The feature lines of `orchestra-chain info`: what the runtime has of what changed since
/// spec 103, and what the client does about each.
pub fn features_report(s: &RuntimeShape) -> String {
    let f = &s.features;
    let yes = |b: bool| if b { "yes" } else { "no " };
    let rows: [(&str, bool, &str); 12] = [
        (
            "mechanisms",
            f.mechanism_count,
            "per-mechanism weights and metagraphs",
        ),
        (
            "emission split",
            f.mechanism_emission_split,
            if s.spec_version >= NEWEST_RUNTIME_READ {
                "a split of the wrong length splits evenly (spec 459)"
            } else {
                "a split of the wrong length is trimmed or zero-padded (spec < 459)"
            },
        ),
        (
            "max mechanisms set by root",
            f.max_mechanism_count_storage,
            "read, not used",
        ),
        (
            "stateful epochs",
            f.stateful_epochs,
            "epoch index and next epoch from LastEpochBlock / SubnetEpochIndex",
        ),
        (
            "trigger_epoch",
            f.trigger_epoch,
            "followed through PendingEpochAt",
        ),
        (
            "activity cutoff factor",
            f.activity_cutoff_factor,
            "cutoff = max(1, factor · tempo / 1000)",
        ),
        ("Yuma3On", f.yuma3, "read into the hyperparameters"),
        (
            "LiquidAlphaOn",
            f.liquid_alpha,
            "read into the hyperparameters",
        ),
        (
            "BondsResetOn",
            f.bonds_reset,
            "read into the hyperparameters",
        ),
        (
            "commit-reveal version",
            f.commit_reveal_version,
            "4: timelocked commits the chain reveals; 2 or absent: hash commits and reveals",
        ),
        (
            "owner hotkey",
            f.owner_hotkey,
            "the owner's uid keeps a permit and self-weight",
        ),
        ("rank / trust stored", f.rank_and_trust, "not read"),
    ];
    let mut out = String::from("features (since spec 103)\n");
    for (name, has, note) in rows {
        out.push_str(&format!("  {:<27} {}  {note}\n", name, yes(has)));
    }
    out
}

/// The text `orchestra-chain info` prints: endpoint, runtime, shape, features, block and (for a
/// netuid) hyperparameters, the epoch schedule and a metagraph summary.
pub async fn info_report(
    chain: &SubtensorChain,
    netuid: Option<NetUid>,
    mecid: MechId,
) -> ChainResult<String> {
    use std::fmt::Write as _;
    let s = chain.shape();
    let block = chain.current_block().await?;
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(out, "endpoint        {}", chain.cfg.url);
    let _ = writeln!(
        out,
        "runtime         {} spec {} tx {}",
        s.spec_name, s.spec_version, s.transaction_version
    );
    let _ = writeln!(out, "block           {block} (finalized)");
    let _ = writeln!(out, "subtensor index {}", s.subtensor_pallet_index);
    let _ = writeln!(out, "stake item      {:?}", s.stake_item);
    let _ = writeln!(
        out,
        "mechanisms      {} (per-mechanism storage index: {})",
        s.has_mechanisms, s.indexed_by_netuid_index
    );
    let _ = writeln!(
        out,
        "commit-reveal   v2 {} / timelocked {}",
        s.has_commit_reveal, s.has_timelocked_commits
    );
    let _ = writeln!(out, "commitments     {}", s.has_commitments);
    let _ = writeln!(out, "subnet info api {}", s.has_subnet_info_api);
    out.push_str(&features_report(&s));
    let Some(netuid) = netuid else {
        return Ok(out);
    };
    let h = chain.hyperparams(netuid).await?;
    let sched = chain.tempo_schedule(netuid).await?;
    let _ = writeln!(out, "\nsubnet {netuid} mechanism {mecid}");
    let _ = writeln!(
        out,
        "tempo           {} ({} scheduler: epoch index {}, next epoch at block {})",
        h.tempo,
        if sched.stateful { "stateful" } else { "legacy" },
        sched.epoch_index,
        sched.next_epoch_block
    );
    let _ = writeln!(
        out,
        "activity cutoff {} blocks{}",
        h.activity_cutoff_blocks(),
        match h.activity_cutoff_factor_milli {
            Some(f) => format!(" (factor {f}‰ of tempo)"),
            None => " (ActivityCutoff)".into(),
        }
    );
    let flag = |v: Option<bool>| v.map_or("absent".to_string(), |b| b.to_string());
    let _ = writeln!(
        out,
        "epoch switches  Yuma3On {} LiquidAlphaOn {} BondsResetOn {}",
        flag(h.yuma3_on),
        flag(h.liquid_alpha_on),
        flag(h.bonds_reset_on)
    );
    let _ = writeln!(
        out,
        "mechanisms      {} (emission split {})",
        h.mechanism_count,
        match &h.mechanism_emission_split {
            Some(split) => format!("{split:?} of 65535"),
            None => "even".into(),
        }
    );
    let _ = writeln!(
        out,
        "weights         min {} max-limit {} version-key {} rate-limit {} commit-reveal {}",
        h.min_allowed_weights,
        h.max_weights_limit,
        h.weights_version_key,
        h.weights_rate_limit,
        match (h.commit_reveal_enabled, h.commit_reveal_version) {
            (Some(true), Some(v)) if v >= 4 && s.has_timelocked_commits => {
                format!("on, v{v} (timelocked commits; the chain reveals)")
            }
            (Some(true), v) => format!(
                "on, version {} (hash commits, revealed by the validator)",
                v.map_or_else(|| "not stored".to_string(), |v| v.to_string())
            ),
            (Some(false), _) => "off".to_string(),
            (None, _) => "absent".to_string(),
        }
    );
    let mg = chain.metagraph(netuid, mecid).await?;
    let validators = mg.neurons.iter().filter(|n| n.validator_permit).count();
    let served = mg.neurons.iter().filter(|n| n.axon.is_some()).count();
    let stake: u128 = mg.neurons.iter().map(|n| u128::from(n.stake)).sum();
    let _ = writeln!(
        out,
        "neurons         {} ({validators} with validator permit, {served} serving)",
        mg.neurons.len()
    );
    let _ = writeln!(out, "total stake     {stake} rao");
    let _ = writeln!(
        out,
        "{:>5} {:<66} {:>16} {:>2} {:>6} {:>6} {:>10} {:>4}  axon",
        "uid", "hotkey", "stake", "vp", "incent", "divid", "last_upd", "nw"
    );
    for n in &mg.neurons {
        let axon = n
            .axon
            .and_then(|a| a.socket_addr())
            .map(|a| a.to_string())
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(
            out,
            "{:>5} 0x{} {:>16} {:>2} {:>6} {:>6} {:>10} {:>4}  {axon}",
            n.uid,
            hex::encode(n.hotkey),
            n.stake,
            u8::from(n.validator_permit),
            n.incentive,
            n.dividends,
            n.last_update,
            n.weights.len()
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks() {
        assert_eq!(
            Network::parse("finney").url(),
            "wss://entrypoint-finney.opentensor.ai:443"
        );
        assert_eq!(
            Network::parse("test").url(),
            "wss://test.finney.opentensor.ai:443"
        );
        assert_eq!(Network::parse("local").url(), "ws://127.0.0.1:9944");
        assert_eq!(
            Network::parse("ws://10.0.0.1:9944").url(),
            "ws://10.0.0.1:9944"
        );
        assert!(is_loopback_ws("ws://127.0.0.1:9944"));
        assert!(!is_loopback_ws("ws://10.0.0.1:9944"));
    }
}
