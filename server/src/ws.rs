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
//!
//! A socket is held memory, so it is bounded: a client frame or message over
//! `--ws-max-message-bytes` (4 KiB: clients only ever send pings and closes) closes the socket
//! before more of it is buffered; sockets are capped per device, per client address and in total
//! (429 `too_many_connections` at the upgrade); a socket from which nothing, not even a pong,
//! arrives for `--ws-idle-timeout-secs` is closed (4002), and so is one that does not take an
//! event within [`SEND_TIMEOUT`], so a client that stops reading cannot pin queued frames.

use std::net::{IpAddr, Ipv6Addr};
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
use crate::rate_limit::client_address;
use crate::state::AppState;

/// Longest time one frame to the client may take to send; a client that does not read is
/// disconnected rather than buffered for.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Most bytes queued for writing to one socket before sends wait (then time out).
const MAX_WRITE_BUFFER: usize = 256 * 1024;
/// Close code for an expired token.
const CLOSE_TOKEN_EXPIRED: u16 = 4001;
/// Close code for a socket on which the client sent nothing, not even a pong, for too long.
const CLOSE_IDLE: u16 = 4002;
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
    let address = client_address(&req, state.settings.trust_forwarded_for)
        .unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
    let refused = |_| {
        state.metrics.websocket_refused();
        ApiError::too_many_connections("too many open WebSockets")
    };
    // The device slot first: a device at its cap must not use up its address's slots.
    let device_slot = state
        .sockets_per_device
        .acquire((caller.tenant_id, caller.device))
        .map_err(refused)?;
    let address_slot = state
        .sockets_per_address
        .acquire(address)
        .map_err(refused)?;
    let max = state.settings.limits.ws_max_message_bytes.max(128);
    Ok(upgrade
        .max_message_size(max)
        .max_frame_size(max)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        .on_upgrade(move |socket| async move {
            let _slots = (device_slot, address_slot);
            run(socket, state, caller).await;
        })
        .into_response())
}

/// Sends one frame, giving up after [`SEND_TIMEOUT`]; `false` when the socket is done.
async fn send(socket: &mut WebSocket, message: Message) -> bool {
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, socket.send(message)).await,
        Ok(Ok(()))
    )
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
    let idle_timeout = Duration::from_secs(state.settings.limits.ws_idle_timeout_secs.max(3));
    // Three pings per idle period: a live client answers at least one in time.
    let mut ping = tokio::time::interval(idle_timeout / 3);
    ping.tick().await;
    let idle = tokio::time::sleep(idle_timeout);
    tokio::pin!(idle);

    let ready = serde_json::json!({"type": "ready", "device_id": to_hex(&caller.device.0)});
    if !send(&mut socket, Message::Text(ready.to_string().into())).await {
        state.metrics.websocket(-1);
        return;
    }
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(e) => {
                    if e.is_for(caller.tenant_id, &caller.device, is_visitor) {
                        if !send(&mut socket, Message::Text(e.frame.as_ref().into())).await {
                            break;
                        }
                        state.metrics.event_pushed();
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    let lagged = r#"{"type":"lagged"}"#;
                    if !send(&mut socket, Message::Text(lagged.into())).await {
                        break;
                    }
                }
                Err(RecvError::Closed) => break,
            },
            incoming = socket.recv() => match incoming {
                // An oversized frame or message is an error here: tungstenite refused it before
                // buffering more than the limit.
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => idle.as_mut().reset(tokio::time::Instant::now() + idle_timeout),
            },
            _ = ping.tick() => {
                if !send(&mut socket, Message::Ping(Vec::new().into())).await {
                    break;
                }
            }
            () = &mut idle => {
                close(&mut socket, CLOSE_IDLE, "no frame from the client").await;
                break;
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
    let _ = send(
        socket,
        Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })),
    )
    .await;
}
