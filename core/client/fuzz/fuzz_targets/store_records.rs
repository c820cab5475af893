//! Any bytes as a record read back from the store (a corrupted or tampered database): each
//! record format refuses them with a typed error or decodes a record that encodes back to the
//! same record; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sotto_client::client::fuzzing::store_records(data);
});
