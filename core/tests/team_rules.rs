//! Insider attacks on the team chain: members acting beyond their role, readers without history
//! access, bad key wraps and leaked integration keys. Each test is an attack that the old rules
//! let through, or the table every rule must match.

use sotto_core::conversation::identity::{AssertionProblem, IdentityAssertion};
use sotto_core::crypto::secret::SecretBytes;
use sotto_core::crypto::sign::SigningKey;
use sotto_core::device::{Device, DeviceKind};
use sotto_core::team::{
    Change, HistoryMode, Link, MemberId, Policy, Role, TeamKeyring, TeamState, permitted,
};

mod common;

use common::team::{Member, T0, Team, catch_up};
use sotto_core::{ChainError, Error};

const ROLES: [Role; 6] = [
    Role::Owner,
    Role::Admin,
    Role::Agent,
    Role::Viewer,
    Role::Billing,
    Role::Bot,
];

fn chain_err(e: Error) -> ChainError {
    match e {
        Error::Chain(c) => c,
        other => panic!("expected a chain error, got {other:?}"),
    }
}

fn generations(k: &TeamKeyring) -> Vec<u32> {
    k.generations().collect()
}

/// `who` proposes `change` on the team's current state.
fn propose(
    team: &mut Team,
    who: &mut Member,
    change: Change,
    rotate: bool,
) -> sotto_core::Result<Link> {
    team.state.propose(
        &mut team.rng,
        &who.device,
        &mut who.keyring,
        change,
        rotate,
        T0,
    )
}

/// A link the owner could make, re-signed by `author`: what a member acting beyond its role
/// (or the relay on its behalf) would post. Only the author's permission differs.
fn forged_by(team: &mut Team, author: &Device, change: Change, rotate: bool) -> Link {
    let mut link = team
        .state
        .propose(
            &mut team.rng,
            &team.owner.device,
            &mut team.owner.keyring.clone(),
            change,
            rotate,
            T0,
        )
        .unwrap();
    link.author = author.id();
    link.sign(author);
    link
}

/// A member with two devices, so one can be revoked and the member stays.
fn add_with_two_devices(team: &mut Team, role: Role) -> (Member, Device) {
    let m = team.add(role);
    let second = Device::generate(DeviceKind::Member, &mut team.rng, T0);
    team.owner_does(Change::AddDevice {
        member: m.member,
        device: second.record(),
    });
    (m, second)
}

/// The permission table of PROTOCOL §6.5 written out independently of `team::permitted`:
/// whether an author of `author` role may make the change named `kind` to a member of `target`
/// role (or, for AddMember, adding a member of `target` role); `own` when the change is to the
/// author's own member.
fn expected(author: Role, kind: &str, target: Role, own: bool) -> bool {
    use Role::*;
    let managers = [Owner, Admin];
    let is_manager = managers.contains(&author);
    match kind {
        "add_member" | "remove_member" => is_manager && (target != Owner || author == Owner),
        "change_role_to_owner" => author == Owner,
        "change_role_to_agent" => is_manager && (target != Owner || author == Owner),
        "add_device" | "revoke_device" => {
            if target == Owner {
                author == Owner
            } else {
                is_manager || own
            }
        }
        "rotate" | "set_policy" | "add_integration_key" | "revoke_integration_key" => is_manager,
        "delete_team" | "set_witness" => author == Owner,
        other => panic!("no row for {other}"),
    }
}

