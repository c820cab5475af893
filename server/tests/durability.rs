//! An acknowledged envelope is never lost: the relay process is killed with SIGKILL while
//! clients stream envelopes at it, restarted on the same database, and every envelope it had
//! answered 2xx for is there, at the cursor it was acknowledged with. On a SQLite file, or on a
//! fresh PostgreSQL database when `SOTTO_TEST_POSTGRES` is set (the PostgreSQL pass of
//! `scripts/test.sh`).

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::process::{Process, create_tenant};
use common::*;
use sotto_core::conversation::MessageKind;

/// Concurrent posters (each its own HTTP client, so several requests are in flight at the kill).
const POSTERS: usize = 4;
/// Messages sealed in advance; the kill comes long before they run out.
const MESSAGES: usize = 2000;
/// Acknowledgements to wait for before the kill.
const ACKED_BEFORE_KILL: usize = 150;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_envelopes_survive_sigkill() {
    let dir = TempDir::new();
    let db = match std::env::var("SOTTO_TEST_POSTGRES") {
        Ok(admin) if !admin.is_empty() => fresh_postgres_database(&admin).await,
        _ => dir.path().join("relay.sqlite").to_str().unwrap().to_owned(),
    };
    let tenant = create_tenant(&db);
    let mut relay = Process::start(&db, "warn,sotto_relay::server=info");
    let w = World::with_tenant(&relay, tenant.clone()).await;
    let conv = w.conversation.hex();

    let mut chain = w.conversation.chain(&w.visitor.device, MessageKind::Text);
    let sealed: Vec<Vec<u8>> = (0..MESSAGES)
        .map(|i| {
            seal(
                &mut chain,
                &w.visitor.device,
                MessageKind::Text,
                format!("durable {i}").as_bytes(),
            )
        })
        .collect();

    // Each poster takes every POSTERS-th message and posts until its first failure (the kill).
    let acked = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let mut posters = Vec::new();
    for p in 0..POSTERS {
        let mine: Vec<Vec<u8>> = sealed.iter().skip(p).step_by(POSTERS).cloned().collect();
        let client = Client {
            http: http_client(),
            base: w.visitor.base.clone(),
            widget_id: w.visitor.widget_id.clone(),
            device: w.visitor.device.clone(),
            token: w.visitor.token.clone(),
        };
        let conv = conv.clone();
        let (acked, failed) = (acked.clone(), failed.clone());
        posters.push(tokio::spawn(async move {
            let mut confirmed: BTreeMap<i64, Vec<u8>> = BTreeMap::new();
            for m in mine {
                let url = format!("{}/v1/conversations/{conv}/envelopes", client.base);
                let sent = client
                    .http
                    .post(url)
                    .bearer_auth(client.token.as_deref().unwrap())
                    .json(&serde_json::json!({"message": b64(&m)}))
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await;
                let response = match sent {
                    Ok(r) => r,
                    Err(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                };
                let status = response.status();
                let Ok(body) = response.json::<serde_json::Value>().await else {
                    // The status line arrived but the body did not: not an acknowledgement.
                    failed.fetch_add(1, Ordering::Relaxed);
                    break;
                };
                assert_eq!(status.as_u16(), 201, "{body}");
                let cursor = body["cursor"].as_i64().unwrap();
                assert!(confirmed.insert(cursor, m).is_none(), "cursor reused");
                acked.fetch_add(1, Ordering::Relaxed);
            }
            confirmed
        }));
    }

    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.load(Ordering::Relaxed) < ACKED_BEFORE_KILL {
        assert!(Instant::now() < deadline, "the relay is too slow to test");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    relay.kill();

    let mut confirmed: BTreeMap<i64, Vec<u8>> = BTreeMap::new();
    for p in posters {
        let mine = tokio::time::timeout(Duration::from_secs(30), p)
            .await
            .expect("posters stop after the kill")
            .unwrap();
        for (cursor, m) in mine {
            assert!(confirmed.insert(cursor, m).is_none(), "cursor reused");
        }
    }
    assert!(confirmed.len() >= ACKED_BEFORE_KILL);
    assert!(
        confirmed.len() < MESSAGES,
        "the stream ended before the kill"
    );
    assert_eq!(
        failed.load(Ordering::Relaxed),
        POSTERS,
        "every poster was cut off mid-stream"
    );

    // Restart on the same file: every acknowledged envelope is there, byte for byte, at its
    // cursor; cursors stay gap-free, and nothing is stored that was not sent.
    let restarted = Process::start(&db, "warn,sotto_relay::server=info");
    let mut visitor = Client::new(&restarted.base, &tenant, w.visitor.device.clone());
    visitor.login().await;
    let mut stored: BTreeMap<i64, Vec<u8>> = BTreeMap::new();
    let mut after = 0;
    loop {
        let page = visitor
            .get(&format!(
                "/v1/conversations/{conv}/envelopes?after={after}&limit=1000"
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
            stored.insert(after, unb64(e["message"].as_str().unwrap()));
        }
    }
    for (cursor, m) in &confirmed {
        assert_eq!(
            stored.get(cursor),
            Some(m),
            "acknowledged envelope {cursor} lost ({} acknowledged, {} stored)",
            confirmed.len(),
            stored.len()
        );
    }
    for m in stored.values() {
        assert!(sealed.contains(m), "stored something that was not sent");
    }
    // The restarted relay keeps accepting: the next envelope continues the cursor sequence.
    let next = seal(
        &mut chain,
        &w.visitor.device,
        MessageKind::Text,
        b"after restart",
    );
    let r = post_message(&visitor, &conv, &next).await.expect(201);
    assert_eq!(r["cursor"].as_i64().unwrap() as usize, stored.len() + 1);
}
