//! Any bytes as the payload of an authentic backup (a writer that holds the key but breaks the
//! payload rules): opening returns records or a typed error, never a panic, and accepted records
//! seal back to a backup that opens to the same records.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rand_core::SeedableRng;
use sotto_client::backup::{Backup, OpenWith, SealTo};
use sotto_core::conversation::padding;
use sotto_core::crypto::aead;
use sotto_core::recovery::RecoverySecret;

fuzz_target!(|data: &[u8]| {
    let mut rng = chacha20::ChaCha20Rng::seed_from_u64(2);
    let secret = RecoverySecret::generate(&mut rng);
    let header = [1u8, 1, 10, 1];
    let mut aad = b"sotto/v1/backup\0".to_vec();
    aad.extend_from_slice(&header);
    let Ok(padded) = padding::pad(data, 1 << 20) else {
        return;
    };
    let sealed = aead::xseal_random(&mut rng, &secret.backup_key(), &aad, &padded);
    let mut blob = header.to_vec();
    blob.extend_from_slice(&(sealed.len() as u32).to_be_bytes());
    blob.extend_from_slice(&sealed);
    let backup = Backup::decode(&blob).expect("a well-formed blob");
    let Ok(entries) = backup.open(OpenWith::RecoveryKey(&secret)) else {
        return;
    };
    let again = Backup::seal_with_rng(&mut rng, &entries, SealTo::RecoveryKey(&secret))
        .expect("accepted records seal again");
    let reopened = again.open(OpenWith::RecoveryKey(&secret)).expect("opens");
    assert_eq!(reopened.len(), entries.len());
    for (a, b) in reopened.iter().zip(&entries) {
        assert_eq!(a.id, b.id);
        assert_eq!(a.value.as_slice(), b.value.as_slice());
    }
});
