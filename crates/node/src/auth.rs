//! btauth/1 for axum servers and reqwest clients.
//!
//! **Serving.** [`RequestAuth`] checks a request's btauth/1 headers against the node's own
//! hotkey (receiver must equal it), the freshness window and the replay store
//! (`orchestra_protocol::btauth::Verifier`), then, optionally, that the caller holds a validator
//! permit in the subnet's metagraph ([`PermitSet`], refreshed from the chain by
//! [`spawn_permit_refresh`] or fixed by the operator). [`require_btauth`] is the axum middleware:
//! it buffers the body (bounded), verifies, and hands the [`Caller`] to the handler as a request
//! extension.
//!
//! Refusals are JSON `{"error": code, "message": reason}` with these statuses:
//!
//! | case | status | `error` |
//! |---|---|---|
//! | missing or malformed headers | 401 | `malformed_auth` |
//! | nonce too old or too far ahead (stale) | 401 | `stale_request` |
//! | signature does not verify | 401 | `bad_signature` |
//! | nonce already accepted from this hotkey (replay) | 401 | `replayed_request` |
//! | signed for another receiver (or none) | 421 Misdirected Request | `wrong_receiver` |
//! | caller has no validator permit | 403 | `not_a_validator` |
//! | body over the limit | 413 | `body_too_large` |
//!
//! 421 for a wrong receiver says "this request was meant for another server" and keeps it
//! distinct from 403, which means "we know who you are and you may not".
//!
//! **Calling.** [`signed_headers`] signs an outgoing request for reqwest (target = path plus
//! query of the URL, a fresh nanosecond nonce).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use orchestra_chain::Chain;
use orchestra_protocol::Hotkey;
use orchestra_protocol::btauth::{
    self, AuthError, AuthHeaders, Caller, MemoryReplayStore, Verifier,
};
use orchestra_protocol::ss58;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch (0 if the clock is before 1970).
pub fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A JSON error response `{"error": code, "message": …}` (the Ledger API's error shape, shared by
/// every node route).
pub use orchestra_ledger::server::error as json_error;

/// Why a request was refused: status, machine-readable code and a reason safe to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// HTTP status.
    pub status: StatusCode,
    /// Short code (`stale_request`, `not_a_validator`, …).
    pub code: &'static str,
    /// Human-readable reason.
    pub message: String,
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        json_error(self.status, self.code, self.message)
    }
}

/// The status a btauth/1 failure is answered with (see the module table).
pub fn status_for(e: &AuthError) -> StatusCode {
    match e {
        AuthError::WrongReceiver(_) => StatusCode::MISDIRECTED_REQUEST,
        _ => StatusCode::UNAUTHORIZED,
    }
}

impl From<AuthError> for Rejection {
    fn from(e: AuthError) -> Self {
        Rejection {
            status: status_for(&e),
            code: e.code(),
            message: e.to_string(),
        }
    }
}

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

/// Settings of [`RequestAuth`].
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// How far back a nonce may lie, ns (default 10 s, the SDK's).
    pub max_age_ns: i128,
    /// How far ahead a nonce may lie, ns (default 2 s).
    pub allowed_skew_ns: i128,
    /// How long the replay store remembers a nonce, ns (default 60 s; must cover the window).
    pub replay_retention_ns: i128,
    /// Most nonces remembered (bounded memory under any load; default 200 000).
    pub replay_capacity: usize,
    /// Largest accepted body, bytes (default 4 MiB).
    pub body_limit: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            max_age_ns: btauth::DEFAULT_MAX_AGE_NS,
            allowed_skew_ns: btauth::DEFAULT_ALLOWED_SKEW_NS,
            replay_retention_ns: 60_000_000_000,
            replay_capacity: 200_000,
            body_limit: 4 << 20,
        }
    }
}

/// Verifies btauth/1 requests addressed to one hotkey, and optionally the validator permit.
pub struct RequestAuth {
    verifier: Verifier<MemoryReplayStore>,
    permits: Option<Arc<PermitSet>>,
    body_limit: usize,
}

impl std::fmt::Debug for RequestAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestAuth")
            .field("self_hotkey", &self.verifier.self_hotkey())
            .field("permit_check", &self.permits.is_some())
            .finish()
    }
}

impl RequestAuth {
    /// Requests must be addressed to `self_hotkey` (ss58); with `permits`, the caller must be in
    /// that set (else 403).
    pub fn new(
        self_hotkey: impl Into<String>,
        config: &AuthConfig,
        permits: Option<Arc<PermitSet>>,
    ) -> Result<Self, String> {
        let store = MemoryReplayStore::new(config.replay_retention_ns, config.replay_capacity);
        let verifier = Verifier::with_store(self_hotkey, store)
            .with_window(config.max_age_ns, config.allowed_skew_ns)
            .ok_or_else(|| "the replay retention must cover max age + allowed skew".to_string())?;
        Ok(RequestAuth {
            verifier,
            permits,
            body_limit: config.body_limit,
        })
    }

    /// The hotkey requests must be addressed to.
    pub fn self_hotkey(&self) -> &str {
        self.verifier.self_hotkey()
    }

    /// The permit set, if the permit check is on.
    pub fn permits(&self) -> Option<&Arc<PermitSet>> {
        self.permits.as_ref()
    }

