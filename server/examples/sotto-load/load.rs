//! `sotto-load run`: the relay's load benchmark on SQLite.
//!
//! `clients` visitor devices, two per conversation (a visitor with two devices), each with a
//! WebSocket. In the timed phase every client posts `messages` envelopes one after the other
//! (the next once the previous is acknowledged), all clients at once; its partner device
//! receives each as a push. Reported: acknowledged envelopes per second over the phase, and the
//! latency from the start of a post to the arrival of its push (p50, p99). Then the relay is
//! stopped and the same inserts (the same messages, one write transaction each: advance the
//! conversation's cursor, insert the envelope) are done directly on the same database file
//! through the relay's own connection code, so with the same pragmas (WAL, synchronous=FULL).
//! The relay commits envelopes that arrive together in one transaction (group commit), so the
//! direct inserts are timed twice: one transaction per envelope (what a program that makes each
//! envelope durable before answering does without grouping), and `clients` envelopes per
//! transaction (the database's own ceiling with commits shared as widely as the relay could).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sotto_core::conversation::{ChainId, MessageKind, SenderChain, seal_message};
use sotto_relay::config::DatabaseArgs;
use sotto_relay::db::Db;
use sqlx::Row;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{Client, Error, b64, unb64};
use crate::fixture;
use crate::relay::{RelayProcess, create_tenant, default_binary};

/// Settings of a run.
pub struct Settings {
    pub clients: usize,
    pub messages: usize,
    pub content_bytes: usize,
    pub relay_bin: Option<PathBuf>,
    pub dir: Option<PathBuf>,
    pub relay_env: Vec<(String, String)>,
}

/// What one run measured.
struct Report {
    envelopes: usize,
    relay_secs: f64,
    pushes: usize,
    latencies: Vec<Duration>,
    direct_secs: f64,
    grouped_secs: f64,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn key(message: &[u8]) -> [u8; 32] {
    Sha256::digest(message).into()
}

/// A temporary directory, removed on drop.
struct WorkDir(PathBuf, bool);

impl Drop for WorkDir {
    fn drop(&mut self) {
        if self.1 {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub async fn run(s: Settings) -> Result<(), Error> {
    if s.clients < 2 || !s.clients.is_multiple_of(2) {
        return Err("--clients must be even and at least 2".into());
    }
    let bin = match &s.relay_bin {
        Some(b) => b.clone(),
        None => default_binary()?,
    };
    let mut id = [0u8; 8];
    getrandom::fill(&mut id).map_err(|e| format!("randomness: {e}"))?;
    let parent = s.dir.clone().unwrap_or_else(std::env::temp_dir);
    let work = WorkDir(parent.join(format!("sotto-load-{}", hex::encode(id))), true);
    std::fs::create_dir_all(&work.0)?;
    let db = work.0.join("relay.sqlite");

    let (widget_id, bootstrap) = create_tenant(&bin, &db)?;
    let relay = RelayProcess::start(&bin, &db, &s.relay_env)?;
    let base = relay.base.clone();
    // Built together with the client SDK, reqwest has rustls without a provider of its own.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(s.clients)
        .build()?;

    // Set-up: a team, and a conversation per pair of visitor devices.
    let team = fixture::team(&http, &base, &widget_id, &bootstrap).await?;
    let mut clients: Vec<(Client, Vec<Vec<u8>>, String)> = Vec::with_capacity(s.clients);
    let content = vec![b'x'; s.content_bytes];
    for _ in 0..s.clients / 2 {
        let (conv, record, devices, secret) =
            fixture::conversation(&http, &base, &widget_id, &team.team, 2).await?;
        for device in devices {
            let mut chain = SenderChain::new(
                &secret,
                ChainId {
                    conversation: conv,
                    epoch: record.epoch,
                    sender: device.device.id(),
                    instance: sotto_core::conversation::Instance([1; 8]),
                    stream: MessageKind::Text.stream(),
                },
            );
            let context = sotto_core::conversation::MessageContext::of(&record);
            let sealed = (0..s.messages)
                .map(|_| {
                    seal_message(
                        &mut chain,
                        &device.device,
                        MessageKind::Text,
                        &content,
                        &context,
                    )
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("seal: {e:?}"))?;
            clients.push((device, sealed, hex::encode(conv.0)));
        }
    }

    // Every client's push socket.
    let sent_at: Arc<Mutex<HashMap<[u8; 32], Instant>>> = Arc::new(Mutex::new(HashMap::new()));
    let (go_tx, go_rx) = tokio::sync::watch::channel(false);
    let mut receivers = Vec::new();
    for (client, _, _) in &clients {
        let url = format!(
            "{}/v1/ws?token={}",
            base.replace("http://", "ws://"),
            client.token.as_deref().unwrap_or("")
        );
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.contains("\"ready\"") => {}
            other => return Err(format!("no ready frame: {other:?}").into()),
        }
        let sent_at = sent_at.clone();
        let expected = s.messages;
        receivers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(expected);
            let deadline = tokio::time::sleep(Duration::from_secs(120));
            tokio::pin!(deadline);
            while latencies.len() < expected {
                let frame = tokio::select! {
                    f = ws.next() => f,
                    () = &mut deadline => break,
                };
                let arrived = Instant::now();
                match frame {
                    Some(Ok(Message::Text(t))) => {
                        let Ok(v) = serde_json::from_str::<Value>(&t) else {
                            continue;
                        };
                        if v["type"] != "envelope" {
                            continue;
                        }
                        let Some(m) = v["message"].as_str().and_then(|m| unb64(m).ok()) else {
                            continue;
                        };
                        let started = sent_at
                            .lock()
                            .ok()
                            .and_then(|map| map.get(&key(&m)).copied());
                        if let Some(t0) = started {
                            latencies.push(arrived.saturating_duration_since(t0));
                        }
                    }
                    Some(Ok(Message::Ping(p))) => {
                        let _ = ws.send(Message::Pong(p)).await;
                    }
                    Some(Ok(_)) => {}
                    _ => break,
                }
            }
            let _ = ws.close(None).await;
            latencies
        }));
    }

