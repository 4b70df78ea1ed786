//! Wire tests of the produce-side topic policies (Kafka's LogValidator): LogAppendTime,
//! CreateTime bounds (KIP-937), compression.type recompression, keys on compacted topics,
//! max.message.bytes, and ProduceRequest's one-batch-of-magic-2 rule.

mod common;

use bytes::Bytes;
use common::{batch, create_with, decode_records, encode, name, Client, TestBroker};
use indexmap::IndexMap;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::*;
use kafka_protocol::records::{Compression, Record, TimestampType};

const INVALID_RECORD: i16 = 87;
const INVALID_TIMESTAMP: i16 = 32;
const MESSAGE_TOO_LARGE: i16 = 10;
const UNSUPPORTED_COMPRESSION_TYPE: i16 = 76;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

async fn produce(
    client: &mut Client,
    version: i16,
    topic: &str,
    records: Bytes,
) -> PartitionProduceResponse {
    let request = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))])]);
    let mut response = client.call(version, &request).await;
    response.responses.remove(0).partition_responses.remove(0)
}

/// Fetch v12 (topics by name) of partition 0 from offset 0: the stored batches.
async fn fetch(client: &mut Client, topic: &str) -> Bytes {
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(50 * 1024 * 1024)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1024 * 1024)])]);
    let response = client.call(12, &request).await;
    let partition = &response.responses[0].partitions[0];
    assert_eq!(partition.error_code, 0);
    partition.records.clone().unwrap_or_default()
}

fn records_batch(keys: &[Option<&str>], timestamps: &[i64], compression: Compression) -> Bytes {
    let records: Vec<Record> = keys
        .iter()
        .zip(timestamps)
        .enumerate()
        .map(|(i, (key, ts))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: i as i32,
            timestamp: *ts,
            key: key.map(|k| Bytes::from(k.to_string())),
            value: Some(Bytes::from(format!("value-{i}"))),
            headers: IndexMap::new(),
        })
        .collect();
    encode(&records, compression)
}

fn attributes(stored: &Bytes) -> i16 {
    i16::from_be_bytes([stored[21], stored[22]])
}

fn max_timestamp(stored: &Bytes) -> i64 {
    i64::from_be_bytes(stored[35..43].try_into().expect("8 bytes"))
}

#[tokio::test]
async fn log_append_time_topic_stamps_batches_and_answers_the_append_time() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    create_with(
        &mut client,
        "lat",
        &[("message.timestamp.type", "LogAppendTime")],
    )
    .await;
    let before = now_ms();
    // An hour-old CreateTime is not checked on a LogAppendTime topic.
    let response = produce(&mut client, 8, "lat", batch(3, Compression::Snappy, 5)).await;
    let after = now_ms();
    assert_eq!(response.error_code, 0);
    let lat = response.log_append_time_ms;
    assert!(
        (before..=after).contains(&lat),
        "{before} <= {lat} <= {after}"
    );
    let stored = fetch(&mut client, "lat").await;
    assert_eq!(attributes(&stored) & 0x08, 0x08, "timestamp type bit set");
    assert_eq!(max_timestamp(&stored), lat);
    let records = decode_records(&stored);
    assert_eq!(records.len(), 3);
    assert!(records
        .iter()
        .all(|r| r.timestamp_type == TimestampType::LogAppend));

    // CreateTime topics answer -1.
    create_with(&mut client, "ct", &[]).await;
    let response = produce(&mut client, 3, "ct", batch(1, Compression::None, now_ms())).await;
    assert_eq!((response.error_code, response.log_append_time_ms), (0, -1));
    broker.stop().await;
}

#[tokio::test]
async fn create_time_out_of_bounds_is_invalid_timestamp_with_record_errors() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    create_with(
        &mut client,
        "bounded",
        &[("message.timestamp.before.max.ms", "60000")],
    )
    .await;
    let now = now_ms();
    // Record 1 is older than the batch's first timestamp: only a per-record check sees it.
    let bad = records_batch(
        &[Some("a"), Some("b"), Some("c")],
        &[now, now - 3_600_000, now + 1],
        Compression::Gzip,
    );
    let response = produce(&mut client, 9, "bounded", bad.clone()).await;
    assert_eq!(response.error_code, INVALID_TIMESTAMP);
    let indexes: Vec<i32> = response
        .record_errors
        .iter()
        .map(|e| e.batch_index)
        .collect();
    assert_eq!(indexes, vec![1]);
    // Before v8 the same error without record_errors.
    let response = produce(&mut client, 7, "bounded", bad).await;
    assert_eq!(response.error_code, INVALID_TIMESTAMP);
    // Default message.timestamp.after.max.ms is one hour.
    let future = batch(1, Compression::None, now + 2 * 3_600_000);
    let response = produce(&mut client, 9, "bounded", future).await;
    assert_eq!(response.error_code, INVALID_TIMESTAMP);
    let ok = produce(&mut client, 9, "bounded", batch(2, Compression::None, now)).await;
    assert_eq!((ok.error_code, ok.base_offset), (0, 0));
    broker.stop().await;
}

