//! The push connection: what arrives over the relay's WebSocket, and reconnecting.
//!
//! Push is a shortcut, never the source of truth: on every (re)connect the client first syncs
//! over HTTP from its stored cursors, and a pushed envelope is taken directly only if it is the
//! next one after the stored cursor; otherwise (a gap, `lagged`) the conversation is synced
//! over HTTP. So a reconnect resumes without loss, and the store's checks drop duplicates.

use core::pin::pin;

use futures_util::future::{Either, select};
use serde::Deserialize;
use sotto_core::conversation::ConversationId;
use sotto_core::team::TeamId;

use super::Client;
use super::api::{unb64, unhex};
use super::events::Event;
use super::receive::StoredEnvelope;
use crate::store::Store;
use crate::transport::{CLOSE_TOKEN_EXPIRED, PushStream, Transport};
use crate::{Error, Result};

/// First and longest wait between reconnection attempts.
const BACKOFF_MIN_MS: u64 = 250;
const BACKOFF_MAX_MS: u64 = 30_000;
/// Bounds of the interval of periodic work while connected.
const TICK_MIN_MS: u64 = 500;
const TICK_MAX_MS: u64 = 30_000;

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Frame {
    Ready,
    Envelope {
        conversation_id: String,
        cursor: u64,
        message: String,
    },
    Ephemeral {
        conversation_id: String,
        message: String,
    },
    Epoch {
        conversation_id: String,
    },
    Link {
        team_id: String,
        seq: u64,
        link: String,
    },
    ConversationDeleted {
        conversation_id: String,
    },
    Lagged,
    #[serde(other)]
    Unknown,
}

impl<S: Store, T: Transport> Client<S, T> {
    /// Keeps this client connected: opens the push stream, syncs everything over HTTP (teams,
    /// conversations, then the outbox), processes pushed frames, and on any disconnect waits
    /// (doubling from 250 ms to 30 s) and starts again. Runs until the future is dropped; spawn
    /// it on the platform's executor (`tokio::spawn`, `wasm_bindgen_futures::spawn_local`).
    /// Connection changes arrive as [`Event::Connected`] and [`Event::Disconnected`];
    /// [`Client::wake`] cuts a wait short.
    pub async fn run(&self) {
        let mut backoff = BACKOFF_MIN_MS;
        loop {
            let outcome = self.run_connection(&mut backoff).await;
            self.inner.events.emit(Event::Disconnected {
                code: outcome.err().map(|e| e.code()),
            });
            let wait = pin!(self.inner.api.transport.sleep(backoff));
            let woken = pin!(self.inner.wake.wait());
            backoff = match select(wait, woken).await {
                Either::Left(((), _)) => backoff.saturating_mul(2).min(BACKOFF_MAX_MS),
                Either::Right(((), _)) => BACKOFF_MIN_MS,
            };
        }
    }

    /// Tells the client that the network may be back (the platform's connectivity signal: the
    /// browser's `online` event, a phone's network callback). A [`Client::run`] waiting to
    /// reconnect tries at once, and a connected one retries its outbox at once.
    pub fn wake(&self) {
        self.inner.wake.wake();
    }

