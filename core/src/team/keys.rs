//! Team key generations: sealing a generation's seed to a device and opening it again.
//!
//! A generation is a random 32-byte seed; its X25519 key pair is DHKEM's DeriveKeyPair(seed),
//! so a device that opens a wrap can check the seed against the generation's public key in the
//! chain and detect a wrong wrap.

use super::ids::TeamId;
use super::link::KeyWrap;
use crate::Result;
use crate::codec::{Reader, Writer};
use crate::crypto::agreement::{AgreementPublicKey, AgreementSecret};
use crate::crypto::hpke;
use crate::crypto::secret::SecretBytes;
use crate::device::{Device, DeviceRecord};
use crate::error::ChainError;
use crate::error::DecodeError;
use crate::sorted_map::SortedMap;

const WRAP_INFO_LABEL: &[u8] = b"sotto/v1/team-key-wrap\0";
/// Most generations an imported keyring may hold.
pub const MAX_HELD_GENERATIONS: usize = 65_536;
const KEYRING_STATE: u8 = 4;

fn wrap_info(team: &TeamId, generation: u32, device: &crate::device::DeviceId) -> Vec<u8> {
    let mut info = Vec::with_capacity(WRAP_INFO_LABEL.len() + 16 + 4 + 32);
    info.extend_from_slice(WRAP_INFO_LABEL);
    info.extend_from_slice(&team.0);
    info.extend_from_slice(&generation.to_be_bytes());
    info.extend_from_slice(&device.0);
    info
}

/// The key pair of a generation seed.
pub fn generation_key(seed: &SecretBytes<32>) -> AgreementSecret {
    hpke::derive_key_pair(seed.expose())
}

/// Seals a generation seed to a device's key-agreement key.
pub fn wrap(
    rng: &mut impl rand_core::CryptoRng,
    team: &TeamId,
    generation: u32,
    seed: &SecretBytes<32>,
    recipient: &DeviceRecord,
) -> Result<KeyWrap> {
    let info = wrap_info(team, generation, &recipient.id());
    let sealed = hpke::seal_base(
        rng,
        &recipient.key_agreement().public_key,
        &info,
        b"",
        seed.expose(),
    )?;
    Ok(KeyWrap {
        device: recipient.id(),
        generation,
        sealed,
    })
}

/// The generation keys one device holds for one team. Zeroized on drop.
#[derive(Clone, Default)]
pub struct TeamKeyring {
    seeds: SortedMap<u32, SecretBytes<32>>,
}

impl TeamKeyring {
    /// An empty keyring.
    pub fn new() -> Self {
        TeamKeyring::default()
    }

    /// Adds a seed whose public key the caller has checked.
    pub(crate) fn insert(&mut self, generation: u32, seed: SecretBytes<32>) {
        self.seeds.insert(generation, seed);
    }

    /// Opens a wrap addressed to `device` and checks the seed against the generation's public
    /// key from the chain.
    pub fn open_wrap(
        &mut self,
        team: &TeamId,
        device: &Device,
        wrap: &KeyWrap,
        expected: &AgreementPublicKey,
    ) -> Result<()> {
        let info = wrap_info(team, wrap.generation, &device.id());
        let plain = zeroize::Zeroizing::new(hpke::open_base(
            device.agreement_secret(),
            &wrap.sealed,
            &info,
            b"",
        )?);
        let seed = SecretBytes::<32>::from_slice(&plain).map_err(|_| ChainError::BadTeamKey)?;
        if generation_key(&seed).public_key() != *expected {
            return Err(ChainError::BadTeamKey.into());
        }
        self.insert(wrap.generation, seed);
        Ok(())
    }

    /// The seed of a generation, if held.
    pub fn seed(&self, generation: u32) -> Option<&SecretBytes<32>> {
        self.seeds.get(&generation)
    }

    /// The secret key of a generation, if held.
    pub fn secret(&self, generation: u32) -> Option<AgreementSecret> {
        self.seeds.get(&generation).map(generation_key)
    }

    /// The generations held, in order.
    pub fn generations(&self) -> impl Iterator<Item = u32> + '_ {
        self.seeds.keys().copied()
    }

    /// Forgets every key (team deleted, or this device removed).
    pub fn wipe(&mut self) {
        self.seeds.clear();
    }

    /// Forgets the generations before `generation`: in the ephemeral history mode, once the
    /// epochs sealed to them are over, so a later compromise of this device opens none of
    /// their epoch records. Returns how many were forgotten.
    pub fn forget_before(&mut self, generation: u32) -> usize {
        let kept = self.seeds.split_off(&generation);
        // The removed seeds zeroize as they drop.
        core::mem::replace(&mut self.seeds, kept).len()
    }

    /// The keyring for the client's encrypted store, in a buffer zeroized on drop.
    pub fn export(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let mut w = Writer::with_capacity(2 + 4 + self.seeds.len() * 36);
        w.state_header(KEYRING_STATE);
        w.u32(self.seeds.len() as u32);
        for (generation, seed) in &self.seeds {
            w.u32(*generation);
            w.array(seed.expose());
        }
        zeroize::Zeroizing::new(w.into_bytes())
    }

    /// Restores a keyring written by [`TeamKeyring::export`], from untrusted store bytes.
    pub fn import(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        r.state_header(KEYRING_STATE)?;
        let n = r.count_u32(MAX_HELD_GENERATIONS, 36)?;
        let mut keyring = TeamKeyring::new();
        let mut last = None;
        for _ in 0..n {
            let generation = r.u32()?;
            if last.is_some_and(|l| generation <= l) {
                return Err(DecodeError::InvalidValue.into());
            }
            last = Some(generation);
            let seed = zeroize::Zeroizing::new(r.array::<32>()?);
            keyring.insert(generation, SecretBytes::new(*seed));
        }
        r.finish()?;
        Ok(keyring)
    }
}

impl core::fmt::Debug for TeamKeyring {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TeamKeyring")
            .field("generations", &self.seeds.keys().collect::<Vec<_>>())
            .field("seeds", &"[redacted]")
            .finish()
    }
}
