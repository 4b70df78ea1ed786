//! Black-box wire tests of the group coordinator APIs, at their lowest and highest advertised
//! versions: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit,
//! OffsetFetch, ListGroups, DescribeGroups, DeleteGroups, OffsetDelete.

mod common;

use bytes::Bytes;
use common::{batch, TestBroker};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn gid(v: &str) -> GroupId {
    GroupId(s(v))
}

fn tname(v: &str) -> TopicName {
    TopicName(s(v))
}

fn code(e: ResponseError) -> i16 {
    e.code()
}

/// A broker with topic "t" (3 partitions) to commit offsets of.
async fn broker() -> TestBroker {
    let b = TestBroker::start_with(|c| {
        c.group_initial_rebalance_delay_ms = 0;
        c.offsets_topic_num_partitions = 5;
    })
    .await;
    create_topic(&b, "t").await;
    b
}

async fn create_topic(b: &TestBroker, topic: &str) {
    use kafka_protocol::messages::create_topics_request::CreatableTopic;
    let mut c = b.client().await;
    let r = c
        .call(
            7,
            &CreateTopicsRequest::default()
                .with_topics(vec![CreatableTopic::default()
                    .with_name(tname(topic))
                    .with_num_partitions(3)
                    .with_replication_factor(1)])
                .with_timeout_ms(5000),
        )
        .await;
    assert_eq!(r.topics[0].error_code, 0);
}

fn join_request(member_id: &str) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(gid("g"))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(s(member_id))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(s("range"))
            .with_metadata(Bytes::from_static(b"subscription"))])
}

fn commit_request(generation: i32, member_id: &str, offset: i64) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(gid("g"))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(s(member_id))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(tname("t"))
            .with_partitions(vec![
                OffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(offset)
                    .with_committed_leader_epoch(3)
                    .with_committed_metadata(Some(s("meta"))),
                OffsetCommitRequestPartition::default()
                    .with_partition_index(1)
                    .with_committed_offset(offset + 1)
                    .with_committed_leader_epoch(-1)
                    .with_committed_metadata(None),
            ])])
}

#[tokio::test]
async fn find_coordinator_answers_this_node_for_groups_and_not_for_transactions() {
    let b = broker().await;
    let mut c = b.client().await;
    let r = c
        .call(0, &FindCoordinatorRequest::default().with_key(s("g")))
        .await;
    assert_eq!(r.error_code, 0);
    assert_eq!(r.node_id.0, 1);
    assert_eq!(r.port, b.addr().port() as i32);
    let r = c
        .call(
            6,
            &FindCoordinatorRequest::default()
                .with_key_type(0)
                .with_coordinator_keys(vec![s("a"), s("b")]),
        )
        .await;
    assert_eq!(r.coordinators.len(), 2);
    assert!(r
        .coordinators
        .iter()
        .all(|k| k.error_code == 0 && k.node_id.0 == 1));
    let r = c
        .call(
            6,
            &FindCoordinatorRequest::default()
                .with_key_type(1)
                .with_coordinator_keys(vec![s("txn")]),
        )
        .await;
    assert_eq!(
        r.coordinators[0].error_code,
        code(ResponseError::TransactionalIdAuthorizationFailed),
        "no transaction coordinator: transactional producers must fail fast"
    );
    let r = c
        .call(3, &FindCoordinatorRequest::default().with_key_type(9))
        .await;
    assert_eq!(r.error_code, code(ResponseError::InvalidRequest));
    // The offsets topic now exists and is internal.
    let md = c
        .call(
            12,
            &MetadataRequest::default().with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(tname("__consumer_offsets")))
            ])),
        )
        .await;
    assert_eq!(md.topics[0].error_code, 0);
    assert!(md.topics[0].is_internal);
    assert_eq!(md.topics[0].partitions.len(), 5);
}

