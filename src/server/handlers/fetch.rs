//! Fetch: serve stored batches, long-polling until min_bytes or max_wait_ms (consumers only).
//!
//! Limits follow KIP-74: `max_bytes` bounds the response and `partition_max_bytes` each
//! partition, except that the first batch of the first partition with data is returned even
//! when larger, so a consumer can always make progress. Incremental sessions (KIP-227) are in
//! `server::fetch_session`. read_committed reads up to the last stable offset.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::FetchTopic;
use kafka_protocol::messages::fetch_response::{
    FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint, PartitionData,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::server::dispatch::{RequestContext, Versions};
use crate::server::fetch_session::{CachedPartition, FetchContext, SessionPartition};
use crate::server::handlers::{check_leader_epoch, resolve_topic, topic_name};

/// v4-v18. v7 adds sessions (KIP-227), v9 current_leader_epoch (KIP-320: FENCED_LEADER_EPOCH /
/// UNKNOWN_LEADER_EPOCH), v11 rack-aware preferred replica (we answer -1), v12 diverging epochs
/// (for followers), v13 topic ids (KIP-516), v14 OFFSET_MOVED_TO_TIERED_STORAGE (KIP-405; no
/// tiered storage, never sent), v15 the replica id moves into ReplicaState (KIP-903), v16 the
/// leader hint with its endpoint beside NOT_LEADER_OR_FOLLOWER and FENCED_LEADER_EPOCH
/// (KIP-951), v17 ReplicaDirectoryId (KIP-853) and v18 HighWatermark (KIP-1166), both read only
/// by KRaft's own fetch and ignored for partitions, as Kafka's ReplicaManager ignores them.
pub const VERSIONS: Versions = Versions::new(4, 18);

/// Fetch v16: the version from which a partition error that names another leader carries the
/// leader's id, epoch and endpoint (KIP-951), as Kafka's KafkaApis fills them.
const LEADER_HINT_VERSION: i16 = 16;

/// READ_COMMITTED in the request's isolation_level.
const READ_COMMITTED: i8 = 1;

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: FetchRequest,
) -> FetchResponse {
    let by_id = ctx.api_version >= 13;
    let sessions = ctx.api_version >= 7;
    let replica_id = if ctx.api_version >= 15 {
        request.replica_state.replica_id.0
    } else {
        request.replica_id.0
    };
    // A fetch from a replica (id >= 0; consumers send -1): one node hosts no followers, so as
    // Kafka's Partition.followerReplicaOrThrow, every partition answers NOT_LEADER_OR_FOLLOWER.
    let from_follower = replica_id >= 0;
    let requested = requested_partitions(&request.topics, by_id);
    let forgotten: Vec<SessionPartition> = request
        .forgotten_topics_data
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(move |p| SessionPartition {
                topic: if by_id {
                    String::new()
                } else {
                    t.topic.to_string()
                },
                topic_id: if by_id { t.topic_id } else { uuid::Uuid::nil() },
                partition: *p,
            })
        })
        .collect();
    // The cache is the server's, in the request's context (every broker listener has one).
    let cache = ctx.fetch_sessions.as_ref().filter(|_| sessions);
    let context = match cache {
        Some(cache) => cache.lock().unwrap_or_else(|e| e.into_inner()).new_context(
            request.session_id,
            request.session_epoch,
            requested,
            &forgotten,
        ),
        None => Ok(FetchContext::Sessionless(requested)),
    };
    let context = match context {
        Ok(context) => context,
        Err(code) => return FetchResponse::default().with_error_code(code.code()),
    };
    let (session_id, incremental, partitions) = match context {
        FetchContext::Sessionless(p) => (0, false, p),
        FetchContext::Full {
            session_id,
            partitions,
        } => (session_id, false, partitions),
        FetchContext::Incremental {
            session_id,
            partitions,
        } => (session_id, true, partitions),
    };

    let read_committed = request.isolation_level == READ_COMMITTED;
    let deadline =
        broker.clock.now() + std::time::Duration::from_millis(request.max_wait_ms.max(0) as u64);
    let mut appended = broker.appended.subscribe();
    let reads = loop {
        appended.mark_unchanged();
        let reads = read_all(
            broker,
            &partitions,
            request.max_bytes,
            read_committed,
            by_id,
            from_follower,
        );
        let bytes: usize = reads.iter().map(|r| r.records.len()).sum();
        let any_error = reads.iter().any(|r| r.error != 0);
        if bytes >= request.min_bytes.max(0) as usize || any_error || broker.clock.now() >= deadline
        {
            break reads;
        }
        tokio::select! {
            _ = appended.changed() => {}
            _ = tokio::time::sleep_until(deadline) => {}
            _ = broker.shutdown.cancelled() => {}
        }
        if broker.shutdown.is_cancelled() {
            break reads;
        }
    };

    if let Some(cache) = cache.filter(|_| session_id != 0) {
        let told: Vec<(SessionPartition, CachedPartition)> = reads
            .iter()
            .map(|r| (r.key.clone(), r.cached.clone()))
            .collect();
        cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .update(session_id, &told);
    }
    let hints = ctx.api_version >= LEADER_HINT_VERSION;
    let mut response = FetchResponse::default().with_responses(build_topics(
        reads,
        &partitions,
        incremental,
        by_id,
        read_committed,
        hints,
    ));
    if hints {
        response.node_endpoints = leader_endpoints(broker, &ctx.listener.name, &response.responses);
    }
    if sessions {
        response.session_id = session_id;
    }
    response
}

