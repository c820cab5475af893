//! Team chain costs: verifying a 1,000-link chain from its fingerprint, and one key rotation in a
//! team of 100 devices (proposing it: 100 HPKE wraps and a signature; applying it: the rules and
//! a signature check); a 10,000-link chain verified from the fingerprint against a client start
//! that imports the stored verified state (PROTOCOL §6.9) instead.

use std::time::Duration;

use chacha20::ChaCha20Rng;
use criterion::{Criterion, criterion_group, criterion_main};
use rand_core::SeedableRng;
use sotto_core::device::{Device, DeviceKind};
use sotto_core::team::{Change, Link, MemberId, Policy, Role, TeamKeyring, TeamState};

const T0: u64 = 1_767_225_600;

struct Built {
    rng: ChaCha20Rng,
    owner: Device,
    keyring: TeamKeyring,
    state: TeamState,
    links: Vec<Link>,
}

/// A team of `devices` member devices (the owner and agents), then rotations up to `links` links.
fn build(devices: usize, links: usize) -> Built {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let owner = Device::generate(DeviceKind::Member, &mut rng, T0);
    let (first, mut state, mut keyring) =
        TeamState::create(&mut rng, &owner, &[], Policy::default(), T0).expect("create");
    let mut all = vec![first];
    let mut step = |change: Change,
                    rng: &mut ChaCha20Rng,
                    state: &mut TeamState,
                    keyring: &mut TeamKeyring| {
        let link = state
            .propose(rng, &owner, keyring, change, false, T0)
            .expect("propose");
        state.apply(&link).expect("apply");
        all.push(link);
    };
    for _ in 1..devices {
        let d = Device::generate(DeviceKind::Member, &mut rng, T0);
        let member = MemberId::random(&mut rng);
        step(
            Change::AddMember {
                member,
                role: Role::Agent,
                devices: vec![d.record()],
            },
            &mut rng,
            &mut state,
            &mut keyring,
        );
    }
    // One create link and devices - 1 additions so far.
    for _ in devices..links {
        step(Change::RotateKey, &mut rng, &mut state, &mut keyring);
    }
    Built {
        rng,
        owner,
        keyring,
        state,
        links: all,
    }
}

fn chain_verification(c: &mut Criterion) {
    let built = build(100, 1000);
    assert_eq!(built.links.len(), 1000);
    let fingerprint = built.links[0].hash();
    let mut g = c.benchmark_group("team_chain");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("verify_1000_links_100_devices", |b| {
        b.iter(|| TeamState::verify_chain(&built.links, &fingerprint).expect("verifies"))
    });
    g.finish();
}

/// A team of 100 devices whose chain grows to 10,000 links: policy changes, with a rotation every
/// 50th link (each wrapping to all 100 devices).
fn build_long() -> Vec<Link> {
    let mut built = build(100, 100);
    let mut n = built.links.len();
    while n < 10_000 {
        let change = if n.is_multiple_of(50) {
            Change::RotateKey
        } else {
            Change::SetPolicy {
                policy: Policy {
                    epoch_max_messages: 1000 + (n % 7) as u32,
                    ..Policy::default()
                },
            }
        };
        let link = built
            .state
            .propose(
                &mut built.rng,
                &built.owner,
                &mut built.keyring,
                change,
                false,
                T0,
            )
            .expect("propose");
        built.state.apply(&link).expect("apply");
        built.links.push(link);
        n += 1;
    }
    built.links
}

fn long_chain_and_stored_state(c: &mut Criterion) {
    let links = build_long();
    let fingerprint = links[0].hash();
    let verified = TeamState::verify_chain(&links, &fingerprint).expect("verifies");
    let stored = verified.export();
    eprintln!("stored state of 10,000 links: {} bytes", stored.len());
    let mut g = c.benchmark_group("team_chain");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("verify_10000_links_100_devices", |b| {
        b.iter(|| TeamState::verify_chain(&links, &fingerprint).expect("verifies"))
    });
    g.bench_function("start_from_stored_state_10000_links", |b| {
        b.iter(|| TeamState::import(&stored).expect("imports"))
    });
    g.finish();
}

fn rotation(c: &mut Criterion) {
    let mut built = build(100, 100);
    let mut g = c.benchmark_group("team_rotation_100_devices");
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    g.bench_function("propose", |b| {
        b.iter(|| {
            built
                .state
                .propose(
                    &mut built.rng,
                    &built.owner,
                    &mut built.keyring,
                    Change::RotateKey,
                    false,
                    T0,
                )
                .expect("propose")
        })
    });
    let link = built
        .state
        .propose(
            &mut built.rng,
            &built.owner,
            &mut built.keyring,
            Change::RotateKey,
            false,
            T0,
        )
        .expect("propose");
    g.bench_function("verify_and_apply", |b| {
        b.iter(|| {
            let mut s = built.state.clone();
            s.apply(&link).expect("apply");
            s
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    chain_verification,
    rotation,
    long_chain_and_stored_state
);
criterion_main!(benches);
