//! Backups of a whole client: every record, sealed with the crate's [`backup`](crate::backup)
//! format to a recovery key or a passphrase.
//!
//! Sender chains are never restored: the device may have sent more after the backup was made,
//! and resuming an older chain would reuse message keys. A restored client instead opens a new
//! epoch in each conversation before it sends again.

use serde::Deserialize;
use sotto_core::conversation::Instance;
use sotto_core::device::DeviceId;

use super::Client;
use super::api::{b64, unhex};
use super::bodies;
use super::records::{self, ConvRecord};
use crate::backup::{self, Backup, BackupEntry, OpenWith, SealTo};
use crate::rng::os_rng;
use crate::store::{EncryptedStore, Store};
use crate::transport::{Method, Transport};
use crate::{Error, Result};

#[derive(Deserialize)]
struct Uploaded {
    blob_id: String,
}

impl<S: Store, T: Transport> Client<S, T> {
    /// Seals every record of this client (device secrets, teams, conversations, history,
    /// outbox) into a backup blob ([`Backup::encode`]), to a recovery key or a passphrase.
    pub async fn export_backup(&self, to: SealTo<'_>) -> Result<Vec<u8>> {
        let namespaces = records::NAMESPACES
            .iter()
            .map(|n| records::ns(n))
            .collect::<Result<Vec<_>>>()?;
        let entries = backup::collect(&self.inner.store, &namespaces).await?;
        Ok(Backup::seal(&entries, to)?.encode())
    }

    /// Stores a backup blob at the relay, readable by this device and `readers` (typically the
    /// owner's recovery device). Returns the blob id (32 hex digits).
    pub async fn upload_backup(&self, blob: &[u8], readers: &[DeviceId]) -> Result<String> {
        let readers: Vec<String> = readers.iter().map(|d| hex::encode(d.0)).collect();
        let uploaded: Uploaded = self
            .call_json(
                Method::Post,
                "/v1/blobs",
                Some(bodies::encode(&bodies::Blob {
                    kind: "backup",
                    conversation_id: None,
                    readers: Some(&readers),
                    data: &b64(blob),
                })?),
            )
            .await?;
        let _: [u8; 16] = unhex(&uploaded.blob_id)?;
        Ok(uploaded.blob_id)
    }

    /// Opens a backup blob with `with` and restores it into `store`, which must hold no device,
    /// then opens the client on it. The restored installation gets a fresh instance, so its
    /// sender chains are never those of the original (still running, or restored elsewhere from
    /// the same backup). Every conversation opens a new epoch before this client sends in it
    /// again.
    pub async fn restore_backup(
        store: EncryptedStore<S>,
        transport: T,
        blob: &[u8],
        with: OpenWith<'_>,
    ) -> Result<Self> {
        if store.get(&records::account_id()?).await?.is_some() {
            return Err(Error::AlreadyRegistered);
        }
        let entries = Backup::decode(blob)?.open(with)?;
        let mut restored = Vec::with_capacity(entries.len());
        for entry in entries {
            let namespace = entry.id.namespace().as_str();
            if !records::NAMESPACES.contains(&namespace) {
                return Err(Error::Corrupt(
                    "a backup record outside the client's namespaces",
                ));
            }
            match namespace {
                records::SEND_CHAIN => {}
                records::ACCOUNT => {
                    let account = records::Account::decode(&entry.value)?;
                    let instance = Instance::random(&mut os_rng()?);
                    restored.push(BackupEntry::new(
                        entry.id.clone(),
                        &account.encode(&instance),
                    ));
                }
                records::CONV => {
                    let mut record = ConvRecord::decode(&entry.value)?;
                    record.needs_epoch = true;
                    restored.push(BackupEntry::new(entry.id.clone(), &record.encode()));
                }
                _ => restored.push(entry),
            }
        }
        if !restored
            .iter()
            .any(|e| e.id.namespace().as_str() == records::ACCOUNT)
        {
            return Err(Error::NotRegistered);
        }
        backup::restore(&store, &restored).await?;
        Client::open(store, transport).await
    }
}
