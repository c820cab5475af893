#![no_main]

#[path = "../fixture/mod.rs"]
mod fixture;

use libfuzzer_sys::fuzz_target;
use sotto_core::conversation::epoch::sender_key;
use sotto_core::conversation::{MessageContext, ParsedMessage, ReceiverChain};

fuzz_target!(|data: &[u8]| {
    let Ok(parsed) = ParsedMessage::decode(data) else {
        return;
    };
    let f = fixture::get();
    let header = *parsed.header();
    let Ok(key) = sender_key(&f.state, &f.record, &header.sender, header.kind) else {
        return;
    };
    let Ok(verified) = parsed.verify(&key, &MessageContext::of(&f.record)) else {
        return;
    };
    let mut chain = ReceiverChain::new(&f.secret, header.chain());
    if verified.decrypt(&mut chain).is_ok() {
        // Only the genuine message gets this far; it cannot open twice.
        assert!(verified.decrypt(&mut chain).is_err());
    }
});
