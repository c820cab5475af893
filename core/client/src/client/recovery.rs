//! A recovery kit in one call: a fresh recovery secret, a backup of this client sealed to it
//! and stored at the relay, and the words the person writes down.

use serde::Deserialize;
use sotto_core::recovery::RecoverySecret;
use zeroize::Zeroizing;

use super::Client;
use super::api::unb64;
use crate::backup::SealTo;
use crate::rng::os_rng;
use crate::store::Store;
use crate::transport::{Method, Transport};
use crate::{Error, Result};

#[derive(Deserialize)]
struct BlobOut {
    data: String,
}

/// What [`Client::export_recovery_kit`] gives back.
pub struct RecoveryKit {
    /// The recovery secret as 24 words: the only way to open the backup.
    pub words: Zeroizing<String>,
    /// The id of the backup blob at the relay (32 hex digits).
    pub blob_id: String,
}

impl core::fmt::Debug for RecoveryKit {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RecoveryKit")
            .field("words", &"<redacted>")
            .field("blob_id", &self.blob_id)
            .finish()
    }
}

impl<S: Store, T: Transport> Client<S, T> {
    /// Makes a new recovery secret, seals a backup of this client to it and uploads the backup
    /// (readable by this device). Returns the words and the blob id.
    pub async fn export_recovery_kit(&self) -> Result<RecoveryKit> {
        let secret = RecoverySecret::generate(&mut os_rng()?);
        let blob = self.export_backup(SealTo::RecoveryKey(&secret)).await?;
        let blob_id = self.upload_backup(&blob, &[]).await?;
        Ok(RecoveryKit {
            words: secret.to_words(),
            blob_id,
        })
    }

    /// Downloads a backup blob this device may read (its own, or one naming it as a reader).
    pub async fn fetch_backup(&self, blob_id: &str) -> Result<Vec<u8>> {
        if blob_id.len() != 32 || !blob_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::InvalidInput("blob id"));
        }
        let blob: BlobOut = self
            .call_json(Method::Get, &format!("/v1/blobs/{blob_id}"), None)
            .await?;
        unb64(&blob.data)
    }
}
