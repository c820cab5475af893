//! Entry points for the fuzz targets in `core/client/fuzz`, compiled only under `cargo fuzz`
//! (which sets `--cfg fuzzing`): the decoders of what the store and the relay hand the client.
//! Each asserts what must hold for any input, so a fuzzer finds violations as crashes.

use super::records::{Account, ConvRecord, Queued, StoredMessage, TeamRecord, decode_cursor};

fn same_message(a: &StoredMessage, b: &StoredMessage) -> bool {
    a.sender == b.sender
        && a.kind == b.kind
        && a.epoch == b.epoch
        && a.counter == b.counter
        && a.at == b.at
        && a.content.as_slice() == b.content.as_slice()
}

/// Decodes `data` as every store record format. Whatever decodes encodes again, and that
/// decodes to the same record.
pub fn store_records(data: &[u8]) {
    if let Ok(account) = Account::decode(data) {
        let instance = account
            .instance
            .unwrap_or(sotto_core::conversation::Instance([0; 8]));
        let again =
            Account::decode(&account.encode(&instance)).expect("an encoded account decodes");
        assert_eq!(again.instance, Some(instance));
        assert_eq!(again.relay, account.relay);
        assert_eq!(again.widget_id, account.widget_id);
        assert_eq!(
            again.device_secrets.as_slice(),
            account.device_secrets.as_slice()
        );
    }
    if let Ok(team) = TeamRecord::decode(data) {
        let again = TeamRecord::decode(&team.encode()).expect("an encoded team record decodes");
        assert_eq!(again.fingerprint, team.fingerprint);
        assert_eq!(again.verified, team.verified);
    }
    if let Ok(conversation) = ConvRecord::decode(data) {
        let again = ConvRecord::decode(&conversation.encode()).expect("decodes");
        assert_eq!(again, conversation);
    }
    if let Ok(message) = StoredMessage::decode(data) {
        let encoded = message.encode().expect("a decoded message fits its format");
        let again = StoredMessage::decode(&encoded).expect("an encoded message decodes");
        assert!(same_message(&again, &message));
    }
    if let Ok(queued) = Queued::decode(data) {
        let encoded = queued
            .encode()
            .expect("a decoded queued message fits its format");
        let again = Queued::decode(&encoded).expect("an encoded queued message decodes");
        assert!(same_message(&again.message, &queued.message));
        assert_eq!(again.wire, queued.wire);
    }
    if let Ok(cursor) = decode_cursor(data) {
        assert_eq!(super::records::encode_cursor(cursor).as_slice(), data);
    }
}

/// Parses `text` as a push frame and as a team reference. A reference that parses prints in
/// the canonical form, which parses to the same reference.
pub fn relay_text(text: &str) {
    let _ = super::push::parse_frame(text);
    if let Ok(reference) = super::TeamRef::parse(text) {
        let printed = reference.to_string();
        assert_eq!(printed, text.to_ascii_lowercase());
        assert_eq!(super::TeamRef::parse(&printed).expect("parses"), reference);
    }
}
