//! Wire tests of the partition and record admin APIs: CreatePartitions, DeleteRecords,
//! DescribeLogDirs, DescribeTopicPartitions, OffsetForLeaderEpoch, and the error cases of
//! CreateTopics and DeleteTopics.

mod common;

use std::sync::Arc;

use common::{batch, create, create_topic, name, Client, TestBroker};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_request::{
    CreatePartitionsAssignment, CreatePartitionsTopic,
};
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::records::Compression;
use sluice::config::Config;
use sluice::log::disk::{Disk, SimDisk};

fn code(e: ResponseError) -> i16 {
    e.code()
}

/// Produces `count` records to one partition; returns (error code, base offset).
async fn produce(client: &mut Client, topic: &str, partition: i32, count: usize) -> (i16, i64) {
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(batch(count, Compression::None, 1_000)))])]);
    let response = client.call(9, &request).await;
    let p = &response.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// Fetch v11 of one partition at `offset`: (error code, log start offset, records bytes).
async fn fetch(client: &mut Client, topic: &str, partition: i32, offset: i64) -> (i16, i64, usize) {
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_bytes(1024 * 1024)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1024 * 1024)])]);
    let response = client.call(11, &request).await;
    let p = &response.responses[0].partitions[0];
    let size = p.records.as_ref().map_or(0, |r| r.len());
    (p.error_code, p.log_start_offset, size)
}

/// ListOffsets v7 EARLIEST (-2) or LATEST (-1) of one partition.
async fn list_offset(client: &mut Client, topic: &str, partition: i32, timestamp: i64) -> i64 {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_timestamp(timestamp)])]);
    let response = client.call(7, &request).await;
    let p = &response.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    p.offset
}

async fn partition_count(client: &mut Client, topic: &str) -> usize {
    let request = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(name(topic))),
    ]));
    let response = client.call(12, &request).await;
    response.topics[0].partitions.len()
}

fn grow(topic: &str, count: i32, assignments: Option<Vec<Vec<i32>>>) -> CreatePartitionsTopic {
    CreatePartitionsTopic::default()
        .with_name(name(topic))
        .with_count(count)
        .with_assignments(assignments.map(|a| {
            a.into_iter()
                .map(|ids| {
                    CreatePartitionsAssignment::default()
                        .with_broker_ids(ids.into_iter().map(BrokerId).collect())
                })
                .collect()
        }))
}

async fn create_partitions(
    client: &mut Client,
    version: i16,
    topics: Vec<CreatePartitionsTopic>,
    validate_only: bool,
) -> Vec<(String, i16)> {
    let request = CreatePartitionsRequest::default()
        .with_topics(topics)
        .with_timeout_ms(5000)
        .with_validate_only(validate_only);
    let response = client.call(version, &request).await;
    response
        .results
        .iter()
        .map(|r| (r.name.to_string(), r.error_code))
        .collect()
}

#[tokio::test]
async fn create_partitions_grows_a_topic_that_producers_and_fetchers_then_use() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    create(&mut client, "grow").await;
    for version in [0, 3] {
        let count = 2 + i32::from(version);
        let results =
            create_partitions(&mut client, version, vec![grow("grow", count, None)], false).await;
        assert_eq!(results, vec![("grow".to_string(), 0)], "v{version}");
        assert_eq!(partition_count(&mut client, "grow").await, count as usize);
    }
    // Explicit assignment of the one new partition to broker 1.
    let results = create_partitions(
        &mut client,
        3,
        vec![grow("grow", 6, Some(vec![vec![1]]))],
        false,
    )
    .await;
    assert_eq!(results[0].1, 0);
    assert_eq!(partition_count(&mut client, "grow").await, 6);
    assert_eq!(produce(&mut client, "grow", 5, 3).await, (0, 0));
    let (error, _, size) = fetch(&mut client, "grow", 5, 0).await;
    assert_eq!(error, 0);
    assert!(size > 0);
}

