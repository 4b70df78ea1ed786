//! The replica layer (Kafka's ReplicaManager): which partitions this broker hosts, as leader or
//! follower, kept in step with the metadata image; the one leader append path with acks;
//! follower fetchers; ISR upkeep through AlterPartition.
//!
//! Each new image is applied as a delta against the previous one: topics whose `Arc` is the
//! same in both are untouched and skipped, so an image change costs what changed.

pub mod client;
pub mod fetcher;
pub mod partition;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::BytesMut;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::log::log_manager::LogManager;
use crate::log::{AppendInfo, LogConfig};
use crate::metadata::controller::MetadataController;
use crate::metadata::image::{MetadataImage, PartitionImage, TopicImage};
use crate::metadata::replication_control::AlterPartition;
use crate::protocol::record_batch::ValidatedRecords;
use crate::topic_partition::TopicPartition;
pub use fetcher::{FetcherConfig, Fetchers};
pub use partition::{IsrChange, Partition, Role, Transition};

/// Kafka's required acks.
pub const ACKS_ALL: i16 = -1;

/// The partitions this broker hosts and what it does for each.
pub struct ReplicaManager {
    node_id: i32,
    logs: Arc<LogManager>,
    clock: Arc<dyn Clock>,
    controller: Arc<MetadataController>,
    broker_epoch: Arc<dyn Fn() -> i64 + Send + Sync>,
    partitions: Mutex<HashMap<TopicPartition, Arc<Partition>>>,
    /// One creation or transition at a time: the applier and on-demand lookups both apply.
    apply_lock: Mutex<()>,
    pub fetchers: Fetchers,
    /// AlterPartition requests in flight and the ISR expiration task; stopped by `shutdown`.
    tasks: tokio_util::task::TaskTracker,
    stopping: tokio_util::sync::CancellationToken,
}

impl std::fmt::Debug for ReplicaManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaManager")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

impl ReplicaManager {
    /// Must be called within the tokio runtime (fetchers are spawned on it).
    pub fn new(
        node_id: i32,
        logs: Arc<LogManager>,
        clock: Arc<dyn Clock>,
        controller: Arc<MetadataController>,
        broker_epoch: Arc<dyn Fn() -> i64 + Send + Sync>,
        fetcher_config: FetcherConfig,
    ) -> Self {
        let fetchers = Fetchers::new(fetcher_config, controller.subscribe(), broker_epoch.clone());
        ReplicaManager {
            node_id,
            logs,
            clock,
            controller,
            broker_epoch,
            partitions: Mutex::new(HashMap::new()),
            apply_lock: Mutex::new(()),
            fetchers,
            tasks: tokio_util::task::TaskTracker::new(),
            stopping: tokio_util::sync::CancellationToken::new(),
        }
    }

    /// Stops the fetchers and every task of the replica layer and waits for them, so nothing
    /// holds the logs afterwards (a restart in the same process can lock the log dirs again).
    pub async fn shutdown(&self) {
        self.stopping.cancel();
        self.fetchers.shutdown().await;
        self.tasks.close();
        self.tasks.wait().await;
    }

    fn map(&self) -> MutexGuard<'_, HashMap<TopicPartition, Arc<Partition>>> {
        self.partitions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every hosted partition.
    pub fn partitions(&self) -> Vec<Arc<Partition>> {
        self.map().values().cloned().collect()
    }

    /// The hosted partition `index` of `topic`, brought up to the given image first (a
    /// request may arrive before the applier has seen the image it was checked against).
    /// NOT_LEADER_OR_FOLLOWER when this broker is not one of its replicas, as Kafka answers.
    pub fn hosted(
        &self,
        topic: &TopicImage,
        index: i32,
        config: impl FnOnce() -> LogConfig,
    ) -> Result<Arc<Partition>> {
        let image_partition = topic
            .partition(index)
            .ok_or(Error::UnknownTopicOrPartition)?;
        let tp = TopicPartition::new(topic.name.clone(), index);
        if let Some(p) = self.map().get(&tp).cloned() {
            if p.topic_id == topic.topic_id
                && p.partition_epoch() >= image_partition.partition_epoch
            {
                return Ok(p);
            }
        }
        match self.apply_partition(topic, image_partition, config)? {
            Some(p) => Ok(p),
            None => Err(Error::NotLeaderOrFollower(format!(
                "broker {} does not host {tp}",
                self.node_id
            ))),
        }
    }

    /// The hosted partition if this broker leads it, else NOT_LEADER_OR_FOLLOWER.
    pub fn leader(
        &self,
        topic: &TopicImage,
        index: i32,
        config: impl FnOnce() -> LogConfig,
    ) -> Result<Arc<Partition>> {
        let p = self.hosted(topic, index, config)?;
        if p.is_leader() {
            Ok(p)
        } else {
            Err(Error::NotLeaderOrFollower(format!(
                "broker {} is not the leader of {}",
                self.node_id, p.tp
            )))
        }
    }

