//! Black-box wire tests of KIP-848 online migration (`group.consumer.migration.policy`): a
//! classic group upgraded by a joining ConsumerGroupHeartbeat member, its classic members
//! served inside the consumer group (JoinGroup, SyncGroup, Heartbeat, OffsetCommit), the
//! downgrade when the last consumer-protocol member leaves, committed offsets carried both
//! ways, and a mixed group replayed after a restart.

mod common;

use std::collections::BTreeSet;

use bytes::{BufMut, Bytes, BytesMut};
use common::{create_topic, Client, TestBroker};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use sluice::config::ConsumerGroupMigrationPolicy;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn gid(v: &str) -> GroupId {
    GroupId(s(v))
}

async fn broker(policy: ConsumerGroupMigrationPolicy) -> TestBroker {
    let b = TestBroker::start_with(|c| {
        c.offsets_topic_num_partitions = 3;
        c.group_initial_rebalance_delay_ms = 0;
        c.group_consumer_migration_policy = policy;
    })
    .await;
    let mut c = b.client().await;
    assert_eq!(create_topic(&mut c, "t", 4).await.topics[0].error_code, 0);
    b
}

fn put_str(b: &mut BytesMut, v: &str) {
    b.put_i16(v.len() as i16);
    b.put_slice(v.as_bytes());
}

/// ConsumerProtocolSubscription v1 of topic "t" owning `owned` (as an eager or cooperative
/// classic consumer sends it).
fn subscription(owned: &[i32]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(1);
    b.put_i32(1);
    put_str(&mut b, "t");
    b.put_i32(-1);
    b.put_i32(1);
    put_str(&mut b, "t");
    b.put_i32(owned.len() as i32);
    for p in owned {
        b.put_i32(*p);
    }
    b.freeze()
}

/// ConsumerProtocolAssignment v1 of topic "t".
fn assignment(partitions: &[i32]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(1);
    b.put_i32(1);
    put_str(&mut b, "t");
    b.put_i32(partitions.len() as i32);
    for p in partitions {
        b.put_i32(*p);
    }
    b.put_i32(-1);
    b.freeze()
}

/// The partitions of a ConsumerProtocolAssignment.
fn assigned(bytes: &[u8]) -> BTreeSet<i32> {
    let mut b = bytes;
    let mut take = |n: usize| {
        let (head, rest) = b.split_at(n);
        b = rest;
        head.to_vec()
    };
    let _version = take(2);
    let topics = i32::from_be_bytes(take(4).try_into().unwrap());
    let mut out = BTreeSet::new();
    for _ in 0..topics {
        let len = i16::from_be_bytes(take(2).try_into().unwrap()) as usize;
        take(len);
        let n = i32::from_be_bytes(take(4).try_into().unwrap());
        for _ in 0..n {
            out.insert(i32::from_be_bytes(take(4).try_into().unwrap()));
        }
    }
    out
}

fn join_request(member_id: &str, owned: &[i32]) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(gid("g"))
        .with_session_timeout_ms(30_000)
        .with_rebalance_timeout_ms(30_000)
        .with_member_id(s(member_id))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(s("range"))
            .with_metadata(subscription(owned))])
}

/// A classic member joins a classic group alone (v9: MEMBER_ID_REQUIRED first), leads and
/// assigns itself every partition. Returns (member id, generation).
async fn classic_member_owning_everything(c: &mut Client) -> (String, i32) {
    let first: JoinGroupResponse = c.call(9, &join_request("", &[])).await;
    assert_eq!(first.error_code, ResponseError::MemberIdRequired.code());
    let id = first.member_id.to_string();
    let j: JoinGroupResponse = c.call(9, &join_request(&id, &[])).await;
    assert_eq!(j.error_code, 0);
    assert_eq!(j.leader.as_str(), id);
    let sync = SyncGroupRequest::default()
        .with_group_id(gid("g"))
        .with_generation_id(j.generation_id)
        .with_member_id(s(&id))
        .with_protocol_type(Some(s("consumer")))
        .with_protocol_name(Some(s("range")))
        .with_assignments(vec![SyncGroupRequestAssignment::default()
            .with_member_id(s(&id))
            .with_assignment(assignment(&[0, 1, 2, 3]))]);
    let r: SyncGroupResponse = c.call(5, &sync).await;
    assert_eq!(r.error_code, 0);
    (id, j.generation_id)
}