    /// Largest accepted body, bytes.
    pub fn body_limit(&self) -> usize {
        self.body_limit
    }

    /// Authenticate one request at `now_ns`: btauth/1 first (so the replay store only records
    /// genuine callers), then the permit.
    pub fn check(
        &self,
        headers: &HeaderMap,
        method: &Method,
        uri: &Uri,
        body: &[u8],
        now_ns: i128,
    ) -> Result<Caller, Rejection> {
        let h = AuthHeaders::from_lookup(|name| headers.get(name).and_then(|v| v.to_str().ok()));
        let target = uri
            .path_and_query()
            .map_or_else(|| uri.path(), |pq| pq.as_str());
        let caller = self
            .verifier
            .verify(&h, body, method.as_str(), target, now_ns)?;
        if let Some(permits) = &self.permits
            && !permits.contains(&caller.hotkey)
        {
            return Err(Rejection {
                status: StatusCode::FORBIDDEN,
                code: "not_a_validator",
                message: format!(
                    "hotkey {} holds no validator permit on this subnet",
                    caller.hotkey
                ),
            });
        }
        Ok(caller)
    }
}

/// Axum middleware: buffer the body (up to the limit), authenticate with `auth`, and pass the
/// [`Caller`] on as a request extension (`axum::Extension<Caller>` in the handler).
pub async fn require_btauth(
    State(auth): State<Arc<RequestAuth>>,
    req: Request,
    next: Next,
) -> Response {
    let limit = auth.body_limit();
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = || {
        json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request body exceeds {limit} bytes"),
        )
    };
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large();
    }
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        return too_large();
    };
    match auth.check(&parts.headers, &parts.method, &parts.uri, &bytes, now_ns()) {
        Ok(caller) => {
            tracing::debug!(caller = %caller.hotkey, path = %parts.uri.path(), "authenticated");
            let mut req = Request::from_parts(parts, Body::from(bytes));
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(r) => {
            tracing::info!(code = r.code, path = %parts.uri.path(), "refused: {}", r.message);
            r.into_response()
        }
    }
}

/// btauth/1 headers for an outgoing request to `url` with `body`, signed by `hotkey` for
/// `receiver` (`None`: unbound), with nonce `nonce_ns` (use [`now_ns`], fresh per attempt).
pub fn signed_headers(
    hotkey: &Hotkey,
    method: &str,
    url: &reqwest::Url,
    body: &[u8],
    receiver: Option<&str>,
    nonce_ns: i128,
) -> reqwest::header::HeaderMap {
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let signed = btauth::sign(hotkey, method, &target, body, receiver, nonce_ns);
    let mut map = reqwest::header::HeaderMap::new();
    for (name, value) in signed.headers {
        if let Ok(v) = reqwest::header::HeaderValue::from_str(&value) {
            map.insert(name, v);
        }
    }
    map
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::future::Future;

    const BOB: &str = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty";

    fn request(key: &Hotkey, receiver: &str, nonce: i128) -> (HeaderMap, Uri) {
        let url = reqwest::Url::parse("http://x/orchestrate").unwrap();
        let h = signed_headers(key, "POST", &url, b"{}", Some(receiver), nonce);
        let mut headers = HeaderMap::new();
        for (k, v) in &h {
            headers.insert(k.clone(), v.clone());
        }
        (headers, Uri::from_static("/orchestrate"))
    }

    #[test]
    fn statuses_follow_the_table() {
        let alice = Hotkey::from_uri("//Alice").unwrap();
        let charlie = Hotkey::from_uri("//Charlie").unwrap();
        let permits = Arc::new(PermitSet::new([alice.ss58()]));
        let auth = RequestAuth::new(BOB, &AuthConfig::default(), Some(permits.clone())).unwrap();
        let now = 1_764_000_000_000_000_000i128;
        let check = |h: &HeaderMap, u: &Uri| auth.check(h, &Method::POST, u, b"{}", now);

        let (h, u) = request(&alice, BOB, now);
        assert_eq!(check(&h, &u).unwrap().hotkey, alice.ss58());
        assert_eq!(check(&h, &u).unwrap_err().code, "replayed_request");
        assert_eq!(check(&h, &u).unwrap_err().status, StatusCode::UNAUTHORIZED);

        let (h, u) = request(&alice, BOB, now - 11_000_000_000);
        let r = check(&h, &u).unwrap_err();
        assert_eq!(
            (r.status, r.code),
            (StatusCode::UNAUTHORIZED, "stale_request")
        );

        let (h, u) = request(&alice, &charlie.ss58(), now + 1);
        let r = check(&h, &u).unwrap_err();
        assert_eq!(
            (r.status, r.code),
            (StatusCode::MISDIRECTED_REQUEST, "wrong_receiver")
        );

        let (h, u) = request(&charlie, BOB, now + 2);
        let r = check(&h, &u).unwrap_err();
        assert_eq!(
            (r.status, r.code),
            (StatusCode::FORBIDDEN, "not_a_validator")
        );
        // Once the chain grants Charlie a permit, he gets in.
        permits.replace(HashSet::from([charlie.ss58()]), 10);
        let (h, u) = request(&charlie, BOB, now + 3);
        assert!(check(&h, &u).is_ok());
    }

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
