//! Dynamic broker configs (KIP-226): which broker keys AlterConfigs may change at run time, and
//! the effective config with the dynamic values (metadata ConfigRecords for resource "" and
//! "<node.id>") laid over the static ones.
//!
//! Precedence is Kafka's: per-broker dynamic > cluster-default dynamic > static > default. A
//! topic config without an override follows the resulting broker value at run time.

use indexmap::IndexMap;

use super::topic::{topic_config_names, topic_config_synonym};
use super::{build, Config, ConfigError, ConfigSource, Raw, RawValue};

/// Broker keys Kafka reconfigures besides the primary synonyms of topic configs:
/// `LogCleaner.ReconfigurableConfigs` and `DynamicProducerStateManagerConfig`.
const OTHER_DYNAMIC_CONFIGS: &[&str] = &[
    "log.cleaner.threads",
    "log.cleaner.dedupe.buffer.size",
    "log.cleaner.io.buffer.load.factor",
    "log.cleaner.io.buffer.size",
    "log.cleaner.io.max.bytes.per.second",
    "log.cleaner.backoff.ms",
    "message.max.bytes",
    "producer.id.expiration.ms",
];

/// Kafka's per-broker listener keys for a broker-side Kerberos login
/// (`DynamicListenerConfig.ReconfigurableConfigs`), with Kafka's defaults. Sluice offers no
/// GSSAPI, so, as on a Kafka broker without a Kerberos listener, they are stored and described
/// but change nothing. Kafka refuses them at the cluster-default level ("" resource).
const PER_BROKER_LOGIN_CONFIGS: &[(&str, Option<&str>)] = &[
    ("sasl.kerberos.kinit.cmd", Some("/usr/bin/kinit")),
    ("sasl.kerberos.min.time.before.relogin", Some("60000")),
    ("sasl.kerberos.service.name", None),
    ("sasl.kerberos.ticket.renew.jitter", Some("0.05")),
    ("sasl.kerberos.ticket.renew.window.factor", Some("0.8")),
];

/// True for dynamic broker keys Kafka accepts only on one broker's resource, never as the
/// cluster default (`DynamicBrokerConfig.PerBrokerConfigs`).
pub fn is_per_broker_config(name: &str) -> bool {
    PER_BROKER_LOGIN_CONFIGS.iter().any(|(k, _)| *k == name)
}

/// True when AlterConfigs may set `name` on a BROKER resource. As Kafka's
/// `DynamicLogConfig.ReconfigurableConfigs`, only the first broker synonym of each topic config
/// is dynamic: `log.retention.ms` is, `log.retention.hours` and `.minutes` are not ("Cannot
/// update these configs dynamically"). Kafka's thread-pool, listener, SSL and quota configs
/// are not here because Sluice does not apply them at run time.
pub fn is_dynamic_broker_config(name: &str) -> bool {
    OTHER_DYNAMIC_CONFIGS.contains(&name)
        || is_per_broker_config(name)
        || topic_config_names().any(|t| topic_config_synonym(t) == Some(name))
}

/// Every dynamic broker key: the primary synonym of each topic config, then the others.
pub fn dynamic_broker_config_names() -> impl Iterator<Item = &'static str> {
    topic_config_names()
        .filter_map(topic_config_synonym)
        .chain(OTHER_DYNAMIC_CONFIGS.iter().copied())
        .chain(PER_BROKER_LOGIN_CONFIGS.iter().map(|(k, _)| *k))
}

