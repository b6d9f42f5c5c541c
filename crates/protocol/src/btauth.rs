//! btauth/1: hotkey-signed HTTP requests, interoperable with the Python SDK's
//! `bittensor.http_auth`.
//!
//! A request carries headers proving "sent by hotkey X, to hotkey Y, with exactly this body,
//! recently". [`sign`] makes them; [`Verifier::verify`] checks them in the SDK's order (shape,
//! receiver, freshness, signature, replay) and returns a typed [`AuthError`] with a stable code.
//!
//! Which scheme a sender signs with is not taken from its own header alone: the verifier's
//! [`SchemeSource`] says which scheme each hotkey uses (by default sr25519, the SDK's default,
//! for every hotkey not pinned otherwise), and a header declaring another is refused
//! ([`AuthError::SchemeMismatch`]) before any signature is checked. The SDK's `verify` trusts the
//! header; [`SchemeSource::Header`] does the same where that is wanted.
//! Which HTTP status each error gets is the HTTP layer's business (`orchestra-http`'s
//! `Refusal::status`, documented in `docs/protocol.md`), so every server answers alike. Time is
//! an argument (`now_ns`): this module never reads a clock.

use crate::keys::{Hotkey, Scheme, VerifyingKey};
use crate::ss58;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Mutex;

/// How many decoded caller keys a [`Verifier`] keeps (a miner sees a few dozen validators; a
/// Ledger API a few thousand hotkeys).
const KEY_CACHE_CAPACITY: usize = 4096;

/// Decoded caller keys by (scheme, ss58 address).
type KeyCache = HashMap<(Scheme, String), ([u8; 32], VerifyingKey)>;

/// The protocol line that opens every signed payload.
pub const PROTOCOL: &str = "btauth/1";
/// `X-Bittensor-Version`: always `1`.
pub const HEADER_VERSION: &str = "X-Bittensor-Version";
/// `X-Bittensor-Hotkey`: the sender's ss58 address.
pub const HEADER_HOTKEY: &str = "X-Bittensor-Hotkey";
/// `X-Bittensor-Receiver`: the receiver's ss58 address.
pub const HEADER_RECEIVER: &str = "X-Bittensor-Receiver";
/// `X-Bittensor-Nonce`: nanoseconds since the Unix epoch, decimal.
pub const HEADER_NONCE: &str = "X-Bittensor-Nonce";
/// `X-Bittensor-Signature`: `0x` + hex signature.
pub const HEADER_SIGNATURE: &str = "X-Bittensor-Signature";
/// `X-Bittensor-Crypto`: the scheme, only when it is not sr25519.
pub const HEADER_CRYPTO: &str = "X-Bittensor-Crypto";

/// How far back a nonce may lie (10 s, the SDK's default).
pub const DEFAULT_MAX_AGE_NS: i128 = 10_000_000_000;
/// How far ahead a nonce may lie (2 s of clock skew, the SDK's default).
pub const DEFAULT_ALLOWED_SKEW_NS: i128 = 2_000_000_000;

/// The exact bytes that are signed: the normative btauth/1 payload.
///
/// `target` is the request target exactly as sent (path plus `?query`); `receiver` `None`
/// signs an unbound request (`-`).
pub fn payload(
    scheme: Scheme,
    method: &str,
    target: &str,
    body: &[u8],
    nonce_ns: i128,
    sender: &str,
    receiver: Option<&str>,
) -> String {
    let body_hash = hex::encode(Sha256::digest(body));
    let method = method.to_ascii_uppercase();
    let receiver = receiver.unwrap_or("-");
    format!(
        "{PROTOCOL}\n{}\n{method}\n{target}\n{body_hash}\n{nonce_ns}\n{sender}\n{receiver}",
        scheme.name()
    )
}

/// The headers of one signed request, ready to attach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// Header name and value pairs, in a stable order.
    pub headers: Vec<(&'static str, String)>,
}

impl SignedHeaders {
    /// The value of header `name` (case-insensitive), if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The headers as the borrowed view [`Verifier::verify`] takes (handy in tests and loopback).
    pub fn as_auth_headers(&self) -> AuthHeaders<'_> {
        AuthHeaders::from_lookup(|name| self.get(name))
    }
}

