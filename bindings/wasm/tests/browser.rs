//! The package as JavaScript sees it, in headless Chromium (`scripts/wasm-test.sh`): errors are
//! `SottoError`s with stable codes, a registered device reopens from IndexedDB, and only one
//! tab's client writes. Registration goes to the scripted peer (`SOTTO_TRANSPORT_PEER`), which
//! accepts devices like the relay; exchanges with a real relay are the client's native tests.

#![cfg(all(target_arch = "wasm32", target_os = "unknown"))]

use std::cell::Cell;

use js_sys::{Array, Function, Object, Promise, Reflect};
use sotto_wasm::SottoClient;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

const WIDGET: &str = "00112233445566778899aabbccddeeff";

fn peer() -> String {
    // Not env!: clippy and other builds of the crate run without the peer.
    match option_env!("SOTTO_TRANSPORT_PEER") {
        Some(addr) => format!("http://{addr}"),
        None => panic!("build with SOTTO_TRANSPORT_PEER=host:port (scripts/wasm-test.sh does)"),
    }
}

thread_local! {
    static NEXT: Cell<u32> = const { Cell::new(0) };
}

fn database(label: &str) -> String {
    let n = NEXT.with(|c| {
        let n = c.get();
        c.set(n + 1);
        n
    });
    format!("sotto-pkg-{label}-{n}-{}", js_sys::Date::now())
}

fn options(fields: &[(&str, &str)]) -> JsValue {
    let object = Object::new();
    for (key, value) in fields {
        Reflect::set(&object, &(*key).into(), &(*value).into()).unwrap();
    }
    object.into()
}

async fn register(fields: &[(&str, &str)]) -> Result<JsValue, JsValue> {
    JsFuture::from(SottoClient::register(options(fields).unchecked_into())).await
}

fn get(object: &JsValue, name: &str) -> JsValue {
    Reflect::get(object, &name.into()).unwrap()
}

fn call(object: &JsValue, method: &str, args: &[JsValue]) -> JsValue {
    let f: Function = get(object, method).unchecked_into();
    let args: Array = args.iter().collect();
    f.apply(object, &args).unwrap()
}

async fn call_async(object: &JsValue, method: &str, args: &[JsValue]) -> Result<JsValue, JsValue> {
    JsFuture::from(call(object, method, args).unchecked_into::<Promise>()).await
}

/// The rejection is a `SottoError` (an `Error`) with this code.
fn assert_code(rejection: &JsValue, code: &str) {
    assert!(rejection.is_instance_of::<js_sys::Error>(), "{rejection:?}");
    assert_eq!(get(rejection, "name").as_string().unwrap(), "SottoError");
    assert_eq!(
        get(rejection, "code").as_string().unwrap(),
        code,
        "{rejection:?}"
    );
    assert!(!get(rejection, "message").as_string().unwrap().is_empty());
}

async fn sleep(ms: i32) {
    let promise = Promise::new(&mut |resolve, _| {
        let set_timeout: Function = get(&js_sys::global(), "setTimeout").unchecked_into();
        set_timeout
            .call2(&JsValue::UNDEFINED, &resolve, &ms.into())
            .unwrap();
    });
    JsFuture::from(promise).await.unwrap();
}

#[wasm_bindgen_test]
async fn failures_are_sotto_errors_with_stable_codes() {
    let db = database("errors");
    let insecure = register(&[
        ("relay", "http://relay.example"),
        ("widgetId", WIDGET),
        ("database", &db),
        ("kind", "visitor"),
    ])
    .await
    .unwrap_err();
    assert_code(&insecure, "url_insecure_scheme");

    let missing = register(&[("widgetId", WIDGET), ("database", &db), ("kind", "visitor")])
        .await
        .unwrap_err();
    assert_code(&missing, "invalid_input");
    let bad_kind = register(&[
        ("relay", "https://relay.example"),
        ("widgetId", WIDGET),
        ("database", &db),
        ("kind", "admin"),
    ])
    .await
    .unwrap_err();
    assert_code(&bad_kind, "invalid_input");

    let unreachable = register(&[
        ("relay", "http://127.0.0.1:1"),
        ("widgetId", WIDGET),
        ("database", &db),
        ("kind", "visitor"),
    ])
    .await
    .unwrap_err();
    assert_code(&unreachable, "transport");

    // Nothing was registered by the failed attempts.
    let none = JsFuture::from(SottoClient::open(db)).await.unwrap_err();
    assert_code(&none, "not_registered");
}

#[wasm_bindgen_test]
async fn a_registered_device_reopens_and_only_one_tab_writes() {
    let db = database("device");
    let relay = peer();
    let first = register(&[
        ("relay", &relay),
        ("widgetId", WIDGET),
        ("database", &db),
        ("kind", "visitor"),
    ])
    .await
    .unwrap();
    let device = get(&first, "deviceId").as_string().unwrap();
    assert_eq!(device.len(), 64);
    assert!(device.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(get(&first, "isWriter"), JsValue::TRUE);

    // The same profile in another tab: the same device, read-only while the first one lives.
    let second = JsFuture::from(SottoClient::open(db.clone())).await.unwrap();
    assert_eq!(get(&second, "deviceId").as_string().unwrap(), device);
    assert_eq!(get(&second, "isWriter"), JsValue::FALSE);
    let again = register(&[
        ("relay", &relay),
        ("widgetId", WIDGET),
        ("database", &db),
        ("kind", "visitor"),
    ])
    .await
    .unwrap_err();
    assert_code(&again, "already_registered");
    let conversations = call_async(&second, "conversations", &[]).await.unwrap();
    assert_eq!(Array::from(&conversations).length(), 0);
    let bad_id = call_async(&second, "sendText", &["zz".into(), "hi".into()])
        .await
        .unwrap_err();
    assert_code(&bad_id, "invalid_input");

    // The first tab closes: the second takes over writing.
    let waiting: Promise = call(&second, "waitForWriter", &[]).unchecked_into();
    let settled = std::rc::Rc::new(Cell::new(false));
    let flag = std::rc::Rc::clone(&settled);
    let on_settled = Closure::<dyn FnMut(JsValue)>::new(move |_| flag.set(true));
    let _ = waiting.then(&on_settled);
    sleep(200).await;
    assert!(!settled.get(), "no takeover while the writer lives");
    call(&first, "free", &[]);
    JsFuture::from(waiting).await.unwrap();
    assert_eq!(get(&second, "isWriter"), JsValue::TRUE);
}
