//! Prometheus metrics: one [`Metrics`] registry per process, HTTP request counters and latency
//! histograms filled by the [`track`] middleware, and a `GET /metrics` route ([`router`]) any
//! binary mounts. Binaries register their own metrics (scores, weights set, sub-calls, …) with
//! [`Metrics::register`] at start-up.
//!
//! Every name carries the `orchestra_` prefix. What the shared ones mean:
//!
//! | metric | type | labels | meaning |
//! |---|---|---|---|
//! | `orchestra_http_requests_total` | counter | `route`, `method`, `status` | requests served, by matched route and status |
//! | `orchestra_http_request_duration_seconds` | histogram | `route` | time from request to response headers |

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The OpenMetrics text content type Prometheus scrapes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Labels of `orchestra_http_requests_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// The matched route (`/orchestrate`), or `unmatched`.
    pub route: String,
    /// HTTP method.
    pub method: String,
    /// Response status code.
    pub status: u16,
}

/// A single `route` label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The matched route, or `unmatched`.
    pub route: String,
}

/// A histogram family whose histograms use [`latency_buckets`].
pub type LatencyFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Buckets for latencies in seconds: 1 ms to ~33 s, doubling.
pub fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.001, 2.0, 16)
}

/// A latency histogram with [`latency_buckets`].
pub fn latency_histogram() -> Histogram {
    Histogram::new(latency_buckets())
}

/// A histogram family constructed with [`latency_histogram`].
pub fn latency_family<L: Clone + std::hash::Hash + Eq>() -> LatencyFamily<L> {
    Family::new_with_constructor(latency_histogram as fn() -> Histogram)
}

/// One process's registry plus the shared HTTP metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    /// `orchestra_http_requests_total`.
    pub http_requests: Family<HttpLabels, Counter>,
    /// `orchestra_http_request_duration_seconds`.
    pub http_duration: LatencyFamily<RouteLabels>,
}

impl Metrics {
    /// A registry with the `orchestra` prefix and the HTTP metrics registered.
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("orchestra");
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_duration = latency_family::<RouteLabels>();
        registry.register(
            "http_requests",
            "HTTP requests served, by matched route, method and status",
            http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from request to response headers, by matched route",
            http_duration.clone(),
        );
        Arc::new(Metrics {
            registry: Mutex::new(registry),
            http_requests,
            http_duration,
        })
    }

    /// Register a metric (a `Counter`, `Gauge`, `Family`, … — keep a clone to update it).
    /// `name` gets the `orchestra_` prefix; counters get `_total` appended on exposition.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.lock().register(name, help, metric);
    }

    /// The OpenMetrics text exposition of everything registered.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = encode(&mut out, &self.lock()) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        // A poisoned lock only means a panic elsewhere mid-registration; the registry is usable.
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Record one served request.
    pub fn observe_http(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.http_requests
            .get_or_create(&HttpLabels {
                route: route.to_string(),
                method: method.to_string(),
                status,
            })
            .inc();
        self.http_duration
            .get_or_create(&RouteLabels {
                route: route.to_string(),
            })
            .observe(seconds);
    }
}

/// `GET /metrics`, serving `metrics` (mount with `Router::merge`).
pub fn router<S: Clone + Send + Sync + 'static>(metrics: Arc<Metrics>) -> Router<S> {
    Router::new().route(
        "/metrics",
        get(move || {
            let metrics = metrics.clone();
            async move { ([(header::CONTENT_TYPE, CONTENT_TYPE)], metrics.encode()).into_response() }
        }),
    )
}

/// Middleware recording every request in the HTTP metrics. Mount it with
/// `axum::middleware::from_fn_with_state(metrics, track)` as the outermost layer.
pub async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = req.method().as_str().to_string();
    let start = Instant::now();
    let response = next.run(req).await;
    metrics.observe_http(
        &route,
        &method,
        response.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::gauge::Gauge;

    #[test]
    fn exposition_has_http_and_registered_metrics() {
        let m = Metrics::new();
        let g = Gauge::<i64>::default();
        m.register("in_flight", "requests in flight", g.clone());
        g.set(3);
        m.observe_http("/orchestrate", "POST", 200, 0.004);
        m.observe_http("/orchestrate", "POST", 200, 0.002);
        let text = m.encode();
        assert!(
            text.contains(
                "orchestra_http_requests_total{route=\"/orchestrate\",method=\"POST\",status=\"200\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains("orchestra_in_flight 3"), "{text}");
        assert!(
            text.contains(
                "orchestra_http_request_duration_seconds_count{route=\"/orchestrate\"} 2"
            ),
            "{text}"
        );
    }
}
