//! What the relay keeps and says: its logs never hold a body, key or token; its database holds
//! only ciphertext; its backup command makes a snapshot that restores with every envelope.

mod common;

use std::process::Command;
use std::time::Duration;

use common::process::{Process, bin, create_tenant};
use common::*;
use futures_util::StreamExt;
use serde_json::json;
use sotto_core::codec::Decode;
use sotto_core::conversation::attachment::{AttachmentRef, decrypt_attachment, encrypt_attachment};
use sotto_core::conversation::epoch::sender_key;
use sotto_core::conversation::{MessageKind, ParsedMessage, ReceiverChain};
use sotto_core::device::Device;
use sotto_core::team::Change;
use sotto_core::wire::WireObject;

/// The forms a byte string could take in a log line.
fn forms(bytes: &[u8]) -> Vec<String> {
    let mut f = vec![b64(bytes), hex::encode(bytes)];
    // Windows from the middle, as hex, base64 and Rust's Debug list, so that a partial dump of a
    // long value is caught too.
    if bytes.len() >= 48 {
        let mid = &bytes[bytes.len() / 2 - 12..bytes.len() / 2 + 12];
        f.push(hex::encode(mid));
        f.push(b64(mid).trim_end_matches('=').to_owned());
        let dbg = format!("{:?}", &mid[..12]);
        f.push(dbg.trim_start_matches('[').trim_end_matches(']').to_owned());
    }
    f
}

/// The secret bytes of a device: its Ed25519 seed and X25519 secret.
fn device_secrets(d: &Device) -> Vec<Vec<u8>> {
    let exported = d.export_secrets();
    vec![exported[4..36].to_vec(), exported[36..68].to_vec()]
}

