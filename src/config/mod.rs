//! Broker configuration with Kafka 4.x property names and defaults: command line, properties
//! file, container-style environment variables and `--override`s, resolved into one [`Config`].
//!
//! # How a value is chosen
//! Precedence, lowest to highest: **defaults < `server.properties` < environment < `--override`**.
//!
//! - Command line, as `kafka-server-start.sh` takes it:
//!   `sluice [server.properties] [--override key=value ...]`. The file is optional (zero-config).
//! - Environment, as the official `apache/kafka` container image maps it (its
//!   `KafkaDockerWrapper`): `KAFKA_ADVERTISED_LISTENERS` -> `advertised.listeners`: the `KAFKA_`
//!   prefix is dropped, the rest lower-cased, then `_` -> `.`, `___` -> `-`, `__` -> `_`
//!   (`KAFKA_LISTENER_NAME_SASL__SSL_...` -> `listener.name.sasl_ssl....`). Unlike the image, only
//!   the leading `KAFKA_` is removed. Empty values count as unset. `CLUSTER_ID` sets the cluster
//!   id. As in the image, when `KAFKA_ADVERTISED_LISTENERS` is set and `listeners` is set
//!   nowhere, `listeners` becomes the advertised listeners with host `0.0.0.0`. JVM and launcher variables (`KAFKA_HEAP_OPTS`, `KAFKA_OPTS`, `KAFKA_JMX_OPTS`,
//!   `KAFKA_DEBUG`, ...) and the service-link variables Docker and Kubernetes inject for a
//!   service called `kafka` (`KAFKA_PORT*`, `KAFKA_SERVICE_*`) are ignored with one info line.
//!
//! # What is accepted
//! - Keys Sluice uses are type- and range-checked like Kafka's `ConfigDef`; a bad value is an
//!   error naming key, value and where it was set.
//! - Every other Kafka 4.x broker/controller key (see [`KAFKA_BROKER_CONFIG_NAMES`]) and the
//!   prefix families Kafka passes through (`listener.name.*`, `config.providers.*`, ...) are
//!   accepted and named in ONE warning line; keys Kafka 4.0 removed (`zookeeper.*`, ...) in one
//!   more. Names that look numeric (`*.ms`, `*.bytes`, ...) or boolean (`*.enable`) must still
//!   parse as such.
//! - A key Kafka does not know (a typo) is an error, with the closest known name suggested.
//! - `sluice.*` is Sluice's own namespace, the only place for settings Kafka does not have.
//!
//! # Zero-config defaults that differ from Kafka's
//! Kafka requires some settings that Sluice defaults so that `sluice` alone starts a usable
//! single-node broker on a laptop:
//! - `node.id` = 1 (else `broker.id` if set), `process.roles` = `broker,controller`;
//! - `log.dirs`/`log.dir` = `./sluice-data` (Kafka: `/tmp/kafka-logs`);
//! - advertised listeners, when not set, copy `listeners` with an empty or wildcard host
//!   replaced by `127.0.0.1` (Kafka uses the machine's canonical host name). Set
//!   `advertised.listeners` (or `KAFKA_ADVERTISED_LISTENERS`) whenever clients connect from
//!   another machine or container;
//! - `offsets.topic.replication.factor`, `transaction.state.log.replication.factor` and
//!   `transaction.state.log.min.isr` = 1 (Kafka: 3, 3, 2; its stock `server.properties` sets 1);
//! - the controller role does not require a `controller.listener.names` entry.

mod describe;
mod dynamic;
mod group;
mod kafka_names;
mod listener;
mod properties;
pub mod served;
mod topic;
mod value;

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

pub use describe::{config_documentation, config_type, ConfigType};
pub use dynamic::{
    broker_config_synonyms, dynamic_broker_config_names, is_dynamic_broker_config,
    is_per_broker_config, kafka_dynamic_broker_default,
};
pub use group::{
    group_config_broker_key, group_config_names, group_timeouts, validate_group_configs,
    ConsumerGroupMigrationPolicy,
};
pub use kafka_names::{
    classify_kafka_key, is_sensitive_config, KafkaKeyKind, KAFKA_ACCEPTED_CONFIG_PREFIXES,
    KAFKA_BROKER_CONFIG_NAMES, KAFKA_LAUNCHER_ENV_VARS, KAFKA_OTHER_BROKER_CONFIG_NAMES,
    KAFKA_REMOVED_BROKER_CONFIG_NAMES,
};
pub use listener::{host_port, Listener, QuorumVoter, SecurityProtocol};
pub use properties::{parse_properties, PropertiesError, Property};
pub use topic::{
    is_topic_config, kafka_topic_default, topic_config_names, topic_config_synonym,
    topic_config_synonyms, validate_topic_config, validate_topic_configs, BrokerCompressionType,
    CleanupPolicy, EffectiveTopicConfig, TimestampType, TOPIC_CONFIG_NAMES,
};

use value::{parse_bool, parse_double, parse_int, parse_list, parse_long, parse_short};

/// Usage text for `--help` and command-line errors.
pub const USAGE: &str = "\
USAGE: sluice [server.properties] [--override property=value]*
       sluice format --cluster-id ID [--config server.properties] ...  (see sluice format --help)
       sluice random-uuid
       sluice healthcheck [host:port]

Starts a Sluice broker. With no arguments it runs a single-node broker and controller on
PLAINTEXT://:9092 with data in ./sluice-data.

  server.properties          Kafka-style broker config file (optional)
  --override key=value       override one property (repeatable)
  --help                     print this text
  --version                  print the version

Precedence: defaults < server.properties < KAFKA_* environment variables < --override.
Environment: KAFKA_ADVERTISED_LISTENERS=... sets advertised.listeners ('_' -> '.',
'__' -> '_', '___' -> '-'); CLUSTER_ID sets the cluster id.";

/// Sluice's default data directory (`log.dirs`), relative to the working directory.
pub const DEFAULT_LOG_DIR: &str = "./sluice-data";

/// The host advertised for a listener bound to all interfaces when `advertised.listeners` is
/// not set (Kafka would advertise the canonical host name; loopback is what works on a laptop).
pub const DEFAULT_ADVERTISED_HOST: &str = "127.0.0.1";

/// Where a config value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    Default,
    File,
    Env,
    Override,
    /// Set through AlterConfigs for this broker (resource name "<node.id>", KIP-226).
    DynamicBroker,
    /// Set through AlterConfigs for every broker (resource name "").
    DynamicDefaultBroker,
}

impl ConfigSource {
    /// Kafka's `DescribeConfigsResponse` config source id: file, environment and overrides are
    /// all `STATIC_BROKER_CONFIG` (4); defaults are `DEFAULT_CONFIG` (5); dynamic ones
    /// `DYNAMIC_BROKER_CONFIG` (2) and `DYNAMIC_DEFAULT_BROKER_CONFIG` (3).
    pub fn describe_configs_source(self) -> i8 {
        match self {
            ConfigSource::DynamicBroker => 2,
            ConfigSource::DynamicDefaultBroker => 3,
            ConfigSource::Default => 5,
            ConfigSource::File | ConfigSource::Env | ConfigSource::Override => 4,
        }
    }
}

/// One broker config as set (or defaulted), for DescribeConfigs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// `None` for a Kafka default of `null`.
    pub value: Option<String>,
    pub source: ConfigSource,
    /// A password-type config: never log or return its value.
    pub sensitive: bool,
}

/// Why the configuration could not be loaded. `main` prints it and exits non-zero (exit 0 for
/// `Help`/`Version`, which carry the text to print).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Help(String),
    #[error("{0}")]
    Version(String),
    #[error("{0}\n\n{USAGE}")]
    Usage(String),
    #[error("cannot read config file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {error}")]
    Syntax {
        path: PathBuf,
        error: PropertiesError,
    },
    #[error(
        "Unknown configuration '{key}' = '{value}' ({origin}): not a Kafka 4.x broker config{hint}"
    )]
    UnknownKey {
        key: String,
        value: String,
        origin: String,
        hint: String,
    },
    #[error("Invalid value {value} for configuration {key}: {reason} ({origin})")]
    InvalidValue {
        key: String,
        value: String,
        reason: String,
        origin: String,
    },
    #[error("Invalid configuration: {0}")]
    Invalid(String),
}

impl ConfigError {
    /// True for `--help` / `--version`, which are not failures.
    pub fn is_informational(&self) -> bool {
        matches!(self, ConfigError::Help(_) | ConfigError::Version(_))
    }
}

/// `process.roles`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessRoles {
    pub broker: bool,
    pub controller: bool,
}

/// The loaded configuration plus what `main` should log: `infos` at INFO, `warnings` at WARN.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub config: Config,
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
}

