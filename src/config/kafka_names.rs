//! The names Kafka 4.x brokers accept, so a stock `server.properties` loads and a typo does not.
//!
//! Source: the Kafka 4.0 broker configuration reference (`generated/kafka_config.html`, the
//! `#brokerconfigs` section of the documentation), plus the internal and dynamic-only names that
//! the Kafka source defines but the reference does not print, plus the names Kafka 4.0 removed
//! (ZooKeeper mode and the old message formats) so that a 3.x file still loads with a warning.

/// Every broker/controller config in the Kafka 4.0 reference, in the reference's order
/// (high, medium, then low importance).
pub const KAFKA_BROKER_CONFIG_NAMES: &[&str] = &[
    // importance: high
    "node.id",
    "process.roles",
    "add.partitions.to.txn.retry.backoff.max.ms",
    "add.partitions.to.txn.retry.backoff.ms",
    "advertised.listeners",
    "auto.create.topics.enable",
    "auto.leader.rebalance.enable",
    "background.threads",
    "broker.id",
    "compression.type",
    "controller.listener.names",
    "controller.quorum.bootstrap.servers",
    "controller.quorum.election.backoff.max.ms",
    "controller.quorum.election.timeout.ms",
    "controller.quorum.fetch.timeout.ms",
    "controller.quorum.voters",
    "delete.topic.enable",
    "early.start.listeners",
    "group.coordinator.threads",
    "leader.imbalance.check.interval.seconds",
    "listeners",
    "log.dir",
    "log.dirs",
    "log.flush.interval.messages",
    "log.flush.interval.ms",
    "log.flush.offset.checkpoint.interval.ms",
    "log.flush.scheduler.interval.ms",
    "log.flush.start.offset.checkpoint.interval.ms",
    "log.retention.bytes",
    "log.retention.hours",
    "log.retention.minutes",
    "log.retention.ms",
    "log.roll.hours",
    "log.roll.jitter.hours",
    "log.roll.jitter.ms",
    "log.roll.ms",
    "log.segment.bytes",
    "log.segment.delete.delay.ms",
    "message.max.bytes",
    "metadata.log.dir",
    "metadata.log.max.record.bytes.between.snapshots",
    "metadata.log.max.snapshot.interval.ms",
    "metadata.log.segment.bytes",
    "metadata.log.segment.ms",
    "metadata.max.retention.bytes",
    "metadata.max.retention.ms",
    "min.insync.replicas",
    "num.io.threads",
    "num.network.threads",
    "num.recovery.threads.per.data.dir",
    "num.replica.alter.log.dirs.threads",
    "num.replica.fetchers",
    "offset.metadata.max.bytes",
    "offsets.commit.timeout.ms",
    "offsets.load.buffer.size",
    "offsets.retention.check.interval.ms",
    "offsets.retention.minutes",
    "offsets.topic.compression.codec",
    "offsets.topic.num.partitions",
    "offsets.topic.replication.factor",
    "offsets.topic.segment.bytes",
    "queued.max.requests",
    "replica.fetch.min.bytes",
    "replica.fetch.wait.max.ms",
    "replica.high.watermark.checkpoint.interval.ms",
    "replica.lag.time.max.ms",
    "replica.socket.receive.buffer.bytes",
    "replica.socket.timeout.ms",
    "request.timeout.ms",
    "sasl.mechanism.controller.protocol",
    "share.coordinator.load.buffer.size",
    "share.coordinator.state.topic.compression.codec",
    "share.coordinator.state.topic.min.isr",
    "share.coordinator.state.topic.num.partitions",
    "share.coordinator.state.topic.replication.factor",
    "share.coordinator.state.topic.segment.bytes",
    "share.coordinator.write.timeout.ms",
    "socket.receive.buffer.bytes",
    "socket.request.max.bytes",
    "socket.send.buffer.bytes",
    "transaction.max.timeout.ms",
    "transaction.state.log.load.buffer.size",
    "transaction.state.log.min.isr",
    "transaction.state.log.num.partitions",
    "transaction.state.log.replication.factor",
    "transaction.state.log.segment.bytes",
    "transactional.id.expiration.ms",
    "unclean.leader.election.enable",
    // importance: medium
    "broker.heartbeat.interval.ms",
    "broker.rack",
    "broker.session.timeout.ms",
    "compression.gzip.level",
    "compression.lz4.level",
    "compression.zstd.level",
    "connections.max.idle.ms",
    "connections.max.reauth.ms",
    "controlled.shutdown.enable",
    "controller.quorum.append.linger.ms",
    "controller.quorum.request.timeout.ms",
    "controller.socket.timeout.ms",
    "default.replication.factor",
    "delegation.token.expiry.time.ms",
    "delegation.token.max.lifetime.ms",
    "delegation.token.secret.key",
    "delete.records.purgatory.purge.interval.requests",
    "fetch.max.bytes",
    "fetch.purgatory.purge.interval.requests",
    "group.consumer.assignors",
    "group.consumer.heartbeat.interval.ms",
    "group.consumer.max.heartbeat.interval.ms",
    "group.consumer.max.session.timeout.ms",
    "group.consumer.max.size",
    "group.consumer.migration.policy",
    "group.consumer.min.heartbeat.interval.ms",
    "group.consumer.min.session.timeout.ms",
    "group.consumer.session.timeout.ms",
    "group.coordinator.append.linger.ms",
    "group.coordinator.rebalance.protocols",
    "group.initial.rebalance.delay.ms",
    "group.max.session.timeout.ms",
    "group.max.size",
    "group.min.session.timeout.ms",
    "group.share.delivery.count.limit",
    "group.share.heartbeat.interval.ms",
    "group.share.max.groups",
    "group.share.max.heartbeat.interval.ms",
    "group.share.max.record.lock.duration.ms",
    "group.share.max.session.timeout.ms",
    "group.share.max.size",
    "group.share.min.heartbeat.interval.ms",
    "group.share.min.record.lock.duration.ms",
    "group.share.min.session.timeout.ms",
    "group.share.partition.max.record.locks",
    "group.share.record.lock.duration.ms",
    "group.share.session.timeout.ms",
    "initial.broker.registration.timeout.ms",
    "inter.broker.listener.name",
    "log.cleaner.backoff.ms",
    "log.cleaner.dedupe.buffer.size",
    "log.cleaner.delete.retention.ms",
    "log.cleaner.enable",
    "log.cleaner.io.buffer.load.factor",
    "log.cleaner.io.buffer.size",
    "log.cleaner.io.max.bytes.per.second",
    "log.cleaner.max.compaction.lag.ms",
    "log.cleaner.min.cleanable.ratio",
    "log.cleaner.min.compaction.lag.ms",
    "log.cleaner.threads",
    "log.cleanup.policy",
    "log.index.interval.bytes",
    "log.index.size.max.bytes",
    "log.local.retention.bytes",
    "log.local.retention.ms",
    "log.message.timestamp.after.max.ms",
    "log.message.timestamp.before.max.ms",
    "log.message.timestamp.type",
    "log.preallocate",
    "log.retention.check.interval.ms",
    "max.connection.creation.rate",
    "max.connections",
    "max.connections.per.ip",
    "max.connections.per.ip.overrides",
    "max.incremental.fetch.session.cache.slots",
    "max.request.partition.size.limit",
    "num.partitions",
    "principal.builder.class",
    "producer.purgatory.purge.interval.requests",
    "queued.max.request.bytes",
    "remote.fetch.max.wait.ms",
    "remote.list.offsets.request.timeout.ms",
    "remote.log.manager.copier.thread.pool.size",
    "remote.log.manager.copy.max.bytes.per.second",
    "remote.log.manager.copy.quota.window.num",
    "remote.log.manager.copy.quota.window.size.seconds",
    "remote.log.manager.expiration.thread.pool.size",
    "remote.log.manager.fetch.max.bytes.per.second",
    "remote.log.manager.fetch.quota.window.num",
    "remote.log.manager.fetch.quota.window.size.seconds",
    "remote.log.manager.thread.pool.size",
    "remote.log.metadata.manager.class.name",
    "remote.log.metadata.manager.class.path",
    "remote.log.metadata.manager.impl.prefix",
    "remote.log.metadata.manager.listener.name",
    "remote.log.reader.max.pending.tasks",
    "remote.log.reader.threads",
    "remote.log.storage.manager.class.name",
    "remote.log.storage.manager.class.path",
    "remote.log.storage.manager.impl.prefix",
    "remote.log.storage.system.enable",
    "replica.fetch.backoff.ms",
    "replica.fetch.max.bytes",
    "replica.fetch.response.max.bytes",
    "replica.selector.class",
    "sasl.client.callback.handler.class",
    "sasl.enabled.mechanisms",
    "sasl.jaas.config",
    "sasl.kerberos.kinit.cmd",
    "sasl.kerberos.min.time.before.relogin",
    "sasl.kerberos.principal.to.local.rules",
    "sasl.kerberos.service.name",
    "sasl.kerberos.ticket.renew.jitter",
    "sasl.kerberos.ticket.renew.window.factor",
    "sasl.login.callback.handler.class",
    "sasl.login.class",
    "sasl.login.refresh.buffer.seconds",
    "sasl.login.refresh.min.period.seconds",
    "sasl.login.refresh.window.factor",
    "sasl.login.refresh.window.jitter",
    "sasl.mechanism.inter.broker.protocol",
    "sasl.oauthbearer.jwks.endpoint.url",
    "sasl.oauthbearer.token.endpoint.url",
    "sasl.server.callback.handler.class",
    "sasl.server.max.receive.size",
    "security.inter.broker.protocol",
    "share.coordinator.append.linger.ms",
    "share.coordinator.snapshot.update.records.per.snapshot",
    "share.coordinator.threads",
    "share.fetch.purgatory.purge.interval.requests",
    "socket.connection.setup.timeout.max.ms",
    "socket.connection.setup.timeout.ms",
    "socket.listen.backlog.size",
    "ssl.cipher.suites",
    "ssl.client.auth",
    "ssl.enabled.protocols",
    "ssl.key.password",
    "ssl.keymanager.algorithm",
    "ssl.keystore.certificate.chain",
    "ssl.keystore.key",
    "ssl.keystore.location",
    "ssl.keystore.password",
    "ssl.keystore.type",
    "ssl.protocol",
    "ssl.provider",
    "ssl.trustmanager.algorithm",
    "ssl.truststore.certificates",
    "ssl.truststore.location",
    "ssl.truststore.password",
    "ssl.truststore.type",
    // importance: low
    "alter.config.policy.class.name",
    "alter.log.dirs.replication.quota.window.num",
    "alter.log.dirs.replication.quota.window.size.seconds",
    "authorizer.class.name",
    "client.quota.callback.class",
    "connection.failed.authentication.delay.ms",
    "controller.quorum.retry.backoff.ms",
    "controller.quota.window.num",
    "controller.quota.window.size.seconds",
    "create.topic.policy.class.name",
    "delegation.token.expiry.check.interval.ms",
    "kafka.metrics.polling.interval.secs",
    "kafka.metrics.reporters",
    "listener.security.protocol.map",
    "log.dir.failure.timeout.ms",
    "metadata.max.idle.interval.ms",
    "metric.reporters",
    "metrics.num.samples",
    "metrics.recording.level",
    "metrics.sample.window.ms",
    "producer.id.expiration.ms",
    "quota.window.num",
    "quota.window.size.seconds",
    "remote.log.index.file.cache.total.size.bytes",
    "remote.log.manager.task.interval.ms",
    "remote.log.metadata.custom.metadata.max.bytes",
    "replication.quota.window.num",
    "replication.quota.window.size.seconds",
    "sasl.login.connect.timeout.ms",
    "sasl.login.read.timeout.ms",
    "sasl.login.retry.backoff.max.ms",
    "sasl.login.retry.backoff.ms",
    "sasl.oauthbearer.clock.skew.seconds",
    "sasl.oauthbearer.expected.audience",
    "sasl.oauthbearer.expected.issuer",
    "sasl.oauthbearer.jwks.endpoint.refresh.ms",
    "sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms",
    "sasl.oauthbearer.jwks.endpoint.retry.backoff.ms",
    "sasl.oauthbearer.scope.claim.name",
    "sasl.oauthbearer.sub.claim.name",
    "security.providers",
    "ssl.allow.dn.changes",
    "ssl.allow.san.changes",
    "ssl.endpoint.identification.algorithm",
    "ssl.engine.factory.class",
    "ssl.principal.mapping.rules",
    "ssl.secure.random.implementation",
    "telemetry.max.bytes",
    "transaction.abort.timed.out.transaction.cleanup.interval.ms",
    "transaction.partition.verification.enable",
    "transaction.remove.expired.transaction.cleanup.interval.ms",
];

