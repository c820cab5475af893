//! The team's freshness witness (PROTOCOL §6.8), reached directly at the URL an owner named in
//! the chain, never through the relay.
//!
//! Before a visitor seals, and before a member opens an epoch or sends once its last check is
//! half the freshness limit old, the client fetches the witness's signed statement of the head,
//! *then* syncs the chain from the relay, then checks the statement against what it verified.
//! That order matters: a member pushes a link to the witness only after the relay accepted it,
//! so an honest relay always serves every link the statement names, and a head beyond ours means
//! the relay withholds links ([`ChainError::Withheld`], with [`Warning::Rollback`]). A witness
//! behind us is pushed the links it misses, and members push the links they append.

use serde::{Deserialize, Serialize};
use sotto_core::ChainError;
use sotto_core::team::witness::{WitnessStatement, WitnessVerdict};
use sotto_core::team::{Link, TeamId, TeamState};
use sotto_core::wire::WireObject;

use super::Client;
use super::api::{b64, check, parse, unb64};
use super::bodies;
use super::events::{Event, Warning};
use super::records;
use crate::transport::{HttpRequest, Method, RelayUrl, Transport};
use crate::{Error, Result};

/// Links per push to the witness (its `--max-batch`).
pub(crate) const WITNESS_BATCH: usize = 64;

#[derive(Deserialize)]
struct StatementOut {
    statement: String,
}

#[derive(Serialize)]
struct LinksIn<'a> {
    links: &'a [String],
}

/// A pinned witness key must be the one the chain names: a reference pinning another (an owner
/// replaced the witness and the snippet was not updated) is refused rather than trusted.
fn check_pin(state: &TeamState, pin: Option<[u8; 32]>) -> Result<()> {
    match (pin, state.witness()) {
        (Some(pin), Some((_, key))) if pin != *key.as_bytes() => {
            Err(Error::Core(ChainError::BadWitness.into()))
        }
        _ => Ok(()),
    }
}

fn witness_path(team: &TeamId, rest: &str) -> String {
    format!("/v1/witness/{}{rest}", hex::encode(team.0))
}

/// The URL of the witness `state` names.
fn witness_url(state: &TeamState) -> Result<&str> {
    state
        .witness()
        .map(|(url, _)| url)
        .ok_or(Error::Core(ChainError::BadWitness.into()))
}

impl<S: crate::store::Store, T: Transport> Client<S, T> {
    /// One request about `state`'s team to the witness at `url`: the URL passes the same policy
    /// as a relay's (`https`, or `http` on loopback); no token is sent.
    async fn witness_request(
        &self,
        url: &str,
        state: &TeamState,
        method: Method,
        rest: &str,
        json: Option<Vec<u8>>,
    ) -> Result<Vec<u8>> {
        let base = RelayUrl::parse(url)?;
        let request = HttpRequest {
            method,
            url: base.http_url(&witness_path(&state.team(), rest)),
            bearer: None,
            json,
        };
        check(self.inner.api.transport.request(request).await?)
    }

