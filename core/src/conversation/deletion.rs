//! Conversation deletions: a signed request, by someone allowed to, to erase a conversation
//! everywhere (PROTOCOL §7.13).
//!
//! The relay stores and forwards deletions but cannot make one: a client erases a
//! conversation's local history only for a deletion that [`ConversationDeletion::verify`]
//! accepts against its own verified team chain and the visitor devices of the conversation's
//! epoch records it verified. A relay's `404`, a dropped database row or a bare push frame is
//! not a deletion.

use super::ConversationId;
use crate::codec::{Decode, Encode, Reader, Writer};
use crate::crypto::sign::{Signature, SignatureContext};
use crate::device::{Device, DeviceId, DeviceKind, DeviceRecord};
use crate::error::DeletionError;
use crate::team::{Role, TeamId, TeamState};
use crate::wire::{self, ObjectType, WireObject};
use crate::{Error, Result};

/// Length of a deletion's wire form: header, team, conversation, author, time, signature.
pub const DELETION_WIRE_LEN: usize = 3 + 16 + 16 + 32 + 8 + 64;

/// A signed deletion of one conversation of one team.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConversationDeletion {
    /// The team the conversation belongs to.
    pub team: TeamId,
    /// The conversation deleted.
    pub conversation: ConversationId,
    /// The device that deleted it: one of the conversation's visitor devices, or a member
    /// device whose role may delete conversations.
    pub author: DeviceId,
    /// The author's clock, in seconds since the Unix epoch (shown, never trusted for order).
    pub created_at: u64,
    /// The author's signature over everything above.
    pub signature: Signature,
}

/// Why a verified deletion was allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeletionAuthority {
    /// One of the conversation's own visitor devices deleted it.
    Visitor,
    /// An active member device of this role (one that may delete conversations) deleted it.
    Member(Role),
}

impl ConversationDeletion {
    /// Signs the deletion of `conversation` of `team` by `author` at `now`.
    pub fn sign(author: &Device, team: TeamId, conversation: ConversationId, now: u64) -> Self {
        let mut deletion = ConversationDeletion {
            team,
            conversation,
            author: author.id(),
            created_at: now,
            signature: Signature::from_bytes([0; 64]),
        };
        deletion.signature =
            author.sign(SignatureContext::ConversationDeletion, &deletion.signed());
        deletion
    }

    /// `01 01 0D || team || conversation || author || created_at`.
    fn signed(&self) -> Vec<u8> {
        let mut w = Writer::new();
        wire::write_header(&mut w, ObjectType::ConversationDeletion);
        self.encode_fields(&mut w);
        w.into_bytes()
    }

    fn encode_fields(&self, w: &mut Writer) {
        w.put(&self.team);
        w.put(&self.conversation);
        w.put(&self.author);
        w.u64(self.created_at);
    }

    /// Checks that this deletion may erase `conversation`, for a client whose verified chain is
    /// `team` and whose verified epoch records of the conversation list `visitor_devices`:
    ///
    /// 1. it names the team (`deletion_wrong_team`) and the conversation
    ///    (`deletion_wrong_conversation`);
    /// 2. its author is one of `visitor_devices` (visitor kind), or an active member device of
    ///    the chain whose role may delete conversations ([`Role::can_delete_conversations`]);
    ///    anyone else, a removed or revoked device included, is `deletion_not_permitted`;
    /// 3. the author's signature verifies (`bad_signature`).
    pub fn verify(
        &self,
        team: &TeamState,
        conversation: &ConversationId,
        visitor_devices: &[DeviceRecord],
    ) -> Result<DeletionAuthority> {
        if self.team != team.team() {
            return Err(DeletionError::WrongTeam.into());
        }
        if self.conversation != *conversation {
            return Err(DeletionError::WrongConversation.into());
        }
        let visitor = visitor_devices
            .iter()
            .find(|d| d.id() == self.author && d.kind() == DeviceKind::Visitor);
        let (key, authority) = match visitor {
            Some(record) => (*record.identity(), DeletionAuthority::Visitor),
            None => {
                let role = team
                    .member_of(&self.author)
                    .map(|(_, role)| role)
                    .filter(|role| role.can_delete_conversations())
                    .ok_or(DeletionError::NotPermitted)?;
                let record = team
                    .device(&self.author)
                    .filter(|d| d.kind() == DeviceKind::Member)
                    .ok_or(DeletionError::NotPermitted)?;
                (*record.identity(), DeletionAuthority::Member(role))
            }
        };
        key.verify(
            SignatureContext::ConversationDeletion,
            &self.signed(),
            &self.signature,
        )?;
        Ok(authority)
    }
}

