#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto_core::crypto::agreement::AgreementSecret;
use sotto_core::crypto::hpke::{HpkeSealed, open_base};
use sotto_core::crypto::secret::SecretBytes;
use sotto_core::wire::WireObject;

fuzz_target!(|data: &[u8]| {
    let Ok(sealed) = HpkeSealed::from_wire(data) else {
        return;
    };
    assert_eq!(sealed.to_wire(), data);
    // Attacker-chosen `enc` (including small-order points) and ciphertext must give an error,
    // never a panic. The seed corpus holds one ciphertext that opens under this key.
    let recipient = AgreementSecret::from_secret_bytes(&SecretBytes::new([7u8; 32]));
    let _ = open_base(&recipient, &sealed, b"", b"");
});
