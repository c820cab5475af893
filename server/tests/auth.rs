//! Registration and challenge-response authentication: the happy path, and every way a token
//! or challenge must be refused (expired, forged, replayed, for another device or tenant).

mod common;

use common::*;
use serde_json::json;
use sotto_core::device::DeviceKind;
use sotto_core::wire::WireObject;

#[tokio::test]
async fn registration_and_authentication_flow() {
    let relay = TestRelay::start().await;
    let tenant = relay.tenant("acme").await;

    // The first owner device registers with the bootstrap code.
    let mut owner = relay.client(&tenant, DeviceKind::Member);
    let r = owner
        .register(Some(&tenant.bootstrap_code))
        .await
        .expect(201);
    assert_eq!(r["device_id"], owner.id_hex());
    assert_eq!(r["kind"], "member");
    // Registering the same record again is idempotent, and answered like a new registration.
    owner.register(None).await.expect(201);
    owner.login().await;
    let me = owner.get("/v1/devices/me").await.expect(200);
    assert_eq!(me["device_id"], owner.id_hex());
    assert_eq!(
        unb64(me["record"].as_str().unwrap()),
        owner.device.record().to_wire()
    );

    // The bootstrap code is single use.
    let other = relay.client(&tenant, DeviceKind::Member);
    let r = other.register(Some(&tenant.bootstrap_code)).await;
    assert_eq!((r.status.as_u16(), r.code()), (403, "bootstrap_invalid"));

    // Visitors and recovery devices register with the widget id alone.
    let mut visitor = relay.client(&tenant, DeviceKind::Visitor);
    assert_eq!(visitor.register(None).await.expect(201)["kind"], "visitor");
    visitor.login().await;
    let recovery = relay.client(&tenant, DeviceKind::Recovery);
    assert_eq!(
        recovery.register(None).await.expect(201)["kind"],
        "recovery"
    );

    // A device id registered with another record is a conflict.
    let mut clash = relay.client(&tenant, DeviceKind::Visitor);
    let mut record = owner.device.clone();
    record.rotate_key_agreement(&mut rng(), now()).unwrap();
    clash.device = record;
    let r = clash.register(None).await;
    assert_eq!((r.status.as_u16(), r.code()), (409, "already_registered"));

    // Unknown widget ids are 404.
    let mut lost = relay.client(&tenant, DeviceKind::Visitor);
    lost.widget_id = "00".repeat(16);
    assert_eq!(lost.register(None).await.status.as_u16(), 404);

    // Devices of the tenant can read each other's public records.
    let r = visitor
        .get(&format!("/v1/devices/{}", owner.id_hex()))
        .await
        .expect(200);
    assert_eq!(r["kind"], "member");

    // The audit log records registrations and authentications (owner needs a team first).
    let audit = relay
        .count("audit_log", "event = 'device_authenticated'")
        .await;
    assert_eq!(audit, 2);
}

#[tokio::test]
async fn forged_replayed_and_expired_challenges_are_refused() {
    let relay = TestRelay::start_with(|a| a.challenge_ttl_secs = 1).await;
    let tenant = relay.tenant("acme").await;
    let device = relay.client(&tenant, DeviceKind::Visitor);
    device.register(None).await.expect(201);

    // Forged: signed by another key.
    let (c, origin) = device.challenge().await;
    let mut forger = relay.client(&tenant, DeviceKind::Visitor);
    forger.device = sotto_core::device::Device::generate(DeviceKind::Visitor, &mut rng(), now());
    let forged = forger.sign_challenge(&c, &origin);
    assert_eq!(device.token_request(&c, &forged).await.status.as_u16(), 401);
    // The failed attempt consumed the challenge: even the right signature is refused now.
    let good = device.sign_challenge(&c, &origin);
    assert_eq!(device.token_request(&c, &good).await.status.as_u16(), 401);

    // Signed for another origin (another relay) or another tenant.
    let (c, origin) = device.challenge().await;
    let wrong_origin = device.sign_challenge(&c, "https://evil.example");
    assert_eq!(
        device
            .token_request(&c, &wrong_origin)
            .await
            .status
            .as_u16(),
        401
    );
    let (c, _) = device.challenge().await;
    let mut other_tenant = relay.client(&tenant, DeviceKind::Visitor);
    other_tenant.device = device.device.clone();
    other_tenant.widget_id = "11".repeat(16);
    let sig = other_tenant.sign_challenge(&c, &origin);
    assert_eq!(device.token_request(&c, &sig).await.status.as_u16(), 401);

    // Replayed: a challenge works once.
    let (c, origin) = device.challenge().await;
    let sig = device.sign_challenge(&c, &origin);
    device.token_request(&c, &sig).await.expect(200);
    assert_eq!(device.token_request(&c, &sig).await.status.as_u16(), 401);

    // A challenge for an unregistered device looks the same but never yields a token.
    let ghost = relay.client(&tenant, DeviceKind::Visitor);
    let (c, origin) = ghost.challenge().await;
    let sig = ghost.sign_challenge(&c, &origin);
    assert_eq!(ghost.token_request(&c, &sig).await.status.as_u16(), 401);

    // A made-up challenge.
    let sig = device.sign_challenge(&[7; 32], &origin);
    assert_eq!(
        device.token_request(&[7; 32], &sig).await.status.as_u16(),
        401
    );

    // Expired: the challenge lives one second here.
    let (c, origin) = device.challenge().await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let sig = device.sign_challenge(&c, &origin);
    let r = device.token_request(&c, &sig).await;
    assert_eq!((r.status.as_u16(), r.code()), (401, "unauthorized"));

    // Malformed fields are 400, not 401.
    let r = device
        .post(
            "/v1/auth/token",
            json!({"widget_id": device.widget_id, "device_id": device.id_hex(),
                   "challenge": "not base64!", "signature": "AA=="}),
        )
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (400, "invalid_base64"));
}

