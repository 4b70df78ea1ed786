//! Black-box wire tests of KIP-848 consumer groups: ConsumerGroupHeartbeat (v0, v1),
//! ConsumerGroupDescribe (v0, v1), OffsetCommit/OffsetFetch v9 member epochs, ListGroups and
//! DescribeGroups of consumer groups, protocol exclusion, and the group epoch across a restart.

mod common;

use std::collections::BTreeSet;

use bytes::Bytes;
use common::{create_topic, Client, TestBroker};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use sluice::config::ConsumerGroupMigrationPolicy;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn gid(v: &str) -> GroupId {
    GroupId(s(v))
}

async fn broker() -> TestBroker {
    let b = TestBroker::start_with(|c| {
        c.offsets_topic_num_partitions = 3;
        c.group_initial_rebalance_delay_ms = 0;
    })
    .await;
    let mut c = b.client().await;
    assert_eq!(create_topic(&mut c, "t", 4).await.topics[0].error_code, 0);
    b
}

fn join(group: &str, member_id: &str) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest::default()
        .with_group_id(gid(group))
        .with_member_id(s(member_id))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(30_000)
        .with_subscribed_topic_names(Some(vec![TopicName(s("t"))]))
        .with_topic_partitions(Some(vec![]))
}

fn beat(
    group: &str,
    member_id: &str,
    epoch: i32,
    owned: Option<Vec<TopicPartitions>>,
) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest::default()
        .with_group_id(gid(group))
        .with_member_id(s(member_id))
        .with_member_epoch(epoch)
        .with_rebalance_timeout_ms(-1)
        .with_topic_partitions(owned)
}

fn owned_of(r: &ConsumerGroupHeartbeatResponse) -> Vec<TopicPartitions> {
    r.assignment
        .as_ref()
        .map(|a| {
            a.topic_partitions
                .iter()
                .map(|tp| {
                    TopicPartitions::default()
                        .with_topic_id(tp.topic_id)
                        .with_partitions(tp.partitions.clone())
                })
                .collect()
        })
        .unwrap_or_default()
}

fn partitions(r: &ConsumerGroupHeartbeatResponse) -> BTreeSet<i32> {
    r.assignment
        .iter()
        .flat_map(|a| a.topic_partitions.iter())
        .flat_map(|tp| tp.partitions.iter().copied())
        .collect()
}

async fn heartbeat(
    c: &mut Client,
    version: i16,
    r: &ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    c.call(version, r).await
}

#[tokio::test]
async fn two_members_reconcile_incrementally_and_one_leaves() {
    let b = broker().await;
    let mut c = b.client().await;
    // v0: the broker names the member.
    let a = heartbeat(&mut c, 0, &join("g", "")).await;
    assert_eq!(a.error_code, 0);
    let a_id = a.member_id.clone().expect("member id").to_string();
    assert!(!a_id.is_empty());
    assert_eq!(a.member_epoch, 1);
    assert_eq!(a.heartbeat_interval_ms, 5000);
    assert_eq!(partitions(&a), BTreeSet::from([0, 1, 2, 3]));
    // v1: the client names itself; it gets nothing until a has revoked.
    let bm = heartbeat(&mut c, 1, &join("g", "member-b")).await;
    assert_eq!(bm.error_code, 0);
    assert_eq!(bm.member_id.as_deref(), Some("member-b"));
    assert_eq!(bm.member_epoch, 2);
    assert!(partitions(&bm).is_empty());
    let a2 = heartbeat(&mut c, 0, &beat("g", &a_id, 1, Some(owned_of(&a)))).await;
    assert_eq!(a2.member_epoch, 1, "a keeps its epoch until it revokes");
    assert_eq!(partitions(&a2).len(), 2);
    let d = describe(&mut c, 0, "g").await;
    assert_eq!(d.group_state.as_str(), "Reconciling");
    assert_eq!(d.group_epoch, 2);
    assert_eq!(d.assignment_epoch, 2);
    assert_eq!(d.assignor_name.as_str(), "uniform");
    let a3 = heartbeat(&mut c, 0, &beat("g", &a_id, 1, Some(owned_of(&a2)))).await;
    assert_eq!(a3.member_epoch, 2);
    let b2 = heartbeat(&mut c, 1, &beat("g", "member-b", 2, Some(vec![]))).await;
    assert_eq!(b2.error_code, 0);
    let got = partitions(&b2);
    assert_eq!(got.len(), 2);
    assert!(got.is_disjoint(&partitions(&a2)));
    let d = describe(&mut c, 1, "g").await;
    assert_eq!(d.group_state.as_str(), "Stable");
    assert_eq!(d.members.len(), 2);
    assert!(d
        .members
        .iter()
        .all(|m| m.member_type == 1 && m.member_epoch == 2));
    // b leaves; a gets everything at the next epoch.
    let left = heartbeat(&mut c, 1, &beat("g", "member-b", -1, None)).await;
    assert_eq!(left.error_code, 0);
    assert_eq!(left.member_epoch, -1);
    let a4 = heartbeat(&mut c, 0, &beat("g", &a_id, 2, Some(owned_of(&a2)))).await;
    assert_eq!(a4.member_epoch, 3);
    assert_eq!(partitions(&a4), BTreeSet::from([0, 1, 2, 3]));
}

