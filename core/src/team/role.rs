//! Roles and what each may do (DESIGN 4.3). Permissions are enforced by every client when it
//! verifies the chain, and read access is enforced by who receives team keys.

use crate::Result;
use crate::error::DecodeError;

use super::policy::{HistoryMode, Policy};

/// A member's access level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Everything, including billing and deleting the team; a team always has one.
    Owner,
    /// Manages members, reads (with history) and sends; no billing.
    Admin,
    /// Reads and sends; reads history when the team policy allows.
    Agent,
    /// Reads current conversations, never history, never sends (supervision, QA).
    Viewer,
    /// Payments only: never receives a key.
    Billing,
    /// An integration device: reads current conversations and sends, no history.
    Bot,
}

impl Role {
    /// The role's byte on the wire.
    pub fn to_byte(self) -> u8 {
        match self {
            Role::Owner => 1,
            Role::Admin => 2,
            Role::Agent => 3,
            Role::Viewer => 4,
            Role::Billing => 5,
            Role::Bot => 6,
        }
    }

    /// The role for a wire byte.
    pub fn from_byte(b: u8) -> Result<Self> {
        Ok(match b {
            1 => Role::Owner,
            2 => Role::Admin,
            3 => Role::Agent,
            4 => Role::Viewer,
            5 => Role::Billing,
            6 => Role::Bot,
            _ => return Err(DecodeError::UnknownTag.into()),
        })
    }

    /// May add and remove members and devices, change roles and policy.
    pub fn can_manage_members(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }

    /// Receives the current team key.
    pub fn can_read(self) -> bool {
        !matches!(self, Role::Billing)
    }

    /// Receives earlier team key generations too. In ephemeral history mode nobody does.
    pub fn can_read_history(self, policy: &Policy) -> bool {
        if policy.history_mode == HistoryMode::Ephemeral {
            return false;
        }
        match self {
            Role::Owner | Role::Admin => true,
            Role::Agent => policy.agents_read_history,
            Role::Viewer | Role::Billing | Role::Bot => false,
        }
    }

    /// May send messages; every receiver checks this.
    pub fn can_send(self) -> bool {
        matches!(self, Role::Owner | Role::Admin | Role::Agent | Role::Bot)
    }

    /// May delete any conversation of the team (a customer's request, a data-protection
    /// erasure, spam): the managers. Agents and bots answer conversations but do not erase them;
    /// the visitor deletes its own conversation whatever this says (PROTOCOL §7.13).
    pub fn can_delete_conversations(self) -> bool {
        self.can_manage_members()
    }

    /// May see billing.
    pub fn can_bill(self) -> bool {
        matches!(self, Role::Owner | Role::Billing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_table_matches_the_design() {
        let retain_agents = Policy {
            agents_read_history: true,
            ..Policy::default()
        };
        let no_agent_history = Policy {
            agents_read_history: false,
            ..Policy::default()
        };
        let ephemeral = Policy {
            history_mode: HistoryMode::Ephemeral,
            ..retain_agents.clone()
        };
        // (role, manage, read, history with agents allowed, send, billing, delete conversations)
        let table = [
            (Role::Owner, true, true, true, true, true, true),
            (Role::Admin, true, true, true, true, false, true),
            (Role::Agent, false, true, true, true, false, false),
            (Role::Viewer, false, true, false, false, false, false),
            (Role::Billing, false, false, false, false, true, false),
            (Role::Bot, false, true, false, true, false, false),
        ];
        for (role, manage, read, history, send, bill, delete) in table {
            assert_eq!(role.can_delete_conversations(), delete, "{role:?}");
            assert_eq!(role.can_manage_members(), manage, "{role:?}");
            assert_eq!(role.can_read(), read, "{role:?}");
            assert_eq!(role.can_read_history(&retain_agents), history, "{role:?}");
            assert_eq!(role.can_send(), send, "{role:?}");
            assert_eq!(role.can_bill(), bill, "{role:?}");
            assert!(!role.can_read_history(&ephemeral), "{role:?}");
            assert_eq!(Role::from_byte(role.to_byte()).unwrap(), role);
        }
        assert!(!Role::Agent.can_read_history(&no_agent_history));
        assert!(Role::from_byte(0).is_err() && Role::from_byte(7).is_err());
    }
}
