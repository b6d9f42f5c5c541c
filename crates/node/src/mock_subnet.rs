//! The HTTP mock subnet server behind `orchestra-mock-subnet`: serves one or many
//! `mocks/subnets/*.toml` with the very behaviour model the simulator uses
//! ([`orchestra_mocks::MockSubnet::call`]): latency as real sleeps, random failures, load
//! shedding past capacity, output schema versions, prices, and receipts signed with the
//! subnet's key.
//!
//! Routes:
//!
//! | route | what |
//! |---|---|
//! | `<METHOD> /sn/{netuid}/<endpoint path>` | call an endpoint of subnet `netuid` with the method its Ledger entry names (`POST` for most), the request as a JSON body (always available) |
//! | `<METHOD> /<endpoint path>` | the same, when the server serves exactly one subnet |
//! | `GET /subnets` | served subnets: netuid, name, hotkey, base path, endpoints |
//! | `GET /admin/state` | every served subnet's state and its true Ledger entry now |
//! | `POST /admin/schema-version` | `{"netuid": 22, "endpoint": "search", "version": 2}` (`netuid` optional with one subnet) |
//! | `POST /admin/event` | `{"netuid": 22, "event": {"kind": "outage_start"}}`: any `orchestra_mocks::SubnetEvent` |
//! | `GET /healthz`, `GET /metrics` | liveness, Prometheus |
//!
//! The wire format is [`crate::subnet_client`]'s: JSON body in and out, metadata (hotkey,
//! cost, receipt) in `X-Orchestra-*` headers; errors are the model's kinds with their HTTP
//! statuses (503 unavailable/shed, 504 timeout, 500 server error, 400 bad request, 404 unknown
//! endpoint) and a JSON body `{"error": kind, "message": …}`. With `--require-auth`, calls are
//! checked by the shared btauth/1 layer ([`orchestra_http::RequestAuth`], receiver = the
//! subnet's hotkey, unbound requests accepted) and refused with its statuses and codes, as
//! every other server refuses them.
//!
//! Offered load, which drives the model's overload curve, is measured as calls per second: the
//! larger of the last full second's count and the current second's so far. Receipts sign the
//! caller's `X-Orchestra-Started-At-Ms` when it lies within `receipt_skew_ms` of the server's
//! clock (so the caller's proof and the receipt agree), else the server's own start time.
//! Randomness comes from one ChaCha8 stream per subnet seeded by `--seed`; deterministic content
//! depends on the seed and the request only, so an auditor re-running a deterministic call gets
//! the same bytes.

use crate::auth::{ApiError, AuthConfig, RequestAuth, json_error, now_ms, now_ns};
use crate::metrics::{self, Metrics};
use crate::subnet_client::{
    HEADER_COST_RAO, HEADER_RECEIPT_SCHEME, HEADER_RECEIPT_SIGNATURE, HEADER_STARTED_AT_MS,
    HEADER_SUBNET_HOTKEY,
};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use orchestra_http::read_body;
use orchestra_mocks::{CallContext, CallOutcome, MockSet, MockSubnet, SubnetEvent, SubnetState};
use orchestra_protocol::Body;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Server settings.
#[derive(Debug, Clone)]
pub struct MockServerConfig {
    /// World seed: deterministic content and the RNG streams derive from it.
    pub seed: u64,
    /// Multiplies every modelled latency before sleeping (1 = real time, 0 = no sleeps).
    pub latency_scale: f64,
    /// Require `Authorization: Bearer <token>` on `/admin/*` when set.
    pub admin_token: Option<String>,
    /// Refuse calls without a valid btauth/1 signature (bound to the subnet's hotkey or
    /// unbound), with the shared refusal statuses.
    pub require_auth: bool,
    /// How far the caller's start time may be from the server clock and still be signed, ms.
    pub receipt_skew_ms: u64,
    /// Largest accepted request body, bytes.
    pub body_limit: usize,
}

impl Default for MockServerConfig {
    fn default() -> Self {
        MockServerConfig {
            seed: 0,
            latency_scale: 1.0,
            admin_token: None,
            require_auth: false,
            receipt_skew_ms: 30_000,
            body_limit: 1 << 20,
        }
    }
}

#[derive(Debug, Default)]
struct LoadMeter {
    second: u64,
    count: u64,
    last: u64,
}

