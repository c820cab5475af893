//! The epoch secrets one device keeps for one conversation, under the team's history mode.
//!
//! In retain mode every epoch secret stays, so the conversation's history stays readable. In
//! ephemeral mode (DESIGN 4.4, G7) a secret is erased once its epoch is over and its messages
//! delivered, and the epoch is remembered as erased: a relay that replays the old epoch record
//! cannot make the device take the secret back, so a compromise of the device later finds
//! nothing that opens the old messages.

use zeroize::Zeroizing;

use crate::codec::{Reader, Writer};
use crate::crypto::secret::SecretBytes;
use crate::error::{DecodeError, EpochError};
use crate::sorted_map::SortedMap;
use crate::team::HistoryMode;
use crate::{Error, Result};

/// Most epoch secrets one conversation's state holds.
pub const MAX_HELD_EPOCHS: usize = 65_536;
const EPOCH_SECRETS_STATE: u8 = 3;

/// A conversation's epoch secrets, with the rule of the team's history mode.
#[derive(Clone)]
pub struct EpochSecrets {
    mode: HistoryMode,
    secrets: SortedMap<u32, SecretBytes<32>>,
    /// Epochs below this were erased in ephemeral mode and are never taken back.
    erased_below: u32,
}

impl EpochSecrets {
    /// No secrets yet, under `mode`.
    pub fn new(mode: HistoryMode) -> Self {
        EpochSecrets {
            mode,
            secrets: SortedMap::new(),
            erased_below: 0,
        }
    }

    /// The history mode the secrets are kept under.
    pub fn mode(&self) -> HistoryMode {
        self.mode
    }

    /// Follows a policy change. Switching to ephemeral takes effect at the next
    /// [`EpochSecrets::close_before`]; switching back to retain keeps what is left, and epochs
    /// already erased stay erased.
    pub fn set_mode(&mut self, mode: HistoryMode) {
        self.mode = mode;
    }

    /// Keeps the secret of `epoch`, opened from a verified epoch record. Refused for an epoch
    /// erased under the ephemeral mode.
    pub fn insert(&mut self, epoch: u32, secret: SecretBytes<32>) -> Result<()> {
        if epoch < self.erased_below {
            return Err(EpochError::Erased.into());
        }
        if !self.secrets.contains_key(&epoch) && self.secrets.len() >= MAX_HELD_EPOCHS {
            return Err(Error::InvalidLength);
        }
        self.secrets.insert(epoch, secret);
        Ok(())
    }

    /// The secret of `epoch`, if held.
    pub fn get(&self, epoch: u32) -> Option<&SecretBytes<32>> {
        self.secrets.get(&epoch)
    }

    /// The newest epoch held.
    pub fn newest(&self) -> Option<u32> {
        self.secrets.keys().next_back().copied()
    }

    /// The epochs held, in order.
    pub fn epochs(&self) -> impl Iterator<Item = u32> + '_ {
        self.secrets.keys().copied()
    }

    /// Whether `epoch` was erased under the ephemeral mode.
    pub fn is_erased(&self, epoch: u32) -> bool {
        epoch < self.erased_below
    }

    /// Marks every epoch before `epoch` as over, with its messages delivered (the caller has
    /// settled their receiver chains or given up on the gaps). In ephemeral mode their secrets
    /// are zeroized and the epochs can never be re-entered; in retain mode nothing changes.
    /// Returns how many secrets were erased.
    pub fn close_before(&mut self, epoch: u32) -> usize {
        if self.mode != HistoryMode::Ephemeral {
            return 0;
        }
        let kept = self.secrets.split_off(&epoch);
        let erased = core::mem::replace(&mut self.secrets, kept);
        self.erased_below = self.erased_below.max(epoch);
        // The removed SecretBytes zeroize as they drop here.
        erased.len()
    }

    /// Erases everything (team deleted, or this device removed).
    pub fn wipe(&mut self) {
        self.secrets.clear();
        self.erased_below = u32::MAX;
    }

    /// The state for the client's encrypted store, in a buffer zeroized on drop.
    pub fn export(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::with_capacity(2 + 1 + 4 + 4 + self.secrets.len() * 36);
        w.state_header(EPOCH_SECRETS_STATE);
        w.u8(match self.mode {
            HistoryMode::Retain => 1,
            HistoryMode::Ephemeral => 2,
        });
        w.u32(self.erased_below);
        w.u32(self.secrets.len() as u32);
        for (epoch, secret) in &self.secrets {
            w.u32(*epoch);
            w.array(secret.expose());
        }
        Zeroizing::new(w.into_bytes())
    }

    /// Restores state written by [`EpochSecrets::export`], from untrusted store bytes.
    pub fn import(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        r.state_header(EPOCH_SECRETS_STATE)?;
        let mode = match r.u8()? {
            1 => HistoryMode::Retain,
            2 => HistoryMode::Ephemeral,
            _ => return Err(DecodeError::InvalidValue.into()),
        };
        let erased_below = r.u32()?;
        let n = r.count_u32(MAX_HELD_EPOCHS, 36)?;
        let mut secrets = SortedMap::new();
        let mut last = None;
        for _ in 0..n {
            let epoch = r.u32()?;
            // Strictly increasing and not erased: one canonical encoding per state.
            if last.is_some_and(|l| epoch <= l) || epoch < erased_below {
                return Err(DecodeError::InvalidValue.into());
            }
            last = Some(epoch);
            let secret = Zeroizing::new(r.array::<32>()?);
            secrets.insert(epoch, SecretBytes::new(*secret));
        }
        r.finish()?;
        Ok(EpochSecrets {
            mode,
            secrets,
            erased_below,
        })
    }
}

