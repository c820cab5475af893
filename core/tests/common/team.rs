//! A team built by its owner, and members who replay its chain like fresh clients: the fixture
//! of the team-chain and conversation scenarios.

#![allow(dead_code)]

use chacha20::ChaCha20Rng;
use rand_core::SeedableRng;
use sotto_core::device::{Device, DeviceKind};
use sotto_core::team::{Change, Link, MemberId, Policy, Role, TeamKeyring, TeamState};

/// The scenarios' clock.
pub const T0: u64 = 1_767_225_600;

/// A member's device and the team keys it collected.
pub struct Member {
    pub device: Device,
    pub keyring: TeamKeyring,
    pub member: MemberId,
}

/// A team as its owner sees it.
pub struct Team {
    pub rng: ChaCha20Rng,
    pub links: Vec<Link>,
    pub state: TeamState,
    pub owner: Member,
}

impl Team {
    pub fn new(seed: u64, policy: Policy) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let device = Device::generate(DeviceKind::Member, &mut rng, T0);
        let (link, state, keyring) = TeamState::create(&mut rng, &device, &[], policy, T0).unwrap();
        let member = state.member_of(&device.id()).unwrap().0;
        Team {
            rng,
            links: vec![link],
            state,
            owner: Member {
                device,
                keyring,
                member,
            },
        }
    }

    /// The owner proposes a change and everyone applies it.
    pub fn owner_does(&mut self, change: Change) -> Link {
        let link = self
            .state
            .propose(
                &mut self.rng,
                &self.owner.device,
                &mut self.owner.keyring,
                change,
                false,
                T0,
            )
            .unwrap();
        self.accept(&link);
        link
    }

    /// Applies a link someone proposed.
    pub fn accept(&mut self, link: &Link) {
        self.state.apply(link).unwrap();
        let refused = self
            .state
            .absorb_keys(link, &self.owner.device, &mut self.owner.keyring);
        assert!(refused.is_empty());
        self.links.push(link.clone());
    }

    /// Adds a member with one device, which then catches up with the chain.
    pub fn add(&mut self, role: Role) -> Member {
        let device = Device::generate(DeviceKind::Member, &mut self.rng, T0);
        let member = MemberId::random(&mut self.rng);
        self.owner_does(Change::AddMember {
            member,
            role,
            devices: vec![device.record()],
        });
        let mut m = Member {
            device,
            keyring: TeamKeyring::new(),
            member,
        };
        catch_up(&self.links, &self.state, &mut m);
        m
    }

    /// The chain as a fresh client verifies it from the fingerprint.
    pub fn verified(&self) -> TeamState {
        TeamState::verify_chain(&self.links, &self.links[0].hash()).unwrap()
    }
}

/// Replays the whole chain from the fingerprint as a fresh client would, collects the keys
/// addressed to `m`, and checks the client reaches the same state.
pub fn catch_up(links: &[Link], expected: &TeamState, m: &mut Member) {
    let mut state = TeamState::from_genesis(&links[0], &links[0].hash()).unwrap();
    let mut refused = state.absorb_keys(&links[0], &m.device, &mut m.keyring);
    for link in &links[1..] {
        state.apply(link).unwrap();
        refused.extend(state.absorb_keys(link, &m.device, &mut m.keyring));
    }
    assert!(refused.is_empty(), "refused wraps {refused:?}");
    assert_eq!(&state, expected);
}
