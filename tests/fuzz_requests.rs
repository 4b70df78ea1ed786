//! Mutated and random request frames through the real dispatch: every outcome must be a
//! response or a connection-fatal error, never a panic, and stored data must stay intact.

mod common;

use bytes::{Bytes, BytesMut};
use common::{batch, name, TestBroker};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, Request, StrBytes};
use kafka_protocol::records::Compression;
use sluice::server::dispatch::{handle_frame, REGISTRY};
use sluice::server::net::ListenerInfo;

/// A small deterministic generator (xorshift64*), so a failure replays exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn frame<R: Request>(version: i16, request: &R) -> Bytes {
    let mut buf = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("fuzz")))
        .encode(&mut buf, R::header_version(version))
        .expect("header");
    request.encode(&mut buf, version).expect("request");
    buf.freeze()
}

/// One valid frame per API and version in the registry, as seeds for mutation.
fn seeds() -> Vec<Bytes> {
    let mut out = Vec::new();
    for (key, versions) in REGISTRY {
        for version in versions.min..=versions.max {
            let f = match key {
                ApiKey::Produce => frame(
                    version,
                    &ProduceRequest::default()
                        .with_acks(1)
                        .with_timeout_ms(1000)
                        .with_topic_data(vec![TopicProduceData::default()
                            .with_name(name("fuzz"))
                            .with_partition_data(vec![PartitionProduceData::default()
                                .with_index(0)
                                .with_records(Some(batch(3, Compression::Gzip, 0)))])]),
                ),
                ApiKey::Fetch => frame(
                    version,
                    &FetchRequest::default()
                        .with_replica_id(BrokerId(-1))
                        .with_max_bytes(1 << 20)
                        .with_session_epoch(-1)
                        .with_topics(vec![FetchTopic::default()
                            .with_topic(name("fuzz"))
                            .with_partitions(vec![FetchPartition::default()
                                .with_partition(0)
                                .with_partition_max_bytes(1 << 20)])]),
                ),
                ApiKey::ListOffsets => frame(
                    version,
                    &ListOffsetsRequest::default()
                        .with_replica_id(BrokerId(-1))
                        .with_topics(vec![ListOffsetsTopic::default()
                            .with_name(name("fuzz"))
                            .with_partitions(vec![
                                ListOffsetsPartition::default().with_timestamp(-2)
                            ])]),
                ),
                ApiKey::Metadata => frame(
                    version,
                    &MetadataRequest::default().with_topics(Some(vec![
                        MetadataRequestTopic::default().with_name(Some(name("fuzz"))),
                    ])),
                ),
                ApiKey::ApiVersions => frame(version, &ApiVersionsRequest::default()),
                ApiKey::CreateTopics => frame(
                    version,
                    &CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
                        .with_name(name("fuzz-created"))
                        .with_num_partitions(1)
                        .with_replication_factor(1)]),
                ),
                ApiKey::DeleteTopics => frame(
                    version,
                    &DeleteTopicsRequest::default().with_topic_names(vec![name("nonexistent")]),
                ),
                ApiKey::DescribeCluster => frame(version, &DescribeClusterRequest::default()),
                _ => match group_seed(*key, version).or_else(|| admin_seed(*key, version)) {
                    Some(f) => f,
                    None => continue,
                },
            };
            out.push(f);
        }
    }
    out
}

