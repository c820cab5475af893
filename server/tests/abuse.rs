//! The abuse suite: one anonymous visitor (anyone holding a tenant's public widget id) attacks
//! the relay, and the relay must keep serving every other tenant.
//!
//! Each test runs a `sotto-relay serve` process (so its memory is the relay's alone, read from
//! `/proc/<pid>/status`), mounts one attack bounded in count and time, on loopback only, and
//! asserts the limit held: the relay's resident memory stays under a stated bound, stored bytes
//! stay under the quota, `/health` and a well-behaved tenant's message round trip keep answering
//! within a stated p99. Attacks that need a second client address bind to `127.0.0.2` (Linux
//! routes all of 127.0.0.0/8 to loopback), so that per-address caps hit the attacker and not the
//! probes. With `SOTTO_TEST_POSTGRES` set the relay runs on a fresh PostgreSQL database.
//!
//! The figures each test measures are printed (`cargo test -- --nocapture`) and recorded in
//! `docs/PERFORMANCE.md`.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::process::{Process, create_tenant};
use common::*;
use reqwest::StatusCode;
use serde_json::json;
use sotto_core::conversation::MessageKind;
use sotto_core::device::DeviceKind;
use sotto_core::team::{Role, TeamKeyring, TeamState};
use sotto_core::wire::WireObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A relay process under attack, its database, and a well-behaved tenant.
struct Bench {
    relay: Process,
    database: String,
    _dir: TempDir,
}

impl Bench {
    /// Starts a relay with `env` (its limits), on SQLite or, with `SOTTO_TEST_POSTGRES`, on a
    /// fresh PostgreSQL database.
    async fn start(env: &[(&str, &str)]) -> Self {
        let dir = TempDir::new();
        let database = match std::env::var("SOTTO_TEST_POSTGRES") {
            Ok(admin) if !admin.is_empty() => fresh_postgres_database(&admin).await,
            _ => dir.path().join("relay.sqlite").to_str().unwrap().to_owned(),
        };
        // The relay's own defaults for what `Process` relaxes, then the test's settings.
        let mut all = vec![
            ("SOTTO_MAX_CONNECTIONS_PER_ADDRESS", "256"),
            ("SOTTO_WS_MAX_PER_ADDRESS", "256"),
            ("SOTTO_REGISTRATIONS_PER_ADDRESS_HOUR", "200"),
            ("SOTTO_REGISTRATIONS_PER_TENANT_HOUR", "10000"),
        ];
        all.extend_from_slice(env);
        let relay = Process::start_with_env(
            &database,
            "warn,sotto_relay=info,sotto_relay::access=warn",
            &all,
        );
        Bench {
            relay,
            database,
            _dir: dir,
        }
    }

    fn tenant(&self) -> Tenant {
        create_tenant(&self.database)
    }

    fn addr(&self) -> SocketAddr {
        self.relay
            .base
            .trim_start_matches("http://")
            .parse()
            .unwrap()
    }

    /// The relay's resident memory in KiB.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.relay.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    /// Bytes stored in blobs, as the relay's database holds them.
    async fn stored_blob_bytes(&self) -> i64 {
        use sqlx::{Connection, Row};
        sqlx::any::install_default_drivers();
        let url = if self.database.starts_with("postgres") {
            self.database.clone()
        } else {
            format!("sqlite://{}", self.database)
        };
        let mut c = sqlx::AnyConnection::connect(&url).await.unwrap();
        let n: i64 = sqlx::query("SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) AS n FROM blobs")
            .fetch_one(&mut c)
            .await
            .unwrap()
            .try_get("n")
            .unwrap();
        c.close().await.unwrap();
        n
    }

    /// The SQLite files' size in bytes (database and write-ahead log); 0 on PostgreSQL.
    fn sqlite_bytes(&self) -> u64 {
        if self.database.starts_with("postgres") {
            return 0;
        }
        ["", "-wal"]
            .iter()
            .filter_map(|s| std::fs::metadata(format!("{}{s}", self.database)).ok())
            .map(|m| m.len())
            .sum()
    }
}

