//! Topic-level configs (Kafka 4.0 `#topicconfigs`): names, validators, the broker key each one
//! falls back to (Kafka's `ServerTopicConfigSynonyms`), and the typed values the log uses.
//!
//! CreateTopics / AlterConfigs / IncrementalAlterConfigs validate through
//! [`validate_topic_config`] and [`validate_topic_configs`]; DescribeConfigs and the log resolve
//! effective values through `Config::topic_config_default` and `Config::effective_topic_config`.

use indexmap::IndexMap;

use super::value::{
    check_value, int_at_least, long_at_least, parse_list, ValueKind, INT_ANY, LONG_ANY,
};
use crate::error::Error;

/// `message.timestamp.type` / `log.message.timestamp.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

impl TimestampType {
    pub fn name(self) -> &'static str {
        match self {
            TimestampType::CreateTime => "CreateTime",
            TimestampType::LogAppendTime => "LogAppendTime",
        }
    }

    pub fn from_name(s: &str) -> Option<TimestampType> {
        match s.trim() {
            "CreateTime" => Some(TimestampType::CreateTime),
            "LogAppendTime" => Some(TimestampType::LogAppendTime),
            _ => None,
        }
    }
}

/// `cleanup.policy`: a list of `delete` and/or `compact` (both may be set; neither is allowed
/// by Kafka and means segments are only ever removed by DeleteRecords).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupPolicy {
    pub delete: bool,
    pub compact: bool,
}

impl CleanupPolicy {
    pub const DELETE: CleanupPolicy = CleanupPolicy {
        delete: true,
        compact: false,
    };

    /// Parses a validated list value.
    pub fn parse(value: &str) -> Option<CleanupPolicy> {
        let mut p = CleanupPolicy {
            delete: false,
            compact: false,
        };
        for item in parse_list(value) {
            match item.as_str() {
                "delete" => p.delete = true,
                "compact" => p.compact = true,
                _ => return None,
            }
        }
        Some(p)
    }

    /// Kafka's list form, e.g. `compact,delete`.
    pub fn to_config_string(self) -> String {
        match (self.compact, self.delete) {
            (true, true) => "compact,delete".to_string(),
            (true, false) => "compact".to_string(),
            (false, true) => "delete".to_string(),
            (false, false) => String::new(),
        }
    }
}

/// `compression.type` at broker/topic level (Kafka's `BrokerCompressionType`): `producer` keeps
/// the batch as the producer compressed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerCompressionType {
    Producer,
    Uncompressed,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl BrokerCompressionType {
    pub const NAMES: &'static [&'static str] =
        &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];

    pub fn name(self) -> &'static str {
        match self {
            BrokerCompressionType::Producer => "producer",
            BrokerCompressionType::Uncompressed => "uncompressed",
            BrokerCompressionType::Gzip => "gzip",
            BrokerCompressionType::Snappy => "snappy",
            BrokerCompressionType::Lz4 => "lz4",
            BrokerCompressionType::Zstd => "zstd",
        }
    }

    pub fn from_name(s: &str) -> Option<BrokerCompressionType> {
        match s.trim() {
            "producer" => Some(BrokerCompressionType::Producer),
            "uncompressed" => Some(BrokerCompressionType::Uncompressed),
            "gzip" => Some(BrokerCompressionType::Gzip),
            "snappy" => Some(BrokerCompressionType::Snappy),
            "lz4" => Some(BrokerCompressionType::Lz4),
            "zstd" => Some(BrokerCompressionType::Zstd),
            _ => None,
        }
    }
}

/// How a topic config value is checked beyond [`ValueKind`].
#[derive(Debug, Clone, Copy, PartialEq)]
enum TopicKind {
    Plain(ValueKind),
    /// `compression.gzip.level`: 1..=9 or -1.
    GzipLevel,
    /// `*.replication.throttled.replicas`: `*` or `partition:broker,...`.
    ThrottledReplicas,
    /// `remote.storage.enable`: boolean, and `true` needs tiered storage, which Sluice lacks.
    RemoteStorageEnable,
}