impl LoadMeter {
    /// Count one call at `now_ms`; returns the offered load (calls/s).
    fn hit(&mut self, now_ms: u64) -> f64 {
        let sec = now_ms / 1000;
        if sec != self.second {
            self.last = if sec == self.second + 1 {
                self.count
            } else {
                0
            };
            self.second = sec;
            self.count = 0;
        }
        self.count += 1;
        self.last.max(self.count) as f64
    }
}

struct Served {
    mock: MockSubnet,
    hotkey: String,
    state: Mutex<SubnetState>,
    rng: Mutex<ChaCha8Rng>,
    load: Mutex<LoadMeter>,
    auth: Option<RequestAuth>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    netuid: u16,
    endpoint: String,
    outcome: String,
}

/// A running set of mock subnets (build with [`MockServer::new`], serve [`MockServer::router`]).
pub struct MockServer {
    subnets: BTreeMap<u16, Served>,
    config: MockServerConfig,
    metrics: Arc<Metrics>,
    calls: Family<CallLabels, Counter>,
}

impl std::fmt::Debug for MockServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockServer")
            .field("subnets", &self.subnets.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The ss58 a mock subnet's neuron goes by: its receipt key, or the netuid's dev key (what the
/// simulator's world uses too).
pub fn subnet_hotkey(mock: &MockSubnet) -> String {
    mock.receipt_key().map_or_else(
        || orchestra_mocks::receipt_dev_key(mock.netuid()).ss58(),
        |k| k.ss58(),
    )
}

impl MockServer {
    /// Serve every subnet of `mocks`.
    pub fn new(mocks: &MockSet, config: MockServerConfig) -> Arc<MockServer> {
        let metrics = Metrics::new();
        let calls = Family::<CallLabels, Counter>::default();
        metrics.register(
            "mock_calls",
            "Calls served by the mock subnets, by netuid, endpoint and outcome",
            calls.clone(),
        );
        let subnets = mocks
            .iter()
            .map(|m| {
                let hotkey = subnet_hotkey(m);
                let key = blake3::derive_key(
                    "orchestra mock-subnet rng v1",
                    &[
                        config.seed.to_le_bytes(),
                        u64::from(m.netuid()).to_le_bytes(),
                    ]
                    .concat(),
                );
                let auth = config.require_auth.then(|| {
                    let c = AuthConfig {
                        body_limit: config.body_limit,
                        ..AuthConfig::default()
                    };
                    RequestAuth::btauth(hotkey.clone(), &c).allow_unbound()
                });
                (
                    m.netuid(),
                    Served {
                        mock: m.clone(),
                        hotkey,
                        state: Mutex::new(m.initial_state()),
                        rng: Mutex::new(ChaCha8Rng::from_seed(key)),
                        load: Mutex::new(LoadMeter::default()),
                        auth,
                    },
                )
            })
            .collect();
        Arc::new(MockServer {
            subnets,
            config,
            metrics,
            calls,
        })
    }

    /// The served netuids.
    pub fn netuids(&self) -> Vec<u16> {
        self.subnets.keys().copied().collect()
    }

    /// The hotkey (ss58) subnet `netuid` signs receipts and answers as.
    pub fn hotkey(&self, netuid: u16) -> Option<&str> {
        self.subnets.get(&netuid).map(|s| s.hotkey.as_str())
    }

    /// Apply a scenario event to subnet `netuid` (what `/admin/event` does).
    pub fn apply(&self, netuid: u16, event: &SubnetEvent) -> Result<(), String> {
        let s = self
            .subnets
            .get(&netuid)
            .ok_or_else(|| format!("subnet {netuid} is not served here"))?;
        let mut state = lock(&s.state);
        s.mock.apply(&mut state, event).map_err(|e| e.to_string())
    }

    /// The router (metrics included).
    pub fn router(self: &Arc<Self>) -> Router {
        let metrics = self.metrics.clone();
        Router::new()
            .route(
                "/healthz",
                get(|| async { json!({"status": "ok"}).to_string() }),
            )
            .route("/subnets", get(list_subnets))
            .route("/admin/state", get(admin_state))
            .route("/admin/schema-version", post(admin_schema_version))
            .route("/admin/event", post(admin_event))
            .fallback(call)
            .with_state(self.clone())
            .merge(metrics::router(metrics.clone()))
            .layer(middleware::from_fn_with_state(metrics, metrics::track))
    }

    fn resolve(&self, path: &str) -> Option<(&Served, String)> {
        if let Some(rest) = path.strip_prefix("/sn/") {
            let (n, tail) = rest.split_once('/').unwrap_or((rest, ""));
            let served = self.subnets.get(&n.parse().ok()?)?;
            return Some((served, format!("/{tail}")));
        }
        if self.subnets.len() == 1 {
            return self.subnets.values().next().map(|s| (s, path.to_string()));
        }
        None
    }

    fn admin_ok(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(token) = &self.config.admin_token else {
            return Ok(());
        };
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given == Some(token.as_str()) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "admin_token",
                "admin routes need `Authorization: Bearer <admin token>`",
            ))
        }
    }

    fn pick(&self, netuid: Option<u16>) -> Result<u16, ApiError> {
        match netuid {
            Some(n) if self.subnets.contains_key(&n) => Ok(n),
            Some(n) => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_subnet",
                format!("subnet {n} is not served here"),
            )),
            None if self.subnets.len() == 1 => Ok(*self.subnets.keys().next().unwrap_or(&0)),
            None => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "netuid_required",
                "this server serves several subnets: give `netuid`",
            )),
        }
    }
}

