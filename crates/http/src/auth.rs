//! Authenticating requests: which credentials a route accepts ([`RequestAuth`]), the one axum
//! middleware ([`require_auth`]), and every refusal with its status ([`Refusal`]; the table is
//! in the crate docs).
//!
//! A request is authenticated by the first credential it carries that the route accepts:
//! 1. `Authorization: Bearer <key>`, when the route takes API keys ([`ApiKeys`]; the key is
//!    admitted and metered by its owner, e.g. the Ledger's key table);
//! 2. btauth/1 headers (any `X-Bittensor-*` header present), when the route takes signatures:
//!    checked by [`orchestra_protocol::btauth::Verifier`] against the server's own hotkey
//!    (receiver), the freshness window and the replay store, then, with [`Permits`], that the
//!    signer may call at all (a validator permit on the miner);
//! 3. nothing usable: `401 unauthenticated`, naming what the route takes.
//!
//! btauth/1 runs before the permit check so the replay store only records genuine callers.

use crate::clock::now_ns;
use crate::error::json_error;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use orchestra_protocol::btauth::{
    self, AuthError, AuthHeaders, Caller, MemoryReplayStore, SchemeSource, Verifier,
};
use std::sync::Arc;

/// Why a request was refused before reaching its handler (or by a handler's own permission
/// check). [`Refusal::status`] is the one place a refusal becomes an HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No credential the route accepts; the text says what it accepts.
    Unauthenticated(&'static str),
    /// btauth/1 verification failed.
    Btauth(AuthError),
    /// The signer is authenticated but may not make this request; the text says why.
    NotAValidator(String),
    /// The route needs a btauth/1 hotkey and was called with an API key.
    HotkeyRequired(&'static str),
    /// `Authorization` is present but not `Bearer <key>`.
    MalformedAuthorization,
    /// No such API key.
    UnknownKey,
    /// The API key was revoked.
    RevokedKey,
    /// The API key is over its quota.
    OverQuota {
        /// Seconds until the window resets (`Retry-After`).
        retry_after_s: u64,
        /// The tier's limit.
        limit: u64,
        /// Which window (`minute`, `month`).
        window: &'static str,
    },
    /// The body is larger than the server accepts.
    BodyTooLarge {
        /// The limit, bytes.
        limit: usize,
    },
}

impl Refusal {
    /// The HTTP status of this refusal: the table of the crate docs, and the only mapping from
    /// an authentication failure to a status in the workspace.
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::Unauthenticated(_)
            | Refusal::Btauth(
                AuthError::Malformed(_)
                | AuthError::Stale(_)
                | AuthError::BadSignature
                | AuthError::Replayed
                | AuthError::SchemeMismatch { .. },
            )
            | Refusal::MalformedAuthorization
            | Refusal::UnknownKey
            | Refusal::RevokedKey => StatusCode::UNAUTHORIZED,
            Refusal::Btauth(AuthError::WrongReceiver(_))
            | Refusal::NotAValidator(_)
            | Refusal::HotkeyRequired(_) => StatusCode::FORBIDDEN,
            Refusal::OverQuota { .. } => StatusCode::TOO_MANY_REQUESTS,
            Refusal::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }

    /// The machine-readable code of the JSON body (`error`).
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Unauthenticated(_) => "unauthenticated",
            Refusal::Btauth(e) => e.code(),
            Refusal::NotAValidator(_) => "not_a_validator",
            Refusal::HotkeyRequired(_) => "hotkey_required",
            Refusal::MalformedAuthorization => "malformed_authorization",
            Refusal::UnknownKey => "unknown_key",
            Refusal::RevokedKey => "revoked_key",
            Refusal::OverQuota { .. } => "quota_exceeded",
            Refusal::BodyTooLarge { .. } => "body_too_large",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Unauthenticated(accepts) => write!(f, "send {accepts}"),
            Refusal::Btauth(e) => write!(f, "{e}"),
            Refusal::NotAValidator(why) => write!(f, "{why}"),
            Refusal::HotkeyRequired(why) => write!(f, "{why}"),
            Refusal::MalformedAuthorization => {
                write!(f, "expected `Authorization: Bearer <key>`")
            }
            Refusal::UnknownKey => write!(f, "API key not recognised"),
            Refusal::RevokedKey => write!(f, "API key has been revoked"),
            Refusal::OverQuota { limit, window, .. } => {
                write!(f, "quota of {limit} requests per {window} exhausted")
            }
            Refusal::BodyTooLarge { limit } => write!(f, "request body exceeds {limit} bytes"),
        }
    }
}

impl std::error::Error for Refusal {}

