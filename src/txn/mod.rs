//! Producer ids and, later, the transaction coordinator (KIP-98). For now: the broker's
//! producer id blocks, which InitProducerId hands out to idempotent producers.

pub mod producer_ids;

pub use producer_ids::ProducerIdManager;
