//! Team chain scenarios: who may change what, who receives which keys, and what a client
//! refuses. Each test fails if the property it names breaks.

use chacha20::ChaCha20Rng;
use rand_core::SeedableRng;
use sotto_core::device::{Device, DeviceKind};
use sotto_core::recovery::RecoverySecret;
use sotto_core::team::attestation::HeadAttestation;
use sotto_core::team::link::KeyWrap;
use sotto_core::team::{Change, HistoryMode, Link, MemberId, Policy, Role, TeamKeyring, TeamState};
use sotto_core::wire::WireObject;

mod common;

use common::team::{Member, T0, Team, catch_up};
use sotto_core::{ChainError, Error};

fn generations(k: &TeamKeyring) -> Vec<u32> {
    k.generations().collect()
}

fn chain_err(e: Error) -> ChainError {
    match e {
        Error::Chain(c) => c,
        other => panic!("expected a chain error, got {other:?}"),
    }
}

#[test]
fn whole_chain_verifies_from_the_fingerprint_and_survives_the_wire() {
    let mut team = Team::new(1, Policy::default());
    let _agent = team.add(Role::Agent);
    team.owner_does(Change::RotateKey);
    let fingerprint = team.links[0].hash();
    let decoded: Vec<Link> = team
        .links
        .iter()
        .map(|l| Link::from_wire(&l.to_wire()).unwrap())
        .collect();
    assert_eq!(decoded, team.links);
    assert_eq!(
        TeamState::verify_chain(&decoded, &fingerprint).unwrap(),
        team.state
    );
    assert_eq!(team.state.current_key().unwrap().0, 1);

    let other = Team::new(2, Policy::default());
    assert_eq!(
        chain_err(TeamState::verify_chain(&decoded, &other.links[0].hash()).unwrap_err()),
        ChainError::FingerprintMismatch
    );
}

#[test]
fn history_roles_get_earlier_generations_and_others_do_not() {
    let mut team = Team::new(3, Policy::default());
    team.owner_does(Change::RotateKey);
    team.owner_does(Change::RotateKey);
    let admin = team.add(Role::Admin);
    let agent = team.add(Role::Agent);
    let viewer = team.add(Role::Viewer);
    let bot = team.add(Role::Bot);
    let billing = team.add(Role::Billing);
    assert_eq!(generations(&admin.keyring), vec![0, 1, 2]);
    assert_eq!(generations(&agent.keyring), vec![0, 1, 2]);
    // Readers without history access start at a generation of their own.
    assert_eq!(generations(&viewer.keyring), vec![3]);
    assert_eq!(generations(&bot.keyring), vec![4]);
    assert!(generations(&billing.keyring).is_empty());

    let mut no_agent_history = Team::new(
        4,
        Policy {
            agents_read_history: false,
            ..Policy::default()
        },
    );
    no_agent_history.owner_does(Change::RotateKey);
    let agent = no_agent_history.add(Role::Agent);
    assert_eq!(generations(&agent.keyring), vec![2]);

    let mut ephemeral = Team::new(
        5,
        Policy {
            history_mode: HistoryMode::Ephemeral,
            ..Policy::default()
        },
    );
    ephemeral.owner_does(Change::RotateKey);
    let admin = ephemeral.add(Role::Admin);
    assert_eq!(generations(&admin.keyring), vec![2]);
}

#[test]
fn removal_rotates_and_the_removed_member_gets_nothing_new() {
    let mut team = Team::new(6, Policy::default());
    let mut agent = team.add(Role::Agent);
    let mut stays = team.add(Role::Agent);
    let removal = team.owner_does(Change::RemoveMember {
        member: agent.member,
    });
    assert_eq!(removal.rotation.as_ref().unwrap().generation, 1);
    assert!(removal.wraps.iter().all(|w| w.device != agent.device.id()));
    catch_up(&team.links, &team.state, &mut agent);
    catch_up(&team.links, &team.state, &mut stays);
    assert_eq!(
        generations(&agent.keyring),
        Vec::<u32>::new(),
        "removed device wipes its keys"
    );
    assert_eq!(generations(&stays.keyring), vec![0, 1]);
    // Later rotations never reach the removed device either.
    let later = team.owner_does(Change::RotateKey);
    assert!(later.wraps.iter().all(|w| w.device != agent.device.id()));
}