#[tokio::test]
async fn logs_never_hold_bodies_keys_or_tokens() {
    let dir = TempDir::new();
    let db = dir.path().join("relay.sqlite");
    let tenant = create_tenant(db.to_str().unwrap());
    // The most verbose level, for every target.
    let relay = Process::start(db.to_str().unwrap(), "trace");
    let mut secrets: Vec<Vec<u8>> = Vec::new();
    let mut strings: Vec<String> = vec![tenant.bootstrap_code.clone()];

    let mut w = World::with_tenant(&relay, tenant.clone()).await;
    let conv = w.conversation.hex();
    // The WebSocket with the token in the query string.
    let url = format!(
        "{}/v1/ws?token={}",
        relay.base.replace("http://", "ws://"),
        w.agent.token.as_deref().unwrap()
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();

    let plaintexts = [
        "PLAIN-visitor: my card ends 4242 and my address is 1 Secret Lane",
        "PLAIN-agent: refund issued to account 987654",
    ];
    let mut vchain = w.conversation.chain(&w.visitor.device, MessageKind::Text);
    let m1 = seal(
        &mut vchain,
        &w.visitor.device,
        MessageKind::Text,
        plaintexts[0].as_bytes(),
    );
    post_message(&w.visitor, &conv, &m1).await.expect(201);
    let mut achain = w.conversation.chain(&w.agent.device, MessageKind::Text);
    let m2 = seal(
        &mut achain,
        &w.agent.device,
        MessageKind::Text,
        plaintexts[1].as_bytes(),
    );
    post_message(&w.agent, &conv, &m2).await.expect(201);
    let mut typing = w.conversation.chain(&w.visitor.device, MessageKind::Typing);
    let m3 = seal(
        &mut typing,
        &w.visitor.device,
        MessageKind::Typing,
        b"PLAIN-typing preview",
    );
    post_message(&w.visitor, &conv, &m3).await.expect(202);
    // The pushes arrive (so the push path ran and would have logged).
    let pushes = async {
        let mut pushed = 0;
        while pushed < 2 {
            if let Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) = ws.next().await
                && (t.contains("\"envelope\"") || t.contains("\"ephemeral\""))
            {
                pushed += 1;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), pushes)
        .await
        .expect("pushes arrive");
    let blob_data = b"PLAIN-blob: encrypted attachment bytes would be here".to_vec();
    let up = w
        .visitor
        .post(
            "/v1/blobs",
            json!({"kind": "attachment", "conversation_id": conv, "data": b64(&blob_data)}),
        )
        .await
        .expect(201);
    w.agent
        .get(&format!("/v1/blobs/{}", up["blob_id"].as_str().unwrap()))
        .await
        .expect(200);
    w.agent
        .put(
            &format!("/v1/conversations/{conv}/ack"),
            json!({"cursor": 2}),
        )
        .await
        .expect(200);
    w.team.attest().await;
    let link = w.team.owner_does(Change::RotateKey).await;
    let mut rotated = w.visitor.device.clone();
    let (ka, _) = rotated.rotate_key_agreement(&mut rng(), now()).unwrap();
    w.visitor
        .put(
            "/v1/devices/me/key-agreement",
            json!({"record": b64(&ka.to_wire())}),
        )
        .await
        .expect(200);
    // Failures log too: a forged token, a refused signature, garbage bodies.
    let forged_token = "f0".repeat(32);
    let mut forger = relay.client(&tenant, sotto_core::device::DeviceKind::Visitor);
    forger.token = Some(forged_token.clone());
    assert_eq!(forger.get("/v1/devices/me").await.status.as_u16(), 401);
    let (c, origin) = w.visitor.challenge().await;
    let bad_sig = forger.sign_challenge(&c, &origin);
    assert_eq!(
        w.visitor.token_request(&c, &bad_sig).await.status.as_u16(),
        401
    );
    let garbage = "PLAIN-garbage-body-that-must-not-be-logged";
    w.visitor
        .post(
            &format!("/v1/conversations/{conv}/envelopes"),
            json!({"message": garbage}),
        )
        .await
        .expect(400);
    w.visitor
        .post(
            &format!("/v1/conversations/{conv}/envelopes"),
            json!({"message": b64(garbage.as_bytes())}),
        )
        .await
        .expect(400);
    w.visitor
        .delete_conversation(&w.team.state, &conv)
        .await
        .expect(204);
    drop(ws);

    // Everything that was sent or is secret.
    for m in [&m1, &m2, &m3, &blob_data, &link.to_wire(), &ka.to_wire()] {
        secrets.push(m.clone());
    }
    for l in &w.team.links {
        secrets.push(l.to_wire());
    }
    secrets.push(w.conversation.record.to_wire());
    secrets.push(w.conversation.secret.expose().to_vec());
    secrets.push(c.to_vec());
    for g in w.team.owner_keyring.generations().collect::<Vec<_>>() {
        secrets.push(w.team.owner_keyring.seed(g).unwrap().expose().to_vec());
    }
    for client in [&w.team.owner, &w.agent, &w.visitor] {
        strings.push(client.token.clone().unwrap());
        secrets.push(client.device.record().to_wire());
        secrets.extend(device_secrets(&client.device));
    }
    strings.push(forged_token);
    strings.push(bad_sig);
    strings.push(garbage.to_owned());
    strings.extend(plaintexts.iter().map(|p| p.to_string()));
    strings.push("PLAIN".to_owned());

    let mut relay = relay;
    let log = relay.stop();
    // The log is not vacuous: it has the access lines, and the graceful shutdown.
    assert!(log.contains("sotto_relay::access"), "{log}");
    assert!(log.matches("request").count() > 20);
    assert!(log.contains("relay stopped"));
    for s in &secrets {
        for form in forms(s) {
            assert!(
                !log.contains(&form),
                "the log holds a payload or key ({form})"
            );
        }
    }
    for s in &strings {
        assert!(!log.contains(s.as_str()), "the log holds {s}");
    }
}

#[tokio::test]
async fn the_database_holds_only_ciphertext() {
    let mut relay = TestRelay::start_sqlite(|_| {}).await;
    let w = World::new(&relay, "acme").await;
    let conv = w.conversation.hex();
    let plain: [&[u8]; 4] = [
        b"PLAINTEXT-1: my order 4711 has not arrived",
        b"PLAINTEXT-2: sorry, it ships today with tracking ZX9",
        b"PLAINTEXT-3: typing a preview of a secret",
        b"PLAINTEXT-4: the attached invoice says 1,234.56 EUR",
    ];
    let file_name = "PLAINTEXT-invoice-name.pdf";

    // The visitor writes, the agent answers, the visitor types and attaches a file.
    let mut v = w.conversation.chain(&w.visitor.device, MessageKind::Text);
    let m1 = seal(&mut v, &w.visitor.device, MessageKind::Text, plain[0]);
    post_message(&w.visitor, &conv, &m1).await.expect(201);
    let mut a = w.conversation.chain(&w.agent.device, MessageKind::Text);
    let m2 = seal(&mut a, &w.agent.device, MessageKind::Text, plain[1]);
    post_message(&w.agent, &conv, &m2).await.expect(201);
    let mut t = w.conversation.chain(&w.visitor.device, MessageKind::Typing);
    let m3 = seal(&mut t, &w.visitor.device, MessageKind::Typing, plain[2]);
    post_message(&w.visitor, &conv, &m3).await.expect(202);
    let (blob, reference) =
        encrypt_attachment(&mut rng(), plain[3], file_name, "application/pdf").unwrap();
    let up = w
        .visitor
        .post(
            "/v1/blobs",
            json!({"kind": "attachment", "conversation_id": conv, "data": b64(&blob)}),
        )
        .await
        .expect(201);
    let mut content = up["blob_id"].as_str().unwrap().as_bytes().to_vec();
    content.extend_from_slice(&reference.to_content());
    let m4 = seal(&mut v, &w.visitor.device, MessageKind::Attachment, &content);
    post_message(&w.visitor, &conv, &m4).await.expect(201);

    // The agent, a real client, reads all of it back through the relay.
    let secret = w
        .conversation
        .record
        .secret_for_member(&w.agent_keyring)
        .unwrap();
    let listed = w
        .agent
        .get(&format!("/v1/conversations/{conv}/envelopes"))
        .await
        .expect(200);
    let mut opened = Vec::new();
    let mut chains: Vec<ReceiverChain> = Vec::new();
    for e in listed["envelopes"].as_array().unwrap() {
        let bytes = unb64(e["message"].as_str().unwrap());
        let parsed = ParsedMessage::decode(&bytes).unwrap();
        let h = *parsed.header();
        let key = sender_key(&w.team.state, &w.conversation.record, &h.sender, h.kind).unwrap();
        let verified = parsed
            .verify(&key, &common::context(h.conversation, h.epoch))
            .unwrap();
        let i = match chains.iter().position(|c| *c.id() == h.chain()) {
            Some(i) => i,
            None => {
                chains.push(ReceiverChain::new(&secret, h.chain()));
                chains.len() - 1
            }
        };
        opened.push(verified.decrypt(&mut chains[i]).unwrap().content().to_vec());
    }
    assert_eq!(opened[0], plain[0]);
    assert_eq!(opened[1], plain[1]);
    let reference = AttachmentRef::decode_exact(&opened[2][32..]).unwrap();
    let blob_id = std::str::from_utf8(&opened[2][..32]).unwrap();
    let fetched = w
        .agent
        .get(&format!("/v1/blobs/{blob_id}"))
        .await
        .expect(200);
    let file = decrypt_attachment(&reference, &unb64(fetched["data"].as_str().unwrap())).unwrap();
    assert_eq!(&file[..], plain[3]);

    // Stop the relay (checkpointing the WAL), then read every byte it left on disk.
    let db_path = relay.db_path.clone();
    relay.stop().await;
    let mut disk = Vec::new();
    for entry in std::fs::read_dir(db_path.parent().unwrap()).unwrap() {
        disk.extend_from_slice(&std::fs::read(entry.unwrap().path()).unwrap());
    }
    let contains = |needle: &[u8]| disk.windows(needle.len()).any(|w| w == needle);
    // Sanity: the grep sees what the relay stores (the ciphertext messages).
    assert!(contains(&m1) && contains(&m4) && contains(&blob));
    for p in plain {
        assert!(
            !contains(p),
            "plaintext on disk: {}",
            String::from_utf8_lossy(p)
        );
        assert!(!contains(&p[..16]));
    }
    assert!(!contains(file_name.as_bytes()));
    assert!(!contains(b"PLAINTEXT"));
    assert!(!contains(&m3), "an ephemeral message was stored");
    // No key either: device secrets, team key seeds, the epoch secret.
    let mut keys: Vec<Vec<u8>> = Vec::new();
    for d in [&w.team.owner.device, &w.agent.device, &w.visitor.device] {
        keys.extend(device_secrets(d));
    }
    for g in w.team.owner_keyring.generations().collect::<Vec<_>>() {
        keys.push(w.team.owner_keyring.seed(g).unwrap().expose().to_vec());
    }
    keys.push(w.conversation.secret.expose().to_vec());
    for (i, k) in keys.iter().enumerate() {
        assert!(!contains(k), "key {i} on disk");
    }
    // Nor a token in the clear.
    for c in [&w.team.owner, &w.agent, &w.visitor] {
        let token = hex::decode(c.token.as_ref().unwrap()).unwrap();
        assert!(!contains(&token));
    }
}

#[tokio::test]
async fn backup_snapshot_restores_with_every_envelope() {
    let relay = TestRelay::start_sqlite(|_| {}).await;
    let w = World::new(&relay, "acme").await;
    let conv = w.conversation.hex();
    let mut chain = w.conversation.chain(&w.visitor.device, MessageKind::Text);
    let mut sent = Vec::new();
    for i in 0..40 {
        let m = seal(
            &mut chain,
            &w.visitor.device,
            MessageKind::Text,
            format!("message {i}").as_bytes(),
        );
        post_message(&w.visitor, &conv, &m).await.expect(201);
        sent.push(m);
    }

    // Snapshot the live database while the visitor keeps writing.
    let snapshot_dir = TempDir::new();
    let snapshot = snapshot_dir.path().join("snapshot.sqlite");
    let backup = {
        let db = relay.db_path.clone();
        let out = snapshot.clone();
        tokio::task::spawn_blocking(move || {
            Command::new(bin())
                .args(["backup", "--database"])
                .arg(&db)
                .arg("--out")
                .arg(&out)
                .output()
                .unwrap()
        })
    };
    let mut during = Vec::new();
    for i in 0..20 {
        let m = seal(
            &mut chain,
            &w.visitor.device,
            MessageKind::Text,
            format!("during {i}").as_bytes(),
        );
        post_message(&w.visitor, &conv, &m).await.expect(201);
        during.push(m);
    }
    let out = backup.await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The snapshot file is not overwritten by a second run.
    let again = Command::new(bin())
        .args(["backup", "--database"])
        .arg(&relay.db_path)
        .arg("--out")
        .arg(&snapshot)
        .output()
        .unwrap();
    assert!(!again.status.success());

    // Restore: a relay on the snapshot serves every envelope acknowledged before the backup,
    // byte for byte, and whatever it has from during the backup is a consistent prefix.
    let restored = TestRelay::start_on(snapshot_dir, snapshot, |_| {}).await;
    let mut visitor = Client::new(&restored.base, &w.tenant, w.visitor.device.clone());
    visitor.login().await;
    let mut stored = Vec::new();
    let mut after = 0;
    loop {
        let page = visitor
            .get(&format!(
                "/v1/conversations/{conv}/envelopes?after={after}&limit=7"
            ))
            .await
            .expect(200);
        let items = page["envelopes"].as_array().unwrap().clone();
        if items.is_empty() {
            break;
        }
        for e in items {
            after = e["cursor"].as_i64().unwrap();
            assert_eq!(after as usize, stored.len() + 1, "cursors are gap-free");
            stored.push(unb64(e["message"].as_str().unwrap()));
        }
    }
    assert!(
        stored.len() >= sent.len(),
        "{} of {}",
        stored.len(),
        sent.len()
    );
    let expected: Vec<Vec<u8>> = sent.iter().chain(during.iter()).cloned().collect();
    assert_eq!(stored[..], expected[..stored.len()]);
    // The team chain verifies on the restored relay too.
    let team = w.team.team_hex();
    let links = visitor
        .get(&format!("/v1/teams/{team}/links"))
        .await
        .expect(200);
    assert_eq!(links["links"].as_array().unwrap().len(), w.team.links.len());
}