/// Seeds for the partition and record admin APIs. CreatePartitions and DeleteRecords name a
/// topic that does not exist: a mutated count must not grow a real topic to thousands of
/// partitions, and the records the test reads back must not be deleted.
fn admin_seed(key: ApiKey, version: i16) -> Option<Bytes> {
    use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
    use kafka_protocol::messages::delete_records_request::{
        DeleteRecordsPartition, DeleteRecordsTopic,
    };
    use kafka_protocol::messages::describe_topic_partitions_request::TopicRequest;
    use kafka_protocol::messages::offset_for_leader_epoch_request::{
        OffsetForLeaderPartition, OffsetForLeaderTopic,
    };
    Some(match key {
        ApiKey::CreatePartitions => frame(
            version,
            &CreatePartitionsRequest::default().with_topics(vec![CreatePartitionsTopic::default()
                .with_name(name("fuzz-absent"))
                .with_count(2)]),
        ),
        ApiKey::DeleteRecords => frame(
            version,
            &DeleteRecordsRequest::default().with_topics(vec![DeleteRecordsTopic::default()
                .with_name(name("fuzz-absent"))
                .with_partitions(vec![DeleteRecordsPartition::default().with_offset(0)])]),
        ),
        ApiKey::DescribeLogDirs => frame(version, &DescribeLogDirsRequest::default()),
        ApiKey::DescribeTopicPartitions => frame(
            version,
            &DescribeTopicPartitionsRequest::default()
                .with_topics(vec![TopicRequest::default().with_name(name("fuzz"))])
                .with_response_partition_limit(10),
        ),
        ApiKey::OffsetForLeaderEpoch => frame(
            version,
            &OffsetForLeaderEpochRequest::default().with_topics(vec![
                OffsetForLeaderTopic::default()
                    .with_topic(name("fuzz"))
                    .with_partitions(vec![OffsetForLeaderPartition::default()]),
            ]),
        ),
        _ => return None,
    })
}

/// Seeds for the group coordinator's APIs.
fn group_seed(key: ApiKey, version: i16) -> Option<Bytes> {
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    let group = GroupId(StrBytes::from_static_str("fuzz-group"));
    let member = StrBytes::from_static_str("fuzz-member");
    Some(match key {
        ApiKey::FindCoordinator if version < 4 => frame(
            version,
            &FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("fuzz-group")),
        ),
        ApiKey::FindCoordinator => frame(
            version,
            &FindCoordinatorRequest::default()
                .with_coordinator_keys(vec![StrBytes::from_static_str("fuzz-group")]),
        ),
        ApiKey::JoinGroup => frame(
            version,
            &JoinGroupRequest::default()
                .with_group_id(group)
                .with_session_timeout_ms(10_000)
                .with_rebalance_timeout_ms(1_000)
                .with_protocol_type(StrBytes::from_static_str("consumer"))
                .with_protocols(vec![JoinGroupRequestProtocol::default()
                    .with_name(StrBytes::from_static_str("range"))
                    .with_metadata(Bytes::from_static(b"meta"))]),
        ),
        ApiKey::SyncGroup => frame(
            version,
            &SyncGroupRequest::default()
                .with_group_id(group)
                .with_generation_id(1)
                .with_member_id(member),
        ),
        ApiKey::Heartbeat => frame(
            version,
            &HeartbeatRequest::default()
                .with_group_id(group)
                .with_generation_id(1)
                .with_member_id(member),
        ),
        ApiKey::LeaveGroup if version < 3 => frame(
            version,
            &LeaveGroupRequest::default()
                .with_group_id(group)
                .with_member_id(member),
        ),
        ApiKey::LeaveGroup => frame(
            version,
            &LeaveGroupRequest::default()
                .with_group_id(group)
                .with_members(vec![
                    kafka_protocol::messages::leave_group_request::MemberIdentity::default()
                        .with_member_id(member),
                ]),
        ),
        ApiKey::OffsetCommit => frame(
            version,
            &OffsetCommitRequest::default()
                .with_group_id(group)
                .with_generation_id_or_member_epoch(-1)
                .with_topics(vec![OffsetCommitRequestTopic::default()
                    .with_name(name("fuzz"))
                    .with_partitions(vec![OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(1)])]),
        ),
        ApiKey::OffsetFetch if version < 8 => {
            frame(version, &OffsetFetchRequest::default().with_group_id(group))
        }
        ApiKey::OffsetFetch => frame(
            version,
            &OffsetFetchRequest::default().with_groups(vec![
                kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup::default()
                    .with_group_id(group),
            ]),
        ),
        ApiKey::ListGroups => frame(version, &ListGroupsRequest::default()),
        ApiKey::DescribeGroups => frame(
            version,
            &DescribeGroupsRequest::default().with_groups(vec![group]),
        ),
        ApiKey::DeleteGroups => frame(
            version,
            &DeleteGroupsRequest::default().with_groups_names(vec![group]),
        ),
        ApiKey::OffsetDelete => frame(
            version,
            &OffsetDeleteRequest::default().with_group_id(group),
        ),
        _ => return None,
    })
}

