//! The agent console's calls (feature `console`): create and follow teams, members and their
//! devices, roles, the verified chain in words, system notes, and the recovery key.

use js_sys::Array;
use sotto_client::client::TeamRef;
use sotto_core::device::DeviceId;
use sotto_core::team::{MemberId, Policy, Role, TeamId};
use wasm_bindgen::prelude::*;

use crate::client::{SottoClient, fail};
use crate::convert::{self, coded_error, conversation_id, number, object};

#[wasm_bindgen(typescript_custom_section)]
const TEAM_TYPES: &'static str = r#"
/** A member's role in a team. */
export type Role = "owner" | "admin" | "agent" | "viewer" | "billing" | "bot";

/** A member as the verified team chain shows it. */
export interface TeamMember {
  /** The member id (32 hex digits). */
  member: string;
  role: Role;
  /** Their active devices (64 hex digits each). */
  devices: string[];
  /** Whether this device is one of them. */
  me: boolean;
}

/** This device's place in a team. */
export interface Membership {
  member: string;
  role: Role;
}

/** What `SottoClient.exportRecoveryKey` gives: the words to write down and the stored backup. */
export interface RecoveryKit {
  /** 24 words; whoever holds them can open the backup. */
  words: string;
  /** The backup blob's id at the relay (32 hex digits). */
  blobId: string;
}

/** One verified link of a team chain, in words. */
export interface TeamLogEntry {
  seq: number;
  /** The author's clock, seconds since the Unix epoch. */
  at: number;
  /** The signing device. */
  author: string;
  description: string;
}
"#;

fn hex_id<const N: usize>(s: &str, what: &str) -> Result<[u8; N], JsValue> {
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out)
        .map_err(|_| coded_error("invalid_input", &format!("{what} is {} hex digits", N * 2)))?;
    Ok(out)
}

fn team_id(s: &str) -> Result<TeamId, JsValue> {
    hex_id(s, "a team id").map(TeamId)
}

fn member_id(s: &str) -> Result<MemberId, JsValue> {
    hex_id(s, "a member id").map(MemberId)
}

fn device_id(s: &str) -> Result<DeviceId, JsValue> {
    hex_id(s, "a device id").map(DeviceId)
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Owner => "owner",
        Role::Admin => "admin",
        Role::Agent => "agent",
        Role::Viewer => "viewer",
        Role::Billing => "billing",
        Role::Bot => "bot",
    }
}

fn role(name: &str) -> Result<Role, JsValue> {
    Ok(match name {
        "owner" => Role::Owner,
        "admin" => Role::Admin,
        "agent" => Role::Agent,
        "viewer" => Role::Viewer,
        "billing" => Role::Billing,
        "bot" => Role::Bot,
        _ => return Err(coded_error("invalid_input", "unknown role")),
    })
}

fn done(r: sotto_client::Result<()>) -> Result<JsValue, JsValue> {
    r.map_err(fail)?;
    Ok(JsValue::UNDEFINED)
}

#[wasm_bindgen]
impl SottoClient {
    /// Creates a team with this (member) device as its owner. Resolves to the team reference
    /// (`team_id:fingerprint`) the widget snippet and invitations carry.
    #[wasm_bindgen(js_name = createTeam, unchecked_return_type = "Promise<string>")]
    pub fn create_team(&self) -> js_sys::Promise {
        self.promise(|client| async move {
            let team = client.create_team(Policy::default()).await.map_err(fail)?;
            Ok(team.to_string().into())
        })
    }

    /// Follows a team from its reference, verifying its chain from the fingerprint. A member
    /// device gets its team keys once an admin added it (see `membership`).
    #[wasm_bindgen(js_name = joinTeam, unchecked_return_type = "Promise<void>")]
    pub fn join_team(
        &self,
        #[wasm_bindgen(js_name = teamRef)] team_ref: String,
    ) -> js_sys::Promise {
        self.promise(|client| async move {
            let team = TeamRef::parse(&team_ref).map_err(crate::client::fail)?;
            done(client.join_team(team).await)
        })
    }

    /// The references of the teams this device follows.
    #[wasm_bindgen(unchecked_return_type = "Promise<string[]>")]
    pub fn teams(&self) -> js_sys::Promise {
        self.promise(|client| async move {
            let out: Array = client
                .teams()
                .await
                .iter()
                .map(|t| JsValue::from(t.to_string()))
                .collect();
            Ok(out.into())
        })
    }

    /// This device's member id and role in the team, or `null` if it is not (yet) a member.
    #[wasm_bindgen(unchecked_return_type = "Promise<Membership | null>")]
    pub fn membership(&self, team: String) -> js_sys::Promise {
        self.promise(|client| async move {
            let team = team_id(&team)?;
            Ok(match client.membership(&team).await.map_err(fail)? {
                Some((member, r)) => object(&[
                    ("member", hex::encode(member.0).into()),
                    ("role", role_name(r).into()),
                ]),
                None => JsValue::NULL,
            })
        })
    }

