//! Black-box wire tests: each API at its lowest and highest advertised version, over a socket.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{batch, create_topic, decode_records, name, Client, TestBroker};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use uuid::Uuid;

async fn topic_id(client: &mut Client, topic: &str) -> Uuid {
    let request = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(name(topic))),
    ]));
    let response = client.call(12, &request).await;
    response.topics[0].topic_id
}

/// A v1 (non-flexible) request header by hand: api key, version, correlation id and a null
/// client id, for requests the crate cannot or must not encode.
fn raw_header(api_key: i16, version: i16, correlation_id: i32) -> Vec<u8> {
    let mut raw = Vec::new();
    raw.extend_from_slice(&api_key.to_be_bytes());
    raw.extend_from_slice(&version.to_be_bytes());
    raw.extend_from_slice(&correlation_id.to_be_bytes());
    raw.extend_from_slice(&(-1i16).to_be_bytes()); // null client id
    raw
}

fn produce_request(
    topic: &str,
    topic_id: Uuid,
    partition: i32,
    records: Bytes,
    acks: i16,
) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name(topic))
            .with_topic_id(topic_id)
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records))])])
}

fn fetch_request(topic: &str, topic_id: Uuid, partition: i32, offset: i64) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(50 * 1024 * 1024)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(name(topic))
            .with_topic_id(topic_id)
            .with_partitions(vec![FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1024 * 1024)])])
}

#[tokio::test]
async fn api_versions_lists_registry_at_v0_and_v4() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    for version in [0, 4] {
        let response = client.call(version, &ApiVersionsRequest::default()).await;
        assert_eq!(response.error_code, 0);
        let produce = response
            .api_keys
            .iter()
            .find(|k| k.api_key == ApiKey::Produce as i16)
            .expect("produce advertised");
        // Advertised from v0 as Kafka 4.1 does (KAFKA-18659); v0-v2 are refused on the wire.
        assert_eq!((produce.min_version, produce.max_version), (0, 13));
        let init = response
            .api_keys
            .iter()
            .find(|k| k.api_key == ApiKey::InitProducerId as i16)
            .expect("InitProducerId advertised for idempotent producers");
        assert_eq!((init.min_version, init.max_version), (0, 5));
    }
}

#[tokio::test]
async fn api_versions_too_new_gets_unsupported_version_in_v0_layout() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    client.send(4, &ApiVersionsRequest::default()).await;
    // Rewrite the version in the header to 99: send raw.
    let _ = client.read_frame().await;
    let mut raw = raw_header(ApiKey::ApiVersions as i16, 99, 7);
    raw.push(0); // no tagged fields
    client.send_raw(&raw).await;
    let mut frame = client.read_frame().await.expect("fallback response");
    let header = ResponseHeader::decode_v0(&mut frame);
    assert_eq!(header, 7);
    let response =
        <ApiVersionsResponse as kafka_protocol::protocol::Decodable>::decode(&mut frame, 0)
            .expect("v0 layout");
    assert_eq!(
        response.error_code,
        ResponseError::UnsupportedVersion.code()
    );
    assert!(!response.api_keys.is_empty());
}

trait DecodeV0 {
    fn decode_v0(frame: &mut Bytes) -> i32;
}

impl DecodeV0 for ResponseHeader {
    fn decode_v0(frame: &mut Bytes) -> i32 {
        use bytes::Buf;
        frame.get_i32()
    }
}

#[tokio::test]
async fn metadata_auto_creates_topic_at_v0_and_v13() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let v0 = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(name("auto-v0")))
    ]));
    let response = client.call(0, &v0).await;
    assert_eq!(response.topics[0].error_code, 0);
    assert_eq!(
        response.topics[0].partitions.len(),
        1,
        "num.partitions default"
    );
    assert_eq!(response.brokers.len(), 1);
    assert_eq!(response.brokers[0].port, broker.addr().port() as i32);

    let v12 = MetadataRequest::default()
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(name("auto-v12")))
        ]))
        .with_allow_auto_topic_creation(true);
    let response = client.call(12, &v12).await;
    assert_eq!(response.topics[0].error_code, 0);
    assert!(!response.topics[0].topic_id.is_nil(), "topic ids from v10");
    assert!(response.cluster_id.is_some());
    // v13 (KIP-1102) adds a top-level error code: none.
    let response = client.call(13, &v12).await;
    assert_eq!((response.error_code, response.topics[0].error_code), (0, 0));
    assert_eq!(
        response.topics[0].name.as_ref().map(|n| n.as_str()),
        Some("auto-v12")
    );
}