#[test]
fn every_author_role_target_role_and_change_is_judged_by_the_rules() {
    let mut tried = 0;
    for (i, author_role) in ROLES.into_iter().enumerate() {
        for (j, target_role) in ROLES.into_iter().enumerate() {
            let mut team = Team::new(100 + (i * 6 + j) as u64, Policy::default());
            let backend = SigningKey::generate(&mut team.rng);
            team.owner_does(Change::AddIntegrationKey {
                name: "crm".into(),
                key: backend.verifying_key(),
            });
            let (author, author_second) = add_with_two_devices(&mut team, author_role);
            let (target, target_second) = add_with_two_devices(&mut team, target_role);
            let newcomer = Device::generate(DeviceKind::Member, &mut team.rng, T0);
            let other_backend = SigningKey::generate(&mut team.rng);
            let mut cases: Vec<(&str, Change, Role, bool)> = vec![
                (
                    "add_member",
                    Change::AddMember {
                        member: MemberId::random(&mut team.rng),
                        role: target_role,
                        devices: vec![newcomer.record()],
                    },
                    target_role,
                    false,
                ),
                (
                    "remove_member",
                    Change::RemoveMember {
                        member: target.member,
                    },
                    target_role,
                    false,
                ),
                (
                    "change_role_to_owner",
                    Change::ChangeRole {
                        member: target.member,
                        role: Role::Owner,
                    },
                    target_role,
                    false,
                ),
                (
                    "change_role_to_agent",
                    Change::ChangeRole {
                        member: target.member,
                        role: Role::Agent,
                    },
                    target_role,
                    false,
                ),
                (
                    "add_device",
                    Change::AddDevice {
                        member: target.member,
                        device: newcomer.record(),
                    },
                    target_role,
                    false,
                ),
                (
                    "revoke_device",
                    Change::RevokeDevice {
                        member: target.member,
                        device: target_second.id(),
                    },
                    target_role,
                    false,
                ),
                ("rotate", Change::RotateKey, target_role, false),
                (
                    "set_policy",
                    Change::SetPolicy {
                        policy: Policy {
                            epoch_max_messages: 77,
                            ..Policy::default()
                        },
                    },
                    target_role,
                    false,
                ),
                (
                    "add_integration_key",
                    Change::AddIntegrationKey {
                        name: "bot".into(),
                        key: other_backend.verifying_key(),
                    },
                    target_role,
                    false,
                ),
                (
                    "revoke_integration_key",
                    Change::RevokeIntegrationKey {
                        key: backend.verifying_key(),
                    },
                    target_role,
                    false,
                ),
                (
                    "set_witness",
                    Change::SetWitness {
                        url: "https://witness.example.com".into(),
                        key: other_backend.verifying_key(),
                    },
                    target_role,
                    false,
                ),
                ("delete_team", Change::DeleteTeam, target_role, false),
            ];
            // The same device changes to the author's own member.
            cases.push((
                "add_device",
                Change::AddDevice {
                    member: author.member,
                    device: newcomer.record(),
                },
                author_role,
                true,
            ));
            cases.push((
                "revoke_device",
                Change::RevokeDevice {
                    member: author.member,
                    device: author_second.id(),
                },
                author_role,
                true,
            ));
            for (kind, change, target_of_rule, own) in cases {
                let want = expected(author_role, kind, target_of_rule, own);
                let target_now = match &change {
                    Change::AddMember { .. } => None,
                    Change::RemoveMember { member }
                    | Change::ChangeRole { member, .. }
                    | Change::AddDevice { member, .. }
                    | Change::RevokeDevice { member, .. } => {
                        team.state.members().get(member).map(|m| m.role)
                    }
                    _ => None,
                };
                assert_eq!(
                    permitted(&author.member, author_role, &change, target_now),
                    want,
                    "{author_role:?} {kind} on {target_role:?} (own: {own})"
                );
                // The same verdict when a client verifies the link, and a refusal changes
                // nothing.
                let link = forged_by(&mut team, &author.device, change.clone(), false);
                let mut state = team.state.clone();
                match state.apply(&link) {
                    Ok(()) => assert!(want, "{author_role:?} {kind} on {target_role:?} accepted"),
                    Err(e) => {
                        assert!(!want, "{author_role:?} {kind} on {target_role:?}: {e:?}");
                        assert_eq!(chain_err(e), ChainError::NotPermitted);
                        assert_eq!(state, team.state, "a refused link changed the state");
                    }
                }
                // Proposing it agrees.
                let mut me = Member {
                    device: author.device.clone(),
                    keyring: author.keyring.clone(),
                    member: author.member,
                };
                let proposed = propose(&mut team, &mut me, change, false);
                if !want {
                    assert_eq!(chain_err(proposed.unwrap_err()), ChainError::NotPermitted);
                }
                tried += 1;
            }
        }
    }
    assert_eq!(tried, 6 * 6 * 14);
}