async fn classic_heartbeat(c: &mut Client, id: &str, generation: i32) -> i16 {
    let hb = HeartbeatRequest::default()
        .with_group_id(gid("g"))
        .with_generation_id(generation)
        .with_member_id(s(id));
    let r: HeartbeatResponse = c.call(4, &hb).await;
    r.error_code
}

async fn classic_sync(c: &mut Client, id: &str, generation: i32) -> SyncGroupResponse {
    let sync = SyncGroupRequest::default()
        .with_group_id(gid("g"))
        .with_generation_id(generation)
        .with_member_id(s(id))
        .with_protocol_type(Some(s("consumer")))
        .with_protocol_name(Some(s("range")));
    c.call(5, &sync).await
}

/// OffsetCommit v8 (what classic consumers use) of t-0 with a generation.
async fn commit(c: &mut Client, id: &str, generation: i32, offset: i64) -> i16 {
    commit_partition(c, id, generation, 0, offset).await
}

async fn commit_partition(
    c: &mut Client,
    id: &str,
    generation: i32,
    partition: i32,
    offset: i64,
) -> i16 {
    let r: OffsetCommitResponse = c
        .call(
            8,
            &OffsetCommitRequest::default()
                .with_group_id(gid("g"))
                .with_generation_id_or_member_epoch(generation)
                .with_member_id(s(id))
                .with_topics(vec![OffsetCommitRequestTopic::default()
                    .with_name(TopicName(s("t")))
                    .with_partitions(vec![OffsetCommitRequestPartition::default()
                        .with_partition_index(partition)
                        .with_committed_offset(offset)])]),
        )
        .await;
    r.topics[0].partitions[0].error_code
}

/// The committed offset of t-0.
async fn committed(c: &mut Client) -> i64 {
    committed_partition(c, 0).await
}

async fn committed_partition(c: &mut Client, partition: i32) -> i64 {
    let r: OffsetFetchResponse = c
        .call(
            7,
            &OffsetFetchRequest::default()
                .with_group_id(gid("g"))
                .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                    .with_name(TopicName(s("t")))
                    .with_partition_indexes(vec![partition])])),
        )
        .await;
    r.topics[0].partitions[0].committed_offset
}

fn consumer_join(member_id: &str) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest::default()
        .with_group_id(gid("g"))
        .with_member_id(s(member_id))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(30_000)
        .with_subscribed_topic_names(Some(vec![TopicName(s("t"))]))
        .with_topic_partitions(Some(vec![]))
}

fn consumer_beat(
    member_id: &str,
    epoch: i32,
    owned: Vec<TopicPartitions>,
) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest::default()
        .with_group_id(gid("g"))
        .with_member_id(s(member_id))
        .with_member_epoch(epoch)
        .with_rebalance_timeout_ms(-1)
        .with_topic_partitions(Some(owned))
}

fn owned_of(r: &ConsumerGroupHeartbeatResponse) -> Vec<TopicPartitions> {
    r.assignment
        .iter()
        .flat_map(|a| a.topic_partitions.iter())
        .map(|tp| {
            TopicPartitions::default()
                .with_topic_id(tp.topic_id)
                .with_partitions(tp.partitions.clone())
        })
        .collect()
}

fn partitions_of(r: &ConsumerGroupHeartbeatResponse) -> BTreeSet<i32> {
    r.assignment
        .iter()
        .flat_map(|a| a.topic_partitions.iter())
        .flat_map(|tp| tp.partitions.iter().copied())
        .collect()
}

async fn consumer_describe(c: &mut Client) -> consumer_group_describe_response::DescribedGroup {
    let r: ConsumerGroupDescribeResponse = c
        .call(
            1,
            &ConsumerGroupDescribeRequest::default().with_group_ids(vec![gid("g")]),
        )
        .await;
    r.groups.into_iter().next().expect("one group")
}