#[tokio::test]
async fn metadata_without_auto_create_returns_unknown_topic() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let request = MetadataRequest::default()
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(name("nope")))
        ]))
        .with_allow_auto_topic_creation(false);
    let response = client.call(12, &request).await;
    assert_eq!(
        response.topics[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    // v12 by unknown id.
    let request =
        MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default()
            .with_name(None)
            .with_topic_id(Uuid::new_v4())]));
    let response = client.call(12, &request).await;
    assert_eq!(
        response.topics[0].error_code,
        ResponseError::UnknownTopicId.code()
    );
}

#[tokio::test]
async fn create_topics_validates_at_v2_and_v7() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let created = create_topic(&mut client, "orders", 3).await;
    assert_eq!(created.topics[0].error_code, 0);
    assert_eq!(created.topics[0].num_partitions, 3);
    assert!(!created.topics[0].topic_id.is_nil());
    assert!(created.topics[0]
        .configs
        .as_ref()
        .is_some_and(|c| !c.is_empty()));

    let again = create_topic(&mut client, "orders", 3).await;
    assert_eq!(
        again.topics[0].error_code,
        ResponseError::TopicAlreadyExists.code()
    );

    for (bad, code) in [
        ("bad name", ResponseError::InvalidTopicException),
        ("", ResponseError::InvalidTopicException),
        ("..", ResponseError::InvalidTopicException),
    ] {
        let response = create_topic(&mut client, bad, 1).await;
        assert_eq!(response.topics[0].error_code, code.code(), "{bad:?}");
    }
    let zero = create_topic(&mut client, "zero", 0).await;
    assert_eq!(
        zero.topics[0].error_code,
        ResponseError::InvalidPartitions.code()
    );

    let v2 = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(name("validated"))
            .with_num_partitions(2)
            .with_replication_factor(1)
            .with_configs(vec![CreatableTopicConfig::default()
                .with_name(StrBytes::from_static_str("retention.ms"))
                .with_value(Some(StrBytes::from_static_str("1000")))])])
        .with_validate_only(true)
        .with_timeout_ms(5000);
    let response = client.call(2, &v2).await;
    assert_eq!(response.topics[0].error_code, 0);
    let metadata = MetadataRequest::default()
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(name("validated")))
        ]))
        .with_allow_auto_topic_creation(false);
    let response = client.call(12, &metadata).await;
    assert_eq!(
        response.topics[0].error_code,
        ResponseError::UnknownTopicOrPartition.code(),
        "validate_only must not create"
    );

    let bad_config = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(name("badconfig"))
            .with_num_partitions(1)
            .with_replication_factor(1)
            .with_configs(vec![CreatableTopicConfig::default()
                .with_name(StrBytes::from_static_str("no.such.config"))
                .with_value(Some(StrBytes::from_static_str("1")))])])
        .with_timeout_ms(5000);
    let response = client.call(7, &bad_config).await;
    assert_eq!(
        response.topics[0].error_code,
        ResponseError::InvalidConfig.code()
    );
}

#[tokio::test]
async fn produce_and_fetch_round_trip_at_lowest_and_highest_versions() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    create_topic(&mut client, "rt", 2).await;
    let id = topic_id(&mut client, "rt").await;
    for (version, codec) in [(3, Compression::None), (13, Compression::Zstd)] {
        let records = batch(10, codec, 1_700_000_000_000);
        let response = client
            .call(version, &produce_request("rt", id, 1, records, 1))
            .await;
        let partition = &response.responses[0].partition_responses[0];
        assert_eq!(partition.error_code, 0, "produce v{version}");
    }
    for version in [4, 13, 15, 18] {
        let response = client.call(version, &fetch_request("rt", id, 1, 0)).await;
        assert_eq!(response.error_code, 0);
        let partition = &response.responses[0].partitions[0];
        assert_eq!(partition.error_code, 0, "fetch v{version}");
        assert_eq!(partition.high_watermark, 20);
        let records = decode_records(partition.records.as_ref().expect("records"));
        assert_eq!(records.len(), 20);
        for (i, r) in records.iter().enumerate() {
            assert_eq!(r.offset, i as i64);
            assert_eq!(r.key.as_deref(), Some(format!("key-{}", i % 10).as_bytes()));
            assert_eq!(r.headers.len(), 1);
        }
    }
}

