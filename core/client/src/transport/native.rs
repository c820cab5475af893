//! The native transport: reqwest for HTTP, tokio-tungstenite for the push stream, both over
//! rustls with the ring provider (one TLS stack, the operating system's root certificates).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use zeroize::Zeroizing;

use super::{HttpRequest, HttpResponse, Method, PushStream, Transport, TransportError};

/// Largest response body read into memory; the relay's own limits are far below.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// Largest push frame accepted.
const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// reqwest and tokio-tungstenite on a tokio runtime. Cheap to clone (the HTTP connection pool
/// is shared).
#[derive(Clone, Debug)]
pub struct NativeTransport {
    http: reqwest::Client,
}

impl NativeTransport {
    /// A transport with its own connection pool. Installs rustls' ring provider as the process
    /// default if none is installed yet.
    pub fn new() -> Result<Self, TransportError> {
        // Fails only if a provider is already installed, which is what we need anyway.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| TransportError(e.to_string()))?;
        Ok(NativeTransport { http })
    }
}

fn method(m: Method) -> reqwest::Method {
    match m {
        Method::Get => reqwest::Method::GET,
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
        Method::Delete => reqwest::Method::DELETE,
    }
}

fn error(e: impl std::error::Error) -> TransportError {
    // reqwest's messages may name the URL, which carries only ids, never the token.
    TransportError(e.to_string())
}

impl Transport for NativeTransport {
    type Push = NativePush;

    async fn request(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let mut builder = self.http.request(method(request.method), &request.url);
        if let Some(token) = &request.bearer {
            builder = builder.bearer_auth(token.as_str());
        }
        if let Some(body) = request.json {
            builder = builder
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let mut response = builder.send().await.map_err(error)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(error)? {
            if body.len().saturating_add(chunk.len()) > MAX_RESPONSE_BYTES {
                return Err(TransportError("response too large".into()));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse {
            status,
            body,
            retry_after,
        })
    }

    async fn connect_push(&self, url: &str, token: &str) -> Result<NativePush, TransportError> {
        let mut request = url.into_client_request().map_err(error)?;
        let value = Zeroizing::new(format!("Bearer {token}"));
        let mut value = HeaderValue::from_str(&value)
            .map_err(|_| TransportError("token is not a header value".into()))?;
        value.set_sensitive(true);
        request.headers_mut().insert("authorization", value);
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(MAX_FRAME_BYTES))
            .max_frame_size(Some(MAX_FRAME_BYTES));
        let (socket, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true)
            .await
            .map_err(error)?;
        Ok(NativePush {
            socket,
            close_code: None,
        })
    }

    fn now(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    async fn sleep(&self, millis: u64) {
        tokio::time::sleep(Duration::from_millis(millis)).await;
    }
}

/// The relay's WebSocket on a native target.
#[derive(Debug)]
pub struct NativePush {
    socket: WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>,
    close_code: Option<u16>,
}

impl PushStream for NativePush {
    async fn next_frame(&mut self) -> Option<Result<String, TransportError>> {
        loop {
            match self.socket.next().await? {
                Ok(Message::Text(text)) => return Some(Ok(text.as_str().to_owned())),
                Ok(Message::Close(frame)) => {
                    self.close_code = frame.map(|f| u16::from(f.code));
                    return None;
                }
                // tungstenite answers pings itself; binary frames are not part of the API.
                Ok(_) => continue,
                Err(e) => return Some(Err(error(e))),
            }
        }
    }

    fn close_code(&self) -> Option<u16> {
        self.close_code
    }
}