async fn describe(
    c: &mut Client,
    version: i16,
    group: &str,
) -> consumer_group_describe_response::DescribedGroup {
    let r: ConsumerGroupDescribeResponse = c
        .call(
            version,
            &ConsumerGroupDescribeRequest::default().with_group_ids(vec![gid(group)]),
        )
        .await;
    r.groups.into_iter().next().expect("one group")
}

#[tokio::test]
async fn heartbeat_errors_are_kafkas() {
    let b = broker().await;
    let mut c = b.client().await;
    let unknown_group = heartbeat(&mut c, 1, &beat("nope", "m", 3, None)).await;
    assert_eq!(
        unknown_group.error_code,
        ResponseError::GroupIdNotFound.code()
    );
    let a = heartbeat(&mut c, 1, &join("g", "m1")).await;
    assert_eq!(a.error_code, 0);
    let fenced = heartbeat(&mut c, 1, &beat("g", "m1", 9, None)).await;
    assert_eq!(fenced.error_code, ResponseError::FencedMemberEpoch.code());
    let unknown = heartbeat(&mut c, 1, &beat("g", "m9", 1, None)).await;
    assert_eq!(unknown.error_code, ResponseError::UnknownMemberId.code());
    let no_id = heartbeat(&mut c, 1, &join("g", "")).await;
    assert_eq!(no_id.error_code, ResponseError::InvalidRequest.code());
    assert_eq!(
        no_id.error_message.as_deref(),
        Some("MemberId can't be empty.")
    );
    let assignor = heartbeat(
        &mut c,
        1,
        &join("g", "m2").with_server_assignor(Some(s("sticky"))),
    )
    .await;
    assert_eq!(
        assignor.error_code,
        ResponseError::UnsupportedAssignor.code()
    );
    let regex = heartbeat(
        &mut c,
        1,
        &join("g", "m2")
            .with_subscribed_topic_names(None)
            .with_subscribed_topic_regex(Some(s("("))),
    )
    .await;
    assert_eq!(
        regex.error_code,
        ResponseError::InvalidRegularExpression.code()
    );
    // Static members: a second member with the same instance id waits for the first to leave.
    let s1 = heartbeat(&mut c, 1, &join("g", "s1").with_instance_id(Some(s("i")))).await;
    assert_eq!(s1.error_code, 0);
    let s2 = heartbeat(&mut c, 1, &join("g", "s2").with_instance_id(Some(s("i")))).await;
    assert_eq!(s2.error_code, ResponseError::UnreleasedInstanceId.code());
    let leave = heartbeat(
        &mut c,
        1,
        &beat("g", "s1", -2, None).with_instance_id(Some(s("i"))),
    )
    .await;
    assert_eq!(leave.member_epoch, -2);
    let s2 = heartbeat(&mut c, 1, &join("g", "s2").with_instance_id(Some(s("i")))).await;
    assert_eq!(s2.error_code, 0);
    assert_eq!(
        s2.member_epoch, s1.member_epoch,
        "the static member's epoch is taken over"
    );
}

