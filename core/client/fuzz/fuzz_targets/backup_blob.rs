//! Any bytes as a backup blob: decoding never panics, accepted blobs re-encode to the input, and
//! opening them (with a fixed recovery secret, or a passphrase when the parameters are cheap
//! enough to fuzz) returns an error or records, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rand_core::SeedableRng;
use sotto_client::backup::{Backup, BackupKind, OpenWith};
use sotto_core::recovery::RecoverySecret;

fuzz_target!(|data: &[u8]| {
    let Ok(backup) = Backup::decode(data) else {
        return;
    };
    assert_eq!(backup.encode(), data);
    match backup.kind() {
        BackupKind::RecoveryKey => {
            let secret =
                RecoverySecret::generate(&mut chacha20::ChaCha20Rng::seed_from_u64(1));
            let _ = backup.open(OpenWith::RecoveryKey(&secret));
        }
        BackupKind::Passphrase => {
            if let Some(p) = backup.kdf_params()
                && u64::from(p.memory_kib()) * u64::from(p.iterations()) <= 256
            {
                let _ = backup.open(OpenWith::Passphrase("fuzz"));
            }
        }
    }
});
