//! The one `match` over `ApiKey`, and the registry of supported versions ApiVersions reports.
//!
//! Each handler declares `VERSIONS` next to its code; [`REGISTRY`] lists them once, and both
//! the version check here and the ApiVersions response read it, so what is advertised is
//! exactly what is dispatched.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::broker::Broker;
use crate::protocol::splice::SplicingBuf;
use crate::server::fetch_session::FetchSessionCache;
use crate::server::handlers::init_producer_id;
use crate::server::handlers::offset_for_leader_epoch;
use crate::server::handlers::{alter_configs, describe_configs, incremental_alter_configs};
use crate::server::handlers::{
    api_versions, create_topics, delete_topics, describe_cluster, fetch, list_offsets, metadata,
    produce,
};
use crate::server::handlers::{consumer_group_describe, consumer_group_heartbeat};
use crate::server::handlers::{create_partitions, delete_records};
use crate::server::handlers::{
    delete_groups, describe_groups, find_coordinator, heartbeat, join_group, leave_group,
    list_groups, offset_commit, offset_delete, offset_fetch, sync_group,
};
use crate::server::handlers::{describe_log_dirs, describe_topic_partitions};
use crate::server::net::ListenerInfo;
use crate::server::request_metrics;
use tracing::Instrument;

/// An inclusive range of versions of one API that are served, and the lowest advertised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Versions {
    pub min: i16,
    pub max: i16,
    /// The minimum ApiVersions reports; below `min` only where Kafka advertises versions it
    /// refuses on the wire (Produce v0-v2, KAFKA-18659).
    pub advertised_min: i16,
}

impl Versions {
    pub const fn new(min: i16, max: i16) -> Self {
        Versions {
            min,
            max,
            advertised_min: min,
        }
    }

    /// The same served range, advertised from `advertised_min`.
    pub const fn advertised_from(self, advertised_min: i16) -> Self {
        Versions {
            advertised_min,
            ..self
        }
    }

    pub fn contains(&self, version: i16) -> bool {
        (self.min..=self.max).contains(&version)
    }
}

/// Every API this broker serves, with the versions it fully implements.
pub const REGISTRY: &[(ApiKey, Versions)] = &[
    (ApiKey::Produce, produce::VERSIONS),
    (ApiKey::Fetch, fetch::VERSIONS),
    (ApiKey::ListOffsets, list_offsets::VERSIONS),
    (ApiKey::Metadata, metadata::VERSIONS),
    (ApiKey::ApiVersions, api_versions::VERSIONS),
    (ApiKey::CreateTopics, create_topics::VERSIONS),
    (ApiKey::DeleteTopics, delete_topics::VERSIONS),
    (ApiKey::DescribeCluster, describe_cluster::VERSIONS),
    (ApiKey::InitProducerId, init_producer_id::VERSIONS),
    (ApiKey::FindCoordinator, find_coordinator::VERSIONS),
    (ApiKey::JoinGroup, join_group::VERSIONS),
    (ApiKey::SyncGroup, sync_group::VERSIONS),
    (ApiKey::Heartbeat, heartbeat::VERSIONS),
    (ApiKey::LeaveGroup, leave_group::VERSIONS),
    (ApiKey::OffsetCommit, offset_commit::VERSIONS),
    (ApiKey::OffsetFetch, offset_fetch::VERSIONS),
    (ApiKey::ListGroups, list_groups::VERSIONS),
    (ApiKey::DescribeGroups, describe_groups::VERSIONS),
    (ApiKey::DeleteGroups, delete_groups::VERSIONS),
    (ApiKey::OffsetDelete, offset_delete::VERSIONS),
    (ApiKey::CreatePartitions, create_partitions::VERSIONS),
    (ApiKey::DeleteRecords, delete_records::VERSIONS),
    (ApiKey::DescribeConfigs, describe_configs::VERSIONS),
    (ApiKey::AlterConfigs, alter_configs::VERSIONS),
    (
        ApiKey::IncrementalAlterConfigs,
        incremental_alter_configs::VERSIONS,
    ),
    (
        ApiKey::ConsumerGroupHeartbeat,
        consumer_group_heartbeat::VERSIONS,
    ),
    (
        ApiKey::ConsumerGroupDescribe,
        consumer_group_describe::VERSIONS,
    ),
    (ApiKey::DescribeLogDirs, describe_log_dirs::VERSIONS),
    (
        ApiKey::DescribeTopicPartitions,
        describe_topic_partitions::VERSIONS,
    ),
    (
        ApiKey::OffsetForLeaderEpoch,
        offset_for_leader_epoch::VERSIONS,
    ),
];

