//! Team chains on the relay: appends must extend the head (exactly one of two concurrent appends
//! wins), reads from any sequence number, head attestations, and team deletion.

mod common;

use common::*;
use serde_json::json;
use sotto_core::conversation::MessageKind;
use sotto_core::device::DeviceKind;
use sotto_core::team::attestation::HeadAttestation;
use sotto_core::team::{Change, MemberId, Role};
use sotto_core::wire::WireObject;

#[tokio::test]
async fn links_extend_the_head_and_are_read_from_any_sequence() {
    let relay = TestRelay::start().await;
    let tenant = relay.tenant("acme").await;
    let mut team = TeamFixture::create(&relay, &tenant).await;
    let team_hex = team.team_hex();
    let (agent, _) = team.add_member(&relay, &tenant, Role::Agent).await;
    team.owner_does(Change::RotateKey).await;

    let all = team
        .owner
        .get(&format!("/v1/teams/{team_hex}/links"))
        .await
        .expect(200);
    assert_eq!(all["head_seq"], 2);
    let links = all["links"].as_array().unwrap();
    assert_eq!(links.len(), 3);
    for (i, l) in links.iter().enumerate() {
        assert_eq!(l["seq"], i);
        assert_eq!(unb64(l["link"].as_str().unwrap()), team.links[i].to_wire());
    }
    let tail = agent
        .get(&format!("/v1/teams/{team_hex}/links?from=2"))
        .await
        .expect(200);
    assert_eq!(tail["links"].as_array().unwrap().len(), 1);
    assert_eq!(tail["links"][0]["seq"], 2);
    let page = agent
        .get(&format!("/v1/teams/{team_hex}/links?from=0&limit=2"))
        .await
        .expect(200);
    assert_eq!(page["links"].as_array().unwrap().len(), 2);

    let info = agent
        .get(&format!("/v1/teams/{team_hex}"))
        .await
        .expect(200);
    assert_eq!(info["seq"], 2);
    assert_eq!(info["fingerprint"], hex::encode(team.links[0].hash().0));
    assert_eq!(info["head"], hex::encode(team.state.head().0));
    let listed = agent.get("/v1/teams").await.expect(200);
    assert_eq!(listed["teams"].as_array().unwrap().len(), 1);

    // A replayed link does not extend the head.
    let r = team.owner.post_link(&team_hex, &team.links[1]).await;
    assert_eq!((r.status.as_u16(), r.code()), (409, "head_moved"));

    // A tampered link is refused by verification.
    let mut next = team.propose(Change::RotateKey);
    next.created_at ^= 1;
    let r = team.owner.post_link(&team_hex, &next).await;
    assert_eq!((r.status.as_u16(), r.code()), (400, "verification_failed"));

    // A link is uploaded by its author: the agent cannot post the owner's link.
    let next = team.propose(Change::RotateKey);
    assert_eq!(agent.post_link(&team_hex, &next).await.status.as_u16(), 403);

    // A visitor of the tenant reads the chain (to verify it) but cannot append.
    let mut visitor = relay.client(&tenant, DeviceKind::Visitor);
    visitor.join(None).await;
    visitor
        .get(&format!("/v1/teams/{team_hex}/links"))
        .await
        .expect(200);
    assert_eq!(
        visitor.post_link(&team_hex, &next).await.status.as_u16(),
        403
    );

    // A member device not (yet) in the chain gets nothing.
    let mut newcomer = relay.client(&tenant, DeviceKind::Member);
    newcomer.join(None).await;
    assert_eq!(
        newcomer
            .get(&format!("/v1/teams/{team_hex}/links"))
            .await
            .status
            .as_u16(),
        403
    );
    assert_eq!(
        newcomer.get("/v1/teams").await.expect(200)["teams"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    // ... and cannot create a team: only the bootstrap device or a manager can.
    let (genesis, _, _) = sotto_core::team::TeamState::create(
        &mut rng(),
        &newcomer.device,
        &[],
        Default::default(),
        now(),
    )
    .unwrap();
    let r = newcomer
        .post("/v1/teams", json!({"link": b64(&genesis.to_wire())}))
        .await;
    assert_eq!(r.status.as_u16(), 403);

    // The owner (a manager) can create a second team; the same team twice is a conflict.
    let (genesis, _, _) = sotto_core::team::TeamState::create(
        &mut rng(),
        &team.owner.device,
        &[],
        Default::default(),
        now(),
    )
    .unwrap();
    let body = json!({"link": b64(&genesis.to_wire())});
    team.owner.post("/v1/teams", body.clone()).await.expect(201);
    let r = team.owner.post("/v1/teams", body).await;
    assert_eq!((r.status.as_u16(), r.code()), (409, "team_exists"));
}

#[tokio::test]
async fn concurrent_appends_exactly_one_wins() {
    let relay = TestRelay::start().await;
    let tenant = relay.tenant("acme").await;
    let mut team = TeamFixture::create(&relay, &tenant).await;
    let team_hex = team.team_hex();
    let (admin, mut admin_keyring) = team.add_member(&relay, &tenant, Role::Admin).await;

    for round in 0..6 {
        let a = team.propose(Change::AddMember {
            member: MemberId::random(&mut rng()),
            role: Role::Agent,
            devices: vec![
                sotto_core::device::Device::generate(DeviceKind::Member, &mut rng(), now())
                    .record(),
            ],
        });
        let b = team
            .state
            .propose(
                &mut rng(),
                &admin.device,
                &mut admin_keyring,
                Change::AddMember {
                    member: MemberId::random(&mut rng()),
                    role: Role::Viewer,
                    devices: vec![
                        sotto_core::device::Device::generate(DeviceKind::Member, &mut rng(), now())
                            .record(),
                    ],
                },
                false,
                now(),
            )
            .unwrap();
        let (ra, rb) = tokio::join!(
            team.owner.post_link(&team_hex, &a),
            admin.post_link(&team_hex, &b)
        );
        let mut statuses = [ra.status.as_u16(), rb.status.as_u16()];
        statuses.sort();
        assert_eq!(statuses, [201, 409], "round {round}: {ra:?} {rb:?}");
        let loser = if ra.status.as_u16() == 409 { &ra } else { &rb };
        assert_eq!(loser.code(), "head_moved");
        let winner = if ra.status.as_u16() == 201 { a } else { b };
        team.accept(winner);
        // Keep the admin's keyring complete for the next round's wraps.
        let last = team.links.last().unwrap().clone();
        let refused = team
            .state
            .absorb_keys(&last, &admin.device, &mut admin_keyring);
        assert!(refused.is_empty());
    }
    assert_eq!(relay.count("chain_links", "").await, 8);
}

#[tokio::test]
async fn two_relay_nodes_on_one_database_never_both_accept() {
    // Two relays on one database (SQLite file, or PostgreSQL with SOTTO_TEST_POSTGRES): each has its own
    // cached chain state, and the (team, seq) uniqueness in the database decides.
    let relay = TestRelay::start().await;
    let tenant = relay.tenant("acme").await;
    let mut team = TeamFixture::create(&relay, &tenant).await;
    let team_hex = team.team_hex();
    let mut a = args(&relay.db_path);
    a.database.url = relay.database_url.clone();
    let second = sotto_relay::start(&a).await.unwrap();
    let mut owner_b = Client::new(
        &format!("http://{}", second.addr()),
        &tenant,
        team.owner.device.clone(),
    );
    owner_b.login().await;
    // Node B loads the chain now, so its cache is at the same head as node A's.
    owner_b
        .get(&format!("/v1/teams/{team_hex}"))
        .await
        .expect(200);

    for _ in 0..4 {
        let x = team.propose(Change::RotateKey);
        let y = team.propose(Change::RotateKey);
        let (rx, ry) = tokio::join!(
            team.owner.post_link(&team_hex, &x),
            owner_b.post_link(&team_hex, &y)
        );
        let mut statuses = [rx.status.as_u16(), ry.status.as_u16()];
        statuses.sort();
        assert_eq!(statuses, [201, 409], "{rx:?} {ry:?}");
        team.accept(if rx.status.as_u16() == 201 { x } else { y });
    }
    // Both nodes serve the same head.
    let head = hex::encode(team.state.head().0);
    let ia = team
        .owner
        .get(&format!("/v1/teams/{team_hex}"))
        .await
        .expect(200);
    let ib = owner_b
        .get(&format!("/v1/teams/{team_hex}"))
        .await
        .expect(200);
    assert_eq!(ia["head"], head);
    assert_eq!(ib["head"], head);
    second.shutdown().await.unwrap();
}

#[tokio::test]
async fn head_attestations_name_the_current_head() {
    let relay = TestRelay::start().await;
    let tenant = relay.tenant("acme").await;
    let mut team = TeamFixture::create(&relay, &tenant).await;
    let team_hex = team.team_hex();
    let path = format!("/v1/teams/{team_hex}/attestation");
    let mut visitor = relay.client(&tenant, DeviceKind::Visitor);
    visitor.join(None).await;

    assert_eq!(visitor.get(&path).await.status.as_u16(), 404);
    team.attest().await;
    let got = visitor.get(&path).await.expect(200);
    let a = HeadAttestation::from_wire(&unb64(got["attestation"].as_str().unwrap())).unwrap();
    a.check_fresh(&team.state, now()).unwrap();

    // An attestation older than the freshness limit is refused.
    let old = HeadAttestation::sign(&team.state, &team.owner.device, now() - 7200);
    let r = team
        .owner
        .put(&path, json!({"attestation": b64(&old.to_wire())}))
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (400, "verification_failed"));

    // After a new link the old attestation is gone and one of the old head is a conflict.
    let stale = HeadAttestation::sign(&team.state, &team.owner.device, now());
    team.owner_does(Change::RotateKey).await;
    assert_eq!(visitor.get(&path).await.status.as_u16(), 404);
    let r = team
        .owner
        .put(&path, json!({"attestation": b64(&stale.to_wire())}))
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (409, "head_moved"));
    team.attest().await;

    // A visitor cannot attest a team's head.
    let forged = HeadAttestation::sign(&team.state, &visitor.device, now());
    let r = visitor
        .put(&path, json!({"attestation": b64(&forged.to_wire())}))
        .await;
    assert_eq!(r.status.as_u16(), 403);
}