/// Every Kafka 4.0 topic config, its check, and its Kafka default (used when no broker key
/// supplies one).
const TOPIC_CONFIGS: &[(&str, TopicKind, &str)] = &[
    (
        "cleanup.policy",
        TopicKind::Plain(ValueKind::ListOf(&["compact", "delete"])),
        "delete",
    ),
    ("compression.gzip.level", TopicKind::GzipLevel, "-1"),
    (
        "compression.lz4.level",
        TopicKind::Plain(ValueKind::Int { min: 1, max: 17 }),
        "9",
    ),
    (
        "compression.type",
        TopicKind::Plain(ValueKind::OneOf(BrokerCompressionType::NAMES)),
        "producer",
    ),
    (
        "compression.zstd.level",
        TopicKind::Plain(ValueKind::Int {
            min: -131072,
            max: 22,
        }),
        "3",
    ),
    (
        "delete.retention.ms",
        TopicKind::Plain(long_at_least(0)),
        "86400000",
    ),
    (
        "file.delete.delay.ms",
        TopicKind::Plain(long_at_least(0)),
        "60000",
    ),
    (
        "flush.messages",
        TopicKind::Plain(long_at_least(1)),
        "9223372036854775807",
    ),
    (
        "flush.ms",
        TopicKind::Plain(long_at_least(0)),
        "9223372036854775807",
    ),
    (
        "follower.replication.throttled.replicas",
        TopicKind::ThrottledReplicas,
        "",
    ),
    (
        "index.interval.bytes",
        TopicKind::Plain(int_at_least(0)),
        "4096",
    ),
    (
        "leader.replication.throttled.replicas",
        TopicKind::ThrottledReplicas,
        "",
    ),
    (
        "local.retention.bytes",
        TopicKind::Plain(long_at_least(-2)),
        "-2",
    ),
    (
        "local.retention.ms",
        TopicKind::Plain(long_at_least(-2)),
        "-2",
    ),
    (
        "max.compaction.lag.ms",
        TopicKind::Plain(long_at_least(1)),
        "9223372036854775807",
    ),
    (
        "max.message.bytes",
        TopicKind::Plain(int_at_least(0)),
        "1048588",
    ),
    (
        "message.timestamp.after.max.ms",
        TopicKind::Plain(long_at_least(0)),
        "3600000",
    ),
    (
        "message.timestamp.before.max.ms",
        TopicKind::Plain(long_at_least(0)),
        "9223372036854775807",
    ),
    (
        "message.timestamp.type",
        TopicKind::Plain(ValueKind::OneOf(&["CreateTime", "LogAppendTime"])),
        "CreateTime",
    ),
    (
        "min.cleanable.dirty.ratio",
        TopicKind::Plain(ValueKind::Double { min: 0.0, max: 1.0 }),
        "0.5",
    ),
    (
        "min.compaction.lag.ms",
        TopicKind::Plain(long_at_least(0)),
        "0",
    ),
    (
        "min.insync.replicas",
        TopicKind::Plain(int_at_least(1)),
        "1",
    ),
    ("preallocate", TopicKind::Plain(ValueKind::Bool), "false"),
    (
        "remote.log.copy.disable",
        TopicKind::Plain(ValueKind::Bool),
        "false",
    ),
    (
        "remote.log.delete.on.disable",
        TopicKind::Plain(ValueKind::Bool),
        "false",
    ),
    (
        "remote.storage.enable",
        TopicKind::RemoteStorageEnable,
        "false",
    ),
    ("retention.bytes", TopicKind::Plain(LONG_ANY), "-1"),
    (
        "retention.ms",
        TopicKind::Plain(long_at_least(-1)),
        "604800000",
    ),
    (
        "segment.bytes",
        TopicKind::Plain(int_at_least(14)),
        "1073741824",
    ),
    (
        "segment.index.bytes",
        TopicKind::Plain(int_at_least(4)),
        "10485760",
    ),
    ("segment.jitter.ms", TopicKind::Plain(long_at_least(0)), "0"),
    (
        "segment.ms",
        TopicKind::Plain(long_at_least(1)),
        "604800000",
    ),
    (
        "unclean.leader.election.enable",
        TopicKind::Plain(ValueKind::Bool),
        "false",
    ),
];

/// All Kafka 4.0 topic config names, in the reference's (alphabetical) order.
pub const TOPIC_CONFIG_NAMES: &[&str] = &[
    "cleanup.policy",
    "compression.gzip.level",
    "compression.lz4.level",
    "compression.type",
    "compression.zstd.level",
    "delete.retention.ms",
    "file.delete.delay.ms",
    "flush.messages",
    "flush.ms",
    "follower.replication.throttled.replicas",
    "index.interval.bytes",
    "leader.replication.throttled.replicas",
    "local.retention.bytes",
    "local.retention.ms",
    "max.compaction.lag.ms",
    "max.message.bytes",
    "message.timestamp.after.max.ms",
    "message.timestamp.before.max.ms",
    "message.timestamp.type",
    "min.cleanable.dirty.ratio",
    "min.compaction.lag.ms",
    "min.insync.replicas",
    "preallocate",
    "remote.log.copy.disable",
    "remote.log.delete.on.disable",
    "remote.storage.enable",
    "retention.bytes",
    "retention.ms",
    "segment.bytes",
    "segment.index.bytes",
    "segment.jitter.ms",
    "segment.ms",
    "unclean.leader.election.enable",
];

