//! Fetch: serve stored batches, long-polling until min_bytes or max_wait_ms (consumers only).
//!
//! Limits follow KIP-74: `max_bytes` bounds the response and `partition_max_bytes` each
//! partition, except that the first batch of the first partition with data is returned even
//! when larger, so a consumer can always make progress. Incremental sessions (KIP-227) are in
//! `server::fetch_session`. read_committed reads up to the last stable offset.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::FetchTopic;
use kafka_protocol::messages::fetch_response::{
    EpochEndOffset, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint, PartitionData,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::server::dispatch::{RequestContext, Versions};
use crate::server::fetch_session::{CachedPartition, FetchContext, SessionPartition};
use crate::server::handlers::{check_leader_epoch, leader_hints, resolve_topic, topic_name};

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
    // A fetch from a follower (replica id >= 0; consumers send -1) reads up to the log end
    // and reports the follower's progress (replication/partition.rs).
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
    if from_follower {
        record_follower_fetches(broker, replica_id, &partitions, by_id);
    }
    let mut appended = broker.appended.subscribe();
    let reads = loop {
        appended.mark_unchanged();
        let reads = read_all(
            broker,
            &partitions,
            request.max_bytes,
            read_committed,
            by_id,
            replica_id,
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
    /// For a follower that must truncate: the epoch and end offset it diverges at.
    diverging: Option<(i32, i64)>,
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
                        last_fetched_epoch: p.last_fetched_epoch,
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
    replica_id: i32,
) -> Vec<PartitionRead> {
    let from_follower = replica_id >= 0;
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
                diverging: None,
            };
            let topic = match resolve_topic(&image, &key.topic, key.topic_id, by_id) {
                Ok(topic) => topic,
                Err(code) => {
                    read.error = code.code();
                    return read;
                }
            };
            if let Some(image_partition) = topic.partition(key.partition) {
                // Kafka's followerReplicaOrThrow: a replica id that is not one of the
                // partition's replicas gets NOT_LEADER_OR_FOLLOWER.
                let not_a_replica =
                    from_follower && !image_partition.replicas.contains(&replica_id);
                let checked = if not_a_replica {
                    Err(kafka_protocol::error::ResponseError::NotLeaderOrFollower)
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
            let partition = match broker.leader(&topic, key.partition) {
                Ok(p) => p,
                Err(e) => {
                    read.error = e.error_code();
                    if let Some(p) = topic.partition(key.partition) {
                        read.current_leader = LeaderIdAndEpoch::default()
                            .with_leader_id(BrokerId(p.leader))
                            .with_leader_epoch(p.leader_epoch);
                    }
                    return read;
                }
            };
            let log = &partition.log;
            if from_follower && asked.last_fetched_epoch >= 0 {
                // KIP-595's check (Fetch v12+): a follower whose last fetched epoch ended
                // earlier here, or that this leader never had, must truncate first.
                let (epoch, end_offset) = log.epoch_end_offset(asked.last_fetched_epoch);
                if epoch < asked.last_fetched_epoch || end_offset < asked.fetch_offset {
                    read.diverging = Some((epoch, end_offset));
                    read.cached.high_watermark = log.high_watermark();
                    read.cached.last_stable_offset = log.last_stable_offset();
                    read.cached.log_start_offset = log.log_start_offset();
                    return read;
                }
            }
            let high_watermark = log.high_watermark();
            let last_stable_offset = log.last_stable_offset();
            read.cached.high_watermark = high_watermark;
            read.cached.last_stable_offset = last_stable_offset;
            read.cached.log_start_offset = log.log_start_offset();
            // Followers read everything the leader has; consumers what is committed.
            let upper = if from_follower {
                log.log_end_offset()
            } else if read_committed {
                last_stable_offset
            } else {
                high_watermark
            };
            let limit = budget.min(asked.partition_max_bytes.max(0) as usize);
            match log.read(asked.fetch_offset, limit, first, upper) {
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

/// A follower's fetch tells the leader how far it has come: its fetch offset is its log end
/// (Kafka's updateFollowerFetchState), which may advance the high watermark and so wake the
/// consumers and acks=all produces waiting on it.
fn record_follower_fetches(
    broker: &Arc<Broker>,
    replica_id: i32,
    partitions: &[(SessionPartition, CachedPartition)],
    by_id: bool,
) {
    let image = broker.image();
    let mut advanced = false;
    for (key, asked) in partitions {
        let Ok(topic) = resolve_topic(&image, &key.topic, key.topic_id, by_id) else {
            continue;
        };
        let leads_at_epoch = topic.partition(key.partition).is_some_and(|p| {
            check_leader_epoch(asked.current_leader_epoch, p.leader_epoch).is_ok()
        });
        if !leads_at_epoch {
            continue;
        }
        let Ok(partition) = broker.leader(&topic, key.partition) else {
            continue;
        };
        let before = partition.log.high_watermark();
        if let Err(e) = broker
            .replicas
            .follower_fetched(&partition, replica_id, asked.fetch_offset)
        {
            tracing::debug!(partition = %partition.tp, replica_id, error = %e, "follower fetch not recorded");
        }
        advanced |= partition.log.high_watermark() > before;
    }
    if advanced {
        broker.notify_appended();
    }
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
    leader_hints(broker, listener, &leaders)
        .into_iter()
        .map(|h| {
            NodeEndpoint::default()
                .with_node_id(BrokerId(h.node_id))
                .with_host(StrBytes::from_string(h.host))
                .with_port(h.port)
                .with_rack(h.rack.map(StrBytes::from_string))
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
            || read.diverging.is_some()
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
        if let Some((epoch, end_offset)) = read.diverging {
            partition.diverging_epoch = EpochEndOffset::default()
                .with_epoch(epoch)
                .with_end_offset(end_offset);
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
