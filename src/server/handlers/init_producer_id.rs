//! InitProducerId for idempotent producers (KIP-98): a new producer id at epoch 0 from the
//! broker's producer id block (txn/producer_ids.rs). Duplicates and sequence order are then
//! checked per partition by the log (log/producer_state.rs).
//!
//! Without a transactional id Kafka "blindly accepts" the request: any ProducerId/Epoch given
//! (v3+, KIP-360) is ignored and a fresh producer id is returned, since the broker keeps no
//! record of idempotent producers outside the partitions and so cannot tell a current epoch
//! from a stale one. Clients bump an idempotent producer's epoch themselves (KIP-360): the
//! partitions accept a higher epoch that starts again at sequence 0.
//!
//! With a transactional id: there is no transaction coordinator yet, so the request gets
//! UNSUPPORTED_VERSION, which Kafka also answers when a feature (e.g. a transaction.version)
//! is not enabled. The Java client and kafka-python treat it as fatal at once
//! ("Unexpected error in InitProducerIdResponse; The version of API is not supported.");
//! librdkafka retries until init_transactions() times out and then reports it. NOT_COORDINATOR
//! or COORDINATOR_NOT_AVAILABLE would have every client look for a coordinator forever.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use crate::broker::Broker;
use crate::server::dispatch::{RequestContext, Versions};

/// v0-v5. v3 adds ProducerId/ProducerEpoch (KIP-360), ignored without a transactional id as
/// in Kafka; v4 (PRODUCER_FENCED) and v5 (TRANSACTION_ABORTABLE, KIP-890) add error codes
/// only transactional requests can get. v6 (KIP-939 two-phase commit) is not advertised.
pub const VERSIONS: Versions = Versions::new(0, 5);

pub async fn handle(
    broker: &Arc<Broker>,
    _ctx: &RequestContext,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let error = |code: ResponseError| {
        InitProducerIdResponse::default()
            .with_error_code(code.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    match request.transactional_id.as_deref().map(|s| s.as_str()) {
        None => {}
        // Kafka: an empty transactional id is a client bug.
        Some("") => return error(ResponseError::InvalidRequest),
        Some(_) => return error(ResponseError::UnsupportedVersion),
    }
    match broker
        .producer_ids
        .generate(&broker.metadata, broker.node_id)
        .await
    {
        Ok(producer_id) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(0),
        Err(e) => {
            tracing::warn!(error = %e, "could not allocate a producer id block");
            // Retriable for every client: the block may be allocated on the next try.
            error(ResponseError::CoordinatorLoadInProgress)
        }
    }
}
