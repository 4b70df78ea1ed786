//! Every API that ApiVersions advertises, at its lowest and highest served version: a request
//! that succeeds answers error code NONE and a null error message wherever the response has one.
//!
//! Kafka answers a success with `error_message = null`; clients that test for null (rather than
//! for the error code) report an empty string as an error. The list of APIs comes from the
//! broker's own ApiVersions at run time, and an API this test does not know fails it, so a newly
//! advertised API cannot skip the check.

mod common;

use bytes::Bytes;
use common::{batch, create, name, Client, TestBroker};
use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::describe_topic_partitions_request::TopicRequest;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource as IncrementalResource, AlterableConfig as IncrementalConfig,
};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
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
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use uuid::Uuid;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn gid(v: &str) -> GroupId {
    GroupId(s(v))
}

/// What one response says: every error code and every error message it carries.
#[derive(Debug, Default)]
struct Outcome {
    codes: Vec<i16>,
    messages: Vec<Option<StrBytes>>,
}

impl Outcome {
    fn codes(codes: impl IntoIterator<Item = i16>) -> Self {
        Outcome {
            codes: codes.into_iter().collect(),
            messages: Vec::new(),
        }
    }

    fn with(
        codes: impl IntoIterator<Item = i16>,
        messages: impl IntoIterator<Item = Option<StrBytes>>,
    ) -> Self {
        Outcome {
            codes: codes.into_iter().collect(),
            messages: messages.into_iter().collect(),
        }
    }
}

/// What each case is given: the broker's client connection and names no other case uses.
struct Case<'a> {
    client: &'a mut Client,
    version: i16,
    /// Unique per API and version: topics and groups are named after it.
    tag: String,
}

impl Case<'_> {
    fn topic(&self) -> String {
        format!("t-{}", self.tag)
    }

    fn group(&self) -> String {
        format!("g-{}", self.tag)
    }

    async fn topic_id(&mut self, topic: &str) -> Uuid {
        let request = MetadataRequest::default().with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(name(topic))),
        ]));
        self.client.call(12, &request).await.topics[0].topic_id
    }

    /// A topic with three records in partition 0; returns its id.
    async fn topic_with_records(&mut self) -> (String, Uuid) {
        let topic = self.topic();
        create(self.client, &topic).await;
        let id = self.topic_id(&topic).await;
        let request = produce(&topic, id, batch(3, Compression::None, 1_700_000_000_000));
        let response = self.client.call(9, &request).await;
        assert_eq!(
            response.responses[0].partition_responses[0].error_code, 0,
            "setup produce: {response:?}"
        );
        (topic, id)
    }

    /// A classic member that has joined `group` (at JoinGroup v5, with the member id round trip
    /// KIP-394 asks for) and synced; returns its member id and generation.
    async fn joined(&mut self, group: &str) -> (StrBytes, i32) {
        let (member, generation) = join(self.client, group, 5).await;
        let sync = SyncGroupRequest::default()
            .with_group_id(gid(group))
            .with_generation_id(generation)
            .with_member_id(member.clone())
            .with_assignments(vec![SyncGroupRequestAssignment::default()
                .with_member_id(member.clone())
                .with_assignment(Bytes::from_static(b"assignment"))]);
        assert_eq!(self.client.call(3, &sync).await.error_code, 0);
        (member, generation)
    }

    /// A standalone commit of offset 1 for partition 0 of `topic` by `group` (no members), so
    /// the group exists and is empty.
    async fn committed(&mut self, group: &str, topic: &str) {
        let response = self.client.call(8, &commit(group, topic, -1, "")).await;
        assert_eq!(
            response.topics[0].partitions[0].error_code, 0,
            "setup commit: {response:?}"
        );
    }
}

fn produce(topic: &str, topic_id: Uuid, records: Bytes) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name(topic))
            .with_topic_id(topic_id)
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))])])
}

fn commit(group: &str, topic: &str, generation: i32, member: &str) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(gid(group))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(s(member))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(1)])])
}