#[test]
fn a_removal_without_rotation_is_refused() {
    let mut team = Team::new(7, Policy::default());
    let agent = team.add(Role::Agent);
    let mut link = team
        .state
        .propose(
            &mut team.rng,
            &team.owner.device,
            &mut team.owner.keyring,
            Change::RemoveMember {
                member: agent.member,
            },
            false,
            T0,
        )
        .unwrap();
    link.rotation = None;
    link.wraps.clear();
    link.sign(&team.owner.device);
    assert_eq!(
        chain_err(team.state.apply(&link).unwrap_err()),
        ChainError::MissingRotation
    );

    // Downgrading to billing takes read access away: same rule.
    let mut link = team
        .state
        .propose(
            &mut team.rng,
            &team.owner.device,
            &mut team.owner.keyring,
            Change::ChangeRole {
                member: agent.member,
                role: Role::Billing,
            },
            false,
            T0,
        )
        .unwrap();
    assert!(link.rotation.is_some());
    link.rotation = None;
    link.wraps.clear();
    link.sign(&team.owner.device);
    assert_eq!(
        chain_err(team.state.apply(&link).unwrap_err()),
        ChainError::MissingRotation
    );
}

#[test]
fn only_authorised_authors_change_the_team() {
    let mut team = Team::new(8, Policy::default());
    let mut billing = team.add(Role::Billing);
    let mut agent = team.add(Role::Agent);
    let newcomer = Device::generate(DeviceKind::Member, &mut team.rng, T0);
    let add = Change::AddMember {
        member: MemberId::random(&mut team.rng),
        role: Role::Agent,
        devices: vec![newcomer.record()],
    };

    // A billing member or an agent may not add anyone.
    for p in [&mut billing, &mut agent] {
        let err = team
            .state
            .propose(
                &mut team.rng,
                &p.device,
                &mut p.keyring,
                add.clone(),
                false,
                T0,
            )
            .unwrap_err();
        assert_eq!(chain_err(err), ChainError::NotPermitted);
    }
    // Forge it anyway: take a valid link by the owner and re-sign it as the billing device.
    let mut link = team
        .state
        .propose(
            &mut team.rng,
            &team.owner.device,
            &mut team.owner.keyring,
            add.clone(),
            false,
            T0,
        )
        .unwrap();
    link.author = billing.device.id();
    link.sign(&billing.device);
    assert_eq!(
        chain_err(team.state.apply(&link).unwrap_err()),
        ChainError::NotPermitted
    );

    // The relay's own key is no device of the team.
    let relay = Device::generate(DeviceKind::Member, &mut team.rng, T0);
    link.author = relay.id();
    link.sign(&relay);
    assert_eq!(
        chain_err(team.state.apply(&link).unwrap_err()),
        ChainError::UnknownAuthor
    );

    // A link claiming the owner as author but signed by someone else.
    link.author = team.owner.device.id();
    assert_eq!(team.state.apply(&link).unwrap_err(), Error::BadSignature);

    // An admin cannot make someone an owner; only an owner can.
    let admin = team.add(Role::Admin);
    let mut keys = admin.keyring.clone();
    let err = team
        .state
        .propose(
            &mut team.rng,
            &admin.device,
            &mut keys,
            Change::ChangeRole {
                member: agent.member,
                role: Role::Owner,
            },
            false,
            T0,
        )
        .unwrap_err();
    assert_eq!(chain_err(err), ChainError::NotPermitted);
}