#[tokio::test]
async fn create_partitions_errors_are_kafkas_and_validate_only_changes_nothing() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    assert_eq!(
        create_topic(&mut client, "p", 2).await.topics[0].error_code,
        0
    );
    let results = create_partitions(
        &mut client,
        3,
        vec![
            grow("p", 2, None),
            grow("p", 1, None),
            grow("missing", 3, None),
            grow("dup", 3, None),
            grow("dup", 4, None),
        ],
        false,
    )
    .await;
    let find = |n: &str| {
        results
            .iter()
            .filter(|(name, _)| name == n)
            .map(|(_, c)| *c)
            .collect::<Vec<_>>()
    };
    // "p" appears twice: a duplicate, so INVALID_REQUEST once for the name.
    assert_eq!(find("p"), vec![code(ResponseError::InvalidRequest)]);
    assert_eq!(find("dup"), vec![code(ResponseError::InvalidRequest)]);
    assert_eq!(
        find("missing"),
        vec![code(ResponseError::UnknownTopicOrPartition)]
    );
    for (count, expected) in [
        (2, ResponseError::InvalidPartitions),
        (1, ResponseError::InvalidPartitions),
    ] {
        let r = create_partitions(&mut client, 1, vec![grow("p", count, None)], false).await;
        assert_eq!(r[0].1, code(expected), "count {count}");
    }
    for assignments in [
        vec![vec![1]],          // two partitions added, one assignment
        vec![vec![1], vec![]],  // empty replica list
        vec![vec![1], vec![7]], // unknown broker
        vec![vec![1], vec![1, 1]],
    ] {
        let r = create_partitions(
            &mut client,
            3,
            vec![grow("p", 4, Some(assignments.clone()))],
            false,
        )
        .await;
        assert_eq!(
            r[0].1,
            code(ResponseError::InvalidReplicaAssignment),
            "{assignments:?}"
        );
    }
    let r = create_partitions(&mut client, 3, vec![grow("p", 5, None)], true).await;
    assert_eq!(r[0].1, 0);
    assert_eq!(partition_count(&mut client, "p").await, 2);
}

async fn delete_records(
    client: &mut Client,
    version: i16,
    topic: &str,
    partition: i32,
    offset: i64,
) -> (i16, i64) {
    let request = DeleteRecordsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![DeleteRecordsTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![DeleteRecordsPartition::default()
                .with_partition_index(partition)
                .with_offset(offset)])]);
    let response = client.call(version, &request).await;
    let p = &response.topics[0].partitions[0];
    (p.error_code, p.low_watermark)
}

#[tokio::test]
async fn delete_records_moves_the_start_and_answers_kafkas_errors() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    create(&mut client, "dr").await;
    assert_eq!(produce(&mut client, "dr", 0, 10).await, (0, 0));
    assert_eq!(delete_records(&mut client, 0, "dr", 0, 4).await, (0, 4));
    // A lower offset is no error; the low watermark stays.
    assert_eq!(delete_records(&mut client, 2, "dr", 0, 2).await, (0, 4));
    assert_eq!(list_offset(&mut client, "dr", 0, -2).await, 4);
    let (error, log_start, _) = fetch(&mut client, "dr", 0, 3).await;
    assert_eq!(error, code(ResponseError::OffsetOutOfRange));
    assert_eq!(log_start, 4);
    let (error, log_start, size) = fetch(&mut client, "dr", 0, 4).await;
    assert_eq!((error, log_start), (0, 4));
    assert!(size > 0);
    let out_of_range = code(ResponseError::OffsetOutOfRange);
    assert_eq!(
        delete_records(&mut client, 2, "dr", 0, 11).await,
        (out_of_range, -1)
    );
    assert_eq!(
        delete_records(&mut client, 2, "dr", 0, -5).await,
        (out_of_range, -1)
    );
    assert_eq!(
        delete_records(&mut client, 2, "dr", 1, 0).await.0,
        code(ResponseError::UnknownTopicOrPartition)
    );
    assert_eq!(
        delete_records(&mut client, 2, "nope", 0, 0).await.0,
        code(ResponseError::UnknownTopicOrPartition)
    );
    // -1 is the high watermark.
    assert_eq!(delete_records(&mut client, 2, "dr", 0, -1).await, (0, 10));
    assert_eq!(list_offset(&mut client, "dr", 0, -2).await, 10);
    assert_eq!(list_offset(&mut client, "dr", 0, -1).await, 10);
}