async fn classic_describe(c: &mut Client) -> describe_groups_response::DescribedGroup {
    let r: DescribeGroupsResponse = c
        .call(
            5,
            &DescribeGroupsRequest::default().with_groups(vec![gid("g")]),
        )
        .await;
    r.groups.into_iter().next().expect("one group")
}

/// A classic member owning everything, then a consumer-protocol member joining: the group is
/// upgraded; the classic member rejoins and hands over half. Returns (classic id, its
/// generation, the consumer member's epoch and owned partitions).
async fn mixed_group(c: &mut Client) -> (String, i32, i32, Vec<TopicPartitions>) {
    let (classic, generation) = classic_member_owning_everything(c).await;
    assert_eq!(commit(c, &classic, generation, 42).await, 0);
    // t-1 is committed only before the upgrade (its record precedes the upgrade's tombstone).
    assert_eq!(commit_partition(c, &classic, generation, 1, 7).await, 0);
    let m: ConsumerGroupHeartbeatResponse = c.call(1, &consumer_join("m")).await;
    assert_eq!(m.error_code, 0, "{:?}", m.error_message);
    assert_eq!(m.member_epoch, generation + 1);
    assert!(partitions_of(&m).is_empty(), "everything is still owned");
    // The classic member is asked to rejoin; its old generation still commits.
    assert_eq!(
        classic_heartbeat(c, &classic, generation).await,
        ResponseError::RebalanceInProgress.code()
    );
    assert_eq!(commit(c, &classic, generation, 43).await, 0);
    // It rejoins as an eager consumer does, owning nothing any more.
    let j: JoinGroupResponse = c.call(9, &join_request(&classic, &[])).await;
    assert_eq!(j.error_code, 0);
    assert_eq!(j.generation_id, generation + 1);
    assert_eq!(j.leader.as_str(), "", "the server assigns");
    assert!(j.members.is_empty());
    let sync = classic_sync(c, &classic, j.generation_id).await;
    assert_eq!(sync.error_code, 0);
    let kept = assigned(&sync.assignment);
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert_eq!(classic_heartbeat(c, &classic, j.generation_id).await, 0);
    // The consumer member gets the other half now that it is free.
    let r: ConsumerGroupHeartbeatResponse =
        c.call(1, &consumer_beat("m", m.member_epoch, vec![])).await;
    assert_eq!(r.error_code, 0);
    let got = partitions_of(&r);
    assert_eq!(got.len(), 2);
    assert!(got.is_disjoint(&kept));
    (classic, j.generation_id, r.member_epoch, owned_of(&r))
}

