//! Any text as a push frame from the relay or a team reference from a page: parsing returns a
//! value or an error, never a panic, and a team reference that parses prints canonically.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        sotto_client::client::fuzzing::relay_text(text);
    }
});