/// The Kafka APIs a controller listener serves. Kafka's controller listener answers the KRaft
/// quorum's and the controller's own APIs (ApiMessageType's CONTROLLER listener type); Sluice's
/// quorum speaks its own RPCs there (metadata/rpc.rs), so of Kafka's APIs ApiVersions alone,
/// and a client that reaches it (an admin client with `bootstrap.controllers`, KIP-919) learns
/// at once that nothing else is there (server/controller_listener.rs).
const CONTROLLER_LISTENER_APIS: &[ApiKey] = &[ApiKey::ApiVersions];

/// The versions of `api_key` this broker serves, if any.
pub fn supported(api_key: ApiKey) -> Option<Versions> {
    REGISTRY
        .iter()
        .find(|(key, _)| *key == api_key)
        .map(|(_, versions)| *versions)
}

/// What a listener serves: every API of the registry on a broker listener, the controller's
/// APIs on a controller listener.
pub fn served_on(listener: &ListenerInfo) -> impl Iterator<Item = &'static (ApiKey, Versions)> {
    let controller = listener.controller;
    REGISTRY
        .iter()
        .filter(move |(key, _)| !controller || CONTROLLER_LISTENER_APIS.contains(key))
}

/// What a request carries besides its body.
#[derive(Debug)]
pub struct RequestContext {
    pub api_key: ApiKey,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<StrBytes>,
    pub peer: SocketAddr,
    /// The listener the request arrived on: Metadata, DescribeCluster and FindCoordinator
    /// answer the endpoints of the listener of the same name, as Kafka does.
    pub listener: ListenerInfo,
    /// The server's incremental fetch sessions (KIP-227), which Fetch reads and updates;
    /// `None` on a controller listener, which serves no Fetch.
    pub fetch_sessions: Option<Arc<Mutex<FetchSessionCache>>>,
}

/// Why a connection must close. Logged once by the connection.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("request too short for a header")]
    ShortHeader,
    #[error("unknown api key {0}")]
    UnknownApiKey(i16),
    #[error("{api_key:?} is not served on controller listener {listener}")]
    NotOnListener { api_key: ApiKey, listener: Arc<str> },
    #[error("unsupported version {version} of {api_key:?}")]
    UnsupportedVersion { api_key: ApiKey, version: i16 },
    #[error("could not decode {api_key:?} v{version}: {reason}")]
    Decode {
        api_key: ApiKey,
        version: i16,
        reason: String,
    },
    #[error("could not encode response: {0}")]
    Encode(String),
}

/// Reads a request's header off `frame` (leaving the body), refusing an API the listener
/// does not serve; returns the request's context and the versions served of its API.
pub fn request_context(
    frame: &mut Bytes,
    peer: SocketAddr,
    listener: &ListenerInfo,
) -> Result<(RequestContext, Versions), DispatchError> {
    if frame.len() < 8 {
        return Err(DispatchError::ShortHeader);
    }
    let api_key_raw = i16::from_be_bytes([frame[0], frame[1]]);
    let api_version = i16::from_be_bytes([frame[2], frame[3]]);
    let api_key =
        ApiKey::try_from(api_key_raw).map_err(|_| DispatchError::UnknownApiKey(api_key_raw))?;
    let supported = supported(api_key).ok_or(DispatchError::UnknownApiKey(api_key_raw))?;
    // ApiVersions of a version this broker does not know is answered (KIP-511) so the client
    // can retry with one it does; its header is decoded as the newest we know.
    let header_version = if api_key == ApiKey::ApiVersions && api_version > supported.max {
        api_key.request_header_version(supported.max)
    } else {
        api_key.request_header_version(api_version)
    };
    let header =
        RequestHeader::decode(frame, header_version).map_err(|e| DispatchError::Decode {
            api_key,
            version: api_version,
            reason: format!("header: {e}"),
        })?;
    let ctx = RequestContext {
        api_key,
        api_version,
        correlation_id: header.correlation_id,
        client_id: header.client_id,
        peer,
        listener: listener.clone(),
        fetch_sessions: None,
    };
    if !served_on(listener).any(|(key, _)| *key == api_key) {
        return Err(DispatchError::NotOnListener {
            api_key,
            listener: listener.name.clone(),
        });
    }
    Ok((ctx, supported))
}