async fn list_subnets(State(srv): State<Arc<MockServer>>) -> Response {
    let list: Vec<Value> = srv
        .subnets
        .values()
        .map(|s| {
            let entry = s.mock.entry();
            json!({
                "netuid": entry.netuid,
                "name": entry.name,
                "hotkey": s.hotkey,
                "base_path": format!("/sn/{}", entry.netuid),
                "endpoints": entry.endpoints.iter().map(|e| json!({
                    "name": e.name, "method": e.method, "path": e.path,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    axum::Json(json!({ "subnets": list })).into_response()
}

async fn admin_state(State(srv): State<Arc<MockServer>>, headers: HeaderMap) -> Response {
    if let Err(r) = srv.admin_ok(&headers) {
        return r.into_response();
    }
    let list: Vec<Value> = srv
        .subnets
        .values()
        .map(|s| {
            let state = lock(&s.state).clone();
            json!({
                "netuid": s.mock.netuid(),
                "hotkey": s.hotkey,
                "state": state,
                "true_entry": s.mock.true_entry(&state),
            })
        })
        .collect();
    axum::Json(json!({ "subnets": list })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SchemaVersionBody {
    #[serde(default)]
    netuid: Option<u16>,
    endpoint: String,
    version: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventBody {
    #[serde(default)]
    netuid: Option<u16>,
    event: SubnetEvent,
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", e.to_string()))
}

async fn admin_schema_version(
    State(srv): State<Arc<MockServer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let run = || -> Result<Response, ApiError> {
        srv.admin_ok(&headers)?;
        let b: SchemaVersionBody = parse_json(&body)?;
        let netuid = srv.pick(b.netuid)?;
        let event = SubnetEvent::SchemaChange {
            endpoint: b.endpoint,
            version: b.version,
        };
        apply_event(&srv, netuid, &event)
    };
    run().unwrap_or_else(IntoResponse::into_response)
}

async fn admin_event(
    State(srv): State<Arc<MockServer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let run = || -> Result<Response, ApiError> {
        srv.admin_ok(&headers)?;
        let b: EventBody = parse_json(&body)?;
        let netuid = srv.pick(b.netuid)?;
        apply_event(&srv, netuid, &b.event)
    };
    run().unwrap_or_else(IntoResponse::into_response)
}

fn apply_event(srv: &MockServer, netuid: u16, event: &SubnetEvent) -> Result<Response, ApiError> {
    srv.apply(netuid, event)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_event", e))?;
    tracing::info!(netuid, ?event, "applied event");
    let s = &srv.subnets[&netuid];
    let state = lock(&s.state).clone();
    Ok(axum::Json(json!({
        "netuid": netuid,
        "state": state,
        "true_entry": s.mock.true_entry(&state),
    }))
    .into_response())
}

fn set_header(headers: &mut HeaderMap, name: &str, value: &str) {
    // `from_bytes` lower-cases the mixed-case constant names.
    if let (Ok(n), Ok(v)) = (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(value),
    ) {
        headers.insert(n, v);
    }
}

/// Serve one endpoint call (the fallback route).
async fn call(State(srv): State<Arc<MockServer>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Some((served, path)) = srv.resolve(parts.uri.path()) else {
        return json_error(
            StatusCode::NOT_FOUND,
            "unknown_subnet",
            "call /sn/{netuid}/<endpoint path>",
        );
    };
    let bytes = match read_body(&parts.headers, body, srv.config.body_limit).await {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    // The receiver is the subnet the path names, so the check runs here rather than as a
    // route layer; it is the same check and the same refusals.
    if let Some(auth) = &served.auth
        && let Err(r) = auth.check(&parts.headers, &parts.method, &parts.uri, &bytes, now_ns())
    {
        return r.into_response();
    }
    let mock = &served.mock;
    let Some(ep) = mock.entry().endpoints.iter().find(|e| e.path == path) else {
        return json_error(
            StatusCode::NOT_FOUND,
            "unknown_endpoint",
            format!("subnet {} has no endpoint at {path}", mock.netuid()),
        );
    };
    // Each endpoint answers the method its Ledger entry names (a `GET` endpoint too takes its
    // request as a JSON body, as the nodes' subnet client sends it).
    if !ep.method.eq_ignore_ascii_case(parts.method.as_str()) {
        return json_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!(
                "{} {path} of subnet {} is called with {}",
                parts.method,
                mock.netuid(),
                ep.method
            ),
        );
    }
    let endpoint = ep.name.clone();
    let request: Body = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, "malformed_json", e.to_string()),
    };
    let now = now_ms();
    let started_at_ms = parts
        .headers
        .get(HEADER_STARTED_AT_MS)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&t| t.abs_diff(now) <= srv.config.receipt_skew_ms)
        .unwrap_or(now);
    let load = lock(&served.load).hit(now);
    let outcome = {
        let state = lock(&served.state);
        let mut rng = lock(&served.rng);
        mock.call(
            &state,
            &endpoint,
            &request,
            CallContext {
                seed: srv.config.seed,
                now_ms: started_at_ms,
                load,
            },
            &mut *rng,
        )
    };
    let sleep_ms = outcome.latency_ms() as f64 * srv.config.latency_scale;
    if sleep_ms.is_finite() && sleep_ms >= 1.0 {
        tokio::time::sleep(Duration::from_millis(sleep_ms as u64)).await;
    }
    let netuid = mock.netuid();
    let (response, label) = match outcome {
        CallOutcome::Ok {
            response,
            cost_rao,
            receipt,
            ..
        } => {
            let mut r = axum::Json(response).into_response();
            let h = r.headers_mut();
            set_header(h, HEADER_COST_RAO, &cost_rao.to_string());
            set_header(h, HEADER_STARTED_AT_MS, &started_at_ms.to_string());
            if let Some(receipt) = receipt {
                set_header(h, HEADER_RECEIPT_SCHEME, &receipt.scheme);
                set_header(h, HEADER_RECEIPT_SIGNATURE, &receipt.signature);
            }
            (r, "ok".to_string())
        }
        CallOutcome::Err { kind, .. } => {
            let status = StatusCode::from_u16(kind.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let code = serde_json::to_value(kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_else(|| "error".to_string());
            let msg = format!("mock subnet {netuid} failed the call: {code}");
            (json_error(status, &code, msg), code)
        }
    };
    srv.calls
        .get_or_create(&CallLabels {
            netuid,
            endpoint,
            outcome: label,
        })
        .inc();
    let mut response = response;
    set_header(response.headers_mut(), HEADER_SUBNET_HOTKEY, &served.hotkey);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_meter_counts_per_second() {
        let mut m = LoadMeter::default();
        assert_eq!(m.hit(5_000), 1.0);
        assert_eq!(m.hit(5_100), 2.0);
        assert_eq!(m.hit(5_900), 3.0);
        // Next second: the last full second (3) dominates until exceeded.
        assert_eq!(m.hit(6_000), 3.0);
        // A gap of more than a second forgets the past.
        assert_eq!(m.hit(9_000), 1.0);
    }
}