/// Names Kafka accepts that its reference does not print: internal configs (`defineInternal`),
/// dynamic-only broker configs, StandardAuthorizer and JmxReporter settings, config providers
/// (KIP-297), and `controller.quorum.auto.join.enable` (Kafka 4.1, KIP-853).
pub const KAFKA_OTHER_BROKER_CONFIG_NAMES: &[&str] = &[
    "metadata.log.segment.min.bytes",
    "server.max.startup.time.ms",
    "unclean.leader.election.interval.ms",
    "unstable.api.versions.enable",
    "unstable.feature.versions.enable",
    "log.initial.task.delay.ms",
    "producer.id.expiration.check.interval.ms",
    "remote.log.manager.task.retry.backoff.ms",
    "remote.log.manager.task.retry.backoff.max.ms",
    "remote.log.manager.task.retry.jitter",
    "group.share.enable",
    "share.fetch.max.fetch.records",
    "leader.replication.throttled.rate",
    "follower.replication.throttled.rate",
    "replica.alter.log.dirs.io.max.bytes.per.second",
    "super.users",
    "allow.everyone.if.no.acl.found",
    "metrics.jmx.include",
    "metrics.jmx.exclude",
    "config.providers",
    "controller.quorum.auto.join.enable",
];

/// Names Kafka 4.0 removed (ZooKeeper mode, message formats v0/v1, KIP-724 and friends). A file
/// written for Kafka 3.x still loads; these are named in a warning and ignored.
pub const KAFKA_REMOVED_BROKER_CONFIG_NAMES: &[&str] = &[
    "broker.id.generation.enable",
    "reserved.broker.max.id",
    "control.plane.listener.name",
    "inter.broker.protocol.version",
    "log.message.format.version",
    "log.message.downconversion.enable",
    "log.message.timestamp.difference.max.ms",
    "offsets.commit.required.acks",
    "controlled.shutdown.max.retries",
    "controlled.shutdown.retry.backoff.ms",
    "auto.include.jmx.reporter",
    "delegation.token.master.key",
    "quota.consumer.default",
    "quota.producer.default",
    "group.coordinator.new.enable",
    "host.name",
    "port",
    "advertised.host.name",
    "advertised.port",
];