/// Decodes one request frame of a broker listener, runs its handler and returns the encoded
/// response frame body (as parts written back to back), or `None` when the request takes no
/// response (acks=0). `fetch_sessions` is the server's cache, handed to the handler in the
/// request's context.
pub async fn handle_frame(
    broker: &Arc<Broker>,
    fetch_sessions: &Arc<Mutex<FetchSessionCache>>,
    mut frame: Bytes,
    peer: SocketAddr,
    listener: &ListenerInfo,
) -> Result<Option<Vec<Bytes>>, DispatchError> {
    let (mut ctx, supported) = request_context(&mut frame, peer, listener)?;
    ctx.fetch_sessions = Some(fetch_sessions.clone());
    let (api_key, api_version) = (ctx.api_key, ctx.api_version);
    if !supported.contains(api_version) {
        if api_key == ApiKey::ApiVersions {
            return api_versions::unsupported_version_response(&ctx).map(Some);
        }
        return Err(DispatchError::UnsupportedVersion {
            api_key,
            version: api_version,
        });
    }
    // One span per request; DEBUG so that the default level pays nothing for it per request
    // (RUST_LOG=sluice=debug shows it on every line logged while handling the request).
    let span = tracing::debug_span!(
        "request",
        api = ?api_key,
        version = api_version,
        correlation_id = ctx.correlation_id,
        client_id = ctx.client_id.as_deref().unwrap_or(""),
        listener = &*listener.name,
        peer = %peer,
    );
    let started = broker.clock.now();
    let allowed_wait = if api_key == ApiKey::Fetch {
        request_metrics::fetch_max_wait(api_version, &frame)
    } else {
        std::time::Duration::ZERO
    };
    let inflight = request_metrics::InflightGuard::new(broker, api_key);
    let result = route(broker, &ctx, frame).instrument(span.clone()).await;
    drop(inflight);
    let elapsed = broker.clock.now().saturating_duration_since(started);
    span.in_scope(|| request_metrics::finish(broker, &ctx, elapsed, allowed_wait));
    if let Err(e) = &result {
        let reason = match e {
            DispatchError::Decode { .. } => "decode",
            DispatchError::Encode(_) => "encode",
            _ => "unsupported",
        };
        broker
            .metrics
            .server_request_failures_total
            .with_label_values(&[reason])
            .inc();
    }
    result
}

/// Decodes the body as `$request`, awaits `$handler`, encodes its response.
macro_rules! call {
    ($ctx:expr, $body:expr, $handler:path, $broker:expr) => {{
        let request = decode($ctx, &mut $body)?;
        let response = $handler($broker, $ctx, request).await;
        request_metrics::observe_response($broker, $ctx, &response);
        encode_response($ctx, &response).map(Some)
    }};
}

/// The one match from API key to handler.
async fn route(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    mut body: Bytes,
) -> Result<Option<Vec<Bytes>>, DispatchError> {
    match ctx.api_key {
        ApiKey::Produce => {
            let request: kafka_protocol::messages::ProduceRequest = decode(ctx, &mut body)?;
            // acks=0: the client waits for no response, and none must be sent.
            let acks = request.acks;
            let sizes = request_metrics::produce_sizes(&request);
            let response = produce::handle(broker, ctx, request).await;
            request_metrics::observe_produce(broker, sizes, &response);
            request_metrics::observe_response(broker, ctx, &response);
            if acks == 0 {
                return Ok(None);
            }
            encode_response(ctx, &response).map(Some)
        }
        ApiKey::Fetch => {
            let request = decode(ctx, &mut body)?;
            let response = fetch::handle(broker, ctx, request).await;
            request_metrics::observe_response(broker, ctx, &response);
            request_metrics::observe_fetch_out(broker, &response);
            let records = fetch::records_of(&response);
            encode_response_parts(ctx, &response, ctx.api_version, records).map(Some)
        }
        ApiKey::ListOffsets => call!(ctx, body, list_offsets::handle, broker),
        ApiKey::Metadata => call!(ctx, body, metadata::handle, broker),
        ApiKey::ApiVersions => call!(ctx, body, api_versions::handle, broker),
        ApiKey::CreateTopics => call!(ctx, body, create_topics::handle, broker),
        ApiKey::DeleteTopics => call!(ctx, body, delete_topics::handle, broker),
        ApiKey::DescribeCluster => call!(ctx, body, describe_cluster::handle, broker),
        ApiKey::InitProducerId => call!(ctx, body, init_producer_id::handle, broker),
        ApiKey::FindCoordinator => call!(ctx, body, find_coordinator::handle, broker),
        ApiKey::JoinGroup => call!(ctx, body, join_group::handle, broker),
        ApiKey::SyncGroup => call!(ctx, body, sync_group::handle, broker),
        ApiKey::Heartbeat => call!(ctx, body, heartbeat::handle, broker),
        ApiKey::LeaveGroup => call!(ctx, body, leave_group::handle, broker),
        ApiKey::OffsetCommit => call!(ctx, body, offset_commit::handle, broker),
        ApiKey::OffsetFetch => call!(ctx, body, offset_fetch::handle, broker),
        ApiKey::ListGroups => call!(ctx, body, list_groups::handle, broker),
        ApiKey::DescribeGroups => call!(ctx, body, describe_groups::handle, broker),
        ApiKey::DeleteGroups => call!(ctx, body, delete_groups::handle, broker),
        ApiKey::OffsetDelete => call!(ctx, body, offset_delete::handle, broker),
        ApiKey::CreatePartitions => call!(ctx, body, create_partitions::handle, broker),
        ApiKey::DeleteRecords => call!(ctx, body, delete_records::handle, broker),
        ApiKey::DescribeConfigs => call!(ctx, body, describe_configs::handle, broker),
        ApiKey::AlterConfigs => call!(ctx, body, alter_configs::handle, broker),
        ApiKey::IncrementalAlterConfigs => {
            call!(ctx, body, incremental_alter_configs::handle, broker)
        }
        ApiKey::ConsumerGroupHeartbeat => {
            call!(ctx, body, consumer_group_heartbeat::handle, broker)
        }
        ApiKey::ConsumerGroupDescribe => call!(ctx, body, consumer_group_describe::handle, broker),
        ApiKey::DescribeLogDirs => call!(ctx, body, describe_log_dirs::handle, broker),
        ApiKey::DescribeTopicPartitions => {
            call!(ctx, body, describe_topic_partitions::handle, broker)
        }
        ApiKey::OffsetForLeaderEpoch => {
            call!(ctx, body, offset_for_leader_epoch::handle, broker)
        }
        other => Err(DispatchError::UnknownApiKey(other as i16)),
    }
}