#[test]
fn wraps_must_be_exactly_what_the_roles_allow() {
    let mut team = Team::new(9, Policy::default());
    let billing = team.add(Role::Billing);
    let viewer = team.add(Role::Viewer);
    let rotation = team
        .state
        .propose(
            &mut team.rng,
            &team.owner.device,
            &mut team.owner.keyring,
            Change::RotateKey,
            false,
            T0,
        )
        .unwrap();

    // An extra wrap to the billing member (a silent reader) is refused.
    let mut extra = rotation.clone();
    let mut stolen = rotation.wraps[0].clone();
    stolen.device = billing.device.id();
    extra.wraps.push(stolen);
    extra.sign(&team.owner.device);
    assert_eq!(
        chain_err(team.state.apply(&extra).unwrap_err()),
        ChainError::WrapMismatch
    );

    // An earlier generation to the viewer (history it may not read) is refused.
    let mut history = rotation.clone();
    history.wraps.push(KeyWrap {
        device: viewer.device.id(),
        generation: 0,
        sealed: rotation.wraps[0].sealed.clone(),
    });
    history.sign(&team.owner.device);
    assert_eq!(
        chain_err(team.state.apply(&history).unwrap_err()),
        ChainError::WrapMismatch
    );

    // A missing wrap is refused too: every reader must be able to read after the rotation.
    let mut missing = rotation.clone();
    missing.wraps.retain(|w| w.device != viewer.device.id());
    missing.sign(&team.owner.device);
    assert_eq!(
        chain_err(team.state.apply(&missing).unwrap_err()),
        ChainError::WrapMismatch
    );

    team.accept(&rotation);
}

#[test]
fn a_wrong_wrap_is_detected_by_its_recipient() {
    let mut team = Team::new(10, Policy::default());
    let mut agent = team.add(Role::Agent);
    let mut link = team
        .state
        .propose(
            &mut team.rng,
            &team.owner.device,
            &mut team.owner.keyring,
            Change::RotateKey,
            false,
            T0,
        )
        .unwrap();
    // A malicious author seals a different seed to the agent: the public key check catches it.
    let bogus = sotto_core::team::keys::wrap(
        &mut team.rng,
        &team.state.team(),
        1,
        &sotto_core::crypto::secret::SecretBytes::new([5; 32]),
        &agent.device.record(),
    )
    .unwrap();
    for w in link
        .wraps
        .iter_mut()
        .filter(|w| w.device == agent.device.id())
    {
        *w = bogus.clone();
    }
    link.sign(&team.owner.device);
    team.state.apply(&link).unwrap();
    assert_eq!(
        team.state
            .absorb_keys(&link, &agent.device, &mut agent.keyring),
        vec![1]
    );
    assert_eq!(generations(&agent.keyring), vec![0]);
}

#[test]
fn the_last_owner_cannot_leave() {
    let mut team = Team::new(11, Policy::default());
    let admin = team.add(Role::Admin);
    let owner_member = team.owner.member;
    let err = team
        .state
        .propose(
            &mut team.rng,
            &team.owner.device,
            &mut team.owner.keyring,
            Change::RemoveMember {
                member: owner_member,
            },
            false,
            T0,
        )
        .unwrap_err();
    assert_eq!(chain_err(err), ChainError::LastOwner);
    let err = team
        .state
        .propose(
            &mut team.rng,
            &team.owner.device,
            &mut team.owner.keyring,
            Change::ChangeRole {
                member: owner_member,
                role: Role::Admin,
            },
            false,
            T0,
        )
        .unwrap_err();
    assert_eq!(chain_err(err), ChainError::LastOwner);
    // An admin cannot remove an owner at all.
    let mut keys = admin.keyring.clone();
    let err = team
        .state
        .propose(
            &mut team.rng,
            &admin.device,
            &mut keys,
            Change::RemoveMember {
                member: owner_member,
            },
            false,
            T0,
        )
        .unwrap_err();
    assert_eq!(chain_err(err), ChainError::NotPermitted);
    // With a second owner, the first may go.
    team.owner_does(Change::ChangeRole {
        member: admin.member,
        role: Role::Owner,
    });
    team.owner_does(Change::RemoveMember {
        member: owner_member,
    });
}