/// Prefixes of removed config families (`zookeeper.connect`, `zookeeper.ssl.*`,
/// `zookeeper.metadata.migration.enable`, `password.encoder.*`).
pub const KAFKA_REMOVED_BROKER_CONFIG_PREFIXES: &[&str] = &["zookeeper.", "password.encoder."];

/// Prefix families Kafka passes through: per-listener overrides (`listener.name.<l>.<config>`,
/// `listener.name.<l>.<mechanism>.sasl.jaas.config`), config provider parameters
/// (`config.providers.<name>.class` / `.param.*`), metrics context labels (KIP-606), tiered
/// storage plugin configs under the default `rsm.config.` / `rlmm.config.` prefixes, and log4j
/// settings some deployments keep next to broker settings.
pub const KAFKA_ACCEPTED_CONFIG_PREFIXES: &[&str] = &[
    "listener.name.",
    "config.providers.",
    "metrics.context.",
    "rsm.config.",
    "rlmm.config.",
    "log4j.",
];

/// Environment variables the Kafka launch scripts and container image read for the JVM and the
/// scripts themselves; they never become broker configs.
pub const KAFKA_LAUNCHER_ENV_VARS: &[&str] = &[
    "KAFKA_HEAP_OPTS",
    "KAFKA_JVM_PERFORMANCE_OPTS",
    "KAFKA_OPTS",
    "KAFKA_LOG4J_OPTS",
    "KAFKA_LOG4J_CMD_OPTS",
    "KAFKA_GC_LOG_OPTS",
    "KAFKA_JMX_OPTS",
    "KAFKA_JMX_PORT",
    "KAFKA_JMX_HOSTNAME",
    "KAFKA_DEBUG",
    "KAFKA_MODE",
    "KAFKA_VERSION",
    "KAFKA_LOG4J_ROOT_LOGLEVEL",
    "KAFKA_LOG4J_LOGGERS",
    "KAFKA_TOOLS_LOG4J_LOGLEVEL",
    "KAFKA_STREAMS_TEST_VERSION",
];

