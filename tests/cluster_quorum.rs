//! Black-box: three combined broker/controller nodes form one metadata quorum over their
//! controller listeners (`controller.quorum.voters`), every broker describes the same cluster,
//! an admin write sent to any broker reaches the active controller and is visible at once on
//! the broker that took it, and the quorum elects a new controller when the active one dies.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::cluster::{eventually, Cluster};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

async fn describe(node: &common::cluster::Node) -> DescribeClusterResponse {
    node.client()
        .await
        .call(0, &DescribeClusterRequest::default())
        .await
}

async fn create_topic(node: &common::cluster::Node, name: &str) -> i16 {
    create_topic_with(node, name, 2, 1).await
}

async fn create_topic_with(
    node: &common::cluster::Node,
    name: &str,
    partitions: i32,
    replication_factor: i16,
) -> i16 {
    let topic = CreatableTopic::default()
        .with_name(TopicName(StrBytes::from_string(name.to_string())))
        .with_num_partitions(partitions)
        .with_replication_factor(replication_factor);
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
    response.topics[0].error_code
}

async fn topic_known(node: &common::cluster::Node, name: &str) -> bool {
    let request = MetadataRequest::default()
        .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
        )
        .with_name(Some(TopicName(StrBytes::from_string(name.to_string()))))]));
    let metadata = node.client().await.call(9, &request).await;
    metadata.topics.len() == 1 && metadata.topics[0].error_code == 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_form_one_cluster_that_serves_writes_from_any_broker_and_survives_losing_its_controller(
) {
    let mut cluster = Cluster::start(3, |_| {}).await;

    // Every broker describes the same three brokers and the same active controller.
    let mut controllers = BTreeSet::new();
    for node in cluster.running() {
        let described = describe(node).await;
        assert_eq!(described.error_code, 0);
        let ids: BTreeSet<i32> = described.brokers.iter().map(|b| b.broker_id.0).collect();
        assert_eq!(ids, BTreeSet::from([1, 2, 3]), "node {}", node.node_id);
        controllers.insert(described.controller_id.0);
    }
    assert_eq!(
        controllers.len(),
        1,
        "one active controller: {controllers:?}"
    );
    let controller = *controllers.iter().next().expect("a controller");
    assert!((1..=3).contains(&controller));

    // A write through a broker that is not the controller is forwarded, and the broker that
    // took it answers only once its own image has it.
    let follower = cluster
        .nodes
        .iter()
        .position(|n| n.node_id != controller)
        .expect("a follower");
    assert_eq!(create_topic(&cluster.nodes[follower], "forwarded").await, 0);
    assert!(topic_known(&cluster.nodes[follower], "forwarded").await);
    assert_eq!(
        create_topic(&cluster.nodes[follower], "forwarded").await,
        36, // TOPIC_ALREADY_EXISTS, decided by the controller's image
    );

    // SIGKILL of the active controller: the other two elect a new one within
    // 2 x controller.quorum.fetch.timeout.ms + 5 s, and writes work through either of them.
    let controller_index = cluster
        .nodes
        .iter()
        .position(|n| n.node_id == controller)
        .expect("controller node");
    cluster.kill(controller_index).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2 * 2 + 5);
    let survivors: Vec<usize> = (0..3).filter(|&i| i != controller_index).collect();
    let new_controller = loop {
        let seen: BTreeSet<i32> = survivors
            .iter()
            .map(|&i| cluster.controller_seen_by(i))
            .collect();
        if seen.len() == 1 {
            let id = *seen.iter().next().expect("one");
            if id != -1 && id != controller {
                break id;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no new controller within 9 s: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_ne!(new_controller, controller);
    for (n, &i) in survivors.iter().enumerate() {
        let name = format!("after-failover-{n}");
        assert_eq!(
            create_topic(&cluster.nodes[i], &name).await,
            0,
            "via node {}",
            i + 1
        );
        assert!(topic_known(&cluster.nodes[i], &name).await);
    }

    // The killed node comes back, catches up and sees what was written without it.
    cluster.start_nodes(&[controller_index]).await;
    let back = &cluster.nodes[controller_index];
    assert!(topic_known(back, "after-failover-0").await);
    assert!(topic_known(back, "after-failover-1").await);
    assert_eq!(describe(back).await.controller_id.0, new_controller);
    cluster.shutdown().await;
}

/// Each partition of `topic` as node `node` describes it: (leader, leader epoch, replicas, ISR).
async fn partitions(
    node: &common::cluster::Node,
    topic: &str,
) -> Vec<(i32, i32, Vec<i32>, Vec<i32>)> {
    let request = MetadataRequest::default()
        .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
        )
        .with_name(Some(TopicName(StrBytes::from_string(topic.to_string()))))]));
    let metadata = node.client().await.call(12, &request).await;
    let ids = |v: &[BrokerId]| v.iter().map(|b| b.0).collect::<Vec<i32>>();
    let mut out: Vec<_> = metadata.topics[0]
        .partitions
        .iter()
        .map(|p| {
            (
                p.partition_index,
                (
                    p.leader_id.0,
                    p.leader_epoch,
                    ids(&p.replica_nodes),
                    ids(&p.isr_nodes),
                ),
            )
        })
        .collect();
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, p)| p).collect()
}

