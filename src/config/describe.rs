//! What DescribeConfigs reports about a config besides its value: its Kafka type
//! (`DescribeConfigsResponse.ConfigType`, KIP-525) and a one-line documentation string.

use super::is_sensitive_config;
use super::topic::{topic_config_names, topic_config_synonyms, topic_config_type};

/// Kafka's `DescribeConfigsResponse.ConfigType` ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    Unknown = 0,
    Boolean = 1,
    String = 2,
    Int = 3,
    Short = 4,
    Long = 5,
    Double = 6,
    List = 7,
    Class = 8,
    Password = 9,
}

impl ConfigType {
    fn from_name(name: &str) -> ConfigType {
        match name {
            "BOOLEAN" => ConfigType::Boolean,
            "STRING" => ConfigType::String,
            "INT" => ConfigType::Int,
            "SHORT" => ConfigType::Short,
            "LONG" => ConfigType::Long,
            "DOUBLE" => ConfigType::Double,
            "LIST" => ConfigType::List,
            "CLASS" => ConfigType::Class,
            "PASSWORD" => ConfigType::Password,
            _ => ConfigType::Unknown,
        }
    }

    /// The id DescribeConfigs v3+ sends.
    pub fn id(self) -> i8 {
        self as i8
    }
}

/// Broker keys whose Kafka type differs from the topic config they supply, or that are not a
/// topic-config synonym at all. Keys in neither table are reported `UNKNOWN` rather than guessed.
const BROKER_TYPES: &[(&str, &str)] = &[
    ("log.retention.hours", "INT"),
    ("log.retention.minutes", "INT"),
    ("log.roll.hours", "INT"),
    ("log.roll.jitter.hours", "INT"),
    ("log.segment.bytes", "INT"),
    ("message.max.bytes", "INT"),
    ("log.flush.scheduler.interval.ms", "LONG"),
    ("log.cleaner.threads", "INT"),
    ("log.cleaner.dedupe.buffer.size", "LONG"),
    ("log.cleaner.io.buffer.load.factor", "DOUBLE"),
    ("log.cleaner.io.buffer.size", "INT"),
    ("log.cleaner.io.max.bytes.per.second", "DOUBLE"),
    ("log.cleaner.backoff.ms", "LONG"),
    ("log.cleaner.enable", "BOOLEAN"),
    ("log.retention.check.interval.ms", "LONG"),
    ("producer.id.expiration.ms", "INT"),
    ("consumer.session.timeout.ms", "INT"),
    ("consumer.heartbeat.interval.ms", "INT"),
    ("sasl.kerberos.kinit.cmd", "STRING"),
    ("sasl.kerberos.min.time.before.relogin", "LONG"),
    ("sasl.kerberos.service.name", "STRING"),
    ("sasl.kerberos.ticket.renew.jitter", "DOUBLE"),
    ("sasl.kerberos.ticket.renew.window.factor", "DOUBLE"),
    ("node.id", "INT"),
    ("broker.id", "INT"),
    ("num.partitions", "INT"),
    ("default.replication.factor", "INT"),
    ("process.roles", "LIST"),
    ("listeners", "STRING"),
    ("log.dirs", "STRING"),
    ("log.dir", "STRING"),
];

/// The type of a topic config (`topic == true`) or a broker config.
pub fn config_type(name: &str, topic: bool) -> ConfigType {
    if topic {
        return topic_config_type(name).map_or(ConfigType::Unknown, ConfigType::from_name);
    }
    if let Some((_, t)) = BROKER_TYPES.iter().find(|(n, _)| *n == name) {
        return ConfigType::from_name(t);
    }
    if is_sensitive_config(name) {
        return ConfigType::Password;
    }
    if let Some(t) = supplied_topic_config(name).and_then(topic_config_type) {
        return ConfigType::from_name(t);
    }
    if name.ends_with(".enable") {
        return ConfigType::Boolean;
    }
    ConfigType::Unknown
}

/// The topic config a broker key is the default of (`log.retention.ms` -> `retention.ms`).
fn supplied_topic_config(broker_key: &str) -> Option<&'static str> {
    topic_config_names().find(|t| topic_config_synonyms(t).contains(&broker_key))
}

