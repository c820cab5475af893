//! Rust values as the JS objects `types.rs` declares, and errors as `SottoError`s.

use js_sys::{Object, Reflect};
use sotto_client::Error;
use sotto_client::client::conversation::Outgoing;
use sotto_client::client::{Body, Event, Message, Warning};
use sotto_core::conversation::{ConversationId, MessageKind};
use wasm_bindgen::prelude::*;

/// A rejection: `Error` named `SottoError` with the error's stable `code`. The message names what
/// failed, never a key, token or content (see [`sotto_client::Error`]).
pub fn error(e: &Error) -> JsValue {
    coded_error(e.code(), &e.to_string())
}

/// A `SottoError` with a code of the package itself (bad arguments from JS).
pub fn coded_error(code: &str, message: &str) -> JsValue {
    let error = js_sys::Error::new(message);
    error.set_name("SottoError");
    let _ = Reflect::set(&error, &"code".into(), &code.into());
    error.into()
}

/// A plain object from key/value pairs.
pub fn object(fields: &[(&str, JsValue)]) -> JsValue {
    let object = Object::new();
    for (key, value) in fields {
        let _ = Reflect::set(&object, &(*key).into(), value);
    }
    object.into()
}

/// A number that JS holds exactly (cursors, counters and times are far below 2^53).
pub fn number(n: u64) -> JsValue {
    JsValue::from_f64(n as f64)
}

fn id(bytes: &[u8]) -> JsValue {
    hex::encode(bytes).into()
}

/// Parses a conversation id (32 hex digits).
pub fn conversation_id(hex_id: &str) -> Result<ConversationId, JsValue> {
    let mut bytes = [0u8; 16];
    hex::decode_to_slice(hex_id, &mut bytes)
        .map_err(|_| coded_error("invalid_input", "a conversation id is 32 hex digits"))?;
    Ok(ConversationId(bytes))
}

pub fn sent(outgoing: &Outgoing) -> JsValue {
    object(&[
        ("conversation", id(&outgoing.conversation.0)),
        ("epoch", outgoing.epoch.into()),
        ("counter", outgoing.counter.into()),
        ("cursor", outgoing.cursor.map_or(JsValue::NULL, number)),
    ])
}

fn kind(kind: MessageKind) -> &'static str {
    match kind {
        MessageKind::Text => "text",
        MessageKind::Attachment => "attachment",
        MessageKind::Edit => "edit",
        MessageKind::Delete => "delete",
        MessageKind::Typing => "typing",
        MessageKind::Receipt => "receipt",
        MessageKind::System => "system",
        MessageKind::Identity => "identity",
    }
}

pub fn message(m: &Message) -> JsValue {
    let mut fields = vec![
        ("cursor", m.cursor.map_or(JsValue::NULL, number)),
        ("sender", id(&m.sender.0)),
        ("mine", m.mine.into()),
        ("kind", kind(m.kind).into()),
        ("epoch", m.epoch.into()),
        ("counter", m.counter.into()),
        ("at", number(m.at)),
    ];
    match &m.body {
        Body::Text(text) => fields.push(("text", text.as_str().into())),
        Body::Attachment(a) => fields.push((
            "attachment",
            object(&[
                ("name", a.name().into()),
                ("mimeType", a.mime_type().into()),
                ("size", number(a.size())),
            ]),
        )),
        Body::Other(_) => {
            if let Some(note) = sotto_client::client::system_note(m) {
                fields.push(("text", note.into()));
            }
        }
    }
    object(&fields)
}