/// [`TOPIC_CONFIG_NAMES`] as an iterator.
pub fn topic_config_names() -> impl Iterator<Item = &'static str> {
    TOPIC_CONFIG_NAMES.iter().copied()
}

/// True when `name` is a Kafka 4.0 topic config.
pub fn is_topic_config(name: &str) -> bool {
    TOPIC_CONFIGS.iter().any(|(n, _, _)| *n == name)
}

/// Kafka's own default for a topic config (before any broker setting), e.g. `"604800000"`.
pub fn kafka_topic_default(name: &str) -> Option<&'static str> {
    TOPIC_CONFIGS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, _, d)| *d)
}

/// Kafka's `ConfigDef.Type` name of a topic config (`LONG`, `LIST`, ...), for DescribeConfigs.
pub(super) fn topic_config_type(name: &str) -> Option<&'static str> {
    let kind = TOPIC_CONFIGS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, k, _)| *k)?;
    Some(match kind {
        TopicKind::Plain(ValueKind::Int { .. }) | TopicKind::GzipLevel => "INT",
        TopicKind::Plain(ValueKind::Long { .. }) => "LONG",
        TopicKind::Plain(ValueKind::Double { .. }) => "DOUBLE",
        TopicKind::Plain(ValueKind::Bool) | TopicKind::RemoteStorageEnable => "BOOLEAN",
        TopicKind::Plain(ValueKind::OneOf(_)) => "STRING",
        TopicKind::Plain(ValueKind::ListOf(_)) | TopicKind::ThrottledReplicas => "LIST",
    })
}

/// The broker keys that supply a topic config's default, most specific first (Kafka's
/// `ServerTopicConfigSynonyms`); empty for topic-only configs.
pub fn topic_config_synonyms(name: &str) -> &'static [&'static str] {
    match name {
        "segment.bytes" => &["log.segment.bytes"],
        "segment.ms" => &["log.roll.ms", "log.roll.hours"],
        "segment.jitter.ms" => &["log.roll.jitter.ms", "log.roll.jitter.hours"],
        "segment.index.bytes" => &["log.index.size.max.bytes"],
        "flush.messages" => &["log.flush.interval.messages"],
        "flush.ms" => &["log.flush.interval.ms", "log.flush.scheduler.interval.ms"],
        "retention.bytes" => &["log.retention.bytes"],
        "retention.ms" => &[
            "log.retention.ms",
            "log.retention.minutes",
            "log.retention.hours",
        ],
        "max.message.bytes" => &["message.max.bytes"],
        "index.interval.bytes" => &["log.index.interval.bytes"],
        "delete.retention.ms" => &["log.cleaner.delete.retention.ms"],
        "min.compaction.lag.ms" => &["log.cleaner.min.compaction.lag.ms"],
        "max.compaction.lag.ms" => &["log.cleaner.max.compaction.lag.ms"],
        "file.delete.delay.ms" => &["log.segment.delete.delay.ms"],
        "min.cleanable.dirty.ratio" => &["log.cleaner.min.cleanable.ratio"],
        "cleanup.policy" => &["log.cleanup.policy"],
        "unclean.leader.election.enable" => &["unclean.leader.election.enable"],
        "min.insync.replicas" => &["min.insync.replicas"],
        "compression.type" => &["compression.type"],
        "compression.gzip.level" => &["compression.gzip.level"],
        "compression.lz4.level" => &["compression.lz4.level"],
        "compression.zstd.level" => &["compression.zstd.level"],
        "preallocate" => &["log.preallocate"],
        "message.timestamp.type" => &["log.message.timestamp.type"],
        "message.timestamp.before.max.ms" => &["log.message.timestamp.before.max.ms"],
        "message.timestamp.after.max.ms" => &["log.message.timestamp.after.max.ms"],
        "local.retention.ms" => &["log.local.retention.ms"],
        "local.retention.bytes" => &["log.local.retention.bytes"],
        _ => &[],
    }
}

/// The broker key whose value is a topic config's default (e.g. `segment.bytes` <-
/// `log.segment.bytes`); `None` for unknown names and topic-only configs.
pub fn topic_config_synonym(name: &str) -> Option<&'static str> {
    topic_config_synonyms(name).first().copied()
}

fn invalid_value(name: &str, value: &str, reason: &str) -> Error {
    Error::InvalidConfig(format!(
        "Invalid value {value} for configuration {name}: {reason}"
    ))
}