#[tokio::test]
async fn lowest_versions_join_sync_heartbeat_commit_fetch_leave() {
    let b = broker().await;
    let mut c = b.client().await;
    // JoinGroup v2 joins in one round (no MEMBER_ID_REQUIRED before v4).
    let j = c.call(2, &join_request("")).await;
    assert_eq!(j.error_code, 0);
    assert_eq!(j.generation_id, 1);
    assert_eq!(j.leader, j.member_id);
    assert_eq!(j.members.len(), 1);
    assert_eq!(j.protocol_name.as_deref(), Some("range"));
    let member = j.member_id.to_string();
    let sync = SyncGroupRequest::default()
        .with_group_id(gid("g"))
        .with_generation_id(1)
        .with_member_id(s(&member))
        .with_assignments(vec![SyncGroupRequestAssignment::default()
            .with_member_id(s(&member))
            .with_assignment(Bytes::from_static(b"assigned"))]);
    let r = c.call(0, &sync).await;
    assert_eq!(r.error_code, 0);
    assert_eq!(r.assignment, &b"assigned"[..]);
    let hb = HeartbeatRequest::default()
        .with_group_id(gid("g"))
        .with_generation_id(1)
        .with_member_id(s(&member));
    assert_eq!(c.call(0, &hb).await.error_code, 0);
    let stale = hb.clone().with_generation_id(0);
    assert_eq!(
        c.call(0, &stale).await.error_code,
        code(ResponseError::IllegalGeneration)
    );
    let r = c.call(2, &commit_request(1, &member, 10)).await;
    assert!(r.topics[0].partitions.iter().all(|p| p.error_code == 0));
    let r = c.call(2, &commit_request(0, &member, 10)).await;
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        code(ResponseError::IllegalGeneration)
    );
    let r = c.call(2, &commit_request(1, "stranger", 10)).await;
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        code(ResponseError::UnknownMemberId)
    );
    let fetch = OffsetFetchRequest::default()
        .with_group_id(gid("g"))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(tname("t"))
            .with_partition_indexes(vec![0, 1, 2])]));
    let r = c.call(1, &fetch).await;
    let offsets: Vec<i64> = r.topics[0]
        .partitions
        .iter()
        .map(|p| p.committed_offset)
        .collect();
    assert_eq!(offsets, vec![10, 11, -1]);
    assert_eq!(r.topics[0].partitions[0].metadata.as_deref(), Some("meta"));
    let leave = LeaveGroupRequest::default()
        .with_group_id(gid("g"))
        .with_member_id(s(&member));
    assert_eq!(c.call(0, &leave).await.error_code, 0);
    assert_eq!(
        c.call(0, &hb).await.error_code,
        code(ResponseError::UnknownMemberId)
    );
    // An Empty group takes admin commits (generation -1, no member).
    let r = c.call(2, &commit_request(-1, "", 20)).await;
    assert!(r.topics[0].partitions.iter().all(|p| p.error_code == 0));
}

#[tokio::test]
async fn highest_versions_join_with_member_id_required_and_batched_fetch() {
    let b = broker().await;
    let mut c = b.client().await;
    let first = c.call(9, &join_request("")).await;
    assert_eq!(first.error_code, code(ResponseError::MemberIdRequired));
    let member = first.member_id.to_string();
    assert!(member.starts_with("sluice-test-"), "{member}");
    let j = c.call(9, &join_request(&member)).await;
    assert_eq!(j.error_code, 0);
    assert_eq!(j.protocol_type.as_deref(), Some("consumer"));
    assert_eq!(j.protocol_name.as_deref(), Some("range"));
    assert_eq!(j.members[0].metadata, &b"subscription"[..]);
    let sync = SyncGroupRequest::default()
        .with_group_id(gid("g"))
        .with_generation_id(j.generation_id)
        .with_member_id(s(&member))
        .with_protocol_type(Some(s("consumer")))
        .with_protocol_name(Some(s("range")))
        .with_assignments(vec![SyncGroupRequestAssignment::default()
            .with_member_id(s(&member))
            .with_assignment(Bytes::from_static(b"a"))]);
    let r = c.call(5, &sync).await;
    assert_eq!(r.error_code, 0);
    assert_eq!(r.protocol_name.as_deref(), Some("range"));
    let wrong = sync.clone().with_protocol_name(Some(s("roundrobin")));
    assert_eq!(
        c.call(5, &wrong).await.error_code,
        code(ResponseError::InconsistentGroupProtocol)
    );
    let hb = HeartbeatRequest::default()
        .with_group_id(gid("g"))
        .with_generation_id(j.generation_id)
        .with_member_id(s(&member));
    assert_eq!(c.call(4, &hb).await.error_code, 0);
    let r = c
        .call(8, &commit_request(j.generation_id, &member, 5))
        .await;
    assert!(r.topics[0].partitions.iter().all(|p| p.error_code == 0));
    let fetch = OffsetFetchRequest::default()
        .with_require_stable(true)
        .with_groups(vec![
            OffsetFetchRequestGroup::default()
                .with_group_id(gid("g"))
                .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                    .with_name(tname("t"))
                    .with_partition_indexes(vec![0, 1])])),
            OffsetFetchRequestGroup::default()
                .with_group_id(gid("g"))
                .with_topics(None),
            OffsetFetchRequestGroup::default()
                .with_group_id(gid("nobody"))
                .with_topics(None),
        ]);
    let r = c.call(8, &fetch).await;
    assert_eq!(r.groups.len(), 3);
    let p0 = &r.groups[0].topics[0].partitions[0];
    assert_eq!((p0.committed_offset, p0.committed_leader_epoch), (5, 3));
    assert_eq!(
        r.groups[1].topics[0].partitions.len(),
        2,
        "null topics: all"
    );
    assert!(r.groups[2].topics.is_empty());
    // LeaveGroup v5 batches members; an unknown one gets its own error.
    let leave = LeaveGroupRequest::default()
        .with_group_id(gid("g"))
        .with_members(vec![
            MemberIdentity::default().with_member_id(s(&member)),
            MemberIdentity::default().with_member_id(s("ghost")),
        ]);
    let r = c.call(5, &leave).await;
    assert_eq!(r.error_code, 0);
    assert_eq!(r.members[0].error_code, 0);
    assert_eq!(
        r.members[1].error_code,
        code(ResponseError::UnknownMemberId)
    );
}