#[test]
fn devices_are_added_by_their_member_or_an_admin_and_visitors_never() {
    let mut team = Team::new(12, Policy::default());
    let mut agent = team.add(Role::Agent);
    let other = team.add(Role::Agent);

    // The agent adds its own second device, which receives the keys.
    let phone = Device::generate(DeviceKind::Member, &mut team.rng, T0);
    let link = team
        .state
        .propose(
            &mut team.rng,
            &agent.device,
            &mut agent.keyring,
            Change::AddDevice {
                member: agent.member,
                device: phone.record(),
            },
            false,
            T0,
        )
        .unwrap();
    team.accept(&link);
    let mut phone_person = Member {
        device: phone,
        keyring: TeamKeyring::new(),
        member: agent.member,
    };
    catch_up(&team.links, &team.state, &mut phone_person);
    assert_eq!(generations(&phone_person.keyring), vec![0]);

    // It may not add a device to another member.
    let intruder = Device::generate(DeviceKind::Member, &mut team.rng, T0);
    let err = team
        .state
        .propose(
            &mut team.rng,
            &agent.device,
            &mut agent.keyring,
            Change::AddDevice {
                member: other.member,
                device: intruder.record(),
            },
            false,
            T0,
        )
        .unwrap_err();
    assert_eq!(chain_err(err), ChainError::NotPermitted);

    // A visitor device is never a team device.
    let visitor = Device::generate(DeviceKind::Visitor, &mut team.rng, T0);
    let err = team
        .state
        .propose(
            &mut team.rng,
            &team.owner.device,
            &mut team.owner.keyring,
            Change::AddDevice {
                member: other.member,
                device: visitor.record(),
            },
            false,
            T0,
        )
        .unwrap_err();
    assert_eq!(chain_err(err), ChainError::MembershipConflict);

    // Revoking the phone rotates the key, and the phone gets nothing new.
    let revoke = team.owner_does(Change::RevokeDevice {
        member: agent.member,
        device: phone_person.device.id(),
    });
    assert!(revoke.rotation.is_some());
    assert!(
        revoke
            .wraps
            .iter()
            .all(|w| w.device != phone_person.device.id())
    );
}

#[test]
fn a_recovery_device_restores_access_for_its_owner() {
    let mut team = Team::new(13, Policy::default());
    let mut rng = ChaCha20Rng::seed_from_u64(99);
    let words = RecoverySecret::generate(&mut rng).to_words();
    let recovery = RecoverySecret::from_words(&words).unwrap().device();
    let owner_member = team.owner.member;
    let add = team.owner_does(Change::AddDevice {
        member: owner_member,
        device: recovery.record(),
    });
    assert!(
        add.wraps.is_empty(),
        "recovery devices are offline and hold no keys"
    );

    // All other devices lost: the recovery device (from the words alone) adds a new device.
    let replacement = Device::generate(DeviceKind::Member, &mut rng, T0);
    let mut no_keys = TeamKeyring::new();
    // Without keys it cannot wrap: the new device gets them from an online admin later. Here the
    // owner's old keyring stands in for the backup the recovery flow restores.
    let link = team
        .state
        .propose(
            &mut team.rng,
            &recovery,
            &mut team.owner.keyring,
            Change::AddDevice {
                member: owner_member,
                device: replacement.record(),
            },
            false,
            T0,
        )
        .unwrap();
    team.accept(&link);
    let mut p = Member {
        device: replacement,
        keyring: TeamKeyring::new(),
        member: owner_member,
    };
    catch_up(&team.links, &team.state, &mut p);
    assert_eq!(generations(&p.keyring), vec![0]);
    assert!(
        team.state
            .propose(
                &mut team.rng,
                &recovery,
                &mut no_keys,
                Change::RotateKey,
                false,
                T0
            )
            .is_ok()
    );
}

#[test]
fn tampering_with_any_byte_of_a_link_is_detected() {
    let mut team = Team::new(14, Policy::default());
    let before = team.state.clone();
    let device = Device::generate(DeviceKind::Member, &mut team.rng, T0);
    let member = MemberId::random(&mut team.rng);
    let link = team
        .state
        .propose(
            &mut team.rng,
            &team.owner.device,
            &mut team.owner.keyring,
            Change::AddMember {
                member,
                role: Role::Agent,
                devices: vec![device.record()],
            },
            false,
            T0,
        )
        .unwrap();
    let bytes = link.to_wire();
    for i in 0..bytes.len() {
        let mut t = bytes.clone();
        t[i] ^= 0x04;
        if let Ok(l) = Link::from_wire(&t) {
            let mut s = before.clone();
            assert!(s.apply(&l).is_err(), "flipped byte {i} was accepted");
        }
    }
    team.accept(&link);
}