fn check_throttled_replicas(value: &str) -> Result<(), String> {
    let items = parse_list(value);
    if items.len() == 1 && items[0] == "*" {
        return Ok(());
    }
    let well_formed = items.iter().all(|item| {
        item.split_once(':').is_some_and(|(p, b)| {
            p.trim().parse::<i32>().is_ok() && b.trim().parse::<i32>().is_ok()
        })
    });
    if well_formed {
        Ok(())
    } else {
        Err(
            "must be the literal '*' or a list of replicas in the following format: \
             [partitionId]:[brokerId],[partitionId]:[brokerId],..."
                .to_string(),
        )
    }
}

/// Validates one topic config: unknown name or bad value is `Error::InvalidConfig` with Kafka's
/// message (`Unknown topic config name: x`, `Invalid value v for configuration x: reason`).
pub fn validate_topic_config(name: &str, value: &str) -> Result<(), Error> {
    let kind = TOPIC_CONFIGS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, k, _)| *k)
        .ok_or_else(|| Error::InvalidConfig(format!("Unknown topic config name: {name}")))?;
    let result = match kind {
        TopicKind::Plain(kind) => check_value(kind, value),
        TopicKind::GzipLevel => check_value(INT_ANY, value).and_then(|_| {
            let level: i32 = value.trim().parse().unwrap_or(0);
            if level == -1 || (1..=9).contains(&level) {
                Ok(())
            } else {
                Err("Value must be between 1 and 9, or -1".to_string())
            }
        }),
        TopicKind::ThrottledReplicas => check_throttled_replicas(value),
        TopicKind::RemoteStorageEnable => check_value(ValueKind::Bool, value).and_then(|_| {
            if value.trim().eq_ignore_ascii_case("true") {
                Err("Tiered Storage functionality is disabled in the broker. \
                     Topic cannot be configured with remote log storage."
                    .to_string())
            } else {
                Ok(())
            }
        }),
    };
    result.map_err(|reason| invalid_value(name, value, &reason))
}

/// Validates a whole topic config set: each entry, then Kafka's cross-field rule
/// (`LogConfig.validateValues`: min.compaction.lag.ms must not exceed max.compaction.lag.ms).
pub fn validate_topic_configs(configs: &IndexMap<String, String>) -> Result<(), Error> {
    for (name, value) in configs {
        validate_topic_config(name, value)?;
    }
    let lag = |name: &str, default: i64| {
        configs
            .get(name)
            .and_then(|v| v.trim().parse::<i64>().ok())
            .unwrap_or(default)
    };
    let min_lag = lag("min.compaction.lag.ms", 0);
    let max_lag = lag("max.compaction.lag.ms", i64::MAX);
    if min_lag > max_lag {
        return Err(Error::InvalidConfig(format!(
            "conflict topic config setting min.compaction.lag.ms ({min_lag}) > \
             max.compaction.lag.ms ({max_lag})"
        )));
    }
    Ok(())
}

