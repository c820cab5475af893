//! Prometheus metrics in the text exposition format (version 0.0.4), written by hand: a few
//! counters and a gauge do not need a metrics crate.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::error::ApiError;
use crate::state::AppState;

/// The relay's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Requests by (route template, method, status).
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    envelopes_stored: AtomicU64,
    ephemeral_forwarded: AtomicU64,
    links_appended: AtomicU64,
    websocket_connections: AtomicI64,
    events_pushed: AtomicU64,
    connections_refused: AtomicU64,
    websockets_refused: AtomicU64,
    quota_refused: AtomicU64,
}

impl Metrics {
    /// Counts one answered request. `route` is the route template (`/v1/teams/{team_id}`), never
    /// the concrete path, so ids do not become label values.
    pub fn request(&self, route: &str, method: &str, status: u16) {
        let mut m = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry((route.to_owned(), method.to_owned(), status))
            .or_insert(0) += 1;
    }

    /// Counts a stored envelope.
    pub fn envelope_stored(&self) {
        self.envelopes_stored.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an ephemeral message forwarded without being stored.
    pub fn ephemeral_forwarded(&self) {
        self.ephemeral_forwarded.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an appended chain link.
    pub fn link_appended(&self) {
        self.links_appended.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an event sent down a WebSocket.
    pub fn event_pushed(&self) {
        self.events_pushed.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a TCP connection closed at once because a connection cap was reached.
    pub fn connection_refused(&self) {
        self.connections_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a WebSocket refused because a socket cap was reached.
    pub fn websocket_refused(&self) {
        self.websockets_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a write refused by a storage quota or the registration throttle.
    pub fn quota_refused(&self) {
        self.quota_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// A WebSocket connection opened (`+1`) or closed (`-1`).
    pub fn websocket(&self, delta: i64) {
        self.websocket_connections
            .fetch_add(delta, Ordering::Relaxed);
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP sotto_relay_http_requests_total HTTP requests answered, by route template, method and status.\n");
        out.push_str("# TYPE sotto_relay_http_requests_total counter\n");
        {
            let m = self.requests.lock().unwrap_or_else(|p| p.into_inner());
            for ((route, method, status), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "sotto_relay_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {n}",
                    escape(route),
                    escape(method)
                );
            }
        }
        let counters = [
            (
                "sotto_relay_envelopes_stored_total",
                "Envelopes stored.",
                &self.envelopes_stored,
            ),
            (
                "sotto_relay_ephemeral_forwarded_total",
                "Ephemeral messages forwarded without being stored.",
                &self.ephemeral_forwarded,
            ),
            (
                "sotto_relay_links_appended_total",
                "Team chain links appended.",
                &self.links_appended,
            ),
            (
                "sotto_relay_ws_events_pushed_total",
                "Events sent to WebSocket clients.",
                &self.events_pushed,
            ),
            (
                "sotto_relay_connections_refused_total",
                "TCP connections closed at once because a connection cap was reached.",
                &self.connections_refused,
            ),
            (
                "sotto_relay_websockets_refused_total",
                "WebSockets refused because a socket cap was reached.",
                &self.websockets_refused,
            ),
            (
                "sotto_relay_quota_refused_total",
                "Writes refused by a storage quota or the registration throttle.",
                &self.quota_refused,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        }
        out.push_str("# HELP sotto_relay_websocket_connections Open WebSocket connections.\n");
        out.push_str("# TYPE sotto_relay_websocket_connections gauge\n");
        let _ = writeln!(
            out,
            "sotto_relay_websocket_connections {}",
            self.websocket_connections.load(Ordering::Relaxed)
        );
        out
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn exposition(metrics: &Metrics) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics.render(),
    )
        .into_response()
}

/// Compares in time independent of where the inputs differ, so the token cannot be guessed a
/// byte at a time from response times.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    let (ha, hb) = (crate::random::hash(a), crate::random::hash(b));
    ha.iter()
        .zip(hb.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// `GET /metrics` on the API listener. The counters describe every tenant's traffic, so they are
/// not public: without `--metrics-token` the route does not exist (404), with it the request
/// must carry `Authorization: Bearer <token>` (401 otherwise).
pub async fn handler(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(expected) = state.settings.metrics_token.as_deref() else {
        return ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "not_found",
            "metrics are not served on this listener",
        )
        .into_response();
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(t) if same_secret(t.as_bytes(), expected.as_bytes()) => exposition(&state.metrics),
        _ => ApiError::unauthorized("the metrics token is missing or wrong").into_response(),
    }
}

/// The router of the separate metrics listener (`--metrics-listen`): `GET /metrics` without a
/// token, since that address is meant to be reachable only by the operator's scraper.
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let m = Arc::clone(&metrics);
                async move { exposition(&m) }
            }),
        )
        .fallback(crate::error::not_found_fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_labels() {
        let m = Metrics::default();
        m.request("/v1/teams/{team_id}", "GET", 200);
        m.request("/v1/teams/{team_id}", "GET", 200);
        m.envelope_stored();
        m.websocket(1);
        let text = m.render();
        assert!(text.contains(
            "sotto_relay_http_requests_total{route=\"/v1/teams/{team_id}\",method=\"GET\",status=\"200\"} 2"
        ));
        assert!(text.contains("sotto_relay_envelopes_stored_total 1"));
        assert!(text.contains("sotto_relay_websocket_connections 1"));
    }
}