#[tokio::test]
async fn delete_records_is_refused_on_compacted_and_internal_topics() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
    let request = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(name("compacted"))
            .with_num_partitions(1)
            .with_replication_factor(1)
            .with_configs(vec![CreatableTopicConfig::default()
                .with_name("cleanup.policy".into())
                .with_value(Some("compact".into()))])])
        .with_timeout_ms(5000);
    let response: CreateTopicsResponse = client.call(7, &request).await;
    assert_eq!(response.topics[0].error_code, 0);
    assert_eq!(
        delete_records(&mut client, 2, "compacted", 0, 0).await.0,
        code(ResponseError::PolicyViolation)
    );
    assert_eq!(
        delete_records(&mut client, 2, "__consumer_offsets", 0, 0)
            .await
            .0,
        code(ResponseError::InvalidTopicException)
    );
}

#[tokio::test]
async fn deleted_records_stay_deleted_after_a_crash_and_after_a_clean_restart() {
    let sim = Arc::new(SimDisk::new());
    let dir = tempfile::tempdir().unwrap();
    let config = Config::for_test(dir.path());
    let broker = TestBroker::start_on(sim.clone(), dir, config).await;
    let mut client = broker.client().await;
    create(&mut client, "keep").await;
    create(&mut client, "other").await;
    assert_eq!(produce(&mut client, "keep", 0, 10).await, (0, 0));
    assert_eq!(produce(&mut client, "other", 0, 10).await, (0, 0));
    assert_eq!(delete_records(&mut client, 2, "keep", 0, 6).await, (0, 6));
    assert_eq!(delete_records(&mut client, 2, "other", 0, 3).await, (0, 3));

    // Power loss: only what was fsynced survives.
    let mut broker = broker;
    broker.server.take().expect("running").abort().await;
    sim.crash();
    let (dir, config) = broker.stop().await;
    let broker = TestBroker::start_on(sim.clone(), dir, config).await;
    let mut client = broker.client().await;
    assert_eq!(list_offset(&mut client, "keep", 0, -2).await, 6);
    assert_eq!(list_offset(&mut client, "other", 0, -2).await, 3);
    assert_eq!(
        fetch(&mut client, "keep", 0, 0).await.0,
        code(ResponseError::OffsetOutOfRange)
    );
    // The leader epoch cache came back too (truncated to the new start).
    assert_eq!(
        offset_for_epoch(&mut client, 4, "keep", 0, 0).await,
        (0, 0, 10)
    );

    // A deleted topic's start offset is not inherited by a new topic of the same name.
    let delete = DeleteTopicsRequest::default()
        .with_topic_names(vec![name("other")])
        .with_timeout_ms(5000);
    let response: DeleteTopicsResponse = client.call(5, &delete).await;
    assert_eq!(response.responses[0].error_code, 0);
    create(&mut client, "other").await;
    assert_eq!(produce(&mut client, "other", 0, 5).await, (0, 0));

    // Without its leader-epoch-checkpoint a log rebuilds the cache from its batch headers.
    let epochs = broker.config.log_dirs[0].join("other-0/leader-epoch-checkpoint");
    let (dir, config) = broker.stop().await;
    sim.remove_file(&epochs).expect("remove checkpoint");
    let broker = TestBroker::start_on(sim.clone(), dir, config).await;
    let mut client = broker.client().await;
    assert_eq!(list_offset(&mut client, "keep", 0, -2).await, 6);
    assert_eq!(list_offset(&mut client, "other", 0, -2).await, 0);
    // A clean restart is a controlled shutdown and an unfencing: two leader elections, so
    // the current epoch is no longer 0 (as in Kafka); -1 skips that check.
    assert_eq!(
        offset_for_epoch(&mut client, 4, "other", -1, 0).await,
        (0, 0, 5)
    );
    // Rebuilt from the batch headers (epoch 0 at offset 0), then the epoch this broker leads
    // in since the restart, from its log end (Kafka's new leader does the same).
    assert_eq!(
        sim.file_bytes(&epochs).as_deref(),
        Some(&b"0\n2\n0 0\n2 5\n"[..])
    );
}

