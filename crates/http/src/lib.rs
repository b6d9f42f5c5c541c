//! The HTTP layer every Orchestra server shares, so a caller meets the same refusal — status,
//! code and JSON shape — whichever server it talks to: `orchestra-miner` (`POST /orchestrate`,
//! `GET /ledger/proposals`), the Ledger API of `orchestra-ledger serve` and of
//! `orchestra-validator`, the validator's `POST /v1/objectives`, and `orchestra-mock-subnet`
//! when it checks signatures.
//!
//! - [`auth`]: [`RequestAuth`] (which credentials a route accepts: btauth/1 addressed to the
//!   server's hotkey, optionally only from permitted hotkeys, and/or API keys) and
//!   [`require_auth`], the one axum middleware that buffers the body (bounded), authenticates
//!   and hands the handler a [`Credential`];
//! - [`Refusal`]: every way authentication refuses a request, and [`Refusal::status`], the one
//!   mapping from refusal to HTTP status (the table below);
//! - [`error`]: the JSON error body `{"error": code, "message": reason}` of every route;
//! - [`shutdown`]: the graceful shutdown signal of every server binary;
//! - `client` (feature `client`): btauth/1 headers for outgoing reqwest requests;
//! - [`clock`]: wall-clock reads for shells (cores take time as an argument).
//!
//! # Refusals
//!
//! | case | status | `error` |
//! |---|---|---|
//! | no credential the route accepts | 401 | `unauthenticated` |
//! | btauth/1 headers missing a field or unparseable | 401 | `malformed_auth` |
//! | nonce older than 10 s or more than 2 s ahead | 401 | `stale_request` |
//! | signature does not verify | 401 | `bad_signature` |
//! | (hotkey, nonce) already accepted | 401 | `replayed_request` |
//! | signed for another receiver, or unbound where a receiver is required | 403 | `wrong_receiver` |
//! | hotkey lacks the permission the route needs (validator permit, Ledger writer) | 403 | `not_a_validator` |
//! | route needs a hotkey, got an API key | 403 | `hotkey_required` |
//! | `Authorization` is not `Bearer <key>` | 401 | `malformed_authorization` |
//! | unknown API key | 401 | `unknown_key` |
//! | revoked API key | 401 | `revoked_key` |
//! | API key over its quota | 429 + `Retry-After` | `quota_exceeded` |
//! | body over the server's limit | 413 | `body_too_large` |
//!
//! 401 means "we do not know who you are" (retry with a correct credential); 403 means "we know
//! who you are, and this request is not yours to make here". A wrong receiver is 403, as the
//! btauth/1 reference allows: the signature is fine but names another server. (421 Misdirected
//! Request would say the same, but RFC 9110 lets a client retry a 421 on another connection
//! automatically, and a retried signed request only comes back as a replay.)

pub mod auth;
#[cfg(feature = "client")]
pub mod client;
pub mod clock;
pub mod error;
pub mod shutdown;

pub use auth::{
    ApiKeys, AuthConfig, Credential, KeyCaller, Permits, Refusal, RequestAuth, authenticate,
    read_body, require_auth,
};
pub use error::{ApiError, ErrorBody, json_error};
pub use orchestra_protocol::btauth::Caller;
pub use shutdown::{PARENT_PID_ENV, shutdown_signal};
