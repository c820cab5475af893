#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto_core::conversation::{ReceiverChain, SenderChain};

// Stored chain state comes back from a store that may be corrupted: decoders must refuse what
// breaks their invariants, and what they accept must re-encode to the same bytes.
fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    if which & 1 == 0 {
        if let Ok(chain) = SenderChain::import(bytes) {
            assert_eq!(chain.export().as_slice(), bytes);
        }
    } else if let Ok(mut chain) = ReceiverChain::import(bytes) {
        assert_eq!(chain.export().as_slice(), bytes);
        let next = chain.next_counter();
        let _ = chain.receive(next.wrapping_add(u32::from(which >> 1)), |_| Ok(()));
    }
});