/// Sign a request with `hotkey`. Each request (and each retry) needs a fresh `nonce_ns`.
pub fn sign(
    hotkey: &Hotkey,
    method: &str,
    target: &str,
    body: &[u8],
    receiver: Option<&str>,
    nonce_ns: i128,
) -> SignedHeaders {
    let sender = hotkey.ss58();
    let scheme = hotkey.scheme();
    let message = payload(scheme, method, target, body, nonce_ns, &sender, receiver);
    let signature = hotkey.sign(message.as_bytes());
    let mut headers = vec![
        (HEADER_VERSION, "1".to_string()),
        (HEADER_HOTKEY, sender),
        (HEADER_NONCE, nonce_ns.to_string()),
        (HEADER_SIGNATURE, format!("0x{}", hex::encode(signature))),
    ];
    if scheme != Scheme::Sr25519 {
        headers.push((HEADER_CRYPTO, scheme.name().to_string()));
    }
    if let Some(r) = receiver {
        headers.push((HEADER_RECEIVER, r.to_string()));
    }
    SignedHeaders { headers }
}

/// The btauth/1 header values of a received request, borrowed from whatever header map the
/// server uses.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuthHeaders<'a> {
    /// `X-Bittensor-Version`.
    pub version: Option<&'a str>,
    /// `X-Bittensor-Hotkey`.
    pub hotkey: Option<&'a str>,
    /// `X-Bittensor-Receiver`.
    pub receiver: Option<&'a str>,
    /// `X-Bittensor-Nonce`.
    pub nonce: Option<&'a str>,
    /// `X-Bittensor-Signature`.
    pub signature: Option<&'a str>,
    /// `X-Bittensor-Crypto`.
    pub crypto: Option<&'a str>,
}

impl<'a> AuthHeaders<'a> {
    /// Read the btauth/1 headers through a case-insensitive lookup function.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<&'a str>) -> Self {
        AuthHeaders {
            version: lookup(HEADER_VERSION),
            hotkey: lookup(HEADER_HOTKEY),
            receiver: lookup(HEADER_RECEIVER),
            nonce: lookup(HEADER_NONCE),
            signature: lookup(HEADER_SIGNATURE),
            crypto: lookup(HEADER_CRYPTO),
        }
    }
}

/// Why a request failed btauth/1. Messages never echo the signature or payload, so they are safe
/// to return to an unauthenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// A header is missing or unparseable.
    #[error("malformed btauth/1 headers: {0}")]
    Malformed(&'static str),
    /// The request was signed for a different receiver, or for none when one is required.
    #[error("wrong receiver: {0}")]
    WrongReceiver(&'static str),
    /// The nonce lies outside the freshness window.
    #[error("stale request: {0}")]
    Stale(&'static str),
    /// The signature does not verify against the claimed hotkey.
    #[error("bad signature: signature does not verify against the claimed hotkey")]
    BadSignature,
    /// This (hotkey, nonce) pair was already accepted.
    #[error("replayed request: this nonce was already accepted from this hotkey")]
    Replayed,
    /// The header declares a scheme other than the one this server's trusted source holds for
    /// the hotkey (a forged or mistaken `X-Bittensor-Crypto`).
    #[error(
        "scheme mismatch: this server knows the hotkey signs with {}, the request declares {}",
        trusted.name(),
        declared.name()
    )]
    SchemeMismatch {
        /// What `X-Bittensor-Crypto` declared (absent: sr25519).
        declared: Scheme,
        /// What the verifier's [`SchemeSource`] holds for the hotkey.
        trusted: Scheme,
    },
}

impl AuthError {
    /// A short machine-readable code for JSON error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Malformed(_) => "malformed_auth",
            AuthError::WrongReceiver(_) => "wrong_receiver",
            AuthError::Stale(_) => "stale_request",
            AuthError::BadSignature => "bad_signature",
            AuthError::Replayed => "replayed_request",
            AuthError::SchemeMismatch { .. } => "scheme_mismatch",
        }
    }
}

/// The authenticated sender of a verified request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Sender ss58 address.
    pub hotkey: String,
    /// The sender's 32-byte public key.
    pub public_key: [u8; 32],
    /// The request's nonce.
    pub nonce_ns: i128,
    /// The scheme it was signed with.
    pub scheme: Scheme,
}

