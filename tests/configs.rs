//! Config admin black-box tests: DescribeConfigs, AlterConfigs and IncrementalAlterConfigs over
//! the wire, dynamic topic and broker configs taking effect on live partitions and surviving a
//! restart.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{batch, create_topic, create_with, name, Client, TestBroker};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResourceResult;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    alter_configs_request as legacy, incremental_alter_configs_request as incremental,
};
use kafka_protocol::messages::{
    AlterConfigsRequest, BrokerId, DescribeConfigsRequest, IncrementalAlterConfigsRequest,
    ListOffsetsRequest, ProduceRequest,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// DescribeConfigs of one resource; `keys` empty = all.
async fn describe(
    client: &mut Client,
    version: i16,
    resource_type: i8,
    resource: &str,
    keys: &[&str],
) -> kafka_protocol::messages::describe_configs_response::DescribeConfigsResult {
    let keys = (!keys.is_empty()).then(|| keys.iter().map(|k| s(k)).collect());
    let request = DescribeConfigsRequest::default()
        .with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(s(resource))
            .with_configuration_keys(keys)])
        .with_include_synonyms(true)
        .with_include_documentation(version >= 3);
    let mut response = client.call(version, &request).await;
    assert_eq!(response.results.len(), 1);
    response.results.remove(0)
}

fn entry<'a>(
    configs: &'a [DescribeConfigsResourceResult],
    key: &str,
) -> &'a DescribeConfigsResourceResult {
    configs
        .iter()
        .find(|c| c.name.as_str() == key)
        .unwrap_or_else(|| panic!("{key} not described"))
}

fn value(c: &DescribeConfigsResourceResult) -> Option<&str> {
    c.value.as_deref()
}

/// IncrementalAlterConfigs of one resource; returns (error code, message).
async fn alter_incremental(
    client: &mut Client,
    version: i16,
    resource_type: i8,
    resource: &str,
    ops: &[(&str, i8, Option<&str>)],
    validate_only: bool,
) -> (i16, Option<String>) {
    let request = IncrementalAlterConfigsRequest::default()
        .with_validate_only(validate_only)
        .with_resources(vec![incremental::AlterConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(s(resource))
            .with_configs(
                ops.iter()
                    .map(|(k, op, v)| {
                        incremental::AlterableConfig::default()
                            .with_name(s(k))
                            .with_config_operation(*op)
                            .with_value(v.map(s))
                    })
                    .collect(),
            )]);
    let response = client.call(version, &request).await;
    let r = &response.responses[0];
    assert_eq!(r.resource_name.as_str(), resource);
    (
        r.error_code,
        r.error_message.as_ref().map(|m| m.to_string()),
    )
}

/// AlterConfigs (the whole set) of one resource; returns (error code, message).
async fn alter_legacy(
    client: &mut Client,
    version: i16,
    resource_type: i8,
    resource: &str,
    configs: &[(&str, Option<&str>)],
) -> (i16, Option<String>) {
    let request =
        AlterConfigsRequest::default().with_resources(vec![legacy::AlterConfigsResource::default(
        )
        .with_resource_type(resource_type)
        .with_resource_name(s(resource))
        .with_configs(
            configs
                .iter()
                .map(|(k, v)| {
                    legacy::AlterableConfig::default()
                        .with_name(s(k))
                        .with_value(v.map(s))
                })
                .collect(),
        )]);
    let response = client.call(version, &request).await;
    let r = &response.responses[0];
    (
        r.error_code,
        r.error_message.as_ref().map(|m| m.to_string()),
    )
}

async fn produce(client: &mut Client, topic: &str, records: Bytes) -> i16 {
    let request = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))])]);
    let response = client.call(9, &request).await;
    response.responses[0].partition_responses[0].error_code
}

async fn log_start_offset(client: &mut Client, topic: &str) -> i64 {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(-2)])]);
    client.call(7, &request).await.topics[0].partitions[0].offset
}