#[tokio::test]
async fn produce_to_unknown_topic_and_bad_batches_get_kafka_errors() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let response = client
        .call(
            9,
            &produce_request("missing", Uuid::nil(), 0, batch(1, Compression::None, 0), 1),
        )
        .await;
    assert_eq!(
        response.responses[0].partition_responses[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    let response = client
        .call(
            13,
            &produce_request("", Uuid::new_v4(), 0, batch(1, Compression::None, 0), 1),
        )
        .await;
    assert_eq!(
        response.responses[0].partition_responses[0].error_code,
        ResponseError::UnknownTopicId.code()
    );

    create_topic(&mut client, "strict", 1).await;
    let mut corrupt = batch(3, Compression::None, 0).to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    let response = client
        .call(
            9,
            &produce_request("strict", Uuid::nil(), 0, Bytes::from(corrupt), 1),
        )
        .await;
    assert_eq!(
        response.responses[0].partition_responses[0].error_code,
        ResponseError::CorruptMessage.code()
    );
    let response = client
        .call(
            9,
            &produce_request("strict", Uuid::nil(), 7, batch(1, Compression::None, 0), 1),
        )
        .await;
    assert_eq!(
        response.responses[0].partition_responses[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    // Nothing of the rejected batches was stored.
    let response = client
        .call(11, &fetch_request("strict", Uuid::nil(), 0, 0))
        .await;
    assert_eq!(response.responses[0].partitions[0].high_watermark, 0);
}

#[tokio::test]
async fn acks_zero_gets_no_response_but_is_stored() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    create_topic(&mut client, "fire", 1).await;
    client
        .send(
            9,
            &produce_request("fire", Uuid::nil(), 0, batch(5, Compression::None, 0), 0),
        )
        .await;
    // The next response on the connection belongs to the next request.
    let response = client
        .call(11, &fetch_request("fire", Uuid::nil(), 0, 0))
        .await;
    assert_eq!(response.responses[0].partitions[0].high_watermark, 5);
}

#[tokio::test]
async fn acks_all_is_acknowledged_after_fsync() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    create_topic(&mut client, "durable", 1).await;
    let fsyncs_before = broker
        .server
        .as_ref()
        .unwrap()
        .broker
        .metrics
        .log_fsyncs_total
        .get();
    let response = client
        .call(
            9,
            &produce_request(
                "durable",
                Uuid::nil(),
                0,
                batch(5, Compression::Gzip, 0),
                -1,
            ),
        )
        .await;
    assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
    let fsyncs_after = broker
        .server
        .as_ref()
        .unwrap()
        .broker
        .metrics
        .log_fsyncs_total
        .get();
    assert!(
        fsyncs_after > fsyncs_before,
        "acks=all must fsync before acknowledging"
    );
}

#[tokio::test]
async fn fetch_long_polls_until_data_or_max_wait() {
    let broker = TestBroker::start().await;
    let mut consumer = broker.client().await;
    let mut producer = broker.client().await;
    create_topic(&mut producer, "poll", 1).await;

    let started = Instant::now();
    let mut request = fetch_request("poll", Uuid::nil(), 0, 0);
    request.max_wait_ms = 300;
    let response = consumer.call(11, &request).await;
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "waited max_wait_ms"
    );
    assert!(response.responses[0].partitions[0]
        .records
        .as_ref()
        .is_none_or(|r| r.is_empty()));

    request.max_wait_ms = 10_000;
    let started = Instant::now();
    consumer.send(11, &request).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    producer
        .call(
            9,
            &produce_request("poll", Uuid::nil(), 0, batch(2, Compression::Lz4, 0), 1),
        )
        .await;
    let response = consumer.receive::<FetchRequest>(11).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "woken by the append"
    );
    let records = decode_records(
        response.responses[0].partitions[0]
            .records
            .as_ref()
            .unwrap(),
    );
    assert_eq!(records.len(), 2);
}

#[tokio::test]
async fn fetch_returns_first_batch_even_when_larger_than_max_bytes() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    create_topic(&mut client, "big", 1).await;
    for _ in 0..3 {
        client
            .call(
                9,
                &produce_request("big", Uuid::nil(), 0, batch(50, Compression::None, 0), 1),
            )
            .await;
    }
    let mut request = fetch_request("big", Uuid::nil(), 0, 0);
    request.max_bytes = 10;
    let response = client.call(11, &request).await;
    let records = decode_records(
        response.responses[0].partitions[0]
            .records
            .as_ref()
            .unwrap(),
    );
    assert_eq!(records.len(), 50, "exactly the first batch (KIP-74)");
}