/// Remembers accepted (hotkey, nonce) pairs so a request cannot be replayed inside the window.
pub trait ReplayStore: Send + Sync {
    /// Record the pair and return `true` if it was never seen; return `false` if it was.
    fn check_and_store(&self, hotkey: &str, nonce_ns: i128, now_ns: i128) -> bool;
    /// How long (ns) the store remembers a pair; must cover the freshness window.
    fn retention_ns(&self) -> i128;
}

/// An in-process [`ReplayStore`] with time-based expiry and a hard size cap, so memory stays
/// bounded under any load (past the cap the oldest pairs go first; the freshness window still
/// rejects anything older).
#[derive(Debug)]
pub struct MemoryReplayStore {
    retention_ns: i128,
    capacity: usize,
    inner: Mutex<ReplayInner>,
}

#[derive(Debug, Default)]
struct ReplayInner {
    seen: HashSet<(String, i128)>,
    expiry: VecDeque<(i128, (String, i128))>,
}

impl MemoryReplayStore {
    /// A store that remembers pairs for `retention_ns` and at most `capacity` of them.
    pub fn new(retention_ns: i128, capacity: usize) -> Self {
        MemoryReplayStore {
            retention_ns,
            capacity: capacity.max(1),
            inner: Mutex::new(ReplayInner::default()),
        }
    }
}

impl Default for MemoryReplayStore {
    /// 60 s retention (as the SDK) and room for a million pairs.
    fn default() -> Self {
        MemoryReplayStore::new(60_000_000_000, 1_000_000)
    }
}

impl ReplayStore for MemoryReplayStore {
    fn check_and_store(&self, hotkey: &str, nonce_ns: i128, now_ns: i128) -> bool {
        // A poisoned lock only means another thread panicked mid-insert; the set is still usable.
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let ReplayInner { seen, expiry } = &mut *inner;
        while let Some((at, _)) = expiry.front() {
            if *at > now_ns && seen.len() < self.capacity {
                break;
            }
            if let Some((_, key)) = expiry.pop_front() {
                seen.remove(&key);
            }
        }
        let key = (hotkey.to_string(), nonce_ns);
        if seen.contains(&key) {
            return false;
        }
        seen.insert(key.clone());
        expiry.push_back((now_ns.saturating_add(self.retention_ns), key));
        true
    }

    fn retention_ns(&self) -> i128 {
        self.retention_ns
    }
}

/// Where a [`Verifier`] learns which signature scheme a sender's hotkey uses. A hotkey is 32
/// bytes either way, so the header alone cannot say; a server that lets the header decide lets
/// the sender choose how its key is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemeSource {
    /// Trust the sender's `X-Bittensor-Crypto` header, as the SDK's `verify` (11.3.0) does.
    Header,
    /// Hotkeys (ss58) listed here sign with their listed scheme; every other with sr25519, the
    /// SDK's default. The operator's list (`--auth.ed25519-hotkey`) is the trusted source.
    Pinned(BTreeMap<String, Scheme>),
}

impl Default for SchemeSource {
    /// sr25519 for every hotkey: what Bittensor wallets make unless asked otherwise.
    fn default() -> Self {
        SchemeSource::Pinned(BTreeMap::new())
    }
}

impl SchemeSource {
    /// Pin `hotkeys` to ed25519 (every other hotkey sr25519).
    pub fn ed25519(hotkeys: impl IntoIterator<Item = impl Into<String>>) -> Self {
        SchemeSource::Pinned(
            hotkeys
                .into_iter()
                .map(|h| (h.into(), Scheme::Ed25519))
                .collect(),
        )
    }

    /// The source an operator's flags describe: `ed25519_hotkeys` pinned to ed25519, or the
    /// header trusted when `trust_header`. `Err` names an entry that is not an ss58 address.
    pub fn from_flags(ed25519_hotkeys: &[String], trust_header: bool) -> Result<Self, String> {
        if let Some(bad) = ed25519_hotkeys.iter().find(|h| ss58::decode(h).is_err()) {
            return Err(format!("{bad:?} is not an ss58 hotkey address"));
        }
        if trust_header {
            if !ed25519_hotkeys.is_empty() {
                return Err(
                    "pinned ed25519 hotkeys and trusting the declared scheme exclude each other"
                        .into(),
                );
            }
            return Ok(SchemeSource::Header);
        }
        Ok(SchemeSource::ed25519(ed25519_hotkeys.iter().cloned()))
    }

