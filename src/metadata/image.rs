//! The immutable metadata image request handlers read: brokers, topics, partitions, configs.
//!
//! The state machine turns each applied batch of [`MetadataRecord`]s into the next image
//! (`image.try_apply(records)`, a delta) and swaps an `Arc`; readers never lock.

use std::sync::Arc;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::Error;
pub use crate::metadata::records::{BrokerEndpoint, BrokerRegistration};
use crate::metadata::records::{ConfigResourceType, MetadataRecord};

/// Kafka's Topic.MAX_NAME_LENGTH.
pub const TOPIC_NAME_LENGTH_MAX: usize = 249;

/// One partition's replica assignment and leadership (PartitionRecord).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionImage {
    pub partition: i32,
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

/// One topic: id, partitions (index == partition id) and dynamic config overrides.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicImage {
    pub name: String,
    pub topic_id: Uuid,
    pub partitions: Vec<PartitionImage>,
    pub configs: IndexMap<String, String>,
}

impl TopicImage {
    pub fn partition(&self, partition: i32) -> Option<&PartitionImage> {
        usize::try_from(partition)
            .ok()
            .and_then(|p| self.partitions.get(p))
    }
}

/// Why a batch was refused by the state machine. Applying is deterministic, so every replica
/// of the metadata log refuses the same batches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum RejectReason {
    #[error("Topic '{name}' already exists.")]
    TopicAlreadyExists { name: String },
    #[error("Topic '{name}' collides with existing topic: {existing}")]
    TopicCollision { name: String, existing: String },
    #[error("{0}")]
    InvalidTopic(String),
    #[error("topic id {topic_id} is zero or already in use")]
    TopicIdInUse { topic_id: Uuid },
    #[error("unknown topic id {topic_id}")]
    UnknownTopicId { topic_id: Uuid },
    #[error("unknown topic '{name}'")]
    UnknownTopic { name: String },
    #[error(
        "partition {partition} of topic id {topic_id} is not next after {partitions} partitions"
    )]
    PartitionOutOfOrder {
        topic_id: Uuid,
        partition: i32,
        partitions: usize,
    },
    #[error("producer id block ending at {next_producer_id} does not follow {current}")]
    ProducerIdsNotIncreasing { next_producer_id: i64, current: i64 },
    #[error("partition {partition} of topic id {topic_id} does not exist")]
    UnknownPartition { topic_id: Uuid, partition: i32 },
    #[error("broker {broker_id} is not registered with epoch {broker_epoch}")]
    StaleBrokerEpoch { broker_id: i32, broker_epoch: i64 },
}

impl From<RejectReason> for Error {
    fn from(r: RejectReason) -> Error {
        match r {
            RejectReason::TopicAlreadyExists { name } => Error::TopicAlreadyExists(name),
            RejectReason::TopicCollision { .. } | RejectReason::InvalidTopic(_) => {
                Error::InvalidTopic(r.to_string())
            }
            RejectReason::UnknownTopicId { .. } => Error::UnknownTopicId,
            RejectReason::UnknownTopic { .. } => Error::UnknownTopicOrPartition,
            RejectReason::StaleBrokerEpoch { .. } => Error::StaleBrokerEpoch(r.to_string()),
            RejectReason::TopicIdInUse { .. }
            | RejectReason::UnknownPartition { .. }
            | RejectReason::PartitionOutOfOrder { .. }
            | RejectReason::ProducerIdsNotIncreasing { .. } => Error::InvalidRequest(r.to_string()),
        }
    }
}

/// Kafka's `Topic.validate`: the message is Kafka's, word for word.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    let reason = if name.is_empty() {
        "the empty string is not allowed".to_string()
    } else if name == "." {
        "'.' is not allowed".to_string()
    } else if name == ".." {
        "'..' is not allowed".to_string()
    } else if name.encode_utf16().count() > TOPIC_NAME_LENGTH_MAX {
        // Java's String.length() counts UTF-16 units.
        format!(
            "the length of '{name}' is longer than the max allowed length {TOPIC_NAME_LENGTH_MAX}"
        )
    } else if !name
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || c == b'-')
    {
        format!("'{name}' contains one or more characters other than ASCII alphanumerics, '.', '_' and '-'")
    } else {
        return Ok(());
    };
    Err(format!("Topic name is invalid: {reason}"))
}

