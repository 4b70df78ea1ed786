//! OffsetFetch: the committed offsets of one group (v0-v7) or of several (v8, KIP-709); v9
//! checks a consumer-protocol member's epoch (KIP-848).

use std::sync::Arc;

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::group::classic::CommittedOffset;
use crate::group::FetchedOffsets;
use crate::server::dispatch::{RequestContext, Versions};
use crate::server::handlers::topic_name;

/// v1-v9 (Kafka 4 removed v0, KIP-896). v2 null topics means all, v5 leader epochs, v7
/// require_stable (KIP-447: no transactional offsets are ever pending here, so nothing is
/// unstable), v8 batched groups, v9 member id and epoch: a consumer-protocol group answers
/// UNKNOWN_MEMBER_ID or STALE_MEMBER_EPOCH for the group (KIP-848).
pub const VERSIONS: Versions = Versions::new(1, 9);

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: OffsetFetchRequest,
) -> OffsetFetchResponse {
    if ctx.api_version >= 8 {
        let groups = request
            .groups
            .into_iter()
            .map(|g| {
                if ctx.api_version >= 9 {
                    let member_id = g.member_id.as_deref();
                    if let Some(error) =
                        broker
                            .groups
                            .validate_offset_fetch(&g.group_id, member_id, g.member_epoch)
                    {
                        return OffsetFetchResponseGroup::default()
                            .with_group_id(g.group_id)
                            .with_error_code(error.code());
                    }
                }
                let topics: Option<Vec<(String, Vec<i32>)>> = g.topics.map(|ts| {
                    ts.into_iter()
                        .map(|t| (t.name.to_string(), t.partition_indexes))
                        .collect()
                });
                let found = broker.groups.fetch_offsets(&g.group_id, topics.as_deref());
                OffsetFetchResponseGroup::default()
                    .with_group_id(g.group_id)
                    .with_topics(batched_topics(found))
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let topics: Option<Vec<(String, Vec<i32>)>> = request.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name.to_string(), t.partition_indexes))
            .collect()
    });
    let found = broker
        .groups
        .fetch_offsets(&request.group_id, topics.as_deref());
    let topics = found
        .into_iter()
        .map(|(topic, partitions)| {
            OffsetFetchResponseTopic::default()
                .with_name(topic_name(&topic))
                .with_partitions(
                    partitions
                        .into_iter()
                        .map(|(p, c)| {
                            let (offset, epoch, metadata) = fields(c);
                            OffsetFetchResponsePartition::default()
                                .with_partition_index(p)
                                .with_committed_offset(offset)
                                .with_committed_leader_epoch(epoch)
                                .with_metadata(Some(metadata))
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetFetchResponse::default().with_topics(topics)
}

fn batched_topics(found: FetchedOffsets) -> Vec<OffsetFetchResponseTopics> {
    found
        .into_iter()
        .map(|(topic, partitions)| {
            OffsetFetchResponseTopics::default()
                .with_name(topic_name(&topic))
                .with_partitions(
                    partitions
                        .into_iter()
                        .map(|(p, c)| {
                            let (offset, epoch, metadata) = fields(c);
                            OffsetFetchResponsePartitions::default()
                                .with_partition_index(p)
                                .with_committed_offset(offset)
                                .with_committed_leader_epoch(epoch)
                                .with_metadata(Some(metadata))
                        })
                        .collect(),
                )
        })
        .collect()
}

/// No committed offset reads as offset -1, epoch -1 and empty metadata, as Kafka answers.
fn fields(c: Option<CommittedOffset>) -> (i64, i32, StrBytes) {
    match c {
        Some(c) => (c.offset, c.leader_epoch, StrBytes::from_string(c.metadata)),
        None => (-1, -1, StrBytes::from_static_str("")),
    }
}
