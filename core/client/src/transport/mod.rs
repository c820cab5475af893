//! How the client reaches a relay: HTTP requests, a push stream, a clock and a timer.
//!
//! The client is written once and runs on native targets and in the browser; everything that
//! differs between them sits behind the [`Transport`] trait, which is deliberately small:
//!
//! - [`Transport::request`]: one HTTP request with an optional JSON body and bearer token;
//! - [`Transport::connect_push`]: opens the relay's WebSocket (`GET /v1/ws`) and returns a
//!   [`PushStream`] of its text frames;
//! - [`Transport::now`] and [`Transport::sleep`]: the platform's clock and timer (the core reads no
//!   clock, and the browser has no `std::time`).
//!
//! Implementations: [`NativeTransport`] (reqwest and tokio-tungstenite over rustls, feature
//! `native-transport`) and `WebTransport` (the browser's `fetch` and `WebSocket`, feature
//! `web-transport`). An implementation
//! does no retries, no authentication and no JSON work: it moves bytes, and reports a failure to
//! reach the relay as [`TransportError`]. Everything else (which URL, tokens, retries, parsing) is
//! the client's, so it behaves the same everywhere.
//!
//! # Async on native and wasm32
//!
//! As for [`Store`](crate::store::Store), methods return `impl Future + MaybeSend`: `Send` on
//! native (so a multi-threaded runtime can run the client), no bound on wasm32 (browser futures
//! hold JS values). Implement them with plain `async fn`. The client is generic over its transport.
//!
//! # URL policy
//!
//! [`RelayUrl::parse`] accepts `https://` only, and `http://` only for loopback hosts (`localhost`,
//! `127.0.0.0/8`, `[::1]`) for development; pushes then use `wss://` (or `ws://` on loopback).
//! Anything else is a [`UrlError`], so a misconfigured app fails at start instead of sending
//! tokens in clear.

mod url;

#[cfg(all(feature = "native-transport", not(target_arch = "wasm32")))]
mod native;
#[cfg(all(
    feature = "web-transport",
    target_arch = "wasm32",
    target_os = "unknown"
))]
pub mod web;

use core::fmt;
use core::future::Future;

use zeroize::Zeroizing;

use crate::store::{MaybeSend, MaybeSync};

pub use self::url::{RelayUrl, UrlError};
#[cfg(all(feature = "native-transport", not(target_arch = "wasm32")))]
pub use native::NativeTransport;
#[cfg(all(
    feature = "web-transport",
    target_arch = "wasm32",
    target_os = "unknown"
))]
pub use web::{WebPush, WebTransport};

/// HTTP methods the relay API uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `GET`
    Get,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `DELETE`
    Delete,
}

impl Method {
    /// The method's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
}

/// One HTTP request to the relay.
pub struct HttpRequest {
    /// The method.
    pub method: Method,
    /// The full URL: the relay's base ([`RelayUrl::http_url`]) with the path and query.
    pub url: String,
    /// The bearer token for `Authorization: Bearer`, if the route needs one.
    pub bearer: Option<Zeroizing<String>>,
    /// A JSON body (sent with `Content-Type: application/json`).
    pub json: Option<Vec<u8>>,
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL carries only ids; the token and the body stay out of logs.
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("bearer", &self.bearer.as_ref().map(|_| "[redacted]"))
            .field("json_len", &self.json.as_ref().map(Vec::len))
            .finish()
    }
}

/// The relay's answer to an [`HttpRequest`], whatever its status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    /// The HTTP status code.
    pub status: u16,
    /// The body (JSON, or empty).
    pub body: Vec<u8>,
    /// The `Retry-After` header in seconds, when the relay sent one (on 429).
    pub retry_after: Option<u64>,
}

/// A failure to exchange a request or a frame with the relay: the network, DNS, TLS, a closed
/// connection. The message is the platform's and never contains a token or a body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportError(pub String);

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot reach the relay: {}", self.0)
    }
}

impl core::error::Error for TransportError {}

/// The platform side of the client. See the [module docs](self).
pub trait Transport: MaybeSend + MaybeSync {
    /// The push stream this transport opens.
    type Push: PushStream;

    /// Sends one request and returns the relay's response, whatever its status. Fails only if no
    /// response arrived.
    fn request(
        &self,
        request: HttpRequest,
    ) -> impl Future<Output = Result<HttpResponse, TransportError>> + MaybeSend;

    /// Opens the relay's WebSocket at `url` ([`RelayUrl::push_url`]) with `token`. Native
    /// transports send it as `Authorization: Bearer`; browsers, which cannot set headers on a
    /// WebSocket, append `?token=`.
    fn connect_push(
        &self,
        url: &str,
        token: &str,
    ) -> impl Future<Output = Result<Self::Push, TransportError>> + MaybeSend;

    /// Seconds since the Unix epoch, by the platform's clock.
    fn now(&self) -> u64;

    /// Completes after `millis` milliseconds (used to back off between retries).
    fn sleep(&self, millis: u64) -> impl Future<Output = ()> + MaybeSend;
}

/// The relay's WebSocket, as a stream of text frames.
pub trait PushStream: MaybeSend {
    /// The next text frame. `None` when the relay closed the connection (the
    /// [`close code`](PushStream::close_code) says why); an error when the connection broke.
    /// Pings, pongs and binary frames are handled or skipped by the implementation.
    ///
    /// Must be cancel-safe: the client drops this future when its periodic timer fires first,
    /// and a frame must not be lost by that.
    fn next_frame(
        &mut self,
    ) -> impl Future<Output = Option<Result<String, TransportError>>> + MaybeSend;

    /// The close code the relay sent, once the stream ended with one (4001: token expired,
    /// 1001: relay shutting down).
    fn close_code(&self) -> Option<u16>;
}

/// The close code the relay uses when the token expired.
pub const CLOSE_TOKEN_EXPIRED: u16 = 4001;