/// The broker configuration. Field names are Kafka's property names with `_` for `.`; each
/// field's doc names its key and default.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    // --- identity ---
    /// `node.id` (else `broker.id`); Sluice default 1.
    pub node_id: i32,
    /// `process.roles`; Sluice default `broker,controller`.
    pub process_roles: ProcessRoles,
    /// From the `CLUSTER_ID` environment variable (the container image's convention).
    pub cluster_id: Option<String>,
    /// `broker.rack`.
    pub broker_rack: Option<String>,

    // --- network ---
    /// `listeners` (default `PLAINTEXT://:9092`; an empty host binds all interfaces).
    pub listeners: Vec<Listener>,
    /// `advertised.listeners`, or `listeners` with wildcard hosts -> `127.0.0.1`.
    pub advertised_listeners: Vec<Listener>,
    /// `controller.listener.names` (upper-cased).
    pub controller_listener_names: Vec<String>,
    /// `listener.security.protocol.map` (plus controller listeners -> PLAINTEXT when unset).
    pub listener_security_protocol_map: IndexMap<String, SecurityProtocol>,
    /// `inter.broker.listener.name`, else the name of `security.inter.broker.protocol`
    /// (default `PLAINTEXT`).
    pub inter_broker_listener_name: String,
    /// `controller.quorum.voters` (`id@host:port,...`).
    pub controller_quorum_voters: Vec<QuorumVoter>,
    /// `controller.quorum.bootstrap.servers` (`host:port,...`).
    pub controller_quorum_bootstrap_servers: Vec<(String, u16)>,
    /// `controller.quorum.fetch.timeout.ms` (2000): a voter that hears nothing from the
    /// leader for this long stands for election.
    pub controller_quorum_fetch_timeout_ms: u64,
    /// `controller.quorum.election.backoff.max.ms` (1000): the random spread of elections.
    pub controller_quorum_election_backoff_max_ms: u64,
    /// `controller.quorum.request.timeout.ms` (2000): one quorum RPC's deadline.
    pub controller_quorum_request_timeout_ms: u64,
    /// Lets a quorum of several voters start although replication is not built yet. No
    /// property sets it: only the cluster's own tests, in Rust, so that no user ever runs a
    /// multi-node config whose partitions would not be replicated (issue 12).
    pub unreplicated_quorum_for_tests: bool,
    /// `socket.request.max.bytes` (104857600): largest request frame accepted.
    pub socket_request_max_bytes: usize,
    /// `socket.send.buffer.bytes` (102400; -1 = OS default).
    pub socket_send_buffer_bytes: i32,
    /// `socket.receive.buffer.bytes` (102400; -1 = OS default).
    pub socket_receive_buffer_bytes: i32,
    /// `socket.listen.backlog.size` (50).
    pub socket_listen_backlog_size: i32,
    /// `connections.max.idle.ms` (600000).
    pub connections_max_idle_ms: i64,
    /// `max.connections` (i32::MAX).
    pub max_connections: i32,
    /// `max.connections.per.ip` (i32::MAX).
    pub max_connections_per_ip: i32,
    /// `queued.max.requests` (500).
    pub queued_max_requests: i32,
    /// `queued.max.request.bytes` (-1 = unbounded).
    pub queued_max_request_bytes: i64,
    /// `request.timeout.ms` (30000).
    pub request_timeout_ms: i32,
    /// `fetch.max.bytes` (57671680).
    pub fetch_max_bytes: i32,
    /// `max.incremental.fetch.session.cache.slots` (1000).
    pub max_incremental_fetch_session_cache_slots: usize,
    /// `max.request.partition.size.limit` (2000).
    pub max_request_partition_size_limit: i32,
    /// `sluice.max.inflight.requests.per.connection` (100): requests read from one connection
    /// before its responses are written; bounds per-connection memory.
    pub max_inflight_requests_per_connection: i32,

    // --- log ---
    /// `log.dirs`, else `log.dir`; Sluice default `./sluice-data`.
    pub log_dirs: Vec<PathBuf>,
    /// `metadata.log.dir` (default: first of `log_dirs`).
    pub metadata_log_dir: Option<PathBuf>,
    /// `num.partitions` (1).
    pub num_partitions: i32,
    /// `default.replication.factor` (1; Kafka's type is int, held as the protocol's i16).
    pub default_replication_factor: i16,
    /// `auto.create.topics.enable` (true).
    pub auto_create_topics_enable: bool,
    /// `delete.topic.enable` (true).
    pub delete_topic_enable: bool,
    /// `min.insync.replicas` (1).
    pub min_insync_replicas: i32,
    /// `unclean.leader.election.enable` (false).
    pub unclean_leader_election_enable: bool,
    /// `log.retention.ms` / `.minutes` / `.hours` (168 h) resolved as Kafka does; -1 = forever.
    pub log_retention_ms: i64,
    /// `log.retention.bytes` (-1 = no limit).
    pub log_retention_bytes: i64,
    /// `log.retention.check.interval.ms` (300000).
    pub log_retention_check_interval_ms: i64,
    /// `log.segment.bytes` (1073741824).
    pub log_segment_bytes: i32,
    /// `log.roll.ms` / `log.roll.hours` (168 h).
    pub log_roll_ms: i64,
    /// `log.roll.jitter.ms` / `log.roll.jitter.hours` (0).
    pub log_roll_jitter_ms: i64,
    /// `log.index.interval.bytes` (4096).
    pub log_index_interval_bytes: i32,
    /// `log.index.size.max.bytes` (10485760): offset/time index size (`segment.index.bytes`).
    pub log_index_size_max_bytes: i32,
    /// `log.flush.interval.messages` (i64::MAX).
    pub log_flush_interval_messages: i64,
    /// `log.flush.interval.ms` (null: falls back to `log.flush.scheduler.interval.ms`).
    pub log_flush_interval_ms: Option<i64>,
    /// `log.flush.scheduler.interval.ms` (i64::MAX).
    pub log_flush_scheduler_interval_ms: i64,
    /// `log.flush.offset.checkpoint.interval.ms` (60000).
    pub log_flush_offset_checkpoint_interval_ms: i32,
    /// `log.segment.delete.delay.ms` (60000).
    pub log_segment_delete_delay_ms: i64,
    /// `log.cleanup.policy` (delete).
    pub log_cleanup_policy: CleanupPolicy,
    /// `log.cleaner.enable` (true).
    pub log_cleaner_enable: bool,
    /// `log.cleaner.backoff.ms` (15000).
    pub log_cleaner_backoff_ms: i64,
    /// `log.cleaner.delete.retention.ms` (86400000).
    pub log_cleaner_delete_retention_ms: i64,
    /// `log.cleaner.min.compaction.lag.ms` (0).
    pub log_cleaner_min_compaction_lag_ms: i64,
    /// `log.cleaner.max.compaction.lag.ms` (i64::MAX).
    pub log_cleaner_max_compaction_lag_ms: i64,
    /// `log.cleaner.min.cleanable.ratio` (0.5).
    pub log_cleaner_min_cleanable_ratio: f64,
    /// `log.cleaner.dedupe.buffer.size` (134217728): offset map memory of all cleaner threads.
    pub log_cleaner_dedupe_buffer_size: i64,
    /// `log.cleaner.io.buffer.load.factor` (0.9).
    pub log_cleaner_io_buffer_load_factor: f64,
    /// `log.cleaner.threads` (1); passes run one at a time, the dedupe buffer is shared as
    /// Kafka shares it.
    pub log_cleaner_threads: i32,
    /// `log.cleaner.io.max.bytes.per.second` (Double.MaxValue, unthrottled): the cleaner's
    /// read plus write rate (Kafka's Throttler).
    pub log_cleaner_io_max_bytes_per_second: f64,
    /// `log.preallocate` (false).
    pub log_preallocate: bool,
    /// `log.message.timestamp.type` (CreateTime).
    pub log_message_timestamp_type: TimestampType,
    /// `log.message.timestamp.before.max.ms` (i64::MAX).
    pub log_message_timestamp_before_max_ms: i64,
    /// `log.message.timestamp.after.max.ms` (3600000).
    pub log_message_timestamp_after_max_ms: i64,
    /// `message.max.bytes` (1048588): largest record batch.
    pub message_max_bytes: i32,
    /// `compression.type` (producer).
    pub compression_type: BrokerCompressionType,
    /// `compression.gzip.level` (-1).
    pub compression_gzip_level: i32,
    /// `compression.lz4.level` (9).
    pub compression_lz4_level: i32,
    /// `compression.zstd.level` (3).
    pub compression_zstd_level: i32,
    /// `num.recovery.threads.per.data.dir` (2).
    pub num_recovery_threads_per_data_dir: i32,

    // --- groups and offsets ---
    /// `offsets.topic.num.partitions` (50).
    pub offsets_topic_num_partitions: i32,
    /// `offsets.topic.replication.factor` (Sluice default 1; Kafka 3).
    pub offsets_topic_replication_factor: i16,
    /// `offsets.topic.segment.bytes` (104857600).
    pub offsets_topic_segment_bytes: i32,
    /// `offsets.retention.minutes` (10080).
    pub offsets_retention_minutes: i32,
    /// `offsets.retention.check.interval.ms` (600000).
    pub offsets_retention_check_interval_ms: i64,
    /// `offsets.commit.timeout.ms` (5000).
    pub offsets_commit_timeout_ms: i32,
    /// `offset.metadata.max.bytes` (4096).
    pub offset_metadata_max_bytes: i32,
    /// `group.min.session.timeout.ms` (6000).
    pub group_min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms` (1800000).
    pub group_max_session_timeout_ms: i32,
    /// `group.initial.rebalance.delay.ms` (3000).
    pub group_initial_rebalance_delay_ms: i32,
    /// `group.max.size` (i32::MAX): classic group member limit.
    pub group_max_size: i32,
    /// `group.coordinator.rebalance.protocols` (classic,consumer).
    pub group_coordinator_rebalance_protocols: Vec<String>,
    /// `group.consumer.session.timeout.ms` (45000), KIP-848.
    pub group_consumer_session_timeout_ms: i32,
    /// `group.consumer.min.session.timeout.ms` (45000).
    pub group_consumer_min_session_timeout_ms: i32,
    /// `group.consumer.max.session.timeout.ms` (60000).
    pub group_consumer_max_session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms` (5000).
    pub group_consumer_heartbeat_interval_ms: i32,
    /// `group.consumer.min.heartbeat.interval.ms` (5000).
    pub group_consumer_min_heartbeat_interval_ms: i32,
    /// `group.consumer.max.heartbeat.interval.ms` (15000).
    pub group_consumer_max_heartbeat_interval_ms: i32,
    /// `group.consumer.max.size` (i32::MAX).
    pub group_consumer_max_size: i32,
    /// `group.consumer.assignors` (uniform,range).
    pub group_consumer_assignors: Vec<String>,
    /// `group.consumer.migration.policy` (bidirectional): which online conversions between
    /// the classic and the consumer protocol a group with members may make (KIP-848).
    pub group_consumer_migration_policy: ConsumerGroupMigrationPolicy,

    // --- transactions and producer state ---
    /// `transaction.state.log.num.partitions` (50).
    pub transaction_state_log_num_partitions: i32,
    /// `transaction.state.log.replication.factor` (Sluice default 1; Kafka 3).
    pub transaction_state_log_replication_factor: i16,
    /// `transaction.state.log.min.isr` (Sluice default 1; Kafka 2).
    pub transaction_state_log_min_isr: i32,
    /// `transaction.state.log.segment.bytes` (104857600).
    pub transaction_state_log_segment_bytes: i32,
    /// `transaction.max.timeout.ms` (900000).
    pub transaction_max_timeout_ms: i32,
    /// `transactional.id.expiration.ms` (604800000).
    pub transactional_id_expiration_ms: i32,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms` (10000).
    pub transaction_abort_timed_out_transaction_cleanup_interval_ms: i32,
    /// `producer.id.expiration.ms` (86400000).
    pub producer_id_expiration_ms: i32,
    /// `producer.id.expiration.check.interval.ms` (600000; internal in Kafka).
    pub producer_id_expiration_check_interval_ms: i32,
    /// `sluice.producer.ids.max.per.partition` (10000): producer ids whose idempotence state
    /// one partition keeps; past it the producer idle longest is forgotten.
    pub producer_ids_max_per_partition: usize,
    /// `sluice.decompressed.batch.max.bytes` (104857600): the most bytes one produced batch may
    /// decompress to where a topic policy needs its records (recompression, compacted-topic
    /// keys, timestamps); past it the batch is CORRUPT_MESSAGE.
    pub decompressed_batch_max_bytes: usize,

    // --- replication and cluster membership ---
    /// `replica.lag.time.max.ms` (30000).
    pub replica_lag_time_max_ms: i64,
    /// `replica.fetch.max.bytes` (1048576).
    pub replica_fetch_max_bytes: i32,
    /// `replica.fetch.min.bytes` (1).
    pub replica_fetch_min_bytes: i32,
    /// `replica.fetch.wait.max.ms` (500).
    pub replica_fetch_wait_max_ms: i32,
    /// `replica.fetch.response.max.bytes` (10485760).
    pub replica_fetch_response_max_bytes: i32,
    /// `replica.fetch.backoff.ms` (1000).
    pub replica_fetch_backoff_ms: i32,
    /// `num.replica.fetchers` (1).
    pub num_replica_fetchers: i32,
    /// `broker.heartbeat.interval.ms` (2000).
    pub broker_heartbeat_interval_ms: i32,
    /// `broker.session.timeout.ms` (9000).
    pub broker_session_timeout_ms: i32,

    // --- operations (Sluice's own keys; README "Operations") ---
    /// `sluice.http.listener` (`:9644`): host:port of the HTTP listener serving /metrics,
    /// /health/live and /health/ready; an empty host binds all interfaces, an empty value
    /// disables it.
    pub http_listener: Option<(String, u16)>,
    /// `sluice.log.format` (`text`): `text` for humans, `json` for one JSON object per line.
    pub log_format: LogFormat,
    /// `sluice.request.slow.ms` (1000): a request whose processing takes longer is logged at
    /// WARN (a Fetch's own max_wait_ms is not counted against it); -1 disables.
    pub request_slow_ms: i64,
    /// `sluice.metrics.series.max` (10000): per metric, the most label sets keyed by a topic,
    /// partition or group; later ones are summed into one `_other` series.
    pub metrics_series_max: usize,
    /// `sluice.shutdown.timeout.ms` (5000): how long a shutdown waits for in-flight requests
    /// before it flushes the logs regardless.
    pub shutdown_timeout_ms: i64,

    /// Every key with its value and source, in resolution order (for DescribeConfigs). Filled
    /// at load; code that changes a typed field after loading does not update it.
    pub entries: IndexMap<String, ConfigEntry>,
}

/// One raw value before interpretation, with where it was set.
#[derive(Debug, Clone)]
struct RawValue {
    value: String,
    source: ConfigSource,
    origin: String,
}

type Raw = IndexMap<String, RawValue>;

/// A value safe to print in a message: secrets, and anything whose name suggests one (a typo
/// of a password key is still a password), are hidden.
fn shown_value(key: &str, value: &str) -> String {
    let looks_secret = ["password", "secret", "jaas", "credential", "token"]
        .iter()
        .any(|w| key.contains(w));
    if is_sensitive_config(key) || looks_secret {
        "[hidden]".to_string()
    } else {
        value.to_string()
    }
}

/// Reads typed values out of the raw map, records every key touched (with its default when
/// unset), and remembers which raw keys were consumed.
struct Resolver<'a> {
    raw: &'a Raw,
    entries: IndexMap<String, ConfigEntry>,
}

impl<'a> Resolver<'a> {
    fn new(raw: &'a Raw) -> Self {
        Resolver {
            raw,
            entries: IndexMap::new(),
        }
    }

    fn is_set(&self, key: &str) -> bool {
        self.raw.contains_key(key)
    }

    fn origin(&self, key: &str) -> String {
        self.raw
            .get(key)
            .map(|r| r.origin.clone())
            .unwrap_or_else(|| "default".to_string())
    }

    /// The value for `key` (raw or default) after recording it; `None` for a null default.
    fn value(&mut self, key: &str, default: Option<&str>) -> Option<String> {
        let (value, source) = match self.raw.get(key) {
            Some(r) => (Some(r.value.trim().to_string()), r.source),
            None => (default.map(str::to_string), ConfigSource::Default),
        };
        self.entries.insert(
            key.to_string(),
            ConfigEntry {
                value: value.clone(),
                source,
                sensitive: is_sensitive_config(key),
            },
        );
        value
    }

    fn invalid(&self, key: &str, value: &str, reason: String) -> ConfigError {
        ConfigError::InvalidValue {
            key: key.to_string(),
            value: shown_value(key, value),
            reason,
            origin: self.origin(key),
        }
    }

    fn parsed<T>(
        &mut self,
        key: &str,
        default: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        let value = self.value(key, Some(default)).unwrap_or_default();
        parse(&value).map_err(|reason| self.invalid(key, &value, reason))
    }

    fn opt_parsed<T>(
        &mut self,
        key: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        match self.value(key, None) {
            None => Ok(None),
            Some(value) => parse(&value)
                .map(Some)
                .map_err(|reason| self.invalid(key, &value, reason)),
        }
    }

    fn int(&mut self, key: &str, default: i32, min: i64) -> Result<i32, ConfigError> {
        self.parsed(key, &default.to_string(), |v| {
            parse_int(v, min, i32::MAX as i64)
        })
    }

    fn int_range(
        &mut self,
        key: &str,
        default: i32,
        min: i64,
        max: i64,
    ) -> Result<i32, ConfigError> {
        self.parsed(key, &default.to_string(), |v| parse_int(v, min, max))
    }

    /// A non-negative INT held as `usize` (`min` must be >= 0).
    fn size(&mut self, key: &str, default: i32, min: i64) -> Result<usize, ConfigError> {
        assert!(min >= 0, "size configs are non-negative");
        let v = self.int(key, default, min)?;
        Ok(usize::try_from(v).unwrap_or(0))
    }

    fn long(&mut self, key: &str, default: i64, min: i64) -> Result<i64, ConfigError> {
        self.parsed(key, &default.to_string(), |v| parse_long(v, min, i64::MAX))
    }

    fn short(&mut self, key: &str, default: i16, min: i64) -> Result<i16, ConfigError> {
        self.parsed(key, &default.to_string(), |v| {
            parse_short(v, min, i16::MAX as i64)
        })
    }

    fn bool(&mut self, key: &str, default: bool) -> Result<bool, ConfigError> {
        self.parsed(key, &default.to_string(), parse_bool)
    }

    fn double(&mut self, key: &str, default: &str, min: f64, max: f64) -> Result<f64, ConfigError> {
        self.parsed(key, default, |v| parse_double(v, min, max))
    }

    fn opt_long(&mut self, key: &str) -> Result<Option<i64>, ConfigError> {
        self.opt_parsed(key, |v| parse_long(v, i64::MIN, i64::MAX))
    }

    fn opt_int(&mut self, key: &str, min: i64) -> Result<Option<i32>, ConfigError> {
        self.opt_parsed(key, |v| parse_int(v, min, i32::MAX as i64))
    }

    fn opt_string(&mut self, key: &str) -> Option<String> {
        self.value(key, None).filter(|v| !v.is_empty())
    }

    fn string(&mut self, key: &str, default: &str) -> String {
        self.value(key, Some(default)).unwrap_or_default()
    }
}

/// Maps a container-image environment variable to a config key (`KAFKA_LOG_DIRS` ->
/// `log.dirs`, `__` -> `_`, `___` -> `-`); `None` without the `KAFKA_` prefix.
pub fn env_var_to_config_key(var: &str) -> Option<String> {
    let rest = var.strip_prefix("KAFKA_")?;
    if rest.is_empty() {
        return None;
    }
    Some(
        rest.to_lowercase()
            .replace('_', ".")
            .replace("...", "-")
            .replace("..", "_"),
    )
}

/// Variables Docker links and Kubernetes services inject for a service named `kafka`.
fn is_service_link_var(var: &str) -> bool {
    var == "KAFKA_PORT"
        || var.starts_with("KAFKA_PORT_")
        || var.starts_with("KAFKA_SERVICE_HOST")
        || var.starts_with("KAFKA_SERVICE_PORT")
}

/// Parsed command line.
struct Args {
    file: Option<PathBuf>,
    overrides: Vec<(String, String)>,
}

fn parse_override(kv: &str) -> Result<(String, String), ConfigError> {
    let (k, v) = kv.split_once('=').ok_or_else(|| {
        ConfigError::Usage(format!("--override expects property=value, got '{kv}'"))
    })?;
    let k = k.trim();
    if k.is_empty() {
        return Err(ConfigError::Usage(format!(
            "--override expects property=value, got '{kv}'"
        )));
    }
    Ok((k.to_string(), v.to_string()))
}

fn parse_command_line(args: Vec<String>) -> Result<Args, ConfigError> {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        return Err(ConfigError::Help(USAGE.to_string()));
    }
    if args.iter().any(|a| a == "--version") {
        return Err(ConfigError::Version(format!(
            "sluice {}",
            env!("CARGO_PKG_VERSION")
        )));
    }
    let mut file = None;
    let mut overrides = Vec::new();
    let mut extra = Vec::new();
    let mut iter = args.into_iter();
    while let Some(arg) = iter.next() {
        if arg == "--override" {
            let kv = iter.next().ok_or_else(|| {
                ConfigError::Usage("--override needs a property=value argument".to_string())
            })?;
            overrides.push(parse_override(&kv)?);
        } else if let Some(kv) = arg.strip_prefix("--override=") {
            overrides.push(parse_override(kv)?);
        } else if arg.starts_with('-') && arg.len() > 1 {
            return Err(ConfigError::Usage(format!("unknown option '{arg}'")));
        } else if file.is_none() && overrides.is_empty() {
            file = Some(PathBuf::from(arg));
        } else {
            extra.push(arg);
        }
    }
    if !extra.is_empty() {
        return Err(ConfigError::Usage(format!(
            "Found non argument parameters: {}",
            extra.join(",")
        )));
    }
    Ok(Args { file, overrides })
}

fn load_file(path: &Path, raw: &mut Raw) -> Result<(), ConfigError> {
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let text = properties::decode_properties_bytes(&bytes);
    let props = parse_properties(&text).map_err(|error| ConfigError::Syntax {
        path: path.to_path_buf(),
        error,
    })?;
    for p in props {
        raw.insert(
            p.key,
            RawValue {
                value: p.value,
                source: ConfigSource::File,
                origin: format!("{}:{}", path.display(), p.line),
            },
        );
    }
    Ok(())
}

/// Applies the environment; returns (cluster id, names of ignored variables).
fn apply_env(env: &[(String, String)], raw: &mut Raw) -> (Option<String>, Vec<String>) {
    let mut cluster_id = None;
    let mut ignored = Vec::new();
    for (var, value) in env {
        if var == "CLUSTER_ID" {
            let v = value.trim();
            if !v.is_empty() {
                cluster_id = Some(v.to_string());
            }
            continue;
        }
        if !var.starts_with("KAFKA_") {
            continue;
        }
        if KAFKA_LAUNCHER_ENV_VARS.contains(&var.as_str()) || is_service_link_var(var) {
            ignored.push(var.clone());
            continue;
        }
        if value.trim().is_empty() {
            continue;
        }
        if let Some(key) = env_var_to_config_key(var) {
            raw.insert(
                key,
                RawValue {
                    value: value.clone(),
                    source: ConfigSource::Env,
                    origin: format!("environment variable {var}"),
                },
            );
        }
    }
    ignored.sort();
    (cluster_id, ignored)
}

/// The container image's rule: when `KAFKA_ADVERTISED_LISTENERS` is set and `listeners` is not
/// set anywhere, listen on the advertised ports on all interfaces (`NAME://0.0.0.0:port`).
fn derive_listeners_from_env_advertised(raw: &mut Raw) {
    if raw.contains_key("listeners") {
        return;
    }
    let Some(advertised) = raw
        .get("advertised.listeners")
        .filter(|v| v.source == ConfigSource::Env)
    else {
        return;
    };
    let derived: Vec<String> = listener::parse_csv_list(&advertised.value)
        .into_iter()
        .map(|entry| match entry.split_once("://") {
            Some((name, address)) => match listener::parse_host_port(address) {
                Ok((_, port)) => format!("{name}://0.0.0.0:{port}"),
                Err(_) => entry.clone(),
            },
            None => entry.clone(),
        })
        .collect();
    let origin = format!("derived from {} (container image rule)", advertised.origin);
    raw.insert(
        "listeners".to_string(),
        RawValue {
            value: derived.join(","),
            source: ConfigSource::Env,
            origin,
        },
    );
}

