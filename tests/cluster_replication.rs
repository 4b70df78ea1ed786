//! Black-box replication on three in-process brokers: followers copy the leader's log, acks=all
//! waits for the ISR, killing a leader loses no acknowledged record (checked record by record),
//! a restarted broker catches up and rejoins the ISR, and min.insync.replicas refuses writes
//! that too few replicas would hold.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use common::cluster::{eventually, Cluster, Node};
use indexmap::IndexMap;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Compression, Record, TimestampType};

const TOPIC: &str = "replicated";
const NOT_ENOUGH_REPLICAS: i16 = 19;

fn quick_failover(c: &mut sluice::config::Config) {
    c.broker_session_timeout_ms = 2000;
    c.broker_heartbeat_interval_ms = 200;
    c.replica_fetch_backoff_ms = 100;
}

async fn create(node: &Node, min_isr: &str) {
    let topic = CreatableTopic::default()
        .with_name(common::name(TOPIC))
        .with_num_partitions(1)
        .with_replication_factor(3)
        .with_configs(vec![CreatableTopicConfig::default()
            .with_name(StrBytes::from_static_str("min.insync.replicas"))
            .with_value(Some(StrBytes::from_string(min_isr.to_string())))]);
    let response = node
        .client()
        .await
        .call(
            5,
            &CreateTopicsRequest::default()
                .with_topics(vec![topic])
                .with_timeout_ms(30_000),
        )
        .await;
    assert_eq!(response.topics[0].error_code, 0, "{response:?}");
}

/// (leader, leader epoch, ISR) of partition 0 as `node` describes it.
async fn leadership(node: &Node) -> (i32, i32, Vec<i32>) {
    let request = MetadataRequest::default().with_topics(Some(vec![
        metadata_request::MetadataRequestTopic::default().with_name(Some(common::name(TOPIC))),
    ]));
    let metadata = node.client().await.call(12, &request).await;
    let p = &metadata.topics[0].partitions[0];
    let mut isr: Vec<i32> = p.isr_nodes.iter().map(|b| b.0).collect();
    isr.sort_unstable();
    (p.leader_id.0, p.leader_epoch, isr)
}

fn one_record(value: &str) -> Bytes {
    common::encode(
        &[Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: 0,
            sequence: 0,
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(Bytes::from(value.to_string())),
            headers: IndexMap::new(),
        }],
        Compression::None,
    )
}

/// One acks=all produce of `value` to `node`; the partition's error code.
async fn produce(node: &Node, value: &str) -> i16 {
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(common::name(TOPIC))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(one_record(value)))])]);
    let response = node.client().await.call(9, &request).await;
    response.responses[0].partition_responses[0].error_code
}

/// Every record value of partition 0 from offset 0 up to the high watermark, read from the
/// leader `node`.
async fn read_all(node: &Node) -> Vec<String> {
    let mut client = node.client().await;
    let mut values = Vec::new();
    let mut offset = 0i64;
    loop {
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(0)
            .with_max_bytes(1 << 20)
            .with_topics(vec![FetchTopic::default()
                .with_topic(common::name(TOPIC))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(offset)
                    .with_partition_max_bytes(1 << 20)])]);
        let response = client.call(11, &request).await;
        let p = &response.responses[0].partitions[0];
        assert_eq!(p.error_code, 0, "fetch at {offset}");
        let records = common::decode_records(p.records.as_ref().expect("records"));
        if records.is_empty() {
            assert_eq!(
                offset, p.high_watermark,
                "stopped before the high watermark"
            );
            return values;
        }
        for r in records {
            if r.offset >= offset {
                values.push(String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into());
                offset = r.offset + 1;
            }
        }
    }
}