/// The p99 of `GET /health` over `n` sequential requests from 127.0.0.1, each on a fresh
/// connection (as a load balancer's probe would be), and the slowest.
async fn health_p99(base: &str, n: usize) -> Duration {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let r = http.get(format!("{base}/health")).send().await;
        assert!(
            r.is_ok_and(|r| r.status() == StatusCode::OK),
            "/health must keep answering under attack"
        );
        samples.push(t.elapsed());
    }
    p99(samples)
}

fn p99(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    let i = (samples.len() * 99).div_ceil(100).saturating_sub(1);
    samples[i.min(samples.len() - 1)]
}

/// The p99 of a well-behaved tenant's message round trip (the visitor posts, the agent reads
/// it back) over `n` messages.
async fn round_trip_p99(w: &World, n: usize) -> Duration {
    let mut chain = w.conversation.chain(&w.visitor.device, MessageKind::Text);
    let conv = w.conversation.hex();
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        let m = seal(
            &mut chain,
            &w.visitor.device,
            MessageKind::Text,
            format!("hello {i}").as_bytes(),
        );
        let posted = post_message(&w.visitor, &conv, &m).await.expect(201);
        let cursor = posted["cursor"].as_i64().unwrap();
        let page = w
            .agent
            .get(&format!(
                "/v1/conversations/{conv}/envelopes?after={}",
                cursor - 1
            ))
            .await
            .expect(200);
        assert_eq!(page["envelopes"][0]["cursor"].as_i64(), Some(cursor));
        samples.push(t.elapsed());
    }
    p99(samples)
}

/// A TCP connection to the relay from the loopback address `from`.
async fn connect_from(from: [u8; 4], to: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpSocket::new_v4()?;
    s.bind(SocketAddr::from((from, 0)))?;
    s.connect(to).await
}

/// Whether the peer closes `s` (EOF or reset) within `limit`, reading and dropping whatever it
/// sends meanwhile.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(limit, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// A WebSocket opened by hand (so the test can send frames no library would), after the 101.
async fn raw_websocket(addr: SocketAddr, token: &str) -> TcpStream {
    let mut s = connect_from([127, 0, 0, 1], addr).await.unwrap();
    let request = format!(
        "GET /v1/ws?token={token} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).await.unwrap(), 1, "handshake cut short");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s
}

/// A masked client frame header (mask key zero, so the payload goes as is) of `len` bytes.
fn frame_header(fin: bool, opcode: u8, len: u64) -> Vec<u8> {
    let mut h = vec![if fin { 0x80 } else { 0 } | opcode, 0x80 | 127];
    h.extend_from_slice(&len.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0, 0]);
    h
}

/// A visitor of `tenant`, registered and logged in.
async fn visitor(relay: &impl Target, tenant: &Tenant) -> Client {
    let mut v = relay.client(tenant, DeviceKind::Visitor);
    v.join(None).await;
    v
}

/// Fragment flood: sockets each send one endless fragmented message (1 MiB continuation frames,
/// never a final one). Before the limits the relay buffered each message whole (tungstenite's
/// 64 MiB message and 16 MiB frame defaults): four sockets took it from 14 MiB to 322 MiB.
/// Now a frame over 4 KiB closes the socket: the relay's memory grows by less than 24 MiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_fragment_flood_is_cut_off() {
    let bench = Bench::start(&[]).await;
    let tenant = bench.tenant();
    let attacker = visitor(&bench.relay, &tenant).await;
    let token = attacker.token.clone().unwrap();
    let before = bench.rss_kib();
    let payload = vec![b'a'; 1 << 20];
    let started = Instant::now();
    let mut sockets = Vec::new();
    for _ in 0..4 {
        sockets.push(raw_websocket(bench.addr(), &token).await);
    }
    let mut sent_mib = 0u64;
    for s in &mut sockets {
        let mut opcode = 1; // text, then continuations
        for _ in 0..48 {
            if started.elapsed() > Duration::from_secs(20) {
                break;
            }
            let mut frame = frame_header(false, opcode, payload.len() as u64);
            frame.extend_from_slice(&payload);
            if s.write_all(&frame).await.is_err() {
                break;
            }
            opcode = 0;
            sent_mib += 1;
        }
    }
    let mut all_closed = true;
    for s in &mut sockets {
        all_closed &= closed_within(s, Duration::from_secs(5)).await;
    }
    let grown = bench.rss_kib().saturating_sub(before);
    let health = health_p99(&bench.relay.base, 50).await;
    println!(
        "fragment flood: {sent_mib} MiB written on 4 sockets; relay RSS {before} KiB -> +{grown} KiB; /health p99 {health:?}"
    );
    assert!(
        all_closed,
        "the relay closes a socket sending oversized frames"
    );
    assert!(grown < 24 * 1024, "relay RSS grew by {grown} KiB");
    assert!(
        health < Duration::from_millis(250),
        "/health p99 {health:?}"
    );
}