#[tokio::test]
async fn describe_topic_reports_sources_synonyms_types_and_docs_at_v1_and_v4() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    create_with(&mut client, "described", &[("retention.ms", "1000")]).await;

    let r = describe(&mut client, 4, TOPIC, "described", &[]).await;
    assert_eq!(r.error_code, 0);
    assert_eq!(r.configs.len(), sluice::config::TOPIC_CONFIG_NAMES.len());
    let retention = entry(&r.configs, "retention.ms");
    assert_eq!(value(retention), Some("1000"));
    assert_eq!(retention.config_source, 1);
    assert!(!retention.read_only && !retention.is_sensitive);
    assert_eq!(retention.config_type, 5, "LONG");
    assert!(retention.documentation.is_some());
    let synonyms: Vec<(&str, Option<&str>, i8)> = retention
        .synonyms
        .iter()
        .map(|s| (s.name.as_str(), s.value.as_deref(), s.source))
        .collect();
    assert_eq!(
        synonyms,
        vec![
            ("retention.ms", Some("1000"), 1),
            ("log.retention.hours", Some("168"), 5)
        ]
    );
    let segment = entry(&r.configs, "segment.bytes");
    assert_eq!(value(segment), Some("1073741824"));
    assert_eq!(segment.config_source, 5);
    assert_eq!(entry(&r.configs, "cleanup.policy").config_type, 7, "LIST");

    // v1: named keys only; no types or documentation in that version.
    let r = describe(
        &mut client,
        1,
        TOPIC,
        "described",
        &["retention.ms", "nope"],
    )
    .await;
    assert_eq!(r.configs.len(), 1);
    assert_eq!(value(&r.configs[0]), Some("1000"));
}

#[tokio::test]
async fn describe_errors_follow_kafka() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let missing = describe(&mut client, 4, TOPIC, "missing", &[]).await;
    assert_eq!(
        missing.error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    assert!(missing.configs.is_empty());
    let bad_name = describe(&mut client, 4, TOPIC, "a b", &[]).await;
    assert_eq!(
        bad_name.error_code,
        ResponseError::InvalidTopicException.code()
    );
    for other in ["7", "abc"] {
        let r = describe(&mut client, 4, BROKER, other, &[]).await;
        assert_eq!(
            r.error_code,
            ResponseError::InvalidRequest.code(),
            "{other}"
        );
        assert!(r.error_message.is_some());
    }
    let logger = describe(&mut client, 4, 8, "1", &[]).await;
    assert_eq!(logger.error_code, ResponseError::InvalidRequest.code());
}

#[tokio::test]
async fn describe_broker_lists_every_config_with_read_only_and_synonyms() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let r = describe(&mut client, 4, BROKER, "1", &[]).await;
    assert_eq!(r.error_code, 0);
    assert!(r.configs.len() > 100, "{}", r.configs.len());
    let hours = entry(&r.configs, "log.retention.hours");
    assert_eq!(value(hours), Some("168"));
    assert!(
        hours.read_only,
        "log.retention.hours is not dynamic in Kafka"
    );
    assert_eq!(hours.config_source, 5);
    let listeners = entry(&r.configs, "listeners");
    assert_eq!(listeners.config_source, 4, "set by the test config");
    assert!(listeners.read_only);
    let max = entry(&r.configs, "message.max.bytes");
    assert!(!max.read_only);
    // A dynamic key Sluice does not resolve itself is still listed, with Kafka's default.
    let threads = entry(&r.configs, "log.cleaner.threads");
    assert_eq!(value(threads), Some("1"));
    assert!(!threads.read_only);
    assert_eq!(threads.config_source, 5);

    // The cluster default resource lists only what is set dynamically there.
    let r = describe(&mut client, 4, BROKER, "", &[]).await;
    assert_eq!(r.error_code, 0);
    assert!(r.configs.is_empty());
}