fn join_request(group: &str, member: StrBytes) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(gid(group))
        .with_session_timeout_ms(30_000)
        .with_rebalance_timeout_ms(30_000)
        .with_member_id(member)
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(s("range"))
            .with_metadata(Bytes::from_static(b"subscription"))])
}

/// Joins `group` as a new classic member at `version`: from v4 the first join answers
/// MEMBER_ID_REQUIRED with the id to join with (KIP-394).
async fn join(client: &mut Client, group: &str, version: i16) -> (StrBytes, i32) {
    let mut response = client.call(version, &join_request(group, s(""))).await;
    if version >= 4 {
        assert_eq!(response.error_code, 79, "MEMBER_ID_REQUIRED: {response:?}");
        response = client
            .call(version, &join_request(group, response.member_id.clone()))
            .await;
    }
    assert_eq!(response.error_code, 0, "join: {response:?}");
    (response.member_id, response.generation_id)
}

/// Sends the API's request at the case's version after whatever setup it needs, and reports
/// the response's error codes and messages.
async fn exercise(api: ApiKey, case: &mut Case<'_>) -> Outcome {
    let v = case.version;
    match api {
        ApiKey::Produce => {
            let topic = case.topic();
            create(case.client, &topic).await;
            let id = case.topic_id(&topic).await;
            let request = produce(&topic, id, batch(2, Compression::None, 1_700_000_000_000));
            let r = case.client.call(v, &request).await;
            let partitions = r.responses.iter().flat_map(|t| &t.partition_responses);
            // Error messages and record errors from v8 (KIP-467).
            let with_messages = partitions.clone().filter(|_| v >= 8);
            Outcome::with(
                partitions.clone().map(|p| p.error_code),
                with_messages
                    .clone()
                    .map(|p| p.error_message.clone())
                    .chain(with_messages.flat_map(|p| {
                        p.record_errors
                            .iter()
                            .map(|e| e.batch_index_error_message.clone())
                    })),
            )
        }
        ApiKey::Fetch => {
            let (topic, id) = case.topic_with_records().await;
            let request = FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(0)
                .with_min_bytes(1)
                .with_max_bytes(1024 * 1024)
                .with_session_epoch(-1)
                .with_topics(vec![FetchTopic::default()
                    .with_topic(name(&topic))
                    .with_topic_id(id)
                    .with_partitions(vec![FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(0)
                        .with_partition_max_bytes(1024 * 1024)])]);
            let r = case.client.call(v, &request).await;
            assert!(
                r.responses[0].partitions[0].records.is_some(),
                "records fetched: {r:?}"
            );
            Outcome::codes(
                std::iter::once(r.error_code).chain(
                    r.responses
                        .iter()
                        .flat_map(|t| &t.partitions)
                        .map(|p| p.error_code),
                ),
            )
        }
        ApiKey::ListOffsets => {
            let (topic, _) = case.topic_with_records().await;
            let request = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_timeout_ms(5000)
                .with_topics(vec![ListOffsetsTopic::default()
                    .with_name(name(&topic))
                    .with_partitions(vec![ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(-1)])]);
            let r = case.client.call(v, &request).await;
            assert_eq!(r.topics[0].partitions[0].offset, 3, "{r:?}");
            Outcome::codes(
                r.topics
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .map(|p| p.error_code),
            )
        }
        ApiKey::Metadata => {
            let topic = case.topic();
            create(case.client, &topic).await;
            let request = MetadataRequest::default().with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(name(&topic))),
            ]));
            let r = case.client.call(v, &request).await;
            assert_eq!(r.topics.len(), 1, "{r:?}");
            Outcome::codes(
                std::iter::once(r.error_code)
                    .chain(r.topics.iter().map(|t| t.error_code))
                    .chain(
                        r.topics
                            .iter()
                            .flat_map(|t| &t.partitions)
                            .map(|p| p.error_code),
                    ),
            )
        }
        ApiKey::ApiVersions => {
            let request = ApiVersionsRequest::default()
                .with_client_software_name(s("sluice-test"))
                .with_client_software_version(s("1.0"));
            let r = case.client.call(v, &request).await;
            assert!(!r.api_keys.is_empty());
            Outcome::codes([r.error_code])
        }
        ApiKey::CreateTopics => {
            let request = CreateTopicsRequest::default()
                .with_timeout_ms(5000)
                .with_topics(vec![CreatableTopic::default()
                    .with_name(name(&case.topic()))
                    .with_num_partitions(2)
                    .with_replication_factor(1)]);
            let r = case.client.call(v, &request).await;
            Outcome::with(
                r.topics.iter().map(|t| t.error_code),
                r.topics.iter().map(|t| t.error_message.clone()),
            )
        }
        ApiKey::DeleteTopics => {
            let topic = case.topic();
            create(case.client, &topic).await;
            let request = if v >= 6 {
                DeleteTopicsRequest::default().with_topics(vec![
                    DeleteTopicState::default().with_name(Some(name(&topic)))
                ])
            } else {
                DeleteTopicsRequest::default().with_topic_names(vec![name(&topic)])
            }
            .with_timeout_ms(5000);
            let r = case.client.call(v, &request).await;
            assert_eq!(r.responses.len(), 1, "{r:?}");
            Outcome::with(
                r.responses.iter().map(|t| t.error_code),
                // From v5 (KIP-599).
                r.responses
                    .iter()
                    .filter(|_| v >= 5)
                    .map(|t| t.error_message.clone()),
            )
        }
        ApiKey::DescribeCluster => {
            let r = case
                .client
                .call(v, &DescribeClusterRequest::default())
                .await;
            assert_eq!(r.brokers.len(), 1, "{r:?}");
            Outcome::with([r.error_code], [r.error_message])
        }
        ApiKey::InitProducerId => {
            let request = InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(60_000)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1);
            let r = case.client.call(v, &request).await;
            assert!(r.producer_id.0 >= 0, "{r:?}");
            Outcome::codes([r.error_code])
        }
        ApiKey::FindCoordinator => {
            let group = case.group();
            let request = if v >= 4 {
                FindCoordinatorRequest::default().with_coordinator_keys(vec![s(&group)])
            } else {
                FindCoordinatorRequest::default().with_key(s(&group))
            };
            let r = case.client.call(v, &request).await;
            Outcome::with(
                std::iter::once(r.error_code).chain(r.coordinators.iter().map(|c| c.error_code)),
                // v1-v3 carry one message, v4+ one per coordinator (KIP-699).
                (1..=3)
                    .contains(&v)
                    .then(|| r.error_message.clone())
                    .into_iter()
                    .chain(r.coordinators.iter().map(|c| c.error_message.clone())),
            )
        }
        ApiKey::JoinGroup => {
            let group = case.group();
            let (member, generation) = join(case.client, &group, v).await;
            assert!(!member.is_empty() && generation >= 1);
            Outcome::codes([0])
        }
        ApiKey::SyncGroup => {
            let group = case.group();
            let (member, generation) = join(case.client, &group, 5).await;
            let request = SyncGroupRequest::default()
                .with_group_id(gid(&group))
                .with_generation_id(generation)
                .with_member_id(member.clone())
                .with_protocol_type(Some(s("consumer")))
                .with_protocol_name(Some(s("range")))
                .with_assignments(vec![SyncGroupRequestAssignment::default()
                    .with_member_id(member)
                    .with_assignment(Bytes::from_static(b"assignment"))]);
            let r = case.client.call(v, &request).await;
            assert_eq!(r.assignment, &b"assignment"[..]);
            Outcome::codes([r.error_code])
        }
        ApiKey::Heartbeat => {
            let group = case.group();
            let (member, generation) = case.joined(&group).await;
            let request = HeartbeatRequest::default()
                .with_group_id(gid(&group))
                .with_generation_id(generation)
                .with_member_id(member);
            Outcome::codes([case.client.call(v, &request).await.error_code])
        }
        ApiKey::LeaveGroup => {
            let group = case.group();
            let (member, _) = case.joined(&group).await;
            let request = if v >= 3 {
                LeaveGroupRequest::default()
                    .with_group_id(gid(&group))
                    .with_members(vec![MemberIdentity::default().with_member_id(member)])
            } else {
                LeaveGroupRequest::default()
                    .with_group_id(gid(&group))
                    .with_member_id(member)
            };
            let r = case.client.call(v, &request).await;
            Outcome::codes(
                std::iter::once(r.error_code).chain(r.members.iter().map(|m| m.error_code)),
            )
        }
        ApiKey::OffsetCommit => {
            let (topic, _) = case.topic_with_records().await;
            let group = case.group();
            let (member, generation) = case.joined(&group).await;
            let member = member.to_string();
            let r = case
                .client
                .call(v, &commit(&group, &topic, generation, &member))
                .await;
            Outcome::codes(
                r.topics
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .map(|p| p.error_code),
            )
        }
        ApiKey::OffsetFetch => {
            let (topic, _) = case.topic_with_records().await;
            let group = case.group();
            case.committed(&group, &topic).await;
            let request = if v >= 8 {
                OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
                    .with_group_id(gid(&group))
                    .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                        .with_name(name(&topic))
                        .with_partition_indexes(vec![0])]))])
            } else {
                OffsetFetchRequest::default()
                    .with_group_id(gid(&group))
                    .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                        .with_name(name(&topic))
                        .with_partition_indexes(vec![0])]))
            };
            let r = case.client.call(v, &request).await;
            let (codes, offsets): (Vec<i16>, Vec<i64>) = if v >= 8 {
                let partitions = r
                    .groups
                    .iter()
                    .flat_map(|g| &g.topics)
                    .flat_map(|t| &t.partitions);
                r.groups
                    .iter()
                    .map(|g| (g.error_code, 1))
                    .chain(partitions.map(|p| (p.error_code, p.committed_offset)))
                    .unzip()
            } else {
                let partitions = r.topics.iter().flat_map(|t| &t.partitions);
                std::iter::once((r.error_code, 1))
                    .chain(partitions.map(|p| (p.error_code, p.committed_offset)))
                    .unzip()
            };
            assert!(
                offsets.iter().all(|&o| o == 1) && offsets.len() == 2,
                "{r:?}"
            );
            Outcome::codes(codes)
        }
        ApiKey::ListGroups => {
            let group = case.group();
            case.joined(&group).await;
            let r = case.client.call(v, &ListGroupsRequest::default()).await;
            assert!(
                r.groups.iter().any(|g| *g.group_id.0 == *group.as_str()),
                "{r:?}"
            );
            Outcome::codes([r.error_code])
        }
        ApiKey::DescribeGroups => {
            let group = case.group();
            case.joined(&group).await;
            let request = DescribeGroupsRequest::default().with_groups(vec![gid(&group)]);
            let r = case.client.call(v, &request).await;
            assert_eq!(r.groups[0].members.len(), 1, "{r:?}");
            Outcome::with(
                r.groups.iter().map(|g| g.error_code),
                // From v6, where a missing group answers GROUP_ID_NOT_FOUND with a message.
                r.groups
                    .iter()
                    .filter(|_| v >= 6)
                    .map(|g| g.error_message.clone()),
            )
        }
        ApiKey::DeleteGroups => {
            let (topic, _) = case.topic_with_records().await;
            let group = case.group();
            case.committed(&group, &topic).await;
            let request = DeleteGroupsRequest::default().with_groups_names(vec![gid(&group)]);
            let r = case.client.call(v, &request).await;
            Outcome::codes(r.results.iter().map(|g| g.error_code))
        }
        ApiKey::OffsetDelete => {
            let (topic, _) = case.topic_with_records().await;
            let group = case.group();
            case.committed(&group, &topic).await;
            let request = OffsetDeleteRequest::default()
                .with_group_id(gid(&group))
                .with_topics(vec![OffsetDeleteRequestTopic::default()
                    .with_name(name(&topic))
                    .with_partitions(vec![
                        OffsetDeleteRequestPartition::default().with_partition_index(0)
                    ])]);
            let r = case.client.call(v, &request).await;
            Outcome::codes(
                std::iter::once(r.error_code).chain(
                    r.topics
                        .iter()
                        .flat_map(|t| &t.partitions)
                        .map(|p| p.error_code),
                ),
            )
        }
        ApiKey::CreatePartitions => {
            let topic = case.topic();
            create(case.client, &topic).await;
            let request = CreatePartitionsRequest::default()
                .with_timeout_ms(5000)
                .with_topics(vec![CreatePartitionsTopic::default()
                    .with_name(name(&topic))
                    .with_count(3)
                    .with_assignments(None)]);
            let r = case.client.call(v, &request).await;
            Outcome::with(
                r.results.iter().map(|t| t.error_code),
                r.results.iter().map(|t| t.error_message.clone()),
            )
        }
        ApiKey::DeleteRecords => {
            let (topic, _) = case.topic_with_records().await;
            let request = DeleteRecordsRequest::default()
                .with_timeout_ms(5000)
                .with_topics(vec![DeleteRecordsTopic::default()
                    .with_name(name(&topic))
                    .with_partitions(vec![DeleteRecordsPartition::default()
                        .with_partition_index(0)
                        .with_offset(2)])]);
            let r = case.client.call(v, &request).await;
            assert_eq!(r.topics[0].partitions[0].low_watermark, 2, "{r:?}");
            Outcome::codes(
                r.topics
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .map(|p| p.error_code),
            )
        }
        ApiKey::DescribeConfigs => {
            let topic = case.topic();
            create(case.client, &topic).await;
            let request = DescribeConfigsRequest::default().with_resources(vec![
                DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s(&topic)),
                DescribeConfigsResource::default()
                    .with_resource_type(4)
                    .with_resource_name(s("1")),
            ]);
            let r = case.client.call(v, &request).await;
            assert!(r.results.iter().all(|res| !res.configs.is_empty()), "{r:?}");
            Outcome::with(
                r.results.iter().map(|res| res.error_code),
                r.results.iter().map(|res| res.error_message.clone()),
            )
        }
        ApiKey::AlterConfigs => {
            let topic = case.topic();
            create(case.client, &topic).await;
            let request =
                AlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default(
                )
                .with_resource_type(2)
                .with_resource_name(s(&topic))
                .with_configs(vec![AlterableConfig::default()
                    .with_name(s("retention.ms"))
                    .with_value(Some(s("3600000")))])]);
            let r = case.client.call(v, &request).await;
            Outcome::with(
                r.responses.iter().map(|res| res.error_code),
                r.responses.iter().map(|res| res.error_message.clone()),
            )
        }
        ApiKey::IncrementalAlterConfigs => {
            let topic = case.topic();
            create(case.client, &topic).await;
            let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
                IncrementalResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s(&topic))
                    .with_configs(vec![IncrementalConfig::default()
                        .with_name(s("retention.ms"))
                        .with_config_operation(0)
                        .with_value(Some(s("3600000")))]),
            ]);
            let r = case.client.call(v, &request).await;
            Outcome::with(
                r.responses.iter().map(|res| res.error_code),
                r.responses.iter().map(|res| res.error_message.clone()),
            )
        }
        ApiKey::ConsumerGroupHeartbeat => {
            let topic = case.topic();
            create(case.client, &topic).await;
            let r = case
                .client
                .call(v, &consumer_join(&case.group(), &topic))
                .await;
            assert!(r.member_epoch >= 1, "{r:?}");
            Outcome::with([r.error_code], [r.error_message])
        }
        ApiKey::ConsumerGroupDescribe => {
            let topic = case.topic();
            create(case.client, &topic).await;
            let group = case.group();
            let joined = case.client.call(1, &consumer_join(&group, &topic)).await;
            assert_eq!(joined.error_code, 0, "{joined:?}");
            let request = ConsumerGroupDescribeRequest::default().with_group_ids(vec![gid(&group)]);
            let r = case.client.call(v, &request).await;
            assert_eq!(r.groups[0].members.len(), 1, "{r:?}");
            Outcome::with(
                r.groups.iter().map(|g| g.error_code),
                r.groups.iter().map(|g| g.error_message.clone()),
            )
        }
        ApiKey::DescribeLogDirs => {
            let topic = case.topic();
            create(case.client, &topic).await;
            let request = DescribeLogDirsRequest::default().with_topics(Some(vec![
                DescribableLogDirTopic::default()
                    .with_topic(name(&topic))
                    .with_partitions(vec![0]),
            ]));
            let r = case.client.call(v, &request).await;
            assert_eq!(r.results.len(), 1, "{r:?}");
            Outcome::codes(
                std::iter::once(r.error_code).chain(r.results.iter().map(|d| d.error_code)),
            )
        }
        ApiKey::DescribeTopicPartitions => {
            let topic = case.topic();
            create(case.client, &topic).await;
            let request = DescribeTopicPartitionsRequest::default()
                .with_topics(vec![TopicRequest::default().with_name(name(&topic))])
                .with_response_partition_limit(100);
            let r = case.client.call(v, &request).await;
            Outcome::codes(
                r.topics.iter().map(|t| t.error_code).chain(
                    r.topics
                        .iter()
                        .flat_map(|t| &t.partitions)
                        .map(|p| p.error_code),
                ),
            )
        }
        ApiKey::OffsetForLeaderEpoch => {
            let (topic, _) = case.topic_with_records().await;
            let request = OffsetForLeaderEpochRequest::default().with_topics(vec![
                OffsetForLeaderTopic::default()
                    .with_topic(name(&topic))
                    .with_partitions(vec![OffsetForLeaderPartition::default()
                        .with_partition(0)
                        .with_current_leader_epoch(-1)
                        .with_leader_epoch(0)]),
            ]);
            let r = case.client.call(v, &request).await;
            assert_eq!(r.topics[0].partitions[0].end_offset, 3, "{r:?}");
            Outcome::codes(
                r.topics
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .map(|p| p.error_code),
            )
        }
        other => panic!(
            "{other:?} is advertised in ApiVersions but not exercised here: add its case so \
             its success responses are checked for null error messages"
        ),
    }
}