/// One line on what each topic config does (Kafka's `#topicconfigs`, shortened).
const TOPIC_DOCS: &[(&str, &str)] = &[
    ("cleanup.policy", "How old log segments are handled: delete them past retention, compact them to the last value per key, or both."),
    ("compression.gzip.level", "Compression level for gzip when compression.type is gzip."),
    ("compression.lz4.level", "Compression level for lz4 when compression.type is lz4."),
    ("compression.type", "Final compression of the topic's data: a codec, uncompressed, or producer to keep what the producer sent."),
    ("compression.zstd.level", "Compression level for zstd when compression.type is zstd."),
    ("delete.retention.ms", "How long delete tombstones are kept on compacted topics."),
    ("file.delete.delay.ms", "Time to wait before deleting a file from the filesystem."),
    ("flush.messages", "Force an fsync after this many messages are written."),
    ("flush.ms", "Force an fsync when the oldest unflushed message is this old."),
    ("follower.replication.throttled.replicas", "Replicas whose log replication is throttled on the follower side."),
    ("index.interval.bytes", "How often an offset index entry is added, in bytes of log."),
    ("leader.replication.throttled.replicas", "Replicas whose log replication is throttled on the leader side."),
    ("local.retention.bytes", "Bytes of local log kept before deletion when tiered storage is enabled (-2: retention.bytes)."),
    ("local.retention.ms", "Time local log segments are kept when tiered storage is enabled (-2: retention.ms)."),
    ("max.compaction.lag.ms", "Longest time a message may remain ineligible for compaction."),
    ("max.message.bytes", "Largest record batch size allowed on this topic."),
    ("message.timestamp.after.max.ms", "How far in the future a message timestamp may be relative to the broker's time."),
    ("message.timestamp.before.max.ms", "How far in the past a message timestamp may be relative to the broker's time."),
    ("message.timestamp.type", "Whether the record timestamp is the producer's CreateTime or the broker's LogAppendTime."),
    ("min.cleanable.dirty.ratio", "Share of the log that must be uncompacted before the cleaner compacts it."),
    ("min.compaction.lag.ms", "Shortest time a message stays uncompacted."),
    ("min.insync.replicas", "Replicas that must acknowledge an acks=all write."),
    ("preallocate", "Preallocate segment files on disk."),
    ("remote.log.copy.disable", "Stop copying segments to remote storage."),
    ("remote.log.delete.on.disable", "Delete remote data when tiered storage is disabled on the topic."),
    ("remote.storage.enable", "Tiered storage for this topic (not available in this broker)."),
    ("retention.bytes", "Largest size a partition may grow to before old segments are deleted (-1: no limit)."),
    ("retention.ms", "Longest time a segment is kept before it is deleted (-1: no limit)."),
    ("segment.bytes", "Segment file size: a new segment is rolled past it."),
    ("segment.index.bytes", "Size of the offset and time index files."),
    ("segment.jitter.ms", "Random jitter subtracted from segment.ms to avoid rolling all segments at once."),
    ("segment.ms", "Time after which a segment is rolled even if not full."),
    ("unclean.leader.election.enable", "Let a replica outside the ISR become leader as a last resort, at the risk of data loss."),
];

/// One line on broker keys that are not a topic config's default.
const BROKER_DOCS: &[(&str, &str)] = &[
    (
        "log.cleaner.threads",
        "Background threads used for log compaction.",
    ),
    (
        "log.cleaner.dedupe.buffer.size",
        "Memory used for log deduplication across all cleaner threads.",
    ),
    (
        "log.cleaner.io.buffer.load.factor",
        "Load factor of the cleaner's deduplication buffer.",
    ),
    (
        "log.cleaner.io.buffer.size",
        "Memory used for log cleaner I/O buffers across all cleaner threads.",
    ),
    (
        "log.cleaner.io.max.bytes.per.second",
        "Throttle on the log cleaner's read and write I/O.",
    ),
    (
        "log.cleaner.backoff.ms",
        "Sleep when there are no logs to clean.",
    ),
    (
        "log.cleaner.enable",
        "Run the log cleaner (needed for compacted topics).",
    ),
    (
        "log.retention.check.interval.ms",
        "How often logs are checked for segments to delete.",
    ),
    (
        "producer.id.expiration.ms",
        "Time a producer id's state is kept after its last write.",
    ),
    (
        "num.partitions",
        "Default number of partitions of a new topic.",
    ),
    (
        "default.replication.factor",
        "Default replication factor of a new topic.",
    ),
    (
        "auto.create.topics.enable",
        "Create a topic when a client asks for metadata of an unknown one.",
    ),
    ("node.id", "The node id of this server."),
    ("log.dirs", "Directories where the log data is kept."),
    (
        "listeners",
        "Listener URIs the server accepts connections on.",
    ),
    (
        "advertised.listeners",
        "Listener addresses given to clients.",
    ),
    (
        "consumer.session.timeout.ms",
        "Group config: the time a consumer group member may go without a heartbeat before \
         it is removed (KIP-848).",
    ),
    (
        "consumer.heartbeat.interval.ms",
        "Group config: how often the consumer group's members heartbeat (KIP-848).",
    ),
    (
        "sasl.kerberos.min.time.before.relogin",
        "Kafka's Kerberos login refresh sleep time; Sluice offers no GSSAPI, so it is stored \
         and has no effect.",
    ),
];

/// Documentation of a topic config (`topic == true`) or a broker config; `None` when this
/// broker has none to give (Kafka sends null then too).
pub fn config_documentation(name: &str, topic: bool) -> Option<String> {
    let topic_doc = |t: &str| {
        TOPIC_DOCS
            .iter()
            .find(|(n, _)| *n == t)
            .map(|(_, d)| d.to_string())
    };
    if topic {
        return topic_doc(name);
    }
    if let Some((_, d)) = BROKER_DOCS.iter().find(|(n, _)| *n == name) {
        return Some(d.to_string());
    }
    let t = supplied_topic_config(name)?;
    topic_doc(t).map(|d| format!("Default for the topic config {t}: {d}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_topic_config_has_a_type_and_documentation() {
        for name in topic_config_names() {
            assert_ne!(config_type(name, true), ConfigType::Unknown, "{name}");
            assert!(config_documentation(name, true).is_some(), "{name}");
        }
    }

    #[test]
    fn broker_types_follow_kafka() {
        assert_eq!(config_type("log.retention.ms", false), ConfigType::Long);
        assert_eq!(config_type("log.retention.hours", false), ConfigType::Int);
        assert_eq!(config_type("log.cleanup.policy", false), ConfigType::List);
        assert_eq!(
            config_type("ssl.keystore.password", false),
            ConfigType::Password
        );
        assert_eq!(config_type("cleanup.policy", true), ConfigType::List);
        assert_eq!(config_type("compression.type", true), ConfigType::String);
        assert!(config_documentation("log.retention.ms", false)
            .is_some_and(|d| d.contains("retention.ms")));
    }
}
