#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto_core::team::{Link, TeamState};
use sotto_core::wire::WireObject;

// Input: links, each prefixed by a big-endian u16 length. The chain is verified from the first
// link's own hash, so a well-formed genesis passes the fingerprint check and the rules run.
fuzz_target!(|data: &[u8]| {
    let mut links = Vec::new();
    let mut rest = data;
    while let Some((len, tail)) = rest.split_first_chunk::<2>() {
        let len = usize::from(u16::from_be_bytes(*len));
        let Some((bytes, tail)) = tail.split_at_checked(len) else {
            break;
        };
        match Link::from_wire(bytes) {
            Ok(link) => links.push(link),
            Err(_) => return,
        }
        rest = tail;
    }
    if let Some(first) = links.first() {
        let _ = TeamState::verify_chain(&links, &first.hash());
    }
});
