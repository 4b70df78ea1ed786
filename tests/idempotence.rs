//! Idempotent produce over the wire (KIP-98, KIP-360): InitProducerId, retries answered with
//! their original offsets, sequence gaps, epochs, and producer state across restarts and
//! crashes (on the simulated disk of tests/durability.rs).

mod common;

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use common::{create, decode_records, name, Client, TestBroker};
use indexmap::IndexMap;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use sluice::config::Config;
use sluice::log::disk::SimDisk;

const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
const INVALID_PRODUCER_EPOCH: i16 = 47;
const INVALID_TXN_STATE: i16 = 48;

async fn init_producer_id(client: &mut Client, version: i16) -> (i64, i16) {
    let request = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(i32::MAX)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let response = client.call(version, &request).await;
    assert_eq!(response.error_code, 0);
    (response.producer_id.0, response.producer_epoch)
}

/// Wall time: batches carry current timestamps so that retention keeps small segments.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// One batch of `count` records of producer `pid` at `epoch` from sequence `seq`; the record
/// values name their sequence so duplicates are visible when read back.
fn idempotent_batch(pid: i64, epoch: i16, seq: i32, count: usize, transactional: bool) -> Bytes {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: pid,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: seq + i as i32,
            timestamp: now_ms(),
            key: None,
            value: Some(Bytes::from(format!("seq-{}", seq + i as i32))),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encode batch");
    buf.freeze()
}

fn produce_request(topic: &str, records: Bytes) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))])])
}

/// Produces one idempotent batch; returns (error code, base offset).
async fn produce(
    client: &mut Client,
    topic: &str,
    pid: i64,
    epoch: i16,
    seq: i32,
    count: usize,
) -> (i16, i64) {
    let request = produce_request(topic, idempotent_batch(pid, epoch, seq, count, false));
    let response = client.call(9, &request).await;
    let p = &response.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// Every record of partition 0 as (offset, value), read from the start.
async fn read_all(client: &mut Client, topic: &str) -> Vec<(i64, String)> {
    let mut out: Vec<(i64, String)> = Vec::new();
    loop {
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_bytes(10 * 1024 * 1024)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default()
                .with_topic(name(topic))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(out.last().map_or(0, |o| o.0 + 1))
                    .with_partition_max_bytes(1024 * 1024)])]);
        let response = client.call(11, &request).await;
        let partition = &response.responses[0].partitions[0];
        assert_eq!(partition.error_code, 0);
        let records = decode_records(partition.records.as_ref().expect("records"));
        if records.is_empty() {
            return out;
        }
        out.extend(records.iter().map(|r| {
            let value = r.value.as_ref().expect("value");
            (r.offset, String::from_utf8_lossy(value).into_owned())
        }));
    }
}

/// The values a producer that wrote sequences 0..n exactly once leaves, at offsets 0..n.
fn exactly_once(n: i32) -> Vec<(i64, String)> {
    (0..n).map(|s| (i64::from(s), format!("seq-{s}"))).collect()
}

#[tokio::test]
async fn init_producer_id_hands_out_distinct_ids_at_epoch_zero_at_lowest_and_highest_version() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let (a, epoch_a) = init_producer_id(&mut client, 0).await;
    let (b, epoch_b) = init_producer_id(&mut client, 5).await;
    assert_eq!((epoch_a, epoch_b), (0, 0));
    assert!(a >= 0 && b >= 0 && a != b, "{a} {b}");
}

#[tokio::test]
async fn init_producer_id_with_a_transactional_id_fails_fast_with_unsupported_version() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let request = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str("tx"))))
        .with_transaction_timeout_ms(60_000);
    let response = client.call(4, &request).await;
    assert_eq!(response.error_code, 35);
    assert_eq!(response.producer_id.0, -1);
    let empty = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str(""))))
        .with_transaction_timeout_ms(60_000);
    assert_eq!(
        client.call(4, &empty).await.error_code,
        42,
        "INVALID_REQUEST"
    );
}

#[tokio::test]
async fn producer_ids_are_not_reused_after_a_restart() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let (before, _) = init_producer_id(&mut client, 4).await;
    drop(client);
    let broker = broker.restart().await;
    let mut client = broker.client().await;
    let (after, _) = init_producer_id(&mut client, 4).await;
    assert!(
        after > before,
        "new block after restart: {after} > {before}"
    );
}

