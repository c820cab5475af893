//! `SottoClient`: one device, its IndexedDB store and the browser transport.

use core::cell::RefCell;
use std::rc::Rc;

use futures_util::StreamExt;
use futures_util::future::{AbortHandle, Abortable};
use futures_util::lock::Mutex;
use js_sys::{Array, Promise, Reflect};
use sotto_client::client::{EventStream, TeamRef};
use sotto_client::store::{EncryptedStore, IndexedDbStore};
use sotto_client::transport::WebTransport;
use sotto_client::{Client, Error};
use sotto_core::device::DeviceKind;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, spawn_local};

use crate::convert::{self, coded_error, conversation_id};
use crate::online::OnlineListener;
use crate::types::RegisterOptions;

pub(crate) type BrowserClient = Client<IndexedDbStore, WebTransport>;

/// One device of Sotto in this browser profile: registered once, reopened on every page load.
///
/// Only one tab of a profile writes a device's store at a time (Web Locks); in other tabs the
/// client reads, its writing calls reject with code `store_read_only`,
/// `waitForChange()` resolves when the writer committed, and
/// `waitForWriter()` resolves once this tab has taken over.
#[wasm_bindgen]
pub struct SottoClient {
    pub(crate) client: BrowserClient,
    events: Rc<Mutex<EventStream>>,
    /// The background connection and its `online` listener, while started.
    runner: RefCell<Option<(AbortHandle, Option<OnlineListener>)>>,
}

pub(crate) fn fail(e: Error) -> JsValue {
    convert::error(&e)
}

fn text_field(options: &JsValue, name: &str) -> Result<Option<String>, JsValue> {
    let value = Reflect::get(options, &name.into())
        .map_err(|_| coded_error("invalid_input", "options must be an object"))?;
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    value
        .as_string()
        .map(Some)
        .ok_or_else(|| coded_error("invalid_input", &format!("option {name} must be a string")))
}

fn required(options: &JsValue, name: &str) -> Result<String, JsValue> {
    text_field(options, name)?
        .ok_or_else(|| coded_error("invalid_input", &format!("option {name} is required")))
}

async fn encrypted_store(database: &str) -> Result<EncryptedStore<IndexedDbStore>, JsValue> {
    let backend = IndexedDbStore::open(database).await.map_err(fail)?;
    let key = backend.store_key().await.map_err(fail)?;
    EncryptedStore::open(backend, key).await.map_err(fail)
}

impl SottoClient {
    fn wrap(client: BrowserClient) -> SottoClient {
        let events = Rc::new(Mutex::new(client.events()));
        SottoClient {
            client,
            events,
            runner: RefCell::new(None),
        }
    }

    /// Runs `work` with a clone of the client and returns its promise.
    pub(crate) fn promise<F, Fut>(&self, work: F) -> Promise
    where
        F: FnOnce(BrowserClient) -> Fut,
        Fut: Future<Output = Result<JsValue, JsValue>> + 'static,
    {
        future_to_promise(work(self.client.clone()))
    }
}

#[wasm_bindgen]
impl SottoClient {
    /// Registers a new device with the relay and keeps it in a new IndexedDB database.
    #[wasm_bindgen(unchecked_return_type = "Promise<SottoClient>")]
    pub fn register(options: RegisterOptions) -> Promise {
        let options: JsValue = options.into();
        future_to_promise(async move {
            let relay = required(&options, "relay")?;
            let widget_id = required(&options, "widgetId")?;
            let database = required(&options, "database")?;
            let kind = match required(&options, "kind")?.as_str() {
                "visitor" => DeviceKind::Visitor,
                "member" => DeviceKind::Member,
                _ => {
                    return Err(coded_error(
                        "invalid_input",
                        "option kind must be \"visitor\" or \"member\"",
                    ));
                }
            };
            let bootstrap = text_field(&options, "bootstrapCode")?;
            let store = encrypted_store(&database).await?;
            let client = Client::register(
                store,
                WebTransport::new(),
                &relay,
                &widget_id,
                kind,
                bootstrap.as_deref(),
            )
            .await
            .map_err(fail)?;
            Ok(SottoClient::wrap(client).into())
        })
    }

    /// Opens the device kept in the IndexedDB database `database` (registered before).
    #[wasm_bindgen(unchecked_return_type = "Promise<SottoClient>")]
    pub fn open(database: String) -> Promise {
        future_to_promise(async move {
            let store = encrypted_store(&database).await?;
            let client = Client::open(store, WebTransport::new())
                .await
                .map_err(fail)?;
            Ok(SottoClient::wrap(client).into())
        })
    }

    /// This device's id (64 hex digits): what an admin needs to approve or invite it.
    #[wasm_bindgen(getter, js_name = deviceId)]
    pub fn device_id(&self) -> String {
        hex::encode(self.client.device_id().0)
    }

    /// Whether this tab holds the store's writer lock.
    #[wasm_bindgen(getter, js_name = isWriter)]
    pub fn is_writer(&self) -> bool {
        self.client.store().backend().is_writer()
    }