/// Many sockets: one device opens 10 sockets (4 allowed), a second device from the same
/// address 10 more (the address cap of 6 leaves it 2); the refusals are 429
/// `too_many_connections`. A socket that never answers pings is closed after the idle timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_sockets_are_capped_and_idle_ones_closed() {
    let bench = Bench::start(&[
        ("SOTTO_WS_MAX_PER_DEVICE", "4"),
        ("SOTTO_WS_MAX_PER_ADDRESS", "6"),
        ("SOTTO_WS_IDLE_TIMEOUT_SECS", "3"),
    ])
    .await;
    let tenant = bench.tenant();
    let a = visitor(&bench.relay, &tenant).await;
    let b = visitor(&bench.relay, &tenant).await;
    let mut open = Vec::new();
    let mut accepted = [0usize; 2];
    for (i, c) in [&a, &b].into_iter().enumerate() {
        for _ in 0..10 {
            let url = format!(
                "{}/v1/ws?token={}",
                bench.relay.ws_base(),
                c.token.as_deref().unwrap()
            );
            match tokio_tungstenite::connect_async(url).await {
                Ok((ws, _)) => {
                    accepted[i] += 1;
                    open.push(ws);
                }
                Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
                    assert_eq!(r.status(), 429);
                    let body =
                        String::from_utf8_lossy(r.body().as_deref().unwrap_or(&[])).into_owned();
                    assert!(body.contains("too_many_connections"), "{body}");
                }
                Err(e) => panic!("unexpected: {e}"),
            }
        }
    }
    assert_eq!(accepted, [4, 2], "4 per device, 6 per address");
    drop(open);

    // A socket whose client never reads (so never answers a ping) is closed by the relay.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut silent = raw_websocket(bench.addr(), a.token.as_deref().unwrap()).await;
    let t = Instant::now();
    assert!(
        closed_within(&mut silent, Duration::from_secs(8)).await,
        "a silent socket is closed"
    );
    println!(
        "silent socket closed after {:?} (idle timeout 3 s)",
        t.elapsed()
    );
}

/// Slowloris: 300 connections from 127.0.0.2 each send part of a request's headers, then a
/// header line every half second. Before the limits none was ever closed (no header-read
/// timeout, no cap). Now the per-address cap (256, the default) closes the rest at once and the
/// header-read timeout (2 s here) the 256; `/health` from 127.0.0.1 keeps its p99.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_is_timed_out_and_capped() {
    let bench = Bench::start(&[("SOTTO_HEADER_READ_TIMEOUT_SECS", "2")]).await;
    let w = World::with_tenant(&bench.relay, bench.tenant()).await;
    let addr = bench.addr();
    let before = bench.rss_kib();
    let started = Instant::now();
    let mut conns = Vec::new();
    for _ in 0..300 {
        if let Ok(mut s) = connect_from([127, 0, 0, 2], addr).await {
            let _ = s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").await;
            conns.push(s);
        }
    }
    let trickle = tokio::spawn(async move {
        for _ in 0..8 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            for s in &mut conns {
                let _ = s.write_all(b"X-Slow: 1\r\n").await;
            }
        }
        conns
    });
    let health = health_p99(&bench.relay.base, 100).await;
    let round_trip = round_trip_p99(&w, 20).await;
    let mut conns = trickle.await.unwrap();
    let mut still_open = 0;
    for s in &mut conns {
        let left = Duration::from_secs(7).saturating_sub(started.elapsed());
        if !closed_within(s, left.max(Duration::from_millis(10))).await {
            still_open += 1;
        }
    }
    let grown = bench.rss_kib().saturating_sub(before);
    println!(
        "slowloris: {} connections, {still_open} open after 7 s; /health p99 {health:?}; round trip p99 {round_trip:?}; relay RSS +{grown} KiB",
        conns.len()
    );
    assert_eq!(still_open, 0, "every slow connection is closed");
    assert!(
        health < Duration::from_millis(250),
        "/health p99 {health:?}"
    );
    assert!(
        round_trip < Duration::from_millis(500),
        "round trip p99 {round_trip:?}"
    );
}

