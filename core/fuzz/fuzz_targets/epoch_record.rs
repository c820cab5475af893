#![no_main]

#[path = "../fixture/mod.rs"]
mod fixture;

use libfuzzer_sys::fuzz_target;
use sotto_core::conversation::epoch::{EpochRecord, Freshness};
use sotto_core::wire::WireObject;

fuzz_target!(|data: &[u8]| {
    let Ok(record) = EpochRecord::from_wire(data) else {
        return;
    };
    assert_eq!(record.to_wire(), data);
    let f = fixture::get();
    for freshness in [Freshness::Live, Freshness::History] {
        if record.verify(&f.state, None, freshness).is_ok() {
            let _ = record.secret_for_member(&f.agent_keys);
            let _ = record.secret_for_visitor(&f.visitor);
        }
    }
    let _ = record.verify(&f.state, Some(&f.record.visitor_devices), Freshness::Live);
});
