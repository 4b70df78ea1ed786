//! DescribeTopicPartitions (KIP-966): topics and their partitions in pages of at most
//! `response_partition_limit` partitions, resumed from a cursor; what Kafka 3.7+ admin clients
//! call for describeTopics. Eligible leader replicas do not exist on one node: those lists are
//! empty.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse,
};

use crate::broker::Broker;
use crate::metadata::image::{validate_topic_name, MetadataImage, TopicImage};
use crate::server::dispatch::{RequestContext, Versions};
use crate::server::handlers::metadata::{is_internal, TOPIC_OPERATIONS_ALL};
use crate::server::handlers::topic_name;

/// v0, the only version.
pub const VERSIONS: Versions = Versions::new(0, 0);

/// Kafka's default `max.request.partition.size.limit`: the most partitions one response
/// holds, whatever the request asks.
const PARTITIONS_PER_RESPONSE_MAX: i32 = 2000;

pub async fn handle(
    broker: &Arc<Broker>,
    _ctx: &RequestContext,
    request: DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    let image = broker.image();
    let all_topics = request.topics.is_empty();
    let cursor_topic = request
        .cursor
        .as_ref()
        .map_or(String::new(), |c| c.topic_name.to_string());
    // Topics at or after the cursor, in name order (Kafka's handler sorts them).
    let mut names: Vec<String> = if all_topics {
        image.topics.keys().cloned().collect()
    } else {
        request.topics.iter().map(|t| t.name.to_string()).collect()
    };
    names.retain(|n| *n >= cursor_topic);
    names.sort_unstable();
    names.dedup();
    if let Some(cursor) = &request.cursor {
        let invalid = (!all_topics && !names.contains(&cursor_topic)) || cursor.partition_index < 0;
        if invalid {
            return error_response(&request, ResponseError::InvalidRequest);
        }
    }
    let start_of = |name: &str| match &request.cursor {
        Some(c) if c.topic_name.as_str() == name => c.partition_index,
        _ => 0,
    };
    let limit = request
        .response_partition_limit
        .clamp(1, PARTITIONS_PER_RESPONSE_MAX);
    page(&image, &names, start_of, limit, all_topics)
}

/// Kafka's getTopicMetadataForDescribeTopicResponse: topics in order until `limit`
/// partitions are out; the next cursor points at the first partition left out.
fn page(
    image: &MetadataImage,
    names: &[String],
    start_of: impl Fn(&str) -> i32,
    limit: i32,
    all_topics: bool,
) -> DescribeTopicPartitionsResponse {
    let mut remaining = limit;
    let mut response = DescribeTopicPartitionsResponse::default();
    for name in names {
        if remaining == 0 {
            response.next_cursor = Some(cursor(name, 0));
            break;
        }
        let Some(topic) = image.topic(name) else {
            if !all_topics {
                let code = if validate_topic_name(name).is_ok() {
                    ResponseError::UnknownTopicOrPartition
                } else {
                    ResponseError::InvalidTopicException
                };
                response.topics.push(
                    DescribeTopicPartitionsResponseTopic::default()
                        .with_error_code(code.code())
                        .with_name(Some(topic_name(name)))
                        .with_is_internal(is_internal(name))
                        .with_topic_authorized_operations(TOPIC_OPERATIONS_ALL),
                );
            }
            continue;
        };
        let count = topic.partitions.len() as i32;
        let start = start_of(name);
        let end = count.min(start.saturating_add(remaining));
        let partitions = partitions(topic, start, end);
        remaining -= partitions.len() as i32;
        response.topics.push(
            DescribeTopicPartitionsResponseTopic::default()
                .with_name(Some(topic_name(name)))
                .with_topic_id(topic.topic_id)
                .with_is_internal(is_internal(name))
                .with_partitions(partitions)
                .with_topic_authorized_operations(TOPIC_OPERATIONS_ALL),
        );
        if end < count {
            response.next_cursor = Some(cursor(name, end));
            break;
        }
    }
    response
}

fn partitions(
    topic: &TopicImage,
    start: i32,
    end: i32,
) -> Vec<DescribeTopicPartitionsResponsePartition> {
    let brokers = |ids: &[i32]| ids.iter().copied().map(BrokerId).collect::<Vec<_>>();
    (start.max(0)..end)
        .filter_map(|i| topic.partition(i))
        .map(|p| {
            DescribeTopicPartitionsResponsePartition::default()
                .with_partition_index(p.partition)
                .with_leader_id(BrokerId(p.leader))
                .with_leader_epoch(p.leader_epoch)
                .with_replica_nodes(brokers(&p.replicas))
                .with_isr_nodes(brokers(&p.isr))
                .with_eligible_leader_replicas(Some(Vec::new()))
                .with_last_known_elr(Some(Vec::new()))
        })
        .collect()
}

fn cursor(name: &str, partition_index: i32) -> Cursor {
    Cursor::default()
        .with_topic_name(topic_name(name))
        .with_partition_index(partition_index)
}

/// Kafka's answer to a request it refuses as a whole: every requested topic with the error.
fn error_response(
    request: &DescribeTopicPartitionsRequest,
    error: ResponseError,
) -> DescribeTopicPartitionsResponse {
    let topics = request
        .topics
        .iter()
        .map(|t| {
            DescribeTopicPartitionsResponseTopic::default()
                .with_error_code(error.code())
                .with_name(Some(t.name.clone()))
        })
        .collect();
    DescribeTopicPartitionsResponse::default().with_topics(topics)
}
