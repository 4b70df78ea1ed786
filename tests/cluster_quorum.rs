//! Black-box: three combined broker/controller nodes form one metadata quorum over their
//! controller listeners (`controller.quorum.voters`), every broker describes the same cluster,
//! an admin write sent to any broker reaches the active controller and is visible at once on
//! the broker that took it, and the quorum elects a new controller when the active one dies.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::cluster::Cluster;
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
    let topic = CreatableTopic::default()
        .with_name(TopicName(StrBytes::from_string(name.to_string())))
        .with_num_partitions(2)
        .with_replication_factor(1);
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
