//! DeleteTopics: remove topics by name (or by topic id from v6, KIP-516) and their logs.

use std::sync::Arc;

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::broker::Broker;
use crate::error::Error;
use crate::server::dispatch::{RequestContext, Versions};
use crate::server::handlers::metadata::is_internal;
use crate::server::handlers::topic_name;

/// v1-v6 (Kafka 4 removed v0). v4 flexible, v5 error messages, v6 topics by id.
pub const VERSIONS: Versions = Versions::new(1, 6);

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    // Before v6 topics come as names; from v6 as (name or id) states.
    let targets: Vec<(Option<String>, Uuid)> = if ctx.api_version >= 6 {
        request
            .topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.to_string()), t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .iter()
            .map(|n| (Some(n.to_string()), Uuid::nil()))
            .collect()
    };
    let mut responses = Vec::with_capacity(targets.len());
    for (name, topic_id) in targets {
        let result = delete(broker, name.clone(), topic_id).await;
        let mut entry = DeletableTopicResult::default();
        match result {
            Ok((deleted_name, deleted_id)) => {
                entry.name = Some(topic_name(&deleted_name));
                if ctx.api_version >= 6 {
                    entry.topic_id = deleted_id;
                }
            }
            Err(e) => {
                entry.name = name.map(|n| topic_name(&n));
                if ctx.api_version >= 6 {
                    entry.topic_id = topic_id;
                }
                entry.error_code = e.error_code();
                if ctx.api_version >= 5 {
                    entry.error_message = Some(StrBytes::from_string(e.to_string()));
                }
            }
        }
        responses.push(entry);
    }
    DeleteTopicsResponse::default().with_responses(responses)
}

async fn delete(
    broker: &Arc<Broker>,
    name: Option<String>,
    topic_id: Uuid,
) -> Result<(String, Uuid), Error> {
    let name = match name {
        Some(name) => name,
        None => broker
            .image()
            .topic_by_id(&topic_id)
            .map(|t| t.name.clone())
            .ok_or(Error::UnknownTopicId)?,
    };
    if is_internal(&name) {
        return Err(Error::InvalidRequest(format!(
            "Topic {name} is an internal topic and cannot be deleted"
        )));
    }
    let deleted_id = broker.delete_topic(&name).await?;
    Ok((name, deleted_id))
}