#[tokio::test]
async fn incremental_alter_sets_appends_subtracts_and_deletes_at_v0_and_v1() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    create_topic(&mut client, "inc", 1).await;
    let ops = [
        ("retention.ms", SET, Some("5000")),
        ("cleanup.policy", APPEND, Some("compact")),
    ];
    assert_eq!(
        alter_incremental(&mut client, 0, TOPIC, "inc", &ops, false)
            .await
            .0,
        0
    );
    let r = describe(
        &mut client,
        4,
        TOPIC,
        "inc",
        &["retention.ms", "cleanup.policy"],
    )
    .await;
    assert_eq!(value(entry(&r.configs, "retention.ms")), Some("5000"));
    assert_eq!(
        value(entry(&r.configs, "cleanup.policy")),
        Some("delete,compact")
    );

    let ops = [
        ("retention.ms", DELETE, None),
        ("cleanup.policy", SUBTRACT, Some("delete")),
    ];
    assert_eq!(
        alter_incremental(&mut client, 1, TOPIC, "inc", &ops, false)
            .await
            .0,
        0
    );
    let r = describe(
        &mut client,
        4,
        TOPIC,
        "inc",
        &["retention.ms", "cleanup.policy"],
    )
    .await;
    let retention = entry(&r.configs, "retention.ms");
    assert_eq!(value(retention), Some("604800000"));
    assert_eq!(retention.config_source, 5);
    assert_eq!(value(entry(&r.configs, "cleanup.policy")), Some("compact"));

    // validate_only checks and changes nothing.
    let ops = [("retention.ms", SET, Some("7"))];
    assert_eq!(
        alter_incremental(&mut client, 1, TOPIC, "inc", &ops, true)
            .await
            .0,
        0
    );
    let r = describe(&mut client, 4, TOPIC, "inc", &["retention.ms"]).await;
    assert_eq!(value(&r.configs[0]), Some("604800000"));
}

#[tokio::test]
async fn alter_errors_follow_kafka() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    create_topic(&mut client, "errs", 1).await;
    let invalid_config = ResponseError::InvalidConfig.code();
    let invalid_request = ResponseError::InvalidRequest.code();

    let (code, message) = alter_incremental(
        &mut client,
        1,
        TOPIC,
        "errs",
        &[("segment.bytes", SET, Some("13"))],
        false,
    )
    .await;
    assert_eq!(code, invalid_config);
    assert_eq!(
        message.as_deref(),
        Some("Invalid value 13 for configuration segment.bytes: Value must be at least 14")
    );
    let (code, _) = alter_incremental(
        &mut client,
        1,
        TOPIC,
        "errs",
        &[("retention.msx", SET, Some("1"))],
        false,
    )
    .await;
    assert_eq!(code, invalid_config);
    let (code, _) = alter_incremental(
        &mut client,
        1,
        TOPIC,
        "errs",
        &[("retention.ms", APPEND, Some("1"))],
        false,
    )
    .await;
    assert_eq!(code, invalid_config);
    let (code, _) = alter_incremental(
        &mut client,
        1,
        TOPIC,
        "errs",
        &[("retention.ms", SET, None)],
        false,
    )
    .await;
    assert_eq!(code, invalid_request);
    let (code, _) = alter_incremental(
        &mut client,
        1,
        TOPIC,
        "gone",
        &[("retention.ms", SET, Some("1"))],
        false,
    )
    .await;
    assert_eq!(code, ResponseError::UnknownTopicOrPartition.code());

    let (code, message) = alter_incremental(
        &mut client,
        1,
        BROKER,
        "",
        &[("log.retention.hours", SET, Some("1"))],
        false,
    )
    .await;
    assert_eq!(code, invalid_request);
    assert_eq!(
        message.as_deref(),
        Some("Cannot update these configs dynamically: Set(log.retention.hours)")
    );
    let (code, _) = alter_incremental(
        &mut client,
        1,
        BROKER,
        "",
        &[("no.such.key", SET, Some("1"))],
        false,
    )
    .await;
    assert_eq!(code, invalid_request);
    let (code, _) = alter_incremental(
        &mut client,
        1,
        BROKER,
        "1",
        &[("log.segment.bytes", SET, Some("10"))],
        false,
    )
    .await;
    assert_eq!(code, invalid_request);
    let (code, _) = alter_incremental(
        &mut client,
        1,
        BROKER,
        "2",
        &[("log.segment.bytes", SET, Some("2000"))],
        false,
    )
    .await;
    assert_eq!(code, invalid_request);

    let (code, _) = alter_legacy(&mut client, 0, TOPIC, "errs", &[("retention.ms", None)]).await;
    assert_eq!(code, invalid_request);

    // The same resource twice fails both entries.
    let twice = legacy::AlterConfigsResource::default()
        .with_resource_type(TOPIC)
        .with_resource_name(s("errs"));
    let response = client
        .call(
            2,
            &AlterConfigsRequest::default().with_resources(vec![twice.clone(), twice]),
        )
        .await;
    assert!(response
        .responses
        .iter()
        .all(|r| r.error_code == invalid_request));
}

