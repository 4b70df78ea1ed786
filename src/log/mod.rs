//! Durable partition logs (DESIGN.md "Storage"): segments with sparse offset and time indexes,
//! recovery of a torn tail at open, group-committed fsync; `LogManager` owns all partitions.
//!
//! Durability: an append is in the page cache (and readable up to the high watermark) when
//! `PartitionLog::append` returns. It is on disk once `PartitionLog::flush_to` covering its offsets
//! returns, which `append` awaits itself when `flush.messages` is reached. With Kafka's defaults
//! (`flush.messages`/`flush.ms` unset) acknowledged data survives a broker process crash but not
//! a power loss; `flush.messages=1` makes every acknowledged append survive power loss.
//!
//! Recovery: after a crash the active segment of each partition is scanned whole (CRC and
//! offsets) and cut at its first torn batch; earlier segments are checked from their last
//! index entry on. After a clean shutdown (`.kafka_cleanshutdown` in the log dir) the active
//! segment is loaded through its index files like the others.

pub mod cleaner;
pub mod disk;
pub mod index;
pub mod leader_epoch;
pub mod log_manager;
pub mod partition;
pub mod producer_state;
pub mod segment;
pub mod validator;

pub use disk::{DirEntry, Disk, DiskFile, FsDisk, SimDisk};
pub use log_manager::LogManager;
pub use partition::{AppendInfo, PartitionLog};

use crate::protocol::compression::{Codec, TargetCompression};

/// `message.timestamp.type`: whose timestamp records carry (KIP-32).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampType {
    /// The producer's timestamp is kept.
    #[default]
    CreateTime,
    /// The broker overwrites each batch's max timestamp with its append wall time.
    LogAppendTime,
}

/// Per-partition log settings; the broker fills it from `log.*` broker configs and topic
/// overrides. Defaults are Kafka's.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes`: roll the active segment before it would exceed this size.
    pub segment_bytes: u64,
    /// `segment.ms`: roll when the active segment's first batch is older than this.
    pub segment_ms: i64,
    /// `max.message.bytes`: largest record batch accepted, header included.
    pub max_message_bytes: usize,
    /// `index.interval.bytes`: bytes of batches between two sparse index entries.
    pub index_interval_bytes: u64,
    /// `segment.index.bytes`: size of an offset index (8-byte entries) before a roll.
    pub segment_index_bytes: u64,
    /// `flush.messages`: fsync once this many messages are unflushed; None = never (Kafka's
    /// default of Long.MAX_VALUE).
    pub flush_interval_messages: Option<u64>,
    /// `flush.ms`: fsync when the last one is older than this; None = never.
    pub flush_interval_ms: Option<i64>,
    /// `message.timestamp.type`.
    pub message_timestamp_type: TimestampType,
    /// `message.timestamp.before.max.ms`: how far in the past a CreateTime timestamp may be.
    pub message_timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`: how far in the future a CreateTime timestamp may be.
    pub message_timestamp_after_max_ms: i64,
    /// `retention.ms` (-1 = unlimited); applied by the retention pass, not by the log itself.
    pub retention_ms: i64,
    /// `retention.bytes` (-1 = unlimited).
    pub retention_bytes: i64,
    /// `producer.id.expiration.ms` (a broker config): idle producers' state is dropped after it.
    pub producer_id_expiration_ms: i64,
    /// `sluice.producer.ids.max.per.partition`: producer ids whose state one partition keeps;
    /// beyond it the one idle longest is forgotten.
    pub producer_ids_max: usize,
    /// `compression.type` as the codec the broker recompresses to (KIP-390 level included);
    /// None for `producer`, which keeps the producer's codec.
    pub compression: Option<TargetCompression>,
    /// `sluice.decompressed.batch.max.bytes`: the most bytes one batch may decompress to where
    /// a policy needs its records (a client must not make the broker allocate without bound).
    pub decompressed_batch_max_bytes: usize,
    /// `cleanup.policy` contains `delete`: retention.ms / retention.bytes apply.
    pub cleanup_delete: bool,
    /// `cleanup.policy` contains `compact`: the log cleaner keeps the latest record per key,
    /// and every produced record must have a key.
    pub cleanup_compact: bool,
    /// `delete.retention.ms`: how long a tombstone outlives the clean that first saw it.
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms`: records younger than this are not compacted.
    pub min_compaction_lag_ms: i64,
    /// `min.insync.replicas`: the ISR an acks=all append needs (checked by the replica layer).
    pub min_insync_replicas: usize,
    /// `max.compaction.lag.ms`: a dirty record older than this forces a clean.
    pub max_compaction_lag_ms: i64,
    /// `min.cleanable.dirty.ratio`: dirty share of the log above which it is cleaned.
    pub min_cleanable_dirty_ratio: f64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1_073_741_824,
            segment_ms: 604_800_000,
            max_message_bytes: 1_048_588,
            index_interval_bytes: 4096,
            segment_index_bytes: 10_485_760,
            flush_interval_messages: None,
            flush_interval_ms: None,
            message_timestamp_type: TimestampType::CreateTime,
            message_timestamp_before_max_ms: i64::MAX,
            message_timestamp_after_max_ms: 3_600_000,
            retention_ms: 604_800_000,
            retention_bytes: -1,
            producer_id_expiration_ms: 86_400_000,
            producer_ids_max: 10_000,
            compression: None,
            decompressed_batch_max_bytes: 104_857_600,
            cleanup_delete: true,
            cleanup_compact: false,
            delete_retention_ms: 86_400_000,
            min_compaction_lag_ms: 0,
            min_insync_replicas: 1,
            max_compaction_lag_ms: i64::MAX,
            min_cleanable_dirty_ratio: 0.5,
        }
    }
}