impl From<AuthError> for Refusal {
    fn from(e: AuthError) -> Self {
        Refusal::Btauth(e)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut r = json_error(self.status(), self.code(), self.to_string());
        if let Refusal::OverQuota { retry_after_s, .. } = self
            && let Ok(v) = HeaderValue::from_str(&retry_after_s.to_string())
        {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        r
    }
}

/// Who may call a btauth/1 route at all, once the signature holds (the miner: hotkeys with a
/// validator permit in the subnet's metagraph).
pub trait Permits: Send + Sync + 'static {
    /// Whether `hotkey` (ss58) may call.
    fn allows(&self, hotkey: &str) -> bool;
}

/// An API-key table: admits a key and meters the request (the Ledger's `Access`).
pub trait ApiKeys: Send + Sync + 'static {
    /// Admit one request made with `key` at `now_secs`, counting it against the key's quota;
    /// refusals are [`Refusal::UnknownKey`], [`Refusal::RevokedKey`] or
    /// [`Refusal::OverQuota`].
    fn admit_key(&self, key: &str, now_secs: u64) -> Result<KeyCaller, Refusal>;
}

/// A request authenticated by an API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyCaller {
    /// The key's id in its table.
    pub id: i64,
    /// Its tier's name.
    pub tier: &'static str,
}

/// Who made an authenticated request; [`require_auth`] puts it in the request's extensions
/// (`axum::Extension<Credential>`), and for a hotkey also the [`Caller`] itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A btauth/1-signed hotkey.
    Hotkey(Caller),
    /// An API key.
    ApiKey(KeyCaller),
}

impl Credential {
    /// The signing hotkey, when the request was btauth/1-signed.
    pub fn hotkey(&self) -> Option<&Caller> {
        match self {
            Credential::Hotkey(c) => Some(c),
            Credential::ApiKey(_) => None,
        }
    }
}

/// Settings of btauth/1 checking and body buffering.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// Which scheme each sender signs with (default: sr25519 unless pinned to ed25519).
    pub schemes: SchemeSource,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            max_age_ns: btauth::DEFAULT_MAX_AGE_NS,
            allowed_skew_ns: btauth::DEFAULT_ALLOWED_SKEW_NS,
            replay_retention_ns: 60_000_000_000,
            replay_capacity: 200_000,
            body_limit: 4 << 20,
            schemes: SchemeSource::default(),
        }
    }
}

/// Whether any btauth/1 header is present (a request that tried to sign, well or badly).
fn carries_btauth(headers: &HeaderMap) -> bool {
    let h = AuthHeaders::from_lookup(|name| headers.get(name).and_then(|v| v.to_str().ok()));
    [
        h.version,
        h.hotkey,
        h.receiver,
        h.nonce,
        h.signature,
        h.crypto,
    ]
    .iter()
    .any(Option::is_some)
}

/// The credentials one route accepts, and how to check them.
pub struct RequestAuth {
    verifier: Option<Verifier<MemoryReplayStore>>,
    permits: Option<Arc<dyn Permits>>,
    keys: Option<Arc<dyn ApiKeys>>,
    body_limit: usize,
}

impl std::fmt::Debug for RequestAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestAuth")
            .field("self_hotkey", &self.self_hotkey())
            .field("permit_check", &self.permits.is_some())
            .field("api_keys", &self.keys.is_some())
            .field("body_limit", &self.body_limit)
            .finish()
    }
}

impl RequestAuth {
    /// Accept btauth/1 requests addressed to `self_hotkey` (ss58), with `config`'s window,
    /// replay store and body limit. A replay retention shorter than the window is raised to
    /// cover it (a replay inside the gap would otherwise pass).
    pub fn btauth(self_hotkey: impl Into<String>, config: &AuthConfig) -> Self {
        let window = config.max_age_ns.saturating_add(config.allowed_skew_ns);
        let retention = config.replay_retention_ns.max(window);
        let store = || MemoryReplayStore::new(retention, config.replay_capacity);
        let self_hotkey = self_hotkey.into();
        let verifier = Verifier::with_store(self_hotkey.clone(), store())
            .with_window(config.max_age_ns, config.allowed_skew_ns)
            // Unreachable (the retention covers the window); the SDK's window is the fallback.
            .unwrap_or_else(|| Verifier::with_store(self_hotkey, store()))
            .with_schemes(config.schemes.clone());
        RequestAuth {
            verifier: Some(verifier),
            permits: None,
            keys: None,
            body_limit: config.body_limit,
        }
    }