fn consumer_join(group: &str, topic: &str) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest::default()
        .with_group_id(gid(group))
        .with_member_id(s(&Uuid::new_v4().to_string()))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(30_000)
        .with_subscribed_topic_names(Some(vec![name(topic)]))
        .with_topic_partitions(Some(vec![]))
}

#[tokio::test]
async fn every_advertised_api_answers_success_with_null_error_messages() {
    let broker = TestBroker::start_with(|c| c.group_initial_rebalance_delay_ms = 0).await;
    let mut client = broker.client().await;
    let advertised = client
        .call(
            3,
            &ApiVersionsRequest::default()
                .with_client_software_name(s("sluice-test"))
                .with_client_software_version(s("1.0")),
        )
        .await
        .api_keys;
    assert!(advertised.len() >= 30, "{advertised:?}");
    for range in &advertised {
        let api = ApiKey::try_from(range.api_key).expect("a known api key");
        // Produce v0-v2 are advertised and refused, as Kafka 4.1 does (KAFKA-18659): the lowest
        // version that can succeed is v3 (tests/wire.rs checks the refusal).
        let lowest = if api == ApiKey::Produce {
            3
        } else {
            range.min_version
        };
        let mut versions = vec![lowest, range.max_version];
        versions.dedup();
        for version in versions {
            // Each case on a fresh connection: a case that closes it cannot hide the next one.
            let mut connection = broker.client().await;
            let mut case = Case {
                client: &mut connection,
                version,
                tag: format!("{}-v{version}", range.api_key),
            };
            let outcome = exercise(api, &mut case).await;
            assert!(
                !outcome.codes.is_empty() && outcome.codes.iter().all(|&c| c == 0),
                "{api:?} v{version} must succeed: {outcome:?}"
            );
            assert!(
                outcome.messages.iter().all(Option::is_none),
                "{api:?} v{version} answers a success with a non-null error message: {outcome:?}"
            );
        }
    }
}