#[tokio::test]
async fn classic_group_upgrades_serves_classic_members_and_downgrades() {
    let b = broker(ConsumerGroupMigrationPolicy::Bidirectional).await;
    let mut c = b.client().await;
    let (classic, generation, epoch, _) = mixed_group(&mut c).await;
    let d = consumer_describe(&mut c).await;
    assert_eq!(d.error_code, 0);
    assert_eq!(d.members.len(), 2);
    let types: BTreeSet<(String, i8)> = d
        .members
        .iter()
        .map(|m| (m.member_id.to_string(), m.member_type))
        .collect();
    assert_eq!(
        types,
        BTreeSet::from([(classic.clone(), 0), ("m".to_string(), 1)]),
        "ConsumerGroupDescribe v1: 0 classic, 1 consumer"
    );
    assert_eq!(
        committed(&mut c).await,
        43,
        "offsets carried over the upgrade"
    );
    // A new classic member joins the consumer group (v9: MEMBER_ID_REQUIRED first).
    let first: JoinGroupResponse = c.call(9, &join_request("", &[])).await;
    assert_eq!(first.error_code, ResponseError::MemberIdRequired.code());
    let late = first.member_id.to_string();
    let j: JoinGroupResponse = c.call(9, &join_request(&late, &[])).await;
    assert_eq!(j.error_code, 0);
    assert_eq!(consumer_describe(&mut c).await.members.len(), 3);
    let left: LeaveGroupResponse = c
        .call(
            3,
            &LeaveGroupRequest::default()
                .with_group_id(gid("g"))
                .with_members(vec![
                    leave_group_request::MemberIdentity::default().with_member_id(s(&late))
                ]),
        )
        .await;
    assert_eq!(left.error_code, 0);
    assert_eq!(left.members[0].error_code, 0);
    assert_eq!(consumer_describe(&mut c).await.members.len(), 2);
    // The join and the leave moved the group epoch twice: the classic member catches up
    // (same partitions, new generation).
    assert_eq!(
        classic_heartbeat(&mut c, &classic, generation).await,
        ResponseError::RebalanceInProgress.code()
    );
    assert_eq!(
        classic_sync(&mut c, &classic, generation).await.error_code,
        ResponseError::RebalanceInProgress.code(),
        "SyncGroup too tells a member behind the group epoch to rejoin"
    );
    let j: JoinGroupResponse = c.call(9, &join_request(&classic, &[])).await;
    assert_eq!(j.error_code, 0);
    assert_eq!(j.generation_id, epoch + 2);
    let generation = j.generation_id;
    assert_eq!(
        classic_sync(&mut c, &classic, generation).await.error_code,
        0
    );
    let listed: ListGroupsResponse = c.call(5, &ListGroupsRequest::default()).await;
    assert_eq!(listed.groups[0].group_type.as_str(), "consumer");
    // The last consumer-protocol member leaves: the group is classic again and rebalances.
    let left: ConsumerGroupHeartbeatResponse = c.call(1, &consumer_beat("m", -1, vec![])).await;
    assert_eq!(left.error_code, 0);
    assert_eq!(left.member_epoch, -1);
    let g = classic_describe(&mut c).await;
    assert_eq!(g.error_code, 0);
    assert_eq!(g.group_state.as_str(), "PreparingRebalance");
    assert_eq!(g.protocol_type.as_str(), "consumer");
    assert_eq!(g.members.len(), 1);
    assert_eq!(
        consumer_describe(&mut c).await.error_code,
        ResponseError::GroupIdNotFound.code()
    );
    assert_eq!(
        classic_heartbeat(&mut c, &classic, generation).await,
        ResponseError::RebalanceInProgress.code(),
        "the downgraded group's generation is the consumer group's epoch"
    );
    let j: JoinGroupResponse = c.call(9, &join_request(&classic, &[])).await;
    assert_eq!(j.error_code, 0);
    assert_eq!(j.generation_id, generation + 1);
    assert_eq!(j.leader.as_str(), classic, "a classic leader again");
    let sync = SyncGroupRequest::default()
        .with_group_id(gid("g"))
        .with_generation_id(j.generation_id)
        .with_member_id(s(&classic))
        .with_assignments(vec![SyncGroupRequestAssignment::default()
            .with_member_id(s(&classic))
            .with_assignment(assignment(&[0, 1, 2, 3]))]);
    let r: SyncGroupResponse = c.call(5, &sync).await;
    assert_eq!(r.error_code, 0);
    assert_eq!(commit(&mut c, &classic, j.generation_id, 44).await, 0);
    assert_eq!(
        committed(&mut c).await,
        44,
        "offsets carried over the downgrade"
    );
    let listed: ListGroupsResponse = c.call(5, &ListGroupsRequest::default()).await;
    assert_eq!(listed.groups[0].group_type.as_str(), "classic");
}

