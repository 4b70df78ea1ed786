//! OffsetCommit: members (checked against the group's generation) and admin tools (generation
//! -1 on an Empty group) store positions in __consumer_offsets.

use std::sync::Arc;

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use kafka_protocol::error::ResponseError;

use crate::broker::Broker;
use crate::group::OffsetCommit;
use crate::server::dispatch::{RequestContext, Versions};

/// v2-v9 (Kafka 4 removed v0-v1, KIP-896). v6 committed_leader_epoch (KIP-320), v7
/// group_instance_id (KIP-345), v8 flexible, v9 (KIP-848): for a consumer-protocol group the
/// generation field is the member epoch (STALE_MEMBER_EPOCH, UNKNOWN_MEMBER_ID) and an unknown
/// group is GROUP_ID_NOT_FOUND. librdkafka takes v9 as the sign that the consumer protocol is
/// served.
pub const VERSIONS: Versions = Versions::new(2, 9);

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: OffsetCommitRequest,
) -> OffsetCommitResponse {
    // Kafka's request handler answers partitions the metadata does not know with
    // UNKNOWN_TOPIC_OR_PARTITION before the coordinator sees the commit.
    let image = broker.image();
    let exists = |topic: &str, partition: i32| {
        image
            .topic(topic)
            .is_some_and(|t| t.partition(partition).is_some())
    };
    let commits: Vec<OffsetCommit> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .filter(|p| exists(&t.name, p.partition_index))
                .map(|p| OffsetCommit {
                    topic: t.name.to_string(),
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    leader_epoch: if ctx.api_version >= 6 {
                        p.committed_leader_epoch
                    } else {
                        -1
                    },
                    metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                })
        })
        .collect();
    let mut errors = if commits.is_empty() {
        Vec::new()
    } else {
        broker
            .groups
            .commit_offsets(
                broker,
                &request.group_id,
                request.generation_id_or_member_epoch,
                &request.member_id,
                request.group_instance_id.as_deref(),
                &commits,
                ctx.api_version,
            )
            .await
    }
    .into_iter();
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let error = if exists(&t.name, p.partition_index) {
                        errors.next().flatten()
                    } else {
                        Some(ResponseError::UnknownTopicOrPartition)
                    };
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(error.map(|e| e.code()).unwrap_or(0))
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}
