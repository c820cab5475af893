#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto_core::team::TeamState;

// A stored verified team state comes back from a store that may be corrupted: the importer
// refuses what breaks its invariants without panicking or allocating beyond the input, and
// what it accepts re-encodes to the same bytes.
fuzz_target!(|data: &[u8]| {
    if let Ok(state) = TeamState::import(data) {
        assert_eq!(state.export(), data);
    }
});