/// Blob and backup floods. A visitor's backups are capped small and replace each other; a
/// device's and a tenant's stored bytes stay under their quotas (413 `quota_exceeded`), and
/// the database stays under the quota plus a stated overhead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_and_backup_floods_hit_quotas() {
    const MIB: usize = 1 << 20;
    let bench = Bench::start(&[
        ("SOTTO_QUOTA_DEVICE_BYTES", &(4 * MIB).to_string()),
        ("SOTTO_QUOTA_TENANT_BYTES", &(6 * MIB).to_string()),
        ("SOTTO_VISITOR_BACKUP_MAX_BYTES", &(256 * 1024).to_string()),
    ])
    .await;
    let w = World::with_tenant(&bench.relay, bench.tenant()).await;

    // Before: 14 backups of 16 MiB from one visitor filled 241 MiB. Now a visitor's backup over
    // 256 KiB is refused, and each new one replaces the last.
    let big = b64(&vec![7u8; MIB]);
    let r = w
        .visitor
        .post("/v1/blobs", json!({"kind": "backup", "data": big}))
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (413, "quota_exceeded"));
    let small = b64(&vec![7u8; 200 * 1024]);
    for _ in 0..10 {
        w.visitor
            .post("/v1/blobs", json!({"kind": "backup", "data": small}))
            .await
            .expect(201);
    }
    assert_eq!(
        bench.stored_blob_bytes().await,
        200 * 1024,
        "only the latest backup"
    );

    // Attachments: 1 MiB each into the visitor's own conversation, until the device quota.
    let conv = w.conversation.hex();
    let mut stored = 0;
    let mut refused = None;
    for _ in 0..20 {
        let r = w
            .visitor
            .post(
                "/v1/blobs",
                json!({"kind": "attachment", "conversation_id": conv, "data": big}),
            )
            .await;
        if r.status == StatusCode::CREATED {
            stored += 1;
        } else {
            refused = Some((r.status.as_u16(), r.code().to_owned()));
            break;
        }
    }
    assert_eq!(
        stored, 3,
        "4 MiB device quota holds the 200 KiB backup and 3 MiB"
    );
    assert_eq!(refused, Some((413, "quota_exceeded".to_owned())));

    // A second visitor with its own conversation fills the tenant up to its 6 MiB quota.
    let mut other = visitor(&bench.relay, &w.tenant).await;
    let other_conv = open_conversation(&other, &w.team.state).await.hex();
    let mut second = 0;
    for _ in 0..20 {
        let r = other
            .post(
                "/v1/blobs",
                json!({"kind": "attachment", "conversation_id": other_conv, "data": big}),
            )
            .await;
        if r.status == StatusCode::CREATED {
            second += 1;
        } else {
            assert_eq!((r.status.as_u16(), r.code()), (413, "quota_exceeded"));
            break;
        }
    }
    assert_eq!(
        second, 2,
        "the tenant's 6 MiB quota leaves the second visitor 2 MiB"
    );
    other.token = None;

    let stored_bytes = bench.stored_blob_bytes().await;
    let disk = bench.sqlite_bytes();
    let health = health_p99(&bench.relay.base, 50).await;
    let round_trip = round_trip_p99(&w, 20).await;
    println!(
        "blob flood: {stored_bytes} bytes stored (tenant quota {}), SQLite files {disk} bytes; /health p99 {health:?}; round trip p99 {round_trip:?}",
        6 * MIB
    );
    assert!(stored_bytes <= 6 * MIB as i64);
    assert!(
        disk < 3 * 6 * MIB as u64,
        "database and WAL stay under 3x the quota: {disk}"
    );
    assert!(
        round_trip < Duration::from_millis(500),
        "round trip p99 {round_trip:?}"
    );
}

