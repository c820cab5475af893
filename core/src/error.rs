//! Errors of the protocol core.
//!
//! Every error has a stable, machine-readable [`Error::code`]; the bindings map these codes to
//! typed exceptions and JS errors. Messages never contain key material or plaintext: they name
//! what failed, not the data it failed on.

use core::fmt;

/// Why a byte string could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before the object was complete.
    Truncated,
    /// Bytes were left over after a complete object.
    TrailingBytes,
    /// The object's version is not one this implementation speaks.
    UnknownVersion(u8),
    /// The cipher suite is unknown or not implemented.
    UnknownSuite(u8),
    /// The object type byte does not match what the caller expected.
    UnexpectedObject {
        /// The object type the caller asked for.
        expected: u8,
        /// The object type found in the bytes.
        found: u8,
    },
    /// A length field exceeds the limit for that field.
    LengthLimit,
    /// An enumeration tag has no meaning (for example an unknown device kind).
    UnknownTag,
    /// A value is structurally valid but not allowed (for example non-UTF-8 text).
    InvalidValue,
}

/// Why a team chain link was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChainError {
    /// The first link does not hash to the fingerprint the client was given.
    FingerprintMismatch,
    /// The link belongs to another team.
    WrongTeam,
    /// The sequence number is not the next one.
    BadSequence,
    /// The link does not name the current head as its predecessor.
    BadPrevious,
    /// The author is not an active device of the team.
    UnknownAuthor,
    /// The author's role does not permit this change.
    NotPermitted,
    /// The change takes read access away but carries no key rotation.
    MissingRotation,
    /// The rotation's generation is not the next one, or a rotation appears where none may.
    BadRotation,
    /// The key wraps are not exactly the ones the change requires (a wrap to a device without
    /// read access, a missing wrap, an earlier generation for a role without history access).
    WrapMismatch,
    /// The change would leave the team without an owner device.
    LastOwner,
    /// The team was deleted; no link may follow.
    TeamDeleted,
    /// The member or device named by the change does not exist, or already exists.
    MembershipConflict,
    /// A wrapped team key does not match the generation's public key.
    BadTeamKey,
    /// A head attestation is not signed by an active read-permitted device, or names another
    /// head.
    BadAttestation,
    /// The newest head attestation is older than the team's freshness limit.
    StaleHead,
    /// The integration key was revoked by the chain.
    RevokedKey,
    /// The team's freshness witness vouches for a head beyond the one the relay served: the
    /// relay withholds links (a rollback). Nothing may be sealed to the team until it serves
    /// them.
    Withheld,
    /// The freshness witness vouches for a different link at a sequence number this client
    /// verified: someone was shown another history.
    Fork,
    /// A witness statement is not for this team, not signed by the witness key the chain names,
    /// dated in the future, or the chain names no witness.
    BadWitness,
}

/// Why a conversation message was refused (DESIGN 4.4, G8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageError {
    /// The counter was already consumed: a replay, a duplicate, or a message whose kept key was
    /// discarded to respect the skipped-key limit.
    Duplicate,
    /// The counter is further ahead of the next expected one than a receiver may jump.
    TooFarAhead,
    /// The message or chain belongs to another conversation, epoch, sender or stream.
    WrongChain,
    /// No verifying key was given for the message's sender.
    UnknownSender,
    /// The sender chain has used its last counter; a new epoch is needed.
    ChainExhausted,
    /// The message is beyond the end of its epoch as the record that closed the epoch states.
    AfterClose,
    /// The sender's side may not send this kind: a visitor device sending a system note
    /// (speaking as the team), or a member device presenting a visitor identity.
    KindNotAllowed,
    /// The sender already has as many installations (instances) in this epoch as a receiver
    /// keeps chains for.
    TooManyInstances,
}