    /// The scheme `sender` signs with, given what its header `declared`.
    pub fn scheme_of(&self, sender: &str, declared: Scheme) -> Result<Scheme, AuthError> {
        let trusted = match self {
            SchemeSource::Header => return Ok(declared),
            SchemeSource::Pinned(pinned) => pinned.get(sender).copied().unwrap_or(Scheme::Sr25519),
        };
        if trusted == declared {
            Ok(trusted)
        } else {
            Err(AuthError::SchemeMismatch { declared, trusted })
        }
    }
}

/// Checks btauth/1 requests addressed to one hotkey.
pub struct Verifier<S: ReplayStore = MemoryReplayStore> {
    self_hotkey: String,
    schemes: SchemeSource,
    max_age_ns: i128,
    allowed_skew_ns: i128,
    require_receiver: bool,
    replay: S,
    keys: Mutex<KeyCache>,
}

impl Verifier<MemoryReplayStore> {
    /// A verifier for requests to `self_hotkey` with the SDK's defaults (10 s back, 2 s ahead,
    /// receiver required) and an in-memory replay store.
    pub fn new(self_hotkey: impl Into<String>) -> Self {
        Verifier::with_store(self_hotkey, MemoryReplayStore::default())
    }
}

impl<S: ReplayStore> Verifier<S> {
    /// A verifier with the SDK's defaults and the given replay store.
    pub fn with_store(self_hotkey: impl Into<String>, replay: S) -> Self {
        Verifier {
            self_hotkey: self_hotkey.into(),
            schemes: SchemeSource::default(),
            max_age_ns: DEFAULT_MAX_AGE_NS,
            allowed_skew_ns: DEFAULT_ALLOWED_SKEW_NS,
            require_receiver: true,
            replay,
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// The decoded key of `sender` under `scheme`, from the cache or decoded now.
    fn caller_key(
        &self,
        scheme: Scheme,
        sender: &str,
    ) -> Result<([u8; 32], VerifyingKey), AuthError> {
        let mut cache = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(hit) = cache.get(&(scheme, sender.to_string())) {
            return Ok(hit.clone());
        }
        let (public, _prefix) = ss58::decode(sender)
            .map_err(|_| AuthError::Malformed("invalid hotkey address or signature encoding"))?;
        // A well-formed address whose bytes are no valid key under the declared scheme cannot
        // have signed anything: that is a bad signature, not a malformed header.
        let key = VerifyingKey::from_bytes(scheme, &public).ok_or(AuthError::BadSignature)?;
        if cache.len() >= KEY_CACHE_CAPACITY {
            // Rarely reached; a full reset keeps the cache simple and bounded.
            cache.clear();
        }
        cache.insert((scheme, sender.to_string()), (public, key.clone()));
        Ok((public, key))
    }

    /// Change the freshness window (nanoseconds back and ahead of `now`).
    ///
    /// The replay store must remember pairs at least as long as the whole window, or a replay
    /// inside the gap would pass; this returns `None` in that case.
    pub fn with_window(mut self, max_age_ns: i128, allowed_skew_ns: i128) -> Option<Self> {
        if max_age_ns + allowed_skew_ns > self.replay.retention_ns() {
            return None;
        }
        self.max_age_ns = max_age_ns;
        self.allowed_skew_ns = allowed_skew_ns;
        Some(self)
    }

    /// Take senders' schemes from `schemes` (default: sr25519 unless pinned).
    pub fn with_schemes(mut self, schemes: SchemeSource) -> Self {
        self.schemes = schemes;
        self
    }

    /// Accept requests that are not bound to a receiver (signed with `-`).
    pub fn allow_unbound(mut self) -> Self {
        self.require_receiver = false;
        self
    }

    /// The hotkey requests must be addressed to.
    pub fn self_hotkey(&self) -> &str {
        &self.self_hotkey
    }

    /// Authenticate a request: `method` and `target` (path plus `?query`) as received, `body`
    /// the raw bytes before any parsing, `now_ns` the server's clock.
    pub fn verify(
        &self,
        headers: &AuthHeaders<'_>,
        body: &[u8],
        method: &str,
        target: &str,
        now_ns: i128,
    ) -> Result<Caller, AuthError> {
        // 1. Shape.
        if headers.version != Some("1") {
            return Err(AuthError::Malformed(
                "missing or unsupported X-Bittensor-Version",
            ));
        }
        let sender = headers
            .hotkey
            .filter(|h| !h.is_empty())
            .ok_or(AuthError::Malformed("missing X-Bittensor-Hotkey"))?;
        let nonce: i128 = headers
            .nonce
            .ok_or(AuthError::Malformed("missing X-Bittensor-Nonce"))?
            .trim()
            .parse()
            .map_err(|_| AuthError::Malformed("X-Bittensor-Nonce is not a decimal integer"))?;
        let declared = match headers.crypto {
            None => Scheme::Sr25519,
            Some(value) => Scheme::from_header(value).map_err(AuthError::Malformed)?,
        };
        let raw_signature = headers
            .signature
            .ok_or(AuthError::Malformed("missing X-Bittensor-Signature"))?;
        let raw_signature = raw_signature.trim();
        let signature = hex::decode(raw_signature.strip_prefix("0x").unwrap_or(raw_signature))
            .map_err(|_| AuthError::Malformed("X-Bittensor-Signature is not hex"))?;

        // 2. Receiver.
        match headers.receiver {
            None if self.require_receiver => {
                return Err(AuthError::WrongReceiver(
                    "missing X-Bittensor-Receiver: this server requires receiver-bound requests",
                ));
            }
            Some(r) if r != self.self_hotkey => {
                return Err(AuthError::WrongReceiver(
                    "request was signed for a different receiving hotkey",
                ));
            }
            _ => {}
        }

        // 3. Freshness.
        if now_ns.saturating_sub(nonce) > self.max_age_ns {
            return Err(AuthError::Stale("nonce is older than the freshness window"));
        }
        if nonce.saturating_sub(now_ns) > self.allowed_skew_ns {
            return Err(AuthError::Stale("nonce is too far in the future"));
        }

        // 4. Signature, under the trusted scheme only (which the header must agree with).
        let scheme = self.schemes.scheme_of(sender, declared)?;
        let encoding = AuthError::Malformed("invalid hotkey address or signature encoding");
        let signature: [u8; 64] = signature.try_into().map_err(|_| encoding)?;
        let (public_key, key) = self.caller_key(scheme, sender)?;
        let message = payload(
            scheme,
            method,
            target,
            body,
            nonce,
            sender,
            headers.receiver,
        );
        if !key.verify(message.as_bytes(), &signature) {
            return Err(AuthError::BadSignature);
        }

        // 5. Replay, recorded only once the signature holds so strangers cannot poison it.
        if !self.replay.check_and_store(sender, nonce, now_ns) {
            return Err(AuthError::Replayed);
        }
        Ok(Caller {
            hotkey: sender.to_string(),
            public_key,
            nonce_ns: nonce,
            scheme,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
    const BOB: &str = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty";

    #[test]
    fn payload_has_the_normative_layout() {
        let p = payload(
            Scheme::Sr25519,
            "post",
            "/orchestrate?x=1",
            b"{}",
            5,
            ALICE,
            None,
        );
        let lines: Vec<&str> = p.split('\n').collect();
        assert_eq!(lines.len(), 8);
        assert_eq!(lines[0], "btauth/1");
        assert_eq!(lines[1], "sr25519");
        assert_eq!(lines[2], "POST");
        assert_eq!(lines[3], "/orchestrate?x=1");
        assert_eq!(lines[4], hex::encode(Sha256::digest(b"{}")));
        assert_eq!(lines[5], "5");
        assert_eq!(lines[6], ALICE);
        assert_eq!(lines[7], "-");
    }

    #[test]
    fn replay_store_expires_and_caps() {
        let store = MemoryReplayStore::new(100, 2);
        assert!(store.check_and_store(ALICE, 1, 0));
        assert!(!store.check_and_store(ALICE, 1, 50));
        assert!(store.check_and_store(BOB, 1, 50));
        // Past retention the first pair is forgotten (the freshness window rejects it anyway).
        assert!(store.check_and_store(ALICE, 1, 101));
        // Capacity 2: inserting a third pair evicts the oldest.
        assert!(store.check_and_store(ALICE, 2, 102));
        assert!(store.inner.lock().unwrap().seen.len() <= 2);
    }

    #[test]
    fn window_must_fit_in_retention() {
        let v = Verifier::with_store(BOB, MemoryReplayStore::new(10, 10));
        assert!(v.with_window(9, 2).is_none());
        let v = Verifier::with_store(BOB, MemoryReplayStore::new(10, 10));
        assert!(v.with_window(8, 2).is_some());
    }
}