/// Registration flood: 60 visitor registrations from one address with a limit of 20 an hour
/// (the first 20 pass, the rest 429 `registration_throttled` with Retry-After); from a second
/// address the tenant's limit (30 here) stops the flood too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_flood_is_throttled() {
    let bench = Bench::start(&[
        ("SOTTO_REGISTRATIONS_PER_ADDRESS_HOUR", "20"),
        ("SOTTO_REGISTRATIONS_PER_TENANT_HOUR", "30"),
    ])
    .await;
    let tenant = bench.tenant();
    let mut ok = 0;
    for _ in 0..60 {
        let r = bench
            .relay
            .client(&tenant, DeviceKind::Visitor)
            .register(None)
            .await;
        match r.status.as_u16() {
            201 => ok += 1,
            429 => {
                assert_eq!(r.code(), "registration_throttled");
                assert!(r.retry_after.is_some());
            }
            s => panic!("unexpected {s}: {:?}", r.body),
        }
    }
    assert_eq!(ok, 20, "per-address limit");

    let mut c = bench.relay.client(&tenant, DeviceKind::Visitor);
    c.http = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let mut second = 0;
    for _ in 0..30 {
        c.device = sotto_core::device::Device::generate(DeviceKind::Visitor, &mut rng(), now());
        if c.register(None).await.status == StatusCode::CREATED {
            second += 1;
        }
    }
    assert_eq!(second, 10, "per-tenant limit: 30 in all");
}

/// Oracles: the token endpoint answers alike for registered and unregistered devices,
/// re-posting someone's record does not reveal its registration time, and a visitor cannot
/// fetch another visitor's record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_registration_oracles() {
    let bench = Bench::start(&[]).await;
    let w = World::with_tenant(&bench.relay, bench.tenant()).await;
    let registered = &w.visitor;
    let unregistered = bench.relay.client(&w.tenant, DeviceKind::Visitor);

    // A wrong signature for each: the same status and body.
    let mut answers = Vec::new();
    for c in [registered, &unregistered] {
        let (challenge, _) = c.challenge().await;
        let r = c.token_request(&challenge, &b64(&[0u8; 64])).await;
        answers.push((r.status.as_u16(), r.body.to_string()));
    }
    assert_eq!(answers[0], answers[1], "token failures must not differ");

    // The challenge costs the same for both (the registered one used to be stored, the other
    // not): medians within a factor of 4 (loose: both are about a millisecond on loopback and a
    // shared machine is noisy; the bodies above are the exact check).
    // Interleaved, so warm-up and background work affect both alike.
    let mut times = [Vec::new(), Vec::new()];
    for _ in 0..30 {
        for (i, c) in [registered, &unregistered].into_iter().enumerate() {
            let s = Instant::now();
            c.challenge().await;
            times[i].push(s.elapsed());
        }
    }
    let medians: Vec<Duration> = times
        .iter_mut()
        .map(|t| {
            t.sort();
            t[t.len() / 2]
        })
        .collect();
    println!(
        "challenge median: registered {:?}, unregistered {:?}",
        medians[0], medians[1]
    );
    assert!(medians[0] < medians[1] * 4 && medians[1] < medians[0] * 4);

    // Someone else re-posts the visitor's public record a second after it registered.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let before = now() as i64;
    let copy = Client::new(
        &bench.relay.base,
        &w.tenant,
        sotto_core::device::Device::generate(DeviceKind::Visitor, &mut rng(), now()),
    );
    let r = copy
        .post(
            "/v1/devices",
            json!({"widget_id": w.tenant.widget_id, "record": b64(&registered.device.record().to_wire())}),
        )
        .await;
    assert_eq!(
        r.status.as_u16(),
        201,
        "the same answer as a new registration"
    );
    assert!(r.body["registered_at"].as_i64().unwrap() >= before);

    // Another visitor asks for this visitor's record: the same 404 as for an unknown id.
    let other = visitor(&bench.relay, &w.tenant).await;
    let known = other
        .get(&format!("/v1/devices/{}", registered.id_hex()))
        .await;
    let unknown = other
        .get(&format!("/v1/devices/{}", unregistered.id_hex()))
        .await;
    assert_eq!(
        (known.status.as_u16(), known.body.to_string()),
        (unknown.status.as_u16(), unknown.body.to_string())
    );
    assert_eq!(known.status.as_u16(), 404);
    // Member devices stay readable (a new member's record is fetched to add it to a team).
    other
        .get(&format!("/v1/devices/{}", w.agent.id_hex()))
        .await
        .expect(200);
}