/// The process environment as UTF-8 pairs; variables that are not valid UTF-8 are skipped
/// (`std::env::vars` would panic on them).
pub fn process_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// `parse_args` over this process's arguments (lossily decoded) and environment: what `main`
/// calls.
pub fn load_from_process() -> Result<LoadedConfig, ConfigError> {
    let args = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned());
    parse_args(args, &process_env())
}

/// Parses the command line and environment into a [`Config`]. `args` excludes the program name
/// (pass `std::env::args().skip(1)`); `env` is the process environment (`std::env::vars()`).
pub fn parse_args<I: IntoIterator<Item = String>>(
    args: I,
    env: &[(String, String)],
) -> Result<LoadedConfig, ConfigError> {
    let args = parse_command_line(args.into_iter().collect())?;
    let mut raw = Raw::new();
    if let Some(path) = &args.file {
        load_file(path, &mut raw)?;
    }
    let (cluster_id, ignored_env) = apply_env(env, &mut raw);
    for (key, value) in args.overrides {
        raw.insert(
            key.clone(),
            RawValue {
                value,
                source: ConfigSource::Override,
                origin: format!("--override {key}"),
            },
        );
    }
    derive_listeners_from_env_advertised(&mut raw);
    let (config, mut warnings) = build(&raw, cluster_id)?;
    let mut infos = Vec::new();
    if !ignored_env.is_empty() {
        infos.push(format!(
            "ignoring JVM, launcher and service-link environment variables (not broker \
             configs): {}",
            ignored_env.join(", ")
        ));
    }
    warnings.shrink_to_fit();
    Ok(LoadedConfig {
        config,
        warnings,
        infos,
    })
}

