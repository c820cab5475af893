//! Who may make which change (PROTOCOL §6.5, rule 3), as one function of the author's role, the
//! change and the role of the member it touches, so the whole table is in one place and a test
//! can try every combination against it.

use super::ids::MemberId;
use super::link::Change;
use super::role::Role;

/// Whether a device of member `author` with role `author_role` may make `change`, where
/// `target_role` is the current role of the member the change names (for RemoveMember,
/// ChangeRole, AddDevice and RevokeDevice; `None` for other changes or an unknown member).
///
/// The owner role is guarded everywhere: nothing an admin does can add an owner, take the
/// role away from one, or add or revoke an owner's device. A device planted on an owner member
/// would let its author act as that owner (and then revoke the real owner's devices), so only
/// owners touch owners' devices.
pub fn permitted(
    author: &MemberId,
    author_role: Role,
    change: &Change,
    target_role: Option<Role>,
) -> bool {
    let manage = author_role.can_manage_members();
    let owner = author_role == Role::Owner;
    let target_owner = target_role == Some(Role::Owner);
    match change {
        Change::CreateTeam { .. } => false,
        Change::AddMember { role, .. } => manage && (*role != Role::Owner || owner),
        Change::RemoveMember { .. } => manage && (!target_owner || owner),
        Change::ChangeRole { role, .. } => {
            manage && ((!target_owner && *role != Role::Owner) || owner)
        }
        Change::AddDevice { member, .. } | Change::RevokeDevice { member, .. } => {
            if target_owner {
                owner
            } else {
                manage || author == member
            }
        }
        Change::RotateKey
        | Change::SetPolicy { .. }
        | Change::AddIntegrationKey { .. }
        | Change::RevokeIntegrationKey { .. } => manage,
        // The witness decides which heads clients accept as fresh: only an owner names it.
        Change::DeleteTeam | Change::SetWitness { .. } => owner,
    }
}

/// Whether an author of `author_role` may attach a key rotation that the change does not
/// require. A rotation's author chooses the new seed and so reads everything sealed to it: an
/// author without read access (billing) must never choose one, and only managers decide when the
/// team key rotates.
pub fn may_rotate_unrequired(author_role: Role) -> bool {
    author_role.can_manage_members()
}
