//! CreatePartitions (KIP-195): grows topics' partition counts through the metadata quorum;
//! producers and consumers find the new partitions in their next Metadata response.

use std::sync::Arc;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::error::Error;
use crate::metadata::controller::CreatePartitions;
use crate::server::dispatch::{RequestContext, Versions};
use crate::server::handlers::{duplicate_names, topic_name};

/// v0-v3, all Kafka 4 serves. v2 is flexible; v3 may answer THROTTLING_QUOTA_EXCEEDED
/// (KIP-599), which a broker without controller mutation quotas never does.
pub const VERSIONS: Versions = Versions::new(0, 3);

pub async fn handle(
    broker: &Arc<Broker>,
    _ctx: &RequestContext,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    // As Kafka's ControllerApis: a name given twice is refused (once) with INVALID_REQUEST.
    let duplicates = duplicate_names(request.topics.iter().map(|t| t.name.as_str()));
    let mut results = Vec::with_capacity(request.topics.len());
    for name in &duplicates {
        let e = Error::InvalidRequest("Duplicate topic name.".into());
        results.push(result(topic_name(name), Err(e)));
    }
    let topics: Vec<_> = request
        .topics
        .into_iter()
        .filter(|t| !duplicates.contains(t.name.as_str()))
        .collect();
    let names: Vec<_> = topics.iter().map(|t| t.name.clone()).collect();
    let requests = topics
        .into_iter()
        .map(|t| CreatePartitions {
            name: t.name.to_string(),
            count: t.count,
            assignments: t.assignments.map(|a| {
                a.into_iter()
                    .map(|a| a.broker_ids.into_iter().map(|b| b.0).collect())
                    .collect()
            }),
        })
        .collect();
    match broker
        .metadata
        .create_partitions(requests, request.validate_only)
        .await
    {
        Ok(outcomes) => {
            results.extend(names.into_iter().zip(outcomes).map(|(n, r)| result(n, r)));
        }
        Err(e) => {
            let code = e.error_code();
            let message = e.to_string();
            results.extend(names.into_iter().map(|n| {
                result(n, Err(Error::MetadataUnavailable(message.clone()))).with_error_code(code)
            }));
        }
    }
    CreatePartitionsResponse::default().with_results(results)
}

fn result(
    name: kafka_protocol::messages::TopicName,
    outcome: Result<(), Error>,
) -> CreatePartitionsTopicResult {
    let entry = CreatePartitionsTopicResult::default().with_name(name);
    match outcome {
        Ok(()) => entry,
        Err(e) => entry
            .with_error_code(e.error_code())
            .with_error_message(Some(StrBytes::from_string(e.to_string()))),
    }
}