/// Kafka keys that look numeric or boolean by name; checked even though Sluice ignores them.
fn check_unused_value(key: &str, value: &str) -> Result<(), String> {
    const NUMERIC_SUFFIXES: &[&str] = &[
        ".ms",
        ".bytes",
        ".threads",
        ".seconds",
        ".secs",
        ".size",
        ".num",
        ".minutes",
        ".hours",
        ".requests",
    ];
    if key.ends_with(".enable") {
        return parse_bool(value).map(|_| ());
    }
    // Kafka's LONG and DOUBLE SASL login keys, which AlterConfigs may set per broker.
    if key == "sasl.kerberos.min.time.before.relogin" {
        return parse_long(value, i64::MIN, i64::MAX).map(|_| ());
    }
    if key.starts_with("sasl.") && (key.ends_with(".jitter") || key.ends_with(".factor")) {
        return parse_double(value, f64::MIN, f64::MAX).map(|_| ());
    }
    if NUMERIC_SUFFIXES.iter().any(|s| key.ends_with(s)) {
        return parse_long(value, i64::MIN, i64::MAX).map(|_| ());
    }
    Ok(())
}

/// Levenshtein distance, for "did you mean" hints.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The known name closest to a mistyped `key`, if it is close enough to be the intent.
fn closest_known_name(key: &str, known: &IndexMap<String, ConfigEntry>) -> Option<String> {
    known
        .keys()
        .map(String::as_str)
        .chain(KAFKA_BROKER_CONFIG_NAMES.iter().copied())
        .chain(KAFKA_OTHER_BROKER_CONFIG_NAMES.iter().copied())
        .map(|name| (edit_distance(key, name), name))
        .min_by_key(|(d, _)| *d)
        .filter(|(d, _)| *d <= 3.max(key.len() / 5))
        .map(|(_, name)| name.to_string())
}

fn check_listener_subset(
    advertised: &[Listener],
    listeners: &[Listener],
) -> Result<(), ConfigError> {
    for a in advertised {
        if !listeners.iter().any(|l| l.name == a.name) {
            return Err(ConfigError::Invalid(format!(
                "advertised.listeners listener names must be equal to or a subset of the ones \
                 defined in listeners; {} is not in listeners",
                a.name
            )));
        }
        if a.host == "0.0.0.0" || a.host == "::" {
            return Err(ConfigError::Invalid(format!(
                "advertised.listeners cannot use the nonroutable meta-address {}. Use a routable \
                 IP address ({a})",
                a.host
            )));
        }
    }
    Ok(())
}

fn default_advertised(listeners: &[Listener]) -> Vec<Listener> {
    listeners
        .iter()
        .map(|l| {
            let mut a = l.clone();
            if a.is_wildcard_host() {
                a.host = DEFAULT_ADVERTISED_HOST.to_string();
            }
            a
        })
        .collect()
}

struct Network {
    listeners: Vec<Listener>,
    advertised_listeners: Vec<Listener>,
    controller_listener_names: Vec<String>,
    listener_security_protocol_map: IndexMap<String, SecurityProtocol>,
    inter_broker_listener_name: String,
}

