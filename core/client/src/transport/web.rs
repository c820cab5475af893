//! The browser transport: `fetch` for HTTP and a `WebSocket` for the push stream, called through
//! web-sys, in a page or a worker.
//!
//! Everything the relay sends is bounded before it is copied into wasm memory: a response body
//! is read chunk by chunk from its stream and refused past [`MAX_RESPONSE_BYTES`]; a push frame's
//! length is checked on the JS string before it is converted, frames beyond
//! [`MAX_FRAME_BYTES`] or a backlog beyond [`MAX_QUEUED_FRAMES`] or [`MAX_QUEUED_BYTES`] end the
//! stream with an error
//! (the client reconnects and resumes from its cursor, so nothing is lost). Binary frames are
//! not part of the API and are dropped without being copied. (This is why the transport is
//! written on web-sys rather than gloo-net, whose WebSocket copies every frame whole into wasm
//! memory and queues without bound.)
//!
//! Requests carry no cookies (`credentials: "omit"`) and are never cached. A page on another
//! origin than the relay's needs that origin in the relay's `--cors-origins`, which also
//! exposes `Retry-After` for [`HttpResponse::retry_after`].

use core::cell::RefCell;
use core::fmt;
use core::task::{Poll, Waker};
use std::collections::VecDeque;
use std::rc::Rc;

use js_sys::{Function, JsString, Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    BinaryType, CloseEvent, MessageEvent, ReadableStreamDefaultReader, ReadableStreamReadResult,
    Request, RequestCache, RequestCredentials, RequestInit, RequestMode, Response, WebSocket,
};

use super::{HttpRequest, HttpResponse, Method, PushStream, Transport, TransportError};

/// Largest response body read into memory; the relay's own limits are far below.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// Largest push frame accepted, in bytes of UTF-8.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;
/// Most frames held while the application does not read them.
pub const MAX_QUEUED_FRAMES: usize = 4096;
/// Most bytes of frames held while the application does not read them.
pub const MAX_QUEUED_BYTES: usize = 64 * 1024 * 1024;
/// How long a request may take before it is aborted.
const REQUEST_TIMEOUT_MS: u32 = 120_000;

#[wasm_bindgen]
extern "C" {
    /// The global `fetch` of a window or a worker.
    #[wasm_bindgen(js_name = fetch)]
    fn fetch_with_request(request: &Request) -> Promise;

    #[wasm_bindgen(js_name = setTimeout, catch)]
    fn set_timeout(handler: &Function, millis: i32) -> Result<JsValue, JsValue>;

    /// `AbortSignal.timeout()` (web-sys does not bind the static method).
    #[wasm_bindgen(js_namespace = AbortSignal, js_name = timeout, catch)]
    fn abort_signal_timeout(millis: u32) -> Result<web_sys::AbortSignal, JsValue>;
}

/// The relay transport of a browser page or worker. Stateless: the browser pools connections.
#[derive(Clone, Copy, Debug, Default)]
pub struct WebTransport;

impl WebTransport {
    /// The transport.
    pub fn new() -> Self {
        WebTransport
    }
}

/// A rejected promise or thrown value as a transport error. Browsers keep the reason of a failed
/// fetch to themselves (a `TypeError` "Failed to fetch"), so that is what is reported.
fn error(value: &JsValue) -> TransportError {
    if let Some(e) = value.dyn_ref::<js_sys::Error>() {
        return TransportError(format!("{}: {}", e.name(), e.message()));
    }
    if let Some(e) = value.dyn_ref::<web_sys::DomException>() {
        return TransportError(format!("{}: {}", e.name(), e.message()));
    }
    TransportError("the browser refused the request".into())
}

fn method(m: Method) -> &'static str {
    m.as_str()
}

fn build_request(request: &HttpRequest) -> Result<Request, TransportError> {
    let init = RequestInit::new();
    init.set_method(method(request.method));
    init.set_mode(RequestMode::Cors);
    init.set_credentials(RequestCredentials::Omit);
    init.set_cache(RequestCache::NoStore);
    if let Ok(signal) = abort_signal_timeout(REQUEST_TIMEOUT_MS) {
        init.set_signal(Some(&signal));
    }
    if let Some(body) = &request.json {
        init.set_body(&Uint8Array::from(body.as_slice()));
    }
    let built = Request::new_with_str_and_init(&request.url, &init).map_err(|e| error(&e))?;
    let headers = built.headers();
    if request.json.is_some() {
        headers
            .set("content-type", "application/json")
            .map_err(|e| error(&e))?;
    }
    if let Some(token) = &request.bearer {
        // The header value is a JS string from here on; the Rust copy stays zeroizing.
        let value = zeroize::Zeroizing::new(format!("Bearer {}", token.as_str()));
        headers
            .set("authorization", &value)
            .map_err(|_| TransportError("the token is not a valid header value".into()))?;
    }
    Ok(built)
}

