//! Crash tests on a simulated disk that loses every write not yet fsynced (kill -9 alone
//! keeps the page cache and proves nothing about fsync).

mod common;

use std::sync::Arc;

use common::{batch, create, decode_records, name, Client, TestBroker};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::records::Compression;
use sluice::config::Config;
use sluice::log::disk::SimDisk;

/// Produces one batch of `count` records; returns (error code, base offset).
async fn produce(client: &mut Client, topic: &str, count: usize, acks: i16) -> (i16, i64) {
    let request = ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch(count, Compression::None, 1_000)))])]);
    let response = client.call(9, &request).await;
    let p = &response.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// Every record offset of partition 0, read from the start.
async fn offsets(client: &mut Client, topic: &str) -> Vec<i64> {
    let mut out = Vec::new();
    loop {
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_bytes(10 * 1024 * 1024)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default()
                .with_topic(name(topic))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(out.last().map_or(0, |o| o + 1))
                    .with_partition_max_bytes(1024 * 1024)])]);
        let response = client.call(11, &request).await;
        let partition = &response.responses[0].partitions[0];
        assert_eq!(partition.error_code, 0);
        let records = decode_records(partition.records.as_ref().expect("records"));
        if records.is_empty() {
            return out;
        }
        out.extend(records.iter().map(|r| r.offset));
    }
}

async fn start(sim: &Arc<SimDisk>, dir: tempfile::TempDir, config: Config) -> TestBroker {
    TestBroker::start_on(sim.clone(), dir, config).await
}

/// Crashes the broker and the simulated machine, then starts again on what survived.
async fn crash_and_restart(broker: TestBroker, sim: &Arc<SimDisk>) -> TestBroker {
    let mut broker = broker;
    let server = broker.server.take().expect("running");
    server.abort().await;
    sim.crash();
    let (dir, config) = broker.stop().await;
    start(sim, dir, config).await
}

#[tokio::test]
async fn flush_per_message_loses_no_acknowledged_record_in_a_crash() {
    let sim = Arc::new(SimDisk::new());
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_test(dir.path());
    config.log_flush_interval_messages = 1;
    let broker = start(&sim, dir, config).await;
    let mut client = broker.client().await;
    create(&mut client, "t").await;
    let mut acknowledged = 0;
    for _ in 0..20 {
        let (code, base) = produce(&mut client, "t", 5, 1).await;
        assert_eq!(code, 0);
        assert_eq!(base, acknowledged);
        acknowledged += 5;
    }
    drop(client);
    let broker = crash_and_restart(broker, &sim).await;
    let mut client = broker.client().await;
    let survived = offsets(&mut client, "t").await;
    assert_eq!(survived, (0..acknowledged).collect::<Vec<_>>());
}

#[tokio::test]
async fn default_policy_keeps_acks_all_records_and_a_contiguous_log() {
    let sim = Arc::new(SimDisk::new());
    let dir = tempfile::tempdir().unwrap();
    let config = Config::for_test(dir.path());
    let broker = start(&sim, dir, config).await;
    let mut client = broker.client().await;
    create(&mut client, "t").await;
    let mut durable_end = 0;
    for round in 0..10 {
        let acks = if round % 2 == 0 { -1 } else { 1 };
        let (code, base) = produce(&mut client, "t", 4, acks).await;
        assert_eq!(code, 0);
        if acks == -1 {
            durable_end = base + 4;
        }
    }
    drop(client);
    let broker = crash_and_restart(broker, &sim).await;
    let mut client = broker.client().await;
    let survived = offsets(&mut client, "t").await;
    assert!(
        survived.len() as i64 >= durable_end,
        "every acks=all record survives: {} < {durable_end}",
        survived.len()
    );
    assert_eq!(
        survived,
        (0..survived.len() as i64).collect::<Vec<_>>(),
        "no gaps"
    );
    // The recovered log goes on from its end.
    let (code, base) = produce(&mut client, "t", 1, 1).await;
    assert_eq!(code, 0);
    assert_eq!(base, survived.len() as i64);
}

#[tokio::test]
async fn full_disk_answers_kafka_storage_error_and_acknowledges_nothing() {
    let sim = Arc::new(SimDisk::new());
    let dir = tempfile::tempdir().unwrap();
    let config = Config::for_test(dir.path());
    let broker = start(&sim, dir, config).await;
    let mut client = broker.client().await;
    create(&mut client, "t").await;
    assert_eq!(produce(&mut client, "t", 3, 1).await.0, 0);
    sim.fail_writes(true);
    let (code, _) = produce(&mut client, "t", 3, -1).await;
    assert_eq!(code, ResponseError::KafkaStorageError.code());
    sim.fail_writes(false);
    let (code, base) = produce(&mut client, "t", 2, -1).await;
    assert_eq!(code, 0);
    assert_eq!(base, 3, "the failed batch took no offsets");
    assert_eq!(offsets(&mut client, "t").await, (0..5).collect::<Vec<_>>());
}