    // The timed phase.
    let mut posters = Vec::new();
    for (client, sealed, conv) in clients {
        let mut go = go_rx.clone();
        let sent_at = sent_at.clone();
        posters.push(tokio::spawn(async move {
            let _ = go.wait_for(|g| *g).await;
            let path = format!("/v1/conversations/{conv}/envelopes");
            let mut acked = 0usize;
            for m in sealed {
                if let Ok(mut map) = sent_at.lock() {
                    map.insert(key(&m), Instant::now());
                }
                client.post(&path, json!({"message": b64(&m)})).await?;
                acked += 1;
            }
            Ok::<usize, Error>(acked)
        }));
    }
    let started = Instant::now();
    go_tx.send(true)?;
    let mut envelopes = 0;
    for p in posters {
        envelopes += p.await??;
    }
    let relay_secs = started.elapsed().as_secs_f64();
    let mut latencies = Vec::with_capacity(envelopes);
    for r in receivers {
        latencies.extend(r.await?);
    }
    let pushes = latencies.len();
    relay.stop()?;

    // The same inserts, directly.
    let db_args = DatabaseArgs {
        url: db.to_string_lossy().into_owned(),
        db_max_connections: 8,
    };
    let direct = Db::connect(&db_args).await?;
    let conversations: Vec<i64> = sqlx::query("SELECT id FROM conversations ORDER BY id")
        .fetch_all(direct.pool())
        .await?
        .iter()
        .map(|r| r.try_get("id"))
        .collect::<Result<_, _>>()?;
    let messages: Vec<Vec<u8>> =
        sqlx::query("SELECT message FROM envelopes ORDER BY conversation_ref, cursor LIMIT $1")
            .bind(i64::try_from(envelopes)?)
            .fetch_all(direct.pool())
            .await?
            .iter()
            .map(|r| r.try_get("message"))
            .collect::<Result<_, _>>()?;
    if conversations.is_empty() {
        return Err("no conversations".into());
    }
    let started = Instant::now();
    insert_directly(&direct, &conversations, &messages, 1).await?;
    let direct_secs = started.elapsed().as_secs_f64();
    let started = Instant::now();
    insert_directly(&direct, &conversations, &messages, s.clients).await?;
    let grouped_secs = started.elapsed().as_secs_f64();
    direct.close().await;

    print_report(
        &s,
        &db,
        Report {
            envelopes,
            relay_secs,
            pushes,
            latencies,
            direct_secs,
            grouped_secs,
        },
        messages.len(),
    );
    drop(work);
    Ok(())
}

/// The relay's envelope insert (advance the conversation's cursor, insert the envelope), done
/// directly, `per_transaction` envelopes per write transaction.
async fn insert_directly(
    db: &Db,
    conversations: &[i64],
    messages: &[Vec<u8>],
    per_transaction: usize,
) -> Result<(), Error> {
    let now = sotto_relay::db::now();
    for (c, chunk) in messages.chunks(per_transaction.max(1)).enumerate() {
        let mut tx = db.begin_write().await?;
        for (i, m) in chunk.iter().enumerate() {
            let conv_ref = conversations[(c * per_transaction + i) % conversations.len()];
            let cursor: i64 = sqlx::query(
                "UPDATE conversations SET last_cursor = last_cursor + 1 WHERE id = $1 RETURNING last_cursor",
            )
            .bind(conv_ref)
            .fetch_one(&mut *tx)
            .await?
            .try_get("last_cursor")?;
            sqlx::query(
                "INSERT INTO envelopes (conversation_ref, cursor, message, received_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(conv_ref)
            .bind(cursor)
            .bind(m.as_slice())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
    }
    Ok(())
}

fn print_report(s: &Settings, db: &std::path::Path, mut r: Report, direct_envelopes: usize) {
    r.latencies.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let relay_rate = r.envelopes as f64 / r.relay_secs;
    let direct_rate = direct_envelopes as f64 / r.direct_secs;
    println!(
        "sotto-load: {} WebSocket clients ({} conversations of 2 visitor devices), {} envelopes of {} content bytes per client, on {}",
        s.clients,
        s.clients / 2,
        s.messages,
        s.content_bytes,
        db.display()
    );
    println!(
        "relay:  {} envelopes acknowledged in {:.2} s = {:.0} envelopes/s; post-to-push latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} of {} pushes received)",
        r.envelopes,
        r.relay_secs,
        relay_rate,
        ms(percentile(&r.latencies, 50.0)),
        ms(percentile(&r.latencies, 99.0)),
        ms(r.latencies.last().copied().unwrap_or_default()),
        r.pushes,
        r.envelopes
    );
    println!(
        "direct: {} envelopes inserted in {:.2} s = {:.0} envelopes/s (one write transaction each, same file, WAL, synchronous=FULL)",
        direct_envelopes, r.direct_secs, direct_rate
    );
    let grouped_rate = direct_envelopes as f64 / r.grouped_secs;
    println!(
        "direct, {} per transaction: {:.2} s = {:.0} envelopes/s",
        s.clients, r.grouped_secs, grouped_rate
    );
    println!(
        "relay / direct: {:.2} (one per transaction), {:.2} ({} per transaction)",
        relay_rate / direct_rate,
        relay_rate / grouped_rate,
        s.clients
    );
}