fn resolve_network(r: &mut Resolver<'_>, roles: ProcessRoles) -> Result<Network, ConfigError> {
    let controller_listener_names: Vec<String> =
        parse_list(&r.string("controller.listener.names", ""))
            .into_iter()
            .map(|n| n.to_ascii_uppercase())
            .collect();

    const DEFAULT_MAP: &str =
        "SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT";
    let map_explicit = r.is_set("listener.security.protocol.map");
    let map_value = r.string("listener.security.protocol.map", DEFAULT_MAP);
    let mut protocol_map = listener::parse_security_protocol_map(&map_value)
        .map_err(|reason| r.invalid("listener.security.protocol.map", &map_value, reason))?;
    if !map_explicit {
        // KRaft: controller listeners default to PLAINTEXT when no map is given.
        for name in &controller_listener_names {
            protocol_map
                .entry(name.clone())
                .or_insert(SecurityProtocol::Plaintext);
        }
    }

    let listeners_value = r.string("listeners", "PLAINTEXT://:9092");
    let listeners = listener::parse_listeners(&listeners_value, &protocol_map)
        .and_then(|l| listener::check_distinct_ports(&l).map(|_| l))
        .map_err(|reason| r.invalid("listeners", &listeners_value, reason))?;
    if listeners.is_empty() {
        return Err(r.invalid(
            "listeners",
            &listeners_value,
            "no listener given".to_string(),
        ));
    }

    let advertised_listeners = match r.opt_string("advertised.listeners") {
        Some(value) => {
            let parsed = listener::parse_listeners(&value, &protocol_map)
                .map_err(|reason| r.invalid("advertised.listeners", &value, reason))?;
            check_listener_subset(&parsed, &listeners)?;
            default_advertised(&parsed)
        }
        None => default_advertised(&listeners),
    };

    let explicit_name = r.opt_string("inter.broker.listener.name");
    let explicit_protocol = r.opt_string("security.inter.broker.protocol");
    let inter_broker_listener_name = match (explicit_name, explicit_protocol) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::Invalid(
                "Only one of inter.broker.listener.name and security.inter.broker.protocol \
                 should be set."
                    .to_string(),
            ))
        }
        (Some(name), None) => name.to_ascii_uppercase(),
        (None, Some(protocol)) => SecurityProtocol::from_name(&protocol)
            .map(|p| p.name().to_string())
            .ok_or_else(|| {
                r.invalid(
                    "security.inter.broker.protocol",
                    &protocol,
                    "String must be one of: PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL".to_string(),
                )
            })?,
        (None, None) => SecurityProtocol::Plaintext.name().to_string(),
    };

    if roles.broker {
        if !advertised_listeners
            .iter()
            .any(|l| l.name == inter_broker_listener_name)
        {
            let options: Vec<&str> = advertised_listeners
                .iter()
                .filter(|l| !controller_listener_names.contains(&l.name))
                .map(|l| l.name.as_str())
                .collect();
            return Err(ConfigError::Invalid(format!(
                "inter.broker.listener.name ({inter_broker_listener_name}) must be a listener \
                 name defined in advertised.listeners. The valid options based on currently \
                 configured listeners are {}",
                options.join(",")
            )));
        }
        if controller_listener_names.contains(&inter_broker_listener_name) {
            return Err(ConfigError::Invalid(format!(
                "inter.broker.listener.name ({inter_broker_listener_name}) must not be a \
                 controller listener (controller.listener.names)"
            )));
        }
    }
    if roles.broker && !roles.controller {
        if controller_listener_names.is_empty() {
            return Err(ConfigError::Invalid(
                "controller.listener.names must contain at least one value when running KRaft \
                 with just the broker role"
                    .to_string(),
            ));
        }
        if let Some(l) = listeners
            .iter()
            .find(|l| controller_listener_names.contains(&l.name))
        {
            return Err(ConfigError::Invalid(format!(
                "controller.listener.names must not contain a value appearing in the \
                 'listeners' configuration when running KRaft with just the broker role ({})",
                l.name
            )));
        }
    }
    if roles.controller {
        if let Some(name) = controller_listener_names
            .iter()
            .find(|n| !listeners.iter().any(|l| &l.name == *n))
        {
            return Err(ConfigError::Invalid(format!(
                "controller.listener.names must only contain values appearing in the \
                 'listeners' configuration when running the KRaft controller role ({name} is \
                 not in listeners)"
            )));
        }
    }

    Ok(Network {
        listeners,
        advertised_listeners,
        controller_listener_names,
        listener_security_protocol_map: protocol_map,
        inter_broker_listener_name,
    })
}

fn resolve_process_roles(r: &mut Resolver<'_>) -> Result<ProcessRoles, ConfigError> {
    let value = r.string("process.roles", "broker,controller");
    let mut roles = ProcessRoles {
        broker: false,
        controller: false,
    };
    for role in parse_list(&value) {
        let slot = match role.as_str() {
            "broker" => &mut roles.broker,
            "controller" => &mut roles.controller,
            _ => {
                return Err(r.invalid(
                    "process.roles",
                    &value,
                    "String must be one of: broker, controller".to_string(),
                ))
            }
        };
        if *slot {
            return Err(r.invalid(
                "process.roles",
                &value,
                "Duplicate role names found".to_string(),
            ));
        }
        *slot = true;
    }
    if !roles.broker && !roles.controller {
        return Err(r.invalid("process.roles", &value, "must not be empty".to_string()));
    }
    Ok(roles)
}

fn resolve_node_id(r: &mut Resolver<'_>) -> Result<i32, ConfigError> {
    let node_set = r.is_set("node.id");
    let broker_set = r.is_set("broker.id");
    let node_id = r.int("node.id", 1, 0)?;
    let broker_id = r.int("broker.id", -1, i32::MIN as i64)?;
    match (node_set, broker_set) {
        (true, true) if node_id != broker_id => Err(ConfigError::Invalid(format!(
            "broker.id ({broker_id}) and node.id ({node_id}) must be the same when both are set"
        ))),
        (false, true) if broker_id >= 0 => {
            r.entries.insert(
                "node.id".to_string(),
                ConfigEntry {
                    value: Some(broker_id.to_string()),
                    source: r
                        .raw
                        .get("broker.id")
                        .map_or(ConfigSource::Default, |v| v.source),
                    sensitive: false,
                },
            );
            Ok(broker_id)
        }
        (false, true) => Err(r.invalid(
            "broker.id",
            &broker_id.to_string(),
            "Value must be at least 0 (it is the node id when node.id is not set)".to_string(),
        )),
        _ => Ok(node_id),
    }
}

/// Kafka's `logRetentionTimeMillis`: ms, else minutes, else hours; any negative is -1 (forever).
fn resolve_retention_ms(r: &mut Resolver<'_>) -> Result<i64, ConfigError> {
    let ms = r.opt_long("log.retention.ms")?;
    let minutes = r.opt_int("log.retention.minutes", i32::MIN as i64)?;
    let hours = r.int("log.retention.hours", 168, i32::MIN as i64)?;
    let (key, millis) = match (ms, minutes) {
        (Some(ms), _) => ("log.retention.ms", ms),
        (None, Some(min)) => ("log.retention.minutes", 60_000 * i64::from(min)),
        (None, None) => ("log.retention.hours", 3_600_000 * i64::from(hours)),
    };
    let millis = if millis < 0 { -1 } else { millis };
    if millis == 0 {
        let value = r.raw.get(key).map(|v| v.value.trim()).unwrap_or("0");
        return Err(r.invalid(
            key,
            value,
            "log.retention.ms must be unlimited (-1) or, greater than or equal to 1".to_string(),
        ));
    }
    Ok(millis)
}

fn resolve_log_dirs(r: &mut Resolver<'_>) -> Result<Vec<PathBuf>, ConfigError> {
    let log_dir = r.string("log.dir", DEFAULT_LOG_DIR);
    let (key, value) = match r.opt_string("log.dirs") {
        Some(v) => ("log.dirs", v),
        None => ("log.dir", log_dir),
    };
    let dirs = parse_list(&value);
    if dirs.is_empty() || dirs.iter().any(String::is_empty) {
        return Err(r.invalid(key, &value, "must name at least one directory".to_string()));
    }
    for (i, d) in dirs.iter().enumerate() {
        if dirs[..i].contains(d) {
            return Err(r.invalid(key, &value, format!("Duplicate log directory found: {d}")));
        }
    }
    Ok(dirs.into_iter().map(PathBuf::from).collect())
}