    /// Accept API keys only (from `keys`), bodies up to `body_limit` bytes.
    pub fn api_keys(keys: Arc<dyn ApiKeys>, body_limit: usize) -> Self {
        RequestAuth {
            verifier: None,
            permits: None,
            keys: Some(keys),
            body_limit,
        }
    }

    /// Also accept API keys from `keys` (checked first when `Authorization` is present).
    pub fn with_api_keys(mut self, keys: Arc<dyn ApiKeys>) -> Self {
        self.keys = Some(keys);
        self
    }

    /// Accept btauth/1 signers only when `permits` allows them (else 403 `not_a_validator`).
    pub fn with_permits(mut self, permits: Arc<dyn Permits>) -> Self {
        self.permits = Some(permits);
        self
    }

    /// Also accept btauth/1 requests not bound to a receiver (signed with `-`): for servers
    /// whose callers cannot know which hotkey answers (a subnet behind a gateway).
    pub fn allow_unbound(mut self) -> Self {
        self.verifier = self.verifier.map(Verifier::allow_unbound);
        self
    }

    /// The hotkey btauth/1 requests must be addressed to, if signatures are accepted.
    pub fn self_hotkey(&self) -> Option<&str> {
        self.verifier.as_ref().map(|v| v.self_hotkey())
    }

    /// Largest accepted body, bytes.
    pub fn body_limit(&self) -> usize {
        self.body_limit
    }

    /// Whether the request carries a credential this route could check (an `Authorization`
    /// header where API keys are accepted, or any btauth/1 header where signatures are): a
    /// request without one can be offered another way in, such as paying for the call.
    pub fn offers_credential(&self, headers: &HeaderMap) -> bool {
        let key = self.keys.is_some() && headers.contains_key(header::AUTHORIZATION);
        key || (self.verifier.is_some() && carries_btauth(headers))
    }

    fn accepts(&self) -> &'static str {
        match (self.keys.is_some(), self.verifier.is_some()) {
            (true, true) => "`Authorization: Bearer <key>` or btauth/1 headers",
            (true, false) => "`Authorization: Bearer <key>`",
            (false, _) => "btauth/1 headers (X-Bittensor-*)",
        }
    }

    /// Authenticate one request at `now_ns`: `method` and `uri` as received, `body` the raw
    /// bytes before any parsing.
    pub fn check(
        &self,
        headers: &HeaderMap,
        method: &Method,
        uri: &Uri,
        body: &[u8],
        now_ns: i128,
    ) -> Result<Credential, Refusal> {
        if let Some(keys) = &self.keys
            && let Some(v) = headers.get(header::AUTHORIZATION)
        {
            let key = v
                .to_str()
                .ok()
                .and_then(|s| s.strip_prefix("Bearer "))
                .map(str::trim)
                .ok_or(Refusal::MalformedAuthorization)?;
            let now_secs = u64::try_from(now_ns / 1_000_000_000).unwrap_or(0);
            return keys.admit_key(key, now_secs).map(Credential::ApiKey);
        }
        let h = AuthHeaders::from_lookup(|name| headers.get(name).and_then(|v| v.to_str().ok()));
        let Some(verifier) = self.verifier.as_ref().filter(|_| carries_btauth(headers)) else {
            return Err(Refusal::Unauthenticated(self.accepts()));
        };
        let target = uri
            .path_and_query()
            .map_or_else(|| uri.path(), |pq| pq.as_str());
        let caller = verifier.verify(&h, body, method.as_str(), target, now_ns)?;
        if let Some(permits) = &self.permits
            && !permits.allows(&caller.hotkey)
        {
            return Err(Refusal::NotAValidator(format!(
                "hotkey {} holds no validator permit on this subnet",
                caller.hotkey
            )));
        }
        Ok(Credential::Hotkey(caller))
    }
}

/// Buffer a request body of at most `limit` bytes (a declared `Content-Length` over the limit
/// is refused before reading anything).
pub async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, Refusal> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(Refusal::BodyTooLarge { limit });
    }
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| Refusal::BodyTooLarge { limit })
}

/// The axum middleware of every authenticated route: buffer the body (up to the limit),
/// authenticate with `auth`, and pass the [`Credential`] (and, for a hotkey, the [`Caller`]) on
/// as request extensions; refusals answer with [`Refusal`]'s status and JSON.
///
/// ```
/// use orchestra_http::{AuthConfig, RequestAuth, require_auth};
/// use std::sync::Arc;
///
/// let auth = Arc::new(RequestAuth::btauth("5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty", &AuthConfig::default()));
/// let app: axum::Router = axum::Router::new()
///     .route("/call", axum::routing::post(|| async { "ok" }))
///     .route_layer(axum::middleware::from_fn_with_state(auth, require_auth));
/// ```
pub async fn require_auth(
    State(auth): State<Arc<RequestAuth>>,
    req: Request,
    next: Next,
) -> Response {
    match authenticate(&auth, req).await {
        Ok(req) => next.run(req).await,
        Err(refused) => refused,
    }
}

