//! Produce: validate each partition's record batches and append them to its log.
//!
//! acks=0 gets no response (dispatch drops it), acks=1 is answered once the batches are in the
//! log (page cache), acks=-1 once they are fsynced too: on one node the in-sync replica set is
//! this broker alone, so "all replicas have it" can only mean "it is on disk". Concurrent
//! acks=-1 producers share fsyncs (group commit in `Partition::flush_to`).

use std::sync::Arc;

use bytes::BytesMut;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse,
    TopicProduceResponse,
};
use kafka_protocol::messages::{BrokerId, ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::error::{Error, RecordError};
use crate::log::AppendInfo;
use crate::protocol::record_batch::{parse_header, validate_records, BATCH_HEADER_LEN, MAGIC_V2};
use crate::server::dispatch::{RequestContext, Versions};
use crate::server::handlers::{leader_hints, resolve_topic};

/// v3-v13 served, advertised from v0 as Kafka 4.1 does (KAFKA-18659): librdkafka before 2.11.1
/// reads a Produce minimum above 0 as "no message format v2" and stops compressing
/// (librdkafka #4956). A v0-v2 request is refused as Kafka refuses it, by closing the connection
/// (dispatch's unsupported-version path; KIP-896 removed those versions). v13 addresses topics by id (KIP-516). v10's leader hints (KIP-951) are only sent
/// with NOT_LEADER_OR_FOLLOWER, which a single node never returns. v11/v12 (KIP-890) change
/// only transactional produce, which this broker refuses (INVALID_TXN_STATE) until it has a
/// transaction coordinator: InitProducerId hands out producer ids to idempotent producers only.
pub const VERSIONS: Versions = Versions::new(3, 13).advertised_from(0);

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: ProduceRequest,
) -> ProduceResponse {
    let by_id = ctx.api_version >= 13;
    let image = broker.image();
    let acks_all = request.acks == crate::replication::ACKS_ALL;
    let deadline = tokio::time::Instant::now()
        + std::time::Duration::from_millis(request.timeout_ms.max(0) as u64);
    // Every partition is appended first and only then waited on, so an acks=all request
    // waits for the slowest partition's replication, not for the sum of them.
    let mut topics = Vec::with_capacity(request.topic_data.len());
    for topic_data in request.topic_data {
        let topic = resolve_topic(&image, topic_data.name.as_str(), topic_data.topic_id, by_id);
        let mut partitions = Vec::with_capacity(topic_data.partition_data.len());
        for partition_data in topic_data.partition_data {
            let index = partition_data.index;
            let result = match (&topic, request.acks) {
                (_, acks) if !matches!(acks, -1..=1) => Err(ProduceError::Kafka(
                    ResponseError::InvalidRequiredAcks,
                    None,
                )),
                (Err(code), _) => Err(ProduceError::Kafka(*code, None)),
                (Ok(topic), _) => {
                    append(
                        broker,
                        topic,
                        index,
                        partition_data.records,
                        acks_all,
                        ctx.api_version,
                    )
                    .await
                }
            };
            partitions.push((index, result));
        }
        topics.push((topic_data.name, topic_data.topic_id, topic, partitions));
    }
    // Followers long-poll for new records: wake them before waiting for them.
    broker.notify_appended();
    let hints = ctx.api_version >= LEADER_HINT_VERSION;
    let mut leaders = std::collections::BTreeSet::new();
    let mut responses = Vec::with_capacity(topics.len());
    for (name, topic_id, topic, partitions) in topics {
        let mut partition_responses = Vec::with_capacity(partitions.len());
        for (index, result) in partitions {
            let result = match result {
                Ok((partition, info)) if acks_all => {
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    match partition.wait_replicated(info.last_offset, left).await {
                        Ok(()) => Ok(info),
                        Err(e) => Err(ProduceError::from(e)),
                    }
                }
                Ok((_, info)) => Ok(info),
                Err(e) => Err(e),
            };
            let mut response = partition_response(index, result);
            let not_leader = response.error_code == ResponseError::NotLeaderOrFollower.code();
            if hints && not_leader {
                if let Some(p) = topic.as_ref().ok().and_then(|t| t.partition(index)) {
                    response.current_leader = LeaderIdAndEpoch::default()
                        .with_leader_id(BrokerId(p.leader))
                        .with_leader_epoch(p.leader_epoch);
                    leaders.insert(p.leader);
                }
            }
            partition_responses.push(response);
        }
        let mut response =
            TopicProduceResponse::default().with_partition_responses(partition_responses);
        if by_id {
            response.topic_id = topic_id;
        } else {
            response.name = name;
        }
        responses.push(response);
    }
    let mut response = ProduceResponse::default().with_responses(responses);
    if hints {
        response.node_endpoints = leader_hints(broker, &ctx.listener.name, &leaders)
            .into_iter()
            .map(|h| {
                NodeEndpoint::default()
                    .with_node_id(BrokerId(h.node_id))
                    .with_host(StrBytes::from_string(h.host))
                    .with_port(h.port)
                    .with_rack(h.rack.map(StrBytes::from_string))
            })
            .collect();
    }
    response
}

