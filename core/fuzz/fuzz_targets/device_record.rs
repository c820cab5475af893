#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto_core::device::DeviceRecord;
use sotto_core::wire::WireObject;

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = DeviceRecord::from_wire(data) {
        // Encoding is canonical: anything accepted must be the one encoding of its value.
        assert_eq!(record.to_wire(), data);
    }
});