#[tokio::test]
async fn join_checks_session_timeout_bounds_and_group_id() {
    let b = broker().await;
    let mut c = b.client().await;
    let r = c
        .call(9, &join_request("").with_session_timeout_ms(1000))
        .await;
    assert_eq!(r.error_code, code(ResponseError::InvalidSessionTimeout));
    let r = c.call(9, &join_request("").with_group_id(gid(""))).await;
    assert_eq!(r.error_code, code(ResponseError::InvalidGroupId));
    let r = c.call(9, &join_request("not-a-member")).await;
    assert_eq!(r.error_code, code(ResponseError::UnknownMemberId));
    let r = c.call(2, &commit_request(3, "x", 1)).await;
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        code(ResponseError::IllegalGeneration),
        "a commit with a generation to a group that does not exist"
    );
    // Partitions the metadata does not know are refused before the group is consulted.
    let mut unknown = commit_request(-1, "", 1);
    unknown.topics[0].name = tname("no-such-topic");
    unknown.topics[0].partitions[0].partition_index = 0;
    let r = c.call(8, &unknown).await;
    assert!(r.topics[0]
        .partitions
        .iter()
        .all(|p| p.error_code == code(ResponseError::UnknownTopicOrPartition)));
    let mut beyond = commit_request(-1, "", 1);
    beyond.topics[0].partitions[1].partition_index = 99;
    let r = c.call(8, &beyond).await;
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    assert_eq!(
        r.topics[0].partitions[1].error_code,
        code(ResponseError::UnknownTopicOrPartition)
    );
}

#[tokio::test]
async fn group_max_size_refuses_the_extra_member() {
    let b = TestBroker::start_with(|c| {
        c.group_initial_rebalance_delay_ms = 0;
        c.offsets_topic_num_partitions = 1;
        c.group_max_size = 1;
    })
    .await;
    let mut c = b.client().await;
    let first = c.call(9, &join_request("")).await;
    let j = c.call(9, &join_request(&first.member_id)).await;
    assert_eq!(j.error_code, 0);
    let mut c2 = b.client().await;
    let r = c2.call(9, &join_request("")).await;
    assert_eq!(r.error_code, code(ResponseError::GroupMaxSizeReached));
}