async fn describe_topic_partitions(
    client: &mut Client,
    topics: &[&str],
    limit: i32,
    cursor: Option<(&str, i32)>,
) -> DescribeTopicPartitionsResponse {
    use kafka_protocol::messages::describe_topic_partitions_request::{Cursor, TopicRequest};
    let request = DescribeTopicPartitionsRequest::default()
        .with_topics(
            topics
                .iter()
                .map(|t| TopicRequest::default().with_name(name(t)))
                .collect(),
        )
        .with_response_partition_limit(limit)
        .with_cursor(cursor.map(|(t, p)| {
            Cursor::default()
                .with_topic_name(name(t))
                .with_partition_index(p)
        }));
    client.call(0, &request).await
}

/// A described topic: name, error code, partition indexes.
type Described = (String, i16, Vec<i32>);

/// Each topic in a response, and the next cursor (topic, partition).
fn pages(r: &DescribeTopicPartitionsResponse) -> (Vec<Described>, Option<(String, i32)>) {
    let topics = r
        .topics
        .iter()
        .map(|t| {
            (
                t.name.as_ref().map_or(String::new(), |n| n.to_string()),
                t.error_code,
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect();
    let cursor = r
        .next_cursor
        .as_ref()
        .map(|c| (c.topic_name.to_string(), c.partition_index));
    (topics, cursor)
}

#[tokio::test]
async fn describe_topic_partitions_pages_with_a_cursor() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    assert_eq!(
        create_topic(&mut client, "b-topic", 3).await.topics[0].error_code,
        0
    );
    assert_eq!(
        create_topic(&mut client, "a-topic", 2).await.topics[0].error_code,
        0
    );
    let all = ["b-topic", "a-topic", "missing"];
    let r = describe_topic_partitions(&mut client, &all, 2000, None).await;
    let unknown = code(ResponseError::UnknownTopicOrPartition);
    assert_eq!(
        pages(&r),
        (
            vec![
                ("a-topic".into(), 0, vec![0, 1]),
                ("b-topic".into(), 0, vec![0, 1, 2]),
                ("missing".into(), unknown, vec![]),
            ],
            None
        )
    );
    let t = &r.topics[1];
    assert!(!t.topic_id.is_nil() && !t.is_internal);
    let p = &t.partitions[0];
    assert_eq!((p.leader_id.0, p.leader_epoch), (1, 0));
    assert_eq!(p.replica_nodes, vec![BrokerId(1)]);
    assert_eq!(p.eligible_leader_replicas, Some(vec![]));

    // Pages of three partitions, resumed from the cursor.
    let r = describe_topic_partitions(&mut client, &all, 3, None).await;
    assert_eq!(
        pages(&r),
        (
            vec![
                ("a-topic".into(), 0, vec![0, 1]),
                ("b-topic".into(), 0, vec![0])
            ],
            Some(("b-topic".into(), 1))
        )
    );
    let r = describe_topic_partitions(&mut client, &all, 2, Some(("b-topic", 1))).await;
    assert_eq!(
        pages(&r),
        (
            vec![("b-topic".into(), 0, vec![1, 2])],
            Some(("missing".into(), 0))
        )
    );
    // All topics (an empty list) from the cursor on: __consumer_offsets sorts before it. A
    // cursor not among the topics asked for is INVALID_REQUEST.
    let r = describe_topic_partitions(&mut client, &[], 2000, Some(("a-topic", 0))).await;
    let names: Vec<String> = pages(&r).0.into_iter().map(|t| t.0).collect();
    assert_eq!(names, vec!["a-topic", "b-topic"]);
    let r = describe_topic_partitions(&mut client, &["a-topic"], 10, Some(("zzz", 0))).await;
    assert_eq!(r.topics[0].error_code, code(ResponseError::InvalidRequest));
}

#[tokio::test]
async fn describe_log_dirs_lists_partition_sizes_and_disk_space() {
    use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    assert_eq!(
        create_topic(&mut client, "sized", 2).await.topics[0].error_code,
        0
    );
    assert_eq!(produce(&mut client, "sized", 1, 5).await, (0, 0));
    for version in [1, 4] {
        let request = DescribeLogDirsRequest::default().with_topics(Some(vec![
            DescribableLogDirTopic::default()
                .with_topic(name("sized"))
                .with_partitions(vec![0, 1, 9]),
        ]));
        let response = client.call(version, &request).await;
        assert_eq!(response.results.len(), 1);
        let dir = &response.results[0];
        assert_eq!(dir.error_code, 0);
        assert!(dir.log_dir.starts_with('/'), "{}", dir.log_dir.as_str());
        assert_eq!(dir.topics.len(), 1);
        let sizes: Vec<(i32, i64)> = dir.topics[0]
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.partition_size))
            .collect();
        assert_eq!(sizes.len(), 2, "{sizes:?}");
        assert_eq!(sizes[0], (0, 0));
        assert!(sizes[1].0 == 1 && sizes[1].1 > 0, "{sizes:?}");
        if version >= 4 {
            assert!(
                dir.total_bytes > 0 && dir.usable_bytes > 0 && dir.usable_bytes <= dir.total_bytes
            );
        }
    }
    // All topics: __consumer_offsets is among them.
    let response = client
        .call(4, &DescribeLogDirsRequest::default().with_topics(None))
        .await;
    let names: Vec<String> = response.results[0]
        .topics
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    assert!(
        names.contains(&"sized".to_string()) && names.contains(&"__consumer_offsets".to_string())
    );
}

