//! Black-box tests of the log cleaner through the broker: `__consumer_offsets` is compacted
//! and the group coordinator replays the same groups and offsets from the cleaned log.

mod common;

use common::TestBroker;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

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
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while broker.metrics.log_cleaner_passes_total.get() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no clean within 20 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(broker.metrics.log_cleaner_removed_records_total.get() > 300);
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
