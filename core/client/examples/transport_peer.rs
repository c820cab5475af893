//! A scripted HTTP and WebSocket peer for the browser transport's tests (`tests/web.rs`, run by
//! `scripts/wasm-test.sh`), standing in for a relay whose answers the tests choose: it echoes
//! requests, answers with a status or a body size on demand, accepts device registrations, and
//! plays a WebSocket script named by the token. Cross-origin, like a real relay seen from an app's page, so it answers CORS
//! preflights. Listens on 127.0.0.1 only, on a free port it prints as `listening on ADDR`, and
//! exits after five minutes (or when killed).
//!
//! Not an example of the SDK: it lives here because examples may use the crate's native
//! dev-dependencies (axum, tokio) and build with `cargo run --example`.

use std::collections::HashMap;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};

/// Largest body `/bytes/{n}` serves.
const MAX_BYTES: usize = 4 * 1024 * 1024;
/// How long the peer runs before it exits on its own.
const LIFETIME: Duration = Duration::from_secs(300);

fn cors(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization, content-type"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, PUT, DELETE"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("retry-after"),
    );
    response
}

/// Answers with what it received, as JSON.
async fn echo(method: Method, headers: HeaderMap, body: Bytes) -> Response {
    if method == Method::OPTIONS {
        return cors(StatusCode::NO_CONTENT.into_response());
    }
    let text = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let answer = serde_json::json!({
        "method": method.as_str(),
        "authorization": text(header::AUTHORIZATION),
        "content_type": text(header::CONTENT_TYPE),
        "cookie": text(header::COOKIE),
        "body": String::from_utf8_lossy(&body),
    });
    cors((StatusCode::OK, answer.to_string()).into_response())
}

/// Answers with the status in the path; 429 carries `Retry-After: 7`.
async fn status(Path(code): Path<u16>) -> Response {
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = (code, "status").into_response();
    if code == StatusCode::TOO_MANY_REQUESTS {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("7"));
    }
    cors(response)
}

/// Answers with `n` bytes (`n` at most [`MAX_BYTES`]).
async fn bytes(Path(n): Path<usize>) -> Response {
    cors(vec![b'x'; n.min(MAX_BYTES)].into_response())
}

/// Accepts a device registration the way the relay does (201), without checking it: enough for
/// the browser package's tests of registering, storing and reopening a device.
async fn register_device(method: Method) -> Response {
    if method == Method::OPTIONS {
        return cors(StatusCode::NO_CONTENT.into_response());
    }
    cors((StatusCode::CREATED, "{}").into_response())
}

/// Plays the script the token names.
async fn push(upgrade: WebSocketUpgrade, Query(query): Query<HashMap<String, String>>) -> Response {
    let token = query.get("token").cloned().unwrap_or_default();
    if token == "refuse" {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    upgrade
        .max_message_size(64 * 1024 * 1024)
        .on_upgrade(move |socket| play(socket, token))
}

async fn text(socket: &mut WebSocket, frame: String) -> bool {
    socket.send(Message::Text(frame.into())).await.is_ok()
}

async fn close(socket: &mut WebSocket, code: u16) {
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: "".into(),
        })))
        .await;
    // Wait for the browser's answering close frame.
    while let Some(Ok(message)) = socket.recv().await {
        if matches!(message, Message::Close(_)) {
            break;
        }
    }
}

async fn play(mut socket: WebSocket, token: String) {
    match token.as_str() {
        // Three frames (one binary, skipped by the client), then "token expired".
        "frames-then-4001" => {
            let _ = text(&mut socket, "one".into()).await
                && socket
                    .send(Message::Binary(vec![1, 2, 3].into()))
                    .await
                    .is_ok()
                && text(&mut socket, "two ✓".into()).await;
            close(&mut socket, 4001).await;
        }
        // One frame one byte over the client's limit (16 MiB).
        "huge" => {
            let _ = text(&mut socket, "x".repeat(16 * 1024 * 1024 + 1)).await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        // More frames than the client holds unread (4096), then silence.
        "flood" => {
            for i in 0..4200u32 {
                if !text(&mut socket, format!("f{i}")).await {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        // The TCP connection ends without a close frame.
        "drop" => {
            let _ = text(&mut socket, "before the drop".into()).await;
        }
        // Anything else: the token as received, then a normal close.
        other => {
            let _ = text(&mut socket, other.to_owned()).await;
            close(&mut socket, 1000).await;
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let app = Router::new()
        .route("/echo", any(echo))
        .route("/status/{code}", get(status))
        .route("/bytes/{n}", get(bytes))
        .route("/v1/devices", any(register_device))
        .route("/v1/ws", get(push));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on {}", listener.local_addr()?);
    tokio::select! {
        served = axum::serve(listener, app) => served,
        () = tokio::time::sleep(LIFETIME) => Ok(()),
    }
}
