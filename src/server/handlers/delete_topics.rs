//! DeleteTopics: remove topics by name (or by topic id from v6, KIP-516) and their logs.

use std::sync::Arc;

use indexmap::IndexMap;
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
    if !broker.config.delete_topic_enable {
        // Kafka fails the whole request: INVALID_REQUEST before v3, then its own code.
        for (name, topic_id) in targets {
            let e = if ctx.api_version < 3 {
                Error::InvalidRequest("Topic deletion is disabled.".into())
            } else {
                Error::TopicDeletionDisabled
            };
            responses.push(entry(ctx, name, topic_id, Err(e)));
        }
        return DeleteTopicsResponse::default().with_responses(responses);
    }
    let (refused, deletable) = split(targets);
    for (name, topic_id, e) in refused {
        responses.push(entry(ctx, name, topic_id, Err(e)));
    }
    for (name, topic_id) in deletable {
        let result = delete(broker, name.clone(), topic_id).await;
        responses.push(entry(ctx, name, topic_id, result));
    }
    DeleteTopicsResponse::default().with_responses(responses)
}

/// Splits the targets as Kafka's ControllerApis.deleteTopics does before deleting anything:
/// both or neither of name and id, and names or ids given more than once (answered once each)
/// are refused; the rest are deleted. Counted in maps: the list is the client's.
fn split(targets: Vec<(Option<String>, Uuid)>) -> (Vec<Refused>, Vec<(Option<String>, Uuid)>) {
    let mut refused = Vec::new();
    let mut names: IndexMap<String, usize> = IndexMap::new();
    let mut ids: IndexMap<Uuid, usize> = IndexMap::new();
    for (name, topic_id) in &targets {
        match (name, topic_id.is_nil()) {
            (Some(_), false) => refused.push((
                name.clone(),
                *topic_id,
                Error::InvalidRequest("You may not specify both topic name and topic id.".into()),
            )),
            (None, true) => refused.push((
                None,
                Uuid::nil(),
                Error::InvalidRequest("Neither topic name nor id were specified.".into()),
            )),
            (Some(n), true) => *names.entry(n.clone()).or_default() += 1,
            (None, false) => *ids.entry(*topic_id).or_default() += 1,
        }
    }
    for (name, _) in names.iter().filter(|(_, n)| **n > 1) {
        let e = Error::InvalidRequest("Duplicate topic name.".into());
        refused.push((Some(name.clone()), Uuid::nil(), e));
    }
    for (topic_id, _) in ids.iter().filter(|(_, n)| **n > 1) {
        let e = Error::InvalidRequest("Duplicate topic id.".into());
        refused.push((None, *topic_id, e));
    }
    let once = |t: &(Option<String>, Uuid)| match t {
        (Some(n), id) if id.is_nil() => names.get(n) == Some(&1),
        (None, id) if !id.is_nil() => ids.get(id) == Some(&1),
        _ => false,
    };
    let deletable = targets.into_iter().filter(|t| once(t)).collect();
    (refused, deletable)
}

/// A target refused before deletion: name, id, why.
type Refused = (Option<String>, Uuid, Error);

fn entry(
    ctx: &RequestContext,
    name: Option<String>,
    topic_id: Uuid,
    result: Result<(String, Uuid), Error>,
) -> DeletableTopicResult {
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
    entry
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
