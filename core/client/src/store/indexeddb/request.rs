//! IndexedDB's event-based requests as futures, and JS exceptions as typed errors.
//!
//! A request's `success`/`error` handlers are set to the resolve/reject functions of a promise,
//! which a [`JsFuture`] awaits. The continuation then runs in a microtask of the event's
//! dispatch, while the transaction is still active, so a transaction can issue further
//! requests after awaiting one (reads, then checked writes, in one transaction). Handlers are
//! set only while a request is still pending: a request that is already `done` fired its event
//! before anyone listened, and its result is read directly.

use js_sys::{Array, Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{DomException, IdbDatabase, IdbRequest, IdbRequestReadyState, IdbTransaction};

use crate::{Error, Result};

#[wasm_bindgen]
extern "C" {
    /// `IDBDatabase` with the options argument of `transaction()`, which web-sys only offers
    /// behind its unstable-API flag.
    #[wasm_bindgen(js_name = IDBDatabase)]
    type DatabaseWithOptions;

    #[wasm_bindgen(method, catch, js_name = transaction)]
    fn transaction_with_options(
        this: &DatabaseWithOptions,
        stores: &Array,
        mode: &str,
        options: &Object,
    ) -> core::result::Result<IdbTransaction, JsValue>;
}

/// Whether a transaction only reads or also writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mode {
    ReadOnly,
    ReadWrite,
}

/// Starts a transaction over `stores`. Read-write transactions ask for `strict` durability: the
/// browser reports completion only once the data is flushed to disk. A sender chain whose commit
/// was lost in a crash would come back at an old counter and reuse message keys and nonces.
pub(super) fn transaction(db: &IdbDatabase, stores: &[&str], mode: Mode) -> Result<IdbTransaction> {
    let names: Array = stores.iter().map(|s| JsValue::from_str(s)).collect();
    let options = Object::new();
    let (mode, durability) = match mode {
        Mode::ReadOnly => ("readonly", "default"),
        Mode::ReadWrite => ("readwrite", "strict"),
    };
    set(&options, "durability", &JsValue::from_str(durability))?;
    db.unchecked_ref::<DatabaseWithOptions>()
        .transaction_with_options(&names, mode, &options)
        .map_err(js_error)
}

/// A promise and its resolve and reject functions, to hand to event handlers.
pub(super) fn promise_with_resolvers() -> Result<(Promise, Function, Function)> {
    let mut slots = None;
    let promise = Promise::new(&mut |resolve, reject| slots = Some((resolve, reject)));
    let (resolve, reject) = slots.ok_or(Error::Backend("Promise executor did not run".into()))?;
    Ok((promise, resolve, reject))
}

/// Waits for a request and returns its result (`undefined` for an absent record).
pub(super) async fn wait(request: &IdbRequest) -> Result<JsValue> {
    if request.ready_state() == IdbRequestReadyState::Pending {
        let (promise, resolve, reject) = promise_with_resolvers()?;
        request.set_onsuccess(Some(&resolve));
        request.set_onerror(Some(&reject));
        let outcome = JsFuture::from(promise).await;
        request.set_onsuccess(None);
        request.set_onerror(None);
        if outcome.is_err() {
            return Err(request_error(request));
        }
    }
    request.result().map_err(|_| request_error(request))
}

/// Waits until a read-write transaction has committed (and, being `strict`, reached disk).
pub(super) async fn committed(txn: &IdbTransaction) -> Result<()> {
    let (promise, resolve, reject) = promise_with_resolvers()?;
    txn.set_oncomplete(Some(&resolve));
    txn.set_onerror(Some(&reject));
    txn.set_onabort(Some(&reject));
    let outcome = JsFuture::from(promise).await;
    txn.set_oncomplete(None);
    txn.set_onerror(None);
    txn.set_onabort(None);
    match outcome {
        Ok(_) => Ok(()),
        Err(_) => Err(match txn.error() {
            Some(e) => dom_error(&e),
            None => Error::Backend("IndexedDB transaction aborted".into()),
        }),
    }
}

fn request_error(request: &IdbRequest) -> Error {
    match request.error() {
        Ok(Some(e)) => dom_error(&e),
        _ => Error::Backend("IndexedDB request failed".into()),
    }
}

/// The name of a DOMException (`ConstraintError`, `QuotaExceededError`, ...), if `value` is one.
pub(super) fn dom_error_name(value: &JsValue) -> Option<String> {
    value.dyn_ref::<DomException>().map(DomException::name)
}

fn dom_error(e: &DomException) -> Error {
    // Browser messages name the operation and the reason, never a stored value: everything
    // stored is ciphertext or an id that is stored in clear anyway.
    Error::Backend(format!("{}: {}", e.name(), e.message()))
}

/// A thrown or rejected JS value as an error. Only DOMExceptions and `Error`s give their text.
pub(super) fn js_error(value: JsValue) -> Error {
    if let Some(e) = value.dyn_ref::<DomException>() {
        return dom_error(e);
    }
    if let Some(e) = value.dyn_ref::<js_sys::Error>() {
        return Error::Backend(format!("{}: {}", e.name(), e.message()));
    }
    Error::Backend("unexpected JavaScript exception".into())
}

/// `object[key] = value`.
pub(super) fn set(object: &Object, key: &str, value: &JsValue) -> Result<()> {
    Reflect::set(object, &JsValue::from_str(key), value)
        .map_err(js_error)
        .map(|_| ())
}

/// `object[key]`.
pub(super) fn get(object: &JsValue, key: &str) -> Result<JsValue> {
    Reflect::get(object, &JsValue::from_str(key)).map_err(js_error)
}