fn warning(w: &Warning) -> JsValue {
    match w {
        Warning::Fork { team } => object(&[("kind", "fork".into()), ("team", id(&team.0))]),
        Warning::Rollback { team } => object(&[("kind", "rollback".into()), ("team", id(&team.0))]),
        Warning::BadKeyWrap { team, author, seq } => object(&[
            ("kind", "badKeyWrap".into()),
            ("team", id(&team.0)),
            ("author", id(&author.0)),
            ("seq", number(*seq)),
        ]),
        Warning::Gap {
            conversation,
            sender,
            missing,
        } => object(&[
            ("kind", "gap".into()),
            ("conversation", id(&conversation.0)),
            ("sender", id(&sender.0)),
            ("missing", (*missing).into()),
        ]),
        Warning::UnverifiedIdentity {
            conversation,
            device,
        } => object(&[
            ("kind", "unverifiedIdentity".into()),
            ("conversation", id(&conversation.0)),
            ("device", id(&device.0)),
        ]),
        Warning::Undecryptable {
            conversation,
            cursor,
            code,
        } => object(&[
            ("kind", "undecryptable".into()),
            ("conversation", id(&conversation.0)),
            ("cursor", number(*cursor)),
            ("code", (*code).into()),
        ]),
        Warning::SendFailed { conversation, code } => object(&[
            ("kind", "sendFailed".into()),
            ("conversation", id(&conversation.0)),
            ("code", (*code).into()),
        ]),
        Warning::EpochRefused {
            conversation,
            epoch,
            author,
            code,
        } => object(&[
            ("kind", "epochRefused".into()),
            ("conversation", id(&conversation.0)),
            ("epoch", (*epoch).into()),
            ("author", author.map_or(JsValue::NULL, |a| id(&a.0))),
            ("code", (*code).into()),
        ]),
        Warning::UnverifiedDeletion { conversation, code } => object(&[
            ("kind", "unverifiedDeletion".into()),
            ("conversation", id(&conversation.0)),
            ("code", (*code).into()),
        ]),
        _ => object(&[("kind", "other".into())]),
    }
}

pub fn event(e: &Event) -> JsValue {
    match e {
        Event::Message {
            conversation,
            message: m,
        } => object(&[
            ("type", "message".into()),
            ("conversation", id(&conversation.0)),
            ("message", message(m)),
        ]),
        Event::Sent {
            conversation,
            cursor,
        } => object(&[
            ("type", "sent".into()),
            ("conversation", id(&conversation.0)),
            ("cursor", number(*cursor)),
        ]),
        Event::Typing {
            conversation,
            sender,
            typing,
        } => object(&[
            ("type", "typing".into()),
            ("conversation", id(&conversation.0)),
            ("sender", id(&sender.0)),
            ("typing", (*typing).into()),
        ]),
        Event::Receipt {
            conversation,
            sender,
            read_up_to,
        } => object(&[
            ("type", "receipt".into()),
            ("conversation", id(&conversation.0)),
            ("sender", id(&sender.0)),
            ("readUpTo", number(*read_up_to)),
        ]),
        Event::ConversationStarted { conversation, team } => object(&[
            ("type", "conversationStarted".into()),
            ("conversation", id(&conversation.0)),
            ("team", id(&team.0)),
        ]),
        Event::ConversationDeleted { conversation } => object(&[
            ("type", "conversationDeleted".into()),
            ("conversation", id(&conversation.0)),
        ]),
        Event::TeamChanged { team, seq, .. } => object(&[
            ("type", "teamChanged".into()),
            ("team", id(&team.0)),
            ("seq", number(*seq)),
        ]),
        Event::RemovedFromTeam { team } => {
            object(&[("type", "removedFromTeam".into()), ("team", id(&team.0))])
        }
        Event::IdentityVerified {
            conversation,
            device,
            customer_id,
        } => object(&[
            ("type", "identityVerified".into()),
            ("conversation", id(&conversation.0)),
            ("device", id(&device.0)),
            ("customerId", customer_id.as_str().into()),
        ]),
        Event::Connected => object(&[("type", "connected".into())]),
        Event::Disconnected { code } => object(&[
            ("type", "disconnected".into()),
            ("code", code.map_or(JsValue::NULL, JsValue::from)),
        ]),
        Event::Warning(w) => object(&[("type", "warning".into()), ("warning", warning(w))]),
        _ => object(&[("type", "other".into())]),
    }
}