/// Kafka's per-broker listener keys (`DynamicBrokerConfig.PerBrokerConfigs`): settable on the
/// broker's own resource, type-checked, described as DYNAMIC_BROKER_CONFIG, refused as the
/// cluster default. librdkafka's 0081 sets sasl.kerberos.min.time.before.relogin this way.
#[tokio::test]
async fn per_broker_keys_are_refused_at_the_cluster_default_level() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let invalid_request = ResponseError::InvalidRequest.code();
    let key = "sasl.kerberos.min.time.before.relogin";
    let (code, message) = alter_incremental(
        &mut client,
        1,
        BROKER,
        "",
        &[(key, SET, Some("58000"))],
        false,
    )
    .await;
    assert_eq!(code, invalid_request);
    assert_eq!(
        message.as_deref(),
        Some(
            "Cannot update these configs at default cluster level, broker id must be \
             specified: sasl.kerberos.min.time.before.relogin"
        )
    );
    let (code, _) = alter_incremental(
        &mut client,
        0,
        BROKER,
        "1",
        &[(key, SET, Some("soon"))],
        false,
    )
    .await;
    assert_eq!(code, invalid_request);
    let (code, message) = alter_incremental(
        &mut client,
        0,
        BROKER,
        "1",
        &[(key, SET, Some("58000"))],
        false,
    )
    .await;
    assert_eq!((code, message), (0, None));
    let described = describe(&mut client, 4, BROKER, "1", &[key]).await;
    let e = entry(&described.configs, key);
    assert_eq!(value(e), Some("58000"));
    assert_eq!(e.config_source, 2, "DYNAMIC_BROKER_CONFIG");
    assert!(!e.read_only);
}

#[tokio::test]
async fn alter_configs_replaces_the_whole_set_at_v0_and_v2() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    create_with(
        &mut client,
        "legacy",
        &[("retention.ms", "1000"), ("segment.ms", "60000")],
    )
    .await;
    let (code, _) = alter_legacy(
        &mut client,
        0,
        TOPIC,
        "legacy",
        &[("retention.bytes", Some("4096"))],
    )
    .await;
    assert_eq!(code, 0);
    let r = describe(
        &mut client,
        4,
        TOPIC,
        "legacy",
        &["retention.ms", "segment.ms", "retention.bytes"],
    )
    .await;
    assert_eq!(
        entry(&r.configs, "retention.ms").config_source,
        5,
        "removed"
    );
    assert_eq!(entry(&r.configs, "segment.ms").config_source, 5, "removed");
    assert_eq!(value(entry(&r.configs, "retention.bytes")), Some("4096"));
    let (code, _) = alter_legacy(&mut client, 2, TOPIC, "legacy", &[]).await;
    assert_eq!(code, 0);
    let r = describe(&mut client, 4, TOPIC, "legacy", &["retention.bytes"]).await;
    assert_eq!(r.configs[0].config_source, 5);
}

#[tokio::test]
async fn topic_max_message_bytes_applies_to_the_live_partition_and_survives_restart() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    create_topic(&mut client, "live", 1).await;
    assert_eq!(
        produce(&mut client, "live", batch(20, Compression::None, 0)).await,
        0
    );
    let ops = [("max.message.bytes", SET, Some("100"))];
    assert_eq!(
        alter_incremental(&mut client, 1, TOPIC, "live", &ops, false)
            .await
            .0,
        0
    );
    let too_large = ResponseError::MessageTooLarge.code();
    assert_eq!(
        produce(&mut client, "live", batch(20, Compression::None, 0)).await,
        too_large
    );

    let broker = broker.restart().await;
    let mut client = broker.client().await;
    assert_eq!(
        produce(&mut client, "live", batch(20, Compression::None, 0)).await,
        too_large
    );
    let ops = [("max.message.bytes", DELETE, None)];
    assert_eq!(
        alter_incremental(&mut client, 1, TOPIC, "live", &ops, false)
            .await
            .0,
        0
    );
    assert_eq!(
        produce(&mut client, "live", batch(20, Compression::None, 0)).await,
        0
    );
}