/// The record buffers of a response, for the connection to write without copying.
pub fn records_of(response: &FetchResponse) -> Vec<Bytes> {
    response
        .responses
        .iter()
        .flat_map(|t| t.partitions.iter())
        .filter_map(|p| p.records.clone())
        .collect()
}

/// One partition's outcome.
struct PartitionRead {
    key: SessionPartition,
    /// Kafka error code, 0 for none.
    error: i16,
    /// The partition's leader and epoch, set with the errors that name them (KIP-951), else
    /// Kafka's default (-1, -1).
    current_leader: LeaderIdAndEpoch,
    /// The high watermark, LSO and log start offset told to the client.
    cached: CachedPartition,
    records: Bytes,
}

fn requested_partitions(
    topics: &[FetchTopic],
    by_id: bool,
) -> Vec<(SessionPartition, CachedPartition)> {
    topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(move |p| {
                (
                    SessionPartition {
                        topic: if by_id {
                            String::new()
                        } else {
                            t.topic.to_string()
                        },
                        topic_id: if by_id { t.topic_id } else { uuid::Uuid::nil() },
                        partition: p.partition,
                    },
                    CachedPartition {
                        current_leader_epoch: p.current_leader_epoch,
                        ..CachedPartition::new(p.fetch_offset, p.partition_max_bytes)
                    },
                )
            })
        })
        .collect()
}

/// Reads every partition once, within the response budget (KIP-74).
fn read_all(
    broker: &Arc<Broker>,
    partitions: &[(SessionPartition, CachedPartition)],
    max_bytes: i32,
    read_committed: bool,
    by_id: bool,
    from_follower: bool,
) -> Vec<PartitionRead> {
    let image = broker.image();
    let mut budget = max_bytes.max(0) as usize;
    let mut first = true;
    partitions
        .iter()
        .map(|(key, asked)| {
            let mut read = PartitionRead {
                key: key.clone(),
                error: 0,
                current_leader: LeaderIdAndEpoch::default(),
                cached: CachedPartition::new(asked.fetch_offset, asked.partition_max_bytes),
                records: Bytes::new(),
            };
            let topic = match resolve_topic(&image, &key.topic, key.topic_id, by_id) {
                Ok(topic) => topic,
                Err(code) => {
                    read.error = code.code();
                    return read;
                }
            };
            if let Some(image_partition) = topic.partition(key.partition) {
                let checked = if from_follower {
                    Err(ResponseError::NotLeaderOrFollower)
                } else {
                    check_leader_epoch(asked.current_leader_epoch, image_partition.leader_epoch)
                };
                if let Err(code) = checked {
                    read.error = code.code();
                    read.current_leader = LeaderIdAndEpoch::default()
                        .with_leader_id(BrokerId(image_partition.leader))
                        .with_leader_epoch(image_partition.leader_epoch);
                    return read;
                }
            }
            let partition = match broker.partition(&topic, key.partition) {
                Ok(p) => p,
                Err(e) => {
                    read.error = e.error_code();
                    return read;
                }
            };
            let high_watermark = partition.high_watermark();
            let last_stable_offset = partition.last_stable_offset();
            read.cached.high_watermark = high_watermark;
            read.cached.last_stable_offset = last_stable_offset;
            read.cached.log_start_offset = partition.log_start_offset();
            let upper = if read_committed {
                last_stable_offset
            } else {
                high_watermark
            };
            let limit = budget.min(asked.partition_max_bytes.max(0) as usize);
            match partition.read(asked.fetch_offset, limit, first, upper) {
                Ok(records) => {
                    if !records.is_empty() {
                        first = false;
                        budget = budget.saturating_sub(records.len());
                    }
                    read.records = records;
                }
                Err(e) => read.error = e.error_code(),
            }
            read
        })
        .collect()
}