/// Why a conversation epoch record was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EpochError {
    /// The record is for another team.
    WrongTeam,
    /// The record names a chain head beyond ours: fetch and verify the newer links, then retry.
    ChainBehind,
    /// The record names a chain head that is not on our chain: a fork.
    Fork,
    /// The epoch secret is sealed to a team key generation older than the newest we verified.
    StaleGeneration,
    /// The author is neither a listed visitor device nor an active member device with read
    /// access.
    UnknownAuthor,
    /// The visitor devices changed in a way only an existing visitor device may make, or the
    /// sealed copies do not match the listed devices.
    VisitorSet,
    /// This device holds no key that opens the epoch secret (for example a role without history
    /// access reading an epoch from before it joined).
    NoKey,
    /// A history grant's recipient is not vouched for as the conversation's customer (or the
    /// grant names another conversation, team or device).
    Unvouched,
    /// The epoch's secret was erased under the ephemeral history mode and is never taken back.
    Erased,
    /// The record does not follow the epoch record it names as its predecessor (unknown
    /// predecessor, a lower epoch number, an earlier team head, or a malformed close).
    Predecessor,
    /// The record's `created_at` is later than the receiver's clock allows.
    FromFuture,
    /// The epoch's record was refused, so nothing in the epoch is read.
    Refused,
}

/// Why a conversation deletion was refused (PROTOCOL §7.13).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeletionError {
    /// The deletion names another team.
    WrongTeam,
    /// The deletion names another conversation.
    WrongConversation,
    /// The author is neither one of the conversation's visitor devices nor an active member
    /// device whose role may delete conversations.
    NotPermitted,
}

/// The error type of the protocol core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Bytes from the network or a store are malformed.
    Decode(DecodeError),
    /// A public key is malformed, of small order, or otherwise unusable.
    InvalidPublicKey,
    /// A key-agreement produced an all-zero (non-contributory) shared secret.
    NonContributory,
    /// A signature did not verify.
    BadSignature,
    /// Authenticated decryption failed: wrong key, or the data or its context was altered.
    DecryptionFailed,
    /// A length given to a primitive is outside what it supports.
    InvalidLength,
    /// An HPKE operation failed for a reason other than authentication.
    Hpke,
    /// A recovery phrase has an unknown word at the given (zero-based) position.
    RecoveryUnknownWord(usize),
    /// A recovery phrase has the wrong number of words.
    RecoveryWordCount(usize),
    /// A recovery phrase's checksum does not match: a word is mistyped or swapped.
    RecoveryChecksum,
    /// A key-agreement key record belongs to another device or is otherwise inconsistent.
    KeyRecordMismatch,
    /// A team chain link or head attestation was refused.
    Chain(ChainError),
    /// A conversation epoch record was refused.
    Epoch(EpochError),
    /// A conversation message was refused: replayed, too far ahead, or on the wrong chain.
    Message(MessageError),
    /// A conversation deletion was refused: not this conversation's, or not by someone allowed
    /// to delete it.
    Deletion(DeletionError),
}