async fn offset_for_epoch(
    client: &mut Client,
    version: i16,
    topic: &str,
    current_leader_epoch: i32,
    leader_epoch: i32,
) -> (i16, i32, i64) {
    use kafka_protocol::messages::offset_for_leader_epoch_request::{
        OffsetForLeaderPartition, OffsetForLeaderTopic,
    };
    let request = OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![OffsetForLeaderTopic::default()
            .with_topic(name(topic))
            .with_partitions(vec![OffsetForLeaderPartition::default()
                .with_partition(0)
                .with_current_leader_epoch(current_leader_epoch)
                .with_leader_epoch(leader_epoch)])]);
    let response = client.call(version, &request).await;
    let p = &response.topics[0].partitions[0];
    (p.error_code, p.leader_epoch, p.end_offset)
}

#[tokio::test]
async fn offset_for_leader_epoch_answers_the_log_end_for_the_current_epoch() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    create(&mut client, "epochs").await;
    // Before any append the leader's epoch 0 already ends at the log end.
    assert_eq!(
        offset_for_epoch(&mut client, 2, "epochs", 0, 0).await,
        (0, 0, 0)
    );
    assert_eq!(produce(&mut client, "epochs", 0, 7).await, (0, 0));
    for version in [2, 3, 4] {
        assert_eq!(
            offset_for_epoch(&mut client, version, "epochs", 0, 0).await,
            (0, 0, 7)
        );
        assert_eq!(
            offset_for_epoch(&mut client, version, "epochs", -1, 0).await,
            (0, 0, 7)
        );
    }
    // An epoch above every known one, or undefined: unknown (-1, -1) without an error.
    assert_eq!(
        offset_for_epoch(&mut client, 4, "epochs", -1, 3).await,
        (0, -1, -1)
    );
    assert_eq!(
        offset_for_epoch(&mut client, 4, "epochs", -1, -1).await,
        (0, -1, -1)
    );
    assert_eq!(
        offset_for_epoch(&mut client, 4, "epochs", 1, 0).await.0,
        code(ResponseError::UnknownLeaderEpoch)
    );
    // Only -1 means "no epoch"; anything below the leader's is fenced.
    assert_eq!(
        offset_for_epoch(&mut client, 4, "epochs", -2, 0).await.0,
        code(ResponseError::FencedLeaderEpoch)
    );
    assert_eq!(
        offset_for_epoch(&mut client, 4, "nope", -1, 0).await.0,
        code(ResponseError::UnknownTopicOrPartition)
    );
    // The cache is on disk and survives a restart.
    let broker = broker.restart().await;
    let mut client = broker.client().await;
    assert_eq!(
        offset_for_epoch(&mut client, 4, "epochs", -1, 0).await,
        (0, 0, 7)
    );
    // The restart moved the leadership away (controlled shutdown) and back (unfencing), each
    // with a new leader epoch: a client still on epoch 0 is fenced and refreshes its metadata.
    assert_eq!(
        offset_for_epoch(&mut client, 4, "epochs", 0, 0).await.0,
        code(ResponseError::FencedLeaderEpoch)
    );
    assert_eq!(
        offset_for_epoch(&mut client, 4, "epochs", 2, 0).await,
        (0, 0, 7)
    );
    let checkpoint = broker.config.log_dirs[0].join("epochs-0/leader-epoch-checkpoint");
    assert_eq!(
        std::fs::read_to_string(checkpoint).expect("checkpoint"),
        "0\n2\n0 0\n2 7\n"
    );
}

