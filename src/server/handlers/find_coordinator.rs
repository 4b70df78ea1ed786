//! FindCoordinator: this single node coordinates every group; transactions have no
//! coordinator yet.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::group::ensure_offsets_topic;
use crate::server::dispatch::{RequestContext, Versions};

/// v0-v6. v1 adds key_type, v4 batches keys (KIP-699), v6 the share-group key type
/// (KIP-932), answered INVALID_REQUEST as share groups are not served.
pub const VERSIONS: Versions = Versions::new(0, 6);

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

/// Where one key's coordinator is, or why there is none.
struct Found {
    error: Option<ResponseError>,
    message: Option<String>,
    node_id: i32,
    host: String,
    port: i32,
}

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    if ctx.api_version >= 4 {
        let mut coordinators = Vec::with_capacity(request.coordinator_keys.len());
        for key in request.coordinator_keys {
            let found = find(broker, &ctx.listener.name, request.key_type).await;
            coordinators.push(
                Coordinator::default()
                    .with_key(key)
                    .with_node_id(BrokerId(found.node_id))
                    .with_host(StrBytes::from_string(found.host))
                    .with_port(found.port)
                    .with_error_code(error_code(found.error))
                    .with_error_message(found.message.map(StrBytes::from_string)),
            );
        }
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let key_type = if ctx.api_version >= 1 {
        request.key_type
    } else {
        KEY_TYPE_GROUP
    };
    let found = find(broker, &ctx.listener.name, key_type).await;
    let mut response = FindCoordinatorResponse::default()
        .with_error_code(error_code(found.error))
        .with_node_id(BrokerId(found.node_id))
        .with_host(StrBytes::from_string(found.host))
        .with_port(found.port);
    if ctx.api_version >= 1 {
        response.error_message = found.message.map(StrBytes::from_string);
    }
    response
}

fn error_code(e: Option<ResponseError>) -> i16 {
    e.map(|e| e.code()).unwrap_or(0)
}

async fn find(broker: &Broker, listener: &str, key_type: i8) -> Found {
    let missing = |error: ResponseError, message: &str| Found {
        error: Some(error),
        message: Some(message.to_string()),
        node_id: -1,
        host: String::new(),
        port: -1,
    };
    match key_type {
        KEY_TYPE_GROUP => {
            // Kafka creates __consumer_offsets when a group coordinator is first looked up.
            if let Err(e) = ensure_offsets_topic(broker).await {
                tracing::warn!(error = %e, "could not create __consumer_offsets");
                return missing(
                    ResponseError::CoordinatorNotAvailable,
                    "The coordinator is not available.",
                );
            }
            // The coordinator as this listener reaches it; a listener that is not advertised
            // has no coordinator endpoint to give (Kafka answers COORDINATOR_NOT_AVAILABLE).
            match broker.endpoint(listener) {
                Some(endpoint) => Found {
                    error: None,
                    message: None,
                    node_id: broker.node_id,
                    host: endpoint.host.clone(),
                    port: endpoint.port,
                },
                None => missing(
                    ResponseError::CoordinatorNotAvailable,
                    "The coordinator is not available.",
                ),
            }
        }
        // No transaction coordinator exists yet. COORDINATOR_NOT_AVAILABLE would make clients
        // retry until their timeout; an authorization failure is fatal at once in librdkafka
        // and the Java client, so a transactional producer fails fast with this message.
        KEY_TYPE_TRANSACTION => missing(
            ResponseError::TransactionalIdAuthorizationFailed,
            "Transactions are not supported by this broker yet.",
        ),
        _ => missing(
            ResponseError::InvalidRequest,
            &format!("Unsupported key type {key_type}"),
        ),
    }
}