impl core::fmt::Debug for EpochSecrets {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EpochSecrets")
            .field("mode", &self.mode)
            .field("epochs", &self.secrets.keys().collect::<Vec<_>>())
            .field("erased_below", &self.erased_below)
            .field("secrets", &"[redacted]")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(b: u8) -> SecretBytes<32> {
        SecretBytes::new([b; 32])
    }

    #[test]
    fn ephemeral_mode_erases_closed_epochs_and_refuses_them_back() {
        let mut s = EpochSecrets::new(HistoryMode::Ephemeral);
        for e in 0..3 {
            s.insert(e, secret(e as u8 + 1)).unwrap();
        }
        assert_eq!(s.close_before(2), 2);
        assert!(s.get(0).is_none() && s.get(1).is_none());
        assert!(s.get(2).is_some());
        assert!(s.is_erased(1) && !s.is_erased(2));
        assert_eq!(
            s.insert(1, secret(9)).unwrap_err(),
            Error::Epoch(EpochError::Erased)
        );
        // The exported state holds no erased secret and restores the erased mark.
        let exported = s.export();
        assert!(
            !exported
                .windows(32)
                .any(|w| w == [1u8; 32] || w == [2u8; 32])
        );
        let back = EpochSecrets::import(&exported).unwrap();
        assert!(back.is_erased(1) && back.get(2).is_some());
        assert_eq!(back.epochs().collect::<Vec<_>>(), vec![2]);
    }

    #[test]
    fn retain_mode_keeps_every_epoch() {
        let mut s = EpochSecrets::new(HistoryMode::Retain);
        s.insert(0, secret(1)).unwrap();
        s.insert(1, secret(2)).unwrap();
        assert_eq!(s.close_before(1), 0);
        assert!(s.get(0).unwrap().ct_eq(&secret(1)));
        let back = EpochSecrets::import(&s.export()).unwrap();
        assert_eq!(back.epochs().collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(back.mode(), HistoryMode::Retain);
    }

    #[test]
    fn import_refuses_non_canonical_state() {
        let mut s = EpochSecrets::new(HistoryMode::Retain);
        s.insert(3, secret(1)).unwrap();
        s.insert(5, secret(2)).unwrap();
        let good = s.export().to_vec();
        // Swap the two epochs' numbers: no longer increasing.
        let mut bad = good.clone();
        let first = 11;
        let second = first + 36;
        bad[first..first + 4].copy_from_slice(&5u32.to_be_bytes());
        bad[second..second + 4].copy_from_slice(&3u32.to_be_bytes());
        assert!(EpochSecrets::import(&bad).is_err());
        // Truncated and extended states fail too.
        assert!(EpochSecrets::import(&good[..good.len() - 1]).is_err());
        let mut longer = good.clone();
        longer.push(0);
        assert!(EpochSecrets::import(&longer).is_err());
        // A count beyond what the bytes hold is refused before allocating.
        let mut huge = good;
        huge[7..11].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(EpochSecrets::import(&huge).is_err());
    }
}
