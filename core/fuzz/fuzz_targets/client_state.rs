#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto_core::conversation::EpochSecrets;
use sotto_core::team::TeamKeyring;

// Conversation secrets and team keyrings come back from a store that may be corrupted: the
// importers refuse what breaks their invariants, and what they accept re-encodes to the same
// bytes.
fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    if which & 1 == 0 {
        if let Ok(mut secrets) = EpochSecrets::import(bytes) {
            assert_eq!(secrets.export().as_slice(), bytes);
            let newest = secrets.newest().unwrap_or(0);
            secrets.close_before(newest);
            assert!(secrets.epochs().all(|e| e >= newest) || secrets.mode() == sotto_core::team::HistoryMode::Retain);
        }
    } else if let Ok(keyring) = TeamKeyring::import(bytes) {
        assert_eq!(keyring.export().as_slice(), bytes);
    }
});
