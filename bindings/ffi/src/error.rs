//! The one exception type of the bindings.
//!
//! Each variant is a family of failures an application handles the same way; every variant
//! carries the client's stable [`sotto_client::Error::code`] (`invalid_input`,
//! `relay_forbidden`, `backup_decryption_failed`, ...) in its `code` field, so the codes are the
//! same in every binding, and a `detail` for logs. (The field is not called `message`: Kotlin
//! exceptions derive theirs from the fields.) Like the client's errors, neither names data: no key,
//! plaintext, passphrase or token.

use core::fmt;

use sotto_client::Error;

/// Code of a panic caught at the boundary.
pub(crate) const PANIC: &str = "panic";
/// Code of a call whose task ended before finishing (the runtime shut down).
pub(crate) const CANCELLED: &str = "cancelled";
/// Code of a runtime that could not be started.
pub(crate) const RUNTIME: &str = "runtime_failed";

/// Why a call failed. `code` is stable and machine-readable; `detail` is for people and logs.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Error)]
pub enum SottoError {
    /// An argument is malformed: an id that is not hex of the right length, a bad team
    /// reference, a relay URL that breaks the policy, a store key that is not 32 bytes.
    InvalidInput {
        /// The stable code.
        code: String,
        /// What was wrong (never the value).
        detail: String,
    },
    /// The relay could not be reached; queued messages stay queued and are retried.
    Network {
        /// The stable code.
        code: String,
        /// What failed.
        detail: String,
    },
    /// The relay refused the request (`relay_forbidden`, `relay_not_found`, ...) or answered
    /// something malformed (`relay_bad_response`).
    Relay {
        /// The stable code: `relay_` and the relay's code.
        code: String,
        /// The HTTP status; 0 for a malformed answer.
        status: u16,
        /// What failed.
        detail: String,
    },
    /// The local store failed: wrong key, tampered or corrupt records, backend errors.
    Store {
        /// The stable code (`store_wrong_key`, `store_tampered`, ...).
        code: String,
        /// What failed.
        detail: String,
    },
    /// A backup did not seal or open: wrong words or passphrase, altered blob, bad parameters.
    Backup {
        /// The stable code (`backup_decryption_failed`, ...).
        code: String,
        /// What failed.
        detail: String,
    },
    /// The call does not fit the client's state: not registered, already registered, unknown
    /// team or conversation, or not open to this device or role.
    State {
        /// The stable code (`not_registered`, `unknown_conversation`, `not_permitted`, ...).
        code: String,
        /// What failed.
        detail: String,
    },
    /// The protocol refused something: a message, link or record failed to decode or verify.
    Protocol {
        /// The core's stable code (`decode_truncated`, `recovery_checksum`, ...).
        code: String,
        /// What failed.
        detail: String,
    },
    /// A failure inside the library: a caught panic (`panic`), the OS random source, or the
    /// runtime. The call had no effect that can be relied on; report it.
    Internal {
        /// The stable code.
        code: String,
        /// What failed.
        detail: String,
    },
}

impl SottoError {
    /// The stable code, whatever the variant.
    pub fn code(&self) -> &str {
        match self {
            SottoError::InvalidInput { code, .. }
            | SottoError::Network { code, .. }
            | SottoError::Relay { code, .. }
            | SottoError::Store { code, .. }
            | SottoError::Backup { code, .. }
            | SottoError::State { code, .. }
            | SottoError::Protocol { code, .. }
            | SottoError::Internal { code, .. } => code,
        }
    }

    /// The detail, whatever the variant.
    pub fn detail(&self) -> &str {
        match self {
            SottoError::InvalidInput { detail, .. }
            | SottoError::Network { detail, .. }
            | SottoError::Relay { detail, .. }
            | SottoError::Store { detail, .. }
            | SottoError::Backup { detail, .. }
            | SottoError::State { detail, .. }
            | SottoError::Protocol { detail, .. }
            | SottoError::Internal { detail, .. } => detail,
        }
    }

    pub(crate) fn internal(code: &str, detail: &str) -> Self {
        SottoError::Internal {
            code: code.to_owned(),
            detail: detail.to_owned(),
        }
    }
}

impl fmt::Display for SottoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.detail())
    }
}

impl std::error::Error for SottoError {}

impl From<Error> for SottoError {
    fn from(e: Error) -> Self {
        let code = e.code().to_owned();
        let detail = e.to_string();
        match e {
            Error::InvalidInput(_) | Error::Url(_) => SottoError::InvalidInput { code, detail },
            Error::Transport(_) => SottoError::Network { code, detail },
            Error::Relay { status, .. } => SottoError::Relay {
                code,
                status,
                detail,
            },
            Error::BadResponse(_) => SottoError::Relay {
                code,
                status: 0,
                detail,
            },
            Error::WrongStoreKey
            | Error::Tampered { .. }
            | Error::Conflict { .. }
            | Error::SchemaTooNew { .. }
            | Error::Corrupt(_)
            | Error::InvalidRecordId(_)
            | Error::ValueTooLarge
            | Error::DuplicateRecord
            | Error::Backend(_) => SottoError::Store { code, detail },
            Error::BackupDecryptionFailed
            | Error::BackupWrongKind
            | Error::BackupKdfParams
            | Error::BackupPassphrase
            | Error::BackupTooLarge => SottoError::Backup { code, detail },
            Error::NotRegistered
            | Error::AlreadyRegistered
            | Error::UnknownTeam
            | Error::UnknownConversation
            | Error::NotPermitted(_) => SottoError::State { code, detail },
            Error::Core(_) => SottoError::Protocol { code, detail },
            // The random source, and variants added to the client later: the code still
            // passes through unchanged.
            _ => SottoError::Internal { code, detail },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sotto_client::transport::{TransportError, UrlError};

    #[test]
    fn codes_pass_through_and_variants_follow_the_family() {
        type Family = fn(&SottoError) -> bool;
        let cases: Vec<(Error, &str, Family)> = vec![
            (Error::InvalidInput("team id"), "invalid_input", |e| {
                matches!(e, SottoError::InvalidInput { .. })
            }),
            (
                Error::Url(UrlError::InsecureScheme),
                "url_insecure_scheme",
                |e| matches!(e, SottoError::InvalidInput { .. }),
            ),
            (
                Error::Transport(TransportError("down".into())),
                "transport",
                |e| matches!(e, SottoError::Network { .. }),
            ),
            (
                Error::Relay {
                    status: 403,
                    code: "forbidden".into(),
                },
                "relay_forbidden",
                |e| matches!(e, SottoError::Relay { status: 403, .. }),
            ),
            (Error::WrongStoreKey, "store_wrong_key", |e| {
                matches!(e, SottoError::Store { .. })
            }),
            (
                Error::BackupDecryptionFailed,
                "backup_decryption_failed",
                |e| matches!(e, SottoError::Backup { .. }),
            ),
            (Error::UnknownConversation, "unknown_conversation", |e| {
                matches!(e, SottoError::State { .. })
            }),
            (
                Error::Core(sotto_core::Error::RecoveryChecksum),
                "recovery_checksum",
                |e| matches!(e, SottoError::Protocol { .. }),
            ),
            (Error::RandomSource, "random_source_failed", |e| {
                matches!(e, SottoError::Internal { .. })
            }),
        ];
        for (error, code, family) in cases {
            assert_eq!(error.code(), code, "the client's code");
            let mapped = SottoError::from(error);
            assert_eq!(mapped.code(), code);
            assert!(family(&mapped), "{mapped:?}");
            assert!(mapped.to_string().starts_with(code));
        }
    }
}