/// Kafka's `Topic.unifyCollisionChars`: '.' and '_' map to the same metric name.
pub fn unify_collision_chars(name: &str) -> String {
    name.replace('.', "_")
}

fn has_collision_chars(name: &str) -> bool {
    name.contains(['.', '_'])
}

/// The cluster's metadata at one offset of the metadata log. Immutable once published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetadataImage {
    pub cluster_id: String,
    /// The active controller (the metadata quorum leader), -1 when unknown.
    pub controller_id: i32,
    pub brokers: IndexMap<i32, BrokerRegistration>,
    /// Topics by name, in creation order. `Arc` so the next image shares untouched topics.
    pub topics: IndexMap<String, Arc<TopicImage>>,
    pub topic_ids: IndexMap<Uuid, String>,
    /// Broker configs by resource name ("" = cluster default, "<id>" = one broker).
    pub broker_configs: IndexMap<String, IndexMap<String, String>>,
    /// Group configs by group id (only groups with at least one).
    pub group_configs: IndexMap<String, IndexMap<String, String>>,
    /// Offset (raft log index) of the last applied metadata log entry, -1 before any.
    pub last_applied_offset: i64,
    /// First producer id not yet handed out in a block (ProducerIdsRecord).
    pub next_producer_id: i64,
    /// Unified name (see [`unify_collision_chars`]) -> existing topic, for names with '.' or '_'.
    collision_names: IndexMap<String, String>,
}

/// The serialized form of an image (snapshots): plain data, indexes rebuilt on load.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSnapshot {
    pub cluster_id: String,
    pub brokers: Vec<BrokerRegistration>,
    pub topics: Vec<TopicImage>,
    pub broker_configs: IndexMap<String, IndexMap<String, String>>,
    #[serde(default)]
    pub group_configs: IndexMap<String, IndexMap<String, String>>,
    pub last_applied_offset: i64,
    #[serde(default)]
    pub next_producer_id: i64,
}

impl MetadataImage {
    /// The image before any record: no brokers, no topics.
    pub fn empty(cluster_id: impl Into<String>) -> Self {
        Self {
            cluster_id: cluster_id.into(),
            controller_id: -1,
            brokers: IndexMap::new(),
            topics: IndexMap::new(),
            topic_ids: IndexMap::new(),
            broker_configs: IndexMap::new(),
            group_configs: IndexMap::new(),
            last_applied_offset: -1,
            next_producer_id: 0,
            collision_names: IndexMap::new(),
        }
    }

    pub fn topic(&self, name: &str) -> Option<&TopicImage> {
        self.topics.get(name).map(|t| t.as_ref())
    }

    pub fn topic_by_id(&self, topic_id: &Uuid) -> Option<&TopicImage> {
        self.topic_ids
            .get(topic_id)
            .and_then(|name| self.topic(name))
    }

    pub fn broker(&self, node_id: i32) -> Option<&BrokerRegistration> {
        self.brokers.get(&node_id)
    }

