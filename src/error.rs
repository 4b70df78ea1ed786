//! The broker's one internal error type and its one exhaustive mapping to Kafka error codes.
//!
//! Kafka errors are data in responses: a handler turns an `Error` into an error code with
//! [`Error::code`]; nothing here closes a connection. Startup failures ([`Error::Setting`])
//! name the setting and value to change, for `main` to print as one line.

use std::fmt;
use std::path::PathBuf;

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
    /// The active controller moved while a write was on its way (Kafka's NOT_CONTROLLER).
    #[error("not the active controller: {0}")]
    NotController(String),
    /// A broker heartbeat or request carried another epoch than its registration's (Kafka's
    /// STALE_BROKER_EPOCH): the broker registers again.
    #[error("stale broker epoch: {0}")]
    StaleBrokerEpoch(String),
    /// A heartbeat from a broker id with no registration (BROKER_ID_NOT_REGISTERED).
    #[error("broker {0} is not registered")]
    BrokerIdNotRegistered(i32),
    /// Another live process registered this broker id (DUPLICATE_BROKER_REGISTRATION).
    #[error("{0}")]
    DuplicateBrokerRegistration(String),
    #[error("request timed out")]
    RequestTimedOut,
    /// This broker does not lead (or follow) the partition at the epoch asked for.
    #[error("{0}")]
    NotLeaderOrFollower(String),
    /// A leader epoch older than the partition's (KIP-320's FENCED_LEADER_EPOCH).
    #[error("{0}")]
    FencedLeaderEpoch(String),
    /// AlterPartition on an old partition epoch (KIP-497's INVALID_UPDATE_VERSION).
    #[error("{0}")]
    InvalidUpdateVersion(String),
    /// AlterPartition naming a fenced or shutting-down broker (INELIGIBLE_REPLICA).
    #[error("{0}")]
    IneligibleReplica(String),
    /// acks=all with fewer in-sync replicas than min.insync.replicas, before appending.
    #[error("{0}")]
    NotEnoughReplicas(String),
    /// The ISR shrank below min.insync.replicas while an acks=all append waited.
    #[error("{0}")]
    NotEnoughReplicasAfterAppend(String),
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
    /// A directory of `log.dirs` cannot be used; the server names the setting
    /// ([`Error::Setting`]), the log manager only knows the directory.
    #[error("log dir {}: {source}", dir.display())]
    LogDir { dir: PathBuf, source: DirError },
    /// A startup failure a setting causes: which key, its value, and why, so that the one line
    /// `main` prints tells the operator what to change.
    #[error("{}", SettingDisplay { key, value, problem })]
    Setting {
        key: String,
        value: String,
        problem: SettingProblem,
    },
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

/// Why a setting's value cannot be used at startup.
#[derive(Debug, thiserror::Error)]
pub enum SettingProblem {
    /// A listener's address cannot be bound: in use, not local, not resolvable.
    #[error("{}", os_cause(.0))]
    Bind(std::io::Error),
    #[error(transparent)]
    Dir(DirError),
}

/// Why a directory a path setting names cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    #[error("{} is not a directory", .0.display())]
    NotADirectory(PathBuf),
    #[error("cannot create directory {}: {}", path.display(), os_cause(source))]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write in {}: {}", path.display(), os_cause(source))]
    Unwritable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("locked by another broker process (lock file {})", lock_file.display())]
    Locked { lock_file: PathBuf },
    /// Any other file operation on the directory (`action` is a verb: "read", "lock").
    #[error("cannot {action} {}: {}", path.display(), os_cause(source))]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// `cannot bind listeners=PLAINTEXT://:9092: address already in use (os error 98)`, or for a
/// directory `log.dirs=/x: cannot create directory /x: not a directory (os error 20)`.
struct SettingDisplay<'a> {
    key: &'a str,
    value: &'a str,
    problem: &'a SettingProblem,
}

impl fmt::Display for SettingDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let SettingDisplay {
            key,
            value,
            problem,
        } = self;
        match problem {
            SettingProblem::Bind(_) => write!(f, "cannot bind {key}={value}: {problem}"),
            SettingProblem::Dir(_) => write!(f, "{key}={value}: {problem}"),
        }
    }
}

/// An I/O error as the rest of the line reads: the OS's text starts lower-case
/// ("address already in use (os error 98)").
fn os_cause(e: &std::io::Error) -> String {
    let text = e.to_string();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) if e.raw_os_error().is_some() => first.to_lowercase().chain(chars).collect(),
        _ => text,
    }
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
            Error::NotController(_) => ResponseError::NotController,
            Error::StaleBrokerEpoch(_) => ResponseError::StaleBrokerEpoch,
            Error::BrokerIdNotRegistered(_) => ResponseError::BrokerIdNotRegistered,
            Error::DuplicateBrokerRegistration(_) => ResponseError::DuplicateBrokerRegistration,
            Error::RequestTimedOut => ResponseError::RequestTimedOut,
            Error::NotLeaderOrFollower(_) => ResponseError::NotLeaderOrFollower,
            Error::FencedLeaderEpoch(_) => ResponseError::FencedLeaderEpoch,
            Error::InvalidUpdateVersion(_) => ResponseError::InvalidUpdateVersion,
            Error::IneligibleReplica(_) => ResponseError::IneligibleReplica,
            Error::NotEnoughReplicas(_) => ResponseError::NotEnoughReplicas,
            Error::NotEnoughReplicasAfterAppend(_) => ResponseError::NotEnoughReplicasAfterAppend,
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
            // Startup errors never reach a response; a log dir that fails later is Kafka's
            // storage error.
            Error::LogDir { .. } | Error::Setting { .. } => ResponseError::KafkaStorageError,
        }
    }

    /// The numeric code for response `error_code` fields.
    pub fn error_code(&self) -> i16 {
        self.code().code()
    }

    /// A listener setting (`key`, the listener as configured) that cannot be bound.
    pub fn bind(key: &str, value: impl fmt::Display, source: std::io::Error) -> Error {
        Error::Setting {
            key: key.to_string(),
            value: value.to_string(),
            problem: SettingProblem::Bind(source),
        }
    }

    /// A path setting (`key=value`) whose directory cannot be used.
    pub fn dir_setting(key: &str, value: &str, source: DirError) -> Error {
        Error::Setting {
            key: key.to_string(),
            value: value.to_string(),
            problem: SettingProblem::Dir(source),
        }
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
    fn setting_errors_name_key_value_and_cause() {
        let in_use = std::io::Error::from_raw_os_error(98);
        let e = Error::bind("listeners", "PLAINTEXT://127.0.0.1:9092", in_use);
        assert_eq!(
            e.to_string(),
            "cannot bind listeners=PLAINTEXT://127.0.0.1:9092: address already in use (os error 98)"
        );
        let e = Error::dir_setting(
            "log.dirs",
            "/x/y",
            DirError::NotADirectory(PathBuf::from("/x/y")),
        );
        assert_eq!(e.to_string(), "log.dirs=/x/y: /x/y is not a directory");
    }

    #[test]
    fn invalid_topic_maps_to_invalid_topic_exception() {
        assert_eq!(Error::InvalidTopic("a b".into()).error_code(), 17);
    }
}