#[test]
fn an_admin_cannot_take_over_an_owner() {
    let mut team = Team::new(20, Policy::default());
    let mut admin = team.add(Role::Admin);
    let planted = Device::generate(DeviceKind::Member, &mut team.rng, T0);
    // Step 1 of the takeover: plant a device of the admin's on the owner member.
    let plant = Change::AddDevice {
        member: team.owner.member,
        device: planted.record(),
    };
    assert_eq!(
        chain_err(propose(&mut team, &mut admin, plant.clone(), false).unwrap_err()),
        ChainError::NotPermitted
    );
    let forged = forged_by(&mut team, &admin.device, plant, false);
    assert_eq!(
        chain_err(team.state.clone().apply(&forged).unwrap_err()),
        ChainError::NotPermitted
    );
    // Step 2: revoke the real owner's device.
    let revoke = Change::RevokeDevice {
        member: team.owner.member,
        device: team.owner.device.id(),
    };
    assert_eq!(
        chain_err(propose(&mut team, &mut admin, revoke, false).unwrap_err()),
        ChainError::NotPermitted
    );
    // Step 3: promote itself, or delete the team.
    for change in [
        Change::ChangeRole {
            member: admin.member,
            role: Role::Owner,
        },
        Change::DeleteTeam,
        Change::RemoveMember {
            member: team.owner.member,
        },
    ] {
        assert_eq!(
            chain_err(propose(&mut team, &mut admin, change, false).unwrap_err()),
            ChainError::NotPermitted
        );
    }
    // An owner may add a device to another owner.
    let second_owner = team.add(Role::Owner);
    let mut owner = Member {
        device: second_owner.device.clone(),
        keyring: second_owner.keyring.clone(),
        member: second_owner.member,
    };
    let first_owner = team.owner.member;
    let link = propose(
        &mut team,
        &mut owner,
        Change::AddDevice {
            member: first_owner,
            device: planted.record(),
        },
        false,
    )
    .unwrap();
    team.accept(&link);
}

#[test]
fn read_without_history_always_starts_a_new_generation() {
    for role in [Role::Viewer, Role::Bot] {
        let mut team = Team::new(30, Policy::default());
        let before = team.state.current_key().unwrap().0;
        let m = team.add(role);
        let link = team.links.last().unwrap();
        assert_eq!(
            link.rotation.as_ref().map(|g| g.generation),
            Some(before + 1),
            "{role:?}"
        );
        assert_eq!(generations(&m.keyring), vec![before + 1], "{role:?}");
    }
    // An agent without history access, and anyone in ephemeral mode.
    for (policy, role) in [
        (
            Policy {
                agents_read_history: false,
                ..Policy::default()
            },
            Role::Agent,
        ),
        (
            Policy {
                history_mode: HistoryMode::Ephemeral,
                ..Policy::default()
            },
            Role::Admin,
        ),
    ] {
        let mut team = Team::new(31, policy);
        let m = team.add(role);
        assert_eq!(generations(&m.keyring), vec![1], "{role:?}");
    }
    // With history access, no rotation is needed: the newcomer gets every generation.
    let mut team = Team::new(32, Policy::default());
    let agent = team.add(Role::Agent);
    assert!(team.links.last().unwrap().rotation.is_none());
    assert_eq!(generations(&agent.keyring), vec![0]);

    // A billing member made a viewer starts at a new generation too.
    let billing = team.add(Role::Billing);
    let link = team.owner_does(Change::ChangeRole {
        member: billing.member,
        role: Role::Viewer,
    });
    assert_eq!(link.rotation.as_ref().map(|g| g.generation), Some(1));

    // A link that adds a viewer without the rotation is refused.
    let viewer = Device::generate(DeviceKind::Member, &mut team.rng, T0);
    let viewer_member = MemberId::random(&mut team.rng);
    let mut link = team
        .state
        .propose(
            &mut team.rng,
            &team.owner.device,
            &mut team.owner.keyring.clone(),
            Change::AddMember {
                member: viewer_member,
                role: Role::Viewer,
                devices: vec![viewer.record()],
            },
            false,
            T0,
        )
        .unwrap();
    // Only the newcomer's wrap of the current generation, which verifiers cannot open.
    let sealed = link.wraps[0].sealed.clone();
    link.rotation = None;
    link.wraps = vec![sotto_core::team::link::KeyWrap {
        device: viewer.id(),
        generation: 1,
        sealed,
    }];
    link.sign(&team.owner.device);
    assert_eq!(
        chain_err(team.state.clone().apply(&link).unwrap_err()),
        ChainError::MissingRotation
    );

    // A second device of an existing viewer gets what its member holds, so no rotation.
    let mut team = Team::new(33, Policy::default());
    let viewer = team.add(Role::Viewer);
    let second = Device::generate(DeviceKind::Member, &mut team.rng, T0);
    let link = team.owner_does(Change::AddDevice {
        member: viewer.member,
        device: second.record(),
    });
    assert!(link.rotation.is_none());
}

