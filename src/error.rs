//! The broker's one internal error type and its one exhaustive mapping to Kafka error codes.
//!
//! Kafka errors are data in responses: a handler turns an `Error` into an error code with
//! [`Error::code`]; nothing here closes a connection.

use kafka_protocol::error::ResponseError;

/// Internal errors raised below the handlers (log, metadata, validation).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown topic or partition")]
    UnknownTopicOrPartition,
    #[error("unknown topic id")]
    UnknownTopicId,
    #[error("corrupt message: {0}")]
    CorruptMessage(String),
    #[error("record batch of {size} bytes exceeds max.message.bytes {max}")]
    MessageTooLarge { size: usize, max: usize },
    #[error("record set of {size} bytes exceeds the request limit {max}")]
    RecordListTooLarge { size: usize, max: usize },
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    #[error("message format {magic} is not supported; only magic 2")]
    UnsupportedForMessageFormat { magic: i8 },
    #[error("invalid timestamp: {0}")]
    InvalidTimestamp(String),
    #[error("offset {offset} out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },
    #[error("storage error: {0}")]
    Storage(#[from] std::io::Error),
    #[error("topic '{0}' already exists")]
    TopicAlreadyExists(String),
    #[error("invalid topic: {0}")]
    InvalidTopic(String),
    #[error("invalid partitions: {0}")]
    InvalidPartitions(String),
    #[error("invalid replication factor: {0}")]
    InvalidReplicationFactor(String),
    #[error("invalid replica assignment: {0}")]
    InvalidReplicaAssignment(String),
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("metadata quorum unavailable: {0}")]
    MetadataUnavailable(String),
    #[error("request timed out")]
    RequestTimedOut,
    #[error("{0}")]
    OutOfOrderSequence(String),
    #[error("{0}")]
    InvalidProducerEpoch(String),
    #[error("{0}")]
    InvalidTxnState(String),
    #[error("policy violation: {0}")]
    PolicyViolation(String),
    #[error("Topic deletion is disabled.")]
    TopicDeletionDisabled,
    /// Records of a batch failed Kafka's per-record checks (LogValidator's
    /// RecordValidationException): INVALID_TIMESTAMP when any of them has a bad timestamp,
    /// else INVALID_RECORD; Produce v8+ lists them in `record_errors` (KIP-467).
    #[error("{message}")]
    RecordValidation {
        invalid_timestamp: bool,
        message: String,
        record_errors: Vec<RecordError>,
    },
}

/// One rejected record: its index in the batch and why (Produce's `BatchIndexAndErrorMessage`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    pub batch_index: i32,
    pub message: String,
}

impl Error {
    /// The Kafka error this internal error is reported as. Exhaustive on purpose: a new
    /// variant must choose its code here.
    pub fn code(&self) -> ResponseError {
        match self {
            Error::UnknownTopicOrPartition => ResponseError::UnknownTopicOrPartition,
            Error::UnknownTopicId => ResponseError::UnknownTopicId,
            Error::CorruptMessage(_) => ResponseError::CorruptMessage,
            Error::MessageTooLarge { .. } => ResponseError::MessageTooLarge,
            Error::RecordListTooLarge { .. } => ResponseError::RecordListTooLarge,
            Error::InvalidRecord(_) => ResponseError::InvalidRecord,
            Error::UnsupportedForMessageFormat { .. } => ResponseError::UnsupportedForMessageFormat,
            Error::InvalidTimestamp(_) => ResponseError::InvalidTimestamp,
            Error::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
            Error::Storage(_) => ResponseError::KafkaStorageError,
            Error::TopicAlreadyExists(_) => ResponseError::TopicAlreadyExists,
            Error::InvalidTopic(_) => ResponseError::InvalidTopicException,
            Error::InvalidPartitions(_) => ResponseError::InvalidPartitions,
            Error::InvalidReplicationFactor(_) => ResponseError::InvalidReplicationFactor,
            Error::InvalidReplicaAssignment(_) => ResponseError::InvalidReplicaAssignment,
            Error::InvalidConfig(_) => ResponseError::InvalidConfig,
            Error::InvalidRequest(_) => ResponseError::InvalidRequest,
            Error::MetadataUnavailable(_) => ResponseError::RequestTimedOut,
            Error::RequestTimedOut => ResponseError::RequestTimedOut,
            Error::OutOfOrderSequence(_) => ResponseError::OutOfOrderSequenceNumber,
            Error::InvalidProducerEpoch(_) => ResponseError::InvalidProducerEpoch,
            Error::InvalidTxnState(_) => ResponseError::InvalidTxnState,
            Error::PolicyViolation(_) => ResponseError::PolicyViolation,
            Error::RecordValidation {
                invalid_timestamp: true,
                ..
            } => ResponseError::InvalidTimestamp,
            Error::RecordValidation { .. } => ResponseError::InvalidRecord,
            Error::TopicDeletionDisabled => ResponseError::TopicDeletionDisabled,
        }
    }

    /// The numeric code for response `error_code` fields.
    pub fn error_code(&self) -> i16 {
        self.code().code()
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_error_maps_to_kafka_storage_error() {
        let e = Error::Storage(std::io::Error::other("disk full"));
        assert_eq!(e.error_code(), 56);
    }

    #[test]
    fn invalid_topic_maps_to_invalid_topic_exception() {
        assert_eq!(Error::InvalidTopic("a b".into()).error_code(), 17);
    }
}
