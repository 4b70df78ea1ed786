//! Metadata: brokers, controller, and topics with their partitions, leaders and topic ids;
//! creates requested topics that do not exist when auto.create.topics.enable allows it.

use std::sync::Arc;

use indexmap::IndexMap;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::error::Error;
use crate::metadata::controller::CreateTopic;
use crate::metadata::image::{MetadataImage, TopicImage};
use crate::server::dispatch::{RequestContext, Versions};
use crate::server::handlers::topic_name;

/// v0-v13. v4 adds allow_auto_topic_creation, v8 authorized operations, v9 flexible, v10
/// topic ids (KIP-516), v12 lookup by topic id, v13 a top-level error code (KIP-1102) whose
/// only value, REBOOTSTRAP_REQUIRED, Kafka brokers leave to the client; it is always 0 here.
pub const VERSIONS: Versions = Versions::new(0, 13);

/// Kafka's "authorized operations not requested" marker.
const OPERATIONS_OMITTED: i32 = i32::MIN;
/// Without an authorizer every topic operation is allowed: READ, WRITE, CREATE, DELETE,
/// ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS (AclOperation codes 3-8, 10, 11).
pub const TOPIC_OPERATIONS_ALL: i32 =
    (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11);
/// Cluster operations: CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS,
/// ALTER_CONFIGS, IDEMPOTENT_WRITE.
pub const CLUSTER_OPERATIONS_ALL: i32 =
    (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12);

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: MetadataRequest,
) -> MetadataResponse {
    // v0 has no null: an empty list means all topics there.
    let all_topics = match &request.topics {
        None => true,
        Some(topics) => topics.is_empty() && ctx.api_version == 0,
    };
    let allow_auto_create = (ctx.api_version < 4 || request.allow_auto_topic_creation)
        && broker.config.auto_create_topics_enable;
    let topics = if all_topics {
        let image = broker.image();
        image
            .topics
            .values()
            .map(|t| {
                topic_response(
                    &image,
                    &ctx.listener.name,
                    t,
                    request.include_topic_authorized_operations,
                )
            })
            .collect()
    } else {
        let mut out = Vec::new();
        for requested in request.topics.unwrap_or_default() {
            out.push(
                requested_topic(
                    broker,
                    &ctx.listener.name,
                    requested.name.as_ref().map(|n| n.to_string()),
                    requested.topic_id,
                    allow_auto_create,
                    request.include_topic_authorized_operations,
                )
                .await,
            );
        }
        out
    };
    let image = broker.image();
    let cluster_operations = if request.include_cluster_authorized_operations {
        CLUSTER_OPERATIONS_ALL
    } else {
        OPERATIONS_OMITTED
    };
    MetadataResponse::default()
        .with_brokers(brokers(&image, &ctx.listener.name))
        .with_cluster_id(Some(StrBytes::from_string(broker.cluster_id.clone())))
        .with_controller_id(BrokerId(image.controller_id))
        .with_topics(topics)
        .with_cluster_authorized_operations(cluster_operations)
}

/// The brokers as the request's listener reaches them.
pub fn brokers(image: &MetadataImage, listener: &str) -> Vec<MetadataResponseBroker> {
    image
        .brokers_on(listener)
        .map(|(b, endpoint)| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(b.node_id))
                .with_host(StrBytes::from_string(endpoint.host.clone()))
                .with_port(endpoint.port)
                .with_rack(b.rack.clone().map(StrBytes::from_string))
        })
        .collect()
}

async fn requested_topic(
    broker: &Arc<Broker>,
    listener: &str,
    name: Option<String>,
    topic_id: uuid::Uuid,
    allow_auto_create: bool,
    include_operations: bool,
) -> MetadataResponseTopic {
    let image = broker.image();
    let Some(name) = name else {
        // v12: looked up by id.
        return match image.topic_by_id(&topic_id) {
            Some(t) => topic_response(&image, listener, t, include_operations),
            None => error_topic(None, topic_id, ResponseError::UnknownTopicId),
        };
    };
    if let Some(t) = image.topic(&name) {
        return topic_response(&image, listener, t, include_operations);
    }
    if !allow_auto_create {
        return error_topic(Some(name), topic_id, ResponseError::UnknownTopicOrPartition);
    }
    match auto_create(broker, &name).await {
        Ok(()) | Err(Error::TopicAlreadyExists(_)) => {
            let image = broker.image();
            match image.topic(&name) {
                Some(t) => topic_response(&image, listener, t, include_operations),
                None => error_topic(Some(name), topic_id, ResponseError::LeaderNotAvailable),
            }
        }
        Err(e) => error_topic(Some(name), topic_id, e.code()),
    }
}

/// Creates a topic a client asked for, with num.partitions and default.replication.factor.
async fn auto_create(broker: &Arc<Broker>, name: &str) -> Result<(), Error> {
    broker
        .create_topic(CreateTopic {
            name: name.to_string(),
            num_partitions: broker.config.num_partitions,
            replication_factor: broker.config.default_replication_factor,
            configs: IndexMap::new(),
            validate_only: false,
        })
        .await
        .map(|_| ())
}

fn error_topic(
    name: Option<String>,
    topic_id: uuid::Uuid,
    code: ResponseError,
) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_error_code(code.code())
        .with_name(name.map(|n| topic_name(&n)))
        .with_topic_id(topic_id)
        .with_topic_authorized_operations(OPERATIONS_OMITTED)
}

/// One topic's partitions as Kafka's KRaftMetadataCache describes them: a partition whose
/// leader is not a live broker on the request's listener answers LEADER_NOT_AVAILABLE with
/// leader -1; replicas on fenced or unregistered brokers are listed offline.
fn topic_response(
    image: &MetadataImage,
    listener: &str,
    topic: &TopicImage,
    include_operations: bool,
) -> MetadataResponseTopic {
    let ids = |ids: &[i32]| ids.iter().copied().map(BrokerId).collect::<Vec<_>>();
    let partitions = topic
        .partitions
        .iter()
        .map(|p| {
            let leader_reachable = image
                .broker(p.leader)
                .is_some_and(|b| !b.fenced && b.endpoint(listener).is_some());
            let offline: Vec<i32> = p
                .replicas
                .iter()
                .copied()
                .filter(|r| !image.is_broker_alive(*r))
                .collect();
            let partition = MetadataResponsePartition::default()
                .with_partition_index(p.partition)
                .with_leader_epoch(p.leader_epoch)
                .with_replica_nodes(ids(&p.replicas))
                .with_isr_nodes(ids(&p.isr))
                .with_offline_replicas(ids(&offline));
            if leader_reachable {
                partition.with_leader_id(BrokerId(p.leader))
            } else {
                partition
                    .with_leader_id(BrokerId(-1))
                    .with_error_code(ResponseError::LeaderNotAvailable.code())
            }
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(topic_name(&topic.name)))
        .with_topic_id(topic.topic_id)
        .with_is_internal(is_internal(&topic.name))
        .with_partitions(partitions)
        .with_topic_authorized_operations(if include_operations {
            TOPIC_OPERATIONS_ALL
        } else {
            OPERATIONS_OMITTED
        })
}

/// Kafka's internal topics; only these are flagged internal.
pub fn is_internal(topic: &str) -> bool {
    matches!(topic, "__consumer_offsets" | "__transaction_state")
}
