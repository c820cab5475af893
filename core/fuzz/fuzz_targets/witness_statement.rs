#![no_main]

#[path = "../fixture/mod.rs"]
mod fixture;

use libfuzzer_sys::fuzz_target;
use sotto_core::team::witness::WitnessStatement;
use sotto_core::wire::WireObject;

// A witness statement comes from a service the relay does not run, but over the network all
// the same: it decodes canonically or not at all, and checking it never panics.
fuzz_target!(|data: &[u8]| {
    let Ok(statement) = WitnessStatement::from_wire(data) else {
        return;
    };
    assert_eq!(statement.to_wire(), data);
    let f = fixture::get();
    let _ = statement.check(&f.state, fixture::NOW);
});
