//! Errors of the client layer.
//!
//! One enum for the whole crate. Every variant has a stable, machine-readable [`Error::code`];
//! errors of the protocol core keep their own codes unchanged (`decode_truncated`,
//! `recovery_checksum`, ...), so a binding maps one set of codes. Display and Debug name what
//! failed, never the data: no key, value, plaintext or passphrase ever appears in an error.

use core::fmt;

use crate::transport::{TransportError, UrlError};

/// The error type of the client layer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// An error of the protocol core; [`Error::code`] is the core's code.
    Core(sotto_core::Error),
    /// The store key does not open this store (or the store's schema record was altered).
    WrongStoreKey,
    /// A stored value failed authentication: it was altered, truncated, or moved to another
    /// record id.
    Tampered {
        /// The namespace of the record (namespaces are not secret).
        namespace: String,
    },
    /// A transaction's version check failed: another writer changed the record first. The
    /// transaction was not applied; re-read and retry.
    Conflict {
        /// The namespace of the first record whose check failed.
        namespace: String,
    },
    /// The store was written by a newer version of this library.
    SchemaTooNew {
        /// The schema version found in the store.
        found: u32,
    },
    /// The store's structure is inconsistent (for example records without a schema record, or a
    /// malformed row). The text names what, never a value.
    Corrupt(&'static str),
    /// A namespace or record key is not acceptable (see [`crate::store::Namespace`] and
    /// [`crate::store::RecordId`]).
    InvalidRecordId(&'static str),
    /// A value is larger than [`crate::store::MAX_VALUE_LEN`].
    ValueTooLarge,
    /// A transaction or a backup names the same record twice.
    DuplicateRecord,
    /// This handle may only read the store: another tab or worker holds the store's writer lock
    /// (IndexedDB; see `IndexedDbStore::wait_for_writer`).
    ReadOnly,
    /// The storage backend failed (I/O, SQLite). The text is the backend's message, which
    /// carries no values: everything stored is ciphertext and values are bound parameters.
    Backend(String),
    /// The operating system's random number source failed.
    RandomSource,
    /// A backup did not open: wrong recovery words or passphrase, or the backup was altered.
    BackupDecryptionFailed,
    /// A backup is sealed to a recovery key but a passphrase was given, or the reverse.
    BackupWrongKind,
    /// Argon2id parameters outside the accepted bounds (see [`crate::backup::KdfParams`]).
    BackupKdfParams,
    /// A passphrase is empty or longer than [`crate::backup::MAX_PASSPHRASE_LEN`].
    BackupPassphrase,
    /// The records do not fit in one backup ([`crate::backup::MAX_PAYLOAD_LEN`],
    /// [`crate::backup::MAX_ENTRIES`]).
    BackupTooLarge,
    /// The relay URL breaks the policy ([`crate::transport::RelayUrl`]); [`Error::code`] is the
    /// [`UrlError`]'s code.
    Url(UrlError),
    /// The relay could not be reached (network, TLS, closed connection).
    Transport(TransportError),
    /// The relay answered with an error. [`Error::code`] is `relay_` and the relay's code
    /// (`docs/RELAY-API.md`), for example `relay_forbidden`.
    Relay {
        /// The HTTP status.
        status: u16,
        /// The relay's code, as sent.
        code: String,
    },
    /// The relay answered something that does not follow the API (malformed JSON, a wrong id).
    BadResponse(&'static str),
    /// The store holds no registered device: call `Client::register` first.
    NotRegistered,
    /// The store already holds a registered device.
    AlreadyRegistered,
    /// An argument is malformed (the text names which, never its value).
    InvalidInput(&'static str),
    /// No such team in this client.
    UnknownTeam,
    /// No such conversation in this client.
    UnknownConversation,
    /// The operation is not open to this device (for example a visitor managing a team, or a
    /// member without the right role).
    NotPermitted(&'static str),
}

impl Error {
    /// A stable identifier for this error, suitable for programmatic handling.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Core(e) => e.code(),
            Error::WrongStoreKey => "store_wrong_key",
            Error::Tampered { .. } => "store_tampered",
            Error::Conflict { .. } => "store_conflict",
            Error::SchemaTooNew { .. } => "store_schema_too_new",
            Error::Corrupt(_) => "store_corrupt",
            Error::InvalidRecordId(_) => "store_invalid_record_id",
            Error::ValueTooLarge => "store_value_too_large",
            Error::DuplicateRecord => "duplicate_record",
            Error::ReadOnly => "store_read_only",
            Error::Backend(_) => "store_backend",
            Error::RandomSource => "random_source_failed",
            Error::BackupDecryptionFailed => "backup_decryption_failed",
            Error::BackupWrongKind => "backup_wrong_kind",
            Error::BackupKdfParams => "backup_kdf_params",
            Error::BackupPassphrase => "backup_passphrase",
            Error::BackupTooLarge => "backup_too_large",
            Error::Url(e) => e.code(),
            Error::Transport(_) => "transport",
            Error::Relay { code, .. } => relay_code(code),
            Error::BadResponse(_) => "relay_bad_response",
            Error::NotRegistered => "not_registered",
            Error::AlreadyRegistered => "already_registered",
            Error::InvalidInput(_) => "invalid_input",
            Error::UnknownTeam => "unknown_team",
            Error::UnknownConversation => "unknown_conversation",
            Error::NotPermitted(_) => "not_permitted",
        }
    }

    /// Whether this is a version conflict, after which re-reading and retrying can succeed.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Conflict { .. })
    }

    /// Whether the failure may pass by itself (network, rate limit, relay fault), so queued
    /// work should be kept and retried.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Transport(_) => true,
            // 408: the relay timed a slow request out; 429: a rate limit, a registration
            // throttle or a connection cap. A quota (413 quota_exceeded) does not pass by itself.
            Error::Relay { status, .. } => *status == 408 || *status == 429 || *status >= 500,
            _ => false,
        }
    }

    /// The relay's error code, if the relay refused the request.
    pub fn relay_code(&self) -> Option<&str> {
        match self {
            Error::Relay { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// The relay's codes (`docs/RELAY-API.md`) as stable client codes.
fn relay_code(code: &str) -> &'static str {
    match code {
        "bad_request" => "relay_bad_request",
        "invalid_id" => "relay_invalid_id",
        "invalid_base64" => "relay_invalid_base64",
        "invalid_wire" => "relay_invalid_wire",
        "verification_failed" => "relay_verification_failed",
        "unknown_epoch" => "relay_unknown_epoch",
        "cursor_out_of_range" => "relay_cursor_out_of_range",
        "unauthorized" => "relay_unauthorized",
        "forbidden" => "relay_forbidden",
        "bootstrap_invalid" => "relay_bootstrap_invalid",
        "not_found" => "relay_not_found",
        "head_moved" => "relay_head_moved",
        "team_exists" => "relay_team_exists",
        "conversation_exists" => "relay_conversation_exists",
        "conversation_deleted" => "relay_conversation_deleted",
        "epoch_conflict" => "relay_epoch_conflict",
        "already_registered" => "relay_already_registered",
        "not_newer" => "relay_not_newer",
        "team_deleted" => "relay_team_deleted",
        "payload_too_large" => "relay_payload_too_large",
        "rate_limited" => "relay_rate_limited",
        "quota_exceeded" => "relay_quota_exceeded",
        "registration_throttled" => "relay_registration_throttled",
        "too_many_connections" => "relay_too_many_connections",
        "request_timeout" => "relay_request_timeout",
        "internal" => "relay_internal",
        _ => "relay_error",
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Core(e) => fmt::Display::fmt(e, f),
            Error::WrongStoreKey => f.write_str("the store key does not open this store"),
            Error::Tampered { namespace } => write!(
                f,
                "a stored value in namespace {namespace:?} failed authentication (altered or moved)"
            ),
            Error::Conflict { namespace } => write!(
                f,
                "a record in namespace {namespace:?} was changed by another writer; retry"
            ),
            Error::SchemaTooNew { found } => write!(
                f,
                "the store has schema version {found}, newer than this library supports"
            ),
            Error::Corrupt(what) => write!(f, "the store is corrupt: {what}"),
            Error::InvalidRecordId(why) => write!(f, "invalid record id: {why}"),
            Error::ValueTooLarge => f.write_str("value too large for the store"),
            Error::DuplicateRecord => {
                f.write_str("a transaction or backup names the same record more than once")
            }
            Error::ReadOnly => f.write_str(
                "another tab or worker holds the store's writer lock; this handle may only read",
            ),
            Error::Backend(msg) => write!(f, "storage backend error: {msg}"),
            Error::RandomSource => f.write_str("the system random number source failed"),
            Error::BackupDecryptionFailed => f.write_str(
                "the backup does not open: wrong recovery words or passphrase, or it was altered",
            ),
            Error::BackupWrongKind => f.write_str(
                "the backup is sealed to another kind of secret (recovery key or passphrase)",
            ),
            Error::BackupKdfParams => f.write_str("backup key-derivation parameters out of bounds"),
            Error::BackupPassphrase => f.write_str("the backup passphrase is empty or too long"),
            Error::BackupTooLarge => f.write_str("too much data for one backup"),
            Error::Url(e) => fmt::Display::fmt(e, f),
            Error::Transport(e) => fmt::Display::fmt(e, f),
            Error::Relay { status, code } => {
                write!(f, "the relay refused the request: {status} {code}")
            }
            Error::BadResponse(what) => write!(f, "the relay's answer is malformed: {what}"),
            Error::NotRegistered => f.write_str("no device is registered in this store"),
            Error::AlreadyRegistered => f.write_str("a device is already registered in this store"),
            Error::InvalidInput(what) => write!(f, "invalid {what}"),
            Error::UnknownTeam => f.write_str("unknown team"),
            Error::UnknownConversation => f.write_str("unknown conversation"),
            Error::NotPermitted(why) => write!(f, "not permitted: {why}"),
        }
    }
}

impl core::error::Error for Error {}

impl From<sotto_core::Error> for Error {
    fn from(e: sotto_core::Error) -> Self {
        Error::Core(e)
    }
}

impl From<UrlError> for Error {
    fn from(e: UrlError) -> Self {
        Error::Url(e)
    }
}

impl From<TransportError> for Error {
    fn from(e: TransportError) -> Self {
        Error::Transport(e)
    }
}

impl From<sotto_core::DecodeError> for Error {
    fn from(e: sotto_core::DecodeError) -> Self {
        Error::Core(e.into())
    }
}

/// Result type of the client layer.
pub type Result<T> = core::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_codes_pass_through() {
        let e: Error = sotto_core::Error::Decode(sotto_core::DecodeError::Truncated).into();
        assert_eq!(e.code(), "decode_truncated");
        let e: Error = sotto_core::Error::RecoveryChecksum.into();
        assert_eq!(e.code(), "recovery_checksum");
        assert_eq!(
            e.to_string(),
            sotto_core::Error::RecoveryChecksum.to_string()
        );
    }

    #[test]
    fn codes_are_distinct_snake_case() {
        let all = [
            Error::WrongStoreKey,
            Error::Tampered {
                namespace: "n".into(),
            },
            Error::Conflict {
                namespace: "n".into(),
            },
            Error::SchemaTooNew { found: 9 },
            Error::Corrupt("x"),
            Error::InvalidRecordId("x"),
            Error::ValueTooLarge,
            Error::DuplicateRecord,
            Error::ReadOnly,
            Error::Backend("x".into()),
            Error::RandomSource,
            Error::BackupDecryptionFailed,
            Error::BackupWrongKind,
            Error::BackupKdfParams,
            Error::BackupPassphrase,
            Error::BackupTooLarge,
            Error::Url(UrlError::InsecureScheme),
            Error::Transport(TransportError("x".into())),
            Error::Relay {
                status: 403,
                code: "forbidden".into(),
            },
            Error::BadResponse("x"),
            Error::NotRegistered,
            Error::AlreadyRegistered,
            Error::InvalidInput("x"),
            Error::UnknownTeam,
            Error::UnknownConversation,
            Error::NotPermitted("x"),
        ];
        let mut codes: Vec<&str> = all.iter().map(Error::code).collect();
        for c in &codes {
            assert!(
                c.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'),
                "{c}"
            );
        }
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
    }

    #[test]
    fn the_relays_abuse_limits_are_typed_and_only_passing_ones_are_retried() {
        let cases = [
            (413, "quota_exceeded", "relay_quota_exceeded", false),
            (
                429,
                "registration_throttled",
                "relay_registration_throttled",
                true,
            ),
            (
                429,
                "too_many_connections",
                "relay_too_many_connections",
                true,
            ),
            (408, "request_timeout", "relay_request_timeout", true),
        ];
        for (status, relay, code, transient) in cases {
            let e = Error::Relay {
                status,
                code: relay.into(),
            };
            assert_eq!(e.code(), code);
            assert_eq!(e.is_transient(), transient, "{code}");
        }
    }
}
