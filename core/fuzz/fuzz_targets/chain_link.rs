#![no_main]

#[path = "../fixture/mod.rs"]
mod fixture;

use libfuzzer_sys::fuzz_target;
use sotto_core::team::Link;
use sotto_core::wire::WireObject;

fuzz_target!(|data: &[u8]| {
    let Ok(link) = Link::from_wire(data) else {
        return;
    };
    assert_eq!(link.to_wire(), data);
    // Every rule runs on attacker-chosen links; a refused link must leave the state unchanged.
    let f = fixture::get();
    for base in [&f.genesis, &f.state] {
        let mut state = base.clone();
        if state.apply(&link).is_err() {
            assert_eq!(&state, base);
        }
    }
});
