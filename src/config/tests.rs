//! Tests of command line, file, environment and override resolution into `Config`.

use super::*;

/// Kafka 4.0's stock KRaft `config/server.properties` (comments abridged, keys verbatim).
const KAFKA_4_SERVER_PROPERTIES: &str = r#"# Licensed to the Apache Software Foundation (ASF) under one or more
# contributor license agreements.

############################# Server Basics #############################

# The role of this server. Setting this puts us in KRaft mode
process.roles=broker,controller

# The node id associated with this instance's roles
node.id=1

# List of controller endpoints used connect to the controller cluster
controller.quorum.bootstrap.servers=localhost:9093

############################# Socket Server Settings #############################

# The address the socket server listens on.
#   FORMAT:
#     listeners = listener_name://host_name:port
#   EXAMPLE:
#     listeners = PLAINTEXT://your.host.name:9092
listeners=PLAINTEXT://:9092,CONTROLLER://:9093

# Name of listener used for communication between brokers.
inter.broker.listener.name=PLAINTEXT

# Listener name, hostname and port the broker or the controller will advertise to clients.
# If not set, it uses the value for "listeners".
advertised.listeners=PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093

# A comma-separated list of the names of the listeners used by the controller.
# If no explicit mapping set in `listener.security.protocol.map`, default will be using PLAINTEXT protocol
# This is required if running in KRaft mode.
controller.listener.names=CONTROLLER

# Maps listener names to security protocols, the default is for them to be the same. See the config documentation for more details
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL

# The number of threads that the server uses for receiving requests from the network and sending responses to the network
num.network.threads=3

# The number of threads that the server uses for processing requests, which may include disk I/O
num.io.threads=8

# The send buffer (SO_SNDBUF) used by the socket server
socket.send.buffer.bytes=102400

# The receive buffer (SO_RCVBUF) used by the socket server
socket.receive.buffer.bytes=102400

# The maximum size of a request that the socket server will accept (protection against OOM)
socket.request.max.bytes=104857600


############################# Log Basics #############################

# A comma separated list of directories under which to store log files
log.dirs=/tmp/kraft-combined-logs

# The default number of log partitions per topic.
num.partitions=1

# The number of threads per data directory to be used for log recovery at startup and flushing at shutdown.
num.recovery.threads.per.data.dir=1

############################# Internal Topic Settings  #############################
# The replication factor for the group metadata internal topics "__consumer_offsets", "__share_group_state" and "__transaction_state"
offsets.topic.replication.factor=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1

############################# Log Flush Policy #############################

# The number of messages to accept before forcing a flush of data to disk
#log.flush.interval.messages=10000

# The maximum amount of time a message can sit in a log before we force a flush
#log.flush.interval.ms=1000

############################# Log Retention Policy #############################

# The minimum age of a log file to be eligible for deletion due to age
log.retention.hours=168

# A size-based retention policy for logs.
#log.retention.bytes=1073741824

# The maximum size of a log segment file. When this size is reached a new log segment will be created.
log.segment.bytes=1073741824

# The interval at which log segments are checked to see if they can be deleted according
# to the retention policies
log.retention.check.interval.ms=300000
"#;

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn load(a: &[&str], e: &[(&str, &str)]) -> Result<LoadedConfig, ConfigError> {
    parse_args(args(a), &env(e))
}

fn write_props(dir: &tempfile::TempDir, text: &str) -> String {
    let path = dir.path().join("server.properties");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn with_file(text: &str, extra: &[&str], e: &[(&str, &str)]) -> Result<LoadedConfig, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = write_props(&dir, text);
    let mut a = vec![path.as_str()];
    a.extend_from_slice(extra);
    load(&a, e)
}