impl Encode for ConversationDeletion {
    fn encode(&self, w: &mut Writer) {
        self.encode_fields(w);
        w.array(self.signature.as_bytes());
    }
}

impl Decode for ConversationDeletion {
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(ConversationDeletion {
            team: r.get()?,
            conversation: r.get()?,
            author: r.get()?,
            created_at: r.u64()?,
            signature: Signature::from_bytes(r.array()?),
        })
    }
}

impl WireObject for ConversationDeletion {
    const OBJECT_TYPE: ObjectType = ObjectType::ConversationDeletion;
}

impl From<DeletionError> for Error {
    fn from(e: DeletionError) -> Self {
        Error::Deletion(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::team::{Change, MemberId, Policy, TeamKeyring};

    struct Fixture {
        rng: chacha20::ChaCha20Rng,
        owner: Device,
        state: TeamState,
        keyring: TeamKeyring,
        conversation: ConversationId,
        visitor: Device,
    }

    impl Fixture {
        fn new() -> Self {
            let mut rng = crate::test_rng(130);
            let owner = Device::generate(DeviceKind::Member, &mut rng, 0);
            let (_, state, keyring) =
                TeamState::create(&mut rng, &owner, &[], Policy::default(), 0).unwrap();
            let conversation = ConversationId::random(&mut rng);
            let visitor = Device::generate(DeviceKind::Visitor, &mut rng, 0);
            Fixture {
                rng,
                owner,
                state,
                keyring,
                conversation,
                visitor,
            }
        }

        fn change(&mut self, change: Change) {
            let link = self
                .state
                .propose(
                    &mut self.rng,
                    &self.owner,
                    &mut self.keyring,
                    change,
                    false,
                    0,
                )
                .unwrap();
            self.state.apply(&link).unwrap();
        }

        /// Adds a member of `role` with one new device.
        fn member(&mut self, role: Role) -> (MemberId, Device) {
            let device = Device::generate(DeviceKind::Member, &mut self.rng, 0);
            let member = MemberId::random(&mut self.rng);
            self.change(Change::AddMember {
                member,
                role,
                devices: vec![device.record()],
            });
            (member, device)
        }

        fn by(&self, author: &Device) -> ConversationDeletion {
            ConversationDeletion::sign(author, self.state.team(), self.conversation, 1000)
        }

        fn verify(&self, d: &ConversationDeletion) -> Result<DeletionAuthority> {
            let d = ConversationDeletion::from_wire(&d.to_wire()).unwrap();
            d.verify(&self.state, &self.conversation, &[self.visitor.record()])
        }
    }

    const NOT_PERMITTED: Error = Error::Deletion(DeletionError::NotPermitted);

    #[test]
    fn the_visitor_and_managers_delete_and_nobody_else() {
        let mut f = Fixture::new();
        assert_eq!(f.verify(&f.by(&f.visitor)), Ok(DeletionAuthority::Visitor));
        assert_eq!(
            f.verify(&f.by(&f.owner)),
            Ok(DeletionAuthority::Member(Role::Owner))
        );
        for role in [
            Role::Owner,
            Role::Admin,
            Role::Agent,
            Role::Viewer,
            Role::Billing,
            Role::Bot,
        ] {
            let (_, device) = f.member(role);
            let expected = if role.can_delete_conversations() {
                Ok(DeletionAuthority::Member(role))
            } else {
                Err(NOT_PERMITTED)
            };
            assert_eq!(f.verify(&f.by(&device)), expected, "{role:?}");
        }
    }

    #[test]
    fn removed_demoted_and_revoked_devices_do_not_delete() {
        let mut f = Fixture::new();
        let (admin, admin_device) = f.member(Role::Admin);
        let (demoted, demoted_device) = f.member(Role::Admin);
        let (_, manager) = f.member(Role::Admin);
        let second = Device::generate(DeviceKind::Member, &mut f.rng, 0);
        f.change(Change::AddDevice {
            member: admin,
            device: second.record(),
        });
        let deletions = [f.by(&admin_device), f.by(&demoted_device), f.by(&second)];
        for d in &deletions {
            assert!(f.verify(d).is_ok());
        }
        f.change(Change::RevokeDevice {
            member: admin,
            device: second.id(),
        });
        f.change(Change::ChangeRole {
            member: demoted,
            role: Role::Agent,
        });
        f.change(Change::RemoveMember { member: admin });
        for d in &deletions {
            assert_eq!(f.verify(d), Err(NOT_PERMITTED));
        }
        assert!(f.verify(&f.by(&manager)).is_ok());
    }

    #[test]
    fn a_visitor_deletes_only_its_own_conversation_of_its_team() {
        let mut f = Fixture::new();
        let other_visitor = Device::generate(DeviceKind::Visitor, &mut f.rng, 0);
        assert_eq!(f.verify(&f.by(&other_visitor)), Err(NOT_PERMITTED));
        // A listed device that is not of visitor kind is not the visitor.
        let (_, agent) = f.member(Role::Agent);
        let d = f.by(&agent);
        assert_eq!(
            d.verify(&f.state, &f.conversation, &[agent.record()]),
            Err(NOT_PERMITTED)
        );
        // Another conversation, another team.
        let other = ConversationId::random(&mut f.rng);
        let d = ConversationDeletion::sign(&f.visitor, f.state.team(), other, 5);
        assert_eq!(
            f.verify(&d),
            Err(Error::Deletion(DeletionError::WrongConversation))
        );
        let d = ConversationDeletion::sign(&f.visitor, TeamId([9; 16]), f.conversation, 5);
        assert_eq!(f.verify(&d), Err(Error::Deletion(DeletionError::WrongTeam)));
        let d = ConversationDeletion::sign(&f.owner, TeamId([9; 16]), f.conversation, 5);
        assert_eq!(f.verify(&d), Err(Error::Deletion(DeletionError::WrongTeam)));
    }

    #[test]
    fn every_altered_byte_is_refused_and_decoding_is_strict() {
        let f = Fixture::new();
        for author in [&f.visitor, &f.owner] {
            let bytes = f.by(author).to_wire();
            assert_eq!(bytes.len(), DELETION_WIRE_LEN);
            assert_eq!(&bytes[..3], &[1, 1, 13]);
            for i in 0..bytes.len() {
                for bit in [0x01u8, 0x80] {
                    let mut t = bytes.clone();
                    if let Some(b) = t.get_mut(i) {
                        *b ^= bit;
                    }
                    let ok = ConversationDeletion::from_wire(&t)
                        .and_then(|d| d.verify(&f.state, &f.conversation, &[f.visitor.record()]));
                    assert!(ok.is_err(), "byte {i} bit {bit:#x}");
                }
            }
            for cut in 0..bytes.len() {
                assert!(ConversationDeletion::from_wire(&bytes[..cut]).is_err());
            }
            let mut long = bytes.clone();
            long.push(0);
            assert_eq!(
                ConversationDeletion::from_wire(&long),
                Err(Error::Decode(crate::DecodeError::TrailingBytes))
            );
        }
    }

    #[test]
    fn a_signature_of_another_object_or_author_is_refused() {
        let mut f = Fixture::new();
        let d = f.by(&f.visitor);
        // The same bytes signed under another label.
        let mut other = d.clone();
        other.signature = f.visitor.sign(SignatureContext::Message, &d.signed());
        assert_eq!(f.verify(&other), Err(Error::BadSignature));
        // The owner's signature on the visitor's deletion, and the visitor's on the owner's.
        let (_, admin) = f.member(Role::Admin);
        let mut swapped = f.by(&admin);
        swapped.signature = f.by(&f.owner).signature;
        assert_eq!(f.verify(&swapped), Err(Error::BadSignature));
        let mut swapped = d.clone();
        swapped.created_at += 1;
        assert_eq!(f.verify(&swapped), Err(Error::BadSignature));
    }
}
