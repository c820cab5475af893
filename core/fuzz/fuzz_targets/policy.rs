#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto_core::codec::{Decode, Encode};
use sotto_core::team::Policy;

fuzz_target!(|data: &[u8]| {
    if let Ok(policy) = Policy::decode_exact(data) {
        assert_eq!(policy.encode_to_vec(), data);
    }
});
