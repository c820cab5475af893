//! Team policy: history mode, rotation limits and the freshness limit for head attestations.

use crate::Result;
use crate::codec::{Decode, Encode, Reader, Writer};
use crate::error::DecodeError;

/// The longest freshness limit a policy may set: a day. The limit is how long a relay may keep
/// replaying an old attestation or witness statement, so it is bounded whoever sets it.
pub const MAX_FRESHNESS_LIMIT_SECS: u32 = 24 * 3600;

/// Whether old conversations stay readable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HistoryMode {
    /// The team keeps epoch secrets; members with history access read old conversations.
    Retain,
    /// Epoch secrets and message keys are deleted once an epoch is over; nobody reads history.
    Ephemeral,
}

/// The team's policy, set by the create link and by set-policy links.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Retain or ephemeral history.
    pub history_mode: HistoryMode,
    /// Whether agents get earlier key generations (owners and admins always do in retain mode).
    pub agents_read_history: bool,
    /// A visitor refuses a chain head whose newest attestation is older than this.
    pub freshness_limit_secs: u32,
    /// A conversation epoch ends after this many messages.
    pub epoch_max_messages: u32,
    /// A conversation epoch ends after this long.
    pub epoch_max_age_secs: u32,
    /// Messages and keys older than this are deleted; 0 keeps them.
    pub retention_secs: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            history_mode: HistoryMode::Retain,
            agents_read_history: true,
            freshness_limit_secs: 3600,
            epoch_max_messages: 1000,
            epoch_max_age_secs: 7 * 24 * 3600,
            retention_secs: 0,
        }
    }
}

impl Policy {
    /// Whether the limits are usable: none is zero (every head would be stale, every epoch
    /// empty), and the freshness limit is at most [`MAX_FRESHNESS_LIMIT_SECS`].
    pub fn is_valid(&self) -> bool {
        self.freshness_limit_secs != 0
            && self.freshness_limit_secs <= MAX_FRESHNESS_LIMIT_SECS
            && self.epoch_max_messages != 0
            && self.epoch_max_age_secs != 0
    }
}

impl Encode for Policy {
    fn encode(&self, w: &mut Writer) {
        w.u8(match self.history_mode {
            HistoryMode::Retain => 1,
            HistoryMode::Ephemeral => 2,
        });
        w.u8(u8::from(self.agents_read_history));
        w.u32(self.freshness_limit_secs);
        w.u32(self.epoch_max_messages);
        w.u32(self.epoch_max_age_secs);
        w.u64(self.retention_secs);
    }
}

impl Decode for Policy {
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let history_mode = match r.u8()? {
            1 => HistoryMode::Retain,
            2 => HistoryMode::Ephemeral,
            _ => return Err(DecodeError::UnknownTag.into()),
        };
        let agents_read_history = match r.u8()? {
            0 => false,
            1 => true,
            _ => return Err(DecodeError::InvalidValue.into()),
        };
        let policy = Policy {
            history_mode,
            agents_read_history,
            freshness_limit_secs: r.u32()?,
            epoch_max_messages: r.u32()?,
            epoch_max_age_secs: r.u32()?,
            retention_secs: r.u64()?,
        };
        if !policy.is_valid() {
            return Err(DecodeError::InvalidValue.into());
        }
        Ok(policy)
    }
}