#[tokio::test]
async fn five_in_flight_retries_of_newest_and_oldest_retained_get_original_offsets_once() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    create(&mut client, "t").await;
    let (pid, epoch) = init_producer_id(&mut client, 4).await;
    // Five batches of three records in flight on one connection, as a Java producer with
    // max.in.flight.requests.per.connection=5 sends them.
    for n in 0..5 {
        let request = produce_request("t", idempotent_batch(pid, epoch, n * 3, 3, false));
        client.send(9, &request).await;
    }
    for n in 0..5 {
        let mut frame = client.read_frame().await.expect("response");
        let header = ResponseHeader::decode(&mut frame, ApiKey::Produce.response_header_version(9))
            .expect("header");
        let response = ProduceResponse::decode(&mut frame, 9).expect("response");
        let p = &response.responses[0].partition_responses[0];
        assert_eq!(header.correlation_id, client_correlation_id(n));
        assert_eq!((p.error_code, p.base_offset), (0, i64::from(n) * 3));
    }
    // Retry of the newest batch, then of the oldest retained one (n-4).
    assert_eq!(produce(&mut client, "t", pid, epoch, 12, 3).await, (0, 12));
    assert_eq!(produce(&mut client, "t", pid, epoch, 0, 3).await, (0, 0));
    assert_eq!(read_all(&mut client, "t").await, exactly_once(15));
    // One more batch pushes sequence 0 out of the five-batch window: Kafka answers
    // OUT_OF_ORDER_SEQUENCE_NUMBER (it never sends DUPLICATE_SEQUENCE_NUMBER).
    assert_eq!(produce(&mut client, "t", pid, epoch, 15, 1).await, (0, 15));
    assert_eq!(
        produce(&mut client, "t", pid, epoch, 0, 3).await.0,
        OUT_OF_ORDER_SEQUENCE_NUMBER
    );
    assert_eq!(produce(&mut client, "t", pid, epoch, 3, 3).await, (0, 3));
    assert_eq!(read_all(&mut client, "t").await, exactly_once(16));
}

/// Correlation id of the n-th pipelined produce in the five-in-flight test: the client
/// numbers requests from 1, and CreateTopics and InitProducerId came first.
fn client_correlation_id(n: i32) -> i32 {
    3 + n
}

#[tokio::test]
async fn sequence_gap_and_stale_epoch_are_refused_and_append_nothing() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    create(&mut client, "t").await;
    let (pid, _) = init_producer_id(&mut client, 4).await;
    assert_eq!(produce(&mut client, "t", pid, 2, 0, 2).await, (0, 0));
    assert_eq!(
        produce(&mut client, "t", pid, 2, 3, 1).await.0,
        OUT_OF_ORDER_SEQUENCE_NUMBER
    );
    assert_eq!(
        produce(&mut client, "t", pid, 1, 2, 1).await.0,
        INVALID_PRODUCER_EPOCH
    );
    assert_eq!(produce(&mut client, "t", pid, 2, 2, 1).await, (0, 2));
    assert_eq!(read_all(&mut client, "t").await, exactly_once(3));
}

#[tokio::test]
async fn client_side_epoch_bump_restarting_at_sequence_zero_is_accepted_kip_360() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    create(&mut client, "t").await;
    let (pid, epoch) = init_producer_id(&mut client, 4).await;
    assert_eq!(produce(&mut client, "t", pid, epoch, 0, 4).await, (0, 0));
    // A new epoch must start at sequence 0.
    assert_eq!(
        produce(&mut client, "t", pid, epoch + 1, 4, 1).await.0,
        OUT_OF_ORDER_SEQUENCE_NUMBER
    );
    let request = produce_request("t", idempotent_batch(pid, epoch + 1, 0, 2, false));
    let response = client.call(9, &request).await;
    let p = &response.responses[0].partition_responses[0];
    assert_eq!((p.error_code, p.base_offset), (0, 4));
    // The old epoch is fenced from now on.
    assert_eq!(
        produce(&mut client, "t", pid, epoch, 4, 1).await.0,
        INVALID_PRODUCER_EPOCH
    );
}

#[tokio::test]
async fn transactional_batches_are_refused_with_invalid_txn_state() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    create(&mut client, "t").await;
    let (pid, epoch) = init_producer_id(&mut client, 4).await;
    let request = produce_request("t", idempotent_batch(pid, epoch, 0, 1, true));
    let response = client.call(9, &request).await;
    let p = &response.responses[0].partition_responses[0];
    assert_eq!(p.error_code, INVALID_TXN_STATE);
    assert!(read_all(&mut client, "t").await.is_empty());
}

