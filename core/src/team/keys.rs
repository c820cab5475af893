//! Team key generations: sealing a generation's seed to a device and opening it again.
//!
//! A generation is a random 32-byte seed; its X25519 key pair is DHKEM's DeriveKeyPair(seed),
//! so a device that opens a wrap can check the seed against the generation's public key in the
//! chain and detect a wrong wrap.

use std::collections::BTreeMap;

use super::ids::TeamId;
use super::link::KeyWrap;
use crate::Result;
use crate::crypto::agreement::{AgreementPublicKey, AgreementSecret};
use crate::crypto::hpke;
use crate::crypto::secret::SecretBytes;
use crate::device::{Device, DeviceRecord};
use crate::error::ChainError;

const WRAP_INFO_LABEL: &[u8] = b"sotto/v1/team-key-wrap\0";

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
    seeds: BTreeMap<u32, SecretBytes<32>>,
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
}

impl core::fmt::Debug for TeamKeyring {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TeamKeyring")
            .field("generations", &self.seeds.keys().collect::<Vec<_>>())
            .field("seeds", &"[redacted]")
            .finish()
    }
}
