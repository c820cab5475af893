//! `sotto-load fixture`: a tenant's first owner device, a team and a visitor with an open
//! conversation, created through the API; prints their ids and bearer tokens as JSON (the API
//! fuzzer uses them to reach authenticated routes).

use serde_json::json;
use sotto_core::conversation::ConversationId;
use sotto_core::conversation::epoch::EpochRecord;
use sotto_core::device::DeviceKind;
use sotto_core::team::{Policy, TeamState};
use sotto_core::wire::WireObject;

use crate::client::{Client, Error, b64, now, rng};

/// A team with its owner, and visitors each with an open conversation.
pub struct Fixture {
    pub owner: Client,
    pub team: TeamState,
}

/// Registers the owner with the bootstrap code and creates a team.
pub async fn team(
    http: &reqwest::Client,
    base: &str,
    widget_id: &str,
    bootstrap_code: &str,
) -> Result<Fixture, Error> {
    let mut owner = Client::new(http, base, widget_id, DeviceKind::Member)?;
    owner.join(Some(bootstrap_code)).await?;
    let (link, team, _keyring) =
        TeamState::create(&mut rng()?, &owner.device, &[], Policy::default(), now())
            .map_err(|e| format!("team: {e:?}"))?;
    owner
        .post("/v1/teams", json!({"link": b64(&link.to_wire())}))
        .await?;
    Ok(Fixture { owner, team })
}

/// Registers `devices` visitor devices (all logged in) and opens a conversation with the team
/// authored by the first, listing all of them.
pub async fn conversation(
    http: &reqwest::Client,
    base: &str,
    widget_id: &str,
    team: &TeamState,
    devices: usize,
) -> Result<
    (
        ConversationId,
        EpochRecord,
        Vec<Client>,
        sotto_core::crypto::secret::SecretBytes<32>,
    ),
    Error,
> {
    let mut visitors = Vec::with_capacity(devices);
    for _ in 0..devices.max(1) {
        let mut v = Client::new(http, base, widget_id, DeviceKind::Visitor)?;
        v.join(None).await?;
        visitors.push(v);
    }
    let mut rng = rng()?;
    let id = ConversationId::random(&mut rng);
    let records = visitors.iter().map(|v| v.device.record()).collect();
    let (record, secret) = EpochRecord::open(
        &mut rng,
        &visitors[0].device,
        team,
        id,
        0,
        None,
        records,
        now(),
    )
    .map_err(|e| format!("epoch record: {e:?}"))?;
    visitors[0]
        .post(
            "/v1/conversations",
            json!({"record": b64(&record.to_wire())}),
        )
        .await?;
    Ok((id, record, visitors, secret))
}

/// Prints `{"widget_id", "owner_token", "visitor_token", "team_id", "conversation_id"}`.
pub async fn run(base: &str, widget_id: &str, bootstrap_code: &str) -> Result<(), Error> {
    // Built together with the client SDK, reqwest has rustls without a provider of its own.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let f = team(&http, base, widget_id, bootstrap_code).await?;
    let (id, _, visitors, _) = conversation(&http, base, widget_id, &f.team, 1).await?;
    let out = json!({
        "widget_id": widget_id,
        "owner_token": f.owner.token,
        "visitor_token": visitors[0].token,
        "team_id": hex::encode(f.team.team().0),
        "conversation_id": hex::encode(id.0),
    });
    println!("{out}");
    Ok(())
}