    /// Resolves once this tab holds the store's writer lock (at once if it does).
    #[wasm_bindgen(js_name = waitForWriter, unchecked_return_type = "Promise<void>")]
    pub fn wait_for_writer(&self) -> Promise {
        self.promise(|client| async move {
            client
                .store()
                .backend()
                .wait_for_writer()
                .await
                .map_err(fail)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Resolves when the writing tab has committed something since the call: in a follower tab,
    /// the cue to re-read the history it shows.
    #[wasm_bindgen(js_name = waitForChange, unchecked_return_type = "Promise<void>")]
    pub fn wait_for_change(&self) -> Promise {
        self.promise(|client| async move {
            client.store().backend().wait_for_change().await;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Opens a conversation with a team, as a visitor: `teamRef` is `team_id:fingerprint` as the
    /// company publishes it. Resolves to the conversation id.
    #[wasm_bindgen(js_name = openConversation, unchecked_return_type = "Promise<string>")]
    pub fn open_conversation(
        &self,
        #[wasm_bindgen(js_name = teamRef)] team_ref: String,
    ) -> Promise {
        self.promise(|client| async move {
            let team = TeamRef::parse(&team_ref).map_err(fail)?;
            let conversation = client.open_conversation(team).await.map_err(fail)?;
            Ok(hex::encode(conversation.0).into())
        })
    }

    /// The ids of this device's conversations.
    #[wasm_bindgen(unchecked_return_type = "Promise<string[]>")]
    pub fn conversations(&self) -> Promise {
        self.promise(|client| async move {
            let ids = client.conversations().await.map_err(fail)?;
            let out: Array = ids
                .iter()
                .map(|c| JsValue::from(hex::encode(c.0)))
                .collect();
            Ok(out.into())
        })
    }

    /// Sends a text message. Resolves once it is sealed and stored; if the relay cannot be
    /// reached it stays queued (`cursor: null`) and goes out on reconnect.
    #[wasm_bindgen(js_name = sendText, unchecked_return_type = "Promise<Sent>")]
    pub fn send_text(&self, conversation: String, text: String) -> Promise {
        self.promise(|client| async move {
            let conversation = conversation_id(&conversation)?;
            let sent = client.send_text(&conversation, &text).await.map_err(fail)?;
            Ok(convert::sent(&sent))
        })
    }

    /// Tells the conversation this user is typing (or stopped).
    #[wasm_bindgen(js_name = sendTyping, unchecked_return_type = "Promise<void>")]
    pub fn send_typing(&self, conversation: String, typing: bool) -> Promise {
        self.promise(|client| async move {
            let conversation = conversation_id(&conversation)?;
            client
                .send_typing(&conversation, typing)
                .await
                .map_err(fail)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Up to `limit` stored messages of a conversation, oldest first: the newest ones before
    /// the cursor `before` if given (for paging back), else the newest ones.
    #[wasm_bindgen(unchecked_return_type = "Promise<Message[]>")]
    pub fn history(&self, conversation: String, limit: u32, before: Option<f64>) -> Promise {
        self.promise(|client| async move {
            let conversation = conversation_id(&conversation)?;
            let before = match before {
                Some(b) if (0.0..=9_007_199_254_740_991.0).contains(&b) => Some(b as u64),
                Some(_) => return Err(coded_error("invalid_input", "before must be a cursor")),
                None => None,
            };
            let messages = client
                .history(&conversation, before, limit)
                .await
                .map_err(fail)?;
            let out: Array = messages.iter().map(convert::message).collect();
            Ok(out.into())
        })
    }

    /// One synchronisation round over HTTP (teams, conversations, then the outbox).
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn sync(&self) -> Promise {
        self.promise(|client| async move {
            client.sync().await.map_err(fail)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Starts keeping the client connected in the background (push stream, resync on every
    /// reconnect, outbox); connection changes arrive as events. When the browser comes back
    /// online (its `online` event) the client reconnects and sends its outbox at once.
    /// Starting twice does nothing.
    pub fn start(&self) {
        let mut runner = self.runner.borrow_mut();
        if runner.is_some() {
            return;
        }
        let (handle, registration) = AbortHandle::new_pair();
        let client = self.client.clone();
        spawn_local(async move {
            let _ = Abortable::new(client.run(), registration).await;
        });
        *runner = Some((handle, OnlineListener::add(self.client.clone())));
    }

    /// Stops the background connection started by `start()`.
    pub fn stop(&self) {
        if let Some((handle, online)) = self.runner.borrow_mut().take() {
            handle.abort();
            drop(online);
        }
    }

    /// The next event (messages, receipts, typing, team changes, warnings, connection changes).
    /// Events are delivered in order to one reader; concurrent calls take turns.
    #[wasm_bindgen(js_name = nextEvent, unchecked_return_type = "Promise<SottoEvent>")]
    pub fn next_event(&self) -> Promise {
        let events = Rc::clone(&self.events);
        future_to_promise(async move {
            let mut stream = events.lock().await;
            match stream.next().await {
                Some(event) => Ok(convert::event(&event)),
                None => Err(coded_error("closed", "the client was closed")),
            }
        })
    }
}

impl Drop for SottoClient {
    fn drop(&mut self) {
        self.stop();
    }
}
