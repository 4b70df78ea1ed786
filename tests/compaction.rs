//! Black-box tests of the log cleaner through the broker: `__consumer_offsets` is compacted
//! and the group coordinator replays the same groups and offsets from the cleaned log; the
//! cleaner's throttle is a dynamic broker config and repeated cleaning keeps segments few.

mod common;

use common::TestBroker;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// A simple (memberless) commit of `offset` on partition 0 and `offset + 1` on partition 1.
fn commit(group: &str, offset: i64) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(s(""))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(s("t")))
            .with_partitions(vec![
                OffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(offset),
                OffsetCommitRequestPartition::default()
                    .with_partition_index(1)
                    .with_committed_offset(offset + 1),
            ])])
}

async fn committed(b: &TestBroker, group: &str) -> Vec<i64> {
    let mut c = b.client().await;
    let r = c
        .call(
            5,
            &OffsetFetchRequest::default()
                .with_group_id(GroupId(s(group)))
                .with_topics(None),
        )
        .await;
    r.topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.committed_offset))
        .collect()
}

#[tokio::test]
async fn compacted_offsets_topic_replays_the_same_groups_after_cleaning() {
    let b = TestBroker::start_with(|c| {
        c.offsets_topic_num_partitions = 1;
        c.offsets_topic_segment_bytes = 1024;
        c.log_cleaner_backoff_ms = 20;
        c.log_cleaner_min_cleanable_ratio = 0.01;
    })
    .await;
    let mut c = b.client().await;
    let r = c
        .call(
            7,
            &CreateTopicsRequest::default()
                .with_topics(vec![CreatableTopic::default()
                    .with_name(TopicName(s("t")))
                    .with_num_partitions(2)
                    .with_replication_factor(1)])
                .with_timeout_ms(5000),
        )
        .await;
    assert_eq!(r.topics[0].error_code, 0);
    // Group "gone" commits, then is deleted: tombstones for its offsets and metadata.
    assert_eq!(
        c.call(8, &commit("gone", 5)).await.topics[0].partitions[0].error_code,
        0
    );
    let r = c
        .call(
            2,
            &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("gone"))]),
        )
        .await;
    assert_eq!(r.results[0].error_code, 0);
    for offset in 0..200 {
        let r = c.call(8, &commit("kept", offset)).await;
        assert_eq!(r.topics[0].partitions[0].error_code, 0);
    }
    let server = b.server.as_ref().expect("running");
    let broker = &server.broker;
    let log = broker
        .logs
        .get("__consumer_offsets", 0)
        .expect("offsets partition");
    // A pass may run while the commits are still arriving: wait for the removals, not for the
    // first pass.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while broker.metrics.log_cleaner_removed_records_total.get() <= 300 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} records removed within 20 s",
            broker.metrics.log_cleaner_removed_records_total.get()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // 200 commit batches of over 100 bytes each were appended; the latest two keys remain
    // (plus the active segment and each segment's last batch).
    let log_end = log.log_end_offset();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while log.size_bytes() > 8_000 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} bytes left",
            log.size_bytes()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        log.log_end_offset(),
        log_end,
        "cleaning never moves the log end"
    );
    assert_eq!(committed(&b, "kept").await, vec![199, 200]);
    let b = b.restart().await;
    assert_eq!(
        committed(&b, "kept").await,
        vec![199, 200],
        "replayed after compaction"
    );
    assert!(
        committed(&b, "gone").await.is_empty(),
        "the deleted group stays deleted"
    );
    let mut c = b.client().await;
    let r = c.call(5, &ListGroupsRequest::default()).await;
    let groups: Vec<String> = r.groups.iter().map(|g| g.group_id.to_string()).collect();
    assert_eq!(groups, vec!["kept".to_string()]);
}

/// IncrementalAlterConfigs SET of one broker config on the cluster default (resource "").
async fn set_broker_config(b: &TestBroker, key: &str, value: &str) -> i16 {
    use kafka_protocol::messages::incremental_alter_configs_request as inc;
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        inc::AlterConfigsResource::default()
            .with_resource_type(4)
            .with_resource_name(s(""))
            .with_configs(vec![inc::AlterableConfig::default()
                .with_name(s(key))
                .with_config_operation(0)
                .with_value(Some(s(value)))]),
    ]);
    let mut c = b.client().await;
    c.call(1, &request).await.responses[0].error_code
}

async fn produce(c: &mut common::Client, topic: &str, records: bytes::Bytes) {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    let request = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(s(topic)))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))])]);
    let r = c.call(9, &request).await;
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
}

#[tokio::test]
async fn throttle_is_a_dynamic_config_and_repeated_cleaning_keeps_segments_few() {
    let b = TestBroker::start().await;
    let broker = &b.server.as_ref().expect("running").broker;
    assert_eq!(
        broker
            .effective_config()
            .log_cleaner_io_max_bytes_per_second,
        f64::MAX,
        "Kafka's default: unthrottled"
    );
    // A generous limit (the test must not be slowed down), set at run time as Kafka allows.
    assert_eq!(
        set_broker_config(&b, "log.cleaner.io.max.bytes.per.second", "50000000").await,
        0
    );
    assert_eq!(
        broker
            .effective_config()
            .log_cleaner_io_max_bytes_per_second,
        50_000_000.0
    );
    // The backoff is dynamic too, and read before each pass.
    assert_eq!(
        set_broker_config(&b, "log.cleaner.backoff.ms", "20").await,
        0
    );
    assert_ne!(
        set_broker_config(&b, "log.cleaner.io.max.bytes.per.second", "fast").await,
        0,
        "not a DOUBLE"
    );
    let mut c = b.client().await;
    common::create_with(
        &mut c,
        "k",
        &[
            ("cleanup.policy", "compact"),
            ("segment.bytes", "2048"),
            ("min.cleanable.dirty.ratio", "0.01"),
        ],
    )
    .await;
    // The partition's log is created by the first produce.
    produce(&mut c, "k", common::batch(4, Compression::None, 1_000)).await;
    let log = broker.logs.get("k", 0).expect("partition");
    let mut counts = Vec::new();
    for round in 0..8 {
        let passes = broker.metrics.log_cleaner_passes_total.get();
        // 40 batches of the same 4 keys: about 5 segments of 2048 bytes a round.
        for _ in 0..40 {
            produce(&mut c, "k", common::batch(4, Compression::None, 1_000)).await;
        }
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        while broker.metrics.log_cleaner_passes_total.get() == passes {
            assert!(
                tokio::time::Instant::now() < deadline,
                "round {round}: no clean"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        counts.push(log.segment_count());
    }
    // Without grouping every round leaves its segments behind (40+ after 8 rounds); with it
    // the small cleaned segments merge at the next clean.
    assert!(counts[7] <= 12, "segments after each round: {counts:?}");
    let records = {
        let fetched = log
            .read(log.log_start_offset(), 1 << 20, true, log.log_end_offset())
            .expect("read");
        common::decode_records(&fetched)
    };
    for k in 0..4 {
        let key = format!("key-{k}");
        assert!(
            records
                .iter()
                .any(|r| r.key.as_deref() == Some(key.as_bytes())),
            "{key} survives"
        );
    }
}
