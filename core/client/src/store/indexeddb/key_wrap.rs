//! The store key at rest in the browser: wrapped by a non-extractable WebCrypto key.
//!
//! The wrapping key is an AES-GCM-256 `CryptoKey` generated with `extractable = false`. It is
//! stored in IndexedDB by structured clone, which keeps the key object (and its
//! non-extractability) without ever handing its bytes to script. The store key is sealed under
//! it with a random 96-bit IV and a fixed label as associated data, and the record
//! `{wrapping_key, iv, wrapped}` is written once, with `add`, so two tabs creating a store at the
//! same time agree on one key.
//!
//! What this protects, and what not:
//!
//! - The store key never sits in the database in clear, and no script API returns the wrapping
//!   key's bytes: records read out of IndexedDB by script (an export, a sync of the data, a
//!   devtools dump) do not open anywhere else.
//! - Script running in the page's origin (an XSS) can still *use* the wrapping key: it can
//!   unwrap the store key as this module does. Non-extractability limits theft of the key, not
//!   use of it by code the page runs; the page's own integrity (CSP, no third-party script)
//!   remains the defence.
//! - On disk, the browser keeps the key object's material inside the profile; against a stolen,
//!   unencrypted disk this adds nothing beyond the operating system's disk encryption.
//!
//! This is the only use of WebCrypto: every other key and every value stays in Rust.

use js_sys::{Array, ArrayBuffer, Object, Uint8Array};
use rand_core::Rng;
use sotto_core::crypto::secret::SecretBytes;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AesGcmParams, AesKeyGenParams, Crypto, CryptoKey, IdbDatabase, SubtleCrypto};
use zeroize::Zeroizing;

use super::request::{self, Mode, dom_error_name, get, js_error, set, wait};
use super::{KEY_STORE, STORE_KEY_RECORD};
use crate::rng::os_rng;
use crate::store::StoreKey;
use crate::{Error, Result};

const IV_LEN: usize = 12;
const STORE_KEY_LEN: usize = 32;
const GCM_TAG_LEN: usize = 16;
const WRAPPED_LEN: usize = STORE_KEY_LEN + GCM_TAG_LEN;
/// Associated data of the wrapping: what the sealed bytes are.
const WRAP_LABEL: &[u8] = b"sotto store key v1";
/// Tries at loading or creating the key when another tab creates it at the same moment.
const ATTEMPTS: usize = 3;

fn subtle() -> Result<SubtleCrypto> {
    let crypto = get(&js_sys::global(), "crypto")?;
    let crypto: Crypto = crypto
        .dyn_into()
        .map_err(|_| Error::Backend("WebCrypto is not available".into()))?;
    Ok(crypto.subtle())
}

fn gcm_params(iv: &[u8]) -> AesGcmParams {
    let params = AesGcmParams::new_with_u8_array("AES-GCM", &Uint8Array::from(iv));
    params.set_additional_data_u8_array(&Uint8Array::from(WRAP_LABEL));
    params
}

/// The store key of the database: unwrapped if it exists, else created, wrapped and saved.
pub(super) async fn load_or_create(db: &IdbDatabase) -> Result<StoreKey> {
    for _ in 0..ATTEMPTS {
        if let Some(key) = load(db).await? {
            return Ok(key);
        }
        match create(db).await {
            Ok(key) => return Ok(key),
            // Another tab saved its key first: use that one.
            Err(Created::Raced) => continue,
            Err(Created::Failed(e)) => return Err(e),
        }
    }
    Err(Error::Backend(
        "the store key kept changing while it was loaded".into(),
    ))
}

/// The wrapping key, for checks (tests, diagnostics): the key object, not its bytes.
pub(super) async fn wrapping_key(db: &IdbDatabase) -> Result<Option<CryptoKey>> {
    let Some(record) = read_record(db).await? else {
        return Ok(None);
    };
    let key = get(&record, "wrapping_key")?;
    key.dyn_into()
        .map(Some)
        .map_err(|_| Error::Corrupt("the wrapping key is not a CryptoKey"))
}

async fn read_record(db: &IdbDatabase) -> Result<Option<JsValue>> {
    let txn = request::transaction(db, &[KEY_STORE], Mode::ReadOnly)?;
    let keys = txn.object_store(KEY_STORE).map_err(js_error)?;
    let record = wait(
        &keys
            .get(&JsValue::from_str(STORE_KEY_RECORD))
            .map_err(js_error)?,
    )
    .await?;
    Ok((!record.is_undefined()).then_some(record))
}

