//! Loading of the public test vectors kept outside the project, in `shared/test-vectors/`.

use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

/// Overrides where the vector files are read from (the `test-vectors` directory itself).
pub const VECTORS_ENV: &str = "SOTTO_SHARED_VECTORS";

pub fn vectors_dir() -> PathBuf {
    match std::env::var_os(VECTORS_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/test-vectors"),
    }
}

/// Parses a vector file; a missing file fails the test, so the vectors can never be skipped
/// silently.
pub fn load<T: DeserializeOwned>(relative: &str) -> T {
    let path = vectors_dir().join(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read test vectors at {} ({e}); set {VECTORS_ENV} to the test-vectors directory",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn hex_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let s = String::deserialize(d)?;
    hex::decode(&s).map_err(serde::de::Error::custom)
}