/// Sends `count` values starting at `first` to whoever leads, following leadership changes;
/// returns the values acknowledged.
async fn produce_run(cluster: &Cluster, witness: usize, first: usize, count: usize) -> Vec<String> {
    let mut acked = Vec::new();
    for i in first..first + count {
        let value = format!("v{i}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let (leader, _, _) = leadership(&cluster.nodes[witness]).await;
            let node = cluster
                .nodes
                .iter()
                .find(|n| n.node_id == leader && n.server.is_some());
            if let Some(node) = node {
                if produce(node, &value).await == 0 {
                    acked.push(value);
                    break;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{value} never acknowledged"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_killing_the_leader_and_the_restarted_broker_rejoins_the_isr()
{
    let mut cluster = Cluster::start(3, quick_failover).await;
    create(&cluster.nodes[0], "2").await;
    let mut acked = produce_run(&cluster, 0, 0, 100).await;
    let (leader, epoch, isr) = leadership(&cluster.nodes[0]).await;
    assert_eq!(isr, vec![1, 2, 3], "followers keep up");

    // Every replica holds what the leader acknowledged.
    eventually(Duration::from_secs(10), "followers copy the log", || {
        let ends: BTreeSet<i64> = cluster
            .running()
            .map(|n| {
                n.server
                    .as_ref()
                    .expect("running")
                    .broker
                    .logs
                    .get(TOPIC, 0)
                    .map_or(-1, |l| l.log_end_offset())
            })
            .collect();
        async move { ends == BTreeSet::from([100]) }
    })
    .await;

    // SIGKILL of the leader while producing: a follower takes over one epoch later.
    let victim = (leader - 1) as usize;
    cluster.kill(victim).await;
    let witness = (victim + 1) % 3;
    eventually(Duration::from_secs(10), "a new leader", || {
        let node = &cluster.nodes[witness];
        async move {
            let (now, now_epoch, _) = leadership(node).await;
            now != leader && now != -1 && now_epoch > epoch
        }
    })
    .await;
    acked.extend(produce_run(&cluster, witness, 100, 100).await);

    // The killed broker comes back, truncates to the new leader's log, catches up, and the
    // leader adds it back to the ISR.
    cluster.start_nodes(&[victim]).await;
    eventually(Duration::from_secs(20), "the ISR is full again", || {
        let node = &cluster.nodes[witness];
        async move { leadership(node).await.2 == vec![1, 2, 3] }
    })
    .await;
    acked.extend(produce_run(&cluster, witness, 200, 50).await);

    // Checker: every acknowledged record is read back exactly once, in order.
    let (leader, _, _) = leadership(&cluster.nodes[witness]).await;
    let leader_node = cluster
        .nodes
        .iter()
        .find(|n| n.node_id == leader)
        .expect("leader");
    let read = read_all(leader_node).await;
    let acked_set: BTreeSet<&String> = acked.iter().collect();
    let read_acked: Vec<&String> = read.iter().filter(|v| acked_set.contains(v)).collect();
    assert_eq!(
        read_acked,
        acked.iter().collect::<Vec<_>>(),
        "acknowledged records lost, duplicated or out of order"
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_min_insync_replicas_3_a_missing_replica_refuses_acks_all_until_it_returns() {
    let mut cluster = Cluster::start(3, quick_failover).await;
    create(&cluster.nodes[0], "3").await;
    let (leader, _, _) = leadership(&cluster.nodes[0]).await;
    let leader_index = (leader - 1) as usize;
    assert_eq!(produce(&cluster.nodes[leader_index], "before").await, 0);

    let follower = (leader_index + 1) % 3;
    cluster.kill(follower).await;
    eventually(Duration::from_secs(10), "the ISR shrinks", || {
        let node = &cluster.nodes[leader_index];
        async move { leadership(node).await.2.len() == 2 }
    })
    .await;
    let log_end = || {
        cluster.nodes[leader_index]
            .server
            .as_ref()
            .expect("running")
            .broker
            .logs
            .get(TOPIC, 0)
            .expect("log")
            .log_end_offset()
    };
    let before = log_end();
    assert_eq!(
        produce(&cluster.nodes[leader_index], "refused").await,
        NOT_ENOUGH_REPLICAS
    );
    assert_eq!(log_end(), before, "a refused append is not written");

    cluster.start_nodes(&[follower]).await;
    eventually(Duration::from_secs(20), "produce works again", || {
        let node = &cluster.nodes[leader_index];
        async move { produce(node, "after").await == 0 }
    })
    .await;
    cluster.shutdown().await;
}