/// Config names whose Kafka type is PASSWORD: never logged, never returned by DescribeConfigs.
pub const KAFKA_PASSWORD_CONFIG_NAMES: &[&str] = &[
    "delegation.token.secret.key",
    "delegation.token.master.key",
    "sasl.jaas.config",
    "ssl.key.password",
    "ssl.keystore.certificate.chain",
    "ssl.keystore.key",
    "ssl.keystore.password",
    "ssl.truststore.certificates",
    "ssl.truststore.password",
    "password.encoder.secret",
    "password.encoder.old.secret",
];

/// How a key is known to Kafka.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KafkaKeyKind {
    /// A Kafka 4.x broker/controller config (documented or internal).
    Broker,
    /// A member of a prefix family Kafka passes through.
    PrefixFamily,
    /// Removed in Kafka 4.0.
    Removed,
}

/// Classifies a key Sluice does not interpret; `None` means Kafka does not know it either.
pub fn classify_kafka_key(key: &str) -> Option<KafkaKeyKind> {
    if KAFKA_BROKER_CONFIG_NAMES.contains(&key) || KAFKA_OTHER_BROKER_CONFIG_NAMES.contains(&key) {
        return Some(KafkaKeyKind::Broker);
    }
    if KAFKA_REMOVED_BROKER_CONFIG_NAMES.contains(&key)
        || KAFKA_REMOVED_BROKER_CONFIG_PREFIXES
            .iter()
            .any(|p| key.starts_with(p))
    {
        return Some(KafkaKeyKind::Removed);
    }
    if KAFKA_ACCEPTED_CONFIG_PREFIXES
        .iter()
        .any(|p| key.starts_with(p) && key.len() > p.len())
    {
        return Some(KafkaKeyKind::PrefixFamily);
    }
    None
}

