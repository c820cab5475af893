//! `sotto-relay witness`: it keeps only verified next links, signs fresh statements of its head
//! with its key, refuses forks, gaps, forgeries and oversized batches, answers any origin, and a
//! restart keeps the head.

mod common;

use common::*;
use serde_json::{Value, json};
use sotto_core::crypto::sign::VerifyingKey;
use sotto_core::device::{Device, DeviceKind};
use sotto_core::team::witness::{WitnessStatement, WitnessVerdict};
use sotto_core::team::{Change, Link, MemberId, Policy, Role, TeamKeyring, TeamState};
use sotto_core::wire::WireObject;
use sotto_relay::witness::{WitnessArgs, start};

struct Chain {
    owner: Device,
    state: TeamState,
    keyring: TeamKeyring,
    links: Vec<Link>,
}

impl Chain {
    fn new(witness_key: [u8; 32], url: &str) -> Self {
        let mut rng = rng();
        let owner = Device::generate(DeviceKind::Member, &mut rng, now());
        let (first, state, keyring) =
            TeamState::create(&mut rng, &owner, &[], Policy::default(), now()).unwrap();
        let mut chain = Chain {
            owner,
            state,
            keyring,
            links: vec![first],
        };
        chain.append(Change::SetWitness {
            url: url.into(),
            key: VerifyingKey::from_bytes(&witness_key).unwrap(),
        });
        chain
    }

    fn propose(&mut self, change: Change) -> Link {
        self.state
            .propose(
                &mut rng(),
                &self.owner,
                &mut self.keyring.clone(),
                change,
                false,
                now(),
            )
            .unwrap()
    }

    fn append(&mut self, change: Change) -> Link {
        let mut keyring = self.keyring.clone();
        let link = self
            .state
            .propose(&mut rng(), &self.owner, &mut keyring, change, false, now())
            .unwrap();
        self.keyring = keyring;
        self.state.apply(&link).unwrap();
        self.links.push(link.clone());
        link
    }

    fn add_agent(&mut self) -> Link {
        let agent = Device::generate(DeviceKind::Member, &mut rng(), now());
        self.append(Change::AddMember {
            member: MemberId::random(&mut rng()),
            role: Role::Agent,
            devices: vec![agent.record()],
        })
    }
}

fn wire(links: &[Link]) -> Value {
    json!({ "links": links.iter().map(|l| b64(&l.to_wire())).collect::<Vec<_>>() })
}

async fn push(base: &str, team: &str, body: &Value) -> (u16, Value) {
    let r = http_client()
        .post(format!("{base}/v1/witness/{team}/links"))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn statement(base: &str, team: &str) -> (u16, Value) {
    let r = http_client()
        .get(format!("{base}/v1/witness/{team}"))
        .header("origin", "https://shop.example.com")
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    assert_eq!(
        r.headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap()),
        Some("*")
    );
    (status, r.json().await.unwrap_or(Value::Null))
}

fn parse(v: &Value) -> WitnessStatement {
    WitnessStatement::from_wire(&unb64(v["statement"].as_str().unwrap())).unwrap()
}