#[tokio::test]
async fn incremental_fetch_session_omits_unchanged_partitions() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    create_topic(&mut client, "sess", 2).await;
    client
        .call(
            9,
            &produce_request("sess", Uuid::nil(), 0, batch(3, Compression::Snappy, 0), 1),
        )
        .await;
    let mut request = fetch_request("sess", Uuid::nil(), 0, 0);
    request.topics[0].partitions.push(
        FetchPartition::default()
            .with_partition(1)
            .with_fetch_offset(0)
            .with_partition_max_bytes(1024 * 1024),
    );
    request.session_id = 0;
    request.session_epoch = 0;
    let full = client.call(12, &request).await;
    assert_ne!(full.session_id, 0);
    assert_eq!(full.responses[0].partitions.len(), 2);

    // Incremental: partition 0 moves to offset 3; nothing changed anywhere.
    let incremental = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(1024 * 1024)
        .with_session_id(full.session_id)
        .with_session_epoch(1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(name("sess"))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(3)
                .with_partition_max_bytes(1024 * 1024)])]);
    let response = client.call(12, &incremental).await;
    assert_eq!(response.error_code, 0);
    assert!(response.responses.is_empty(), "nothing new: {response:?}");

    client
        .call(
            9,
            &produce_request("sess", Uuid::nil(), 1, batch(1, Compression::None, 0), 1),
        )
        .await;
    let next = incremental
        .clone()
        .with_session_epoch(2)
        .with_topics(vec![])
        .with_forgotten_topics_data(vec![ForgottenTopic::default()
            .with_topic(name("sess"))
            .with_partitions(vec![0])]);
    let response = client.call(12, &next).await;
    assert_eq!(response.responses.len(), 1);
    assert_eq!(response.responses[0].partitions.len(), 1);
    assert_eq!(response.responses[0].partitions[0].partition_index, 1);

    let stale = next.with_session_epoch(9);
    let response = client.call(12, &stale).await;
    assert_eq!(
        response.error_code,
        ResponseError::InvalidFetchSessionEpoch.code()
    );
}

#[tokio::test]
async fn list_offsets_earliest_latest_and_by_timestamp() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    create_topic(&mut client, "times", 1).await;
    client
        .call(
            9,
            &produce_request(
                "times",
                Uuid::nil(),
                0,
                batch(10, Compression::None, 1000),
                1,
            ),
        )
        .await;
    client
        .call(
            9,
            &produce_request(
                "times",
                Uuid::nil(),
                0,
                batch(10, Compression::Gzip, 5000),
                1,
            ),
        )
        .await;
    let ask = |timestamp: i64| {
        ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(name("times"))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(timestamp)])])
    };
    for version in [1, 7, 10] {
        let offset = |r: &ListOffsetsResponse| r.topics[0].partitions[0].offset;
        assert_eq!(offset(&client.call(version, &ask(-2)).await), 0);
        assert_eq!(offset(&client.call(version, &ask(-1)).await), 20);
        assert_eq!(offset(&client.call(version, &ask(1005)).await), 5);
        assert_eq!(offset(&client.call(version, &ask(5003)).await), 13);
        assert_eq!(offset(&client.call(version, &ask(99_999)).await), -1);
    }
    let max = client.call(7, &ask(-3)).await;
    assert_eq!(max.topics[0].partitions[0].offset, 19);
    assert_eq!(max.topics[0].partitions[0].timestamp, 5009);
    // Without tiered storage: EARLIEST_LOCAL (v8, KIP-405) is the log start, LATEST_TIERED
    // (v9, KIP-1005) is nothing: offset -1, timestamp -1, as Kafka answers.
    let local = client.call(10, &ask(-4).with_timeout_ms(1000)).await;
    assert_eq!(local.topics[0].partitions[0].error_code, 0);
    assert_eq!(local.topics[0].partitions[0].offset, 0);
    let tiered = client.call(9, &ask(-5)).await;
    let tiered = &tiered.topics[0].partitions[0];
    assert_eq!(
        (tiered.error_code, tiered.offset, tiered.timestamp),
        (0, -1, -1)
    );
}

