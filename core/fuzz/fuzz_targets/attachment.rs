#![no_main]

#[path = "../fixture/mod.rs"]
mod fixture;

use libfuzzer_sys::fuzz_target;
use sotto_core::codec::{Decode, Encode};
use sotto_core::conversation::AttachmentRef;
use sotto_core::conversation::attachment::decrypt_attachment;

// Input: a selector byte, then either an attachment reference (from inside a decrypted message)
// or a blob (from the relay) to open with the fixture's reference.
fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    if which & 1 == 0 {
        if let Ok(reference) = AttachmentRef::decode_exact(bytes) {
            assert_eq!(reference.encode_to_vec(), bytes);
        }
    } else {
        let f = fixture::get();
        if let Ok(plain) = decrypt_attachment(&f.attachment, bytes) {
            assert_eq!(bytes, f.blob.as_slice());
            assert_eq!(plain.as_slice(), b"file bytes");
        }
    }
});