/// The endpoints of the leaders named in `current_leader` hints (KIP-951's NodeEndpoints).
fn leader_endpoints(
    broker: &Arc<Broker>,
    listener: &str,
    topics: &[FetchableTopicResponse],
) -> Vec<NodeEndpoint> {
    let leaders: std::collections::BTreeSet<i32> = topics
        .iter()
        .flat_map(|t| t.partitions.iter())
        .map(|p| p.current_leader.leader_id.0)
        .filter(|id| *id >= 0)
        .collect();
    let image = broker.image();
    image
        .brokers_on(listener)
        .filter(|(b, _)| leaders.contains(&b.node_id))
        .map(|(b, endpoint)| {
            NodeEndpoint::default()
                .with_node_id(BrokerId(b.node_id))
                .with_host(StrBytes::from_string(endpoint.host.clone()))
                .with_port(endpoint.port)
                .with_rack(b.rack.clone().map(StrBytes::from_string))
        })
        .collect()
}

/// Groups partition reads by topic. An incremental response leaves out partitions with
/// nothing new: no records, no error, and the same offsets the client was last told.
fn build_topics(
    reads: Vec<PartitionRead>,
    session: &[(SessionPartition, CachedPartition)],
    incremental: bool,
    by_id: bool,
    read_committed: bool,
    hints: bool,
) -> Vec<FetchableTopicResponse> {
    let mut topics: Vec<FetchableTopicResponse> = Vec::new();
    for (read, (_, before)) in reads.into_iter().zip(session) {
        let changed = !read.records.is_empty()
            || read.error != 0
            || read.cached.high_watermark != before.high_watermark
            || read.cached.last_stable_offset != before.last_stable_offset
            || read.cached.log_start_offset != before.log_start_offset;
        if incremental && !changed {
            continue;
        }
        let mut partition = PartitionData::default()
            .with_partition_index(read.key.partition)
            .with_error_code(read.error)
            .with_high_watermark(read.cached.high_watermark)
            .with_last_stable_offset(read.cached.last_stable_offset)
            .with_log_start_offset(read.cached.log_start_offset)
            .with_aborted_transactions(read_committed.then(Vec::new))
            .with_preferred_read_replica(kafka_protocol::messages::BrokerId(-1))
            .with_records(Some(read.records));
        if hints {
            partition.current_leader = read.current_leader;
        }
        let same_topic = topics.last().is_some_and(|t| {
            if by_id {
                t.topic_id == read.key.topic_id
            } else {
                t.topic.as_str() == read.key.topic
            }
        });
        if !same_topic {
            let mut topic = FetchableTopicResponse::default();
            if by_id {
                topic.topic_id = read.key.topic_id;
            } else {
                topic.topic = topic_name(&read.key.topic);
            }
            topics.push(topic);
        }
        if let Some(topic) = topics.last_mut() {
            topic.partitions.push(partition);
        }
    }
    topics
}
