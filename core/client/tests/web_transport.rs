//! The browser transport in headless Chromium against the scripted peer
//! (`examples/transport_peer.rs`), which `scripts/wasm-test.sh` starts and names in
//! `SOTTO_TRANSPORT_PEER` at build time.

#![cfg(all(target_arch = "wasm32", target_os = "unknown"))]

use serde_json::Value;
use sotto_client::transport::web::{MAX_FRAME_BYTES, MAX_QUEUED_FRAMES, request_with_limit};
use sotto_client::transport::{HttpRequest, Method, PushStream, Transport, WebTransport};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use zeroize::Zeroizing;

wasm_bindgen_test_configure!(run_in_browser);

fn peer() -> &'static str {
    // Not env!: the crate's other targets (and clippy) build without the peer.
    match option_env!("SOTTO_TRANSPORT_PEER") {
        Some(addr) => addr,
        None => panic!("build with SOTTO_TRANSPORT_PEER=host:port (scripts/wasm-test.sh does)"),
    }
}

fn url(path: &str) -> String {
    format!("http://{}{path}", peer())
}

fn get(path: &str) -> HttpRequest {
    HttpRequest {
        method: Method::Get,
        url: url(path),
        bearer: None,
        json: None,
    }
}

#[wasm_bindgen_test]
async fn requests_carry_method_token_and_json_and_no_cookies() {
    let transport = WebTransport::new();
    let response = transport
        .request(HttpRequest {
            method: Method::Post,
            url: url("/echo"),
            bearer: Some(Zeroizing::new("tok-123".into())),
            json: Some(br#"{"a":1}"#.to_vec()),
        })
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    let seen: Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["authorization"], "Bearer tok-123");
    assert_eq!(seen["content_type"], "application/json");
    assert_eq!(seen["body"], r#"{"a":1}"#);
    assert_eq!(seen["cookie"], Value::Null);

    for method in [Method::Get, Method::Put, Method::Delete] {
        let mut request = get("/echo");
        request.method = method;
        let response = transport.request(request).await.unwrap();
        let seen: Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(seen["method"], method.as_str());
        assert_eq!(seen["authorization"], Value::Null);
        assert_eq!(seen["content_type"], Value::Null);
    }
}

#[wasm_bindgen_test]
async fn status_and_retry_after_are_reported() {
    let transport = WebTransport::new();
    let limited = transport.request(get("/status/429")).await.unwrap();
    assert_eq!((limited.status, limited.retry_after), (429, Some(7)));
    let missing = transport.request(get("/status/404")).await.unwrap();
    assert_eq!((missing.status, missing.retry_after), (404, None));
}

#[wasm_bindgen_test]
async fn response_bodies_are_bounded() {
    let exact = request_with_limit(get("/bytes/1000"), 1000).await.unwrap();
    assert_eq!(exact.body, vec![b'x'; 1000]);
    let over = request_with_limit(get("/bytes/1001"), 1000)
        .await
        .unwrap_err();
    assert!(over.0.contains("too large"), "{over}");
    // Bodies in several chunks are put together whole.
    let big = WebTransport::new()
        .request(get(&format!("/bytes/{}", 3 * 1024 * 1024)))
        .await
        .unwrap();
    assert_eq!(big.body.len(), 3 * 1024 * 1024);
    assert!(big.body.iter().all(|&b| b == b'x'));
}

#[wasm_bindgen_test]
async fn an_unreachable_relay_is_a_transport_error() {
    let mut request = get("/echo");
    request.url = "http://127.0.0.1:1/v1/health".into();
    assert!(WebTransport::new().request(request).await.is_err());
    let refused = WebTransport::new()
        .connect_push("ws://127.0.0.1:1/v1/ws", "t")
        .await;
    assert!(refused.is_err());
}

fn push_url() -> String {
    format!("ws://{}/v1/ws", peer())
}

#[wasm_bindgen_test]
async fn push_frames_arrive_in_order_then_the_close_code() {
    let mut push = WebTransport::new()
        .connect_push(&push_url(), "frames-then-4001")
        .await
        .unwrap();
    assert_eq!(push.next_frame().await.unwrap().unwrap(), "one");
    // The binary frame between them is skipped.
    assert_eq!(push.next_frame().await.unwrap().unwrap(), "two ✓");
    assert!(push.next_frame().await.is_none());
    assert_eq!(push.close_code(), Some(4001));
    assert!(push.next_frame().await.is_none());
}

#[wasm_bindgen_test]
async fn the_push_token_travels_url_encoded() {
    let token = "a b&c=d/é?#";
    let mut push = WebTransport::new()
        .connect_push(&push_url(), token)
        .await
        .unwrap();
    assert_eq!(push.next_frame().await.unwrap().unwrap(), token);
    assert!(push.next_frame().await.is_none());
    assert_eq!(push.close_code(), Some(1000));
}

#[wasm_bindgen_test]
async fn a_refused_upgrade_is_an_error() {
    let refused = WebTransport::new()
        .connect_push(&push_url(), "refuse")
        .await
        .unwrap_err();
    assert!(!refused.0.is_empty());
}

#[wasm_bindgen_test]
async fn an_oversized_frame_ends_the_stream_with_an_error() {
    let mut push = WebTransport::new()
        .connect_push(&push_url(), "huge")
        .await
        .unwrap();
    let err = push.next_frame().await.unwrap().unwrap_err();
    assert!(err.0.contains("too large"), "{err}");
    assert!(push.next_frame().await.is_none());
    assert_eq!(push.close_code(), None);
    assert_eq!(
        MAX_FRAME_BYTES,
        16 * 1024 * 1024,
        "the peer's frame is one byte over"
    );
}

#[wasm_bindgen_test]
async fn an_unread_backlog_is_bounded() {
    let transport = WebTransport::new();
    let mut push = transport.connect_push(&push_url(), "flood").await.unwrap();
    // The application does not read while the peer sends 4200 frames (tens of milliseconds on
    // loopback; the margin is for a loaded machine).
    transport.sleep(3000).await;
    for i in 0..MAX_QUEUED_FRAMES {
        assert_eq!(push.next_frame().await.unwrap().unwrap(), format!("f{i}"));
    }
    let err = push.next_frame().await.unwrap().unwrap_err();
    assert!(err.0.contains("unread"), "{err}");
    assert!(push.next_frame().await.is_none());
}

#[wasm_bindgen_test]
async fn a_broken_connection_is_an_error_after_the_frames_before_it() {
    let mut push = WebTransport::new()
        .connect_push(&push_url(), "drop")
        .await
        .unwrap();
    assert_eq!(push.next_frame().await.unwrap().unwrap(), "before the drop");
    let err = push.next_frame().await.unwrap().unwrap_err();
    assert!(err.0.contains("broke"), "{err}");
    assert!(push.next_frame().await.is_none());
    assert_eq!(push.close_code(), None);
}

#[wasm_bindgen_test]
async fn clock_and_timer() {
    let transport = WebTransport::new();
    // 2023-11-14 or later: the browser's clock, in seconds.
    let now = transport.now();
    assert!(now > 1_700_000_000 && now < 10_000_000_000, "{now}");
    let start = js_sys::Date::now();
    transport.sleep(60).await;
    assert!(js_sys::Date::now() - start >= 55.0);
}