#[tokio::test]
async fn stale_and_future_leader_epochs_are_fenced_with_a_leader_hint() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    create_topic(&mut client, "epochs", 1).await;
    let epoch = client
        .call(
            12,
            &MetadataRequest::default().with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(name("epochs")))
            ])),
        )
        .await
        .topics[0]
        .partitions[0]
        .leader_epoch;
    let id = topic_id(&mut client, "epochs").await;
    let fetch_at = |current_leader_epoch: i32| {
        let mut request = fetch_request("epochs", id, 0, 0);
        request.topics[0].partitions[0].current_leader_epoch = current_leader_epoch;
        request
    };
    // KIP-320: the client's epoch is checked from Fetch v9 and ListOffsets v4.
    let current = client.call(12, &fetch_at(epoch)).await;
    assert_eq!(current.responses[0].partitions[0].error_code, 0);
    let future = client.call(12, &fetch_at(epoch + 1)).await;
    assert_eq!(
        future.responses[0].partitions[0].error_code,
        ResponseError::UnknownLeaderEpoch.code()
    );
    if epoch > 0 {
        let stale = client.call(12, &fetch_at(epoch - 1)).await;
        assert_eq!(
            stale.responses[0].partitions[0].error_code,
            ResponseError::FencedLeaderEpoch.code()
        );
    }
    // A fetch from a replica (v15+ names it in ReplicaState): one node has no followers, so
    // NOT_LEADER_OR_FOLLOWER, with the leader and its endpoint from v16 (KIP-951).
    let mut follower = fetch_at(-1);
    follower.replica_state.replica_id = BrokerId(2);
    follower.replica_state.replica_epoch = 1;
    let response = client.call(18, &follower).await;
    let partition = &response.responses[0].partitions[0];
    assert_eq!(
        partition.error_code,
        ResponseError::NotLeaderOrFollower.code()
    );
    assert_eq!(
        (
            partition.current_leader.leader_id.0,
            partition.current_leader.leader_epoch
        ),
        (1, epoch)
    );
    assert_eq!(response.node_endpoints.len(), 1);
    assert_eq!(response.node_endpoints[0].node_id.0, 1);
    assert_eq!(
        response.node_endpoints[0].port,
        i32::from(broker.addr().port())
    );
    // Below v16 no hint is given (the field is not in those versions' answers).
    let response = client.call(15, &follower).await;
    assert!(response.node_endpoints.is_empty());
    let list = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(name("epochs"))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_current_leader_epoch(epoch + 1)
                .with_timestamp(-1)])]);
    let response = client.call(10, &list).await;
    assert_eq!(
        response.topics[0].partitions[0].error_code,
        ResponseError::UnknownLeaderEpoch.code()
    );
}

#[tokio::test]
async fn produce_v0_to_v2_are_advertised_but_refused_as_kafka_4_1_does() {
    let broker = TestBroker::start().await;
    for version in 0..=2i16 {
        let mut client = broker.client().await;
        let mut raw = raw_header(ApiKey::Produce as i16, version, 1);
        raw.extend_from_slice(&1i16.to_be_bytes()); // acks
        raw.extend_from_slice(&1000i32.to_be_bytes()); // timeout
        raw.extend_from_slice(&0i32.to_be_bytes()); // no topics
        client.send_raw(&raw).await;
        assert!(client.is_closed().await, "produce v{version}");
    }
}

#[tokio::test]
async fn delete_topics_by_name_and_id_and_recreate_gets_new_id() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    create_topic(&mut client, "gone", 1).await;
    let old_id = topic_id(&mut client, "gone").await;
    client
        .call(
            9,
            &produce_request("gone", Uuid::nil(), 0, batch(4, Compression::None, 0), 1),
        )
        .await;
    let response = client
        .call(
            1,
            &DeleteTopicsRequest::default()
                .with_topic_names(vec![name("gone")])
                .with_timeout_ms(5000),
        )
        .await;
    assert_eq!(response.responses[0].error_code, 0);
    create_topic(&mut client, "gone", 1).await;
    let new_id = topic_id(&mut client, "gone").await;
    assert_ne!(old_id, new_id);
    let response = client
        .call(11, &fetch_request("gone", Uuid::nil(), 0, 0))
        .await;
    assert_eq!(
        response.responses[0].partitions[0].high_watermark, 0,
        "old data gone"
    );

    let response = client
        .call(
            6,
            &DeleteTopicsRequest::default()
                .with_topics(vec![DeleteTopicState::default().with_topic_id(new_id)])
                .with_timeout_ms(5000),
        )
        .await;
    assert_eq!(response.responses[0].error_code, 0);
    assert_eq!(
        response.responses[0].name.as_ref().map(|n| n.as_str()),
        Some("gone")
    );
    let response = client
        .call(
            6,
            &DeleteTopicsRequest::default()
                .with_topics(vec![DeleteTopicState::default().with_topic_id(new_id)])
                .with_timeout_ms(5000),
        )
        .await;
    assert_eq!(
        response.responses[0].error_code,
        ResponseError::UnknownTopicId.code()
    );
}