#[tokio::test]
async fn dynamic_broker_defaults_apply_to_topics_without_override_and_survive_restart() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    create_topic(&mut client, "follows", 1).await;
    create_with(&mut client, "own", &[("max.message.bytes", "1000000")]).await;
    let ops = [("message.max.bytes", SET, Some("100"))];
    assert_eq!(
        alter_incremental(&mut client, 1, BROKER, "", &ops, false)
            .await
            .0,
        0
    );
    let too_large = ResponseError::MessageTooLarge.code();
    assert_eq!(
        produce(&mut client, "follows", batch(20, Compression::None, 0)).await,
        too_large
    );
    assert_eq!(
        produce(&mut client, "own", batch(20, Compression::None, 0)).await,
        0
    );

    let r = describe(&mut client, 4, TOPIC, "follows", &["max.message.bytes"]).await;
    assert_eq!(value(&r.configs[0]), Some("100"));
    assert_eq!(r.configs[0].config_source, 3);
    // CreateTopics v5+ reports the same source for a new topic (KIP-525).
    let created = create_topic(&mut client, "later", 1).await;
    let configs = created.topics[0].configs.as_ref().expect("configs at v7");
    let max = configs
        .iter()
        .find(|c| c.name.as_str() == "max.message.bytes")
        .expect("max.message.bytes");
    assert_eq!((max.value.as_deref(), max.config_source), (Some("100"), 3));
    let r = describe(&mut client, 4, BROKER, "", &[]).await;
    assert_eq!(r.configs.len(), 1);
    assert_eq!(value(&r.configs[0]), Some("100"));
    assert_eq!(r.configs[0].config_source, 3);

    // A per-broker value wins over the cluster default.
    let (code, _) = alter_legacy(
        &mut client,
        1,
        BROKER,
        "1",
        &[("message.max.bytes", Some("2000000"))],
    )
    .await;
    assert_eq!(code, 0);
    assert_eq!(
        produce(&mut client, "follows", batch(20, Compression::None, 0)).await,
        0
    );
    let r = describe(&mut client, 4, BROKER, "1", &["message.max.bytes"]).await;
    let sources: Vec<i8> = r.configs[0].synonyms.iter().map(|s| s.source).collect();
    assert_eq!(sources, vec![2, 3, 5]);
    assert_eq!(value(&r.configs[0]), Some("2000000"));

    let broker = broker.restart().await;
    let mut client = broker.client().await;
    let r = describe(&mut client, 4, TOPIC, "follows", &["max.message.bytes"]).await;
    assert_eq!(value(&r.configs[0]), Some("2000000"));
    assert_eq!(r.configs[0].config_source, 2);
    let (code, _) = alter_legacy(&mut client, 1, BROKER, "1", &[]).await;
    assert_eq!(code, 0);
    assert_eq!(
        produce(&mut client, "follows", batch(20, Compression::None, 0)).await,
        too_large
    );
}

#[tokio::test]
async fn lowered_retention_ms_deletes_old_segments_of_a_live_topic() {
    let broker = TestBroker::start_with(|c| c.log_retention_check_interval_ms = 100).await;
    let mut client = broker.client().await;
    create_with(&mut client, "expiring", &[("segment.bytes", "1000")]).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    for _ in 0..4 {
        assert_eq!(
            produce(&mut client, "expiring", batch(20, Compression::None, now)).await,
            0
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(log_start_offset(&mut client, "expiring").await, 0);
    let ops = [("retention.ms", SET, Some("100"))];
    assert_eq!(
        alter_incremental(&mut client, 1, TOPIC, "expiring", &ops, false)
            .await
            .0,
        0
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let start = log_start_offset(&mut client, "expiring").await;
        if start == 60 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "log start offset stuck at {start}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn describe_bounds_the_configs_one_response_holds() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let per_broker = describe(&mut client, 4, BROKER, "1", &[])
        .await
        .configs
        .len();
    let max = sluice::server::handlers::describe_configs::DESCRIBED_CONFIGS_MAX;
    let count = max / per_broker + 2;
    let resource = DescribeConfigsResource::default()
        .with_resource_type(BROKER)
        .with_resource_name(s("1"));
    let request = DescribeConfigsRequest::default().with_resources(vec![resource; count]);
    let response = client.call(4, &request).await;
    assert_eq!(response.results.len(), count);
    let described: usize = response.results.iter().map(|r| r.configs.len()).sum();
    assert!(
        described >= max && described <= max + per_broker,
        "{described}"
    );
    let last = response.results.last().expect("results");
    assert_eq!(last.error_code, ResponseError::InvalidRequest.code());
    assert!(last.configs.is_empty());
    // The connection still serves requests after the refusal.
    assert_eq!(
        describe(&mut client, 4, BROKER, "1", &[]).await.error_code,
        0
    );
}
