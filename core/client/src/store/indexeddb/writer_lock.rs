//! One writer per store across tabs and workers, elected with the Web Locks API.
//!
//! A tab that holds the exclusive lock `sotto-store-writer:<database>` may commit; the others
//! read. The browser frees the lock when its holder releases it or when the tab or worker goes
//! away (closed, crashed, navigated), and then grants it to the next waiting request, so a
//! follower that waits takes over without any timeout logic of ours.
//!
//! The lock is held for as long as the promise returned by the request's callback is pending;
//! [`WriterLock`] keeps that promise's resolve function and calls it when dropped.

use js_sys::{Function, Object, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::AbortController;

use super::request::{get, js_error, promise_with_resolvers, set};
use crate::{Error, Result};

#[wasm_bindgen]
extern "C" {
    /// `navigator.locks` (web-sys offers the Web Locks API only behind its unstable-API flag).
    type LockManager;

    #[wasm_bindgen(method, catch, js_name = request)]
    fn request(
        this: &LockManager,
        name: &str,
        options: &Object,
        callback: &Function,
    ) -> core::result::Result<Promise, JsValue>;

    /// A promise, for `catch` with a plain function rather than a Rust closure.
    #[wasm_bindgen(js_name = Promise)]
    type CatchablePromise;

    #[wasm_bindgen(method, js_name = catch)]
    fn catch_with(this: &CatchablePromise, on_rejected: &Function) -> Promise;
}

/// The writer lock's name for a database.
pub(super) fn lock_name(database: &str) -> String {
    format!("sotto-store-writer:{database}")
}

/// The held writer lock; dropping it releases the lock.
pub(super) struct WriterLock {
    release: Function,
}

impl Drop for WriterLock {
    fn drop(&mut self) {
        // Resolving the promise the lock callback returned ends the hold. Calling a resolve
        // function cannot throw.
        let _ = self.release.call0(&JsValue::UNDEFINED);
    }
}

/// A lock request in flight. If the future that made it is dropped before the outcome is known,
/// the request is aborted and, should the browser grant it anyway, released at once: an
/// abandoned request must never hold the lock for the rest of the page's life.
struct PendingRequest {
    release: Option<Function>,
    abort: AbortController,
}

impl Drop for PendingRequest {
    fn drop(&mut self) {
        if let Some(release) = self.release.take() {
            self.abort.abort();
            let _ = release.call0(&JsValue::UNDEFINED);
        }
    }
}

fn lock_manager() -> Result<LockManager> {
    let navigator = get(&js_sys::global(), "navigator")?;
    let locks = get(&navigator, "locks")?;
    if locks.is_undefined() || locks.is_null() {
        return Err(Error::Backend(
            "the Web Locks API is not available (it needs a secure context)".into(),
        ));
    }
    Ok(locks.unchecked_into())
}

/// Asks for the exclusive writer lock of `database`. With `wait`, the future ends when the lock
/// is granted; without, it ends at once with `None` if another holder has it.
pub(super) async fn acquire(database: &str, wait: bool) -> Result<Option<WriterLock>> {
    let locks = lock_manager()?;
    let (held, release, _) = promise_with_resolvers()?;
    let (granted, on_granted, on_failed) = promise_with_resolvers()?;
    let abort = AbortController::new().map_err(js_error)?;
    let pending = PendingRequest {
        release: Some(release.clone()),
        abort,
    };

    let options = Object::new();
    set(&options, "mode", &JsValue::from_str("exclusive"))?;
    if wait {
        set(&options, "signal", &pending.abort.signal())?;
    } else {
        set(&options, "ifAvailable", &JsValue::TRUE)?;
    }
    // Called once by the browser: with the lock, or with null if `ifAvailable` found it taken.
    let callback = Closure::once_into_js(move |lock: JsValue| -> JsValue {
        let is_granted = !lock.is_null();
        let _ = on_granted.call1(&JsValue::UNDEFINED, &JsValue::from_bool(is_granted));
        if is_granted {
            held.into()
        } else {
            JsValue::UNDEFINED
        }
    });
    let request = locks
        .request(&lock_name(database), &options, callback.unchecked_ref())
        .map_err(js_error)?;
    // If the request fails (aborted, no secure context) the callback never runs: end the wait.
    let _ = request
        .unchecked_ref::<CatchablePromise>()
        .catch_with(&on_failed);

    let outcome = JsFuture::from(granted).await;
    let mut pending = pending;
    match outcome {
        Ok(value) if value.as_bool() == Some(true) => {
            let release = pending.release.take();
            Ok(release.map(|release| WriterLock { release }))
        }
        Ok(_) => Ok(None),
        Err(e) => Err(js_error(e)),
    }
}