/// True when the value of `key` is a secret (also under a `listener.name.` prefix).
pub fn is_sensitive_config(key: &str) -> bool {
    KAFKA_PASSWORD_CONFIG_NAMES
        .iter()
        .any(|name| key == *name || key.ends_with(&format!(".{name}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_name_list_has_no_duplicates() {
        let mut all: Vec<&str> = KAFKA_BROKER_CONFIG_NAMES
            .iter()
            .chain(KAFKA_OTHER_BROKER_CONFIG_NAMES)
            .chain(KAFKA_REMOVED_BROKER_CONFIG_NAMES)
            .copied()
            .collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n, "a config name is listed twice");
    }

    #[test]
    fn classify_knows_documented_removed_and_prefixed_keys() {
        assert_eq!(
            classify_kafka_key("num.network.threads"),
            Some(KafkaKeyKind::Broker)
        );
        assert_eq!(
            classify_kafka_key("zookeeper.connect"),
            Some(KafkaKeyKind::Removed)
        );
        assert_eq!(
            classify_kafka_key("listener.name.internal.ssl.keystore.location"),
            Some(KafkaKeyKind::PrefixFamily)
        );
        assert_eq!(classify_kafka_key("listener.name."), None);
        assert_eq!(classify_kafka_key("num.partitons"), None);
    }

    #[test]
    fn password_configs_are_sensitive_also_with_listener_prefix() {
        assert!(is_sensitive_config("ssl.keystore.password"));
        assert!(is_sensitive_config(
            "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config"
        ));
        assert!(!is_sensitive_config("ssl.keystore.location"));
    }
}
