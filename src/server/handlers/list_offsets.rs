//! ListOffsets: the offset for a timestamp, or the earliest, latest or max-timestamp offset.

use std::sync::Arc;

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use crate::broker::Broker;
use crate::error::Error;
use crate::metadata::image::TopicImage;
use crate::server::dispatch::{RequestContext, Versions};

/// v1-v7. v2 adds isolation_level, v4 leader epochs, v6 flexible encoding, v7 MAX_TIMESTAMP
/// (KIP-734). v8's EARLIEST_LOCAL (KIP-405) is not advertised yet.
pub const VERSIONS: Versions = Versions::new(1, 7);

/// Special timestamps of the request (Kafka's ListOffsetsRequest constants).
const LATEST_TIMESTAMP: i64 = -1;
const EARLIEST_TIMESTAMP: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const READ_COMMITTED: i8 = 1;

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: ListOffsetsRequest,
) -> ListOffsetsResponse {
    let image = broker.image();
    let read_committed = request.isolation_level == READ_COMMITTED;
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
                        .ok_or(Error::UnknownTopicOrPartition)
                        .and_then(|t| {
                            lookup(broker, t, p.partition_index, p.timestamp, read_committed)
                        });
                    let (mut response, leader_epoch) = match found {
                        Ok((offset, timestamp, leader_epoch)) => (
                            response.with_offset(offset).with_timestamp(timestamp),
                            leader_epoch,
                        ),
                        Err(e) => (
                            response
                                .with_error_code(e.error_code())
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
    index: i32,
    timestamp: i64,
    read_committed: bool,
) -> Result<(i64, i64, i32), Error> {
    let partition = broker.partition(topic, index)?;
    let leader_epoch = topic
        .partitions
        .get(index as usize)
        .map(|p| p.leader_epoch)
        .unwrap_or(-1);
    match timestamp {
        LATEST_TIMESTAMP => {
            let offset = if read_committed {
                partition.last_stable_offset()
            } else {
                partition.high_watermark()
            };
            Ok((offset, -1, leader_epoch))
        }
        EARLIEST_TIMESTAMP => Ok((partition.log_start_offset(), -1, leader_epoch)),
        MAX_TIMESTAMP => Ok(partition.max_timestamp_offset()?.unwrap_or((-1, -1, -1))),
        ts if ts >= 0 => Ok(partition.offset_for_timestamp(ts)?.unwrap_or((-1, -1, -1))),
        other => Err(Error::InvalidRequest(format!(
            "unsupported ListOffsets timestamp {other}"
        ))),
    }
}