#[tokio::test]
async fn producer_state_survives_a_restart_through_its_snapshot_and_the_log_tail() {
    // Small segments: rolls write snapshots, and the batches after the last roll come from
    // the log tail.
    let broker = TestBroker::start_with(|c| c.log_segment_bytes = 400).await;
    let mut client = broker.client().await;
    create(&mut client, "t").await;
    let (pid, epoch) = init_producer_id(&mut client, 4).await;
    for n in 0..20 {
        assert_eq!(
            produce(&mut client, "t", pid, epoch, n * 2, 2).await,
            (0, i64::from(n) * 2)
        );
    }
    drop(client);
    let snapshots = |dir: &std::path::Path| {
        std::fs::read_dir(dir.join("t-0"))
            .expect("partition dir")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".snapshot"))
            })
            .count()
    };
    assert!(snapshots(broker.data_dir()) >= 1, "rolls wrote snapshots");
    let broker = broker.restart().await;
    let mut client = broker.client().await;
    // Retries of the newest and of the oldest retained batch still find their offsets.
    assert_eq!(produce(&mut client, "t", pid, epoch, 38, 2).await, (0, 38));
    assert_eq!(produce(&mut client, "t", pid, epoch, 30, 2).await, (0, 30));
    assert_eq!(
        produce(&mut client, "t", pid, epoch, 41, 1).await.0,
        OUT_OF_ORDER_SEQUENCE_NUMBER
    );
    assert_eq!(
        produce(&mut client, "t", pid, epoch - 1, 40, 1).await.0,
        INVALID_PRODUCER_EPOCH
    );
    assert_eq!(produce(&mut client, "t", pid, epoch, 40, 1).await, (0, 40));
    assert_eq!(read_all(&mut client, "t").await, exactly_once(41));
}

#[tokio::test]
async fn producer_state_is_rebuilt_from_the_log_when_snapshots_are_lost() {
    let broker = TestBroker::start_with(|c| c.log_segment_bytes = 400).await;
    let mut client = broker.client().await;
    create(&mut client, "t").await;
    let (pid, epoch) = init_producer_id(&mut client, 4).await;
    for n in 0..10 {
        assert_eq!(produce(&mut client, "t", pid, epoch, n, 1).await.0, 0);
    }
    drop(client);
    let (dir, config) = broker.stop().await;
    for entry in std::fs::read_dir(dir.path().join("t-0")).expect("dir") {
        let path = entry.expect("entry").path();
        if path.to_string_lossy().ends_with(".snapshot") {
            std::fs::remove_file(path).expect("remove snapshot");
        }
    }
    let broker = TestBroker::start_on(Arc::new(sluice::log::FsDisk::new()), dir, config).await;
    let mut client = broker.client().await;
    assert_eq!(produce(&mut client, "t", pid, epoch, 9, 1).await, (0, 9));
    assert_eq!(produce(&mut client, "t", pid, epoch, 10, 1).await, (0, 10));
    assert_eq!(read_all(&mut client, "t").await, exactly_once(11));
}

/// Crashes the broker and the simulated machine (unsynced writes are lost), then starts again.
async fn crash_and_restart(broker: TestBroker, sim: &Arc<SimDisk>) -> TestBroker {
    let mut broker = broker;
    let server = broker.server.take().expect("running");
    server.abort().await;
    sim.crash();
    let (dir, config) = broker.stop().await;
    TestBroker::start_on(sim.clone(), dir, config).await
}

#[tokio::test]
async fn crash_mid_stream_then_retries_leave_no_duplicates_and_no_gaps() {
    for acks_all in [true, false] {
        let sim = Arc::new(SimDisk::new());
        let dir = tempfile::tempdir().expect("dir");
        let mut config = Config::for_test(dir.path());
        config.log_segment_bytes = 600;
        let broker = TestBroker::start_on(sim.clone(), dir, config).await;
        let mut client = broker.client().await;
        create(&mut client, "t").await;
        let (pid, epoch) = init_producer_id(&mut client, 4).await;
        // 30 batches of two records; alternate acks so part of the tail is unsynced.
        let mut seq = 0;
        for n in 0..30 {
            let acks = if acks_all || n % 3 == 0 { -1 } else { 1 };
            let request =
                produce_request("t", idempotent_batch(pid, epoch, seq, 2, false)).with_acks(acks);
            let response = client.call(9, &request).await;
            assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
            seq += 2;
        }
        drop(client);
        let broker = crash_and_restart(broker, &sim).await;
        let mut client = broker.client().await;
        let survived = read_all(&mut client, "t").await;
        let kept = survived.len() as i32;
        assert_eq!(survived, exactly_once(kept), "a prefix survives");
        if acks_all {
            assert_eq!(kept, 60, "every acks=all batch survives");
        }
        // The producer retries its last five batches (their responses may have been lost),
        // in order, then carries on: each retry is a duplicate of what survived or the next
        // batch in sequence.
        let first_retry = (seq - 10).min(kept - kept % 2);
        let mut next = first_retry;
        while next < seq + 4 {
            let (code, base) = produce(&mut client, "t", pid, epoch, next, 2).await;
            assert_eq!(
                (code, base),
                (0, i64::from(next)),
                "sequence {next} after a crash that kept {kept} records (acks_all={acks_all})"
            );
            next += 2;
        }
        assert_eq!(read_all(&mut client, "t").await, exactly_once(seq + 4));
        drop(client);
        drop(broker);
    }
}