/// [`require_auth`]'s work, for middleware that adds other ways in (pay per call): buffer the
/// body, authenticate, and return the request with its [`Credential`] (and [`Caller`])
/// extensions, or the refusal to answer with.
pub async fn authenticate(auth: &RequestAuth, req: Request) -> Result<Request, Response> {
    let (parts, body) = req.into_parts();
    let bytes = match read_body(&parts.headers, body, auth.body_limit()).await {
        Ok(b) => b,
        Err(r) => return Err(r.into_response()),
    };
    match auth.check(&parts.headers, &parts.method, &parts.uri, &bytes, now_ns()) {
        Ok(credential) => {
            let mut req = Request::from_parts(parts, Body::from(bytes));
            if let Credential::Hotkey(caller) = &credential {
                tracing::debug!(caller = %caller.hotkey, path = %req.uri().path(), "authenticated");
                req.extensions_mut().insert(caller.clone());
            }
            req.extensions_mut().insert(credential);
            Ok(req)
        }
        Err(r) => {
            tracing::debug!(code = r.code(), path = %parts.uri.path(), "refused: {r}");
            Err(r.into_response())
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Every refusal, its status and code: the crate docs' table, row by row.
    #[test]
    fn refusals_follow_the_table() {
        let rows: [(Refusal, u16, &str); 14] = [
            (Refusal::Unauthenticated("x"), 401, "unauthenticated"),
            (AuthError::Malformed("x").into(), 401, "malformed_auth"),
            (AuthError::Stale("x").into(), 401, "stale_request"),
            (AuthError::BadSignature.into(), 401, "bad_signature"),
            (AuthError::Replayed.into(), 401, "replayed_request"),
            (
                AuthError::SchemeMismatch {
                    declared: orchestra_protocol::Scheme::Ed25519,
                    trusted: orchestra_protocol::Scheme::Sr25519,
                }
                .into(),
                401,
                "scheme_mismatch",
            ),
            (AuthError::WrongReceiver("x").into(), 403, "wrong_receiver"),
            (Refusal::NotAValidator("x".into()), 403, "not_a_validator"),
            (Refusal::HotkeyRequired("x"), 403, "hotkey_required"),
            (
                Refusal::MalformedAuthorization,
                401,
                "malformed_authorization",
            ),
            (Refusal::UnknownKey, 401, "unknown_key"),
            (Refusal::RevokedKey, 401, "revoked_key"),
            (
                Refusal::OverQuota {
                    retry_after_s: 7,
                    limit: 3,
                    window: "minute",
                },
                429,
                "quota_exceeded",
            ),
            (Refusal::BodyTooLarge { limit: 5 }, 413, "body_too_large"),
        ];
        for (r, status, code) in rows {
            assert_eq!((r.status().as_u16(), r.code()), (status, code), "{r:?}");
        }
        let r = Refusal::OverQuota {
            retry_after_s: 7,
            limit: 3,
            window: "minute",
        }
        .into_response();
        assert_eq!(r.headers()[header::RETRY_AFTER], "7");
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
    }

    #[test]
    fn a_short_replay_retention_is_raised_to_cover_the_window() {
        let config = AuthConfig {
            replay_retention_ns: 1,
            ..AuthConfig::default()
        };
        let alice = orchestra_protocol::Hotkey::from_uri("//Alice").unwrap();
        let bob = orchestra_protocol::Hotkey::from_uri("//Bob")
            .unwrap()
            .ss58();
        let auth = RequestAuth::btauth(bob.clone(), &config);
        let now = 1_764_000_000_000_000_000i128;
        let signed = btauth::sign(&alice, "GET", "/x", b"", Some(&bob), now);
        let mut headers = HeaderMap::new();
        for (k, v) in &signed.headers {
            headers.insert(*k, v.parse().unwrap());
        }
        let (m, u) = (Method::GET, Uri::from_static("/x"));
        assert!(auth.check(&headers, &m, &u, b"", now).is_ok());
        // 5 s later the nonce is still fresh, so a 1 ns memory would let the replay through.
        let again = auth.check(&headers, &m, &u, b"", now + 5_000_000_000);
        assert_eq!(again, Err(Refusal::Btauth(AuthError::Replayed)));
    }
}