#[test]
fn only_managers_rotate_when_the_change_does_not_require_it() {
    let mut team = Team::new(40, Policy::default());
    let mut billing = team.add(Role::Billing);
    let mut agent = team.add(Role::Agent);
    let mut viewer = team.add(Role::Viewer);
    // The billing member adds a device of its own and attaches a rotation whose seed it
    // chose: it would read everything sealed to that generation.
    let own = Device::generate(DeviceKind::Member, &mut team.rng, T0);
    let add_own = Change::AddDevice {
        member: billing.member,
        device: own.record(),
    };
    assert_eq!(
        chain_err(propose(&mut team, &mut billing, add_own.clone(), true).unwrap_err()),
        ChainError::NotPermitted
    );
    let forged = forged_by(&mut team, &billing.device, add_own.clone(), true);
    assert!(forged.rotation.is_some());
    assert_eq!(
        chain_err(team.state.clone().apply(&forged).unwrap_err()),
        ChainError::NotPermitted
    );
    // Without the rotation it is its own business.
    let plain = propose(&mut team, &mut billing, add_own, false).unwrap();
    team.accept(&plain);
    // Readers who do not manage may not rotate on their own either.
    for m in [&mut agent, &mut viewer] {
        assert_eq!(
            chain_err(propose(&mut team, m, Change::RotateKey, false).unwrap_err()),
            ChainError::NotPermitted
        );
    }
    // A rotation a change requires is made by whoever may make the change: an agent revoking
    // its own lost phone.
    let (mut agent2, phone) = add_with_two_devices(&mut team, Role::Agent);
    let revoke_phone = Change::RevokeDevice {
        member: agent2.member,
        device: phone.id(),
    };
    let link = propose(&mut team, &mut agent2, revoke_phone, false).unwrap();
    assert!(link.rotation.is_some());
    team.accept(&link);
}

#[test]
fn a_bad_wrap_is_reported_and_the_team_recovers_by_removing_its_author() {
    let mut team = Team::new(50, Policy::default());
    let mut admin = team.add(Role::Admin);
    let mut victim = team.add(Role::Agent);
    let mut rotation = propose(&mut team, &mut admin, Change::RotateKey, false).unwrap();
    // The admin seals the agent a seed of its own choosing; nobody but the agent can tell.
    let bogus = sotto_core::team::keys::wrap(
        &mut team.rng,
        &team.state.team(),
        1,
        &SecretBytes::new([5; 32]),
        &victim.device.record(),
    )
    .unwrap();
    for w in rotation
        .wraps
        .iter_mut()
        .filter(|w| w.device == victim.device.id())
    {
        *w = bogus.clone();
    }
    rotation.sign(&admin.device);
    team.accept(&rotation);

    // The victim verifies the link, refuses that one wrap and keeps the rest.
    let mut state = team.state.clone();
    let refused = state.absorb_keys(&rotation, &victim.device, &mut victim.keyring);
    assert_eq!(refused, vec![1]);
    assert_eq!(generations(&victim.keyring), vec![0]);

    // The owner removes the admin, which rotates; the victim follows and reads again.
    let removal = team.owner_does(Change::RemoveMember {
        member: admin.member,
    });
    state.apply(&removal).unwrap();
    assert!(
        state
            .absorb_keys(&removal, &victim.device, &mut victim.keyring)
            .is_empty()
    );
    assert_eq!(generations(&victim.keyring), vec![0, 2]);
    assert_eq!(state, team.state);
    catch_up(&team.links, &team.state, &mut admin);
    assert!(generations(&admin.keyring).is_empty());
}

