#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto_core::device::Device;

fuzz_target!(|data: &[u8]| {
    if let Ok(device) = Device::import_secrets(data) {
        // The store format is canonical too: secrets must not be altered (e.g. clamped) on import.
        assert_eq!(device.export_secrets().as_slice(), data);
    }
});