/// Kafka's default of a dynamic broker key Sluice does not resolve itself (the cleaner's
/// tuning keys, the tiered-storage synonyms), so DescribeConfigs can list it as Kafka does.
pub fn kafka_dynamic_broker_default(name: &str) -> Option<String> {
    let fixed = match name {
        "log.cleaner.threads" => "1",
        "log.cleaner.dedupe.buffer.size" => "134217728",
        "log.cleaner.io.buffer.load.factor" => "0.9",
        "log.cleaner.io.buffer.size" => "524288",
        "log.cleaner.io.max.bytes.per.second" => "1.7976931348623157E308",
        "log.cleaner.backoff.ms" => "15000",
        _ => {
            if let Some((_, default)) = PER_BROKER_LOGIN_CONFIGS.iter().find(|(k, _)| *k == name) {
                return default.map(str::to_string);
            }
            let topic = topic_config_names().find(|t| topic_config_synonym(t) == Some(name))?;
            return super::topic::kafka_topic_default(topic).map(str::to_string);
        }
    };
    Some(fixed.to_string())
}

/// The broker keys that are one setting under several names, in precedence order (Kafka's
/// `DynamicBrokerConfig.brokerConfigSynonyms`); `[name]` for the rest.
pub fn broker_config_synonyms(name: &str) -> Vec<&str> {
    const GROUPS: &[&[&str]] = &[
        &["log.roll.ms", "log.roll.hours"],
        &["log.roll.jitter.ms", "log.roll.jitter.hours"],
        &[
            "log.retention.ms",
            "log.retention.minutes",
            "log.retention.hours",
        ],
    ];
    if name == "log.flush.interval.ms" {
        return vec!["log.flush.interval.ms", "log.flush.scheduler.interval.ms"];
    }
    GROUPS
        .iter()
        .find(|g| g.contains(&name))
        .map_or_else(|| vec![name], |g| g.to_vec())
}

