//! KRaft-style metadata: every cluster fact change is a record in a metadata log run by openraft
//! (KIP-500/KIP-631), applied by a state machine to an immutable [`MetadataImage`] that request
//! handlers read.
//!
//! - [`records`]: the log records and the batches proposed to the quorum.
//! - [`image`]: the immutable image and how a batch produces the next one.
//! - [`types`]: openraft type configuration.
//! - [`log_store`] / [`state_machine`]: durable raft log and state machine on files.
//! - [`rpc`] / [`network`]: what voters ask each other over the controller listener, and
//!   openraft's transport on it.
//! - [`controller`]: [`MetadataController`], the operations handlers call.
//! - [`broker_lifecycle`]: the broker's registration, heartbeats and controlled shutdown.
//! - [`cluster_control`] / [`replication_control`]: what the active controller decides about
//!   brokers (registration, heartbeats, fencing, controlled shutdown) and partitions
//!   (placement, leader election, ISR changes), as records computed from its image.

pub mod broker_lifecycle;
pub mod cluster_control;
pub mod controller;
mod files;
pub mod image;
pub mod log_store;
pub mod network;
pub mod records;
pub mod replication_control;
pub mod rpc;
pub mod state_machine;
pub mod types;

pub use controller::{ControllerConfig, CreateTopic, MetadataController};
pub use image::{MetadataImage, PartitionImage, TopicImage};
pub use records::{BrokerEndpoint, BrokerRegistration, ConfigResourceType, MetadataRecord};
