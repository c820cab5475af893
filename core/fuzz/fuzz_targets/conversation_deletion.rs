#![no_main]

#[path = "../fixture/mod.rs"]
mod fixture;

use libfuzzer_sys::fuzz_target;
use sotto_core::conversation::ConversationDeletion;
use sotto_core::wire::WireObject;

// A conversation deletion comes from the relay (its tombstone): it decodes canonically or not at
// all, and verifying it against the fixture's team and conversation never panics.
fuzz_target!(|data: &[u8]| {
    let Ok(deletion) = ConversationDeletion::from_wire(data) else {
        return;
    };
    assert_eq!(deletion.to_wire(), data);
    let f = fixture::get();
    let _ = deletion.verify(&f.state, &f.record.conversation, &f.record.visitor_devices);
});
