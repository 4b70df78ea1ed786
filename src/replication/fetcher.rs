//! Follower fetchers (Kafka's ReplicaFetcherManager and ReplicaFetcherThread): one task per
//! source broker (and per `num.replica.fetchers` slot) fetches every partition this broker
//! follows there in one Fetch request, writes the leader's batches as they are, truncates on
//! a diverging epoch (KIP-320/KIP-595, Fetch v12+), and learns the high watermark.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ReplicaState};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, ListOffsetsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::metadata::image::MetadataImage;
use crate::protocol::record_batch::{parse_header, BATCH_HEADER_LEN};
use crate::replication::client::BrokerClient;
use crate::replication::partition::Partition;
use crate::topic_partition::TopicPartition;

/// The Fetch version followers send: v17 has the replica's id and broker epoch in
/// ReplicaState (KIP-903), topic ids (v13) and diverging epochs (v12).
const FETCH_VERSION: i16 = 17;
/// ListOffsets v7 (flexible); a replica id makes the leader answer its log end offset.
const LIST_OFFSETS_VERSION: i16 = 7;
const LATEST_TIMESTAMP: i64 = -1;
const EARLIEST_TIMESTAMP: i64 = -2;

/// The fetchers' settings, Kafka's `replica.fetch.*` with their meanings.
#[derive(Clone, Debug)]
pub struct FetcherConfig {
    pub node_id: i32,
    /// The listener followers connect to on the leader (inter.broker.listener.name).
    pub listener: String,
    pub max_wait_ms: i32,
    pub min_bytes: i32,
    pub response_max_bytes: i32,
    pub partition_max_bytes: i32,
    pub backoff_ms: u64,
    pub request_timeout_ms: u64,
    /// `num.replica.fetchers`: fetcher tasks per source broker.
    pub fetchers_per_broker: usize,
}

/// A followed partition in a fetcher.
#[derive(Clone, Debug)]
struct Followed {
    partition: Arc<Partition>,
    leader_epoch: i32,
    /// After an error, not fetched again before this instant.
    delayed_until: Option<tokio::time::Instant>,
}

#[derive(Debug, Default)]
struct Shared {
    partitions: Mutex<BTreeMap<TopicPartition, Followed>>,
    changed: Notify,
}

fn lock(shared: &Shared) -> MutexGuard<'_, BTreeMap<TopicPartition, Followed>> {
    shared.partitions.lock().unwrap_or_else(|e| e.into_inner())
}

type FetcherKey = (i32, usize);

/// Every fetcher of this broker.
pub struct Fetchers {
    config: FetcherConfig,
    images: watch::Receiver<Arc<MetadataImage>>,
    broker_epoch: Arc<dyn Fn() -> i64 + Send + Sync>,
    runtime: tokio::runtime::Handle,
    shutdown: CancellationToken,
    fetchers: Mutex<HashMap<FetcherKey, Arc<Shared>>>,
    tasks: tokio_util::task::TaskTracker,
}