impl Error {
    /// A stable identifier for this error, suitable for programmatic handling.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Decode(d) => match d {
                DecodeError::Truncated => "decode_truncated",
                DecodeError::TrailingBytes => "decode_trailing_bytes",
                DecodeError::UnknownVersion(_) => "unknown_version",
                DecodeError::UnknownSuite(_) => "unknown_suite",
                DecodeError::UnexpectedObject { .. } => "decode_unexpected_object",
                DecodeError::LengthLimit => "decode_length_limit",
                DecodeError::UnknownTag => "decode_unknown_tag",
                DecodeError::InvalidValue => "decode_invalid_value",
            },
            Error::InvalidPublicKey => "invalid_public_key",
            Error::NonContributory => "non_contributory_key_agreement",
            Error::BadSignature => "bad_signature",
            Error::DecryptionFailed => "decryption_failed",
            Error::InvalidLength => "invalid_length",
            Error::Hpke => "hpke_failed",
            Error::RecoveryUnknownWord(_) => "recovery_unknown_word",
            Error::RecoveryWordCount(_) => "recovery_word_count",
            Error::RecoveryChecksum => "recovery_checksum",
            Error::KeyRecordMismatch => "key_record_mismatch",
            Error::Epoch(e) => match e {
                EpochError::WrongTeam => "epoch_wrong_team",
                EpochError::ChainBehind => "epoch_chain_behind",
                EpochError::Fork => "epoch_fork",
                EpochError::StaleGeneration => "epoch_stale_generation",
                EpochError::UnknownAuthor => "epoch_unknown_author",
                EpochError::VisitorSet => "epoch_visitor_set",
                EpochError::NoKey => "epoch_no_key",
                EpochError::Unvouched => "epoch_unvouched",
                EpochError::Erased => "epoch_erased",
                EpochError::Predecessor => "epoch_predecessor",
                EpochError::FromFuture => "epoch_from_future",
                EpochError::Refused => "epoch_refused",
            },
            Error::Chain(c) => match c {
                ChainError::FingerprintMismatch => "chain_fingerprint_mismatch",
                ChainError::WrongTeam => "chain_wrong_team",
                ChainError::BadSequence => "chain_bad_sequence",
                ChainError::BadPrevious => "chain_bad_previous",
                ChainError::UnknownAuthor => "chain_unknown_author",
                ChainError::NotPermitted => "chain_not_permitted",
                ChainError::MissingRotation => "chain_missing_rotation",
                ChainError::BadRotation => "chain_bad_rotation",
                ChainError::WrapMismatch => "chain_wrap_mismatch",
                ChainError::LastOwner => "chain_last_owner",
                ChainError::TeamDeleted => "chain_team_deleted",
                ChainError::MembershipConflict => "chain_membership_conflict",
                ChainError::BadTeamKey => "chain_bad_team_key",
                ChainError::BadAttestation => "chain_bad_attestation",
                ChainError::StaleHead => "chain_stale_head",
                ChainError::RevokedKey => "chain_revoked_key",
                ChainError::Withheld => "chain_withheld",
                ChainError::Fork => "chain_fork",
                ChainError::BadWitness => "chain_bad_witness",
            },
            Error::Message(m) => match m {
                MessageError::Duplicate => "message_duplicate",
                MessageError::TooFarAhead => "message_too_far_ahead",
                MessageError::WrongChain => "message_wrong_chain",
                MessageError::UnknownSender => "message_unknown_sender",
                MessageError::ChainExhausted => "message_chain_exhausted",
                MessageError::AfterClose => "message_after_close",
                MessageError::KindNotAllowed => "message_kind_not_allowed",
                MessageError::TooManyInstances => "message_too_many_instances",
            },
            Error::Deletion(d) => match d {
                DeletionError::WrongTeam => "deletion_wrong_team",
                DeletionError::WrongConversation => "deletion_wrong_conversation",
                DeletionError::NotPermitted => "deletion_not_permitted",
            },
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Decode(DecodeError::UnknownVersion(v)) => write!(f, "unknown wire version {v}"),
            Error::Decode(DecodeError::UnknownSuite(s)) => write!(f, "unknown cipher suite {s}"),
            Error::Decode(DecodeError::UnexpectedObject { expected, found }) => {
                write!(f, "expected object type {expected}, found {found}")
            }
            Error::Decode(d) => write!(f, "malformed input: {d:?}"),
            Error::InvalidPublicKey => f.write_str("invalid public key"),
            Error::NonContributory => f.write_str("key agreement produced a zero shared secret"),
            Error::BadSignature => f.write_str("signature verification failed"),
            Error::DecryptionFailed => f.write_str("decryption failed"),
            Error::InvalidLength => f.write_str("length not supported by the primitive"),
            Error::Hpke => f.write_str("HPKE operation failed"),
            Error::RecoveryUnknownWord(i) => {
                write!(
                    f,
                    "word {} of the recovery phrase is not in the word list",
                    i + 1
                )
            }
            Error::RecoveryWordCount(n) => {
                write!(f, "a recovery phrase has 24 words, this one has {n}")
            }
            Error::RecoveryChecksum => {
                f.write_str("the recovery phrase checksum does not match; check each word")
            }
            Error::KeyRecordMismatch => f.write_str("key record does not belong to this device"),
            Error::Chain(c) => write!(f, "team chain refused: {c:?}"),
            Error::Epoch(e) => write!(f, "conversation epoch refused: {e:?}"),
            Error::Message(m) => write!(f, "message refused: {m:?}"),
            Error::Deletion(d) => write!(f, "conversation deletion refused: {d:?}"),
        }
    }
}

impl core::error::Error for Error {}

impl From<EpochError> for Error {
    fn from(e: EpochError) -> Self {
        Error::Epoch(e)
    }
}

impl From<ChainError> for Error {
    fn from(e: ChainError) -> Self {
        Error::Chain(e)
    }
}

impl From<MessageError> for Error {
    fn from(e: MessageError) -> Self {
        Error::Message(e)
    }
}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Self {
        Error::Decode(e)
    }
}

/// Result type of the protocol core.
pub type Result<T> = core::result::Result<T, Error>;
