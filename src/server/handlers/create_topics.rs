//! CreateTopics: validate names, partitions, replication and configs, then create each topic
//! through the metadata quorum (or only validate, with validate_only).

use std::collections::HashSet;
use std::sync::Arc;

use indexmap::IndexMap;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::config;
use crate::error::Error;
use crate::metadata::controller::CreateTopic;
use crate::server::dispatch::{RequestContext, Versions};
use crate::server::handlers::describe_configs;
use crate::server::handlers::{duplicate_names, topic_name};

/// v2-v7 (Kafka 4 removed v0-v1). v4 lets -1 mean the broker default (KIP-464), v5 returns
/// each topic's configs, partitions and replication factor (KIP-525), v7 its topic id.
pub const VERSIONS: Versions = Versions::new(2, 7);

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: CreateTopicsRequest,
) -> CreateTopicsResponse {
    // As Kafka's ControllerApis: a name given twice is answered once, after the others, with
    // INVALID_REQUEST.
    let duplicates = duplicate_names(request.topics.iter().map(|t| t.name.as_str()));
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        if duplicates.contains(topic.name.as_str()) {
            continue;
        }
        let name = topic.name.clone();
        let result = create(broker, topic, request.validate_only).await;
        results.push(result_entry(broker, ctx, name, result));
    }
    for name in duplicates {
        let e = Error::InvalidRequest("Duplicate topic name.".into());
        results.push(result_entry(broker, ctx, topic_name(&name), Err(e)));
    }
    CreateTopicsResponse::default().with_topics(results)
}

/// What a created (or validated) topic looks like in the response.
struct Created {
    topic_id: uuid::Uuid,
    num_partitions: i32,
    replication_factor: i16,
    configs: IndexMap<String, String>,
}

async fn create(
    broker: &Arc<Broker>,
    topic: CreatableTopic,
    validate_only: bool,
) -> Result<Created, Error> {
    let (num_partitions, replication_factor) = partitions_and_replication(broker, &topic)?;
    let mut configs = IndexMap::new();
    for c in &topic.configs {
        let value = c.value.as_ref().ok_or_else(|| {
            Error::InvalidConfig(format!(
                "Null value not supported for topic configs: {}",
                c.name
            ))
        })?;
        config::validate_topic_config(c.name.as_str(), value.as_str())?;
        configs.insert(c.name.to_string(), value.to_string());
    }
    let topic_id = broker
        .create_topic(CreateTopic {
            name: topic.name.to_string(),
            num_partitions,
            replication_factor,
            configs: configs.clone(),
            validate_only,
        })
        .await?;
    Ok(Created {
        topic_id,
        num_partitions,
        replication_factor,
        configs,
    })
}

/// The partition count and replication factor asked for, either as numbers (-1 = broker
/// default, KIP-464) or through explicit replica assignments, never both.
fn partitions_and_replication(
    broker: &Arc<Broker>,
    topic: &CreatableTopic,
) -> Result<(i32, i16), Error> {
    if topic.assignments.is_empty() {
        let partitions = match topic.num_partitions {
            -1 => broker.config.num_partitions,
            n if n <= 0 => {
                return Err(Error::InvalidPartitions(
                    "Number of partitions was set to an invalid non-positive value.".into(),
                ))
            }
            n => n,
        };
        let replication = match topic.replication_factor {
            -1 => broker.config.default_replication_factor,
            n if n <= 0 => {
                return Err(Error::InvalidReplicationFactor(
                    "Replication factor must be larger than 0, or -1 to use the default value."
                        .into(),
                ))
            }
            n => n,
        };
        return Ok((partitions, replication));
    }
    if topic.num_partitions != -1 || topic.replication_factor != -1 {
        return Err(Error::InvalidRequest(
            "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.".into(),
        ));
    }
    let image = broker.image();
    let mut replication = None;
    for (expected, assignment) in topic.assignments.iter().enumerate() {
        if assignment.partition_index != expected as i32 {
            return Err(Error::InvalidReplicaAssignment(
                "Partitions should be a consecutive 0-based integer sequence".into(),
            ));
        }
        let ids: HashSet<i32> = assignment.broker_ids.iter().map(|b| b.0).collect();
        if ids.len() != assignment.broker_ids.len() || ids.is_empty() {
            return Err(Error::InvalidReplicaAssignment(format!(
                "Duplicate or empty replica assignment for partition {}",
                assignment.partition_index
            )));
        }
        if let Some(unknown) = ids.iter().find(|id| !image.brokers.contains_key(*id)) {
            return Err(Error::InvalidReplicaAssignment(format!(
                "Replica assignment for partition {} names unknown broker {unknown}",
                assignment.partition_index
            )));
        }
        match replication {
            None => replication = Some(ids.len()),
            Some(n) if n != ids.len() => {
                return Err(Error::InvalidReplicaAssignment(
                    "All partitions should have the same number of replicas".into(),
                ))
            }
            Some(_) => {}
        }
    }
    Ok((
        topic.assignments.len() as i32,
        replication.unwrap_or(1) as i16,
    ))
}

fn result_entry(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    name: kafka_protocol::messages::TopicName,
    result: Result<Created, Error>,
) -> CreatableTopicResult {
    let entry = CreatableTopicResult::default().with_name(name);
    match result {
        Ok(created) => {
            // The crate defaults this nullable field to "", which clients that test for null
            // read as an error; Kafka answers a success with null.
            let mut entry = entry.with_error_message(None);
            if ctx.api_version >= 5 {
                entry.num_partitions = created.num_partitions;
                entry.replication_factor = created.replication_factor;
                entry.configs = Some(describe_configs(broker, &created.configs));
            }
            if ctx.api_version >= 7 {
                entry.topic_id = created.topic_id;
            }
            entry
        }
        Err(e) => entry
            .with_error_code(e.error_code())
            .with_error_message(Some(StrBytes::from_string(e.to_string())))
            .with_num_partitions(-1)
            .with_replication_factor(-1),
    }
}

/// Every topic config with its effective value and where that value comes from (KIP-525), as
/// DescribeConfigs reports it (dynamic broker defaults included).
fn describe_configs(
    broker: &Arc<Broker>,
    topic_configs: &IndexMap<String, String>,
) -> Vec<CreatableTopicConfigs> {
    let image = broker.image();
    let levels = describe_configs::Levels::new(broker, &image);
    config::TOPIC_CONFIG_NAMES
        .iter()
        .map(|name| {
            let d = levels.topic_entry(name, topic_configs);
            CreatableTopicConfigs::default()
                .with_name(StrBytes::from_static_str(name))
                .with_value(d.value.map(StrBytes::from_string))
                .with_config_source(d.source)
                .with_read_only(d.read_only)
                .with_is_sensitive(d.sensitive)
        })
        .collect()
}