impl std::fmt::Debug for Fetchers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetchers")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Fetchers {
    /// Must be called within the tokio runtime the fetch tasks are to run on.
    pub fn new(
        config: FetcherConfig,
        images: watch::Receiver<Arc<MetadataImage>>,
        broker_epoch: Arc<dyn Fn() -> i64 + Send + Sync>,
    ) -> Self {
        Fetchers {
            config,
            images,
            broker_epoch,
            runtime: tokio::runtime::Handle::current(),
            shutdown: CancellationToken::new(),
            fetchers: Mutex::new(HashMap::new()),
            tasks: tokio_util::task::TaskTracker::new(),
        }
    }

    fn key(&self, leader: i32, tp: &TopicPartition) -> FetcherKey {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        tp.hash(&mut h);
        let slots = self.config.fetchers_per_broker.max(1) as u64;
        (leader, (h.finish() % slots) as usize)
    }

    fn map(&self) -> MutexGuard<'_, HashMap<FetcherKey, Arc<Shared>>> {
        self.fetchers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Follows `partition` on `leader` at `leader_epoch`, moving it from any other fetcher.
    pub fn add(&self, leader: i32, partition: Arc<Partition>, leader_epoch: i32) {
        let tp = partition.tp.clone();
        self.remove(&tp);
        if self.shutdown.is_cancelled() {
            return;
        }
        let key = self.key(leader, &tp);
        let shared = {
            let mut map = self.map();
            match map.get(&key) {
                Some(shared) => shared.clone(),
                None => {
                    let shared = Arc::new(Shared::default());
                    map.insert(key, shared.clone());
                    let task = FetcherTask {
                        leader,
                        shared: shared.clone(),
                        config: self.config.clone(),
                        images: self.images.clone(),
                        broker_epoch: self.broker_epoch.clone(),
                        shutdown: self.shutdown.clone(),
                        client: BrokerClient::new(
                            String::new(),
                            format!("broker-{}-fetcher-{}", self.config.node_id, key.1),
                        ),
                    };
                    self.tasks.spawn_on(task.run(), &self.runtime);
                    shared
                }
            }
        };
        lock(&shared).insert(
            tp,
            Followed {
                partition,
                leader_epoch,
                delayed_until: None,
            },
        );
        shared.changed.notify_one();
    }

    /// Stops following `tp` (it became leader, was deleted or moved away).
    pub fn remove(&self, tp: &TopicPartition) {
        let map = self.map();
        for shared in map.values() {
            if lock(shared).remove(tp).is_some() {
                shared.changed.notify_one();
            }
        }
    }

    /// How many partitions are followed, for metrics and tests.
    pub fn followed(&self) -> usize {
        self.map().values().map(|s| lock(s).len()).sum()
    }

    /// Stops every fetcher and waits for them.
    pub async fn shutdown(&self) {
        self.shutdown.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

struct FetcherTask {
    leader: i32,
    shared: Arc<Shared>,
    config: FetcherConfig,
    images: watch::Receiver<Arc<MetadataImage>>,
    broker_epoch: Arc<dyn Fn() -> i64 + Send + Sync>,
    shutdown: CancellationToken,
    client: BrokerClient,
}

impl FetcherTask {
    fn backoff(&self) -> Duration {
        Duration::from_millis(self.config.backoff_ms.max(10))
    }

    async fn sleep(&self, d: Duration) {
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = self.shutdown.cancelled() => {}
        }
    }

    async fn run(mut self) {
        while !self.shutdown.is_cancelled() {
            let now = tokio::time::Instant::now();
            let (ready, next_due): (
                Vec<(TopicPartition, Followed)>,
                Option<tokio::time::Instant>,
            ) = {
                let map = lock(&self.shared);
                let ready = map
                    .iter()
                    .filter(|(_, f)| f.delayed_until.is_none_or(|t| t <= now))
                    .map(|(tp, f)| (tp.clone(), f.clone()))
                    .collect();
                let next = map.values().filter_map(|f| f.delayed_until).min();
                (ready, next)
            };
            if ready.is_empty() {
                let wait = next_due.map_or(Duration::from_secs(3600), |t| {
                    t.saturating_duration_since(now)
                });
                tokio::select! {
                    _ = self.shared.changed.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                    _ = self.shutdown.cancelled() => {}
                }
                continue;
            }
            let Some(addr) = self.leader_addr() else {
                tracing::debug!(
                    leader = self.leader,
                    "leader has no endpoint on the inter-broker listener yet"
                );
                self.sleep(self.backoff()).await;
                continue;
            };
            self.client.set_addr(addr);
            if let Err(e) = self.fetch_once(&ready).await {
                tracing::debug!(leader = self.leader, error = %e, "replica fetch failed");
                self.sleep(self.backoff()).await;
            }
        }
    }

    fn leader_addr(&self) -> Option<String> {
        let image = self.images.borrow().clone();
        let broker = image.broker(self.leader)?;
        let endpoint = broker
            .endpoints
            .iter()
            .find(|e| e.name == self.config.listener)?;
        Some(format!("{}:{}", endpoint.host, endpoint.port))
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(
            self.config.request_timeout_ms + self.config.max_wait_ms.max(0) as u64,
        )
    }

    async fn fetch_once(&mut self, ready: &[(TopicPartition, Followed)]) -> std::io::Result<()> {
        let mut topics: Vec<FetchTopic> = Vec::new();
        for (_, f) in ready {
            let log = &f.partition.log;
            let partition = FetchPartition::default()
                .with_partition(f.partition.tp.partition)
                .with_current_leader_epoch(f.leader_epoch)
                .with_fetch_offset(log.log_end_offset())
                .with_last_fetched_epoch(log.latest_epoch().unwrap_or(-1))
                .with_log_start_offset(log.log_start_offset())
                .with_partition_max_bytes(self.config.partition_max_bytes);
            match topics.last_mut() {
                Some(t) if t.topic_id == f.partition.topic_id => t.partitions.push(partition),
                _ => topics.push(
                    FetchTopic::default()
                        .with_topic_id(f.partition.topic_id)
                        .with_partitions(vec![partition]),
                ),
            }
        }
        let request = FetchRequest::default()
            .with_replica_state(
                ReplicaState::default()
                    .with_replica_id(BrokerId(self.config.node_id))
                    .with_replica_epoch((self.broker_epoch)()),
            )
            .with_max_wait_ms(self.config.max_wait_ms)
            .with_min_bytes(self.config.min_bytes)
            .with_max_bytes(self.config.response_max_bytes)
            .with_isolation_level(0)
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(topics);
        let response = self
            .client
            .call(FETCH_VERSION, &request, self.timeout())
            .await?;
        if response.error_code != 0 {
            return Err(std::io::Error::other(format!(
                "fetch error code {}",
                response.error_code
            )));
        }
        for topic in response.responses {
            for data in topic.partitions {
                let followed = ready.iter().find(|(_, f)| {
                    f.partition.topic_id == topic.topic_id
                        && f.partition.tp.partition == data.partition_index
                });
                let Some((tp, f)) = followed else {
                    continue;
                };
                // Leadership may have moved while the fetch was out: its answer is stale.
                if !f.partition.follows(self.leader, f.leader_epoch) {
                    continue;
                }
                if let Err(delay) = self.process(f, data).await {
                    tracing::debug!(partition = %tp, leader = self.leader, reason = %delay,
                        "replica fetch of a partition backs off");
                    let until = tokio::time::Instant::now() + self.backoff();
                    if let Some(entry) = lock(&self.shared).get_mut(tp) {
                        if entry.leader_epoch == f.leader_epoch {
                            entry.delayed_until = Some(until);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// One partition's answer. `Err` names why the partition backs off.
    async fn process(
        &mut self,
        f: &Followed,
        data: PartitionData,
    ) -> std::result::Result<(), String> {
        let log = &f.partition.log;
        match data.error_code {
            0 => {}
            code if code == ResponseError::OffsetOutOfRange.code() => {
                return self.handle_out_of_range(f).await.map_err(|e| e.to_string());
            }
            code => {
                return Err(format!(
                    "error {:?}",
                    ResponseError::try_from_code(code)
                        .map_or(code.to_string(), |e| format!("{e:?}"))
                ))
            }
        }
        let diverging = &data.diverging_epoch;
        if diverging.epoch >= 0 && diverging.end_offset >= 0 {
            let (_, local_end) = log.epoch_end_offset(diverging.epoch);
            let target = if local_end < 0 {
                diverging.end_offset
            } else {
                diverging.end_offset.min(local_end)
            };
            tracing::info!(partition = %f.partition.tp, leader = self.leader,
                epoch = diverging.epoch, end_offset = diverging.end_offset, target,
                "truncating to the leader's log (diverging epoch)");
            log.truncate_to(target).map_err(|e| e.to_string())?;
            return Ok(());
        }
        if let Some(records) = data.records.filter(|r| !r.is_empty()) {
            let whole = whole_batches(&records);
            if !whole.is_empty() {
                log.append_replicated(BytesMut::from(&whole[..]))
                    .await
                    .map_err(|e| format!("append: {e}"))?;
            }
        }
        f.partition
            .follower_learned(data.high_watermark, data.log_start_offset);
        Ok(())
    }

    /// OFFSET_OUT_OF_RANGE (Kafka's handleOutOfRangeError): a log end past the leader's is cut
    /// back to it (after an unclean election); a leader whose log starts past this log's end
    /// makes it start again there.
    async fn handle_out_of_range(&mut self, f: &Followed) -> Result<()> {
        let log = &f.partition.log;
        let leader_end = self.list_offset(f, LATEST_TIMESTAMP).await?;
        if leader_end < log.log_end_offset() {
            tracing::warn!(partition = %f.partition.tp, leader_end, "truncating to the leader's log end");
            return log.truncate_to(leader_end);
        }
        let leader_start = self.list_offset(f, EARLIEST_TIMESTAMP).await?;
        if leader_start > log.log_end_offset() {
            tracing::info!(partition = %f.partition.tp, leader_start, "restarting the log at the leader's log start");
            return log.truncate_fully_and_start_at(leader_start);
        }
        Ok(())
    }

    async fn list_offset(&mut self, f: &Followed, timestamp: i64) -> Result<i64> {
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(self.config.node_id))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_string(
                    f.partition.tp.topic.clone(),
                )))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(f.partition.tp.partition)
                    .with_current_leader_epoch(f.leader_epoch)
                    .with_timestamp(timestamp)])]);
        let response = self
            .client
            .call(LIST_OFFSETS_VERSION, &request, self.timeout())
            .await?;
        let p = response
            .topics
            .first()
            .and_then(|t| t.partitions.first())
            .ok_or_else(|| std::io::Error::other("empty ListOffsets response"))?;
        if p.error_code != 0 || p.offset < 0 {
            return Err(std::io::Error::other(format!(
                "ListOffsets error code {} offset {}",
                p.error_code, p.offset
            ))
            .into());
        }
        Ok(p.offset)
    }
}

/// The whole batches at the front of `records`: a fetch response may end in part of a batch
/// (max bytes), which the next fetch brings whole.
fn whole_batches(records: &Bytes) -> Bytes {
    let mut at = 0usize;
    while records.len() - at >= BATCH_HEADER_LEN {
        let Ok(h) = parse_header(&records[at..]) else {
            break;
        };
        let size = h.size_bytes();
        if size < BATCH_HEADER_LEN || records.len() - at < size {
            break;
        }
        at += size;
    }
    records.slice(..at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_last_batch_is_left_for_the_next_fetch() {
        let one = crate::protocol::record_batch::tests::batch_with(
            2,
            0,
            kafka_protocol::records::Compression::None,
        );
        let mut two = BytesMut::new();
        two.extend_from_slice(&one);
        two.extend_from_slice(&one);
        let full = two.clone().freeze();
        assert_eq!(whole_batches(&full).len(), 2 * one.len());
        let cut = full.slice(..one.len() + 10);
        assert_eq!(whole_batches(&cut).len(), one.len());
        assert!(whole_batches(&full.slice(..5)).is_empty());
    }
}