#[tokio::test]
async fn delete_team_link_deletes_the_teams_data() {
    let relay = TestRelay::start().await;
    let mut w = World::new(&relay, "acme").await;
    let conv = w.conversation.hex();
    let mut chain = w.conversation.chain(&w.visitor.device, MessageKind::Text);
    for i in 0..3 {
        let m = seal(
            &mut chain,
            &w.visitor.device,
            MessageKind::Text,
            format!("m{i}").as_bytes(),
        );
        post_message(&w.visitor, &conv, &m).await.expect(201);
    }
    w.agent
        .put(
            &format!("/v1/conversations/{conv}/ack"),
            json!({"cursor": 2}),
        )
        .await
        .expect(200);
    let blob = w
        .visitor
        .post(
            "/v1/blobs",
            json!({"kind": "attachment", "conversation_id": conv, "data": b64(b"encrypted")}),
        )
        .await
        .expect(201);

    // Another team of the same tenant keeps its data.
    let (genesis, other_state, _) = sotto_core::team::TeamState::create(
        &mut rng(),
        &w.team.owner.device,
        &[],
        Default::default(),
        now(),
    )
    .unwrap();
    w.team
        .owner
        .post("/v1/teams", json!({"link": b64(&genesis.to_wire())}))
        .await
        .expect(201);
    let other = open_conversation(&w.visitor, &other_state).await;
    let mut other_chain = other.chain(&w.visitor.device, MessageKind::Text);
    let m = seal(
        &mut other_chain,
        &w.visitor.device,
        MessageKind::Text,
        b"kept",
    );
    post_message(&w.visitor, &other.hex(), &m).await.expect(201);

    assert_eq!(relay.count("conversations", "").await, 2);
    w.team.owner_does(Change::DeleteTeam).await;

    assert_eq!(relay.count("conversations", "").await, 1);
    assert_eq!(relay.count("envelopes", "").await, 1);
    assert_eq!(relay.count("epochs", "").await, 1);
    assert_eq!(relay.count("conversation_visitors", "").await, 1);
    assert_eq!(relay.count("acks", "").await, 0);
    assert_eq!(relay.count("blobs", "").await, 0);
    assert_eq!(relay.count("teams", "deleted = 1").await, 1);
    assert_eq!(relay.count("audit_log", "event = 'team_deleted'").await, 1);

    // The chain ends in the DeleteTeam link; the data is gone.
    let team_hex = w.team.team_hex();
    let info = w
        .agent
        .get(&format!("/v1/teams/{team_hex}"))
        .await
        .expect(200);
    assert_eq!(info["deleted"], true);
    assert_eq!(
        w.agent
            .get(&format!("/v1/conversations/{conv}"))
            .await
            .status
            .as_u16(),
        404
    );
    let blob_id = blob["blob_id"].as_str().unwrap();
    assert_eq!(
        w.visitor
            .get(&format!("/v1/blobs/{blob_id}"))
            .await
            .status
            .as_u16(),
        404
    );
    let r = w
        .visitor
        .post(
            "/v1/conversations",
            json!({"record": b64(&w.conversation.record.to_wire())}),
        )
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (409, "team_deleted"));
}