#[test]
fn a_revoked_integration_key_vouches_for_nobody_and_cannot_return() {
    let mut team = Team::new(60, Policy::default());
    let backend = SigningKey::generate(&mut team.rng);
    team.owner_does(Change::AddIntegrationKey {
        name: "crm".into(),
        key: backend.verifying_key(),
    });
    let visitor = Device::generate(DeviceKind::Visitor, &mut team.rng, T0);
    let assertion = IdentityAssertion::sign(
        &backend,
        team.state.team(),
        visitor.id(),
        "cust-7",
        T0 + 3600,
    )
    .unwrap();
    assert_eq!(
        assertion.check(&team.state, &visitor.id(), T0).unwrap(),
        Ok(())
    );

    team.owner_does(Change::RevokeIntegrationKey {
        key: backend.verifying_key(),
    });
    assert_eq!(
        assertion.check(&team.state, &visitor.id(), T0).unwrap(),
        Err(AssertionProblem::RevokedKey)
    );
    assert!(team.state.integration_keys().is_empty());
    // Verified from the fingerprint, the revocation holds too.
    assert_eq!(team.verified(), team.state);

    // It cannot be added back, and an unknown key cannot be revoked.
    let mut owner = Member {
        device: team.owner.device.clone(),
        keyring: team.owner.keyring.clone(),
        member: team.owner.member,
    };
    let re_add = Change::AddIntegrationKey {
        name: "crm again".into(),
        key: backend.verifying_key(),
    };
    assert_eq!(
        chain_err(propose(&mut team, &mut owner, re_add, false).unwrap_err()),
        ChainError::RevokedKey
    );
    let stranger = SigningKey::generate(&mut team.rng);
    assert_eq!(
        chain_err(
            propose(
                &mut team,
                &mut owner,
                Change::RevokeIntegrationKey {
                    key: stranger.verifying_key()
                },
                false
            )
            .unwrap_err()
        ),
        ChainError::MembershipConflict
    );
    // The state after a refused change is the state before it.
    let before = team.state.clone();
    let forged = {
        let mut l = team.links.last().unwrap().clone();
        l.seq += 1;
        l.previous = team.state.head();
        l.change = Change::AddIntegrationKey {
            name: "x".into(),
            key: backend.verifying_key(),
        };
        l.rotation = None;
        l.wraps.clear();
        l.author = team.owner.device.id();
        l.sign(&team.owner.device);
        l
    };
    assert_eq!(
        chain_err(team.state.apply(&forged).unwrap_err()),
        ChainError::RevokedKey
    );
    assert_eq!(team.state, before);
    let _ = TeamState::verify_chain(&team.links, &team.links[0].hash()).unwrap();
}

#[test]
fn downgrades_rotate_exactly_when_read_is_lost() {
    let mut team = Team::new(90, Policy::default());
    // Agent to viewer: still a reader, nothing to take back, nothing gained.
    let agent = team.add(Role::Agent);
    let link = team.owner_does(Change::ChangeRole {
        member: agent.member,
        role: Role::Viewer,
    });
    assert!(link.rotation.is_none());
    // Viewer to billing: read access is lost, so the key rotates and billing gets no wrap.
    let link = team.owner_does(Change::ChangeRole {
        member: agent.member,
        role: Role::Billing,
    });
    assert!(link.rotation.is_some());
    assert!(link.wraps.iter().all(|w| w.device != agent.device.id()));

    // An owner with a recovery device demoted to billing: the recovery device goes, and the
    // loss of read access still rotates.
    let mut team = Team::new(91, Policy::default());
    let second_owner = team.add(Role::Owner);
    let recovery = sotto_core::recovery::RecoverySecret::generate(&mut team.rng).device();
    team.owner_does(Change::AddDevice {
        member: second_owner.member,
        device: recovery.record(),
    });
    assert!(team.state.device(&recovery.id()).is_some());
    let before = team.state.clone();
    let demote = Change::ChangeRole {
        member: second_owner.member,
        role: Role::Billing,
    };
    let mut link = team
        .state
        .propose(
            &mut team.rng,
            &team.owner.device,
            &mut team.owner.keyring.clone(),
            demote,
            false,
            T0,
        )
        .unwrap();
    assert!(link.rotation.is_some());
    let mut state = before.clone();
    state.apply(&link).unwrap();
    assert!(state.device(&recovery.id()).is_none());
    assert!(state.device(&second_owner.device.id()).is_some());
    link.rotation = None;
    link.wraps.clear();
    link.sign(&team.owner.device);
    let mut state = before.clone();
    assert_eq!(
        chain_err(state.apply(&link).unwrap_err()),
        ChainError::MissingRotation
    );
    // Promoted back to owner, a member keeps its devices (recovery ones are only dropped on
    // the way out of the owner role).
    let third = team.add(Role::Admin);
    let third_recovery = sotto_core::recovery::RecoverySecret::generate(&mut team.rng).device();
    team.owner_does(Change::ChangeRole {
        member: third.member,
        role: Role::Owner,
    });
    team.owner_does(Change::AddDevice {
        member: third.member,
        device: third_recovery.record(),
    });
    team.owner_does(Change::ChangeRole {
        member: third.member,
        role: Role::Owner,
    });
    assert!(team.state.device(&third_recovery.id()).is_some());
}

