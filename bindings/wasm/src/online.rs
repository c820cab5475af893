//! The page's `online` event, forwarded to a running client so it reconnects and sends its
//! outbox as soon as the browser has a network again, not after its backoff.

use js_sys::{Function, Reflect};
use wasm_bindgen::prelude::*;

use crate::client::BrowserClient;

/// An `online` listener on the global scope (a window or a worker); removed when dropped.
pub(crate) struct OnlineListener {
    target: JsValue,
    callback: Closure<dyn FnMut()>,
}

fn method(target: &JsValue, name: &str) -> Option<Function> {
    Reflect::get(target, &name.into()).ok()?.dyn_into().ok()
}

impl OnlineListener {
    /// Listens for `online` and wakes `client`; `None` where the scope has no events.
    pub(crate) fn add(client: BrowserClient) -> Option<OnlineListener> {
        let target = js_sys::global().into();
        let add = method(&target, "addEventListener")?;
        let callback = Closure::<dyn FnMut()>::new(move || client.wake());
        add.call2(&target, &"online".into(), callback.as_ref())
            .ok()?;
        Some(OnlineListener { target, callback })
    }
}

impl Drop for OnlineListener {
    fn drop(&mut self) {
        if let Some(remove) = method(&self.target, "removeEventListener") {
            let _ = remove.call2(&self.target, &"online".into(), self.callback.as_ref());
        }
    }
}
