//! Loading of the public test vectors kept outside the project, in `shared/test-vectors/`.

// Each test binary uses a different part of these helpers.
#![allow(dead_code)]

pub mod team;

use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

/// Overrides where the vector files are read from (the `test-vectors` directory itself).
pub const VECTORS_ENV: &str = "SOTTO_SHARED_VECTORS";

/// Where the machine keeps the shared directory when the checkout is not beside it (CI clones
/// the repository elsewhere).
const MACHINE_SHARED: &str = "/work/shared/test-vectors";

/// The vectors directory: the override if set, else the first `shared/test-vectors` found
/// beside the checkout or any directory above it, else the machine's shared directory.
pub fn vectors_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(VECTORS_ENV) {
        return PathBuf::from(dir);
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .map(|a| a.join("shared/test-vectors"))
        .find(|p| p.is_dir())
        .unwrap_or_else(|| PathBuf::from(MACHINE_SHARED))
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
