//! DeleteRecords (KIP-107): moves partitions' log start offsets forward, durably; fetches
//! below the new start get OFFSET_OUT_OF_RANGE and ListOffsets earliest returns it.

use std::sync::Arc;

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use crate::broker::Broker;
use crate::error::Error;
use crate::metadata::image::TopicImage;
use crate::server::dispatch::{RequestContext, Versions};
use crate::server::handlers::metadata::is_internal;

/// v0-v2, all Kafka 4 serves (v2 is flexible). One node is every replica, so the low
/// watermark is known at once and `timeout_ms` never has to be waited for.
pub const VERSIONS: Versions = Versions::new(0, 2);

/// DeleteRecordsRequest.HIGH_WATERMARK: delete everything below the high watermark.
const HIGH_WATERMARK: i64 = -1;

pub async fn handle(
    broker: &Arc<Broker>,
    _ctx: &RequestContext,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let image = broker.image();
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let image_topic = image.topic(topic.name.as_str());
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let result = match image_topic {
                Some(t) => delete(broker, t, p.partition_index, p.offset).await,
                None => Err(Error::UnknownTopicOrPartition),
            };
            let entry =
                DeleteRecordsPartitionResult::default().with_partition_index(p.partition_index);
            partitions.push(match result {
                Ok(low_watermark) => entry.with_low_watermark(low_watermark),
                Err(e) => entry.with_low_watermark(-1).with_error_code(e.error_code()),
            });
        }
        topics.push(
            DeleteRecordsTopicResult::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    DeleteRecordsResponse::default().with_topics(topics)
}

/// Kafka's checks (ReplicaManager.deleteRecordsOnLocalLog, Partition.deleteRecordsOnLeader):
/// internal topics are refused, so is a topic without the delete cleanup policy; the offset
/// must lie between 0 and the high watermark.
async fn delete(
    broker: &Arc<Broker>,
    topic: &TopicImage,
    partition: i32,
    offset: i64,
) -> Result<i64, Error> {
    if is_internal(&topic.name) {
        return Err(Error::InvalidTopic(format!(
            "Cannot delete records of internal topic {}",
            topic.name
        )));
    }
    let log = broker.leader(topic, partition)?.log.clone();
    if !broker
        .config
        .effective_topic_config(&topic.configs)
        .cleanup_policy
        .delete
    {
        return Err(Error::PolicyViolation(format!(
            "Records of partition {}-{partition} can not be deleted due to the configured policy",
            topic.name
        )));
    }
    if offset < 0 && offset != HIGH_WATERMARK {
        return Err(Error::OffsetOutOfRange {
            offset,
            log_start_offset: log.log_start_offset(),
            log_end_offset: log.high_watermark(),
        });
    }
    broker.logs.delete_records(&log, offset).await
}