#[tokio::test]
async fn expired_forged_and_foreign_tokens_are_refused() {
    let relay = TestRelay::start_with(|a| a.token_ttl_secs = 1).await;
    let tenant = relay.tenant("acme").await;
    let mut device = relay.client(&tenant, DeviceKind::Visitor);
    device.join(None).await;
    device.get("/v1/devices/me").await.expect(200);

    // A forged token (random bytes) and garbage.
    let mut forged = relay.client(&tenant, DeviceKind::Visitor);
    forged.token = Some("ab".repeat(32));
    assert_eq!(forged.get("/v1/devices/me").await.status.as_u16(), 401);
    forged.token = Some("not a token".into());
    assert_eq!(forged.get("/v1/devices/me").await.status.as_u16(), 401);

    // A token altered in one character.
    let mut altered = device.token.clone().unwrap();
    let last = altered.pop().unwrap();
    altered.push(if last == '0' { '1' } else { '0' });
    forged.token = Some(altered);
    assert_eq!(forged.get("/v1/devices/me").await.status.as_u16(), 401);

    // The token expires (one second here), on HTTP and on the WebSocket.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let r = device.get("/v1/devices/me").await;
    assert_eq!((r.status.as_u16(), r.code()), (401, "unauthorized"));
    let url = format!(
        "{}/v1/ws?token={}",
        relay.base.replace("http", "ws"),
        device.token.as_deref().unwrap()
    );
    let err = tokio_tungstenite::connect_async(url).await.unwrap_err();
    assert!(
        matches!(&err, tokio_tungstenite::tungstenite::Error::Http(r) if r.status() == 401),
        "{err}"
    );

    // Only the hash of a token is stored.
    use sqlx::Row;
    let stored: Vec<u8> = sqlx::query("SELECT token_hash FROM auth_tokens")
        .fetch_one(relay.pool())
        .await
        .unwrap()
        .try_get("token_hash")
        .unwrap();
    assert_ne!(hex::encode(&stored), device.token.clone().unwrap());
}

#[tokio::test]
async fn key_agreement_rotation_must_verify_and_be_newer() {
    let relay = TestRelay::start().await;
    let tenant = relay.tenant("acme").await;
    let mut device = relay.client(&tenant, DeviceKind::Visitor);
    device.join(None).await;

    let mut rotated = device.device.clone();
    let (record, _) = rotated.rotate_key_agreement(&mut rng(), now()).unwrap();
    let r = device
        .put(
            "/v1/devices/me/key-agreement",
            json!({"record": b64(&record.to_wire())}),
        )
        .await
        .expect(200);
    assert_eq!(
        unb64(r["record"].as_str().unwrap()),
        rotated.record().to_wire()
    );

    // Replaying it (not newer) is a conflict.
    let r = device
        .put(
            "/v1/devices/me/key-agreement",
            json!({"record": b64(&record.to_wire())}),
        )
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (409, "not_newer"));

    // A record of another device does not verify.
    let mut stranger = sotto_core::device::Device::generate(DeviceKind::Visitor, &mut rng(), now());
    stranger.rotate_key_agreement(&mut rng(), now()).unwrap();
    let (foreign, _) = stranger.rotate_key_agreement(&mut rng(), now()).unwrap();
    let r = device
        .put(
            "/v1/devices/me/key-agreement",
            json!({"record": b64(&foreign.to_wire())}),
        )
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (400, "verification_failed"));

    // A tampered record does not decode or verify.
    let (next, _) = rotated.rotate_key_agreement(&mut rng(), now()).unwrap();
    let mut bytes = next.to_wire();
    let n = bytes.len();
    bytes[n - 1] ^= 1;
    let r = device
        .put(
            "/v1/devices/me/key-agreement",
            json!({"record": b64(&bytes)}),
        )
        .await;
    assert_eq!(r.status.as_u16(), 400);
}
