#![no_main]

#[path = "../fixture/mod.rs"]
mod fixture;

use libfuzzer_sys::fuzz_target;
use sotto_core::conversation::epoch::{EpochRecord, admit_message};
use sotto_core::wire::WireObject;

fuzz_target!(|data: &[u8]| {
    let Ok(record) = EpochRecord::from_wire(data) else {
        return;
    };
    assert_eq!(record.to_wire(), data);
    let f = fixture::get();
    for known in [None, Some(f.record.visitor_devices.as_slice())] {
        if record.verify(&f.state, known, fixture::NOW).is_ok() {
            let _ = record.secret_for_member(&f.agent_keys);
            let _ = record.secret_for_visitor(&f.visitor);
        }
    }
    let _ = record.follows(&f.record);
    let _ = f.record.follows(&record);
    for close in record.closes.iter().flatten() {
        let _ = admit_message(Some(&record), &close.sender, &close.instance, close.next, true);
    }
});