#[tokio::test]
async fn a_mixed_group_and_its_offsets_replay_after_a_restart() {
    let b = broker(ConsumerGroupMigrationPolicy::Bidirectional).await;
    let mut c = b.client().await;
    let (classic, generation, epoch, owned) = mixed_group(&mut c).await;
    let before = consumer_describe(&mut c).await;
    drop(c);
    let b = b.restart().await;
    let mut c = b.client().await;
    let after = consumer_describe(&mut c).await;
    assert_eq!(after.error_code, 0);
    assert_eq!(after.group_epoch, before.group_epoch);
    assert_eq!(after.members.len(), 2);
    let replayed = after
        .members
        .iter()
        .find(|m| m.member_id.as_str() == classic)
        .expect("the classic member is replayed");
    assert_eq!(
        replayed.member_type, 0,
        "replayed with its classic metadata"
    );
    assert_eq!(committed(&mut c).await, 43);
    assert_eq!(
        committed_partition(&mut c, 1).await,
        7,
        "the upgrade's GroupMetadata tombstone kept the offsets committed before it"
    );
    // Both members carry on where they were.
    assert_eq!(classic_heartbeat(&mut c, &classic, generation).await, 0);
    let sync = classic_sync(&mut c, &classic, generation).await;
    assert_eq!(sync.error_code, 0);
    assert_eq!(assigned(&sync.assignment).len(), 2);
    let r: ConsumerGroupHeartbeatResponse = c.call(1, &consumer_beat("m", epoch, owned)).await;
    assert_eq!(r.error_code, 0);
    assert_eq!(r.member_epoch, epoch);
    // The downgrade works on the replayed group, and is itself replayed.
    let left: ConsumerGroupHeartbeatResponse = c.call(1, &consumer_beat("m", -1, vec![])).await;
    assert_eq!(left.error_code, 0);
    drop(c);
    let b = b.restart().await;
    let mut c = b.client().await;
    let g = classic_describe(&mut c).await;
    assert_eq!(g.error_code, 0);
    assert_eq!(g.group_state.as_str(), "Stable");
    assert_eq!(g.members.len(), 1);
    assert_eq!(g.members[0].member_id.as_str(), classic);
    assert_eq!(
        committed(&mut c).await,
        43,
        "offsets survive both conversions"
    );
    assert_eq!(
        classic_heartbeat(&mut c, &classic, epoch).await,
        0,
        "the stored generation is the consumer group's epoch"
    );
}

#[tokio::test]
async fn upgrade_only_policy_keeps_a_classic_only_consumer_group() {
    let b = broker(ConsumerGroupMigrationPolicy::Upgrade).await;
    let mut c = b.client().await;
    let (classic, generation, _, _) = mixed_group(&mut c).await;
    let left: ConsumerGroupHeartbeatResponse = c.call(1, &consumer_beat("m", -1, vec![])).await;
    assert_eq!(left.error_code, 0);
    let d = consumer_describe(&mut c).await;
    assert_eq!(d.error_code, 0, "no downgrade");
    assert_eq!(d.members.len(), 1);
    assert_eq!(d.members[0].member_type, 0);
    // The classic member is told to rejoin (the epoch moved) and carries on inside it.
    assert_eq!(
        classic_heartbeat(&mut c, &classic, generation).await,
        ResponseError::RebalanceInProgress.code()
    );
    let j: JoinGroupResponse = c.call(9, &join_request(&classic, &[])).await;
    assert_eq!(j.error_code, 0);
    let sync = classic_sync(&mut c, &classic, j.generation_id).await;
    assert_eq!(assigned(&sync.assignment).len(), 4, "then it gets all four");
}

#[tokio::test]
async fn downgrade_and_disabled_policies_refuse_the_upgrade() {
    for policy in [
        ConsumerGroupMigrationPolicy::Downgrade,
        ConsumerGroupMigrationPolicy::Disabled,
    ] {
        let b = broker(policy).await;
        let mut c = b.client().await;
        let (classic, generation) = classic_member_owning_everything(&mut c).await;
        let m: ConsumerGroupHeartbeatResponse = c.call(1, &consumer_join("m")).await;
        assert_eq!(
            m.error_code,
            ResponseError::GroupIdNotFound.code(),
            "{policy:?}"
        );
        assert_eq!(
            m.error_message.as_deref(),
            Some("Group g is not a consumer group.")
        );
        assert_eq!(classic_heartbeat(&mut c, &classic, generation).await, 0);
    }
}