/// Cross-team audit read: the owner of team A adds an admin; the admin creates team B. A's
/// owner, who does not manage B, must not read B's entries; the admin reads both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_is_scoped_to_managed_teams() {
    let bench = Bench::start(&[]).await;
    let mut w = World::with_tenant(&bench.relay, bench.tenant()).await;
    let (admin, _) = w
        .team
        .add_member(&bench.relay, &w.tenant, Role::Admin)
        .await;
    let mut r = rng();
    let (link, state, keyring) = TeamState::create(
        &mut r,
        &admin.device,
        &[],
        sotto_core::team::Policy::default(),
        now(),
    )
    .unwrap();
    admin
        .post("/v1/teams", json!({"link": b64(&link.to_wire())}))
        .await
        .expect(201);
    let team_b = hex::encode(state.team().0);
    let mut b = TeamFixture {
        owner: admin,
        owner_keyring: keyring,
        state,
        links: vec![link],
        rng: r,
    };
    // B gets a member of its own, whose registration A's owner must not see either.
    let (b_agent, _): (Client, TeamKeyring) =
        b.add_member(&bench.relay, &w.tenant, Role::Agent).await;

    let subjects = |page: &serde_json::Value| -> Vec<String> {
        page["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                format!(
                    "{} {} {}",
                    e["event"].as_str().unwrap(),
                    e["subject"].as_str().unwrap_or(""),
                    e["device_id"].as_str().unwrap_or("")
                )
            })
            .collect()
    };
    let owner_view = subjects(&w.team.owner.get("/v1/audit?limit=1000").await.expect(200));
    assert!(
        owner_view
            .iter()
            .any(|s| s.starts_with("team_created") && s.contains(&w.team.team_hex())),
        "A's owner reads A: {owner_view:?}"
    );
    for s in &owner_view {
        assert!(!s.contains(&team_b), "A's owner reads B's entry {s}");
        assert!(
            !s.contains(&b_agent.id_hex()),
            "A's owner reads B's member {s}"
        );
        assert!(
            !s.contains(&w.visitor.id_hex()) || s.starts_with("conversation_created"),
            "a visitor's device-level entry {s}"
        );
    }
    let admin_view = subjects(&b.owner.get("/v1/audit?limit=1000").await.expect(200));
    assert!(admin_view.iter().any(|s| s.contains(&team_b)));
    assert!(admin_view.iter().any(|s| s.contains(&w.team.team_hex())));
}

