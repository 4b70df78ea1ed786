//! ListOffsets: the offset for a timestamp, or the earliest, latest or max-timestamp offset.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_request::ListOffsetsPartition;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use crate::broker::Broker;
use crate::error::Error;
use crate::metadata::image::TopicImage;
use crate::server::dispatch::{RequestContext, Versions};
use crate::server::handlers::check_leader_epoch;

/// v1-v10. v2 adds isolation_level, v4 leader epochs (current_leader_epoch checked, KIP-320),
/// v6 flexible encoding, v7 MAX_TIMESTAMP (KIP-734), v8 EARLIEST_LOCAL (KIP-405), v9
/// LATEST_TIERED (KIP-1005), v10 a timeout for remote-storage lookups (KIP-1075). Without
/// tiered storage every segment is local: EARLIEST_LOCAL is the log start offset, LATEST_TIERED
/// is offset -1 and timestamp -1 (nothing tiered), and nothing waits on v10's timeout, all as
/// Kafka answers with remote storage disabled.
pub const VERSIONS: Versions = Versions::new(1, 10);

/// Special timestamps of the request (Kafka's ListOffsetsRequest constants).
const LATEST_TIMESTAMP: i64 = -1;
const EARLIEST_TIMESTAMP: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL_TIMESTAMP: i64 = -4;
const LATEST_TIERED_TIMESTAMP: i64 = -5;
const READ_COMMITTED: i8 = 1;

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: ListOffsetsRequest,
) -> ListOffsetsResponse {
    let image = broker.image();
    let read_committed = request.isolation_level == READ_COMMITTED;
    // A follower (replica id >= 0) asks for the leader's log end, not its high watermark
    // (Kafka's fetchOffsetForTimestamp without an isolation level).
    let from_replica = request.replica_id.0 >= 0;
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let image_topic = image.topics.get(topic.name.as_str()).cloned();
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let response = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index);
                    let found = image_topic
                        .as_ref()
                        .ok_or(ResponseError::UnknownTopicOrPartition)
                        .and_then(|t| lookup(broker, t, p, read_committed, from_replica));
                    let (mut response, leader_epoch) = match found {
                        Ok((offset, timestamp, leader_epoch)) => (
                            response.with_offset(offset).with_timestamp(timestamp),
                            leader_epoch,
                        ),
                        Err(e) => (
                            response
                                .with_error_code(e.code())
                                .with_offset(-1)
                                .with_timestamp(-1),
                            -1,
                        ),
                    };
                    // leader_epoch exists from v4; earlier versions must leave it unset.
                    if ctx.api_version >= 4 {
                        response.leader_epoch = leader_epoch;
                    }
                    response
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

/// (offset, timestamp, leader epoch) for one partition; -1s when no record matches.
fn lookup(
    broker: &Arc<Broker>,
    topic: &TopicImage,
    request: &ListOffsetsPartition,
    read_committed: bool,
    from_replica: bool,
) -> Result<(i64, i64, i32), ResponseError> {
    let partition = broker
        .leader(topic, request.partition_index)
        .map_err(|e| e.code())?;
    let partition = &partition.log;
    let leader_epoch = topic
        .partition(request.partition_index)
        .map(|p| p.leader_epoch)
        .unwrap_or(-1);
    check_leader_epoch(request.current_leader_epoch, leader_epoch)?;
    let found = match request.timestamp {
        LATEST_TIMESTAMP => {
            let offset = if from_replica {
                partition.log_end_offset()
            } else if read_committed {
                partition.last_stable_offset()
            } else {
                partition.high_watermark()
            };
            Ok((offset, -1, leader_epoch))
        }
        EARLIEST_TIMESTAMP | EARLIEST_LOCAL_TIMESTAMP => {
            Ok((partition.log_start_offset(), -1, leader_epoch))
        }
        LATEST_TIERED_TIMESTAMP => Ok((-1, -1, -1)),
        MAX_TIMESTAMP => partition
            .max_timestamp_offset()
            .map(|found| found.unwrap_or((-1, -1, -1))),
        ts if ts >= 0 => partition
            .offset_for_timestamp(ts)
            .map(|found| found.unwrap_or((-1, -1, -1))),
        other => Err(Error::InvalidRequest(format!(
            "unsupported ListOffsets timestamp {other}"
        ))),
    };
    found.map_err(|e| e.code())
}