impl Config {
    /// This (static) config with the dynamic broker configs laid over it: the typed fields
    /// of dynamic keys and `entries` (with `DynamicDefaultBroker` / `DynamicBroker` sources)
    /// are rebuilt through the same resolver as the static config, so values are checked and
    /// synonyms (`log.retention.ms` over `.hours`) resolve exactly as at start. Every other
    /// field is kept from `self`, including what was set after loading (bound ports, test
    /// directories). An invalid dynamic value is the resolver's error.
    pub fn with_dynamic(
        &self,
        cluster_default: Option<&IndexMap<String, String>>,
        per_broker: Option<&IndexMap<String, String>>,
    ) -> Result<Config, ConfigError> {
        let mut raw = Raw::new();
        for (key, entry) in &self.entries {
            let is_static = matches!(
                entry.source,
                ConfigSource::File | ConfigSource::Env | ConfigSource::Override
            );
            if let (true, Some(value)) = (is_static, &entry.value) {
                let origin = "static config".to_string();
                let (value, source) = (value.clone(), entry.source);
                raw.insert(
                    key.clone(),
                    RawValue {
                        value,
                        source,
                        origin,
                    },
                );
            }
        }
        let levels = [
            (
                cluster_default,
                ConfigSource::DynamicDefaultBroker,
                "cluster-default",
            ),
            (per_broker, ConfigSource::DynamicBroker, "per-broker"),
        ];
        for (configs, source, level) in levels {
            for (key, value) in configs.into_iter().flatten() {
                let origin = format!("dynamic {level} config");
                let value = value.clone();
                raw.insert(
                    key.clone(),
                    RawValue {
                        value,
                        source,
                        origin,
                    },
                );
            }
        }
        let (d, _warnings) = build(&raw, self.cluster_id.clone())?;
        Ok(Config {
            log_retention_ms: d.log_retention_ms,
            log_retention_bytes: d.log_retention_bytes,
            log_segment_bytes: d.log_segment_bytes,
            log_roll_ms: d.log_roll_ms,
            log_roll_jitter_ms: d.log_roll_jitter_ms,
            log_index_interval_bytes: d.log_index_interval_bytes,
            log_index_size_max_bytes: d.log_index_size_max_bytes,
            log_flush_interval_messages: d.log_flush_interval_messages,
            log_flush_interval_ms: d.log_flush_interval_ms,
            log_segment_delete_delay_ms: d.log_segment_delete_delay_ms,
            log_cleanup_policy: d.log_cleanup_policy,
            log_cleaner_backoff_ms: d.log_cleaner_backoff_ms,
            log_cleaner_delete_retention_ms: d.log_cleaner_delete_retention_ms,
            log_cleaner_min_compaction_lag_ms: d.log_cleaner_min_compaction_lag_ms,
            log_cleaner_max_compaction_lag_ms: d.log_cleaner_max_compaction_lag_ms,
            log_cleaner_min_cleanable_ratio: d.log_cleaner_min_cleanable_ratio,
            log_cleaner_threads: d.log_cleaner_threads,
            log_cleaner_dedupe_buffer_size: d.log_cleaner_dedupe_buffer_size,
            log_cleaner_io_buffer_load_factor: d.log_cleaner_io_buffer_load_factor,
            log_cleaner_io_max_bytes_per_second: d.log_cleaner_io_max_bytes_per_second,
            log_preallocate: d.log_preallocate,
            log_message_timestamp_type: d.log_message_timestamp_type,
            log_message_timestamp_before_max_ms: d.log_message_timestamp_before_max_ms,
            log_message_timestamp_after_max_ms: d.log_message_timestamp_after_max_ms,
            message_max_bytes: d.message_max_bytes,
            compression_type: d.compression_type,
            compression_gzip_level: d.compression_gzip_level,
            compression_lz4_level: d.compression_lz4_level,
            compression_zstd_level: d.compression_zstd_level,
            min_insync_replicas: d.min_insync_replicas,
            unclean_leader_election_enable: d.unclean_leader_election_enable,
            producer_id_expiration_ms: d.producer_id_expiration_ms,
            entries: d.entries,
            ..self.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::string_map as map;

    #[test]
    fn no_dynamic_configs_leaves_the_config_unchanged() {
        let dir = std::path::Path::new("/tmp/sluice-dynamic-test");
        let c = Config::for_test(dir);
        assert_eq!(c.with_dynamic(None, None).expect("rebuild"), c);
        let d = Config::default();
        assert_eq!(d.with_dynamic(None, None).expect("rebuild"), d);
    }

    #[test]
    fn per_broker_beats_cluster_default_beats_static() {
        let c = Config::default();
        let default = map(&[
            ("log.retention.ms", "1000"),
            ("log.segment.bytes", "2097152"),
        ]);
        let broker = map(&[("log.retention.ms", "5000")]);
        let d = c
            .with_dynamic(Some(&default), Some(&broker))
            .expect("valid");
        assert_eq!(d.log_retention_ms, 5000);
        assert_eq!(d.log_segment_bytes, 2_097_152);
        assert_eq!(
            d.entry("log.retention.ms").map(|e| e.source),
            Some(ConfigSource::DynamicBroker)
        );
        assert_eq!(
            d.entry("log.segment.bytes").map(|e| e.source),
            Some(ConfigSource::DynamicDefaultBroker)
        );
        assert_eq!(
            d.effective_topic_config(&IndexMap::new()).retention_ms,
            5000
        );
    }

    #[test]
    fn invalid_dynamic_value_is_the_resolver_error() {
        let bad = map(&[("log.segment.bytes", "10")]);
        let e = Config::default()
            .with_dynamic(Some(&bad), None)
            .unwrap_err();
        assert!(e.to_string().contains("log.segment.bytes"), "{e}");
    }

    #[test]
    fn only_primary_synonyms_are_dynamic_as_in_kafka() {
        assert!(is_dynamic_broker_config("log.retention.ms"));
        assert!(is_dynamic_broker_config("log.cleanup.policy"));
        assert!(is_dynamic_broker_config("message.max.bytes"));
        assert!(is_dynamic_broker_config("log.cleaner.threads"));
        assert!(!is_dynamic_broker_config("log.retention.hours"));
        assert!(!is_dynamic_broker_config("node.id"));
        assert!(!is_dynamic_broker_config("log.dirs"));
        assert_eq!(broker_config_synonyms("log.retention.hours").len(), 3);
        assert_eq!(
            broker_config_synonyms("num.partitions"),
            vec!["num.partitions"]
        );
    }
}
