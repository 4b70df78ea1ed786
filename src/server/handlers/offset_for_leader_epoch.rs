//! OffsetForLeaderEpoch (KIP-101, KIP-320): the end offset of a leader epoch, from the
//! partition's leader epoch cache. Consumers call it to validate their position after a
//! leader change or when they resume from a committed offset carrying an epoch.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use crate::broker::Broker;
use crate::error::Error;
use crate::metadata::image::TopicImage;
use crate::server::dispatch::{RequestContext, Versions};
use crate::server::handlers::check_leader_epoch;

/// v2-v4, all Kafka 4 serves (KIP-896 removed v0-v1). v2 checks current_leader_epoch
/// (FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH), v3 adds replica_id (-1 from consumers; a
/// single node has no followers, so every caller is answered as a consumer is), v4 flexible.
pub const VERSIONS: Versions = Versions::new(2, 4);

pub async fn handle(
    broker: &Arc<Broker>,
    _ctx: &RequestContext,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let image = broker.image();
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let image_topic = image.topic(topic.topic.as_str());
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let entry = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    let found = match image_topic {
                        Some(t) => end_offset(
                            broker,
                            t,
                            p.partition,
                            p.current_leader_epoch,
                            p.leader_epoch,
                        ),
                        None => Err(ResponseError::UnknownTopicOrPartition),
                    };
                    match found {
                        Ok((epoch, offset)) => {
                            entry.with_leader_epoch(epoch).with_end_offset(offset)
                        }
                        Err(e) => entry.with_error_code(e.code()),
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}

/// Kafka's Partition.lastOffsetForLeaderEpoch on the leader: the client's view of the current
/// epoch is checked first (older: FENCED_LEADER_EPOCH, newer: UNKNOWN_LEADER_EPOCH).
fn end_offset(
    broker: &Arc<Broker>,
    topic: &TopicImage,
    partition: i32,
    current_leader_epoch: i32,
    requested: i32,
) -> Result<(i32, i64), ResponseError> {
    let leader_epoch = topic
        .partition(partition)
        .ok_or(ResponseError::UnknownTopicOrPartition)?
        .leader_epoch;
    check_leader_epoch(current_leader_epoch, leader_epoch)?;
    let log = broker
        .leader(topic, partition)
        .map_err(|e| e.code())?
        .log
        .clone();
    log.end_offset_for_epoch(requested, leader_epoch)
        .map_err(|e: Error| e.code())
}