    /// The team's members and their devices, from the verified chain.
    #[wasm_bindgen(unchecked_return_type = "Promise<TeamMember[]>")]
    pub fn members(&self, team: String) -> js_sys::Promise {
        self.promise(|client| async move {
            let team = team_id(&team)?;
            let me = client.device_id();
            let out: Array = client
                .members(&team)
                .await
                .map_err(fail)?
                .iter()
                .map(|m| {
                    let devices: Array = m
                        .devices
                        .iter()
                        .map(|d| JsValue::from(hex::encode(d.0)))
                        .collect();
                    object(&[
                        ("member", hex::encode(m.member.0).into()),
                        ("role", role_name(m.role).into()),
                        ("devices", devices.into()),
                        ("me", m.devices.contains(&me).into()),
                    ])
                })
                .collect();
            Ok(out.into())
        })
    }

    /// Adds the registered member device `device` (its id given out of band) as a new member
    /// with `role`. Resolves to the new member's id.
    #[wasm_bindgen(js_name = inviteMember, unchecked_return_type = "Promise<string>")]
    pub fn invite_member(
        &self,
        team: String,
        device: String,
        #[wasm_bindgen(js_name = role, unchecked_param_type = "Role")] role_: String,
    ) -> js_sys::Promise {
        self.promise(|client| async move {
            let member = client
                .invite_member(&team_id(&team)?, &device_id(&device)?, role(&role_)?)
                .await
                .map_err(fail)?;
            Ok(hex::encode(member.0).into())
        })
    }

    /// Changes a member's role.
    #[wasm_bindgen(js_name = changeRole, unchecked_return_type = "Promise<void>")]
    pub fn change_role(
        &self,
        team: String,
        member: String,
        #[wasm_bindgen(js_name = role, unchecked_param_type = "Role")] role_: String,
    ) -> js_sys::Promise {
        self.promise(|client| async move {
            done(
                client
                    .change_role(&team_id(&team)?, &member_id(&member)?, role(&role_)?)
                    .await,
            )
        })
    }

    /// Removes a member; the team key rotates with it.
    #[wasm_bindgen(js_name = removeMember, unchecked_return_type = "Promise<void>")]
    pub fn remove_member(&self, team: String, member: String) -> js_sys::Promise {
        self.promise(|client| async move {
            done(
                client
                    .remove_member(&team_id(&team)?, &member_id(&member)?)
                    .await,
            )
        })
    }

    /// Revokes one device of a member.
    #[wasm_bindgen(js_name = revokeDevice, unchecked_return_type = "Promise<void>")]
    pub fn revoke_device(&self, team: String, member: String, device: String) -> js_sys::Promise {
        self.promise(|client| async move {
            done(
                client
                    .revoke_device(&team_id(&team)?, &member_id(&member)?, &device_id(&device)?)
                    .await,
            )
        })
    }

    /// The team's verified chain, oldest first, each link in words.
    #[wasm_bindgen(js_name = teamLog, unchecked_return_type = "Promise<TeamLogEntry[]>")]
    pub fn team_log(&self, team: String) -> js_sys::Promise {
        self.promise(|client| async move {
            let out: Array = client
                .team_log(&team_id(&team)?)
                .await
                .map_err(fail)?
                .iter()
                .map(|e| {
                    object(&[
                        ("seq", number(e.seq)),
                        ("at", number(e.at)),
                        ("author", hex::encode(e.author.0).into()),
                        ("description", e.description.as_str().into()),
                    ])
                })
                .collect();
            Ok(out.into())
        })
    }

    /// Sends a system note (for example "Assigned to …"): a System-kind message whose `text`
    /// the other side shows apart from what people wrote.
    #[wasm_bindgen(js_name = sendSystem, unchecked_return_type = "Promise<Sent>")]
    pub fn send_system(&self, conversation: String, text: String) -> js_sys::Promise {
        self.promise(|client| async move {
            let conversation = conversation_id(&conversation)?;
            let sent = client
                .send_system_note(&conversation, &text)
                .await
                .map_err(fail)?;
            Ok(convert::sent(&sent))
        })
    }

    /// Makes a recovery key: a backup of this device sealed to fresh words, stored at the relay.
    #[wasm_bindgen(js_name = exportRecoveryKey, unchecked_return_type = "Promise<RecoveryKit>")]
    pub fn export_recovery_key(&self) -> js_sys::Promise {
        self.promise(|client| async move {
            let kit = client.export_recovery_kit().await.map_err(fail)?;
            Ok(object(&[
                ("words", kit.words.as_str().into()),
                ("blobId", kit.blob_id.as_str().into()),
            ]))
        })
    }
}