#[test]
fn replayed_reordered_and_foreign_links_are_refused() {
    let mut team = Team::new(15, Policy::default());
    let l1 = team.owner_does(Change::RotateKey);
    let l2 = team.owner_does(Change::RotateKey);
    assert_eq!(
        chain_err(team.state.clone().apply(&l1).unwrap_err()),
        ChainError::BadSequence
    );
    assert_eq!(
        chain_err(team.state.clone().apply(&l2).unwrap_err()),
        ChainError::BadSequence
    );
    let mut other = Team::new(16, Policy::default());
    let foreign = other.owner_does(Change::RotateKey);
    assert_eq!(
        chain_err(team.state.clone().apply(&foreign).unwrap_err()),
        ChainError::WrongTeam
    );
    // A link that names a different predecessor (a fork) is refused.
    let mut forked = team
        .state
        .propose(
            &mut team.rng,
            &team.owner.device,
            &mut team.owner.keyring,
            Change::RotateKey,
            false,
            T0,
        )
        .unwrap();
    forked.previous = l1.hash();
    forked.sign(&team.owner.device);
    assert_eq!(
        chain_err(team.state.clone().apply(&forked).unwrap_err()),
        ChainError::BadPrevious
    );
}

#[test]
fn a_deleted_team_accepts_nothing_more_and_wipes_keys() {
    let mut team = Team::new(17, Policy::default());
    let mut agent = team.add(Role::Agent);
    assert!(
        team.state
            .propose(
                &mut team.rng,
                &agent.device,
                &mut agent.keyring,
                Change::DeleteTeam,
                false,
                T0
            )
            .is_err()
    );
    let del = team.owner_does(Change::DeleteTeam);
    assert!(team.state.is_deleted());
    catch_up(&team.links, &team.state, &mut agent);
    assert!(generations(&agent.keyring).is_empty());
    let mut t = team.state.clone();
    let mut again = del.clone();
    again.seq += 1;
    again.previous = del.hash();
    again.sign(&team.owner.device);
    assert_eq!(
        chain_err(t.apply(&again).unwrap_err()),
        ChainError::TeamDeleted
    );
}

#[test]
fn head_attestations_bound_how_long_a_removal_can_be_hidden() {
    let mut team = Team::new(
        18,
        Policy {
            freshness_limit_secs: 3600,
            ..Policy::default()
        },
    );
    let agent = team.add(Role::Agent);
    let billing = team.add(Role::Billing);
    // The visitor has verified the chain up to here; the relay then withholds the removal.
    let visitor_view = team.state.clone();
    let attestation = HeadAttestation::sign(&visitor_view, &team.owner.device, T0);
    assert!(attestation.check_fresh(&visitor_view, T0 + 10).is_ok());
    let decoded = HeadAttestation::from_wire(&attestation.to_wire()).unwrap();
    assert_eq!(decoded, attestation);

    team.owner_does(Change::RemoveMember {
        member: agent.member,
    });
    // Honest members now attest only the new head; the stale one cannot be renewed for it...
    let fresh = HeadAttestation::sign(&team.state, &team.owner.device, T0 + 1800);
    assert_eq!(
        chain_err(fresh.check_fresh(&visitor_view, T0 + 1800).unwrap_err()),
        ChainError::BadAttestation
    );
    // ...so once the limit passes, the visitor refuses its old head.
    assert!(attestation.check_fresh(&visitor_view, T0 + 3600).is_ok());
    assert_eq!(
        chain_err(
            attestation
                .check_fresh(&visitor_view, T0 + 3601)
                .unwrap_err()
        ),
        ChainError::StaleHead
    );

    // Attestations by billing (no read access) or by strangers do not count; nor do future times.
    let by_billing = HeadAttestation::sign(&visitor_view, &billing.device, T0);
    assert_eq!(
        chain_err(by_billing.check_fresh(&visitor_view, T0).unwrap_err()),
        ChainError::BadAttestation
    );
    let stranger = Device::generate(DeviceKind::Member, &mut team.rng, T0);
    let by_stranger = HeadAttestation::sign(&visitor_view, &stranger, T0);
    assert_eq!(
        chain_err(by_stranger.check_fresh(&visitor_view, T0).unwrap_err()),
        ChainError::BadAttestation
    );
    let future = HeadAttestation::sign(&visitor_view, &team.owner.device, T0 + 10_000);
    assert!(future.check_fresh(&visitor_view, T0).is_err());
    let mut forged = attestation.clone();
    forged.time += 1000;
    assert_eq!(
        forged.check_fresh(&visitor_view, T0 + 1000).unwrap_err(),
        Error::BadSignature
    );
}
