//! Prometheus metrics in the text exposition format (version 0.0.4), written by hand: a few
//! counters and a gauge do not need a metrics crate.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

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

/// `GET /metrics`.
pub async fn handler(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
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