    /// One connection, until it closes or fails.
    async fn run_connection(&self, backoff: &mut u64) -> Result<()> {
        let api = &self.inner.api;
        let token = api.token(&self.inner.device, false).await?;
        let mut push = api
            .transport
            .connect_push(&api.relay.push_url(), &token)
            .await?;
        drop(token);
        // Refusals about one team or conversation (reported by `sync`) must not keep the
        // connection down; only failures that may pass do.
        match self.sync().await {
            Err(e) if e.is_transient() => return Err(e),
            _ => {}
        }
        *backoff = BACKOFF_MIN_MS;
        self.inner.events.emit(Event::Connected);
        loop {
            let tick = self.tick_interval_ms().await;
            let frame = {
                let next = pin!(push.next_frame());
                let timer = pin!(api.transport.sleep(tick));
                let woken = pin!(self.inner.wake.wait());
                match select(next, select(timer, woken)).await {
                    Either::Left((frame, _)) => Some(frame),
                    Either::Right(_) => None,
                }
            };
            let Some(frame) = frame else {
                self.tick().await?;
                continue;
            };
            match frame {
                None => {
                    if push.close_code() == Some(CLOSE_TOKEN_EXPIRED) {
                        api.token(&self.inner.device, true).await?;
                    }
                    return Ok(());
                }
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(text)) => match self.handle_frame(&text).await {
                    Err(e) if e.is_transient() => return Err(e),
                    // One bad frame or conversation must not stop the others.
                    _ => {}
                },
            }
        }
    }

    /// How often a connected client does its periodic work: a quarter of the smallest
    /// freshness limit of its teams, between 0.5 and 30 seconds.
    async fn tick_interval_ms(&self) -> u64 {
        let teams = self.inner.teams.lock().await;
        let smallest = teams
            .values()
            .map(|v| u64::from(v.state.policy().freshness_limit_secs))
            .min()
            .unwrap_or(u64::MAX / 1000);
        (smallest.saturating_mul(1000) / 4).clamp(TICK_MIN_MS, TICK_MAX_MS)
    }

    /// Periodic work while connected: renew head attestations before they go stale (visitors
    /// refuse stale heads, so online members keep them fresh), and retry the outbox.
    async fn tick(&self) -> Result<()> {
        self.renew_attestations().await?;
        match self.flush_outbox().await {
            Err(e) if e.is_transient() => Err(e),
            _ => Ok(()),
        }
    }

    async fn handle_frame(&self, text: &str) -> Result<()> {
        match parse_frame(text)? {
            // Connecting already synced everything up to the subscription.
            Frame::Ready => Ok(()),
            Frame::Lagged => self.sync().await,
            Frame::Envelope {
                conversation_id,
                cursor,
                message,
            } => {
                let conversation = ConversationId(unhex(&conversation_id)?);
                self.pushed_envelope(&conversation, cursor, message).await
            }
            Frame::Ephemeral {
                conversation_id,
                message,
            } => {
                let conversation = ConversationId(unhex(&conversation_id)?);
                if self.conv_record(&conversation).await.is_err() {
                    return Ok(());
                }
                self.receive_ephemeral(&conversation, &unb64(&message)?)
                    .await
            }
            Frame::Epoch { conversation_id } => {
                let conversation = ConversationId(unhex(&conversation_id)?);
                match self.conv_record(&conversation).await {
                    Ok((record, _)) => {
                        let fetched = {
                            let _receiving = self.inner.receive.lock().await;
                            self.fetch_epochs(&conversation, &record).await
                        };
                        match fetched {
                            Err(e) if super::deletion::is_gone(&e) => {
                                self.conversation_gone(&conversation).await
                            }
                            other => other,
                        }
                    }
                    Err(Error::UnknownConversation) => {
                        self.discover_conversations().await?;
                        self.sync_conversation(&conversation).await
                    }
                    Err(e) => Err(e),
                }
            }
            Frame::Link { team_id, seq, link } => {
                let team = TeamId(unhex(&team_id)?);
                if !self.inner.teams.lock().await.contains_key(&team) {
                    return Ok(());
                }
                // The next link is applied as pushed: a device removed by it can no longer
                // list the chain, but is told (and verifies) its own removal this way.
                if !self.apply_pushed_link(&team, seq, &unb64(&link)?).await? {
                    self.sync_team(&team).await?;
                }
                self.discover_conversations().await
            }
            // A notice, not a deletion: the signed deletion is fetched and verified first.
            Frame::ConversationDeleted { conversation_id } => {
                let conversation = ConversationId(unhex(&conversation_id)?);
                self.conversation_gone(&conversation).await
            }
            Frame::Unknown => Ok(()),
        }
    }

    /// Takes a pushed envelope if it is the next after the stored cursor; otherwise syncs the
    /// conversation over HTTP (a gap) or drops it (already processed).
    async fn pushed_envelope(
        &self,
        conversation: &ConversationId,
        cursor: u64,
        message: String,
    ) -> Result<()> {
        let _receiving = self.inner.receive.lock().await;
        let record = match self.conv_record(conversation).await {
            Ok((record, _)) => record,
            Err(Error::UnknownConversation) => {
                drop(_receiving);
                self.discover_conversations().await?;
                return self.sync_conversation(conversation).await;
            }
            Err(e) => return Err(e),
        };
        if cursor <= record.cursor {
            return Ok(());
        }
        if cursor != record.cursor.saturating_add(1) {
            return self.sync_conversation_locked(conversation).await;
        }
        let envelope = StoredEnvelope {
            cursor,
            message,
            received_at: self.now(),
        };
        self.receive_envelope(conversation, &record, &envelope)
            .await?;
        self.advance_cursor(conversation, cursor).await
    }
}

/// A push frame from its JSON text.
pub(super) fn parse_frame(text: &str) -> Result<Frame> {
    serde_json::from_str(text).map_err(|_| Error::BadResponse("push frame"))
}