#[tokio::test]
async fn create_topics_errors_are_kafkas() {
    use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    create(&mut client, "exists").await;
    let topic = |n: &str, partitions: i32, rf: i16| {
        CreatableTopic::default()
            .with_name(name(n))
            .with_num_partitions(partitions)
            .with_replication_factor(rf)
    };
    let config = |k: &str, v: Option<&str>| {
        CreatableTopicConfig::default()
            .with_name(k.to_string().into())
            .with_value(v.map(|v| v.to_string().into()))
    };
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![
            topic("exists", 1, 1),
            topic("dup", 1, 1),
            topic("dup", 2, 1),
            topic("zero-partitions", 0, 1),
            topic("bad-partitions", -2, 1),
            topic("zero-rf", 1, 0),
            topic("rf-over-brokers", 1, 3),
            topic("bad-config", 1, 1).with_configs(vec![config("retention.ms", Some("soon"))]),
            topic("null-config", 1, 1).with_configs(vec![config("retention.ms", None)]),
            topic("unknown-config", 1, 1).with_configs(vec![config("no.such.config", Some("1"))]),
            topic("__cluster_metadata", 1, 1),
            topic("bad name", 1, 1),
            topic("ok", 3, -1),
        ]);
    let response: CreateTopicsResponse = client.call(7, &request).await;
    let got: Vec<(String, i16)> = response
        .topics
        .iter()
        .map(|t| (t.name.to_string(), t.error_code))
        .collect();
    let expected = [
        ("exists", ResponseError::TopicAlreadyExists.code()),
        ("zero-partitions", ResponseError::InvalidPartitions.code()),
        ("bad-partitions", ResponseError::InvalidPartitions.code()),
        ("zero-rf", ResponseError::InvalidReplicationFactor.code()),
        (
            "rf-over-brokers",
            ResponseError::InvalidReplicationFactor.code(),
        ),
        ("bad-config", ResponseError::InvalidConfig.code()),
        ("null-config", ResponseError::InvalidConfig.code()),
        ("unknown-config", ResponseError::InvalidConfig.code()),
        ("__cluster_metadata", ResponseError::InvalidRequest.code()),
        ("bad name", ResponseError::InvalidTopicException.code()),
        ("ok", 0),
        ("dup", ResponseError::InvalidRequest.code()),
    ];
    let expected: Vec<(String, i16)> = expected.iter().map(|(n, c)| (n.to_string(), *c)).collect();
    assert_eq!(got, expected);
    let ok = &response.topics[10];
    assert_eq!((ok.num_partitions, ok.replication_factor), (3, 1));
    assert_eq!(partition_count(&mut client, "ok").await, 3);

    // validate_only answers as a creation would, and creates nothing.
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_validate_only(true)
        .with_topics(vec![topic("only-validated", 2, 1), topic("exists", 1, 1)]);
    let response: CreateTopicsResponse = client.call(7, &request).await;
    assert_eq!(response.topics[0].error_code, 0);
    assert_eq!(response.topics[0].num_partitions, 2);
    assert_eq!(
        response.topics[1].error_code,
        ResponseError::TopicAlreadyExists.code()
    );
    let request = MetadataRequest::default()
        .with_allow_auto_topic_creation(false)
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(name("only-validated")))
        ]));
    let response: MetadataResponse = client.call(12, &request).await;
    assert_eq!(
        response.topics[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
}

#[tokio::test]
async fn delete_topics_by_id_and_its_refusals_are_kafkas() {
    use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let id_of = |r: CreateTopicsResponse| r.topics[0].topic_id;
    let by_id = id_of(create_topic(&mut client, "by-id", 1).await);
    let both = id_of(create_topic(&mut client, "both", 1).await);
    create(&mut client, "by-name").await;
    let state = |n: Option<&str>, id: uuid::Uuid| {
        DeleteTopicState::default()
            .with_name(n.map(name))
            .with_topic_id(id)
    };
    let unknown = uuid::Uuid::from_u128(42);
    let request = DeleteTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![
            state(None, by_id),
            state(Some("by-name"), uuid::Uuid::nil()),
            state(Some("both"), both),
            state(None, uuid::Uuid::nil()),
            state(None, unknown),
            state(Some("twice"), uuid::Uuid::nil()),
            state(Some("twice"), uuid::Uuid::nil()),
        ]);
    let response: DeleteTopicsResponse = client.call(6, &request).await;
    let got: Vec<(Option<String>, uuid::Uuid, i16)> = response
        .responses
        .iter()
        .map(|r| {
            (
                r.name.as_ref().map(|n| n.to_string()),
                r.topic_id,
                r.error_code,
            )
        })
        .collect();
    let invalid = ResponseError::InvalidRequest.code();
    assert_eq!(
        got,
        vec![
            (Some("both".to_string()), both, invalid),
            (None, uuid::Uuid::nil(), invalid),
            (Some("twice".to_string()), uuid::Uuid::nil(), invalid),
            (Some("by-id".to_string()), by_id, 0),
            (Some("by-name".to_string()), got[4].1, 0),
            (None, unknown, ResponseError::UnknownTopicId.code()),
        ]
    );
    assert_eq!(partition_count(&mut client, "both").await, 1);
}

#[tokio::test]
async fn delete_topics_is_refused_when_delete_topic_enable_is_false() {
    let broker = TestBroker::start_with(|c| c.delete_topic_enable = false).await;
    let mut client = broker.client().await;
    create(&mut client, "kept").await;
    for (version, expected) in [
        (1, ResponseError::InvalidRequest),
        (5, ResponseError::TopicDeletionDisabled),
    ] {
        let request = DeleteTopicsRequest::default()
            .with_timeout_ms(5000)
            .with_topic_names(vec![name("kept")]);
        let response: DeleteTopicsResponse = client.call(version, &request).await;
        assert_eq!(
            response.responses[0].error_code,
            expected.code(),
            "v{version}"
        );
    }
    assert_eq!(partition_count(&mut client, "kept").await, 1);
}
