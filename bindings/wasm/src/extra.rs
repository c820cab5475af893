//! Conversation calls beyond text, for visitors and agents alike: attachments, read receipts and
//! identity assertions.

use js_sys::Uint8Array;
use sotto_client::client::Body;
use wasm_bindgen::prelude::*;

use crate::client::{SottoClient, fail};
use crate::convert::{self, coded_error, conversation_id};

/// A cursor from JS: a whole number JS holds exactly.
pub(crate) fn cursor(value: f64) -> Result<u64, JsValue> {
    if value.fract() == 0.0 && (0.0..=9_007_199_254_740_991.0).contains(&value) {
        Ok(value as u64)
    } else {
        Err(coded_error("invalid_input", "a cursor is a whole number"))
    }
}

#[wasm_bindgen]
impl SottoClient {
    /// Encrypts a file, uploads it and sends it as an attachment message.
    #[wasm_bindgen(js_name = sendAttachment, unchecked_return_type = "Promise<Sent>")]
    pub fn send_attachment(
        &self,
        conversation: String,
        data: Vec<u8>,
        name: String,
        #[wasm_bindgen(js_name = mimeType)] mime_type: String,
    ) -> js_sys::Promise {
        self.promise(|client| async move {
            let conversation = conversation_id(&conversation)?;
            let sent = client
                .send_attachment(&conversation, &name, &mime_type, &data)
                .await
                .map_err(fail)?;
            Ok(convert::sent(&sent))
        })
    }

    /// Downloads and decrypts the attachment of the stored message at `cursor`.
    #[wasm_bindgen(js_name = fetchAttachment, unchecked_return_type = "Promise<Uint8Array>")]
    pub fn fetch_attachment(
        &self,
        conversation: String,
        #[wasm_bindgen(js_name = cursor)] at: f64,
    ) -> js_sys::Promise {
        self.promise(|client| async move {
            let conversation = conversation_id(&conversation)?;
            let at = cursor(at)?;
            let found = client
                .history(&conversation, Some(at.saturating_add(1)), 1)
                .await
                .map_err(fail)?;
            let info = match found.first() {
                Some(m) if m.cursor == Some(at) => match &m.body {
                    Body::Attachment(info) => info.clone(),
                    _ => return Err(coded_error("invalid_input", "not an attachment")),
                },
                _ => return Err(coded_error("not_found", "no stored message at this cursor")),
            };
            let bytes = client.fetch_attachment(&info).await.map_err(fail)?;
            Ok(Uint8Array::from(&bytes[..]).into())
        })
    }

    /// Tells the other participants this device read everything up to `cursor` (encrypted).
    #[wasm_bindgen(js_name = sendReadReceipt, unchecked_return_type = "Promise<void>")]
    pub fn send_read_receipt(
        &self,
        conversation: String,
        #[wasm_bindgen(js_name = upTo)] up_to: f64,
    ) -> js_sys::Promise {
        self.promise(|client| async move {
            let conversation = conversation_id(&conversation)?;
            client
                .send_read_receipt(&conversation, cursor(up_to)?)
                .await
                .map_err(fail)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Presents an identity assertion (its wire bytes, signed by the company's backend) in the
    /// conversation; the team's members verify it.
    #[wasm_bindgen(js_name = presentIdentity, unchecked_return_type = "Promise<Sent>")]
    pub fn present_identity(&self, conversation: String, assertion: Vec<u8>) -> js_sys::Promise {
        self.promise(|client| async move {
            let conversation = conversation_id(&conversation)?;
            let sent = client
                .present_identity(&conversation, &assertion)
                .await
                .map_err(fail)?;
            Ok(convert::sent(&sent))
        })
    }
}