#[test]
fn zero_config_defaults_match_kafka_and_sluice_choices() {
    let c = Config::default();
    assert_eq!(c.node_id, 1);
    assert_eq!(
        c.process_roles,
        ProcessRoles {
            broker: true,
            controller: true
        }
    );
    assert_eq!(c.listeners.len(), 1);
    assert_eq!(c.listeners[0].name, "PLAINTEXT");
    assert_eq!(c.listeners[0].host, "");
    assert_eq!(c.listeners[0].port, 9092);
    assert_eq!(c.advertised_listeners[0].host, "127.0.0.1");
    assert_eq!(c.advertised_listeners[0].port, 9092);
    assert_eq!(c.inter_broker_listener_name, "PLAINTEXT");
    assert_eq!(c.log_dirs, vec![PathBuf::from("./sluice-data")]);
    assert_eq!(c.num_partitions, 1);
    assert_eq!(c.default_replication_factor, 1);
    assert!(c.auto_create_topics_enable);
    assert_eq!(c.log_retention_ms, 168 * 3_600_000);
    assert_eq!(c.log_retention_bytes, -1);
    assert_eq!(c.log_segment_bytes, 1_073_741_824);
    assert_eq!(c.log_roll_ms, 168 * 3_600_000);
    assert_eq!(c.log_index_interval_bytes, 4096);
    assert_eq!(c.log_index_size_max_bytes, 10_485_760);
    assert_eq!(c.message_max_bytes, 1_048_588);
    assert_eq!(c.socket_request_max_bytes, 104_857_600);
    assert_eq!(c.log_flush_interval_messages, i64::MAX);
    assert_eq!(c.log_flush_interval_ms, None);
    assert_eq!(c.effective_log_flush_interval_ms(), i64::MAX);
    assert_eq!(c.connections_max_idle_ms, 600_000);
    assert_eq!(c.max_connections, i32::MAX);
    assert_eq!(c.max_connections_per_ip, i32::MAX);
    assert_eq!(c.queued_max_request_bytes, -1);
    assert_eq!(c.queued_max_requests, 500);
    assert_eq!(c.log_message_timestamp_type, TimestampType::CreateTime);
    assert_eq!(c.cluster_id, None);
    assert_eq!(c.offsets_topic_num_partitions, 50);
    assert_eq!(c.group_min_session_timeout_ms, 6000);
    assert_eq!(c.group_max_session_timeout_ms, 1_800_000);
    assert_eq!(c.max_inflight_requests_per_connection, 100);
    assert_eq!(c.compression_type, BrokerCompressionType::Producer);
    assert_eq!(c.log_cleanup_policy, CleanupPolicy::DELETE);
    let e = c.entry("num.partitions").unwrap();
    assert_eq!(e.value.as_deref(), Some("1"));
    assert_eq!(e.source, ConfigSource::Default);
    assert_eq!(e.source.describe_configs_source(), 5);
    assert_eq!(c.entry("log.retention.ms").unwrap().value, None);
}

#[test]
fn no_arguments_and_empty_environment_load_without_warnings() {
    let loaded = load(&[], &[]).unwrap();
    assert_eq!(loaded.config, Config::default());
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert!(loaded.infos.is_empty());
}

#[test]
fn stock_kafka_4_server_properties_loads_with_one_warning_naming_unused_keys() {
    let loaded = with_file(KAFKA_4_SERVER_PROPERTIES, &[], &[]).unwrap();
    let c = &loaded.config;
    assert_eq!(c.node_id, 1);
    assert_eq!(c.listeners.len(), 2);
    assert_eq!(c.controller_listener_names, vec!["CONTROLLER".to_string()]);
    assert_eq!(
        c.advertised_listeners[0].to_string(),
        "PLAINTEXT://localhost:9092"
    );
    assert_eq!(
        c.advertised_broker_listeners()
            .map(|l| l.name.as_str())
            .collect::<Vec<_>>(),
        vec!["PLAINTEXT"]
    );
    assert_eq!(c.inter_broker_listener().unwrap().port, 9092);
    assert_eq!(
        c.controller_quorum_bootstrap_servers,
        vec![("localhost".to_string(), 9093)]
    );
    assert_eq!(c.log_dirs, vec![PathBuf::from("/tmp/kraft-combined-logs")]);
    assert_eq!(c.log_retention_ms, 604_800_000);
    assert_eq!(c.num_recovery_threads_per_data_dir, 1);
    assert_eq!(c.transaction_state_log_min_isr, 1);
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    let w = &loaded.warnings[0];
    for key in [
        "num.network.threads",
        "num.io.threads",
        "share.coordinator.state.topic.replication.factor",
        "share.coordinator.state.topic.min.isr",
    ] {
        assert!(w.contains(key), "warning does not name {key}: {w}");
    }
    assert!(!w.contains("log.dirs"), "used key reported unused: {w}");
    assert!(c.is_set("log.dirs") && !c.is_set("message.max.bytes"));
    let e = c.entry("num.io.threads").unwrap();
    assert_eq!(e.value.as_deref(), Some("8"));
    assert_eq!(e.source, ConfigSource::File);
}