#[tokio::test]
async fn list_describe_delete_groups_and_offset_delete() {
    let b = broker().await;
    let mut c = b.client().await;
    let j = c.call(2, &join_request("")).await;
    let member = j.member_id.to_string();
    let sync = SyncGroupRequest::default()
        .with_group_id(gid("g"))
        .with_generation_id(1)
        .with_member_id(s(&member))
        .with_assignments(vec![SyncGroupRequestAssignment::default()
            .with_member_id(s(&member))
            .with_assignment(Bytes::from_static(b"x"))]);
    assert_eq!(c.call(0, &sync).await.error_code, 0);
    let r = c.call(2, &commit_request(1, &member, 7)).await;
    assert_eq!(r.topics[0].partitions[0].error_code, 0);

    let r = c.call(0, &ListGroupsRequest::default()).await;
    assert_eq!(r.groups.len(), 1);
    assert_eq!(r.groups[0].protocol_type.as_str(), "consumer");
    let r = c
        .call(
            5,
            &ListGroupsRequest::default().with_states_filter(vec![s("Empty")]),
        )
        .await;
    assert!(r.groups.is_empty());
    let r = c
        .call(
            5,
            &ListGroupsRequest::default().with_states_filter(vec![s("stable")]),
        )
        .await;
    assert_eq!(r.groups[0].group_state.as_str(), "Stable");
    assert_eq!(r.groups[0].group_type.as_str(), "classic");

    let r = c
        .call(
            0,
            &DescribeGroupsRequest::default().with_groups(vec![gid("g"), gid("none")]),
        )
        .await;
    assert_eq!(r.groups[0].group_state.as_str(), "Stable");
    assert_eq!(r.groups[0].protocol_data.as_str(), "range");
    assert_eq!(r.groups[0].members[0].member_assignment, &b"x"[..]);
    assert_eq!(r.groups[0].members[0].client_id.as_str(), "sluice-test");
    assert_eq!(r.groups[1].error_code, 0);
    assert_eq!(r.groups[1].group_state.as_str(), "Dead");
    let r = c
        .call(
            6,
            &DescribeGroupsRequest::default().with_groups(vec![gid("none")]),
        )
        .await;
    assert_eq!(r.groups[0].error_code, code(ResponseError::GroupIdNotFound));

    let del = DeleteGroupsRequest::default().with_groups_names(vec![gid("g"), gid("none")]);
    let r = c.call(0, &del).await;
    assert_eq!(r.results[0].error_code, code(ResponseError::NonEmptyGroup));
    assert_eq!(
        r.results[1].error_code,
        code(ResponseError::GroupIdNotFound)
    );

    // Subscribed topics' offsets cannot be deleted while the group consumes them; the
    // subscription here is not a consumer protocol one, so every topic counts as subscribed.
    let od = OffsetDeleteRequest::default()
        .with_group_id(gid("g"))
        .with_topics(vec![OffsetDeleteRequestTopic::default()
            .with_name(tname("t"))
            .with_partitions(vec![
                OffsetDeleteRequestPartition::default().with_partition_index(0)
            ])]);
    let r = c.call(0, &od).await;
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        code(ResponseError::GroupSubscribedToTopic)
    );

    let leave = LeaveGroupRequest::default()
        .with_group_id(gid("g"))
        .with_member_id(s(&member));
    assert_eq!(c.call(0, &leave).await.error_code, 0);
    let r = c.call(0, &od).await;
    assert_eq!(r.error_code, 0);
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    let fetch = OffsetFetchRequest::default()
        .with_group_id(gid("g"))
        .with_topics(None);
    let r = c.call(7, &fetch).await;
    assert_eq!(
        r.topics[0].partitions.len(),
        1,
        "partition 0's offset deleted"
    );
    let r = c.call(2, &del).await;
    assert_eq!(r.results[0].error_code, 0);
    let r = c.call(5, &ListGroupsRequest::default()).await;
    assert!(r.groups.is_empty());
    let r = c.call(7, &fetch).await;
    assert!(r.topics.is_empty(), "a deleted group has no offsets");
}

#[tokio::test]
async fn committed_offsets_and_groups_survive_a_restart() {
    let b = broker().await;
    let member = {
        let mut c = b.client().await;
        let j = c.call(2, &join_request("")).await;
        let member = j.member_id.to_string();
        let sync = SyncGroupRequest::default()
            .with_group_id(gid("g"))
            .with_generation_id(1)
            .with_member_id(s(&member))
            .with_assignments(vec![SyncGroupRequestAssignment::default()
                .with_member_id(s(&member))
                .with_assignment(Bytes::from_static(b"kept"))]);
        assert_eq!(c.call(0, &sync).await.error_code, 0);
        let r = c.call(8, &commit_request(1, &member, 42)).await;
        assert_eq!(r.topics[0].partitions[0].error_code, 0);
        let r = c.call(8, &commit_request(1, &member, 43)).await;
        assert_eq!(r.topics[0].partitions[0].error_code, 0);
        member
    };
    let b = b.restart().await;
    let mut c = b.client().await;
    let fetch = OffsetFetchRequest::default()
        .with_group_id(gid("g"))
        .with_topics(None);
    let r = c.call(5, &fetch).await;
    let p: Vec<(i64, i32, String)> = r.topics[0]
        .partitions
        .iter()
        .map(|p| {
            (
                p.committed_offset,
                p.committed_leader_epoch,
                p.metadata.as_deref().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(p, vec![(43, 3, "meta".into()), (44, -1, String::new())]);
    // The Stable group came back with its member and assignment.
    let hb = HeartbeatRequest::default()
        .with_group_id(gid("g"))
        .with_generation_id(1)
        .with_member_id(s(&member));
    assert_eq!(c.call(4, &hb).await.error_code, 0);
    let r = c
        .call(
            5,
            &DescribeGroupsRequest::default().with_groups(vec![gid("g")]),
        )
        .await;
    assert_eq!(r.groups[0].group_state.as_str(), "Stable");
    assert_eq!(r.groups[0].members[0].member_assignment, &b"kept"[..]);
}

#[tokio::test]
async fn produce_to_the_offsets_topic_is_refused() {
    let b = broker().await;
    let mut c = b.client().await;
    c.call(0, &FindCoordinatorRequest::default().with_key(s("g")))
        .await;
    let produce = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(tname("__consumer_offsets"))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch(1, Compression::None, 0)))])]);
    let r = c.call(9, &produce).await;
    assert_eq!(
        r.responses[0].partition_responses[0].error_code,
        code(ResponseError::InvalidTopicException)
    );
}