#[tokio::test]
async fn compression_type_recompresses_and_records_read_back_intact() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    create_with(&mut client, "z", &[("compression.type", "zstd")]).await;
    let now = now_ms();
    let sent = [
        batch(4, Compression::None, now),
        batch(3, Compression::Gzip, now),
        batch(2, Compression::Zstd, now),
    ];
    let mut expected = Vec::new();
    for (i, b) in sent.iter().enumerate() {
        let response = produce(&mut client, 9, "z", b.clone()).await;
        assert_eq!(response.error_code, 0, "batch {i}");
        expected.extend(decode_records(b));
    }
    let stored = fetch(&mut client, "z").await;
    let mut pos = 0;
    while pos < stored.len() {
        assert_eq!(attributes(&stored.slice(pos..)) & 0x07, 4, "stored as zstd");
        let len = i32::from_be_bytes(stored[pos + 8..pos + 12].try_into().expect("len"));
        pos += 12 + len as usize;
    }
    let fetched = decode_records(&stored);
    assert_eq!(fetched.len(), expected.len());
    for (i, (got, want)) in fetched.iter().zip(&expected).enumerate() {
        assert_eq!(got.offset, i as i64);
        assert_eq!(
            (&got.key, &got.value, got.timestamp, &got.headers),
            (&want.key, &want.value, want.timestamp, &want.headers)
        );
    }
    broker.stop().await;
}

#[tokio::test]
async fn keyless_records_on_a_compacted_topic_are_invalid_record() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    create_with(&mut client, "compacted", &[("cleanup.policy", "compact")]).await;
    let now = now_ms();
    let keyless = records_batch(
        &[Some("k"), None, Some("k2"), None],
        &[now; 4],
        Compression::Lz4,
    );
    let response = produce(&mut client, 11, "compacted", keyless).await;
    assert_eq!(response.error_code, INVALID_RECORD);
    let indexes: Vec<i32> = response
        .record_errors
        .iter()
        .map(|e| e.batch_index)
        .collect();
    assert_eq!(indexes, vec![1, 3]);
    let keyed = records_batch(&[Some("a"), Some("b")], &[now; 2], Compression::None);
    let response = produce(&mut client, 3, "compacted", keyed).await;
    assert_eq!((response.error_code, response.base_offset), (0, 0));
    broker.stop().await;
}

#[tokio::test]
async fn batch_over_max_message_bytes_is_message_too_large() {
    let broker = TestBroker::start_with(|c| c.message_max_bytes = 100_000).await;
    let mut client = broker.client().await;
    create_with(&mut client, "small", &[("max.message.bytes", "300")]).await;
    let big = batch(20, Compression::None, now_ms());
    assert!(big.len() > 300);
    let response = produce(&mut client, 9, "small", big).await;
    assert_eq!(response.error_code, MESSAGE_TOO_LARGE);
    let response = produce(
        &mut client,
        9,
        "small",
        batch(1, Compression::None, now_ms()),
    )
    .await;
    assert_eq!(response.error_code, 0);
    // The broker's message.max.bytes is the default of topics without their own.
    create_with(&mut client, "broker-default", &[]).await;
    let huge = records_batch(&[Some("k")], &[now_ms()], Compression::None);
    assert_eq!(
        produce(&mut client, 9, "broker-default", huge)
            .await
            .error_code,
        0
    );
    let over: Vec<Option<&str>> =
        vec![Some("kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"); 3000];
    let over = records_batch(&over, &vec![now_ms(); 3000], Compression::None);
    assert!(over.len() > 100_000);
    let response = produce(&mut client, 9, "broker-default", over).await;
    assert_eq!(response.error_code, MESSAGE_TOO_LARGE);
    broker.stop().await;
}

#[tokio::test]
async fn produce_request_rules_one_batch_magic_two_and_zstd_from_v7() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    create_with(&mut client, "rules", &[]).await;
    let one = batch(1, Compression::None, now_ms());
    let mut two = one.to_vec();
    two.extend_from_slice(&one);
    let response = produce(&mut client, 9, "rules", Bytes::from(two)).await;
    assert_eq!(response.error_code, INVALID_RECORD);
    let mut magic1 = one.to_vec();
    magic1[16] = 1;
    let response = produce(&mut client, 9, "rules", Bytes::from(magic1)).await;
    assert_eq!(response.error_code, INVALID_RECORD);
    let zstd = batch(1, Compression::Zstd, now_ms());
    let response = produce(&mut client, 6, "rules", zstd.clone()).await;
    assert_eq!(response.error_code, UNSUPPORTED_COMPRESSION_TYPE);
    assert_eq!(produce(&mut client, 7, "rules", zstd).await.error_code, 0);
    broker.stop().await;
}
