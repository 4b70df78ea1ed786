//! State machine of the metadata quorum (openraft `RaftStateMachine` + snapshot builder): applies
//! committed batches to the [`MetadataImage`] and publishes each new image through a watch.
//!
//! The image lives in memory; durability comes from the raft log plus snapshots. A snapshot is
//! the serialized image (`snapshot.json`, fsynced), so a restart loads it and openraft re-applies
//! the log after it.

// openraft's traits fix the error type (StorageError, ~224 bytes); its examples allow this too.
#![allow(clippy::result_large_err)]

use std::io::{self, Cursor};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder, StorageIOError};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::metadata::files;
use crate::metadata::image::{ImageSnapshot, MetadataImage};
use crate::metadata::types::{
    Entry, LogId, MetadataResponse, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};

const SNAPSHOT_FILE: &str = "snapshot.json";

/// The published image; the state machine is its only writer apart from `controller_id`.
pub type ImageSender = Arc<watch::Sender<Arc<MetadataImage>>>;

/// `snapshot.json`: snapshot meta plus the serialized image (the snapshot data).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    data: ImageSnapshot,
}

/// The current snapshot, shared by the state machine and its snapshot builders.
type SnapshotSlot = Arc<Mutex<Option<StoredSnapshot>>>;

fn lock_slot(slot: &SnapshotSlot) -> MutexGuard<'_, Option<StoredSnapshot>> {
    slot.lock().unwrap_or_else(|e| e.into_inner())
}

/// Persists `snap` as the current snapshot (fsynced) and then makes it current in memory.
fn save_snapshot(
    dir: &Path,
    slot: &SnapshotSlot,
    snap: StoredSnapshot,
) -> Result<(), StorageError> {
    let mut current = lock_slot(slot);
    files::write_json(dir, SNAPSHOT_FILE, &snap, true).map_err(|e| {
        StorageError::from(StorageIOError::write_snapshot(
            Some(snap.meta.signature()),
            &e,
        ))
    })?;
    *current = Some(snap);
    Ok(())
}

fn to_snapshot(s: &StoredSnapshot) -> Result<Snapshot<TypeConfig>, StorageError> {
    let bytes = serde_json::to_vec(&s.data)
        .map_err(|e| StorageIOError::read_snapshot(Some(s.meta.signature()), &e))?;
    Ok(Snapshot {
        meta: s.meta.clone(),
        snapshot: Box::new(Cursor::new(bytes)),
    })
}

/// The metadata state machine, owned by the raft core.
pub struct StateMachineStore {
    dir: PathBuf,
    cluster_id: String,
    image_tx: ImageSender,
    last_applied: Option<LogId>,
    last_membership: StoredMembership,
    snapshot: SnapshotSlot,
    snapshot_count: u64,
}

impl StateMachineStore {
    /// Opens the state machine in `dir`: the image of the last snapshot, or an empty image.
    pub fn open(dir: &Path, cluster_id: &str) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let stored: Option<StoredSnapshot> = files::read_json(dir, SNAPSHOT_FILE)?;
        let (image, last_applied, last_membership) = match &stored {
            Some(s) => {
                let mut image = MetadataImage::from_snapshot(s.data.clone());
                image.cluster_id = cluster_id.to_string();
                (image, s.meta.last_log_id, s.meta.last_membership.clone())
            }
            None => (
                MetadataImage::empty(cluster_id),
                None,
                StoredMembership::default(),
            ),
        };
        let (image_tx, _) = watch::channel(Arc::new(image));
        Ok(Self {
            dir: dir.to_path_buf(),
            cluster_id: cluster_id.to_string(),
            image_tx: Arc::new(image_tx),
            last_applied,
            last_membership,
            snapshot: Arc::new(Mutex::new(stored)),
            snapshot_count: 0,
        })
    }

    /// The watch the images are published on.
    pub fn image_sender(&self) -> ImageSender {
        self.image_tx.clone()
    }

    /// Publishes `next`, keeping the `controller_id` the controller maintains from raft metrics.
    fn publish(&self, mut next: Arc<MetadataImage>) {
        self.image_tx.send_modify(|current| {
            if next.controller_id != current.controller_id {
                Arc::make_mut(&mut next).controller_id = current.controller_id;
            }
            *current = next;
        });
    }
}

