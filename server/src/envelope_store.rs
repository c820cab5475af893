//! Stores envelopes with group commit.
//!
//! An acknowledged envelope must be durable, so each one costs a commit, and on SQLite
//! (`synchronous=FULL`) every commit waits for the disk. One writer task takes the envelopes
//! handlers queue and stores all those waiting in one write transaction: under load many
//! envelopes share one disk flush; alone, an envelope is written at once, as before. Each handler
//! gets its cursor only after the commit that stored it, so the acknowledgement still means
//! durable. Cursors stay gap-free and in commit order: each comes from the conversation's counter,
//! advanced in the same transaction.

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::db::Db;
use crate::error::{ApiError, ApiResult};

/// Envelopes stored in one transaction at most.
const MAX_BATCH: usize = 256;
/// Envelopes waiting for the writer before handlers wait to queue.
const QUEUE: usize = 4096;

/// One envelope to store and where to send its outcome.
struct Pending {
    conversation_ref: i64,
    message: Vec<u8>,
    received_at: i64,
    /// The cursor; `None` if the conversation no longer exists; `Err` if the batch failed.
    reply: oneshot::Sender<Result<Option<i64>, ()>>,
}

/// The handlers' side of the writer task.
#[derive(Clone)]
pub struct EnvelopeStore {
    queue: mpsc::Sender<Pending>,
}

impl EnvelopeStore {
    /// Starts the writer task on `db`. It ends when every [`EnvelopeStore`] clone is dropped.
    pub fn start(db: Db) -> (EnvelopeStore, JoinHandle<()>) {
        let (queue, pending) = mpsc::channel(QUEUE);
        (
            EnvelopeStore { queue },
            tokio::spawn(write_batches(db, pending)),
        )
    }

    /// Stores an envelope under the conversation's next cursor and returns the cursor once it
    /// is committed; `None` if the conversation was deleted meanwhile.
    pub async fn store(
        &self,
        conversation_ref: i64,
        message: Vec<u8>,
        received_at: i64,
    ) -> ApiResult<Option<i64>> {
        let (reply, outcome) = oneshot::channel();
        self.queue
            .send(Pending {
                conversation_ref,
                message,
                received_at,
                reply,
            })
            .await
            .map_err(|_| ApiError::internal())?;
        outcome
            .await
            .map_err(|_| ApiError::internal())?
            .map_err(|()| ApiError::internal())
    }
}

async fn write_batches(db: Db, mut pending: mpsc::Receiver<Pending>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while pending.recv_many(&mut batch, MAX_BATCH).await > 0 {
        match write(&db, &batch).await {
            Ok(cursors) => {
                for (p, cursor) in batch.drain(..).zip(cursors) {
                    // A handler that gave up (its client went away) no longer listens.
                    let _ = p.reply.send(Ok(cursor));
                }
            }
            Err(e) => {
                // Logs the error's kind only (see `ApiError::from`); nothing was acknowledged.
                let _ = ApiError::from(e);
                for p in batch.drain(..) {
                    let _ = p.reply.send(Err(()));
                }
            }
        }
    }
}

/// Stores a batch in one write transaction; the cursor of each (or `None`).
async fn write(db: &Db, batch: &[Pending]) -> Result<Vec<Option<i64>>, sqlx::Error> {
    use sqlx::Row;
    let mut tx = db.begin_write().await?;
    let mut cursors = Vec::with_capacity(batch.len());
    for p in batch {
        let cursor: Option<i64> = sqlx::query(
            "UPDATE conversations SET last_cursor = last_cursor + 1 WHERE id = $1 RETURNING last_cursor",
        )
        .bind(p.conversation_ref)
        .fetch_optional(&mut *tx)
        .await?
        .map(|row| row.try_get("last_cursor"))
        .transpose()?;
        if let Some(cursor) = cursor {
            sqlx::query(
                "INSERT INTO envelopes (conversation_ref, cursor, message, received_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(p.conversation_ref)
            .bind(cursor)
            .bind(p.message.as_slice())
            .bind(p.received_at)
            .execute(&mut *tx)
            .await?;
        }
        cursors.push(cursor);
    }
    tx.commit().await?;
    Ok(cursors)
}
