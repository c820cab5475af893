//! `GET /v1/ws`: a WebSocket that pushes events to an authenticated device.
//!
//! The token goes in `Authorization: Bearer <token>` or, for browsers (which cannot set headers
//! on a WebSocket), in the `token` query parameter; the relay never logs query strings, but a
//! reverse proxy might, so proxies should drop them from their access logs. After the upgrade the
//! relay sends `{"type":"ready","device_id":hex}`, then every event the device may read (see
//! [`crate::events`]). A client that falls behind gets `{"type":"lagged"}` and resynchronizes
//! over HTTP from its cursors. The relay closes the socket with code 4001 when the token expires
//! (the client re-authenticates and reconnects) and 1001 when it shuts down. Messages from the
//! client are ignored (pings are answered).

use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use crate::auth::{Caller, LogSlot, admit, authenticate};
use crate::db::now;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiQuery, to_hex};
use crate::state::AppState;

/// Seconds between keep-alive pings.
const PING_INTERVAL: Duration = Duration::from_secs(30);
/// Close code for an expired token.
const CLOSE_TOKEN_EXPIRED: u16 = 4001;
/// Close code for a relay shutting down ("going away").
const CLOSE_GOING_AWAY: u16 = 1001;

/// Query of `GET /v1/ws`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WsQuery {
    /// The bearer token, for clients that cannot send headers.
    pub token: Option<String>,
}

/// `GET /v1/ws`.
pub async fn handler(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<WsQuery>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    req: Request,
) -> ApiResult<Response> {
    let header_token = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned());
    let token = header_token
        .or(q.token)
        .ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
    let caller = authenticate(&state, &token).await?;
    admit(&state, &caller, req.extensions().get::<LogSlot>())?;
    let upgrade = upgrade.map_err(|_| {
        ApiError::bad_request(
            "websocket_required",
            "this route only accepts a WebSocket upgrade",
        )
    })?;
    Ok(upgrade
        .on_upgrade(move |socket| run(socket, state, caller))
        .into_response())
}

async fn run(mut socket: WebSocket, state: AppState, caller: Caller) {
    state.metrics.websocket(1);
    let is_visitor = caller.kind == sotto_core::device::DeviceKind::Visitor;
    let mut events = state
        .fanout
        .subscribe_device(caller.tenant_id, caller.device, is_visitor);
    let mut shutdown = state.shutdown.clone();
    let ttl = u64::try_from(caller.expires_at.saturating_sub(now())).unwrap_or(0);
    let expiry = tokio::time::sleep(Duration::from_secs(ttl));
    tokio::pin!(expiry);
    let mut ping = tokio::time::interval(PING_INTERVAL);
    ping.tick().await;

    let ready = serde_json::json!({"type": "ready", "device_id": to_hex(&caller.device.0)});
    if socket
        .send(Message::Text(ready.to_string().into()))
        .await
        .is_err()
    {
        state.metrics.websocket(-1);
        return;
    }
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(e) => {
                    if e.is_for(caller.tenant_id, &caller.device, is_visitor) {
                        if socket.send(Message::Text(e.frame.as_ref().into())).await.is_err() {
                            break;
                        }
                        state.metrics.event_pushed();
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    let lagged = r#"{"type":"lagged"}"#;
                    if socket.send(Message::Text(lagged.into())).await.is_err() {
                        break;
                    }
                }
                Err(RecvError::Closed) => break,
            },
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => {
                if socket.send(Message::Ping(Vec::new().into())).await.is_err() {
                    break;
                }
            }
            () = &mut expiry => {
                close(&mut socket, CLOSE_TOKEN_EXPIRED, "token expired").await;
                break;
            }
            _ = shutdown.changed() => {
                close(&mut socket, CLOSE_GOING_AWAY, "relay shutting down").await;
                break;
            }
        }
    }
    state.metrics.websocket(-1);
}

async fn close(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await;
}
