//! Wire format: length-prefixed frames and Kafka v2 record batches.

pub mod compression;
pub mod frame;
pub mod record_batch;
pub mod splice;
