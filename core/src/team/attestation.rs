//! Head attestations: a read-permitted member device's signed statement "the head of this team
//! was H at time t". Online member clients renew them; a visitor refuses to seal to a head whose
//! newest attestation is older than the policy's freshness limit, which bounds how long a relay
//! can hide a removal from visitors by withholding links.

use super::ids::{LinkHash, TeamId};
use super::state::TeamState;
use crate::Result;
use crate::codec::{Decode, Encode, Reader, Writer};
use crate::crypto::sign::{Signature, SignatureContext};
use crate::device::{Device, DeviceId};
use crate::error::ChainError;
use crate::wire::{self, ObjectType, WireObject};

/// How far in the future an attestation's time may be, for clock skew between devices.
pub const MAX_CLOCK_SKEW_SECS: u64 = 300;

/// A signed statement of a team's chain head at a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeadAttestation {
    /// The team.
    pub team: TeamId,
    /// The head's sequence number.
    pub seq: u64,
    /// The head's hash.
    pub head: LinkHash,
    /// When the attesting device saw this as the head, in seconds since the Unix epoch.
    pub time: u64,
    /// The attesting device.
    pub author: DeviceId,
    /// Its signature.
    pub signature: Signature,
}

impl HeadAttestation {
    fn signed_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        wire::write_header(&mut w, ObjectType::HeadAttestation);
        w.put(&self.team);
        w.u64(self.seq);
        w.put(&self.head);
        w.u64(self.time);
        w.put(&self.author);
        w.into_bytes()
    }

    /// Attests `state`'s head at `now` with `device`.
    pub fn sign(state: &TeamState, device: &Device, now: u64) -> Self {
        let mut a = HeadAttestation {
            team: state.team(),
            seq: state.seq(),
            head: state.head(),
            time: now,
            author: device.id(),
            signature: Signature::from_bytes([0; 64]),
        };
        a.signature = device.sign(SignatureContext::HeadAttestation, &a.signed_bytes());
        a
    }

    /// Checks that the attestation is for `state`'s head, by an active device of a member with
    /// read access there, and that it is no older than the policy's freshness limit at `now`.
    pub fn check_fresh(&self, state: &TeamState, now: u64) -> Result<()> {
        if self.team != state.team() || self.seq != state.seq() || self.head != state.head() {
            return Err(ChainError::BadAttestation.into());
        }
        let (_, role) = state
            .member_of(&self.author)
            .ok_or(ChainError::BadAttestation)?;
        let record = state
            .device(&self.author)
            .ok_or(ChainError::BadAttestation)?;
        if !role.can_read() {
            return Err(ChainError::BadAttestation.into());
        }
        record.identity().verify(
            SignatureContext::HeadAttestation,
            &self.signed_bytes(),
            &self.signature,
        )?;
        if self.time > now.saturating_add(MAX_CLOCK_SKEW_SECS) {
            return Err(ChainError::BadAttestation.into());
        }
        let limit = u64::from(state.policy().freshness_limit_secs);
        if now.saturating_sub(self.time) > limit {
            return Err(ChainError::StaleHead.into());
        }
        Ok(())
    }
}

impl Encode for HeadAttestation {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.team);
        w.u64(self.seq);
        w.put(&self.head);
        w.u64(self.time);
        w.put(&self.author);
        w.array(self.signature.as_bytes());
    }
}

impl Decode for HeadAttestation {
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(HeadAttestation {
            team: r.get()?,
            seq: r.u64()?,
            head: r.get()?,
            time: r.u64()?,
            author: r.get()?,
            signature: Signature::from_bytes(r.array()?),
        })
    }
}

impl WireObject for HeadAttestation {
    const OBJECT_TYPE: ObjectType = ObjectType::HeadAttestation;
}
