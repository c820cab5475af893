#![no_main]

#[path = "../fixture/mod.rs"]
mod fixture;

use libfuzzer_sys::fuzz_target;
use sotto_core::conversation::identity::IdentityAssertion;
use sotto_core::wire::WireObject;

fuzz_target!(|data: &[u8]| {
    let Ok(assertion) = IdentityAssertion::from_wire(data) else {
        return;
    };
    assert_eq!(assertion.to_wire(), data);
    let f = fixture::get();
    let _ = assertion.check(&f.state, &f.visitor.id(), fixture::NOW);
});