#[test]
fn names_and_rotations_are_held_to_their_exact_limits() {
    let mut team = Team::new(92, Policy::default());
    let mut owner = Member {
        device: team.owner.device.clone(),
        keyring: team.owner.keyring.clone(),
        member: team.owner.member,
    };
    let key = |team: &mut Team| SigningKey::generate(&mut team.rng).verifying_key();
    let longest = "n".repeat(sotto_core::team::link::MAX_NAME_LEN);
    let k = key(&mut team);
    let link = propose(
        &mut team,
        &mut owner,
        Change::AddIntegrationKey {
            name: longest.clone(),
            key: k,
        },
        false,
    )
    .unwrap();
    team.accept(&link);
    let k = key(&mut team);
    let too_long = Change::AddIntegrationKey {
        name: format!("{longest}n"),
        key: k,
    };
    assert_eq!(
        chain_err(propose(&mut team, &mut owner, too_long, false).unwrap_err()),
        ChainError::NotPermitted
    );

    // The witness URL may be as long as its limit, and no longer.
    let url = format!(
        "https://{}",
        "w".repeat(sotto_core::team::link::MAX_WITNESS_URL_LEN - 8)
    );
    let k = key(&mut team);
    let link = propose(
        &mut team,
        &mut owner,
        Change::SetWitness {
            url: url.clone(),
            key: k,
        },
        false,
    )
    .unwrap();
    team.accept(&link);
    let k = key(&mut team);
    assert!(
        propose(
            &mut team,
            &mut owner,
            Change::SetWitness {
                url: format!("{url}w"),
                key: k,
            },
            false,
        )
        .is_err()
    );

    // A rotation must be exactly the next generation, and a deleted team takes none.
    let mut skip = propose(&mut team, &mut owner, Change::RotateKey, false).unwrap();
    if let Some(g) = skip.rotation.as_mut() {
        g.generation += 1;
    }
    skip.sign(&team.owner.device);
    assert_eq!(
        chain_err(team.state.clone().apply(&skip).unwrap_err()),
        ChainError::BadRotation
    );
    let mut delete = propose(&mut team, &mut owner, Change::DeleteTeam, false).unwrap();
    let rotation = propose(&mut team, &mut owner, Change::RotateKey, false).unwrap();
    delete.rotation = rotation.rotation;
    delete.sign(&team.owner.device);
    assert_eq!(
        chain_err(team.state.clone().apply(&delete).unwrap_err()),
        ChainError::BadRotation
    );
}

#[test]
fn only_an_owner_lengthens_the_freshness_limit_and_never_past_a_day() {
    let mut team = Team::new(93, Policy::default());
    let mut admin = team.add(Role::Admin);
    let longer = Policy {
        freshness_limit_secs: 2 * 3600,
        ..Policy::default()
    };
    // An admin may not weaken the bound (the relay would replay old statements for longer)...
    assert_eq!(
        chain_err(
            propose(
                &mut team,
                &mut admin,
                Change::SetPolicy {
                    policy: longer.clone()
                },
                false
            )
            .unwrap_err()
        ),
        ChainError::NotPermitted
    );
    // ...but may tighten it; an owner may lengthen it, up to a day and no further.
    let shorter = Policy {
        freshness_limit_secs: 600,
        ..Policy::default()
    };
    let link = propose(
        &mut team,
        &mut admin,
        Change::SetPolicy { policy: shorter },
        false,
    )
    .unwrap();
    team.accept(&link);
    team.owner_does(Change::SetPolicy {
        policy: Policy {
            freshness_limit_secs: sotto_core::team::policy::MAX_FRESHNESS_LIMIT_SECS,
            ..Policy::default()
        },
    });
    let mut owner = Member {
        device: team.owner.device.clone(),
        keyring: team.owner.keyring.clone(),
        member: team.owner.member,
    };
    let forever = Policy {
        freshness_limit_secs: u32::MAX,
        ..Policy::default()
    };
    assert!(
        propose(
            &mut team,
            &mut owner,
            Change::SetPolicy { policy: forever },
            false
        )
        .is_err()
    );
    // On the wire, a limit past a day does not decode.
    let mut bytes = sotto_core::codec::Encode::encode_to_vec(&Policy::default());
    bytes[2..6]
        .copy_from_slice(&(sotto_core::team::policy::MAX_FRESHNESS_LIMIT_SECS + 1).to_be_bytes());
    assert!(<Policy as sotto_core::codec::Decode>::decode_exact(&bytes).is_err());
}