fn mutate(rng: &mut Rng, seed: &Bytes) -> Bytes {
    let mut bytes = seed.to_vec();
    match rng.below(4) {
        0 => {
            for _ in 0..1 + rng.below(8) {
                // Keep the api key and version so the body decoder is what gets exercised.
                let at = 4 + rng.below(bytes.len().saturating_sub(4));
                if at < bytes.len() {
                    bytes[at] = rng.next() as u8;
                }
            }
        }
        1 => bytes.truncate(4 + rng.below(bytes.len().saturating_sub(4))),
        2 => {
            let at = 4 + rng.below(bytes.len().saturating_sub(4));
            for b in bytes.iter_mut().skip(at).take(4) {
                *b = 0xff;
            }
        }
        _ => {
            let extra = rng.below(64);
            bytes.extend((0..extra).map(|_| rng.next() as u8));
        }
    }
    Bytes::from(bytes)
}

#[tokio::test]
async fn mutated_and_random_frames_never_panic_and_lose_nothing() {
    let broker = TestBroker::start().await;
    let server = broker.server.as_ref().expect("running");
    let state = server.broker.clone();
    let sessions = server.fetch_sessions.clone();
    let peer = "127.0.0.1:1".parse().expect("address");
    let listener = ListenerInfo {
        name: "PLAINTEXT".into(),
        controller: false,
    };
    // A stored record that must survive everything below.
    let produce = seeds()
        .into_iter()
        .find(|f| f[..2] == (ApiKey::Produce as i16).to_be_bytes())
        .expect("produce seed");
    handle_frame(&state, &sessions, produce, peer, &listener)
        .await
        .expect("valid produce");
    let seeds = seeds();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for round in 0..20_000 {
        let frame = if round % 10 == 0 {
            let len = rng.below(200);
            Bytes::from((0..len).map(|_| rng.next() as u8).collect::<Vec<_>>())
        } else {
            let seed = &seeds[rng.below(seeds.len())];
            mutate(&mut rng, seed)
        };
        // A Fetch may legitimately long-poll for the max_wait_ms it asked for, and JoinGroup
        // and SyncGroup wait for the rest of the group (up to the rebalance timeout): those
        // are given less time, since waiting is no failure for them.
        let is = |k: ApiKey| frame.len() >= 2 && frame[..2] == (k as i16).to_be_bytes();
        let group_wait = is(ApiKey::JoinGroup) || is(ApiKey::SyncGroup);
        let waits = group_wait || is(ApiKey::Fetch);
        let limit_ms = if group_wait { 200 } else { 2000 };
        // Ok(response) or Err(close the connection): both are fine; a panic fails the test.
        let outcome = tokio::time::timeout(
            std::time::Duration::from_millis(limit_ms),
            handle_frame(&state, &sessions, frame.clone(), peer, &listener),
        )
        .await;
        assert!(
            outcome.is_ok() || waits,
            "round {round}: a request hung the broker: {:02x?}",
            &frame[..frame.len().min(64)]
        );
    }
    let image = state.image();
    let topic = image.topic("fuzz").expect("topic survives");
    let partition = state.partition(topic, 0).expect("partition");
    assert!(partition.log_end_offset() >= 3);
    let records = partition
        .read(0, 1 << 20, true, partition.high_watermark())
        .expect("read back");
    let decoded = common::decode_records(&records);
    assert_eq!(decoded[0].key.as_deref(), Some(&b"key-0"[..]));
}