/// Resolves every key Sluice uses, then classifies the rest; returns the config and warnings.
fn build(raw: &Raw, cluster_id: Option<String>) -> Result<(Config, Vec<String>), ConfigError> {
    let mut r = Resolver::new(raw);

    let node_id = resolve_node_id(&mut r)?;
    let process_roles = resolve_process_roles(&mut r)?;
    let broker_rack = r.opt_string("broker.rack");
    let net = resolve_network(&mut r, process_roles)?;
    let voters_value = r.string("controller.quorum.voters", "");
    let controller_quorum_voters = listener::parse_quorum_voters(&voters_value)
        .map_err(|reason| r.invalid("controller.quorum.voters", &voters_value, reason))?;
    let bootstrap_value = r.string("controller.quorum.bootstrap.servers", "");
    let controller_quorum_bootstrap_servers = listener::parse_bootstrap_servers(&bootstrap_value)
        .map_err(|reason| {
        r.invalid(
            "controller.quorum.bootstrap.servers",
            &bootstrap_value,
            reason,
        )
    })?;

    let log_dirs = resolve_log_dirs(&mut r)?;
    let metadata_log_dir = r.opt_string("metadata.log.dir").map(PathBuf::from);
    let log_retention_ms = resolve_retention_ms(&mut r)?;

    let log_roll_ms_opt = r.opt_long("log.roll.ms")?;
    let log_roll_hours = r.int("log.roll.hours", 168, 1)?;
    let log_roll_ms = log_roll_ms_opt.unwrap_or(3_600_000 * i64::from(log_roll_hours));
    if log_roll_ms < 1 {
        return Err(ConfigError::Invalid(
            "log.roll.ms must be greater than or equal to 1".to_string(),
        ));
    }
    let jitter_ms_opt = r.opt_long("log.roll.jitter.ms")?;
    let jitter_hours = r.int("log.roll.jitter.hours", 0, 0)?;
    let log_roll_jitter_ms = jitter_ms_opt.unwrap_or(3_600_000 * i64::from(jitter_hours));
    if log_roll_jitter_ms < 0 {
        return Err(ConfigError::Invalid(
            "log.roll.jitter.ms must be greater than or equal to 0".to_string(),
        ));
    }

    let cleanup_value = r.string("log.cleanup.policy", "delete");
    let log_cleanup_policy = CleanupPolicy::parse(&cleanup_value).ok_or_else(|| {
        r.invalid(
            "log.cleanup.policy",
            &cleanup_value,
            "String must be one of: compact, delete".to_string(),
        )
    })?;
    let ts_value = r.string("log.message.timestamp.type", "CreateTime");
    let log_message_timestamp_type = TimestampType::from_name(&ts_value).ok_or_else(|| {
        r.invalid(
            "log.message.timestamp.type",
            &ts_value,
            "String must be one of: CreateTime, LogAppendTime".to_string(),
        )
    })?;
    let compression_value = r.string("compression.type", "producer");
    let compression_type =
        BrokerCompressionType::from_name(&compression_value).ok_or_else(|| {
            r.invalid(
                "compression.type",
                &compression_value,
                format!(
                    "String must be one of: {}",
                    BrokerCompressionType::NAMES.join(", ")
                ),
            )
        })?;
    let compression_gzip_level = r.int_range("compression.gzip.level", -1, -1, 9)?;
    if compression_gzip_level == 0 {
        return Err(r.invalid(
            "compression.gzip.level",
            "0",
            "Value must be between 1 and 9, or -1".to_string(),
        ));
    }
    let protocols_value = r.string("group.coordinator.rebalance.protocols", "classic,consumer");
    let group_coordinator_rebalance_protocols = parse_list(&protocols_value);
    if let Some(bad) = group_coordinator_rebalance_protocols
        .iter()
        .find(|p| !["classic", "consumer"].contains(&p.as_str()))
    {
        return Err(r.invalid(
            "group.coordinator.rebalance.protocols",
            &protocols_value,
            format!("String must be one of: consumer, classic ({bad})"),
        ));
    }
    let migration_value = r.string("group.consumer.migration.policy", "bidirectional");
    let group_consumer_migration_policy = ConsumerGroupMigrationPolicy::parse(&migration_value)
        .ok_or_else(|| {
            r.invalid(
                "group.consumer.migration.policy",
                &migration_value,
                format!(
                    "String must be one of (case insensitive): {}",
                    ConsumerGroupMigrationPolicy::NAMES.join(", ")
                ),
            )
        })?;

    let config = Config {
        node_id,
        process_roles,
        cluster_id,
        broker_rack,
        listeners: net.listeners,
        advertised_listeners: net.advertised_listeners,
        controller_listener_names: net.controller_listener_names,
        listener_security_protocol_map: net.listener_security_protocol_map,
        inter_broker_listener_name: net.inter_broker_listener_name,
        controller_quorum_voters,
        controller_quorum_bootstrap_servers,
        controller_quorum_fetch_timeout_ms: r.long("controller.quorum.fetch.timeout.ms", 2000, 0)?
            as u64,
        controller_quorum_election_backoff_max_ms: r.long(
            "controller.quorum.election.backoff.max.ms",
            1000,
            0,
        )? as u64,
        controller_quorum_request_timeout_ms: r.long(
            "controller.quorum.request.timeout.ms",
            2000,
            0,
        )? as u64,
        unreplicated_quorum_for_tests: false,
        socket_request_max_bytes: r.size("socket.request.max.bytes", 104_857_600, 1)?,
        socket_send_buffer_bytes: r.int("socket.send.buffer.bytes", 102_400, -1)?,
        socket_receive_buffer_bytes: r.int("socket.receive.buffer.bytes", 102_400, -1)?,
        socket_listen_backlog_size: r.int("socket.listen.backlog.size", 50, 1)?,
        connections_max_idle_ms: r.long("connections.max.idle.ms", 600_000, i64::MIN)?,
        max_connections: r.int("max.connections", i32::MAX, 0)?,
        max_connections_per_ip: r.int("max.connections.per.ip", i32::MAX, 0)?,
        queued_max_requests: r.int("queued.max.requests", 500, 1)?,
        queued_max_request_bytes: r.long("queued.max.request.bytes", -1, i64::MIN)?,
        request_timeout_ms: r.int("request.timeout.ms", 30_000, 0)?,
        fetch_max_bytes: r.int("fetch.max.bytes", 57_671_680, 1024)?,
        max_incremental_fetch_session_cache_slots: r.size(
            "max.incremental.fetch.session.cache.slots",
            1000,
            0,
        )?,
        max_request_partition_size_limit: r.int("max.request.partition.size.limit", 2000, 1)?,
        max_inflight_requests_per_connection: r.int(
            "sluice.max.inflight.requests.per.connection",
            100,
            1,
        )?,
        log_dirs,
        metadata_log_dir,
        num_partitions: r.int("num.partitions", 1, 1)?,
        default_replication_factor: r.short("default.replication.factor", 1, 1)?,
        auto_create_topics_enable: r.bool("auto.create.topics.enable", true)?,
        delete_topic_enable: r.bool("delete.topic.enable", true)?,
        min_insync_replicas: r.int("min.insync.replicas", 1, 1)?,
        unclean_leader_election_enable: r.bool("unclean.leader.election.enable", false)?,
        log_retention_ms,
        log_retention_bytes: r.long("log.retention.bytes", -1, i64::MIN)?,
        log_retention_check_interval_ms: r.long("log.retention.check.interval.ms", 300_000, 1)?,
        log_segment_bytes: r.int("log.segment.bytes", 1_073_741_824, 1_048_576)?,
        log_roll_ms,
        log_roll_jitter_ms,
        log_index_interval_bytes: r.int("log.index.interval.bytes", 4096, 0)?,
        log_index_size_max_bytes: r.int("log.index.size.max.bytes", 10_485_760, 4)?,
        log_flush_interval_messages: r.long("log.flush.interval.messages", i64::MAX, 1)?,
        log_flush_interval_ms: r.opt_long("log.flush.interval.ms")?,
        log_flush_scheduler_interval_ms: r.long(
            "log.flush.scheduler.interval.ms",
            i64::MAX,
            i64::MIN,
        )?,
        log_flush_offset_checkpoint_interval_ms: r.int(
            "log.flush.offset.checkpoint.interval.ms",
            60_000,
            0,
        )?,
        log_segment_delete_delay_ms: r.long("log.segment.delete.delay.ms", 60_000, 0)?,
        log_cleanup_policy,
        log_cleaner_enable: r.bool("log.cleaner.enable", true)?,
        log_cleaner_backoff_ms: r.long("log.cleaner.backoff.ms", 15_000, 0)?,
        log_cleaner_delete_retention_ms: r.long(
            "log.cleaner.delete.retention.ms",
            86_400_000,
            0,
        )?,
        log_cleaner_min_compaction_lag_ms: r.long("log.cleaner.min.compaction.lag.ms", 0, 0)?,
        log_cleaner_max_compaction_lag_ms: r.long(
            "log.cleaner.max.compaction.lag.ms",
            i64::MAX,
            1,
        )?,
        log_cleaner_min_cleanable_ratio: r.double(
            "log.cleaner.min.cleanable.ratio",
            "0.5",
            0.0,
            1.0,
        )?,
        log_cleaner_dedupe_buffer_size: r.long("log.cleaner.dedupe.buffer.size", 134_217_728, 0)?,
        log_cleaner_io_buffer_load_factor: r.double(
            "log.cleaner.io.buffer.load.factor",
            "0.9",
            0.0,
            1.0,
        )?,
        log_cleaner_threads: r.int("log.cleaner.threads", 1, 0)?,
        log_cleaner_io_max_bytes_per_second: r.double(
            "log.cleaner.io.max.bytes.per.second",
            "1.7976931348623157E308",
            0.0,
            f64::MAX,
        )?,
        log_preallocate: r.bool("log.preallocate", false)?,
        log_message_timestamp_type,
        log_message_timestamp_before_max_ms: r.long(
            "log.message.timestamp.before.max.ms",
            i64::MAX,
            0,
        )?,
        log_message_timestamp_after_max_ms: r.long(
            "log.message.timestamp.after.max.ms",
            3_600_000,
            0,
        )?,
        message_max_bytes: r.int("message.max.bytes", 1_048_588, 0)?,
        compression_type,
        compression_gzip_level,
        compression_lz4_level: r.int_range("compression.lz4.level", 9, 1, 17)?,
        compression_zstd_level: r.int_range("compression.zstd.level", 3, -131_072, 22)?,
        num_recovery_threads_per_data_dir: r.int("num.recovery.threads.per.data.dir", 2, 1)?,
        offsets_topic_num_partitions: r.int("offsets.topic.num.partitions", 50, 1)?,
        offsets_topic_replication_factor: r.short("offsets.topic.replication.factor", 1, 1)?,
        offsets_topic_segment_bytes: r.int("offsets.topic.segment.bytes", 104_857_600, 1)?,
        offsets_retention_minutes: r.int("offsets.retention.minutes", 10_080, 1)?,
        offsets_retention_check_interval_ms: r.long(
            "offsets.retention.check.interval.ms",
            600_000,
            1,
        )?,
        offsets_commit_timeout_ms: r.int("offsets.commit.timeout.ms", 5000, 1)?,
        offset_metadata_max_bytes: r.int("offset.metadata.max.bytes", 4096, i32::MIN as i64)?,
        group_min_session_timeout_ms: r.int(
            "group.min.session.timeout.ms",
            6000,
            i32::MIN as i64,
        )?,
        group_max_session_timeout_ms: r.int(
            "group.max.session.timeout.ms",
            1_800_000,
            i32::MIN as i64,
        )?,
        group_initial_rebalance_delay_ms: r.int(
            "group.initial.rebalance.delay.ms",
            3000,
            i32::MIN as i64,
        )?,
        group_max_size: r.int("group.max.size", i32::MAX, 1)?,
        group_coordinator_rebalance_protocols,
        group_consumer_session_timeout_ms: r.int("group.consumer.session.timeout.ms", 45_000, 1)?,
        group_consumer_min_session_timeout_ms: r.int(
            "group.consumer.min.session.timeout.ms",
            45_000,
            1,
        )?,
        group_consumer_max_session_timeout_ms: r.int(
            "group.consumer.max.session.timeout.ms",
            60_000,
            1,
        )?,
        group_consumer_heartbeat_interval_ms: r.int(
            "group.consumer.heartbeat.interval.ms",
            5000,
            1,
        )?,
        group_consumer_min_heartbeat_interval_ms: r.int(
            "group.consumer.min.heartbeat.interval.ms",
            5000,
            1,
        )?,
        group_consumer_max_heartbeat_interval_ms: r.int(
            "group.consumer.max.heartbeat.interval.ms",
            15_000,
            1,
        )?,
        group_consumer_max_size: r.int("group.consumer.max.size", i32::MAX, 1)?,
        group_consumer_assignors: parse_list(
            &r.string("group.consumer.assignors", "uniform,range"),
        ),
        group_consumer_migration_policy,
        transaction_state_log_num_partitions: r.int(
            "transaction.state.log.num.partitions",
            50,
            1,
        )?,
        transaction_state_log_replication_factor: r.short(
            "transaction.state.log.replication.factor",
            1,
            1,
        )?,
        transaction_state_log_min_isr: r.int("transaction.state.log.min.isr", 1, 1)?,
        transaction_state_log_segment_bytes: r.int(
            "transaction.state.log.segment.bytes",
            104_857_600,
            1,
        )?,
        transaction_max_timeout_ms: r.int("transaction.max.timeout.ms", 900_000, 1)?,
        transactional_id_expiration_ms: r.int("transactional.id.expiration.ms", 604_800_000, 1)?,
        transaction_abort_timed_out_transaction_cleanup_interval_ms: r.int(
            "transaction.abort.timed.out.transaction.cleanup.interval.ms",
            10_000,
            1,
        )?,
        producer_id_expiration_ms: r.int("producer.id.expiration.ms", 86_400_000, 1)?,
        producer_id_expiration_check_interval_ms: r.int(
            "producer.id.expiration.check.interval.ms",
            600_000,
            1,
        )?,
        producer_ids_max_per_partition: r.size(
            "sluice.producer.ids.max.per.partition",
            10_000,
            1,
        )?,
        decompressed_batch_max_bytes: r.size(
            "sluice.decompressed.batch.max.bytes",
            104_857_600,
            1,
        )?,
        replica_lag_time_max_ms: r.long("replica.lag.time.max.ms", 30_000, i64::MIN)?,
        replica_fetch_max_bytes: r.int("replica.fetch.max.bytes", 1_048_576, 0)?,
        replica_fetch_min_bytes: r.int("replica.fetch.min.bytes", 1, i32::MIN as i64)?,
        replica_fetch_wait_max_ms: r.int("replica.fetch.wait.max.ms", 500, i32::MIN as i64)?,
        replica_fetch_response_max_bytes: r.int(
            "replica.fetch.response.max.bytes",
            10_485_760,
            0,
        )?,
        replica_fetch_backoff_ms: r.int("replica.fetch.backoff.ms", 1000, 0)?,
        num_replica_fetchers: r.int("num.replica.fetchers", 1, i32::MIN as i64)?,
        broker_heartbeat_interval_ms: r.int(
            "broker.heartbeat.interval.ms",
            2000,
            i32::MIN as i64,
        )?,
        broker_session_timeout_ms: r.int("broker.session.timeout.ms", 9000, i32::MIN as i64)?,
        http_listener: resolve_http_listener(&mut r)?,
        log_format: resolve_log_format(&mut r)?,
        request_slow_ms: r.long("sluice.request.slow.ms", 1000, -1)?,
        metrics_series_max: r.size("sluice.metrics.series.max", 10_000, 0)?,
        shutdown_timeout_ms: r.long("sluice.shutdown.timeout.ms", 5000, 0)?,
        entries: IndexMap::new(),
    };
    check_cross_field(&config)?;

    let mut entries = r.entries;
    let warnings = classify_rest(raw, &mut entries)?;
    Ok((Config { entries, ..config }, warnings))
}

