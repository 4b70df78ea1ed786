//! openraft type configuration of the metadata quorum: what a log entry carries and returns.

use std::io::Cursor;

use serde::{Deserialize, Serialize};

use crate::metadata::image::RejectReason;
use crate::metadata::records::MetadataBatch;

/// Raft node id: Kafka's `node.id` (non-negative i32) widened to openraft's u64.
pub type NodeId = u64;

/// The state machine's answer to one applied batch.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataResponse {
    /// `Some` when the batch did not fit the image it was applied to (e.g. the topic of a
    /// TopicRecord already exists): nothing of it was applied.
    pub rejected: Option<RejectReason>,
}

openraft::declare_raft_types!(
    /// Type configuration of the metadata quorum.
    pub TypeConfig:
        D = MetadataBatch,
        R = MetadataResponse,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        SnapshotData = Cursor<Vec<u8>>,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type Vote = openraft::Vote<NodeId>;
pub type StorageError = openraft::StorageError<NodeId>;
pub type StoredMembership = openraft::StoredMembership<NodeId, openraft::BasicNode>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, openraft::BasicNode>;
