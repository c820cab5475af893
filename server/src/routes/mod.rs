//! The HTTP API: the router, one module per resource, and the middleware every request passes
//! (access log and metrics, panic guard, per-address rate limit, body limits).

pub mod blobs;
pub mod conversations;
pub mod devices;
pub mod envelopes;
pub mod teams;
pub mod widgets;

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use futures_util::FutureExt;
use serde_json::{Value, json};

use crate::auth::LogSlot;
use crate::error::{self, ApiError};
use crate::state::AppState;
use crate::{audit, auth, cors, metrics, openapi, rate_limit, web_root, ws};

/// The relay's router with its middleware.
pub fn router(state: AppState) -> Router {
    // A blob upload carries base64 (4 characters per 3 bytes) inside a small JSON object.
    let blob_body = state
        .settings
        .max_blob_bytes
        .saturating_add(2)
        .saturating_div(3)
        .saturating_mul(4)
        .saturating_add(64 * 1024);
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics::handler))
        .route("/openapi.json", get(openapi::handler))
        .route("/v1/devices", post(devices::register))
        .route("/v1/devices/me", get(devices::me))
        .route("/v1/devices/me/key-agreement", put(devices::rotate))
        .route("/v1/devices/{device_id}", get(devices::get))
        .route("/v1/widgets/{widget_id}", get(widgets::get))
        .route("/v1/auth/challenge", post(auth::challenge))
        .route("/v1/auth/token", post(auth::token))
        .route("/v1/teams", get(teams::list).post(teams::create))
        .route("/v1/teams/{team_id}", get(teams::get))
        .route(
            "/v1/teams/{team_id}/links",
            get(teams::links).post(teams::append),
        )
        .route(
            "/v1/teams/{team_id}/attestation",
            get(teams::get_attestation).put(teams::put_attestation),
        )
        .route(
            "/v1/conversations",
            get(conversations::list).post(conversations::create),
        )
        .route(
            "/v1/conversations/{conversation_id}",
            get(conversations::get).delete(conversations::delete),
        )
        .route(
            "/v1/conversations/{conversation_id}/deletion",
            get(conversations::deletion),
        )
        .route(
            "/v1/conversations/{conversation_id}/epochs",
            get(conversations::epochs).post(conversations::add_epoch),
        )
        .route(
            "/v1/conversations/{conversation_id}/envelopes",
            get(envelopes::list).post(envelopes::post),
        )
        .route(
            "/v1/conversations/{conversation_id}/ack",
            get(envelopes::get_ack).put(envelopes::put_ack),
        )
        .route(
            "/v1/blobs",
            post(blobs::upload).layer(DefaultBodyLimit::max(blob_body)),
        )
        .route(
            "/v1/blobs/{blob_id}",
            get(blobs::fetch).delete(blobs::delete),
        )
        .route("/v1/audit", get(audit::list))
        .route("/v1/ws", get(ws::handler))
        .fallback(web_root::serve)
        .method_not_allowed_fallback(error::method_not_allowed_fallback)
        .layer(DefaultBodyLimit::max(state.settings.max_body_bytes))
        .layer(from_fn_with_state(state.clone(), rate_limit::per_address))
        .layer(from_fn_with_state(state.clone(), request_timeout))
        .layer(from_fn(catch_panic))
        // Outside the rate limit, so a 429 is readable (with its Retry-After) cross-origin.
        .layer(from_fn_with_state(state.clone(), cors::cors))
        .layer(from_fn_with_state(state.clone(), access_log))
        .with_state(state)
}

/// `GET /health`.
async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Logs one line per request (method, route template, status, latency, device id) and counts
/// it. Bodies, query strings, headers and tokens are never logged.
async fn access_log(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method: &'static str = match req.method().as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "OPTIONS" => "OPTIONS",
        _ => "OTHER",
    };
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let slot = LogSlot::default();
    req.extensions_mut().insert(slot.clone());
    let response = next.run(req).await;
    let status = response.status().as_u16();
    state.metrics.request(&route, method, status);
    let device = slot.0.get().map(|d| hex::encode(d.0));
    tracing::info!(
        target: "sotto_relay::access",
        method = %method,
        route = %route,
        status,
        latency_ms = %format_args!("{:.3}", start.elapsed().as_secs_f64() * 1000.0),
        device = %device.as_deref().unwrap_or("-"),
        "request"
    );
    response
}

/// Bounds the time a request may take, reading its body included: hyper's header-read timeout
/// stops a client that sends headers slowly, this one a client that sends its body slowly
/// (or a handler stuck behind the database). A WebSocket upgrade answers at once, so its
/// long life after the upgrade is not affected.
async fn request_timeout(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let limit = std::time::Duration::from_secs(state.settings.limits.request_timeout_secs.max(1));
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::request_timeout().into_response(),
    }
}

/// Turns a panic in a handler into a JSON 500 instead of a dropped connection.
async fn catch_panic(req: Request, next: Next) -> Response {
    match AssertUnwindSafe(next.run(req)).catch_unwind().await {
        Ok(r) => r,
        Err(_) => {
            tracing::error!("request handler panicked");
            ApiError::internal().into_response()
        }
    }
}