fn decode<T: Decodable>(ctx: &RequestContext, body: &mut Bytes) -> Result<T, DispatchError> {
    T::decode(body, ctx.api_version).map_err(|e| DispatchError::Decode {
        api_key: ctx.api_key,
        version: ctx.api_version,
        reason: e.to_string(),
    })
}

/// Encodes the response header (the header version Kafka defines for this API and version)
/// and the body with the request's version.
pub fn encode_response<T: Encodable>(
    ctx: &RequestContext,
    response: &T,
) -> Result<Vec<Bytes>, DispatchError> {
    encode_response_version(ctx, response, ctx.api_version)
}

/// As [`encode_response`] with an explicit body version (the KIP-511 fallback answers v0).
pub fn encode_response_version<T: Encodable>(
    ctx: &RequestContext,
    response: &T,
    version: i16,
) -> Result<Vec<Bytes>, DispatchError> {
    encode_response_parts(ctx, response, version, Vec::new())
}

/// Encodes a response whose body holds `records` (Fetch): those bytes are spliced into the
/// frame as parts of their own rather than copied (protocol/splice.rs).
pub fn encode_response_parts<T: Encodable>(
    ctx: &RequestContext,
    response: &T,
    version: i16,
    records: Vec<Bytes>,
) -> Result<Vec<Bytes>, DispatchError> {
    let mut head = BytesMut::new();
    let header_version = ctx.api_key.response_header_version(version);
    ResponseHeader::default()
        .with_correlation_id(ctx.correlation_id)
        .encode(&mut head, header_version)
        .map_err(|e| DispatchError::Encode(e.to_string()))?;
    let mut buf = SplicingBuf::new(records);
    buf.put_encoded(&head);
    response
        .encode(&mut buf, version)
        .map_err(|e| DispatchError::Encode(e.to_string()))?;
    Ok(buf.into_parts())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_stays_within_what_kafka_protocol_can_encode() {
        for (key, versions) in REGISTRY {
            let valid = key.valid_versions();
            assert!(
                versions.min >= valid.min && versions.max <= valid.max,
                "{key:?} {versions:?} outside {valid:?}"
            );
            assert!(versions.min <= versions.max, "{key:?} empty range");
            assert!(
                versions.advertised_min <= versions.min,
                "{key:?} advertised above served"
            );
        }
    }

    #[test]
    fn registry_has_each_api_once() {
        for (i, (key, _)) in REGISTRY.iter().enumerate() {
            assert!(
                REGISTRY[i + 1..].iter().all(|(other, _)| other != key),
                "{key:?} registered twice"
            );
        }
    }
}