#[test]
fn typo_key_is_an_error_naming_it_and_suggesting_the_real_one() {
    let err = with_file("num.partitons=3\n", &[], &[]).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ConfigError::UnknownKey { .. }), "{err:?}");
    assert!(msg.contains("num.partitons"), "{msg}");
    assert!(msg.contains("'3'"), "{msg}");
    assert!(msg.contains("did you mean 'num.partitions'"), "{msg}");
    assert!(msg.contains("server.properties:1"), "{msg}");
}

#[test]
fn unknown_sluice_key_is_an_error() {
    let err = load(&["--override", "sluice.max.inflight=5"], &[]).unwrap_err();
    assert!(matches!(err, ConfigError::UnknownKey { ref key, .. } if key == "sluice.max.inflight"));
}

#[test]
fn bad_values_are_errors_naming_key_and_value() {
    for (kv, key, value) in [
        ("num.partitions=zero", "num.partitions", "zero"),
        ("num.partitions=0", "num.partitions", "0"),
        (
            "auto.create.topics.enable=maybe",
            "auto.create.topics.enable",
            "maybe",
        ),
        (
            "message.max.bytes=2147483648",
            "message.max.bytes",
            "2147483648",
        ),
        ("log.segment.bytes=1000", "log.segment.bytes", "1000"),
        (
            "log.message.timestamp.type=Now",
            "log.message.timestamp.type",
            "Now",
        ),
        ("listeners=localhost:9092", "listeners", "localhost:9092"),
        (
            "listeners=PLAINTEXT://:99999",
            "listeners",
            "PLAINTEXT://:99999",
        ),
        ("num.network.threads=three", "num.network.threads", "three"),
        ("log.cleaner.enable=on", "log.cleaner.enable", "on"),
    ] {
        let err = load(&["--override", kv], &[]).unwrap_err();
        match &err {
            ConfigError::InvalidValue {
                key: k, value: v, ..
            } => {
                assert_eq!(k, key);
                assert_eq!(v, value);
            }
            other => panic!("{kv}: expected InvalidValue, got {other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains(key) && msg.contains("--override"), "{msg}");
    }
}

#[test]
fn invalid_value_message_has_kafka_wording() {
    let err = load(&["--override", "num.partitions=0"], &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Invalid value 0 for configuration num.partitions: Value must be at least 1 \
         (--override num.partitions)"
    );
}

#[test]
fn password_values_are_hidden_in_errors() {
    let err = load(&["--override", "ssl.keystore.passwrd=hunter2"], &[]).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("ssl.keystore.passwrd") && !msg.contains("hunter2"),
        "{msg}"
    );
    let err = load(&["--override", "ssl.keystore.password.x=hunter2"], &[]).unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[test]
fn env_var_names_map_like_the_kafka_container_image() {
    assert_eq!(
        env_var_to_config_key("KAFKA_ADVERTISED_LISTENERS").as_deref(),
        Some("advertised.listeners")
    );
    assert_eq!(
        env_var_to_config_key("KAFKA_LISTENER_NAME_SASL__SSL_SASL_ENABLED_MECHANISMS").as_deref(),
        Some("listener.name.sasl_ssl.sasl.enabled.mechanisms")
    );
    assert_eq!(
        env_var_to_config_key("KAFKA_LISTENER_NAME_X_SCRAM___SHA___256_SASL_JAAS_CONFIG")
            .as_deref(),
        Some("listener.name.x.scram-sha-256.sasl.jaas.config")
    );
    assert_eq!(env_var_to_config_key("KAFKA_"), None);
    assert_eq!(env_var_to_config_key("PATH"), None);
}

#[test]
fn env_vars_set_configs_cluster_id_and_ignore_jvm_options() {
    let loaded = load(
        &[],
        &[
            ("KAFKA_NUM_PARTITIONS", "6"),
            ("KAFKA_ADVERTISED_LISTENERS", "PLAINTEXT://broker-1:9092"),
            ("KAFKA_SLUICE_MAX_INFLIGHT_REQUESTS_PER_CONNECTION", "7"),
            ("CLUSTER_ID", "MkU3OEVBNTcwNTJENDM2Qk"),
            ("KAFKA_HEAP_OPTS", "-Xmx1G"),
            ("KAFKA_OPTS", "-Dfoo"),
            ("KAFKA_JMX_OPTS", "-Dbar"),
            ("KAFKA_SERVICE_HOST", "10.0.0.1"),
            ("KAFKA_PORT", "tcp://10.0.0.1:9092"),
            ("KAFKA_LOG_RETENTION_MS", ""),
            ("PATH", "/usr/bin"),
        ],
    )
    .unwrap();
    let c = &loaded.config;
    assert_eq!(c.num_partitions, 6);
    assert_eq!(c.advertised_listeners[0].host, "broker-1");
    assert_eq!(c.max_inflight_requests_per_connection, 7);
    assert_eq!(c.cluster_id.as_deref(), Some("MkU3OEVBNTcwNTJENDM2Qk"));
    assert_eq!(
        c.log_retention_ms, 604_800_000,
        "empty env value counts as unset"
    );
    assert_eq!(c.entry("num.partitions").unwrap().source, ConfigSource::Env);
    assert_eq!(loaded.infos.len(), 1);
    for var in [
        "KAFKA_HEAP_OPTS",
        "KAFKA_OPTS",
        "KAFKA_JMX_OPTS",
        "KAFKA_SERVICE_HOST",
    ] {
        assert!(loaded.infos[0].contains(var), "{}", loaded.infos[0]);
    }
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn unknown_env_key_is_an_error_naming_the_variable() {
    let err = load(&[], &[("KAFKA_NUM_PARTITONS", "3")]).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("num.partitons") && msg.contains("KAFKA_NUM_PARTITONS"),
        "{msg}"
    );
}

#[test]
fn precedence_is_defaults_then_file_then_env_then_override() {
    let file = "num.partitions=2\nlog.retention.bytes=100\nmessage.max.bytes=5000\n";
    let e = [
        ("KAFKA_NUM_PARTITIONS", "3"),
        ("KAFKA_MESSAGE_MAX_BYTES", "6000"),
    ];

    let loaded = with_file(file, &[], &e).unwrap();
    assert_eq!(loaded.config.num_partitions, 3, "env beats file");
    assert_eq!(loaded.config.log_retention_bytes, 100, "file beats default");
    assert_eq!(loaded.config.message_max_bytes, 6000);
    assert_eq!(
        loaded.config.entry("log.retention.bytes").unwrap().source,
        ConfigSource::File
    );

    let loaded = with_file(file, &["--override", "num.partitions=4"], &e).unwrap();
    assert_eq!(loaded.config.num_partitions, 4, "override beats env");
    assert_eq!(
        loaded.config.entry("num.partitions").unwrap().source,
        ConfigSource::Override
    );
    assert_eq!(loaded.config.message_max_bytes, 6000);
}

#[test]
fn overrides_accept_both_spellings_and_reject_malformed() {
    let loaded = load(
        &[
            "--override",
            "num.partitions=3",
            "--override=log.segment.bytes=2097152",
        ],
        &[],
    )
    .unwrap();
    assert_eq!(loaded.config.num_partitions, 3);
    assert_eq!(loaded.config.log_segment_bytes, 2_097_152);
    assert!(matches!(
        load(&["--override", "num.partitions"], &[]),
        Err(ConfigError::Usage(_))
    ));
    assert!(matches!(
        load(&["--override"], &[]),
        Err(ConfigError::Usage(_))
    ));
    assert!(matches!(
        load(&["--bogus"], &[]),
        Err(ConfigError::Usage(_))
    ));
    assert!(matches!(
        load(&["a.properties", "b.properties"], &[]),
        Err(ConfigError::Usage(_))
    ));
}

#[test]
fn help_and_version_are_informational() {
    let err = load(&["--help"], &[]).unwrap_err();
    assert!(err.is_informational());
    assert!(err.to_string().contains("USAGE: sluice"));
    let err = load(&["x.properties", "--version"], &[]).unwrap_err();
    assert!(matches!(err, ConfigError::Version(_)));
    assert!(!load(&["--bogus"], &[]).unwrap_err().is_informational());
}

#[test]
fn missing_file_is_an_io_error_naming_the_path() {
    let err = load(&["/nonexistent/sluice/server.properties"], &[]).unwrap_err();
    assert!(matches!(err, ConfigError::Io { .. }));
    assert!(err
        .to_string()
        .contains("/nonexistent/sluice/server.properties"));
}

#[test]
fn properties_syntax_edge_cases_load_through_the_file() {
    let text = "# comment\n! other comment\nlisteners = PLAINTEXT://:9092,\\\n    SSL://:9093\n\
                num.partitions: 4\nlog.retention.bytes 1000\nlog.dirs=/data/a,\\\n  /data/b\n";
    let c = with_file(text, &[], &[]).unwrap().config;
    assert_eq!(c.listeners.len(), 2);
    assert_eq!(c.listeners[1].security_protocol, SecurityProtocol::Ssl);
    assert_eq!(c.num_partitions, 4);
    assert_eq!(c.log_retention_bytes, 1000);
    assert_eq!(
        c.log_dirs,
        vec![PathBuf::from("/data/a"), PathBuf::from("/data/b")]
    );
}

#[test]
fn values_are_trimmed_like_kafka() {
    let c = with_file("num.partitions = 5   \n", &[], &[])
        .unwrap()
        .config;
    assert_eq!(c.num_partitions, 5);
    assert_eq!(
        c.entry("num.partitions").unwrap().value.as_deref(),
        Some("5")
    );
}

#[test]
fn retention_resolves_ms_then_minutes_then_hours() {
    let get = |kvs: &[&str]| {
        let mut a = Vec::new();
        for kv in kvs {
            a.push("--override");
            a.push(kv);
        }
        load(&a, &[]).map(|l| l.config.log_retention_ms)
    };
    assert_eq!(get(&[]).unwrap(), 168 * 3_600_000);
    assert_eq!(get(&["log.retention.hours=1"]).unwrap(), 3_600_000);
    assert_eq!(
        get(&["log.retention.hours=1", "log.retention.minutes=5"]).unwrap(),
        300_000
    );
    assert_eq!(
        get(&[
            "log.retention.hours=1",
            "log.retention.minutes=5",
            "log.retention.ms=1234"
        ])
        .unwrap(),
        1234
    );
    assert_eq!(get(&["log.retention.ms=-1"]).unwrap(), -1);
    assert_eq!(get(&["log.retention.hours=-5"]).unwrap(), -1);
    assert!(get(&["log.retention.ms=0"]).is_err());
    assert!(get(&["log.retention.minutes=x"]).is_err());
}

#[test]
fn roll_and_flush_resolve_like_kafka() {
    let c = load(&["--override", "log.roll.hours=2"], &[])
        .unwrap()
        .config;
    assert_eq!(c.log_roll_ms, 7_200_000);
    let c = load(
        &[
            "--override",
            "log.roll.hours=2",
            "--override",
            "log.roll.ms=99",
        ],
        &[],
    )
    .unwrap()
    .config;
    assert_eq!(c.log_roll_ms, 99);
    assert!(load(&["--override", "log.roll.hours=0"], &[]).is_err());
    let c = load(&["--override", "log.flush.interval.ms=1000"], &[])
        .unwrap()
        .config;
    assert_eq!(c.log_flush_interval_ms, Some(1000));
    assert_eq!(c.topic_config_default("flush.ms").as_deref(), Some("1000"));
}

#[test]
fn log_dir_is_used_when_log_dirs_is_unset() {
    let c = load(&["--override", "log.dir=/var/sluice"], &[])
        .unwrap()
        .config;
    assert_eq!(c.log_dirs, vec![PathBuf::from("/var/sluice")]);
    let c = load(
        &[
            "--override",
            "log.dir=/var/a",
            "--override",
            "log.dirs=/var/b",
        ],
        &[],
    )
    .unwrap()
    .config;
    assert_eq!(c.log_dirs, vec![PathBuf::from("/var/b")]);
    assert!(load(&["--override", "log.dirs=/a,/a"], &[]).is_err());
}

#[test]
fn listener_configuration_is_validated() {
    // Advertised wildcard is rejected, as in Kafka.
    assert!(load(
        &[
            "--override",
            "advertised.listeners=PLAINTEXT://0.0.0.0:9092"
        ],
        &[]
    )
    .is_err());
    // Advertised name must exist in listeners.
    assert!(load(&["--override", "advertised.listeners=SSL://h:9093"], &[]).is_err());
    // Custom listener names need the protocol map.
    assert!(load(&["--override", "listeners=INTERNAL://:9092"], &[]).is_err());
    let c = load(
        &[
            "--override",
            "listeners=INTERNAL://:9092,EXTERNAL://0.0.0.0:19092",
            "--override",
            "listener.security.protocol.map=INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT",
            "--override",
            "inter.broker.listener.name=INTERNAL",
            "--override",
            "advertised.listeners=INTERNAL://kafka:9092,EXTERNAL://localhost:19092",
        ],
        &[],
    )
    .unwrap()
    .config;
    assert_eq!(c.inter_broker_listener_name, "INTERNAL");
    assert_eq!(c.inter_broker_listener().unwrap().host, "kafka");
    assert_eq!(c.listeners[1].bind_address(), "0.0.0.0:19092");
    // Without inter.broker.listener.name there is no PLAINTEXT listener: Kafka's error.
    let err = load(
        &[
            "--override",
            "listeners=INTERNAL://:9092",
            "--override",
            "listener.security.protocol.map=INTERNAL:PLAINTEXT",
        ],
        &[],
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("inter.broker.listener.name"),
        "{err}"
    );
    // Both inter-broker settings at once is an error.
    assert!(load(
        &[
            "--override",
            "inter.broker.listener.name=PLAINTEXT",
            "--override",
            "security.inter.broker.protocol=PLAINTEXT"
        ],
        &[]
    )
    .is_err());
}

#[test]
fn broker_only_role_needs_controller_listener_names() {
    let err = load(&["--override", "process.roles=broker"], &[]).unwrap_err();
    assert!(
        err.to_string().contains("controller.listener.names"),
        "{err}"
    );
    let c = load(
        &[
            "--override",
            "process.roles=broker",
            "--override",
            "controller.listener.names=CONTROLLER",
            "--override",
            "controller.quorum.voters=1@c1:9093,2@c2:9093",
        ],
        &[],
    )
    .unwrap()
    .config;
    assert!(c.process_roles.broker && !c.process_roles.controller);
    assert_eq!(
        c.listener_security_protocol_map.get("CONTROLLER"),
        Some(&SecurityProtocol::Plaintext)
    );
    assert_eq!(c.controller_quorum_voters.len(), 2);
    assert!(load(&["--override", "process.roles=broker,broker"], &[]).is_err());
    assert!(load(&["--override", "process.roles=worker"], &[]).is_err());
}

#[test]
fn node_id_falls_back_to_broker_id_and_must_agree() {
    let c = load(&["--override", "broker.id=7"], &[]).unwrap().config;
    assert_eq!(c.node_id, 7);
    assert_eq!(c.entry("node.id").unwrap().value.as_deref(), Some("7"));
    assert!(load(
        &["--override", "broker.id=7", "--override", "node.id=8"],
        &[]
    )
    .is_err());
    assert!(load(&["--override", "node.id=-1"], &[]).is_err());
}

#[test]
fn removed_kafka_3_keys_load_with_a_separate_warning() {
    let loaded = with_file(
        "zookeeper.connect=localhost:2181\nlog.message.format.version=3.0\nnum.io.threads=8\n",
        &[],
        &[],
    )
    .unwrap();
    assert_eq!(loaded.warnings.len(), 2, "{:?}", loaded.warnings);
    assert!(loaded.warnings[1].contains("zookeeper.connect"));
    assert!(loaded.warnings[1].contains("log.message.format.version"));
    assert!(loaded.warnings[0].contains("num.io.threads"));
}

#[test]
fn prefix_families_are_accepted_and_reported() {
    let loaded = load(
        &[
            "--override",
            "listener.name.plaintext.max.connections=10",
            "--override",
            "config.providers.file.class=org.apache.kafka.common.config.provider.FileConfigProvider",
        ],
        &[],
    )
    .unwrap();
    assert!(loaded.warnings[0].contains("listener.name.plaintext.max.connections"));
    assert!(loaded.warnings[0].contains("config.providers.file.class"));
}

#[test]
fn sensitive_entries_are_marked() {
    let c = load(&["--override", "ssl.keystore.password=pw"], &[])
        .unwrap()
        .config;
    assert!(c.entry("ssl.keystore.password").unwrap().sensitive);
    assert!(!c.entry("num.partitions").unwrap().sensitive);
}

#[test]
fn cross_field_checks_reject_inconsistent_group_timeouts() {
    assert!(load(
        &[
            "--override",
            "group.min.session.timeout.ms=10000",
            "--override",
            "group.max.session.timeout.ms=5000"
        ],
        &[]
    )
    .is_err());
}

#[test]
fn for_test_binds_loopback_ephemeral_port_and_can_learn_the_bound_port() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Config::for_test(dir.path());
    assert_eq!(c.listeners[0].bind_address(), "127.0.0.1:0");
    assert_eq!(c.log_dirs, vec![dir.path().to_path_buf()]);
    c.resolve_ephemeral_port("PLAINTEXT", 40123);
    assert_eq!(c.listeners[0].port, 40123);
    assert_eq!(
        c.advertised_listeners[0].to_string(),
        "PLAINTEXT://127.0.0.1:40123"
    );
    assert_eq!(c.metadata_log_dir(), dir.path());
}

#[test]
fn topic_config_defaults_follow_broker_settings() {
    let c = load(
        &[
            "--override",
            "log.segment.bytes=2097152",
            "--override",
            "log.retention.minutes=10",
            "--override",
            "message.max.bytes=2000000",
            "--override",
            "log.cleanup.policy=compact,delete",
            "--override",
            "log.local.retention.ms=1000",
        ],
        &[],
    )
    .unwrap()
    .config;
    assert_eq!(
        c.topic_config_default("segment.bytes").as_deref(),
        Some("2097152")
    );
    assert_eq!(
        c.topic_config_default("retention.ms").as_deref(),
        Some("600000")
    );
    assert_eq!(
        c.topic_config_default("max.message.bytes").as_deref(),
        Some("2000000")
    );
    assert_eq!(
        c.topic_config_default("cleanup.policy").as_deref(),
        Some("compact,delete")
    );
    assert_eq!(
        c.topic_config_default("local.retention.ms").as_deref(),
        Some("1000")
    );
    assert_eq!(
        c.topic_config_default("remote.storage.enable").as_deref(),
        Some("false")
    );
    assert_eq!(
        c.topic_config_default("flush.messages").as_deref(),
        Some("9223372036854775807")
    );
    assert_eq!(c.topic_config_default("not.a.config"), None);
    for name in topic_config_names() {
        let d = c.topic_config_default(name).unwrap();
        validate_topic_config(name, &d).unwrap_or_else(|e| panic!("{name}={d}: {e}"));
    }
}

#[test]
fn effective_topic_config_prefers_topic_values_over_broker_defaults() {
    let c = Config::default();
    let mut t = IndexMap::new();
    t.insert("segment.bytes".to_string(), "1048576".to_string());
    t.insert("retention.ms".to_string(), "-1".to_string());
    t.insert(
        "message.timestamp.type".to_string(),
        "LogAppendTime".to_string(),
    );
    t.insert("cleanup.policy".to_string(), "compact".to_string());
    t.insert("flush.messages".to_string(), "1".to_string());
    t.insert("max.message.bytes".to_string(), "garbage".to_string());
    let e = c.effective_topic_config(&t);
    assert_eq!(e.segment_bytes, 1_048_576);
    assert_eq!(e.retention_ms, -1);
    assert_eq!(e.message_timestamp_type, TimestampType::LogAppendTime);
    assert!(e.cleanup_policy.compact && !e.cleanup_policy.delete);
    assert_eq!(e.flush_messages, 1);
    assert_eq!(e.max_message_bytes, 1_048_588, "bad value falls back");
    assert_eq!(e.segment_ms, c.log_roll_ms);
    assert_eq!(e.flush_ms, i64::MAX);
    assert_eq!(e.retention_bytes, -1);
    assert_eq!(e.min_insync_replicas, 1);
    assert_eq!(e.compression_type, BrokerCompressionType::Producer);
}

#[test]
fn apache_kafka_image_compose_environment_loads() {
    // The environment of the apache/kafka image's single-node docker-compose example.
    let loaded = load(
        &[],
        &[
            ("KAFKA_NODE_ID", "1"),
            ("KAFKA_PROCESS_ROLES", "broker,controller"),
            (
                "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
                "CONTROLLER:PLAINTEXT,PLAINTEXT_HOST:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            ),
            (
                "KAFKA_ADVERTISED_LISTENERS",
                "PLAINTEXT_HOST://localhost:9092,PLAINTEXT://broker:19092",
            ),
            ("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@broker:29093"),
            (
                "KAFKA_LISTENERS",
                "CONTROLLER://:29093,PLAINTEXT_HOST://:9092,PLAINTEXT://:19092",
            ),
            ("KAFKA_INTER_BROKER_LISTENER_NAME", "PLAINTEXT"),
            ("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER"),
            ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1"),
            ("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0"),
            ("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1"),
            ("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1"),
            (
                "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR",
                "1",
            ),
            ("KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR", "1"),
            ("KAFKA_LOG_DIRS", "/tmp/kraft-combined-logs"),
            ("CLUSTER_ID", "4L6g3nShT-eMCtK--X86sw"),
        ],
    )
    .unwrap();
    let c = &loaded.config;
    assert_eq!(c.listeners.len(), 3);
    assert_eq!(
        c.inter_broker_listener().unwrap().to_string(),
        "PLAINTEXT://broker:19092"
    );
    assert_eq!(c.controller_quorum_voters[0].port, 29093);
    assert_eq!(c.group_initial_rebalance_delay_ms, 0);
    assert_eq!(c.cluster_id.as_deref(), Some("4L6g3nShT-eMCtK--X86sw"));
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
}

#[test]
fn listeners_are_derived_from_env_advertised_listeners_when_unset() {
    let c = load(
        &[],
        &[(
            "KAFKA_ADVERTISED_LISTENERS",
            "PLAINTEXT://broker:19092,SSL://broker:19093",
        )],
    )
    .unwrap()
    .config;
    assert_eq!(c.listeners.len(), 2);
    assert_eq!(c.listeners[0].bind_address(), "0.0.0.0:19092");
    assert_eq!(c.listeners[1].port, 19093);
    assert_eq!(c.advertised_listeners[0].host, "broker");
    // An explicit listeners setting is left alone (and then must cover the advertised names).
    let c = load(
        &["--override", "listeners=PLAINTEXT://:9092"],
        &[("KAFKA_ADVERTISED_LISTENERS", "PLAINTEXT://broker:9092")],
    )
    .unwrap()
    .config;
    assert_eq!(c.listeners[0].port, 9092);
}

#[test]
fn sluice_operations_keys_default_and_parse() {
    let c = load(&[], &[]).unwrap().config;
    assert_eq!(c.http_listener, Some((String::new(), 9644)));
    assert_eq!(c.log_format, LogFormat::Text);
    assert_eq!(c.request_slow_ms, 1000);
    assert_eq!(c.metrics_series_max, 10_000);
    assert_eq!(c.shutdown_timeout_ms, 5000);
    let env = [
        ("KAFKA_SLUICE_HTTP_LISTENER", "127.0.0.1:0"),
        ("KAFKA_SLUICE_LOG_FORMAT", "JSON"),
    ];
    let c = load(
        &["--override", "sluice.http.listener=http://localhost:8080"],
        &env[1..],
    )
    .unwrap()
    .config;
    assert_eq!(c.http_listener, Some(("localhost".to_string(), 8080)));
    assert_eq!(c.log_format, LogFormat::Json);
    let c = load(&[], &env[..1]).unwrap().config;
    assert_eq!(c.http_listener, Some(("127.0.0.1".to_string(), 0)));
    let c = load(&["--override", "sluice.http.listener="], &[])
        .unwrap()
        .config;
    assert_eq!(c.http_listener, None);
}

#[test]
fn sluice_operations_keys_reject_bad_values() {
    for bad in [
        "sluice.http.listener=9644",
        "sluice.log.format=xml",
        "sluice.request.slow.ms=-2",
        "sluice.shutdown.timeout.ms=-1",
    ] {
        let err = load(&["--override", bad], &[]).unwrap_err();
        assert!(
            matches!(err, ConfigError::InvalidValue { .. }),
            "{bad}: {err}"
        );
    }
}

#[test]
fn migration_policy_is_served_case_insensitively_and_defaults_to_bidirectional() {
    let loaded = load(&[], &[]).unwrap();
    assert_eq!(
        loaded.config.group_consumer_migration_policy,
        ConsumerGroupMigrationPolicy::Bidirectional
    );
    for (value, policy) in [
        ("bidirectional", ConsumerGroupMigrationPolicy::Bidirectional),
        ("UPGRADE", ConsumerGroupMigrationPolicy::Upgrade),
        ("Downgrade", ConsumerGroupMigrationPolicy::Downgrade),
        ("disabled", ConsumerGroupMigrationPolicy::Disabled),
    ] {
        let kv = format!("group.consumer.migration.policy={value}");
        let loaded = load(&["--override", &kv], &[]).unwrap();
        assert_eq!(loaded.config.group_consumer_migration_policy, policy);
        // Served: not in the "accepted but not used" warning any more.
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    }
}

#[test]
fn invalid_migration_policy_stops_the_start_naming_the_key() {
    let err = load(
        &["--override", "group.consumer.migration.policy=sideways"],
        &[],
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Invalid value sideways for configuration group.consumer.migration.policy: String must \
         be one of (case insensitive): bidirectional, upgrade, downgrade, disabled \
         (--override group.consumer.migration.policy)"
    );
}
