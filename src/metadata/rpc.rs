//! The controller quorum's wire: what one node asks another over the controller listener
//! (openraft's AppendEntries, Vote and InstallSnapshot, and controller writes forwarded to the
//! active controller, as Kafka forwards admin requests in an Envelope, KIP-590), its framing,
//! and a client connection.
//!
//! Frames are Kafka's (a 4-byte size, then the body), so the controller listener serves Kafka
//! clients' ApiVersions and these side by side. A request body is an api key outside Kafka's
//! key space ([`CONTROLLER_RPC_API_KEY`]), version 0, a correlation id, then the request as
//! JSON; a response body is the correlation id, then the reply as JSON. Every request carries
//! the sender's cluster id: a node of another cluster is refused (Kafka's
//! INCONSISTENT_CLUSTER_ID), so two clusters never merge their quorums.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use indexmap::IndexMap;
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use uuid::Uuid;

use crate::error::Error;
use crate::metadata::cluster_control::{BrokerHeartbeat, HeartbeatReply};
use crate::metadata::records::{BrokerRegistration, ConfigResourceType};
use crate::metadata::types::{NodeId, TypeConfig};
use crate::net::Stream;
use crate::protocol::frame::{read_frame, write_frame};

/// The api key of a controller RPC: Kafka's keys are small and non-negative, so a Kafka client
/// never sends this one and a Sluice node never sends a Kafka key.
pub const CONTROLLER_RPC_API_KEY: i16 = 32_000;
/// The largest RPC frame a node reads: an InstallSnapshot chunk (openraft's
/// `snapshot_max_chunk_size`, 3 MiB) grows about fourfold as a JSON byte array.
pub const RPC_FRAME_BYTES_MAX: usize = 64 * 1024 * 1024;

/// One request from node `from` of cluster `cluster_id`.
#[derive(Debug, Serialize, Deserialize)]
pub struct RpcRequest {
    pub cluster_id: String,
    pub from: i32,
    pub body: RpcBody,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum RpcBody {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// A write for the active controller to run against its own image.
    Write(ControllerWrite),
}

#[derive(Debug, Serialize, Deserialize)]
pub enum RpcReply {
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
    Write(WriteReply),
    /// The request was not served: another cluster, a node still starting, an undecodable body.
    Refused(String),
}

/// The controller's write operations, as a broker forwards them to the active controller.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ControllerWrite {
    RegisterBroker(BrokerRegistration),
    BrokerHeartbeat(BrokerHeartbeat),
    CreateTopic(CreateTopic),
    CreatePartitions {
        topics: Vec<CreatePartitions>,
        validate_only: bool,
    },
    DeleteTopic(String),
    DeleteTopicById(Uuid),
    SetConfigs {
        resource_type: ConfigResourceType,
        resource_name: String,
        changes: Vec<(String, Option<String>)>,
    },
    AllocateProducerIds {
        broker_id: i32,
        block_size: i64,
    },
    AlterPartition(crate::metadata::replication_control::AlterPartition),
}

/// A CreateTopics entry after the handler resolved defaults (-1) and validated configs.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CreateTopic {
    pub name: String,
    pub num_partitions: i32,
    pub replication_factor: i16,
    pub configs: IndexMap<String, String>,
    pub validate_only: bool,
}

/// One topic of a CreatePartitions request: the new total count and, optionally, the replicas
/// of each added partition.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CreatePartitions {
    pub name: String,
    pub count: i32,
    pub assignments: Option<Vec<Vec<i32>>>,
}

/// What a write returned, and the metadata offset its records were applied at (-1 when it
/// wrote nothing), for the forwarding broker to wait on before it answers its client.
#[derive(Debug, Serialize, Deserialize)]
pub struct WriteReply {
    pub result: Result<WriteOutput, WireError>,
    pub offset: i64,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub enum WriteOutput {
    Done,
    TopicId(Uuid),
    PartitionResults(Vec<Result<(), WireError>>),
    ProducerIdStart(i64),
    BrokerEpoch(i64),
    Heartbeat(HeartbeatReply),
}

/// The errors a controller write can answer, as they cross the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireError {
    UnknownTopicOrPartition,
    UnknownTopicId,
    TopicAlreadyExists(String),
    InvalidTopic(String),
    InvalidPartitions(String),
    InvalidReplicationFactor(String),
    InvalidReplicaAssignment(String),
    InvalidConfig(String),
    InvalidRequest(String),
    PolicyViolation(String),
    /// The active controller moved or could not be reached: the caller may retry.
    NotController(String),
    StaleBrokerEpoch(String),
    BrokerIdNotRegistered(i32),
    DuplicateBrokerRegistration(String),
    NotLeaderOrFollower(String),
    FencedLeaderEpoch(String),
    InvalidUpdateVersion(String),
    IneligibleReplica(String),
    Unavailable(String),
}