/// `/metrics` is not served on the API listener without a token, and with one only to a
/// request that carries it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_not_public() {
    let open = Bench::start(&[]).await;
    let r = http_client()
        .get(format!("{}/metrics", open.relay.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    let guarded = Bench::start(&[("SOTTO_METRICS_TOKEN", "s3cret-metrics")]).await;
    let url = format!("{}/metrics", guarded.relay.base);
    let http = http_client();
    assert_eq!(http.get(&url).send().await.unwrap().status(), 401);
    assert_eq!(
        http.get(&url)
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let ok = http
        .get(&url)
        .bearer_auth("s3cret-metrics")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert!(
        ok.text()
            .await
            .unwrap()
            .contains("sotto_relay_http_requests_total")
    );

    // A separate listener serves /metrics without a token; the API listener does not at all.
    let relay = TestRelay::start_with(|a| {
        a.metrics_token = None;
        a.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let api = http
        .get(format!("{}/metrics", relay.base))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 404);
    let addr = relay.relay().metrics_addr().unwrap();
    let scraped = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(scraped.status(), 200);
    assert!(
        scraped
            .text()
            .await
            .unwrap()
            .contains("sotto_relay_quota_refused_total")
    );
    let other = http
        .get(format!("http://{addr}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        other.status(),
        404,
        "the metrics listener serves only /metrics"
    );
}

/// The sweeps: a visitor that has not authenticated for `--visitor-idle-secs` is deleted with
/// its backup (its conversation stays readable), and audit entries older than
/// `--audit-retention-secs` go; a recently seen visitor and recent entries stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_visitors_and_old_audit_entries_are_swept() {
    let relay = TestRelay::start_with(|a| {
        a.limits.visitor_idle_secs = 30 * 86_400;
        a.limits.audit_retention_secs = 60 * 86_400;
    })
    .await;
    let w = World::new(&relay, "acme").await;
    w.visitor
        .post(
            "/v1/blobs",
            json!({"kind": "backup", "data": b64(&[1u8; 1000])}),
        )
        .await
        .expect(201);
    let visitors = "kind = 2";
    assert_eq!(relay.count("devices", visitors).await, 1);
    let audit_before = relay.count("audit_log", "").await;
    assert!(audit_before > 0);

    // Ten days on: nothing is old enough.
    let state = relay.relay().state();
    let day = 86_400;
    let r = sotto_relay::sweep::sweep_once(state, now() as i64 + 10 * day)
        .await
        .unwrap();
    assert_eq!((r.devices, r.audit), (0, 0));

    // Forty days on: the visitor is idle; 61 days on, the audit entries are old.
    let r = sotto_relay::sweep::sweep_once(state, now() as i64 + 40 * day)
        .await
        .unwrap();
    assert_eq!(r.devices, 1);
    assert_eq!(relay.count("devices", visitors).await, 0);
    assert_eq!(relay.count("blobs", "").await, 0, "its backup went with it");
    assert_eq!(
        relay.count("conversations", "").await,
        1,
        "its conversation stays for the team"
    );
    let r = sotto_relay::sweep::sweep_once(state, now() as i64 + 61 * day)
        .await
        .unwrap();
    assert!(r.audit >= u64::try_from(audit_before).unwrap());
    assert_eq!(relay.count("audit_log", "").await, 0);
}

/// Framing from a foreign origin: the widget frame page names, in `frame-ancestors`, only the
/// relay's own pages and the origins its tenant allows, so a browser refuses to render it on any
/// other site; the frame reads the same list from `GET /v1/widgets/{widget_id}` to check its
/// parent. Before, every frame page said `frame-ancestors *`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn widget_frame_is_framed_only_by_allowed_origins() {
    let files = TempDir::new();
    std::fs::create_dir_all(files.path().join("widget")).unwrap();
    std::fs::write(files.path().join("widget/frame.html"), "<p>frame</p>").unwrap();
    let root = files.path().to_path_buf();
    let relay = TestRelay::start_with(|a| a.web_root = Some(root)).await;
    let shop = relay.tenant("shop").await;
    let other = relay.tenant("other").await;
    sotto_relay::tenant::set_embed_origins(
        &relay.relay().state().db,
        &shop.widget_id,
        &["https://shop.example.com".to_owned()],
    )
    .await
    .unwrap();
    let csp = |w: &str| {
        let url = format!("{}/widget/frame.html?w={w}", relay.base);
        async move {
            let r = http_client().get(url).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .to_owned()
        }
    };
    let policy = csp(&shop.widget_id).await;
    assert!(
        policy.ends_with("frame-ancestors 'self' https://shop.example.com"),
        "{policy}"
    );
    for w in [other.widget_id.as_str(), "00", "not-hex"] {
        let policy = csp(w).await;
        assert!(policy.ends_with("frame-ancestors 'self'"), "{w}: {policy}");
    }
    let info = send(
        &http_client(),
        reqwest::Method::GET,
        &format!("{}/v1/widgets/{}", relay.base, shop.widget_id),
        None,
        None,
    )
    .await
    .expect(200);
    assert_eq!(info, json!({"embed_origins": ["https://shop.example.com"]}));
    let unknown = send(
        &http_client(),
        reqwest::Method::GET,
        &format!("{}/v1/widgets/{}", relay.base, "0".repeat(32)),
        None,
        None,
    )
    .await;
    assert_eq!(
        (unknown.status.as_u16(), unknown.code()),
        (404, "not_found")
    );
    // What an operator types goes into a header: anything but a plain origin is refused.
    for bad in ["*", "https://a.example.com; script-src *", "javascript:x"] {
        assert!(
            sotto_relay::tenant::set_embed_origins(
                &relay.relay().state().db,
                &shop.widget_id,
                &[bad.to_owned()]
            )
            .await
            .is_err()
        );
    }
}

/// Message and conversation floods: a visitor's conversation holds at most
/// `--quota-conversation-envelopes` stored messages (30 here) and a visitor device takes part
/// in at most `--quota-visitor-conversations` conversations (3 here); beyond, 413
/// `quota_exceeded`, and the team's own replies in other conversations still go through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_and_conversation_floods_hit_quotas() {
    let bench = Bench::start(&[
        ("SOTTO_QUOTA_CONVERSATION_ENVELOPES", "30"),
        ("SOTTO_QUOTA_VISITOR_CONVERSATIONS", "3"),
    ])
    .await;
    let w = World::with_tenant(&bench.relay, bench.tenant()).await;
    let conv = w.conversation.hex();
    let mut chain = w.conversation.chain(&w.visitor.device, MessageKind::Text);
    let mut stored = 0;
    for i in 0..40 {
        let m = seal(
            &mut chain,
            &w.visitor.device,
            MessageKind::Text,
            format!("flood {i}").as_bytes(),
        );
        let r = post_message(&w.visitor, &conv, &m).await;
        if r.status == StatusCode::CREATED {
            stored += 1;
        } else {
            assert_eq!((r.status.as_u16(), r.code()), (413, "quota_exceeded"));
        }
    }
    assert_eq!(stored, 30);

    let mut opened = 1;
    for _ in 0..5 {
        let mut rng = rng();
        let id = sotto_core::conversation::ConversationId::random(&mut rng);
        let (record, _) = sotto_core::conversation::epoch::EpochRecord::open(
            &mut rng,
            &w.visitor.device,
            &w.team.state,
            id,
            0,
            None,
            vec![w.visitor.device.record()],
            now(),
        )
        .unwrap();
        let r = w
            .visitor
            .post(
                "/v1/conversations",
                json!({"record": b64(&record.to_wire())}),
            )
            .await;
        if r.status == StatusCode::CREATED {
            opened += 1;
        } else {
            assert_eq!((r.status.as_u16(), r.code()), (413, "quota_exceeded"));
        }
    }
    assert_eq!(opened, 3);

    // Another visitor of the same tenant is not affected.
    let other = visitor(&bench.relay, &w.tenant).await;
    let fresh = open_conversation(&other, &w.team.state).await;
    let mut c = fresh.chain(&other.device, MessageKind::Text);
    let m = seal(&mut c, &other.device, MessageKind::Text, b"hello");
    post_message(&other, &fresh.hex(), &m).await.expect(201);
}

/// With `--console-listen`, the agent console and the widget frame never share an origin: the
/// main listener serves `widget/` and not `console/`, the console listener the reverse, and a
/// device on the console's origin authenticates by signing that origin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_has_its_own_origin() {
    let files = TempDir::new();
    for dir in ["widget", "console"] {
        std::fs::create_dir_all(files.path().join(dir)).unwrap();
    }
    std::fs::write(files.path().join("widget/frame.html"), "<p>frame</p>").unwrap();
    std::fs::write(files.path().join("console/index.html"), "<p>console</p>").unwrap();
    let root = files.path().to_path_buf();
    let relay = TestRelay::start_with(|a| {
        a.web_root = Some(root);
        a.console_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let console = format!("http://{}", relay.relay().console_addr().unwrap());
    let status = |url: String| async move {
        http_client()
            .get(url)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(
        status(format!("{}/widget/frame.html", relay.base)).await,
        200
    );
    assert_eq!(status(format!("{}/console/", relay.base)).await, 404);
    assert_eq!(status(format!("{console}/console/")).await, 200);
    assert_eq!(status(format!("{console}/widget/frame.html")).await, 404);

    // An agent device on the console's origin signs that origin; the API answers there too.
    let tenant = relay.tenant("acme").await;
    let mut agent = Client::new(
        &console,
        &tenant,
        sotto_core::device::Device::generate(DeviceKind::Member, &mut rng(), now()),
    );
    agent
        .register(Some(&tenant.bootstrap_code))
        .await
        .expect(201);
    let (c, _) = agent.challenge().await;
    let wrong = agent.sign_challenge(&c, "http://127.0.0.1:1");
    assert_eq!(agent.token_request(&c, &wrong).await.status.as_u16(), 401);
    let (c, _) = agent.challenge().await;
    let signed = agent.sign_challenge(&c, &console);
    let token = agent.token_request(&c, &signed).await.expect(200);
    agent.token = Some(token["token"].as_str().unwrap().to_owned());
    agent.get("/v1/devices/me").await.expect(200);
}