    /// The current statement of the witness at `url`, or `None` if it does not know the team.
    async fn fetch_statement(
        &self,
        url: &str,
        state: &TeamState,
    ) -> Result<Option<WitnessStatement>> {
        match self
            .witness_request(url, state, Method::Get, "", None)
            .await
        {
            Ok(body) => {
                let out: StatementOut = parse(&body)?;
                Ok(Some(WitnessStatement::from_wire(&unb64(&out.statement)?)?))
            }
            Err(Error::Relay { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Pushes the stored links `from..=state.seq()` to the witness at `url`, in batches.
    async fn push_links(&self, url: &str, state: &TeamState, from: u64) -> Result<()> {
        let mut seq = from;
        while seq <= state.seq() {
            let mut batch = Vec::new();
            while seq <= state.seq() && batch.len() < WITNESS_BATCH {
                let stored = self
                    .inner
                    .store
                    .get(&records::link_id(&state.team(), seq)?)
                    .await?
                    .ok_or(Error::Corrupt("a verified link is not stored"))?;
                // Stored links were verified when they arrived; decoding is a cheap sanity check.
                let link = Link::from_wire(&stored.value)?;
                batch.push(b64(&link.to_wire()));
                seq = seq.saturating_add(1);
            }
            let body = bodies::encode(&LinksIn { links: &batch })?;
            self.witness_request(url, state, Method::Post, "/links", Some(body))
                .await?;
        }
        Ok(())
    }

    /// Brings the witness at `url` up to `state`'s head: asks for its head and pushes what it
    /// lacks. Also how a replaced witness learns of its successor (the owner's client sends it
    /// the replacing link): a client the relay keeps on a head before the replacement still asks
    /// the old witness, which then vouches for links that client lacks (`chain_withheld`)
    /// instead of vouching for the old head indefinitely (PROTOCOL §6.8).
    pub(crate) async fn update_witness_at(&self, url: &str, state: &TeamState) -> Result<()> {
        let from = match self.fetch_statement(url, state).await? {
            None => 0,
            Some(s) if s.seq < state.seq() => s.seq.saturating_add(1),
            Some(_) => return Ok(()),
        };
        self.push_links(url, state, from).await
    }

    /// Brings the witness `state` names up to its head. Members call it after appending a
    /// link; a failure is left to the next check.
    pub(crate) async fn update_witness(&self, state: &TeamState) -> Result<()> {
        match state.witness() {
            Some((url, _)) if !state.is_deleted() => self.update_witness_at(url, state).await,
            _ => Ok(()),
        }
    }

    /// The freshness check against the witness, if the chain names one: `Ok(false)` when it
    /// names none (the caller falls back to head attestations, the weaker bound of
    /// PROTOCOL §6.7). Refuses with [`ChainError::Withheld`] (and warns) when the witness
    /// vouches for links the relay does not serve.
    pub(crate) async fn check_witness(&self, team: &TeamId) -> Result<bool> {
        let pin = self.witness_pin(team).await;
        let mut before = self.team_state(team).await?;
        if before.is_deleted() {
            return Ok(false);
        }
        if before.witness().is_none() {
            if pin.is_none() {
                return Ok(false);
            }
            // The reference pins a witness the chain does not name yet: fetch the links; if
            // the relay still serves none naming it, it withholds the SetWitness link.
            self.sync_team(team).await?;
            before = self.team_state(team).await?;
            if before.witness().is_none() {
                self.inner
                    .events
                    .emit(Event::Warning(Warning::Rollback { team: *team }));
                return Err(Error::Core(ChainError::Withheld.into()));
            }
        }
        check_pin(&before, pin)?;
        let url = witness_url(&before)?.to_owned();
        let statement = match self.fetch_statement(&url, &before).await? {
            Some(s) => s,
            None => {
                // The witness does not know the team yet: give it the chain, then ask again.
                self.push_links(&url, &before, 0).await?;
                self.fetch_statement(&url, &before)
                    .await?
                    .ok_or(Error::BadResponse("the witness does not keep the team"))?
            }
        };
        // Statement first, then the relay: every link the witness held was on the relay before.
        self.sync_team(team).await?;
        let state = self.team_state(team).await?;
        check_pin(&state, pin)?;
        let now = self.now();
        match statement.check(&state, now) {
            Ok(WitnessVerdict::Current) => {}
            Ok(WitnessVerdict::Behind { seq }) => {
                // Nothing is hidden from us; help the witness catch up (best effort: our
                // freshness is already established).
                let _ = self.push_links(&url, &state, seq.saturating_add(1)).await;
            }
            Err(e) => {
                if matches!(
                    e,
                    sotto_core::Error::Chain(ChainError::Withheld | ChainError::Fork)
                ) {
                    let warning = if e == sotto_core::Error::Chain(ChainError::Fork) {
                        Warning::Fork { team: *team }
                    } else {
                        Warning::Rollback { team: *team }
                    };
                    self.inner.events.emit(Event::Warning(warning));
                }
                return Err(Error::Core(e));
            }
        }
        if let Ok(mut checked) = self.inner.head_checked.lock() {
            checked.insert(*team, now);
        }
        Ok(true)
    }
}