    /// Brings one partition in line with its image: creates its log when this broker is a
    /// replica (Kafka creates it as soon as the metadata says so, not on first produce), and
    /// makes it leader or follower. `None` when this broker is not a replica.
    fn apply_partition(
        &self,
        topic: &TopicImage,
        image: &PartitionImage,
        config: impl FnOnce() -> LogConfig,
    ) -> Result<Option<Arc<Partition>>> {
        let _serial = self.apply_lock.lock().unwrap_or_else(|e| e.into_inner());
        // What is applied is the newest image's view: the applier may be behind a request that
        // already saw a later image (a deleted topic must not come back from an older one).
        let current = self.controller.image();
        let Some(topic) = current
            .topic(&topic.name)
            .filter(|t| t.topic_id == topic.topic_id)
        else {
            return Ok(None);
        };
        let Some(image) = topic.partition(image.partition) else {
            return Ok(None);
        };
        if !image.replicas.contains(&self.node_id) {
            return Ok(None);
        }
        let tp = TopicPartition::new(topic.name.clone(), image.partition);
        let existing = self
            .map()
            .get(&tp)
            .filter(|p| p.topic_id == topic.topic_id)
            .cloned();
        let partition = match existing {
            Some(p) => p,
            None => {
                let log = match self.logs.get(&topic.name, image.partition) {
                    Some(log) if log.topic_id() == topic.topic_id => log,
                    _ => self.logs.get_or_create(
                        &topic.name,
                        topic.topic_id,
                        image.partition,
                        config(),
                    )?,
                };
                let p = Arc::new(Partition::new(
                    tp.clone(),
                    topic.topic_id,
                    log,
                    self.node_id,
                ));
                self.map().insert(tp.clone(), p.clone());
                p
            }
        };
        let transition = partition.apply(image, self.clock.wall_ms())?;
        match transition {
            Transition::Leader => {
                self.fetchers.remove(&tp);
                tracing::debug!(partition = %tp, leader_epoch = image.leader_epoch, "leader");
            }
            Transition::Follower { leader } => {
                self.fetchers.remove(&tp);
                if leader >= 0 {
                    self.fetchers
                        .add(leader, partition.clone(), image.leader_epoch);
                }
                tracing::debug!(partition = %tp, leader, leader_epoch = image.leader_epoch, "follower");
            }
            Transition::Updated | Transition::None => {}
        }
        Ok(Some(partition))
    }

    /// Applies `next` against `prev` (None: everything, at start). Topics that are the same
    /// `Arc` in both are skipped. Blocking (creates and deletes logs): run off the runtime's
    /// worker threads.
    pub fn apply_image(
        &self,
        prev: Option<&MetadataImage>,
        next: &MetadataImage,
        config: &dyn Fn(&TopicImage) -> LogConfig,
    ) {
        // Deleted (or recreated) topics first, so a recreated name starts from a new log.
        let gone: Vec<TopicPartition> = self
            .map()
            .iter()
            .filter(|(tp, p)| {
                next.topic(&tp.topic).is_none_or(|t| {
                    t.topic_id != p.topic_id
                        || t.partition(tp.partition)
                            .is_none_or(|ip| !ip.replicas.contains(&self.node_id))
                })
            })
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in gone {
            self.remove(&tp);
        }
        for (name, topic) in &next.topics {
            let unchanged = prev
                .and_then(|p| p.topics.get(name))
                .is_some_and(|old| Arc::ptr_eq(old, topic));
            if unchanged {
                continue;
            }
            let configs_changed = prev
                .and_then(|p| p.topics.get(name))
                .is_some_and(|old| old.configs != topic.configs);
            self.apply_topic(topic, configs_changed, config);
        }
    }