/// Copies a byte array of exactly `len` bytes out of a stored record.
fn exact_bytes(record: &JsValue, field: &str, len: usize) -> Result<Vec<u8>> {
    let bytes: Uint8Array = get(record, field)?
        .dyn_into()
        .map_err(|_| Error::Corrupt("malformed wrapped store key"))?;
    if usize::try_from(bytes.length()).ok() != Some(len) {
        return Err(Error::Corrupt("malformed wrapped store key"));
    }
    Ok(bytes.to_vec())
}

async fn load(db: &IdbDatabase) -> Result<Option<StoreKey>> {
    let Some(record) = read_record(db).await? else {
        return Ok(None);
    };
    let wrapping_key: CryptoKey = get(&record, "wrapping_key")?
        .dyn_into()
        .map_err(|_| Error::Corrupt("the wrapping key is not a CryptoKey"))?;
    let iv = exact_bytes(&record, "iv", IV_LEN)?;
    let wrapped = exact_bytes(&record, "wrapped", WRAPPED_LEN)?;

    let params = gcm_params(&iv);
    let promise = subtle()?
        .decrypt_with_object_and_u8_array(&params, &wrapping_key, &wrapped)
        .map_err(js_error)?;
    let plain = JsFuture::from(promise).await.map_err(|e| {
        if dom_error_name(&e).as_deref() == Some("OperationError") {
            Error::Corrupt("the wrapped store key does not open")
        } else {
            js_error(e)
        }
    })?;
    let plain: ArrayBuffer = plain
        .dyn_into()
        .map_err(|_| Error::Backend("WebCrypto returned no ArrayBuffer".into()))?;
    let view = Uint8Array::new(&plain);
    let mut bytes = Zeroizing::new([0u8; STORE_KEY_LEN]);
    let copied = if view.length() as usize == STORE_KEY_LEN {
        view.copy_to(&mut bytes[..]);
        true
    } else {
        false
    };
    // The JS copy of the key is garbage-collected at some later point; clear it now.
    view.fill(0, 0, view.length());
    if !copied {
        return Err(Error::Corrupt("the wrapped store key has the wrong length"));
    }
    Ok(Some(StoreKey::from_bytes(SecretBytes::new(*bytes))))
}

enum Created {
    Raced,
    Failed(Error),
}

impl From<Error> for Created {
    fn from(e: Error) -> Self {
        Created::Failed(e)
    }
}

async fn create(db: &IdbDatabase) -> core::result::Result<StoreKey, Created> {
    let subtle = subtle()?;
    let usages: Array = ["encrypt", "decrypt"]
        .iter()
        .map(|u| JsValue::from_str(u))
        .collect();
    let generated = subtle
        .generate_key_with_object(&AesKeyGenParams::new("AES-GCM", 256), false, &usages)
        .map_err(js_error)?;
    let wrapping_key: CryptoKey = JsFuture::from(generated)
        .await
        .map_err(js_error)?
        .dyn_into()
        .map_err(|_| Error::Backend("WebCrypto generated no CryptoKey".into()))?;

    let store_key = StoreKey::generate()?;
    let mut iv = [0u8; IV_LEN];
    os_rng()?.fill_bytes(&mut iv);
    let params = gcm_params(&iv);
    let sealing = subtle
        .encrypt_with_object_and_u8_array(&params, &wrapping_key, store_key.secret_bytes().expose())
        .map_err(js_error)?;
    let wrapped: ArrayBuffer = JsFuture::from(sealing)
        .await
        .map_err(js_error)?
        .dyn_into()
        .map_err(|_| Error::Backend("WebCrypto returned no ArrayBuffer".into()))?;

    let record = Object::new();
    set(&record, "wrapping_key", &wrapping_key)?;
    set(&record, "iv", &Uint8Array::from(&iv[..]))?;
    set(&record, "wrapped", &Uint8Array::new(&wrapped))?;
    let txn = request::transaction(db, &[KEY_STORE], Mode::ReadWrite)?;
    let keys = txn.object_store(KEY_STORE).map_err(js_error)?;
    let add = keys
        .add_with_key(&record, &JsValue::from_str(STORE_KEY_RECORD))
        .map_err(js_error)?;
    match wait(&add).await {
        Ok(_) => {}
        Err(_)
            if add.error().ok().flatten().map(|e| e.name()).as_deref()
                == Some("ConstraintError") =>
        {
            return Err(Created::Raced);
        }
        Err(e) => return Err(e.into()),
    }
    request::committed(&txn).await?;
    Ok(store_key)
}
