#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto_core::recovery::RecoverySecret;

fuzz_target!(|data: &[u8]| {
    // from_words takes &str; non-UTF-8 input cannot reach it.
    let Ok(phrase) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(secret) = RecoverySecret::from_words(phrase) {
        let again = RecoverySecret::from_words(&secret.to_words()).expect("to_words must parse");
        assert_eq!(again.device().id(), secret.device().id());
    }
});