    /// Applies every partition of `topic` (see [`Self::apply_image`]); with `configs_changed`
    /// the hosted ones get the topic's new log settings.
    pub fn apply_topic(
        &self,
        topic: &TopicImage,
        configs_changed: bool,
        config: &dyn Fn(&TopicImage) -> LogConfig,
    ) {
        for p in &topic.partitions {
            match self.apply_partition(topic, p, || config(topic)) {
                Ok(Some(hosted)) if configs_changed => hosted.log.set_config(config(topic)),
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(topic = %topic.name, partition = p.partition, error = %e,
                        "could not apply the partition's metadata")
                }
            }
        }
    }

    /// Stops hosting `tp`: fetching stops, waits end, and its log is deleted (its topic is
    /// gone, or this broker is no longer one of its replicas). A log of the same name that
    /// already belongs to a recreated topic is left alone.
    fn remove(&self, tp: &TopicPartition) {
        let _serial = self.apply_lock.lock().unwrap_or_else(|e| e.into_inner());
        let Some(p) = self.map().remove(tp) else {
            return;
        };
        self.fetchers.remove(tp);
        p.mark_removed();
        let same_log = self
            .logs
            .get(&tp.topic, tp.partition)
            .is_some_and(|log| log.topic_id() == p.topic_id);
        if same_log {
            if let Err(e) = self.logs.delete_partition(&tp.topic, tp.partition) {
                tracing::warn!(partition = %tp, error = %e, "could not delete the log of a partition no longer hosted");
            }
        }
    }

    /// The one leader append path (DESIGN.md "Structure"): produce and the coordinators append
    /// through it. Refuses when this broker does not lead the partition, checks
    /// min.insync.replicas for acks=all before appending, and with acks=all waits until every
    /// in-sync replica has the records, within `timeout`.
    pub async fn append_records(
        &self,
        partition: &Partition,
        records: BytesMut,
        validated: &ValidatedRecords,
        acks: i16,
        timeout: Duration,
    ) -> Result<AppendInfo> {
        let acks_all = acks == ACKS_ALL;
        let info = partition
            .append_as_leader(records, validated, acks_all)
            .await?;
        if acks_all {
            partition.wait_replicated(info.last_offset, timeout).await?;
        }
        Ok(info)
    }

    /// A follower fetched `fetch_offset` from this leader: its progress is recorded and, if
    /// it has caught up from outside the ISR, the controller is asked to add it.
    pub fn follower_fetched(
        self: &Arc<Self>,
        partition: &Arc<Partition>,
        replica_id: i32,
        fetch_offset: i64,
    ) -> Result<()> {
        let change = partition.update_follower(replica_id, fetch_offset, self.clock.wall_ms())?;
        if let Some(change) = change {
            let usable = self
                .controller
                .image()
                .broker(replica_id)
                .is_some_and(|b| b.usable());
            if usable {
                self.send_isr_change(partition.clone(), change);
            } else {
                partition.isr_change_failed();
            }
        }
        Ok(())
    }

    /// Sends an AlterPartition; the image that answers it updates the partition. A refused
    /// change (an older partition epoch: the ISR moved meanwhile) may be asked again later.
    fn send_isr_change(self: &Arc<Self>, partition: Arc<Partition>, change: IsrChange) {
        let manager = self.clone();
        let stopping = self.stopping.clone();
        self.tasks.spawn(async move {
            let request = AlterPartition {
                broker_id: manager.node_id,
                broker_epoch: (manager.broker_epoch)(),
                topic_id: change.topic_id,
                partition: change.partition,
                leader_epoch: change.leader_epoch,
                partition_epoch: change.partition_epoch,
                new_isr: change.new_isr.clone(),
            };
            let sent = tokio::select! {
                sent = manager.controller.alter_partition(request) => sent,
                _ = stopping.cancelled() => return,
            };
            match sent {
                Ok(()) => {
                    tracing::info!(partition = %partition.tp, isr = ?change.new_isr, "ISR changed");
                }
                Err(e) => {
                    tracing::info!(partition = %partition.tp, isr = ?change.new_isr, error = %e,
                        "ISR change refused");
                }
            }
            // The applier brings the new partition epoch; until then nothing else is pending.
            if partition.partition_epoch() == change.partition_epoch {
                partition.isr_change_failed();
            }
        });
    }

    /// Kafka's isr-expiration task: every `lag_max / 2`, followers of partitions this broker
    /// leads that have not caught up within `replica.lag.time.max.ms` leave the ISR.
    pub fn start_isr_expiration(self: &Arc<Self>, lag_max_ms: i64) {
        let manager = self.clone();
        let stopping = self.stopping.clone();
        self.tasks
            .spawn(async move { manager.run_isr_expiration(lag_max_ms, stopping).await });
    }

    async fn run_isr_expiration(
        self: Arc<Self>,
        lag_max_ms: i64,
        stopping: tokio_util::sync::CancellationToken,
    ) {
        let period = Duration::from_millis((lag_max_ms / 2).clamp(50, 60_000) as u64);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = stopping.cancelled() => return,
            }
            let now_ms = self.clock.wall_ms();
            for p in self.partitions() {
                if let Some(change) = p.isr_shrink(now_ms, lag_max_ms) {
                    tracing::info!(partition = %p.tp, isr = ?change.new_isr, "shrinking the ISR: followers lag more than replica.lag.time.max.ms");
                    self.send_isr_change(p, change);
                }
            }
        }
    }
}