impl From<Error> for WireError {
    fn from(e: Error) -> WireError {
        match e {
            Error::UnknownTopicOrPartition => WireError::UnknownTopicOrPartition,
            Error::UnknownTopicId => WireError::UnknownTopicId,
            Error::TopicAlreadyExists(m) => WireError::TopicAlreadyExists(m),
            Error::InvalidTopic(m) => WireError::InvalidTopic(m),
            Error::InvalidPartitions(m) => WireError::InvalidPartitions(m),
            Error::InvalidReplicationFactor(m) => WireError::InvalidReplicationFactor(m),
            Error::InvalidReplicaAssignment(m) => WireError::InvalidReplicaAssignment(m),
            Error::InvalidConfig(m) => WireError::InvalidConfig(m),
            Error::InvalidRequest(m) => WireError::InvalidRequest(m),
            Error::PolicyViolation(m) => WireError::PolicyViolation(m),
            Error::NotController(m) => WireError::NotController(m),
            Error::StaleBrokerEpoch(m) => WireError::StaleBrokerEpoch(m),
            Error::BrokerIdNotRegistered(id) => WireError::BrokerIdNotRegistered(id),
            Error::DuplicateBrokerRegistration(m) => WireError::DuplicateBrokerRegistration(m),
            Error::NotLeaderOrFollower(m) => WireError::NotLeaderOrFollower(m),
            Error::FencedLeaderEpoch(m) => WireError::FencedLeaderEpoch(m),
            Error::InvalidUpdateVersion(m) => WireError::InvalidUpdateVersion(m),
            Error::IneligibleReplica(m) => WireError::IneligibleReplica(m),
            other => WireError::Unavailable(other.to_string()),
        }
    }
}

impl From<WireError> for Error {
    fn from(e: WireError) -> Error {
        match e {
            WireError::UnknownTopicOrPartition => Error::UnknownTopicOrPartition,
            WireError::UnknownTopicId => Error::UnknownTopicId,
            WireError::TopicAlreadyExists(m) => Error::TopicAlreadyExists(m),
            WireError::InvalidTopic(m) => Error::InvalidTopic(m),
            WireError::InvalidPartitions(m) => Error::InvalidPartitions(m),
            WireError::InvalidReplicationFactor(m) => Error::InvalidReplicationFactor(m),
            WireError::InvalidReplicaAssignment(m) => Error::InvalidReplicaAssignment(m),
            WireError::InvalidConfig(m) => Error::InvalidConfig(m),
            WireError::InvalidRequest(m) => Error::InvalidRequest(m),
            WireError::PolicyViolation(m) => Error::PolicyViolation(m),
            WireError::NotController(m) => Error::NotController(m),
            WireError::StaleBrokerEpoch(m) => Error::StaleBrokerEpoch(m),
            WireError::BrokerIdNotRegistered(id) => Error::BrokerIdNotRegistered(id),
            WireError::DuplicateBrokerRegistration(m) => Error::DuplicateBrokerRegistration(m),
            WireError::NotLeaderOrFollower(m) => Error::NotLeaderOrFollower(m),
            WireError::FencedLeaderEpoch(m) => Error::FencedLeaderEpoch(m),
            WireError::InvalidUpdateVersion(m) => Error::InvalidUpdateVersion(m),
            WireError::IneligibleReplica(m) => Error::IneligibleReplica(m),
            WireError::Unavailable(m) => Error::MetadataUnavailable(m),
        }
    }
}

/// The body of a request frame: key, version 0, correlation id, JSON.
pub fn encode_request(correlation_id: i32, request: &RpcRequest) -> std::io::Result<Bytes> {
    let json = serde_json::to_vec(request).map_err(std::io::Error::other)?;
    let mut body = BytesMut::with_capacity(8 + json.len());
    body.put_i16(CONTROLLER_RPC_API_KEY);
    body.put_i16(0);
    body.put_i32(correlation_id);
    body.put_slice(&json);
    Ok(body.freeze())
}

/// Whether a frame is a controller RPC (and not a Kafka request).
pub fn is_rpc(frame: &[u8]) -> bool {
    frame.len() >= 8 && i16::from_be_bytes([frame[0], frame[1]]) == CONTROLLER_RPC_API_KEY
}

