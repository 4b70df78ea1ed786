//! Sluice: a message broker that speaks the Apache Kafka wire protocol.
//!
//! Map of the crate (request flow top to bottom):
//! - [`config`]: `server.properties` with Kafka's names and defaults, overrides, env vars.
//! - [`server`]: listener -> connection (frames in, responses out in request order)
//!   -> [`server::dispatch`] (the one `match` over `ApiKey`, and the registry ApiVersions
//!   derives from) -> `server::handlers::<api>`.
//! - [`protocol`]: frames (size-checked before allocation) and record-batch validation.
//! - [`log`]: one partition's durable segmented log; `LogManager` owns all partitions.
//! - [`replication`]: hosted partitions as leader or follower, follower fetchers, acks.
//! - [`metadata`]: KRaft-style metadata log on openraft applied to an immutable image.
//! - [`format`]: `sluice format` (kafka-storage.sh) and the voter set it records (KIP-853).
//! - [`broker`]: the shared state handlers read (config, metadata, logs, clock, metrics).
//! - [`clock`], [`metrics`], [`error`]: seams used everywhere.

pub mod broker;
pub mod clock;
pub mod config;
pub mod error;
pub mod format;
pub mod group;
pub mod log;
pub mod metadata;
pub mod metrics;
pub mod net;
pub mod protocol;
pub mod replication;
pub mod server;
pub mod topic_partition;
pub mod txn;