/// The operations HTTP listener's key.
pub const HTTP_LISTENER: &str = "sluice.http.listener";

/// `sluice.http.listener`: `host:port` (empty host = all interfaces), or empty to disable.
fn resolve_http_listener(r: &mut Resolver<'_>) -> Result<Option<(String, u16)>, ConfigError> {
    const KEY: &str = HTTP_LISTENER;
    let value = r.string(KEY, ":9644");
    if value.is_empty() {
        return Ok(None);
    }
    // Accept the listener style `http://host:port` too.
    let address = value.strip_prefix("http://").unwrap_or(&value);
    listener::parse_host_port(address)
        .map(Some)
        .map_err(|reason| r.invalid(KEY, &value, reason))
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// `sluice.log.format`: `text` or `json`.
fn resolve_log_format(r: &mut Resolver<'_>) -> Result<LogFormat, ConfigError> {
    const KEY: &str = "sluice.log.format";
    let value = r.string(KEY, "text");
    match value.to_ascii_lowercase().as_str() {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err(r.invalid(KEY, &value, "must be 'text' or 'json'".to_string())),
    }
}

/// Relations Kafka checks between values.
fn check_cross_field(c: &Config) -> Result<(), ConfigError> {
    if c.group_min_session_timeout_ms > c.group_max_session_timeout_ms {
        return Err(ConfigError::Invalid(format!(
            "group.min.session.timeout.ms ({}) must not exceed group.max.session.timeout.ms ({})",
            c.group_min_session_timeout_ms, c.group_max_session_timeout_ms
        )));
    }
    if c.group_consumer_min_session_timeout_ms > c.group_consumer_max_session_timeout_ms {
        return Err(ConfigError::Invalid(
            "group.consumer.min.session.timeout.ms must not exceed \
             group.consumer.max.session.timeout.ms"
                .to_string(),
        ));
    }
    if c.group_consumer_min_heartbeat_interval_ms > c.group_consumer_max_heartbeat_interval_ms {
        return Err(ConfigError::Invalid(
            "group.consumer.min.heartbeat.interval.ms must not exceed \
             group.consumer.max.heartbeat.interval.ms"
                .to_string(),
        ));
    }
    if c.group_consumer_heartbeat_interval_ms >= c.group_consumer_session_timeout_ms {
        return Err(ConfigError::Invalid(
            "group.consumer.heartbeat.interval.ms must be less than \
             group.consumer.session.timeout.ms"
                .to_string(),
        ));
    }
    if c.broker_heartbeat_interval_ms >= c.broker_session_timeout_ms {
        return Err(ConfigError::Invalid(
            "broker.heartbeat.interval.ms must be less than broker.session.timeout.ms".to_string(),
        ));
    }
    if c.transaction_state_log_min_isr > i32::from(c.transaction_state_log_replication_factor) {
        return Err(ConfigError::Invalid(
            "transaction.state.log.min.isr must not exceed \
             transaction.state.log.replication.factor"
                .to_string(),
        ));
    }
    Ok(())
}

/// Classifies raw keys Sluice did not read: Kafka names and prefix families are recorded and
/// warned about, removed ones too, anything else (or an unknown `sluice.*`) is an error.
fn classify_rest(
    raw: &Raw,
    entries: &mut IndexMap<String, ConfigEntry>,
) -> Result<Vec<String>, ConfigError> {
    let mut unused = Vec::new();
    let mut removed = Vec::new();
    for (key, rv) in raw {
        if entries.contains_key(key) {
            continue;
        }
        let kind = if key.starts_with("sluice.") {
            None
        } else {
            classify_kafka_key(key)
        };
        let Some(kind) = kind else {
            let closest = closest_known_name(key, entries);
            // A typo of a password key still carries the password.
            let value = match &closest {
                Some(name) if is_sensitive_config(name) => "[hidden]".to_string(),
                _ => shown_value(key, &rv.value),
            };
            return Err(ConfigError::UnknownKey {
                key: key.clone(),
                value,
                origin: rv.origin.clone(),
                hint: closest
                    .map(|name| format!("; did you mean '{name}'?"))
                    .unwrap_or_default(),
            });
        };
        match kind {
            KafkaKeyKind::Broker => {
                check_unused_value(key, &rv.value).map_err(|reason| ConfigError::InvalidValue {
                    key: key.clone(),
                    value: shown_value(key, &rv.value),
                    reason,
                    origin: rv.origin.clone(),
                })?;
                unused.push(key.as_str());
            }
            KafkaKeyKind::PrefixFamily => unused.push(key.as_str()),
            KafkaKeyKind::Removed => removed.push(key.as_str()),
        }
        entries.insert(
            key.clone(),
            ConfigEntry {
                value: Some(rv.value.trim().to_string()),
                source: rv.source,
                sensitive: is_sensitive_config(key),
            },
        );
    }
    let mut warnings = Vec::new();
    if !unused.is_empty() {
        warnings.push(format!(
            "Kafka settings accepted but not used by Sluice yet (no effect): {}",
            unused.join(", ")
        ));
    }
    if !removed.is_empty() {
        warnings.push(format!(
            "settings removed in Kafka 4.0 (ignored): {}",
            removed.join(", ")
        ));
    }
    Ok(warnings)
}

/// `[(key, value)]` as the config map the dynamic and group config code takes (tests).
#[cfg(test)]
pub fn string_map(pairs: &[(&str, &str)]) -> IndexMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Default for Config {
    /// The zero-config broker: every key at its (Sluice) default.
    fn default() -> Self {
        match build(&Raw::new(), None) {
            Ok((config, _)) => config,
            Err(e) => panic!("built-in defaults must be a valid configuration: {e}"),
        }
    }
}

impl Config {
    /// A broker for tests: one PLAINTEXT listener on 127.0.0.1 with an ephemeral port and data
    /// under `data_dir`.
    pub fn for_test(data_dir: &Path) -> Config {
        Self::for_test_with(data_dir, &[])
    }

    /// [`Config::for_test`] with Kafka properties set as `--override key=value` would (a
    /// `listeners` given here replaces the test listener).
    pub fn for_test_with(data_dir: &Path, overrides: &[(&str, &str)]) -> Config {
        let mut raw = Raw::new();
        let listeners = ("listeners", "PLAINTEXT://127.0.0.1:0");
        for (key, value) in std::iter::once(&listeners).chain(overrides) {
            raw.insert(
                key.to_string(),
                RawValue {
                    value: value.to_string(),
                    source: ConfigSource::Override,
                    origin: "Config::for_test".to_string(),
                },
            );
        }
        let mut config = match build(&raw, None) {
            Ok((config, _)) => config,
            Err(e) => panic!("test configuration must be valid: {e}"),
        };
        config.log_dirs = vec![data_dir.to_path_buf()];
        // Many test brokers share the machine: the HTTP listener takes an ephemeral port too.
        config.http_listener = Some(("127.0.0.1".to_string(), 0));
        config.entries.insert(
            "log.dirs".to_string(),
            ConfigEntry {
                value: Some(data_dir.display().to_string()),
                source: ConfigSource::Override,
                sensitive: false,
            },
        );
        config
    }

    /// Records the port actually bound for a listener configured with port 0, in `listeners`
    /// and in the advertised listener of the same name.
    pub fn resolve_ephemeral_port(&mut self, listener_name: &str, port: u16) {
        for l in self
            .listeners
            .iter_mut()
            .chain(self.advertised_listeners.iter_mut())
        {
            if l.name == listener_name && l.port == 0 {
                l.port = port;
            }
        }
    }

    /// Every key set or defaulted, in resolution order, with value and source.
    pub fn entries(&self) -> &IndexMap<String, ConfigEntry> {
        &self.entries
    }

    /// One key's entry.
    pub fn entry(&self, key: &str) -> Option<&ConfigEntry> {
        self.entries.get(key)
    }

    /// True when `key` was set by the file, environment or an override (not defaulted).
    pub fn is_set(&self, key: &str) -> bool {
        self.entries
            .get(key)
            .is_some_and(|e| e.source != ConfigSource::Default)
    }

    /// Advertised listeners clients may use (controller listeners excluded).
    pub fn advertised_broker_listeners(&self) -> impl Iterator<Item = &Listener> {
        self.advertised_listeners
            .iter()
            .filter(|l| !self.controller_listener_names.contains(&l.name))
    }

    /// The advertised listener brokers use to reach each other.
    pub fn inter_broker_listener(&self) -> Option<&Listener> {
        self.advertised_listeners
            .iter()
            .find(|l| l.name == self.inter_broker_listener_name)
    }

    /// The effective `log.flush.interval.ms` (falls back to the scheduler interval, as Kafka).
    pub fn effective_log_flush_interval_ms(&self) -> i64 {
        self.log_flush_interval_ms
            .unwrap_or(self.log_flush_scheduler_interval_ms)
    }

    /// The key `log_dirs` came from (`log.dirs`, else `log.dir`) and the directories it names,
    /// for startup errors to say what to change.
    pub fn log_dirs_setting(&self) -> (&'static str, String) {
        let key = match self.entry("log.dirs") {
            Some(ConfigEntry { value: Some(_), .. }) => "log.dirs",
            _ => "log.dir",
        };
        let dirs: Vec<String> = self
            .log_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        (key, dirs.join(","))
    }

    /// `sluice.http.listener` as bound (`host:port`), for startup errors.
    pub fn http_listener_setting(&self) -> String {
        self.http_listener
            .as_ref()
            .map_or_else(String::new, |(host, port)| listener::host_port(host, *port))
    }

    /// Directory of the metadata log: `metadata.log.dir`, else the first of `log.dirs`.
    pub fn metadata_log_dir(&self) -> &Path {
        match (&self.metadata_log_dir, self.log_dirs.first()) {
            (Some(dir), _) => dir,
            (None, Some(dir)) => dir,
            (None, None) => Path::new(DEFAULT_LOG_DIR),
        }
    }

    /// The broker-level default for a topic config as Kafka would report it (the resolved value
    /// of its synonym, else Kafka's own default); `None` for names that are not topic configs.
    pub fn topic_config_default(&self, name: &str) -> Option<String> {
        if !is_topic_config(name) {
            return None;
        }
        let typed = match name {
            "segment.bytes" => self.log_segment_bytes.to_string(),
            "segment.ms" => self.log_roll_ms.to_string(),
            "segment.jitter.ms" => self.log_roll_jitter_ms.to_string(),
            "segment.index.bytes" => self.log_index_size_max_bytes.to_string(),
            "flush.messages" => self.log_flush_interval_messages.to_string(),
            "flush.ms" => self.effective_log_flush_interval_ms().to_string(),
            "retention.bytes" => self.log_retention_bytes.to_string(),
            "retention.ms" => self.log_retention_ms.to_string(),
            "max.message.bytes" => self.message_max_bytes.to_string(),
            "index.interval.bytes" => self.log_index_interval_bytes.to_string(),
            "delete.retention.ms" => self.log_cleaner_delete_retention_ms.to_string(),
            "min.compaction.lag.ms" => self.log_cleaner_min_compaction_lag_ms.to_string(),
            "max.compaction.lag.ms" => self.log_cleaner_max_compaction_lag_ms.to_string(),
            "file.delete.delay.ms" => self.log_segment_delete_delay_ms.to_string(),
            "min.cleanable.dirty.ratio" => self.log_cleaner_min_cleanable_ratio.to_string(),
            "cleanup.policy" => self.log_cleanup_policy.to_config_string(),
            "unclean.leader.election.enable" => self.unclean_leader_election_enable.to_string(),
            "min.insync.replicas" => self.min_insync_replicas.to_string(),
            "compression.type" => self.compression_type.name().to_string(),
            "compression.gzip.level" => self.compression_gzip_level.to_string(),
            "compression.lz4.level" => self.compression_lz4_level.to_string(),
            "compression.zstd.level" => self.compression_zstd_level.to_string(),
            "preallocate" => self.log_preallocate.to_string(),
            "message.timestamp.type" => self.log_message_timestamp_type.name().to_string(),
            "message.timestamp.before.max.ms" => {
                self.log_message_timestamp_before_max_ms.to_string()
            }
            "message.timestamp.after.max.ms" => self.log_message_timestamp_after_max_ms.to_string(),
            _ => {
                // Synonyms Sluice does not type (local.retention.*): the broker value if set.
                let from_broker = topic_config_synonym(name)
                    .and_then(|key| self.entries.get(key))
                    .and_then(|e| e.value.clone());
                return from_broker
                    .or_else(|| topic::kafka_topic_default(name).map(str::to_string));
            }
        };
        Some(typed)
    }

    /// Resolves the typed values the log uses for one topic: the topic's own config where set
    /// and valid, else the broker default. Topic configs are validated when written
    /// (CreateTopics/AlterConfigs), so a value that does not parse here falls back to the
    /// broker default rather than failing the partition.
    pub fn effective_topic_config(
        &self,
        topic_configs: &IndexMap<String, String>,
    ) -> EffectiveTopicConfig {
        let get = |name: &str| topic_configs.get(name).map(|v| v.trim());
        let int = |name: &str, default: i32| {
            get(name)
                .and_then(|v| v.parse::<i32>().ok())
                .unwrap_or(default)
        };
        let bytes = |name: &str, default: i32| {
            let v = int(name, default);
            let v = if v < 0 { default } else { v };
            u64::try_from(v).unwrap_or(0)
        };
        let long = |name: &str, default: i64| {
            get(name)
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(default)
        };
        let boolean = |name: &str, default: bool| {
            get(name)
                .and_then(|v| parse_bool(v).ok())
                .unwrap_or(default)
        };
        let retention_ms = long("retention.ms", self.log_retention_ms);
        EffectiveTopicConfig {
            segment_bytes: bytes("segment.bytes", self.log_segment_bytes),
            segment_ms: long("segment.ms", self.log_roll_ms),
            segment_jitter_ms: long("segment.jitter.ms", self.log_roll_jitter_ms),
            segment_index_bytes: bytes("segment.index.bytes", self.log_index_size_max_bytes),
            index_interval_bytes: bytes("index.interval.bytes", self.log_index_interval_bytes),
            max_message_bytes: usize::try_from(bytes("max.message.bytes", self.message_max_bytes))
                .unwrap_or(usize::MAX),
            flush_messages: long("flush.messages", self.log_flush_interval_messages),
            flush_ms: long("flush.ms", self.effective_log_flush_interval_ms()),
            retention_ms: if retention_ms < 0 { -1 } else { retention_ms },
            retention_bytes: long("retention.bytes", self.log_retention_bytes),
            message_timestamp_type: get("message.timestamp.type")
                .and_then(TimestampType::from_name)
                .unwrap_or(self.log_message_timestamp_type),
            message_timestamp_before_max_ms: long(
                "message.timestamp.before.max.ms",
                self.log_message_timestamp_before_max_ms,
            ),
            message_timestamp_after_max_ms: long(
                "message.timestamp.after.max.ms",
                self.log_message_timestamp_after_max_ms,
            ),
            cleanup_policy: get("cleanup.policy")
                .and_then(CleanupPolicy::parse)
                .unwrap_or(self.log_cleanup_policy),
            compression_type: get("compression.type")
                .and_then(BrokerCompressionType::from_name)
                .unwrap_or(self.compression_type),
            min_insync_replicas: int("min.insync.replicas", self.min_insync_replicas),
            unclean_leader_election_enable: boolean(
                "unclean.leader.election.enable",
                self.unclean_leader_election_enable,
            ),
            delete_retention_ms: long("delete.retention.ms", self.log_cleaner_delete_retention_ms),
            min_compaction_lag_ms: long(
                "min.compaction.lag.ms",
                self.log_cleaner_min_compaction_lag_ms,
            ),
            max_compaction_lag_ms: long(
                "max.compaction.lag.ms",
                self.log_cleaner_max_compaction_lag_ms,
            ),
            min_cleanable_dirty_ratio: get("min.cleanable.dirty.ratio")
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|v| (0.0..=1.0).contains(v))
                .unwrap_or(self.log_cleaner_min_cleanable_ratio),
            file_delete_delay_ms: long("file.delete.delay.ms", self.log_segment_delete_delay_ms),
            preallocate: boolean("preallocate", self.log_preallocate),
            compression_gzip_level: int("compression.gzip.level", self.compression_gzip_level),
            compression_lz4_level: int("compression.lz4.level", self.compression_lz4_level),
            compression_zstd_level: int("compression.zstd.level", self.compression_zstd_level),
        }
    }
}

#[cfg(test)]
mod tests;