#[tokio::test]
async fn group_max_size_is_enforced() {
    let b = TestBroker::start_with(|c| c.group_consumer_max_size = 1).await;
    let mut c = b.client().await;
    assert_eq!(create_topic(&mut c, "t", 1).await.topics[0].error_code, 0);
    assert_eq!(heartbeat(&mut c, 1, &join("g", "a")).await.error_code, 0);
    let full = heartbeat(&mut c, 1, &join("g", "b")).await;
    assert_eq!(full.error_code, ResponseError::GroupMaxSizeReached.code());
}

fn commit(group: &str, member: &str, epoch: i32, offset: i64) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(gid(group))
        .with_generation_id_or_member_epoch(epoch)
        .with_member_id(s(member))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(s("t")))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(offset)])])
}

fn fetch(group: &str, member: Option<&str>, epoch: i32) -> OffsetFetchRequest {
    OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
        .with_group_id(gid(group))
        .with_member_id(member.map(s))
        .with_member_epoch(epoch)
        .with_topics(Some(vec![OffsetFetchRequestTopics::default()
            .with_name(TopicName(s("t")))
            .with_partition_indexes(vec![0])]))])
}

fn commit_error(r: &OffsetCommitResponse) -> i16 {
    r.topics[0].partitions[0].error_code
}

#[tokio::test]
async fn offset_commit_and_fetch_v9_check_the_member_epoch() {
    let b = broker().await;
    let mut c = b.client().await;
    let a = heartbeat(&mut c, 1, &join("g", "m1")).await;
    assert_eq!(a.member_epoch, 1);
    let r: OffsetCommitResponse = c.call(9, &commit("g", "m1", 1, 42)).await;
    assert_eq!(commit_error(&r), 0);
    let r: OffsetCommitResponse = c.call(9, &commit("g", "m1", 0, 43)).await;
    assert_eq!(commit_error(&r), ResponseError::StaleMemberEpoch.code());
    let r: OffsetCommitResponse = c.call(9, &commit("g", "zz", 1, 43)).await;
    assert_eq!(commit_error(&r), ResponseError::UnknownMemberId.code());
    let r: OffsetCommitResponse = c.call(8, &commit("g", "m1", 1, 43)).await;
    assert_eq!(commit_error(&r), ResponseError::UnsupportedVersion.code());
    let r: OffsetCommitResponse = c.call(9, &commit("other", "m1", 1, 43)).await;
    assert_eq!(commit_error(&r), ResponseError::GroupIdNotFound.code());
    let r: OffsetCommitResponse = c.call(2, &commit("other", "m1", 1, 43)).await;
    assert_eq!(commit_error(&r), ResponseError::IllegalGeneration.code());

    let r: OffsetFetchResponse = c.call(9, &fetch("g", Some("m1"), 1)).await;
    assert_eq!(r.groups[0].error_code, 0);
    assert_eq!(r.groups[0].topics[0].partitions[0].committed_offset, 42);
    let r: OffsetFetchResponse = c.call(9, &fetch("g", Some("m1"), 5)).await;
    assert_eq!(
        r.groups[0].error_code,
        ResponseError::StaleMemberEpoch.code()
    );
    let r: OffsetFetchResponse = c.call(9, &fetch("g", Some("zz"), 1)).await;
    assert_eq!(
        r.groups[0].error_code,
        ResponseError::UnknownMemberId.code()
    );
    let r: OffsetFetchResponse = c.call(9, &fetch("g", None, -1)).await;
    assert_eq!(
        r.groups[0].error_code, 0,
        "admin tools fetch without a member"
    );
    assert_eq!(r.groups[0].topics[0].partitions[0].committed_offset, 42);
}

