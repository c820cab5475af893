//! Visitor identity assertions: the company's backend, holding an integration key registered in
//! the team chain, vouches that a visitor device belongs to one of its customers until a time.
//! Agents then see a verified customer instead of an anonymous device.

use crate::codec::{Decode, Encode, Reader, Writer};
use crate::crypto::sign::{Signature, SignatureContext, SigningKey, VerifyingKey};
use crate::device::DeviceId;
use crate::error::DecodeError;
use crate::team::{TeamId, TeamState};
use crate::wire::{self, ObjectType, WireObject};
use crate::{Error, Result};

/// Longest customer id, in bytes of UTF-8.
pub const MAX_CUSTOMER_ID_LEN: usize = 128;

/// A signed statement: this visitor device is this customer of this team until `expires_at`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityAssertion {
    /// The team the assertion is for.
    pub team: TeamId,
    /// The visitor device vouched for.
    pub device: DeviceId,
    /// The company's own id for the customer.
    pub customer_id: String,
    /// Seconds since the Unix epoch after which the assertion is void.
    pub expires_at: u64,
    /// The integration key that signed.
    pub key: VerifyingKey,
    /// Its signature.
    pub signature: Signature,
}

/// Why an assertion was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssertionProblem {
    /// The signing key is not an integration key of the team's chain.
    UnknownKey,
    /// The signing key was an integration key, and the chain has revoked it.
    RevokedKey,
    /// The assertion names another team or another device.
    WrongSubject,
    /// The assertion has expired.
    Expired,
}

impl IdentityAssertion {
    fn signed_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        wire::write_header(&mut w, ObjectType::IdentityAssertion);
        w.put(&self.team);
        w.put(&self.device);
        w.bytes_u16(self.customer_id.as_bytes());
        w.u64(self.expires_at);
        w.array(self.key.as_bytes());
        w.into_bytes()
    }

    /// Signs an assertion with an integration key (run by the company's backend).
    pub fn sign(
        key: &SigningKey,
        team: TeamId,
        device: DeviceId,
        customer_id: &str,
        expires_at: u64,
    ) -> Result<Self> {
        if customer_id.is_empty() || customer_id.len() > MAX_CUSTOMER_ID_LEN {
            return Err(DecodeError::InvalidValue.into());
        }
        let mut a = IdentityAssertion {
            team,
            device,
            customer_id: customer_id.to_owned(),
            expires_at,
            key: key.verifying_key(),
            signature: Signature::from_bytes([0; 64]),
        };
        a.signature = key.sign(SignatureContext::IdentityAssertion, &a.signed_bytes());
        Ok(a)
    }

    /// Checks the assertion for `device` against the team's chain at `now`. Returns the
    /// problem for a well-signed assertion that does not apply, and an error for a bad signature.
    pub fn check(
        &self,
        team: &TeamState,
        device: &DeviceId,
        now: u64,
    ) -> Result<core::result::Result<(), AssertionProblem>> {
        self.key.verify(
            SignatureContext::IdentityAssertion,
            &self.signed_bytes(),
            &self.signature,
        )?;
        if team.is_revoked_integration_key(&self.key) {
            return Ok(Err(AssertionProblem::RevokedKey));
        }
        if !team.integration_keys().iter().any(|(_, k)| *k == self.key) {
            return Ok(Err(AssertionProblem::UnknownKey));
        }
        if self.team != team.team() || self.device != *device {
            return Ok(Err(AssertionProblem::WrongSubject));
        }
        if now >= self.expires_at {
            return Ok(Err(AssertionProblem::Expired));
        }
        Ok(Ok(()))
    }
}

impl Encode for IdentityAssertion {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.team);
        w.put(&self.device);
        w.bytes_u16(self.customer_id.as_bytes());
        w.u64(self.expires_at);
        w.array(self.key.as_bytes());
        w.array(self.signature.as_bytes());
    }
}

impl Decode for IdentityAssertion {
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let team = r.get()?;
        let device = r.get()?;
        let customer_id = r.string_u16(MAX_CUSTOMER_ID_LEN)?;
        if customer_id.is_empty() {
            return Err(Error::Decode(DecodeError::InvalidValue));
        }
        Ok(IdentityAssertion {
            team,
            device,
            customer_id,
            expires_at: r.u64()?,
            key: VerifyingKey::from_bytes(&r.array()?)?,
            signature: Signature::from_bytes(r.array()?),
        })
    }
}

impl WireObject for IdentityAssertion {
    const OBJECT_TYPE: ObjectType = ObjectType::IdentityAssertion;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::{Device, DeviceKind};
    use crate::team::{Change, Policy};

    #[test]
    fn only_a_chain_registered_key_vouches_and_only_until_expiry() {
        let mut rng = crate::test_rng(40);
        let owner = Device::generate(DeviceKind::Member, &mut rng, 0);
        let (_, mut state, mut keyring) =
            TeamState::create(&mut rng, &owner, &[], Policy::default(), 0).unwrap();
        let backend = SigningKey::generate(&mut rng);
        let visitor = Device::generate(DeviceKind::Visitor, &mut rng, 0);
        let a =
            IdentityAssertion::sign(&backend, state.team(), visitor.id(), "cust-42", 1000).unwrap();
        let a = IdentityAssertion::from_wire(&a.to_wire()).unwrap();
        assert_eq!(
            a.check(&state, &visitor.id(), 10).unwrap(),
            Err(AssertionProblem::UnknownKey)
        );

        let add = Change::AddIntegrationKey {
            name: "crm".into(),
            key: backend.verifying_key(),
        };
        let link = state
            .propose(&mut rng, &owner, &mut keyring, add, false, 0)
            .unwrap();
        state.apply(&link).unwrap();
        assert_eq!(a.check(&state, &visitor.id(), 10).unwrap(), Ok(()));
        assert_eq!(
            a.check(&state, &visitor.id(), 1000).unwrap(),
            Err(AssertionProblem::Expired)
        );
        let other = Device::generate(DeviceKind::Visitor, &mut rng, 0);
        assert_eq!(
            a.check(&state, &other.id(), 10).unwrap(),
            Err(AssertionProblem::WrongSubject)
        );

        // Changing the customer id breaks the signature.
        let mut forged = a.clone();
        forged.customer_id = "cust-43".into();
        assert_eq!(
            forged.check(&state, &visitor.id(), 10).unwrap_err(),
            Error::BadSignature
        );
    }
}