/// Reads a response body chunk by chunk, refusing more than `limit` bytes.
async fn read_body(response: &Response, limit: usize) -> Result<Vec<u8>, TransportError> {
    let Some(stream) = response.body() else {
        return Ok(Vec::new());
    };
    let reader = ReadableStreamDefaultReader::new(&stream).map_err(|e| error(&e))?;
    let mut body = Vec::new();
    loop {
        let chunk: ReadableStreamReadResult = JsFuture::from(reader.read())
            .await
            .map_err(|e| error(&e))?
            .unchecked_into();
        if chunk.get_done().unwrap_or(true) {
            return Ok(body);
        }
        let bytes: Uint8Array = chunk
            .get_value()
            .dyn_into()
            .map_err(|_| TransportError("the response body is not bytes".into()))?;
        let len = bytes.length() as usize;
        if body.len().saturating_add(len) > limit {
            let _ = reader.cancel();
            return Err(TransportError("response too large".into()));
        }
        let start = body.len();
        body.resize(start + len, 0);
        bytes.copy_to(&mut body[start..]);
    }
}

/// One request, reading at most `limit` bytes of body (the trait method uses
/// [`MAX_RESPONSE_BYTES`]; tests use smaller limits).
pub async fn request_with_limit(
    request: HttpRequest,
    limit: usize,
) -> Result<HttpResponse, TransportError> {
    let built = build_request(&request)?;
    drop(request);
    let response: Response = JsFuture::from(fetch_with_request(&built))
        .await
        .map_err(|e| error(&e))?
        .dyn_into()
        .map_err(|_| TransportError("fetch returned no response".into()))?;
    let retry_after = response
        .headers()
        .get("retry-after")
        .ok()
        .flatten()
        .and_then(|v| v.trim().parse().ok());
    let body = read_body(&response, limit).await?;
    Ok(HttpResponse {
        status: response.status(),
        body,
        retry_after,
    })
}

impl Transport for WebTransport {
    type Push = WebPush;

    async fn request(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        request_with_limit(request, MAX_RESPONSE_BYTES).await
    }

    async fn connect_push(&self, url: &str, token: &str) -> Result<WebPush, TransportError> {
        let separator = if url.contains('?') { '&' } else { '?' };
        let encoded: String = js_sys::encode_uri_component(token).into();
        let full = zeroize::Zeroizing::new(format!("{url}{separator}token={encoded}"));
        WebPush::connect(&full).await
    }

    fn now(&self) -> u64 {
        let millis = js_sys::Date::now();
        if millis.is_finite() && millis > 0.0 {
            (millis / 1000.0) as u64
        } else {
            0
        }
    }

    async fn sleep(&self, millis: u64) {
        let millis = i32::try_from(millis).unwrap_or(i32::MAX);
        let promise = Promise::new(&mut |resolve, _| {
            // setTimeout only fails without a global scope; then the sleep ends at once.
            if set_timeout(&resolve, millis).is_err() {
                let _ = resolve.call0(&JsValue::UNDEFINED);
            }
        });
        let _ = JsFuture::from(promise).await;
    }
}

/// What the socket's event handlers leave for the reader.
#[derive(Default)]
struct Inbox {
    frames: VecDeque<String>,
    /// Bytes in `frames`.
    queued_bytes: usize,
    open: bool,
    /// The stream ended: `Ok(code)` after a clean close by the relay, `Err` if it broke.
    ended: Option<Result<u16, TransportError>>,
    waker: Option<Waker>,
}

