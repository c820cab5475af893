//! The store's schema: how values are bound to their ids, the schema record, and migrations.
//!
//! The schema record `sotto.meta/schema` holds the schema version as a `u32`. It is sealed with
//! the store key like every value, but with a fixed associated data that no version will ever
//! change, so any version of the library can read it first and then decide how to read the
//! rest. Opening it also checks the store key.
//!
//! | schema | associated data of a record's value |
//! |---|---|
//! | 1 | `namespace \|\| 0x00 \|\| key` (the first layout; no domain label) |
//! | 2 (current) | `"sotto/v1/store-record\0" \|\| u8 len(namespace) \|\| namespace \|\| key` |
//!
//! Schema 2 adds a domain label, so a value sealed for the store can never be taken for anything
//! else sealed under the same key, and a length prefix in place of a separator. Migrating from 1
//! re-seals every value under the new associated data and writes the new schema version in one
//! transaction whose every op checks the version it read: a crash leaves the old store intact, and
//! two processes migrating at once cannot both succeed.

use super::{Namespace, RecordId};
use sotto_core::codec::{Reader, Writer};

/// The schema version this library writes.
pub const CURRENT_SCHEMA: u32 = 2;

/// The namespace of the store's own records.
pub(crate) const META_NAMESPACE: &str = "sotto.meta";
/// The key of the schema record.
pub(crate) const SCHEMA_KEY: &[u8] = b"schema";
/// Associated data of the schema record, fixed across all versions.
pub(crate) const SCHEMA_AAD: &[u8] = b"sotto/v1/store-schema\0";
/// Domain label of record values in schema 2.
const RECORD_LABEL: &[u8] = b"sotto/v1/store-record\0";

/// The schema record's id.
pub(crate) fn schema_id() -> RecordId {
    RecordId {
        namespace: Namespace(META_NAMESPACE.to_owned()),
        key: SCHEMA_KEY.to_vec(),
    }
}

/// The associated data binding a value to its record id under `schema`.
pub(crate) fn record_aad(schema: u32, id: &RecordId) -> Vec<u8> {
    let ns = id.namespace().as_str().as_bytes();
    let key = id.key();
    if schema == 1 {
        let mut aad = Vec::with_capacity(ns.len() + 1 + key.len());
        aad.extend_from_slice(ns);
        aad.push(0);
        aad.extend_from_slice(key);
        return aad;
    }
    let mut w = Writer::with_capacity(RECORD_LABEL.len() + 1 + ns.len() + key.len());
    w.array(RECORD_LABEL);
    // Namespaces are at most 64 bytes (checked by `Namespace::new`).
    w.u8(u8::try_from(ns.len()).unwrap_or(u8::MAX));
    w.array(ns);
    w.array(key);
    w.into_bytes()
}

/// The schema record's plaintext.
pub(crate) fn encode_schema(version: u32) -> Vec<u8> {
    version.to_be_bytes().to_vec()
}

/// Reads the schema record's plaintext.
pub(crate) fn decode_schema(bytes: &[u8]) -> sotto_core::Result<u32> {
    let mut r = Reader::new(bytes);
    let v = r.u32()?;
    r.finish()?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aad_layouts() {
        let ns = Namespace::new("chain.send").unwrap();
        let id = RecordId::new(&ns, vec![1, 2]).unwrap();
        assert_eq!(record_aad(1, &id), b"chain.send\0\x01\x02");
        assert_eq!(
            record_aad(2, &id),
            b"sotto/v1/store-record\0\x0achain.send\x01\x02"
        );
        // Length-prefixed: ("ab", "c...") and ("a", "bc...") differ.
        let a = RecordId::new(&Namespace::new("ab").unwrap(), b"c".to_vec()).unwrap();
        let b = RecordId::new(&Namespace::new("a").unwrap(), b"bc".to_vec()).unwrap();
        assert_ne!(record_aad(2, &a), record_aad(2, &b));
    }

    #[test]
    fn schema_record_round_trip() {
        assert_eq!(decode_schema(&encode_schema(7)).unwrap(), 7);
        assert!(decode_schema(&[0, 0, 7]).is_err());
        assert!(decode_schema(&[0, 0, 0, 7, 0]).is_err());
    }
}
