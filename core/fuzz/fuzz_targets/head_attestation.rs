#![no_main]

#[path = "../fixture/mod.rs"]
mod fixture;

use libfuzzer_sys::fuzz_target;
use sotto_core::team::attestation::HeadAttestation;
use sotto_core::wire::WireObject;

fuzz_target!(|data: &[u8]| {
    let Ok(attestation) = HeadAttestation::from_wire(data) else {
        return;
    };
    assert_eq!(attestation.to_wire(), data);
    let f = fixture::get();
    let _ = attestation.check_fresh(&f.state, fixture::NOW);
});