impl Inbox {
    fn end(&mut self, outcome: Result<u16, TransportError>) {
        if self.ended.is_none() {
            self.ended = Some(outcome);
        }
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

type Handler<T> = Closure<dyn FnMut(T)>;

/// The relay's WebSocket in a browser. Dropping it closes the socket.
pub struct WebPush {
    socket: WebSocket,
    inbox: Rc<RefCell<Inbox>>,
    close_code: Option<u16>,
    /// Set once the end was reported, after which `next_frame` returns `None`.
    finished: bool,
    _on_open: Handler<JsValue>,
    _on_message: Handler<MessageEvent>,
    _on_close: Handler<CloseEvent>,
}

impl fmt::Debug for WebPush {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebPush")
            .field("close_code", &self.close_code)
            .finish_non_exhaustive()
    }
}

impl Drop for WebPush {
    fn drop(&mut self) {
        self.socket.set_onopen(None);
        self.socket.set_onmessage(None);
        self.socket.set_onclose(None);
        let _ = self.socket.close();
    }
}

/// Whether a text frame may fit in [`MAX_FRAME_BYTES`], judged before it is copied: every UTF-16
/// code unit becomes at least one byte of UTF-8, so a longer string cannot fit. (A string that
/// passes converts to at most three times the limit and is checked again after conversion.)
fn frame_may_fit(text: &JsString) -> bool {
    (text.length() as usize) <= MAX_FRAME_BYTES
}

impl WebPush {
    async fn connect(url: &str) -> Result<WebPush, TransportError> {
        let socket = WebSocket::new(url).map_err(|e| error(&e))?;
        // Binary frames arrive as ArrayBuffers, which are dropped without copying.
        socket.set_binary_type(BinaryType::Arraybuffer);
        let inbox = Rc::new(RefCell::new(Inbox::default()));

        let on_open = {
            let inbox = Rc::clone(&inbox);
            Closure::<dyn FnMut(JsValue)>::new(move |_| {
                let mut inbox = inbox.borrow_mut();
                inbox.open = true;
                if let Some(w) = inbox.waker.take() {
                    w.wake();
                }
            })
        };
        let on_message = {
            let inbox = Rc::clone(&inbox);
            let socket = socket.clone();
            Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
                let Some(text) = event.data().dyn_ref::<JsString>().cloned() else {
                    return;
                };
                let mut inbox = inbox.borrow_mut();
                if inbox.ended.is_some() {
                    return;
                }
                let refused = if !frame_may_fit(&text) {
                    Some("push frame too large")
                } else if inbox.frames.len() >= MAX_QUEUED_FRAMES {
                    Some("too many unread push frames")
                } else {
                    match JsValue::as_string(&text) {
                        Some(frame) if frame.len() > MAX_FRAME_BYTES => {
                            Some("push frame too large")
                        }
                        Some(frame)
                            if inbox.queued_bytes.saturating_add(frame.len())
                                > MAX_QUEUED_BYTES =>
                        {
                            Some("too many unread push frames")
                        }
                        Some(frame) => {
                            inbox.queued_bytes += frame.len();
                            inbox.frames.push_back(frame);
                            None
                        }
                        None => Some("push frame is not text"),
                    }
                };
                if let Some(why) = refused {
                    let _ = socket.close();
                    inbox.end(Err(TransportError(why.into())));
                } else if let Some(w) = inbox.waker.take() {
                    w.wake();
                }
            })
        };
        let on_close = {
            let inbox = Rc::clone(&inbox);
            Closure::<dyn FnMut(CloseEvent)>::new(move |event: CloseEvent| {
                // An `error` event always precedes an unclean close, so the close alone says it.
                let outcome = if event.was_clean() {
                    Ok(event.code())
                } else {
                    Err(TransportError(format!(
                        "the connection to the relay broke (close code {})",
                        event.code()
                    )))
                };
                inbox.borrow_mut().end(outcome);
            })
        };
        socket.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));

        let mut push = WebPush {
            socket,
            inbox,
            close_code: None,
            finished: false,
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
        };
        // Connected once `open` fires; a refused upgrade (bad token, no server) closes first.
        let opened = core::future::poll_fn(|cx| {
            let mut inbox = push.inbox.borrow_mut();
            if inbox.open {
                return Poll::Ready(Ok(()));
            }
            match &inbox.ended {
                Some(Ok(code)) => Poll::Ready(Err(TransportError(format!(
                    "the relay closed the connection at once (close code {code})"
                )))),
                Some(Err(e)) => Poll::Ready(Err(e.clone())),
                None => {
                    inbox.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await;
        match opened {
            Ok(()) => Ok(push),
            Err(e) => {
                push.finished = true;
                Err(e)
            }
        }
    }
}

/// What the reader finds next.
enum Next {
    Frame(String),
    Closed(u16),
    Broke(TransportError),
}

impl PushStream for WebPush {
    async fn next_frame(&mut self) -> Option<Result<String, TransportError>> {
        if self.finished {
            return None;
        }
        let inbox = &self.inbox;
        let next = core::future::poll_fn(|cx| {
            let mut inbox = inbox.borrow_mut();
            // Frames that arrived before the end are delivered first.
            if let Some(frame) = inbox.frames.pop_front() {
                inbox.queued_bytes = inbox.queued_bytes.saturating_sub(frame.len());
                return Poll::Ready(Next::Frame(frame));
            }
            match inbox.ended.take() {
                Some(Ok(code)) => Poll::Ready(Next::Closed(code)),
                Some(Err(e)) => Poll::Ready(Next::Broke(e)),
                None => {
                    inbox.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await;
        match next {
            Next::Frame(frame) => Some(Ok(frame)),
            Next::Closed(code) => {
                self.finished = true;
                self.close_code = Some(code);
                None
            }
            Next::Broke(e) => {
                self.finished = true;
                Some(Err(e))
            }
        }
    }

    fn close_code(&self) -> Option<u16> {
        self.close_code
    }
}