#[tokio::test]
async fn describe_cluster_at_v0_and_v2() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    for version in [0, 2] {
        let mut request = DescribeClusterRequest::default();
        if version >= 1 {
            request.endpoint_type = 1;
        }
        let response = client.call(version, &request).await;
        assert_eq!(response.error_code, 0);
        assert_eq!(response.brokers.len(), 1);
        assert_eq!(response.controller_id.0, 1);
        assert!(!response.cluster_id.is_empty());
    }
}

#[tokio::test]
async fn restart_keeps_topics_ids_and_records() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    create_topic(&mut client, "keep", 2).await;
    let id = topic_id(&mut client, "keep").await;
    client
        .call(
            9,
            &produce_request("keep", Uuid::nil(), 1, batch(7, Compression::Zstd, 0), 1),
        )
        .await;
    drop(client);
    let broker = broker.restart().await;
    let mut client = broker.client().await;
    assert_eq!(topic_id(&mut client, "keep").await, id);
    let response = client.call(13, &fetch_request("", id, 1, 0)).await;
    let records = decode_records(
        response.responses[0].partitions[0]
            .records
            .as_ref()
            .unwrap(),
    );
    assert_eq!(records.len(), 7);
    // A second restart: the metadata log directory must never be taken for a partition of a
    // deleted topic and removed at start.
    drop(client);
    let broker = broker.restart().await;
    let mut client = broker.client().await;
    assert_eq!(topic_id(&mut client, "keep").await, id);
}

#[tokio::test]
async fn bad_input_closes_only_that_connection() {
    let broker = TestBroker::start().await;
    let mut healthy = broker.client().await;
    create_topic(&mut healthy, "safe", 1).await;
    healthy
        .call(
            9,
            &produce_request("safe", Uuid::nil(), 0, batch(3, Compression::None, 0), 1),
        )
        .await;

    // A size header of 2 GiB.
    let mut client = broker.client().await;
    use tokio::io::AsyncWriteExt;
    client
        .stream
        .write_all(&i32::MAX.to_be_bytes())
        .await
        .unwrap();
    assert!(client.is_closed().await, "2 GiB frame");

    // Random bytes.
    let mut client = broker.client().await;
    let mut state = 0x2545F4914F6CDD1Du64;
    let noise: Vec<u8> = (0..512)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    client.send_raw(&noise).await;
    assert!(client.is_closed().await, "random bytes");

    // Unknown API key.
    let mut client = broker.client().await;
    let raw = raw_header(9999, 0, 1);
    client.send_raw(&raw).await;
    assert!(client.is_closed().await, "unknown api key");

    // Unsupported version of a known API.
    let mut client = broker.client().await;
    let raw = raw_header(ApiKey::Produce as i16, 1, 1);
    client.send_raw(&raw).await;
    assert!(client.is_closed().await, "unsupported version");

    // A truncated frame: the size says more than is sent, then the client goes away.
    let mut client = broker.client().await;
    client
        .stream
        .write_all(&100i32.to_be_bytes())
        .await
        .unwrap();
    client.stream.write_all(&[0, 18, 0, 3]).await.unwrap();
    drop(client);

    // A body that does not decode: Metadata v12 with a garbage array length.
    let mut client = broker.client().await;
    let mut raw = raw_header(ApiKey::Metadata as i16, 12, 1);
    raw.push(0);
    raw.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x07]);
    client.send_raw(&raw).await;
    assert!(client.is_closed().await, "undecodable body");

    // The healthy client is still served and nothing stored was lost.
    let response = healthy
        .call(11, &fetch_request("safe", Uuid::nil(), 0, 0))
        .await;
    let records = decode_records(
        response.responses[0].partitions[0]
            .records
            .as_ref()
            .unwrap(),
    );
    assert_eq!(records.len(), 3);
}