/// Builds a snapshot from the image captured when openraft asked for the builder.
pub struct SnapshotBuilder {
    dir: PathBuf,
    image: Arc<MetadataImage>,
    last_applied: Option<LogId>,
    last_membership: StoredMembership,
    snapshot: SnapshotSlot,
    snapshot_id: String,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let stored = StoredSnapshot {
            meta: SnapshotMeta {
                last_log_id: self.last_applied,
                last_membership: self.last_membership.clone(),
                snapshot_id: self.snapshot_id.clone(),
            },
            data: self.image.to_snapshot(),
        };
        let snapshot = to_snapshot(&stored)?;
        save_snapshot(&self.dir, &self.snapshot, stored)?;
        Ok(snapshot)
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.last_applied, self.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<MetadataResponse>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut image = self.image_tx.borrow().clone();
        let mut responses = Vec::new();
        for entry in entries {
            let mut response = MetadataResponse::default();
            // Set before the records apply: a registration's broker epoch is this offset.
            let offset = i64::try_from(entry.log_id.index).unwrap_or(i64::MAX);
            if image.last_applied_offset != offset {
                Arc::make_mut(&mut image).last_applied_offset = offset;
            }
            match entry.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(batch) => match image.try_apply(&batch.records) {
                    Ok(next) => image = Arc::new(next),
                    Err(reason) => {
                        tracing::debug!(%batch, %reason, "metadata batch rejected");
                        response.rejected = Some(reason);
                    }
                },
                EntryPayload::Membership(membership) => {
                    self.last_membership = StoredMembership::new(Some(entry.log_id), membership);
                }
            }
            self.last_applied = Some(entry.log_id);
            responses.push(response);
        }
        self.publish(image);
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        self.snapshot_count += 1;
        let snapshot_id = match self.last_applied {
            Some(l) => format!("{}-{}-{}", l.leader_id, l.index, self.snapshot_count),
            None => format!("--{}", self.snapshot_count),
        };
        SnapshotBuilder {
            dir: self.dir.clone(),
            image: self.image_tx.borrow().clone(),
            last_applied: self.last_applied,
            last_membership: self.last_membership.clone(),
            snapshot: self.snapshot.clone(),
            snapshot_id,
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data: ImageSnapshot = serde_json::from_slice(snapshot.get_ref())
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data,
        };
        save_snapshot(&self.dir, &self.snapshot, stored.clone())?;
        let mut image = MetadataImage::from_snapshot(stored.data);
        image.cluster_id = self.cluster_id.clone();
        self.last_applied = meta.last_log_id;
        self.last_membership = meta.last_membership.clone();
        self.publish(Arc::new(image));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let current = lock_slot(&self.snapshot).clone();
        current.as_ref().map(to_snapshot).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::log_store::LogStore;
    use crate::metadata::records::{MetadataBatch, MetadataRecord};
    use openraft::testing::{log_id, StoreBuilder, Suite};
    use openraft::{ErrorSubject, ErrorVerb};
    use uuid::Uuid;

    fn open_error(e: io::Error) -> StorageError {
        StorageIOError::new(
            ErrorSubject::Store,
            ErrorVerb::Read,
            openraft::AnyError::new(&e),
        )
        .into()
    }

    struct Builder;

    impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, tempfile::TempDir> for Builder {
        async fn build(
            &self,
        ) -> Result<(tempfile::TempDir, LogStore, StateMachineStore), StorageError> {
            let dir = tempfile::tempdir().map_err(open_error)?;
            let log = LogStore::open(dir.path()).map_err(open_error)?;
            let sm = StateMachineStore::open(dir.path(), "cluster").map_err(open_error)?;
            Ok((dir, log, sm))
        }
    }

    #[test]
    fn openraft_storage_suite_passes() {
        Suite::test_all(Builder).expect("openraft storage suite");
    }

    fn normal(index: u64, records: Vec<MetadataRecord>) -> Entry {
        Entry {
            log_id: log_id(1, 1, index),
            payload: EntryPayload::Normal(MetadataBatch::new(records)),
        }
    }

    fn topic(name: &str, id: u128) -> MetadataRecord {
        MetadataRecord::Topic {
            name: name.into(),
            topic_id: Uuid::from_u128(id),
        }
    }

    #[tokio::test]
    async fn apply_publishes_image_and_rejects_conflicting_batch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut sm = StateMachineStore::open(dir.path(), "c").expect("open");
        let mut rx = sm.image_sender().subscribe();
        let responses = sm
            .apply([
                normal(1, vec![topic("a", 1)]),
                normal(2, vec![topic("a", 2)]),
            ])
            .await
            .expect("apply");
        assert_eq!(responses[0].rejected, None);
        assert!(responses[1].rejected.is_some());
        assert!(rx.has_changed().expect("sender alive"));
        let image = rx.borrow_and_update().clone();
        assert_eq!(
            image.topic("a").map(|t| t.topic_id),
            Some(Uuid::from_u128(1))
        );
        assert_eq!(image.last_applied_offset, 2);
    }

    #[tokio::test]
    async fn built_snapshot_is_loaded_on_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut sm = StateMachineStore::open(dir.path(), "c").expect("open");
            sm.apply([normal(1, vec![topic("a", 1)])])
                .await
                .expect("apply");
            let mut builder = sm.get_snapshot_builder().await;
            builder.build_snapshot().await.expect("snapshot");
        }
        let mut sm = StateMachineStore::open(dir.path(), "c").expect("reopen");
        let (applied, _) = sm.applied_state().await.expect("state");
        assert_eq!(applied, Some(log_id(1, 1, 1)));
        let image = sm.image_sender().borrow().clone();
        assert!(image.topic("a").is_some());
        assert!(sm.get_current_snapshot().await.expect("current").is_some());
    }
}
