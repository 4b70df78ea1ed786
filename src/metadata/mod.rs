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

pub mod controller;
mod files;
pub mod image;
pub mod log_store;
pub mod network;
pub mod records;
pub mod rpc;
pub mod state_machine;
pub mod types;

pub use controller::{ControllerConfig, CreateTopic, MetadataController};
pub use image::{MetadataImage, PartitionImage, TopicImage};
pub use records::{BrokerEndpoint, BrokerRegistration, ConfigResourceType, MetadataRecord};
