#![no_main]

#[path = "../fixture/mod.rs"]
mod fixture;

use libfuzzer_sys::fuzz_target;
use sotto_core::conversation::HistoryGrant;
use sotto_core::wire::WireObject;

fuzz_target!(|data: &[u8]| {
    let Ok(grant) = HistoryGrant::from_wire(data) else {
        return;
    };
    assert_eq!(grant.to_wire(), data);
    let f = fixture::get();
    if grant.verify(&f.state, &f.phone, fixture::NOW).is_ok() {
        let _ = grant.open(&f.phone, &f.record);
    }
});
