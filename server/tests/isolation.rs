//! Tenant isolation and authorization: a device of tenant A cannot read, list, append to or
//! delete anything of tenant B (always 404, so existence is not revealed), and within a tenant
//! only the devices the team chain or the conversation's records name get access (403).

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};
use sotto_core::conversation::MessageKind;
use sotto_core::conversation::epoch::EpochRecord;
use sotto_core::device::DeviceKind;
use sotto_core::team::Change;
use sotto_core::team::attestation::HeadAttestation;
use sotto_core::wire::WireObject;

#[tokio::test]
async fn a_device_of_one_tenant_cannot_touch_another_tenants_data() {
    let relay = TestRelay::start().await;
    let mut a = World::new(&relay, "tenant a").await;
    let b = World::new(&relay, "tenant b").await;

    // Tenant B's data: envelopes, an ack, an attachment, an attestation.
    let b_conv = b.conversation.hex();
    let mut chain = b.conversation.chain(&b.visitor.device, MessageKind::Text);
    let b_msg = seal(
        &mut chain,
        &b.visitor.device,
        MessageKind::Text,
        b"b's secret",
    );
    post_message(&b.visitor, &b_conv, &b_msg).await.expect(201);
    b.agent
        .put(
            &format!("/v1/conversations/{b_conv}/ack"),
            json!({"cursor": 1}),
        )
        .await
        .expect(200);
    let blob = b
        .visitor
        .post(
            "/v1/blobs",
            json!({"kind": "attachment", "conversation_id": b_conv, "data": b64(b"b file")}),
        )
        .await
        .expect(201);
    let b_blob = blob["blob_id"].as_str().unwrap().to_owned();
    b.team.attest().await;
    let b_team = b.team.team_hex();
    let b_agent = b.agent.id_hex();

    // What tenant A's devices try, with bodies that would be valid for their own tenant.
    let a_link = a.team.propose(Change::RotateKey);
    let a_attestation = HeadAttestation::sign(&a.team.state, &a.team.owner.device, now());
    let mut a_chain = a.conversation.chain(&a.visitor.device, MessageKind::Text);
    let a_msg = seal(&mut a_chain, &a.visitor.device, MessageKind::Text, b"a");
    let (record, _) = EpochRecord::open(
        &mut rng(),
        &a.visitor.device,
        &a.team.state,
        a.conversation.id,
        1,
        Some((&a.conversation.record, Some(Vec::new()))),
        vec![a.visitor.device.record()],
        now(),
    )
    .unwrap();
    let attempts: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("/v1/teams/{b_team}"), None),
        (Method::GET, format!("/v1/teams/{b_team}/links"), None),
        (
            Method::POST,
            format!("/v1/teams/{b_team}/links"),
            Some(json!({"link": b64(&a_link.to_wire())})),
        ),
        (Method::GET, format!("/v1/teams/{b_team}/attestation"), None),
        (
            Method::PUT,
            format!("/v1/teams/{b_team}/attestation"),
            Some(json!({"attestation": b64(&a_attestation.to_wire())})),
        ),
        (Method::GET, format!("/v1/conversations/{b_conv}"), None),
        (
            Method::GET,
            format!("/v1/conversations/{b_conv}/envelopes"),
            None,
        ),
        (
            Method::POST,
            format!("/v1/conversations/{b_conv}/envelopes"),
            Some(json!({"message": b64(&a_msg)})),
        ),
        (
            Method::GET,
            format!("/v1/conversations/{b_conv}/epochs"),
            None,
        ),
        (
            Method::POST,
            format!("/v1/conversations/{b_conv}/epochs"),
            Some(json!({"record": b64(&record.to_wire())})),
        ),
        (Method::GET, format!("/v1/conversations/{b_conv}/ack"), None),
        (
            Method::PUT,
            format!("/v1/conversations/{b_conv}/ack"),
            Some(json!({"cursor": 1})),
        ),
        (
            Method::DELETE,
            format!("/v1/conversations/{b_conv}"),
            Some(json!({"deletion": ""})),
        ),
        (Method::GET, format!("/v1/blobs/{b_blob}"), None),
        (Method::DELETE, format!("/v1/blobs/{b_blob}"), None),
        (
            Method::POST,
            "/v1/blobs".to_owned(),
            Some(json!({"kind": "attachment", "conversation_id": b_conv, "data": b64(b"x")})),
        ),
        (Method::GET, format!("/v1/devices/{b_agent}"), None),
    ];
    for client in [&a.team.owner, &a.agent, &a.visitor] {
        for (method, path, body) in &attempts {
            let r = client.call(method.clone(), path, body.clone()).await;
            assert_eq!(
                (r.status.as_u16(), r.code()),
                (404, "not_found"),
                "{method} {path}: {:?}",
                r.body
            );
        }
        // Listings hold only the caller's tenant.
        for t in client.get("/v1/teams").await.expect(200)["teams"]
            .as_array()
            .unwrap()
        {
            assert_ne!(t["team_id"], b_team);
        }
        for c in client.get("/v1/conversations").await.expect(200)["conversations"]
            .as_array()
            .unwrap()
        {
            assert_ne!(c["conversation_id"], b_conv);
        }
        let r = client
            .get(&format!("/v1/conversations?team_id={b_team}"))
            .await
            .expect(200);
        assert_eq!(r["conversations"].as_array().unwrap().len(), 0);
    }

    // B's conversation with a record for B's team, replayed by A's visitor: B's team is not in
    // A's tenant.
    let r = a
        .visitor
        .post(
            "/v1/conversations",
            json!({"record": b64(&b.conversation.record.to_wire())}),
        )
        .await;
    assert_eq!(r.status.as_u16(), 404);

    // A's token is no good for B: a device of A cannot get a challenge answered at B's widget.
    let mut crossing = Client::new(&relay.base, &b.tenant, a.visitor.device.clone());
    let (c, origin) = crossing.challenge().await;
    let sig = crossing.sign_challenge(&c, &origin);
    assert_eq!(crossing.token_request(&c, &sig).await.status.as_u16(), 401);
    crossing.token = a.visitor.token.clone();
    assert_eq!(
        crossing
            .get(&format!("/v1/conversations/{b_conv}"))
            .await
            .status
            .as_u16(),
        404
    );

    // A's owner's audit log holds nothing of B's devices.
    let audit = a.team.owner.get("/v1/audit").await.expect(200);
    for e in audit["events"].as_array().unwrap() {
        assert_ne!(e["device_id"], b_agent);
        assert_ne!(e["device_id"], b.visitor.id_hex());
    }

    // B's data is untouched.
    let listed = b
        .agent
        .get(&format!("/v1/conversations/{b_conv}/envelopes"))
        .await
        .expect(200);
    assert_eq!(listed["envelopes"].as_array().unwrap().len(), 1);
    b.visitor
        .get(&format!("/v1/blobs/{b_blob}"))
        .await
        .expect(200);
    assert_eq!(
        b.agent
            .get(&format!("/v1/teams/{b_team}"))
            .await
            .expect(200)["seq"],
        1
    );
    a.team.owner_does(Change::RotateKey).await;
}