impl LogConfig {
    /// The log settings of a topic's effective config (topic overrides over broker defaults).
    /// Kafka's "never" for flush.messages/flush.ms is Long.MAX_VALUE; here it is None.
    pub fn from_effective(e: &crate::config::EffectiveTopicConfig) -> Self {
        let never_if_max = |v: i64| (v != i64::MAX && v >= 0).then_some(v);
        LogConfig {
            segment_bytes: e.segment_bytes,
            // Kafka rolls a compacted log by max.compaction.lag.ms too, so that no record stays
            // in the active segment (which is never cleaned) longer than that lag (KIP-354).
            segment_ms: if e.cleanup_policy.compact {
                e.segment_ms.min(e.max_compaction_lag_ms)
            } else {
                e.segment_ms
            },
            max_message_bytes: e.max_message_bytes,
            index_interval_bytes: e.index_interval_bytes,
            segment_index_bytes: e.segment_index_bytes,
            flush_interval_messages: never_if_max(e.flush_messages).map(|v| v as u64),
            flush_interval_ms: never_if_max(e.flush_ms),
            message_timestamp_type: match e.message_timestamp_type {
                crate::config::TimestampType::CreateTime => TimestampType::CreateTime,
                crate::config::TimestampType::LogAppendTime => TimestampType::LogAppendTime,
            },
            message_timestamp_before_max_ms: e.message_timestamp_before_max_ms,
            message_timestamp_after_max_ms: e.message_timestamp_after_max_ms,
            retention_ms: e.retention_ms,
            retention_bytes: e.retention_bytes,
            compression: target_compression(e),
            cleanup_delete: e.cleanup_policy.delete,
            cleanup_compact: e.cleanup_policy.compact,
            delete_retention_ms: e.delete_retention_ms,
            min_compaction_lag_ms: e.min_compaction_lag_ms,
            max_compaction_lag_ms: e.max_compaction_lag_ms,
            min_cleanable_dirty_ratio: e.min_cleanable_dirty_ratio,
            min_insync_replicas: usize::try_from(e.min_insync_replicas.max(1)).unwrap_or(1),
            ..LogConfig::default()
        }
    }
}

/// `compression.type` as the codec to recompress to, with its level; None for `producer`.
fn target_compression(e: &crate::config::EffectiveTopicConfig) -> Option<TargetCompression> {
    use crate::config::BrokerCompressionType as B;
    let (codec, level) = match e.compression_type {
        B::Producer => return None,
        B::Uncompressed => (Codec::None, 0),
        B::Gzip => (Codec::Gzip, e.compression_gzip_level),
        B::Snappy => (Codec::Snappy, 0),
        B::Lz4 => (Codec::Lz4, e.compression_lz4_level),
        B::Zstd => (Codec::Zstd, e.compression_zstd_level),
    };
    Some(TargetCompression { codec, level })
}

/// File name stem of a segment: its base offset zero padded to 20 digits, as Kafka names them.
pub fn segment_file_stem(base_offset: i64) -> String {
    format!("{base_offset:020}")
}