#[tokio::test]
async fn the_witness_keeps_only_verified_links_and_a_restart_keeps_its_head() {
    let dir = TempDir::new();
    let args = WitnessArgs::new(dir.path().join("witness.key"), dir.path().join("data"));
    let witness = start(&args).await.unwrap();
    let base = format!("http://{}", witness.addr());
    let mut chain = Chain::new(witness.public_key(), &base);
    let team = hex::encode(chain.state.team().0);

    // A browser's preflight for a push from the widget's page is answered for any origin.
    let preflight = http_client()
        .request(
            reqwest::Method::OPTIONS,
            format!("{base}/v1/witness/{team}/links"),
        )
        .header("origin", "https://shop.example.com")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status().as_u16(), 204);
    let h = preflight.headers();
    assert_eq!(h["access-control-allow-origin"], "*");
    assert_eq!(h["access-control-allow-methods"], "GET, POST");
    assert_eq!(h["access-control-allow-headers"], "content-type");

    // Unknown until the first push, which must start at link 0.
    assert_eq!(statement(&base, &team).await.0, 404);
    let (status, body) = push(&base, &team, &wire(&chain.links[1..])).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("gap")));

    let (status, body) = push(&base, &team, &wire(&chain.links)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        parse(&body).check(&chain.state, now()),
        Ok(WitnessVerdict::Current)
    );

    // A link nobody with the right may sign (a forgery by a non-member) is refused.
    let mut forged = chain.propose(Change::RotateKey);
    let outsider = Device::generate(DeviceKind::Member, &mut rng(), now());
    forged.author = outsider.id();
    forged.sign(&outsider);
    let (status, body) = push(&base, &team, &wire(&[forged])).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("verification_failed"))
    );

    // A different link at a position the witness holds is a fork; the same one is a retry.
    let mut other = chain.clone_before_last();
    let fork = other.add_agent();
    let (status, body) = push(&base, &team, &wire(&[fork])).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("fork"))
    );
    assert_eq!(push(&base, &team, &wire(&chain.links)).await.0, 200);

    // New links in a batch; a batch beyond the limit is refused whole.
    let a = chain.add_agent();
    let b = chain.add_agent();
    let (status, body) = push(&base, &team, &wire(&[a, b])).await;
    assert_eq!(status, 200);
    assert_eq!(parse(&body).seq, chain.state.seq());
    let too_many = vec![chain.links[0].clone(); 65];
    assert_eq!(push(&base, &team, &wire(&too_many)).await.0, 413);

    // A restart keeps the verified head and the key.
    let key = witness.public_key();
    witness.stop();
    let witness = start(&args).await.unwrap();
    assert_eq!(witness.public_key(), key);
    let base = format!("http://{}", witness.addr());
    let (status, body) = statement(&base, &team).await;
    assert_eq!(status, 200);
    let s = parse(&body);
    assert_eq!((s.seq, s.head), (chain.state.seq(), chain.state.head()));
    assert_eq!(s.check(&chain.state, now()), Ok(WitnessVerdict::Current));
}

#[tokio::test]
async fn a_pinned_witness_serves_only_its_teams_and_their_fingerprints() {
    let dir = TempDir::new();
    let mut args = WitnessArgs::new(dir.path().join("witness.key"), dir.path().join("data"));
    let probe = start(&args).await.unwrap();
    let key = probe.public_key();
    probe.stop();
    let chain = Chain::new(key, "https://witness.example.com");
    let squatter = Chain::new(key, "https://witness.example.com");
    args.teams = vec![format!(
        "{}:{}",
        hex::encode(chain.state.team().0),
        hex::encode(chain.state.fingerprint().0)
    )];
    let witness = start(&args).await.unwrap();
    let base = format!("http://{}", witness.addr());
    // Another team is refused.
    let other = hex::encode(squatter.state.team().0);
    assert_eq!(push(&base, &other, &wire(&squatter.links)).await.0, 403);
    // A chain under the pinned team id but with another first link is refused.
    let team = hex::encode(chain.state.team().0);
    let mut fake = squatter.links.clone();
    fake[0].team = chain.state.team();
    assert_eq!(push(&base, &team, &wire(&fake)).await.0, 422);
    assert_eq!(push(&base, &team, &wire(&chain.links)).await.0, 200);
}

impl Chain {
    /// The chain as it was before its last link, to build a competing one.
    fn clone_before_last(&self) -> Chain {
        let links = &self.links[..self.links.len() - 1];
        let fingerprint = links[0].hash();
        Chain {
            owner: self.owner.clone(),
            state: TeamState::verify_chain(links, &fingerprint).unwrap(),
            keyring: self.keyring.clone(),
            links: links.to_vec(),
        }
    }
}