/// Produce v10: partitions refused with NOT_LEADER_OR_FOLLOWER carry the leader the image
/// knows and its endpoint (KIP-951), so a client moves without a metadata round trip.
const LEADER_HINT_VERSION: i16 = 10;

enum ProduceError {
    Kafka(ResponseError, Option<String>),
    /// Per-record failures (KIP-467): the partition error plus each failing record's index.
    Records(ResponseError, String, Vec<RecordError>),
}

impl From<Error> for ProduceError {
    fn from(e: Error) -> Self {
        match e {
            Error::RecordValidation {
                ref message,
                ref record_errors,
                ..
            } => ProduceError::Records(e.code(), message.clone(), record_errors.clone()),
            e => ProduceError::Kafka(e.code(), Some(e.to_string())),
        }
    }
}

/// Kafka's `ProduceRequest.validateRecords`, which KafkaApis applies before the log sees the
/// records: from Produce v3 on exactly one batch of magic 2 per partition (INVALID_RECORD), and
/// zstd only from v7 on (UNSUPPORTED_COMPRESSION_TYPE, KIP-110).
fn check_request_records(records: &[u8], api_version: i16) -> Result<(), ProduceError> {
    let invalid = |what: &str| {
        ProduceError::Kafka(
            ResponseError::InvalidRecord,
            Some(format!(
                "Produce requests with version {api_version} are only allowed to contain {what}"
            )),
        )
    };
    if records.len() > MAGIC_AT && records[MAGIC_AT] as i8 != MAGIC_V2 {
        return Err(invalid("record batches with magic version 2"));
    }
    let Ok(header) = parse_header(records) else {
        // Too short for a header: validate_records answers CORRUPT_MESSAGE.
        return Ok(());
    };
    if api_version < 7 && header.compression_codec() == ZSTD_CODEC {
        return Err(ProduceError::Kafka(
            ResponseError::UnsupportedCompressionType,
            Some(format!(
                "Produce requests with version {api_version} are not allowed to use ZStandard \
                 compression"
            )),
        ));
    }
    let size = header.size_bytes();
    if size >= BATCH_HEADER_LEN && records.len() > size {
        return Err(invalid("exactly one record batch per partition"));
    }
    Ok(())
}

const MAGIC_AT: usize = 16;
const ZSTD_CODEC: i16 = 4;

async fn append(
    broker: &Arc<Broker>,
    topic: &crate::metadata::image::TopicImage,
    index: i32,
    records: Option<bytes::Bytes>,
    acks_all: bool,
    api_version: i16,
) -> Result<(Arc<crate::replication::Partition>, AppendInfo), ProduceError> {
    if crate::server::handlers::metadata::is_internal(&topic.name) {
        // Only the coordinators write their internal topics (Kafka's ReplicaManager refuses
        // client appends to them the same way).
        return Err(ProduceError::Kafka(
            ResponseError::InvalidTopicException,
            Some(format!("Cannot append to internal topic {}", topic.name)),
        ));
    }
    let partition = broker.leader(topic, index)?;
    let records = records.unwrap_or_default();
    check_request_records(&records, api_version)?;
    let max_message_bytes = partition.log.config().max_message_bytes;
    let validated = validate_records(&records, max_message_bytes)?;
    if validated.transactional {
        // No transaction coordinator yet, so no transaction can be open on this partition:
        // Kafka refuses a transactional batch without an ongoing transaction (KIP-890 part 1
        // verification) with INVALID_TXN_STATE.
        return Err(ProduceError::Kafka(
            ResponseError::InvalidTxnState,
            Some("transactions are not supported yet".into()),
        ));
    }
    // Idempotent batches (producer id >= 0) are checked against the partition's producer
    // state inside the log's append, under its lock (log/producer_state.rs).
    let info = partition
        .append_as_leader(BytesMut::from(&records[..]), &validated, acks_all)
        .await?;
    Ok((partition, info))
}

fn partition_response(
    index: i32,
    result: Result<AppendInfo, ProduceError>,
) -> PartitionProduceResponse {
    let response = PartitionProduceResponse::default().with_index(index);
    match result {
        Ok(appended) => response
            .with_base_offset(appended.base_offset)
            .with_log_append_time_ms(appended.log_append_time_ms)
            .with_log_start_offset(appended.log_start_offset),
        Err(ProduceError::Kafka(code, message)) => response
            .with_error_code(code.code())
            .with_base_offset(-1)
            .with_log_append_time_ms(-1)
            .with_log_start_offset(-1)
            .with_error_message(message.map(StrBytes::from_string)),
        Err(ProduceError::Records(code, message, record_errors)) => response
            .with_error_code(code.code())
            .with_base_offset(-1)
            .with_log_append_time_ms(-1)
            .with_log_start_offset(-1)
            .with_error_message(Some(StrBytes::from_string(message)))
            .with_record_errors(
                record_errors
                    .into_iter()
                    .map(|e| {
                        BatchIndexAndErrorMessage::default()
                            .with_batch_index(e.batch_index)
                            .with_batch_index_error_message(Some(StrBytes::from_string(e.message)))
                    })
                    .collect(),
            ),
    }
}