/// The typed values the log and produce path need for one topic, each resolved from the topic's
/// own config or else the broker default (see `Config::effective_topic_config`).
#[derive(Debug, Clone, PartialEq)]
pub struct EffectiveTopicConfig {
    pub segment_bytes: u64,
    pub segment_ms: i64,
    pub segment_jitter_ms: i64,
    pub segment_index_bytes: u64,
    pub index_interval_bytes: u64,
    /// Largest record batch (header included).
    pub max_message_bytes: usize,
    /// fsync after this many messages (`i64::MAX`: never by count).
    pub flush_messages: i64,
    /// fsync when the oldest unflushed message is this old (`i64::MAX`: never by time).
    pub flush_ms: i64,
    /// -1: no time limit.
    pub retention_ms: i64,
    /// -1: no size limit.
    pub retention_bytes: i64,
    pub message_timestamp_type: TimestampType,
    pub message_timestamp_before_max_ms: i64,
    pub message_timestamp_after_max_ms: i64,
    pub cleanup_policy: CleanupPolicy,
    pub compression_type: BrokerCompressionType,
    pub min_insync_replicas: i32,
    pub unclean_leader_election_enable: bool,
    pub delete_retention_ms: i64,
    pub min_compaction_lag_ms: i64,
    pub max_compaction_lag_ms: i64,
    pub min_cleanable_dirty_ratio: f64,
    pub file_delete_delay_ms: i64,
    pub preallocate: bool,
    /// `compression.{gzip,lz4,zstd}.level` (KIP-390): used when the broker recompresses.
    pub compression_gzip_level: i32,
    pub compression_lz4_level: i32,
    pub compression_zstd_level: i32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(e: Error) -> String {
        match e {
            Error::InvalidConfig(m) => m,
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }

    #[test]
    fn good_topic_configs_validate() {
        for (k, v) in [
            ("cleanup.policy", "compact,delete"),
            ("cleanup.policy", "compact"),
            ("compression.type", "zstd"),
            ("retention.ms", "-1"),
            ("retention.bytes", "-1"),
            ("segment.bytes", "14"),
            ("min.cleanable.dirty.ratio", "0.01"),
            ("message.timestamp.type", "LogAppendTime"),
            ("compression.gzip.level", "-1"),
            ("compression.zstd.level", "-5"),
            ("leader.replication.throttled.replicas", "*"),
            ("follower.replication.throttled.replicas", "0:1, 1:2"),
            ("remote.storage.enable", "false"),
            ("preallocate", "TRUE"),
        ] {
            validate_topic_config(k, v).unwrap_or_else(|e| panic!("{k}={v}: {e}"));
        }
    }

    #[test]
    fn segment_bytes_below_14_is_invalid_with_kafka_message() {
        let m = msg(validate_topic_config("segment.bytes", "13").unwrap_err());
        assert_eq!(
            m,
            "Invalid value 13 for configuration segment.bytes: Value must be at least 14"
        );
    }

    #[test]
    fn unknown_topic_config_is_invalid_config() {
        let e = validate_topic_config("retention.msx", "1").unwrap_err();
        assert_eq!(e.error_code(), 40);
        assert_eq!(msg(e), "Unknown topic config name: retention.msx");
    }

    #[test]
    fn bad_values_are_rejected() {
        for (k, v) in [
            ("cleanup.policy", "remove"),
            ("compression.type", "brotli"),
            ("retention.ms", "-2"),
            ("retention.ms", "forever"),
            ("max.message.bytes", "2147483648"),
            ("min.insync.replicas", "0"),
            ("min.cleanable.dirty.ratio", "1.5"),
            ("message.timestamp.type", "createtime"),
            ("compression.gzip.level", "0"),
            ("compression.lz4.level", "18"),
            ("preallocate", "yes"),
            ("leader.replication.throttled.replicas", "a:b"),
            ("remote.storage.enable", "true"),
            ("segment.ms", "0"),
            ("flush.messages", "0"),
        ] {
            assert!(validate_topic_config(k, v).is_err(), "{k}={v} accepted");
        }
    }

    #[test]
    fn message_downconversion_enable_is_gone_in_kafka_4() {
        assert!(validate_topic_config("message.downconversion.enable", "true").is_err());
        assert!(validate_topic_config("message.format.version", "3.0").is_err());
    }

    #[test]
    fn min_compaction_lag_above_max_is_a_conflict() {
        let mut c = IndexMap::new();
        c.insert("min.compaction.lag.ms".to_string(), "10".to_string());
        c.insert("max.compaction.lag.ms".to_string(), "5".to_string());
        assert!(validate_topic_configs(&c).is_err());
        c.insert("max.compaction.lag.ms".to_string(), "10".to_string());
        assert!(validate_topic_configs(&c).is_ok());
    }

    #[test]
    fn synonyms_follow_kafka() {
        assert_eq!(
            topic_config_synonym("segment.bytes"),
            Some("log.segment.bytes")
        );
        assert_eq!(
            topic_config_synonym("retention.ms"),
            Some("log.retention.ms")
        );
        assert_eq!(
            topic_config_synonym("max.message.bytes"),
            Some("message.max.bytes")
        );
        assert_eq!(
            topic_config_synonym("flush.messages"),
            Some("log.flush.interval.messages")
        );
        assert_eq!(topic_config_synonym("remote.storage.enable"), None);
        assert_eq!(topic_config_synonym("nope"), None);
        assert_eq!(topic_config_synonyms("retention.ms").len(), 3);
    }

    #[test]
    fn name_list_matches_validator_table() {
        let table: Vec<&str> = TOPIC_CONFIGS.iter().map(|(n, _, _)| *n).collect();
        assert_eq!(table, TOPIC_CONFIG_NAMES);
    }

    #[test]
    fn every_topic_config_default_validates() {
        for name in topic_config_names() {
            let d = kafka_topic_default(name).unwrap();
            validate_topic_config(name, d).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn cleanup_policy_round_trips() {
        let p = CleanupPolicy::parse("delete, compact").unwrap();
        assert!(p.delete && p.compact);
        assert_eq!(p.to_config_string(), "compact,delete");
        assert_eq!(CleanupPolicy::parse("x"), None);
    }
}