#[tokio::test]
async fn list_and_describe_groups_see_consumer_groups_and_protocols_exclude_each_other() {
    // Without online migration (KIP-848's group.consumer.migration.policy=disabled) a group
    // with members keeps its protocol.
    let b = TestBroker::start_with(|c| {
        c.offsets_topic_num_partitions = 3;
        c.group_initial_rebalance_delay_ms = 0;
        c.group_consumer_migration_policy = ConsumerGroupMigrationPolicy::Disabled;
    })
    .await;
    let mut c = b.client().await;
    assert_eq!(create_topic(&mut c, "t", 4).await.topics[0].error_code, 0);
    assert_eq!(heartbeat(&mut c, 1, &join("cg", "m1")).await.error_code, 0);
    let r: ListGroupsResponse = c.call(5, &ListGroupsRequest::default()).await;
    let g = r
        .groups
        .iter()
        .find(|g| g.group_id.as_str() == "cg")
        .expect("listed");
    assert_eq!(g.group_type.as_str(), "consumer");
    assert_eq!(g.group_state.as_str(), "Stable");
    assert_eq!(g.protocol_type.as_str(), "consumer");
    let r: ListGroupsResponse = c
        .call(
            5,
            &ListGroupsRequest::default().with_types_filter(vec![s("classic")]),
        )
        .await;
    assert!(r.groups.iter().all(|g| g.group_id.as_str() != "cg"));
    let r: DescribeGroupsResponse = c
        .call(
            6,
            &DescribeGroupsRequest::default().with_groups(vec![gid("cg")]),
        )
        .await;
    assert_eq!(
        r.groups[0].error_code,
        ResponseError::GroupIdNotFound.code()
    );
    assert_eq!(
        r.groups[0].error_message.as_deref(),
        Some("Group cg is not a classic group.")
    );
    // A classic JoinGroup whose metadata is no consumer protocol subscription cannot join a
    // consumer group with members (Kafka takes well-formed ones in as classic members under
    // every policy; groups_migration.rs covers those).
    let join_classic = JoinGroupRequest::default()
        .with_group_id(gid("cg"))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(s(""))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(s("range"))
            .with_metadata(Bytes::from_static(b"x"))]);
    // v3: joins in one round (v4+ first hands out a member id, as Kafka does before it
    // reads the subscription).
    let r: JoinGroupResponse = c.call(3, &join_classic).await;
    assert_eq!(
        r.error_code,
        ResponseError::InconsistentGroupProtocol.code()
    );
    // ConsumerGroupDescribe of an unknown group.
    let d = describe(&mut c, 0, "nope").await;
    assert_eq!(d.error_code, ResponseError::GroupIdNotFound.code());
    // After the member leaves, the empty consumer group may be deleted.
    heartbeat(&mut c, 1, &beat("cg", "m1", -1, None)).await;
    let r: ListGroupsResponse = c
        .call(
            5,
            &ListGroupsRequest::default().with_states_filter(vec![s("Empty")]),
        )
        .await;
    assert!(r.groups.iter().any(|g| g.group_id.as_str() == "cg"));
    let r: DeleteGroupsResponse = c
        .call(
            2,
            &DeleteGroupsRequest::default().with_groups_names(vec![gid("cg")]),
        )
        .await;
    assert_eq!(r.results[0].error_code, 0);
    let d = describe(&mut c, 0, "cg").await;
    assert_eq!(d.error_code, ResponseError::GroupIdNotFound.code());
    // ConsumerGroupHeartbeat cannot use the id of a classic group with members.
    let join_classic = join_classic.with_group_id(gid("classic"));
    let r: JoinGroupResponse = c.call(3, &join_classic).await;
    assert_eq!(r.error_code, 0);
    let r = heartbeat(&mut c, 1, &join("classic", "m1")).await;
    assert_eq!(r.error_code, ResponseError::GroupIdNotFound.code());
    assert_eq!(
        r.error_message.as_deref(),
        Some("Group classic is not a consumer group.")
    );
}

#[tokio::test]
async fn members_epochs_and_assignments_survive_a_restart() {
    let b = broker().await;
    let mut c = b.client().await;
    let a = heartbeat(&mut c, 1, &join("g", "m1")).await;
    assert_eq!(a.member_epoch, 1);
    let b2 = heartbeat(&mut c, 1, &join("g", "m2")).await;
    assert_eq!(b2.member_epoch, 2);
    // m1 is told to revoke half, still at epoch 1.
    let r = heartbeat(&mut c, 1, &beat("g", "m1", 1, Some(owned_of(&a)))).await;
    assert_eq!(r.member_epoch, 1);
    let kept = owned_of(&r);
    let before = describe(&mut c, 0, "g").await;
    drop(c);
    let b = b.restart().await;
    let mut c = b.client().await;
    let after = describe(&mut c, 0, "g").await;
    assert_eq!(after.group_epoch, before.group_epoch);
    assert_eq!(after.members.len(), 2);
    // Both members are recognised with their epochs: no UNKNOWN_MEMBER_ID, no fencing.
    let r = heartbeat(&mut c, 1, &beat("g", "m2", 2, Some(vec![]))).await;
    assert_eq!(r.error_code, 0);
    assert_eq!(r.member_epoch, 2);
    let r = heartbeat(&mut c, 1, &beat("g", "m1", 1, Some(kept.clone()))).await;
    assert_eq!(r.error_code, 0);
    assert_eq!(
        r.member_epoch, 2,
        "the revocation completes across the restart"
    );
    let d = describe(&mut c, 0, "g").await;
    assert_eq!(d.group_epoch, before.group_epoch, "no rebalance");
}