/// Splits a request frame into its correlation id and request; `Err` names what is wrong.
pub fn decode_request(frame: &[u8]) -> Result<(i32, RpcRequest), String> {
    if !is_rpc(frame) {
        return Err("not a controller RPC frame".into());
    }
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    serde_json::from_slice(&frame[8..])
        .map(|request| (correlation_id, request))
        .map_err(|e| format!("undecodable controller RPC: {e}"))
}

/// The body of a response frame: correlation id, JSON.
pub fn encode_reply(correlation_id: i32, reply: &RpcReply) -> Bytes {
    let json = serde_json::to_vec(reply).unwrap_or_else(|e| {
        // Every reply type serializes; should one not, the caller still gets an answer.
        serde_json::to_vec(&RpcReply::Refused(format!("unencodable reply: {e}")))
            .unwrap_or_default()
    });
    let mut body = BytesMut::with_capacity(4 + json.len());
    body.put_i32(correlation_id);
    body.put_slice(&json);
    body.freeze()
}

/// One client connection to a peer's controller listener, connected on first use and
/// reconnected after any failure. Calls on it are sequential.
#[derive(Debug)]
pub struct RpcConnection {
    addr: String,
    stream: Option<(
        BufReader<tokio::net::tcp::OwnedReadHalf>,
        BufWriter<tokio::net::tcp::OwnedWriteHalf>,
    )>,
    correlation_id: i32,
}

impl RpcConnection {
    pub fn new(addr: String) -> Self {
        RpcConnection {
            addr,
            stream: None,
            correlation_id: 0,
        }
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends `request` and waits for its reply within `timeout`; any failure drops the
    /// connection so the next call reconnects.
    pub async fn call(
        &mut self,
        request: &RpcRequest,
        timeout: Duration,
    ) -> std::io::Result<RpcReply> {
        let result = tokio::time::timeout(timeout, self.call_inner(request, timeout)).await;
        match result {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(e)) => {
                self.stream = None;
                Err(e)
            }
            Err(_) => {
                self.stream = None;
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("controller RPC to {} timed out", self.addr),
                ))
            }
        }
    }

    async fn call_inner(
        &mut self,
        request: &RpcRequest,
        timeout: Duration,
    ) -> std::io::Result<RpcReply> {
        let (reader, writer) = match &mut self.stream {
            Some(stream) => stream,
            None => {
                let stream: Stream = crate::net::connect(&self.addr, timeout).await?;
                let (read, write) = stream.into_split();
                self.stream
                    .insert((BufReader::new(read), BufWriter::new(write)))
            }
        };
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let correlation_id = self.correlation_id;
        write_frame(writer, &[encode_request(correlation_id, request)?]).await?;
        writer.flush().await?;
        let frame = read_frame(reader, RPC_FRAME_BYTES_MAX)
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "peer closed the connection",
                )
            })?;
        if frame.len() < 4 {
            return Err(std::io::Error::other("controller RPC reply too short"));
        }
        let got = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
        if got != correlation_id {
            return Err(std::io::Error::other(format!(
                "controller RPC reply for correlation id {got}, expected {correlation_id}"
            )));
        }
        serde_json::from_slice(&frame[4..]).map_err(std::io::Error::other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_frames_round_trip_and_are_told_apart_from_kafka_requests() {
        let request = RpcRequest {
            cluster_id: "c1".into(),
            from: 2,
            body: RpcBody::Write(ControllerWrite::DeleteTopic("t".into())),
        };
        let frame = encode_request(7, &request).expect("encode");
        assert!(is_rpc(&frame));
        let (correlation_id, decoded) = decode_request(&frame).expect("decode");
        assert_eq!(correlation_id, 7);
        assert_eq!(decoded.cluster_id, "c1");
        assert!(matches!(
            decoded.body,
            RpcBody::Write(ControllerWrite::DeleteTopic(ref t)) if t == "t"
        ));
        // ApiVersions v3 header: key 18.
        assert!(!is_rpc(&[0, 18, 0, 3, 0, 0, 0, 1]));
        assert!(decode_request(&frame[..frame.len() - 1]).is_err());
    }

    #[test]
    fn errors_cross_the_wire_as_the_same_error() {
        let e: Error = WireError::from(Error::InvalidReplicationFactor("rf".into())).into();
        assert!(matches!(e, Error::InvalidReplicationFactor(ref m) if m == "rf"));
        let e: Error = WireError::from(Error::RequestTimedOut).into();
        assert!(matches!(e, Error::MetadataUnavailable(_)));
    }
}