#[tokio::test]
async fn within_a_tenant_access_follows_the_chain_and_the_records() {
    let relay = TestRelay::start().await;
    let w = World::new(&relay, "acme").await;
    let conv = w.conversation.hex();

    // Another visitor of the same tenant, and a registered member device in no team.
    let mut other_visitor = relay.client(&w.tenant, DeviceKind::Visitor);
    other_visitor.join(None).await;
    let mut outsider = relay.client(&w.tenant, DeviceKind::Member);
    outsider.join(None).await;
    for client in [&other_visitor, &outsider] {
        for path in [
            format!("/v1/conversations/{conv}"),
            format!("/v1/conversations/{conv}/envelopes"),
            format!("/v1/conversations/{conv}/epochs"),
        ] {
            let r = client.get(&path).await;
            assert_eq!((r.status.as_u16(), r.code()), (403, "forbidden"), "{path}");
        }
        let r = client
            .call(
                Method::DELETE,
                &format!("/v1/conversations/{conv}"),
                Some(json!({"deletion": ""})),
            )
            .await;
        assert_eq!(r.status.as_u16(), 403);
    }
    // Only owners and admins read the audit log.
    assert_eq!(w.agent.get("/v1/audit").await.status.as_u16(), 403);
    assert_eq!(w.visitor.get("/v1/audit").await.status.as_u16(), 403);
    let audit = w.team.owner.get("/v1/audit").await.expect(200);
    let events: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    for expected in [
        "device_registered",
        "device_authenticated",
        "team_created",
        "link_appended",
        "conversation_created",
    ] {
        assert!(events.contains(&expected), "{expected} in {events:?}");
    }
    // Paging by id.
    let first = audit["events"][0]["id"].as_i64().unwrap();
    let page = w
        .team
        .owner
        .get(&format!("/v1/audit?after={first}&limit=2"))
        .await
        .expect(200);
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    assert!(page["events"][0]["id"].as_i64().unwrap() > first);
}