    /// The unfenced brokers with an endpoint on `listener`, each with that endpoint: what a
    /// request arriving on that listener is told (Kafka's
    /// MetadataCache.getAliveBrokerNodes(listener)).
    pub fn brokers_on<'a>(
        &'a self,
        listener: &'a str,
    ) -> impl Iterator<Item = (&'a BrokerRegistration, &'a BrokerEndpoint)> + 'a {
        self.brokers_on_including_fenced(listener)
            .filter(|(b, _)| !b.fenced)
    }

    /// [`MetadataImage::brokers_on`] with fenced brokers too (DescribeCluster v2's
    /// include_fenced_brokers, KIP-1073).
    pub fn brokers_on_including_fenced<'a>(
        &'a self,
        listener: &'a str,
    ) -> impl Iterator<Item = (&'a BrokerRegistration, &'a BrokerEndpoint)> + 'a {
        self.brokers
            .values()
            .filter_map(move |b| b.endpoint(listener).map(|e| (b, e)))
    }

    /// Whether `node_id` may be elected leader: registered, unfenced, not shutting down
    /// (Kafka's ClusterControlManager.isActive).
    pub fn is_usable_leader(&self, node_id: i32) -> bool {
        self.brokers.get(&node_id).is_some_and(|b| b.usable())
    }

    /// Whether `node_id` is registered and unfenced: a replica there is online.
    pub fn is_broker_alive(&self, node_id: i32) -> bool {
        self.brokers.get(&node_id).is_some_and(|b| !b.fenced)
    }

    /// Dynamic configs of a broker resource ("" is the cluster-wide default).
    pub fn broker_config(&self, resource_name: &str) -> Option<&IndexMap<String, String>> {
        self.broker_configs.get(resource_name)
    }

    /// Dynamic configs of a consumer group.
    pub fn group_config(&self, group_id: &str) -> Option<&IndexMap<String, String>> {
        self.group_configs.get(group_id)
    }

    /// The existing topic a new topic name would collide with (Kafka refuses '.' vs '_'
    /// look-alikes because their metric names are the same). `None` for an existing name.
    pub fn colliding_topic(&self, name: &str) -> Option<&str> {
        if !has_collision_chars(name) || self.topics.contains_key(name) {
            return None;
        }
        self.collision_names
            .get(&unify_collision_chars(name))
            .map(String::as_str)
    }

    /// The next image with all `records` applied, or the first reason to refuse the batch (the
    /// whole batch is then dropped: batches are atomic).
    pub fn try_apply(&self, records: &[MetadataRecord]) -> Result<MetadataImage, RejectReason> {
        let mut next = self.clone();
        for record in records {
            next.apply_record(record)?;
        }
        Ok(next)
    }

    /// The next image with each record applied that fits; records that do not are skipped with
    /// a warning. Prefer [`MetadataImage::try_apply`] where batches must be atomic.
    pub fn apply(&self, records: &[MetadataRecord]) -> MetadataImage {
        let mut next = self.clone();
        for record in records {
            if let Err(reason) = next.apply_record(record) {
                tracing::warn!(%record, %reason, "metadata record skipped");
            }
        }
        next
    }

    /// Applies one record; on error `self` is unchanged.
    fn apply_record(&mut self, record: &MetadataRecord) -> Result<(), RejectReason> {
        match record {
            MetadataRecord::RegisterBroker(reg) => {
                let mut reg = reg.clone();
                // The broker epoch is the offset of the batch that registered this
                // incarnation; re-registering the same incarnation keeps it (Kafka's
                // ClusterControlManager.registerBroker).
                reg.broker_epoch = match self.brokers.get(&reg.node_id) {
                    Some(old) if old.incarnation_id == reg.incarnation_id => old.broker_epoch,
                    _ => self.last_applied_offset,
                };
                self.brokers.insert(reg.node_id, reg);
                Ok(())
            }
            MetadataRecord::BrokerRegistrationChange {
                broker_id,
                broker_epoch,
                fenced,
                in_controlled_shutdown,
            } => {
                let reg = self
                    .brokers
                    .get_mut(broker_id)
                    .filter(|r| r.broker_epoch == *broker_epoch)
                    .ok_or(RejectReason::StaleBrokerEpoch {
                        broker_id: *broker_id,
                        broker_epoch: *broker_epoch,
                    })?;
                if let Some(fenced) = fenced {
                    reg.fenced = *fenced;
                }
                if let Some(shutting_down) = in_controlled_shutdown {
                    reg.in_controlled_shutdown = *shutting_down;
                }
                Ok(())
            }
            MetadataRecord::PartitionChange {
                topic_id,
                partition,
                leader,
                isr,
            } => self.change_partition(*topic_id, *partition, *leader, isr.as_deref()),
            MetadataRecord::Topic { name, topic_id } => self.add_topic(name, *topic_id),
            MetadataRecord::Partition {
                topic_id,
                partition,
                replicas,
                isr,
                leader,
                leader_epoch,
                partition_epoch,
            } => self.set_partition(
                *topic_id,
                PartitionImage {
                    partition: *partition,
                    leader: *leader,
                    leader_epoch: *leader_epoch,
                    partition_epoch: *partition_epoch,
                    replicas: replicas.clone(),
                    isr: isr.clone(),
                },
            ),
            MetadataRecord::RemoveTopic { topic_id } => self.remove_topic(*topic_id),
            MetadataRecord::ConfigRecord {
                resource_type,
                resource_name,
                name,
                value,
            } => self.set_config(*resource_type, resource_name, name, value.as_deref()),
            MetadataRecord::ProducerIds {
                next_producer_id, ..
            } => {
                // Blocks only move forward, so no id is ever handed out twice.
                if *next_producer_id <= self.next_producer_id {
                    return Err(RejectReason::ProducerIdsNotIncreasing {
                        next_producer_id: *next_producer_id,
                        current: self.next_producer_id,
                    });
                }
                self.next_producer_id = *next_producer_id;
                Ok(())
            }
        }
    }

    fn add_topic(&mut self, name: &str, topic_id: Uuid) -> Result<(), RejectReason> {
        validate_topic_name(name).map_err(RejectReason::InvalidTopic)?;
        if self.topics.contains_key(name) {
            return Err(RejectReason::TopicAlreadyExists { name: name.into() });
        }
        if let Some(existing) = self.colliding_topic(name) {
            return Err(RejectReason::TopicCollision {
                name: name.into(),
                existing: existing.into(),
            });
        }
        if topic_id.is_nil() || self.topic_ids.contains_key(&topic_id) {
            return Err(RejectReason::TopicIdInUse { topic_id });
        }
        if has_collision_chars(name) {
            self.collision_names
                .insert(unify_collision_chars(name), name.into());
        }
        self.topic_ids.insert(topic_id, name.into());
        self.topics.insert(
            name.into(),
            Arc::new(TopicImage {
                name: name.into(),
                topic_id,
                partitions: Vec::new(),
                configs: IndexMap::new(),
            }),
        );
        Ok(())
    }

    fn set_partition(&mut self, topic_id: Uuid, p: PartitionImage) -> Result<(), RejectReason> {
        let topic = self
            .topic_ids
            .get(&topic_id)
            .and_then(|name| self.topics.get_mut(name))
            .ok_or(RejectReason::UnknownTopicId { topic_id })?;
        let count = topic.partitions.len();
        let index = usize::try_from(p.partition)
            .ok()
            .filter(|i| *i <= count)
            .ok_or(RejectReason::PartitionOutOfOrder {
                topic_id,
                partition: p.partition,
                partitions: count,
            })?;
        let topic = Arc::make_mut(topic);
        if index == count {
            topic.partitions.push(p);
        } else {
            topic.partitions[index] = p;
        }
        Ok(())
    }

    /// PartitionRegistration.merge: every change bumps the partition epoch, a leader change
    /// (even to the same leader) the leader epoch too.
    fn change_partition(
        &mut self,
        topic_id: Uuid,
        partition: i32,
        leader: Option<i32>,
        isr: Option<&[i32]>,
    ) -> Result<(), RejectReason> {
        let topic = self
            .topic_ids
            .get(&topic_id)
            .and_then(|name| self.topics.get_mut(name))
            .ok_or(RejectReason::UnknownTopicId { topic_id })?;
        let index = usize::try_from(partition)
            .ok()
            .filter(|i| *i < topic.partitions.len())
            .ok_or(RejectReason::UnknownPartition {
                topic_id,
                partition,
            })?;
        let p = &mut Arc::make_mut(topic).partitions[index];
        if let Some(leader) = leader {
            p.leader = leader;
            p.leader_epoch += 1;
        }
        if let Some(isr) = isr {
            p.isr = isr.to_vec();
        }
        p.partition_epoch += 1;
        Ok(())
    }

    fn remove_topic(&mut self, topic_id: Uuid) -> Result<(), RejectReason> {
        let name = self
            .topic_ids
            .shift_remove(&topic_id)
            .ok_or(RejectReason::UnknownTopicId { topic_id })?;
        self.topics.shift_remove(&name);
        if has_collision_chars(&name) {
            self.collision_names
                .shift_remove(&unify_collision_chars(&name));
        }
        Ok(())
    }

    fn set_config(
        &mut self,
        resource_type: ConfigResourceType,
        resource_name: &str,
        name: &str,
        value: Option<&str>,
    ) -> Result<(), RejectReason> {
        let configs = match resource_type {
            ConfigResourceType::Topic => {
                let topic = self.topics.get_mut(resource_name).ok_or_else(|| {
                    RejectReason::UnknownTopic {
                        name: resource_name.into(),
                    }
                })?;
                &mut Arc::make_mut(topic).configs
            }
            ConfigResourceType::Broker => self
                .broker_configs
                .entry(resource_name.to_string())
                .or_default(),
            ConfigResourceType::Group => self
                .group_configs
                .entry(resource_name.to_string())
                .or_default(),
        };
        match value {
            Some(v) => {
                configs.insert(name.to_string(), v.to_string());
            }
            None => {
                configs.shift_remove(name);
            }
        }
        // Broker and group resources exist only while they hold a config.
        let by_resource = match resource_type {
            ConfigResourceType::Topic => None,
            ConfigResourceType::Broker => Some(&mut self.broker_configs),
            ConfigResourceType::Group => Some(&mut self.group_configs),
        };
        if let Some(map) = by_resource {
            if map.get(resource_name).is_some_and(|c| c.is_empty()) {
                map.shift_remove(resource_name);
            }
        }
        Ok(())
    }

    /// The plain-data form written to snapshots.
    pub fn to_snapshot(&self) -> ImageSnapshot {
        ImageSnapshot {
            cluster_id: self.cluster_id.clone(),
            brokers: self.brokers.values().cloned().collect(),
            topics: self.topics.values().map(|t| t.as_ref().clone()).collect(),
            broker_configs: self.broker_configs.clone(),
            group_configs: self.group_configs.clone(),
            last_applied_offset: self.last_applied_offset,
            next_producer_id: self.next_producer_id,
        }
    }

    /// Rebuilds an image (and its indexes) from a snapshot.
    pub fn from_snapshot(s: ImageSnapshot) -> Self {
        let mut image = MetadataImage::empty(s.cluster_id);
        image.last_applied_offset = s.last_applied_offset;
        image.next_producer_id = s.next_producer_id;
        image.broker_configs = s.broker_configs;
        image.group_configs = s.group_configs;
        for b in s.brokers {
            image.brokers.insert(b.node_id, b);
        }
        for t in s.topics {
            if has_collision_chars(&t.name) {
                image
                    .collision_names
                    .insert(unify_collision_chars(&t.name), t.name.clone());
            }
            image.topic_ids.insert(t.topic_id, t.name.clone());
            image.topics.insert(t.name.clone(), Arc::new(t));
        }
        image
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn topic(name: &str, n: u128) -> MetadataRecord {
        MetadataRecord::Topic {
            name: name.into(),
            topic_id: id(n),
        }
    }

    fn partition(n: u128, partition: i32, leader_epoch: i32) -> MetadataRecord {
        MetadataRecord::Partition {
            topic_id: id(n),
            partition,
            replicas: vec![1],
            isr: vec![1],
            leader: 1,
            leader_epoch,
            partition_epoch: leader_epoch,
        }
    }

    fn topic_config(topic: &str, name: &str, value: Option<&str>) -> MetadataRecord {
        MetadataRecord::ConfigRecord {
            resource_type: ConfigResourceType::Topic,
            resource_name: topic.into(),
            name: name.into(),
            value: value.map(String::from),
        }
    }

    #[test]
    fn topic_with_partitions_and_configs_is_visible_by_name_and_id() {
        let image = MetadataImage::empty("c")
            .try_apply(&[
                topic("orders", 7),
                partition(7, 0, 0),
                partition(7, 1, 0),
                topic_config("orders", "cleanup.policy", Some("compact")),
            ])
            .expect("apply");
        let t = image.topic("orders").expect("by name");
        assert_eq!(t.topic_id, id(7));
        assert_eq!(t.partitions.len(), 2);
        assert_eq!(t.partition(1).map(|p| p.partition), Some(1));
        assert_eq!(
            t.configs.get("cleanup.policy").map(String::as_str),
            Some("compact")
        );
        assert_eq!(
            image.topic_by_id(&id(7)).map(|t| t.name.as_str()),
            Some("orders")
        );
    }

    #[test]
    fn apply_leaves_previous_image_unchanged() {
        let before = MetadataImage::empty("c")
            .try_apply(&[topic("a", 1), partition(1, 0, 0)])
            .expect("apply");
        let after = before.try_apply(&[partition(1, 0, 5)]).expect("apply");
        assert_eq!(
            before.topic("a").map(|t| t.partitions[0].leader_epoch),
            Some(0)
        );
        assert_eq!(
            after.topic("a").map(|t| t.partitions[0].leader_epoch),
            Some(5)
        );
    }

    #[test]
    fn duplicate_topic_name_rejects_whole_batch() {
        let image = MetadataImage::empty("c")
            .try_apply(&[topic("a", 1)])
            .expect("apply");
        let err = image
            .try_apply(&[topic("b", 2), topic("a", 3)])
            .expect_err("duplicate");
        assert_eq!(err, RejectReason::TopicAlreadyExists { name: "a".into() });
        assert!(image.topic("b").is_none());
    }

    #[test]
    fn colliding_topic_name_is_rejected_but_same_name_is_already_exists() {
        let image = MetadataImage::empty("c")
            .try_apply(&[topic("a.b", 1)])
            .expect("apply");
        assert_eq!(
            image.try_apply(&[topic("a_b", 2)]).expect_err("collision"),
            RejectReason::TopicCollision {
                name: "a_b".into(),
                existing: "a.b".into()
            }
        );
        assert_eq!(image.colliding_topic("a.b"), None);
        let removed = image
            .try_apply(&[MetadataRecord::RemoveTopic { topic_id: id(1) }])
            .expect("remove");
        assert!(removed.try_apply(&[topic("a_b", 2)]).is_ok());
    }

    #[test]
    fn reused_or_nil_topic_id_is_rejected() {
        let image = MetadataImage::empty("c")
            .try_apply(&[topic("a", 1)])
            .expect("apply");
        assert!(matches!(
            image.try_apply(&[topic("b", 1)]),
            Err(RejectReason::TopicIdInUse { .. })
        ));
        assert!(matches!(
            image.try_apply(&[topic("b", 0)]),
            Err(RejectReason::TopicIdInUse { .. })
        ));
    }

    #[test]
    fn partition_with_a_gap_or_unknown_topic_is_rejected() {
        let image = MetadataImage::empty("c")
            .try_apply(&[topic("a", 1)])
            .expect("apply");
        assert!(matches!(
            image.try_apply(&[partition(1, 1, 0)]),
            Err(RejectReason::PartitionOutOfOrder { .. })
        ));
        assert!(matches!(
            image.try_apply(&[partition(9, 0, 0)]),
            Err(RejectReason::UnknownTopicId { .. })
        ));
    }

    #[test]
    fn remove_topic_drops_name_id_and_configs() {
        let image = MetadataImage::empty("c")
            .try_apply(&[
                topic("a", 1),
                partition(1, 0, 0),
                topic_config("a", "x", Some("1")),
            ])
            .expect("apply");
        let image = image
            .try_apply(&[MetadataRecord::RemoveTopic { topic_id: id(1) }])
            .expect("remove");
        assert!(image.topic("a").is_none());
        assert!(image.topic_by_id(&id(1)).is_none());
        let again = image.try_apply(&[topic("a", 2)]).expect("recreate");
        assert!(again.topic("a").is_some_and(|t| t.configs.is_empty()));
        assert_eq!(
            image.try_apply(&[MetadataRecord::RemoveTopic { topic_id: id(1) }]),
            Err(RejectReason::UnknownTopicId { topic_id: id(1) })
        );
    }

    #[test]
    fn config_record_with_none_deletes_and_broker_configs_are_kept_per_resource() {
        let broker = |v: Option<&str>| MetadataRecord::ConfigRecord {
            resource_type: ConfigResourceType::Broker,
            resource_name: "".into(),
            name: "log.retention.ms".into(),
            value: v.map(String::from),
        };
        let image = MetadataImage::empty("c")
            .try_apply(&[broker(Some("5"))])
            .expect("set");
        assert_eq!(
            image
                .broker_config("")
                .and_then(|c| c.get("log.retention.ms"))
                .map(String::as_str),
            Some("5")
        );
        let image = image.try_apply(&[broker(None)]).expect("delete");
        assert!(image.broker_config("").is_none());
        assert!(matches!(
            image.try_apply(&[topic_config("nope", "x", Some("1"))]),
            Err(RejectReason::UnknownTopic { .. })
        ));
    }

    #[test]
    fn lenient_apply_skips_only_the_bad_record() {
        let image = MetadataImage::empty("c").apply(&[topic("a", 1), topic("a", 2), topic("b", 3)]);
        assert_eq!(image.topic("a").map(|t| t.topic_id), Some(id(1)));
        assert!(image.topic("b").is_some());
    }

    #[test]
    fn register_broker_replaces_previous_registration() {
        let reg = |port| {
            MetadataRecord::RegisterBroker(BrokerRegistration {
                node_id: 1,
                endpoints: vec![BrokerEndpoint {
                    name: "PLAINTEXT".into(),
                    host: "localhost".into(),
                    port,
                    security_protocol: 0,
                }],
                rack: None,
                ..Default::default()
            })
        };
        let image = MetadataImage::empty("c")
            .try_apply(&[reg(9092), reg(9093)])
            .expect("apply");
        assert_eq!(image.brokers.len(), 1);
        let endpoint = image.broker(1).and_then(|b| b.endpoint("PLAINTEXT"));
        assert_eq!(endpoint.map(|e| e.port), Some(9093));
    }

    #[test]
    fn snapshot_round_trip_restores_indexes() {
        let image = MetadataImage::empty("c")
            .try_apply(&[
                topic("a.b", 1),
                partition(1, 0, 3),
                topic_config("a.b", "k", Some("v")),
            ])
            .expect("apply");
        let json = serde_json::to_vec(&image.to_snapshot()).expect("serialize");
        let snap: ImageSnapshot = serde_json::from_slice(&json).expect("deserialize");
        let back = MetadataImage::from_snapshot(snap);
        assert_eq!(back, image);
        assert_eq!(back.colliding_topic("a_b"), Some("a.b"));
    }

    #[test]
    fn topic_name_validation_follows_kafka() {
        assert_eq!(
            validate_topic_name(""),
            Err("Topic name is invalid: the empty string is not allowed".into())
        );
        assert_eq!(
            validate_topic_name("."),
            Err("Topic name is invalid: '.' is not allowed".into())
        );
        assert_eq!(
            validate_topic_name(".."),
            Err("Topic name is invalid: '..' is not allowed".into())
        );
        assert_eq!(
            validate_topic_name("a b"),
            Err(
                "Topic name is invalid: 'a b' contains one or more characters other than \
                 ASCII alphanumerics, '.', '_' and '-'"
                    .into()
            )
        );
        assert!(validate_topic_name(&"x".repeat(249)).is_ok());
        assert!(validate_topic_name(&"x".repeat(250))
            .is_err_and(|m| m.contains("is longer than the max allowed length 249")));
        assert!(validate_topic_name("é").is_err());
        assert!(validate_topic_name("Ab-9_.x").is_ok());
    }

    #[test]
    fn producer_id_blocks_only_move_forward_and_survive_snapshots() {
        let record = |next: i64| MetadataRecord::ProducerIds {
            broker_id: 1,
            broker_epoch: 0,
            next_producer_id: next,
        };
        let image = MetadataImage::empty("c")
            .try_apply(&[record(1000)])
            .expect("first block");
        assert_eq!(image.next_producer_id, 1000);
        assert!(matches!(
            image.try_apply(&[record(1000)]),
            Err(RejectReason::ProducerIdsNotIncreasing { .. })
        ));
        let back = MetadataImage::from_snapshot(image.to_snapshot());
        assert_eq!(back.next_producer_id, 1000);
    }
}