#[tokio::test]
async fn second_member_waits_for_rebalance_and_both_get_the_new_generation() {
    let b = broker().await;
    let mut c1 = b.client().await;
    let j1 = c1.call(3, &join_request("")).await;
    let m1 = j1.member_id.to_string();
    let sync = |m: &str, gen: i32, assignments: Vec<SyncGroupRequestAssignment>| {
        SyncGroupRequest::default()
            .with_group_id(gid("g"))
            .with_generation_id(gen)
            .with_member_id(s(m))
            .with_assignments(assignments)
    };
    assert_eq!(c1.call(3, &sync(&m1, 1, vec![])).await.error_code, 0);
    let mut c2 = b.client().await;
    let second = tokio::spawn(async move {
        let j = c2.call(3, &join_request("")).await;
        (c2, j)
    });
    // The first member learns of the rebalance from its heartbeat and rejoins.
    let hb = HeartbeatRequest::default()
        .with_group_id(gid("g"))
        .with_generation_id(1)
        .with_member_id(s(&m1));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let e = c1.call(3, &hb).await.error_code;
        if e == code(ResponseError::RebalanceInProgress) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no rebalance signalled"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let j1 = c1.call(3, &join_request(&m1)).await;
    let (mut c2, j2) = second.await.expect("second join");
    assert_eq!((j1.generation_id, j2.generation_id), (2, 2));
    assert_eq!(j1.leader.as_str(), m1);
    assert_eq!(j1.members.len(), 2);
    let m2 = j2.member_id.to_string();
    let follower = tokio::spawn(async move { c2.call(3, &sync(&m2, 2, vec![])).await });
    let assignments = vec![
        SyncGroupRequestAssignment::default()
            .with_member_id(s(&m1))
            .with_assignment(Bytes::from_static(b"one")),
        SyncGroupRequestAssignment::default()
            .with_member_id(j2.member_id.clone())
            .with_assignment(Bytes::from_static(b"two")),
    ];
    let r1 = c1.call(3, &sync(&m1, 2, assignments)).await;
    let r2 = follower.await.expect("follower sync");
    assert_eq!(r1.assignment, &b"one"[..]);
    assert_eq!(r2.assignment, &b"two"[..]);
}

#[tokio::test]
async fn lag_reports_committed_offset_log_end_and_difference() {
    let b = broker().await;
    let mut c = b.client().await;
    let produce = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(tname("t"))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch(5, Compression::None, 0)))])]);
    let r = c.call(9, &produce).await;
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    let r = c.call(8, &commit_request(-1, "", 2)).await;
    assert!(r.topics[0].partitions.iter().all(|p| p.error_code == 0));
    let state = b.server.as_ref().expect("running").broker.clone();
    let lag = state.groups.lag(&state);
    let p0 = lag
        .iter()
        .find(|l| l.group_id == "g" && l.topic == "t" && l.partition == 0)
        .expect("partition 0 reported");
    assert_eq!((p0.committed_offset, p0.log_end_offset, p0.lag), (2, 5, 3));
    let p1 = lag
        .iter()
        .find(|l| l.partition == 1)
        .expect("partition 1 reported");
    assert_eq!(
        p1.lag, 0,
        "committed past an empty partition's end counts as no lag"
    );
}