/// One IncrementalAlterConfigs op on a GROUP resource (type 32); returns its error code.
async fn alter_group(c: &mut Client, group: &str, key: &str, op: i8, value: &str) -> i16 {
    use incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(32)
            .with_resource_name(s(group))
            .with_configs(vec![AlterableConfig::default()
                .with_name(s(key))
                .with_config_operation(op)
                .with_value(Some(s(value)))]),
    ]);
    let response: IncrementalAlterConfigsResponse = c.call(1, &request).await;
    response.responses[0].error_code
}

/// (value, source) of each config of a GROUP resource.
async fn describe_group_configs(c: &mut Client, group: &str) -> Vec<(String, Option<String>, i8)> {
    use describe_configs_request::DescribeConfigsResource;
    let request =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(32)
            .with_resource_name(s(group))]);
    let response: DescribeConfigsResponse = c.call(4, &request).await;
    assert_eq!(response.results[0].error_code, 0);
    response.results[0]
        .configs
        .iter()
        .map(|e| {
            (
                e.name.to_string(),
                e.value.as_ref().map(|v| v.to_string()),
                e.config_source,
            )
        })
        .collect()
}

/// KIP-848 group configs: set on a GROUP resource (checked against the broker's bounds, as
/// Kafka's GroupConfig.validate: INVALID_CONFIG), described with the group's source (8), used
/// for the group's members (the heartbeat interval they are told), kept across a restart and
/// removed by DELETE.
#[tokio::test]
async fn group_configs_set_the_members_heartbeat_interval_and_survive_a_restart() {
    const SET: i8 = 0;
    const DELETE: i8 = 1;
    let b = broker().await;
    let mut c = b.client().await;
    let invalid_config = ResponseError::InvalidConfig.code();
    assert_eq!(
        alter_group(&mut c, "cfg", "consumer.heartbeat.interval.ms", SET, "6000").await,
        0
    );
    assert_eq!(
        alter_group(&mut c, "cfg", "consumer.heartbeat.interval.ms", SET, "1000").await,
        invalid_config
    );
    assert_eq!(
        alter_group(&mut c, "cfg", "consumer.session.timeout.ms", SET, "soon").await,
        invalid_config
    );
    assert_eq!(
        alter_group(&mut c, "cfg", "share.session.timeout.ms", SET, "50000").await,
        invalid_config
    );
    assert_eq!(
        alter_group(&mut c, "", "consumer.heartbeat.interval.ms", SET, "6000").await,
        ResponseError::InvalidRequest.code()
    );

    let r = heartbeat(&mut c, 0, &join("cfg", "")).await;
    assert_eq!((r.error_code, r.heartbeat_interval_ms), (0, 6000));
    let other = heartbeat(&mut c, 0, &join("other", "")).await;
    assert_eq!((other.error_code, other.heartbeat_interval_ms), (0, 5000));

    let expected = vec![
        (
            "consumer.session.timeout.ms".to_string(),
            Some("45000".to_string()),
            5,
        ),
        (
            "consumer.heartbeat.interval.ms".to_string(),
            Some("6000".to_string()),
            8,
        ),
    ];
    assert_eq!(describe_group_configs(&mut c, "cfg").await, expected);
    drop(c);
    let b = b.restart().await;
    let mut c = b.client().await;
    assert_eq!(describe_group_configs(&mut c, "cfg").await, expected);

    assert_eq!(
        alter_group(&mut c, "cfg", "consumer.heartbeat.interval.ms", DELETE, "").await,
        0
    );
    let after = describe_group_configs(&mut c, "cfg").await;
    assert_eq!(
        after[1],
        (
            "consumer.heartbeat.interval.ms".to_string(),
            Some("5000".to_string()),
            5
        )
    );
}