/// Broker ids DescribeCluster v2 lists, with whether each is fenced.
async fn described_brokers(node: &common::cluster::Node, include_fenced: bool) -> Vec<(i32, bool)> {
    let request = DescribeClusterRequest::default().with_include_fenced_brokers(include_fenced);
    let response = node.client().await.call(2, &request).await;
    let mut out: Vec<(i32, bool)> = response
        .brokers
        .iter()
        .map(|b| (b.broker_id.0, b.is_fenced))
        .collect();
    out.sort_unstable();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_broker_is_fenced_and_loses_its_leaderships_and_a_stopping_one_hands_them_over() {
    let mut cluster = Cluster::start(3, |c| {
        c.broker_session_timeout_ms = 2000;
        c.broker_heartbeat_interval_ms = 200;
    })
    .await;
    assert_eq!(
        create_topic_with(&cluster.nodes[0], "replicated", 6, 3).await,
        0
    );

    // Every broker describes the same placement: three distinct replicas per partition, the
    // ISR all of them, and leaderships spread over all three brokers.
    let placed = partitions(&cluster.nodes[0], "replicated").await;
    for node in cluster.running() {
        assert_eq!(
            partitions(node, "replicated").await,
            placed,
            "node {}",
            node.node_id
        );
    }
    for (leader, epoch, replicas, isr) in &placed {
        assert_eq!(
            replicas.iter().collect::<BTreeSet<_>>().len(),
            3,
            "{replicas:?}"
        );
        assert_eq!(isr, replicas);
        assert_eq!((*leader, *epoch), (replicas[0], 0));
    }
    let leaders: BTreeSet<i32> = placed.iter().map(|p| p.0).collect();
    assert_eq!(leaders, BTreeSet::from([1, 2, 3]));

    // SIGKILL of a broker: once its session (2 s) runs out it is fenced, leaves every ISR, and
    // each partition it led gets the next ISR member as leader, one leader epoch later.
    let victim = placed[0].0;
    let victim_index = (victim - 1) as usize;
    cluster.kill(victim_index).await;
    let witness = (victim_index + 1) % 3;
    // If it was the active controller, a new one is elected first (up to 3 s) and grants every
    // broker a fresh session before it fences anyone, as Kafka's does.
    eventually(
        Duration::from_secs(2 + 3 + 3),
        "the killed broker is fenced",
        || {
            let node = &cluster.nodes[witness];
            async move {
                described_brokers(node, true)
                    .await
                    .contains(&(victim, true))
            }
        },
    )
    .await;
    assert!(
        !described_brokers(&cluster.nodes[witness], false)
            .await
            .iter()
            .any(|(id, _)| *id == victim),
        "a fenced broker is not offered to clients"
    );
    let after = partitions(&cluster.nodes[witness], "replicated").await;
    for (before, now) in placed.iter().zip(&after) {
        assert!(
            !now.3.contains(&victim),
            "ISR {:?} still has {victim}",
            now.3
        );
        if before.0 == victim {
            let expected = before
                .3
                .iter()
                .copied()
                .find(|r| *r != victim)
                .expect("next");
            assert_eq!(
                (now.0, now.1),
                (expected, before.1 + 1),
                "{before:?} -> {now:?}"
            );
        } else {
            assert_eq!(
                (now.0, now.1),
                (before.0, before.1),
                "{before:?} -> {now:?}"
            );
        }
    }

    // It comes back: registered again and unfenced once caught up (replication, which would
    // bring it back into the ISRs, is not built yet).
    cluster.start_nodes(&[victim_index]).await;
    assert!(described_brokers(&cluster.nodes[witness], false)
        .await
        .contains(&(victim, false)));

    // A clean stop is a controlled shutdown: the leaderships of the stopping broker move before
    // it exits, well before its session would have run out.
    let stopping = after[0].0;
    let stopping_index = (stopping - 1) as usize;
    let started = tokio::time::Instant::now();
    let server = cluster.nodes[stopping_index]
        .server
        .take()
        .expect("running");
    server.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "controlled shutdown took {:?}",
        started.elapsed()
    );
    let observer = (0..3).find(|&i| i != stopping_index).expect("another node");
    let handed_over = partitions(&cluster.nodes[observer], "replicated").await;
    for (before, now) in after.iter().zip(&handed_over) {
        assert_ne!(now.0, stopping, "{now:?}: still led by the stopped broker");
        if before.0 == stopping {
            assert_eq!(now.1, before.1 + 1, "{before:?} -> {now:?}");
        }
    }
    assert!(described_brokers(&cluster.nodes[observer], true)
        .await
        .contains(&(stopping, true)));
    cluster.shutdown().await;
}
