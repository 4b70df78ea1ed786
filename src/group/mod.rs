//! The group coordinator: every group of this node (classic protocol, classic.rs; KIP-848
//! consumer protocol, consumer.rs; online migration between them, migration.rs), their
//! committed offsets, and their durable form as records in the internal topic
//! `__consumer_offsets`.
//!
//! Handlers call in here; one std mutex guards the groups and is never held across an await.
//! Writes to `__consumer_offsets` go through the ordinary partition log, serialized by an async
//! lock so the in-memory state is applied in log order. At start the topic's log is replayed;
//! the log cleaner compacts it (cleanup.policy=compact) with tombstones. Timers (session,
//! rebalance and sync deadlines) are driven by [`run_timers`] on the broker's clock.

pub mod assignor;
pub mod classic;
pub mod consumer;
pub mod migration;
pub mod records;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use indexmap::IndexMap;
use kafka_protocol::error::ResponseError;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::broker::Broker;
use crate::clock::Clock;
use crate::config::{Config, ConsumerGroupMigrationPolicy};
use crate::error::Error;
use crate::metadata::controller::CreateTopic;
use crate::metadata::image::TopicImage;
use crate::protocol::record_batch::validate_records;

use classic::{
    CommittedOffset, Group, GroupState, JoinOutcome, JoinRequest, JoinResult, Limits, Now,
    SyncOutcome, SyncRequest, SyncResult,
};
use consumer::{ConsumerGroup, ConsumerGroupState, Heartbeat, HeartbeatResult, Topics};
use records::{GroupMetadataValue, OffsetCommitValue, OffsetsRecord};

/// The internal topic holding committed offsets and group metadata.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// How often session, rebalance and sync deadlines are checked.
const TIMER_TICK_MS: u64 = 100;

/// Kafka's group -> partition mapping: Utils.abs(groupId.hashCode()) % partitions, where
/// Utils.abs maps i32::MIN to 0 and hashCode is Java's String.hashCode over UTF-16 units.
pub fn partition_for(group_id: &str, partitions: i32) -> i32 {
    let mut h: i32 = 0;
    for unit in group_id.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(unit as i32);
    }
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % partitions.max(1)
}

/// One partition's committed offset and how far behind the log end it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionLag {
    pub group_id: String,
    pub topic: String,
    pub partition: i32,
    pub committed_offset: i64,
    /// The partition's high watermark (what a consumer can reach); -1 if the topic or
    /// partition no longer exists.
    pub log_end_offset: i64,
    pub lag: i64,
}

/// A group as ListGroups reports it.
#[derive(Clone, Debug)]
pub struct GroupListing {
    pub group_id: String,
    pub protocol_type: String,
    /// Kafka's state name of the group's type (classic: Empty, Stable, ...; consumer: Empty,
    /// Assigning, Reconciling, Stable).
    pub state: &'static str,
    /// "classic" or "consumer" (ListGroups v5, KIP-848).
    pub group_type: &'static str,
}

/// A group as DescribeGroups reports it.
#[derive(Clone, Debug)]
pub struct GroupDescription {
    pub state: GroupState,
    pub protocol_type: String,
    pub protocol_data: String,
    pub members: Vec<MemberDescription>,
}

#[derive(Clone, Debug)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

/// OffsetFetch's answer for one group: per topic, per partition, the committed offset if any.
pub type FetchedOffsets = Vec<(String, Vec<(i32, Option<CommittedOffset>)>)>;

/// Offsets of one group that expired, and whether the group goes with them.
struct Expired {
    group_id: String,
    keys: Vec<(String, i32)>,
    drop_group: bool,
}

/// One partition of an OffsetCommit.
#[derive(Clone, Debug)]
pub struct OffsetCommit {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

struct Inner {
    /// Classic groups, and the offsets of every group: a consumer-protocol group keeps its
    /// committed offsets in an Empty classic entry of the same id.
    groups: IndexMap<String, Group>,
    /// KIP-848 consumer-protocol groups.
    consumer_groups: IndexMap<String, ConsumerGroup>,
    rng: ChaCha20Rng,
}

impl Inner {
    /// A consumer group with members: the classic protocol may not use its id.
    /// Whether the id is served as a consumer group: it exists and no classic group with
    /// members shadows it (the classic entry of a consumer group only holds its offsets).
    fn is_consumer(&self, group_id: &str) -> bool {
        self.consumer_groups.contains_key(group_id)
            && self
                .groups
                .get(group_id)
                .is_none_or(|g| g.members.is_empty())
    }

    fn live_consumer_group(&self, group_id: &str) -> bool {
        self.consumer_groups
            .get(group_id)
            .is_some_and(|g| !g.members.is_empty())
    }
}

/// A downgrade applied in memory: the records that store it, and the consumer group it
/// replaced (put back if they cannot be stored).
struct Downgrade {
    writes: Vec<(Bytes, Option<Bytes>)>,
    group: ConsumerGroup,
}

/// A KIP-848 group as ConsumerGroupDescribe reports it.
#[derive(Clone, Debug)]
pub struct ConsumerGroupDescription {
    pub state: ConsumerGroupState,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub assignor: &'static str,
    pub members: Vec<consumer::ConsumerMember>,
    pub target: BTreeMap<String, assignor::Assignment>,
}

/// Every group of this node.
pub struct GroupCoordinator {
    inner: Mutex<Inner>,
    /// Serializes appends to __consumer_offsets with applying them in memory.
    write_lock: tokio::sync::Mutex<()>,
    clock: Arc<dyn Clock>,
    base: tokio::time::Instant,
    limits: Limits,
    min_session_timeout_ms: i32,
    max_session_timeout_ms: i32,
    offset_metadata_max_bytes: usize,
    retention_ms: i64,
    consumer_settings: consumer::Settings,
    /// `group.consumer.migration.policy`: which online conversions are allowed (KIP-848).
    migration_policy: ConsumerGroupMigrationPolicy,
}

impl std::fmt::Debug for GroupCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCoordinator")
            .field("groups", &self.lock().groups.len())
            .finish_non_exhaustive()
    }
}

impl GroupCoordinator {
    pub fn new(config: &Config, clock: Arc<dyn Clock>) -> Self {
        // Member ids only need to be unique; the seed comes from the clock, the one place
        // this node's randomness may come from without a seeded handle of its own.
        let seed = clock.wall_ms() as u64 ^ ((config.node_id as u64) << 48);
        GroupCoordinator {
            inner: Mutex::new(Inner {
                groups: IndexMap::new(),
                consumer_groups: IndexMap::new(),
                rng: ChaCha20Rng::seed_from_u64(seed),
            }),
            write_lock: tokio::sync::Mutex::new(()),
            base: clock.now(),
            clock,
            limits: Limits {
                group_max_size: usize::try_from(config.group_max_size.max(1)).unwrap_or(1),
                initial_rebalance_delay_ms: config.group_initial_rebalance_delay_ms.max(0) as i64,
            },
            min_session_timeout_ms: config.group_min_session_timeout_ms,
            max_session_timeout_ms: config.group_max_session_timeout_ms,
            offset_metadata_max_bytes: usize::try_from(config.offset_metadata_max_bytes.max(0))
                .unwrap_or(0),
            retention_ms: config.offsets_retention_minutes as i64 * 60_000,
            migration_policy: config.group_consumer_migration_policy,
            consumer_settings: consumer::Settings {
                heartbeat_interval_ms: config.group_consumer_heartbeat_interval_ms,
                session_timeout_ms: config.group_consumer_session_timeout_ms,
                max_size: usize::try_from(config.group_consumer_max_size.max(1)).unwrap_or(1),
                assignors: config
                    .group_consumer_assignors
                    .iter()
                    .filter_map(|name| assignor::Assignor::from_name(name))
                    .collect(),
            },
        }
    }

    /// The broker's `group.consumer.*` settings with the group's own configs (KIP-848 group
    /// configs, set on a GROUP resource) laid over them, read at each heartbeat so a change
    /// reaches the members on their next one.
    fn settings_for(&self, broker: &Broker, group_id: &str) -> Cow<'_, consumer::Settings> {
        let image = broker.image();
        let Some(overrides) = image.group_config(group_id) else {
            return Cow::Borrowed(&self.consumer_settings);
        };
        let mut settings = self.consumer_settings.clone();
        let defaults = (settings.session_timeout_ms, settings.heartbeat_interval_ms);
        (settings.session_timeout_ms, settings.heartbeat_interval_ms) =
            crate::config::group_timeouts(defaults, Some(overrides));
        Cow::Owned(settings)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now(&self) -> Now {
        Now {
            mono_ms: self.clock.now().duration_since(self.base).as_millis() as i64,
            wall_ms: self.clock.wall_ms(),
        }
    }

    /// JoinGroup: answers at once or when the rebalance moves on.
    pub async fn join(&self, broker: &Broker, group_id: &str, mut req: JoinRequest) -> JoinResult {
        if group_id.is_empty() {
            return JoinResult::error(ResponseError::InvalidGroupId, req.member_id);
        }
        if req.session_timeout_ms < self.min_session_timeout_ms
            || req.session_timeout_ms > self.max_session_timeout_ms
        {
            return JoinResult::error(ResponseError::InvalidSessionTimeout, req.member_id);
        }
        let now = self.now();
        let outcome = {
            let mut inner = self.lock();
            let prefix = req
                .group_instance_id
                .clone()
                .unwrap_or_else(|| req.client_id.clone());
            let mut raw = [0u8; 16];
            inner.rng.fill_bytes(&mut raw);
            req.new_member_id = format!(
                "{prefix}-{}",
                uuid::Builder::from_random_bytes(raw).into_uuid()
            );
            if inner.live_consumer_group(group_id) {
                // KIP-848: a classic member joins a consumer group with members as one of
                // its classic members (Kafka does so under every migration policy).
                Err(req)
            } else {
                // An empty consumer group is converted back to a classic one (its offsets stay).
                inner.consumer_groups.shift_remove(group_id);
                if !req.member_id.is_empty() && !inner.groups.contains_key(group_id) {
                    return JoinResult::error(ResponseError::UnknownMemberId, req.member_id);
                }
                let group = inner
                    .groups
                    .entry(group_id.to_string())
                    .or_insert_with(|| Group::new(group_id.to_string(), now));
                Ok(group.join(req, self.limits, now))
            }
        };
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(req) => return self.join_consumer_group(broker, group_id, req).await,
        };
        self.store_dirty_groups(broker).await;
        match outcome {
            JoinOutcome::Now(result) => result,
            JoinOutcome::Wait(rx) => tokio::select! {
                result = rx => result.unwrap_or_else(|_| {
                    JoinResult::error(ResponseError::CoordinatorNotAvailable, String::new())
                }),
                _ = broker.shutdown.cancelled() => {
                    JoinResult::error(ResponseError::CoordinatorNotAvailable, String::new())
                }
            },
        }
    }

    /// A classic JoinGroup into a consumer group: answered at once, once its changes are
    /// stored (Kafka's classicGroupJoinToConsumerGroup).
    async fn join_consumer_group(
        &self,
        broker: &Broker,
        group_id: &str,
        req: JoinRequest,
    ) -> JoinResult {
        let topics = topics_of(broker);
        let settings = self.settings_for(broker, group_id);
        let _write = self.write_lock.lock().await;
        let now = self.now();
        let (result, before, writes) = {
            let mut inner = self.lock();
            let Some(group) = inner
                .consumer_groups
                .get_mut(group_id)
                .filter(|g| !g.members.is_empty())
            else {
                // It stopped being a consumer group meanwhile: the member retries.
                return JoinResult::error(ResponseError::CoordinatorNotAvailable, req.member_id);
            };
            let before = group.clone();
            let result = group.classic_join(&req, &topics, &settings, now.mono_ms);
            if result.error.is_some() {
                *group = before;
                return result;
            }
            let writes = group.records_since(Some(&before));
            (result, before, writes)
        };
        if let Err(code) = self.store_consumer_records(broker, group_id, &writes).await {
            self.restore_consumer_group(group_id, Some(before), None);
            return JoinResult::error(code, req.member_id);
        }
        result
    }

    /// ConsumerGroupHeartbeat (KIP-848): joins, heartbeats, reconciles and leaves. What the
    /// heartbeat changed (member, epochs, target and current assignments) is written to
    /// __consumer_offsets before the member is answered; if it cannot be, the group is put
    /// back as it was and the member retries (COORDINATOR_NOT_AVAILABLE), as Kafka reverts
    /// its timeline state when a write fails.
    pub async fn consumer_heartbeat(
        &self,
        broker: &Broker,
        group_id: &str,
        mut req: Heartbeat,
        api_version: i16,
    ) -> HeartbeatResult {
        if let Err(e) = consumer::validate(group_id, &req, api_version, &self.consumer_settings) {
            return e;
        }
        let topics = topics_of(broker);
        let settings = self.settings_for(broker, group_id);
        // Held across the append, so the log holds the group's changes in the order they
        // were made and a failed write restores the state no other writer has built on.
        let _write = self.write_lock.lock().await;
        let now = self.now();
        let step = {
            let mut inner = self.lock();
            if req.member_epoch == 0 && req.member_id.is_empty() {
                // v0: the broker names the member (KIP-848); v1 clients name themselves.
                let mut raw = [0u8; 16];
                inner.rng.fill_bytes(&mut raw);
                req.member_id = uuid::Builder::from_random_bytes(raw)
                    .into_uuid()
                    .to_string();
            }
            if let Some(leaving) = self.downgrade_on_leave(&inner, group_id, &req) {
                match self.downgrade(&mut inner, group_id, &leaving, &topics, now) {
                    Some(downgrade) => Err((downgrade, leaving)),
                    None => {
                        return HeartbeatResult::error(ResponseError::CoordinatorNotAvailable, "")
                    }
                }
            } else {
                let before = inner.consumer_groups.get(group_id).cloned();
                let mut upgraded = None;
                if before.is_none() {
                    match self.upgrade(&mut inner, group_id, &req, &topics, &settings, now) {
                        Err(e) => return e,
                        Ok(undo) => upgraded = undo,
                    }
                }
                let Some(group) = inner.consumer_groups.get_mut(group_id) else {
                    return HeartbeatResult::error(ResponseError::CoordinatorNotAvailable, "");
                };
                let result = group.heartbeat(req, &topics, &settings, now.mono_ms);
                if before.is_none() && (group.members.is_empty() || result.error.is_some()) {
                    // The first heartbeat failed: the group was never created (or converted).
                    drop(inner);
                    self.restore_consumer_group(group_id, None, upgraded);
                    return result;
                }
                let mut writes = Vec::new();
                if upgraded.is_some() {
                    // The classic group's record goes first (Kafka's convertToConsumerGroup);
                    // its offsets stay, they are keyed on their own.
                    writes.push(OffsetsRecord::Group {
                        group_id: group_id.to_string(),
                        value: None,
                    });
                }
                writes.extend(group.records_since(before.as_ref()));
                Ok((result, before, writes, upgraded))
            }
        };
        let (result, before, writes, upgraded) = match step {
            Ok(step) => step,
            Err((downgrade, leaving)) => {
                return self
                    .finish_downgrade(broker, group_id, downgrade, leaving, &settings)
                    .await
            }
        };
        if let Err(code) = self.store_consumer_records(broker, group_id, &writes).await {
            self.restore_consumer_group(group_id, before, upgraded);
            return HeartbeatResult::error(code, "The coordinator could not store the group.");
        }
        if upgraded.is_some() {
            tracing::info!(group = %group_id, "upgraded classic group to consumer group (KIP-848)");
        }
        result
    }

    /// Kafka's getOrMaybeCreateConsumerGroup for a heartbeat of a group not served as a
    /// consumer group yet: a new group, the online upgrade of an empty classic group (its
    /// offsets stay), or of one with members when `group.consumer.migration.policy` allows it
    /// and the group qualifies (migration::can_upgrade). Returns the classic group's stored
    /// value when members were converted, to put them back if the write fails.
    fn upgrade(
        &self,
        inner: &mut Inner,
        group_id: &str,
        req: &Heartbeat,
        topics: &Topics,
        settings: &consumer::Settings,
        now: Now,
    ) -> Result<Option<GroupMetadataValue>, HeartbeatResult> {
        let not_consumer = || {
            HeartbeatResult::error(
                ResponseError::GroupIdNotFound,
                format!("Group {group_id} is not a consumer group."),
            )
        };
        let classic = inner.groups.get(group_id).filter(|g| !g.members.is_empty());
        if req.member_epoch != 0 {
            return Err(match classic {
                Some(_) => not_consumer(),
                None => HeartbeatResult::error(
                    ResponseError::GroupIdNotFound,
                    format!("Consumer group {group_id} not found."),
                ),
            });
        }
        let Some(classic) = classic else {
            let group = ConsumerGroup::new(group_id.to_string(), settings);
            inner.consumer_groups.insert(group_id.to_string(), group);
            return Ok(None);
        };
        if !self.migration_policy.is_upgrade_enabled() || !migration::can_upgrade(classic, settings)
        {
            return Err(not_consumer());
        }
        let group = migration::consumer_group_from_classic(classic, topics, settings, now.mono_ms)
            .map_err(|e| {
                tracing::warn!(group = %group_id, error = %e, "cannot upgrade classic group");
                HeartbeatResult::error(
                    ResponseError::GroupIdNotFound,
                    format!(
                        "Cannot upgrade the classic group {group_id} to consumer group because \
                         the embedded consumer protocol is malformed."
                    ),
                )
            })?;
        let stored = classic.to_metadata_value();
        if let Some(classic) = inner.groups.get_mut(group_id) {
            classic.hand_over_members(now);
        }
        inner.consumer_groups.insert(group_id.to_string(), group);
        Ok(Some(stored))
    }

    /// The member whose leave (epoch -1) downgrades the group: the last consumer-protocol
    /// member, with only classic members staying (Kafka's consumerGroupFenceMember with
    /// validateOnlineDowngradeWithFencedMember).
    fn downgrade_on_leave(&self, inner: &Inner, group_id: &str, req: &Heartbeat) -> Option<String> {
        if req.member_epoch != consumer::LEAVE_GROUP_MEMBER_EPOCH {
            return None;
        }
        let group = inner.consumer_groups.get(group_id)?;
        let member = group.members.get(&req.member_id)?;
        if req.instance_id.is_some() && member.instance_id != req.instance_id {
            return None;
        }
        self.can_downgrade(group, &req.member_id)
            .then(|| req.member_id.clone())
    }

    fn can_downgrade(&self, group: &ConsumerGroup, leaving: &str) -> bool {
        self.migration_policy.is_downgrade_enabled()
            && group.can_downgrade_without(leaving, self.limits.group_max_size)
    }

    /// Kafka's convertToClassicGroup: the consumer group goes (tombstones of all its records),
    /// its classic members become the classic group's (its GroupMetadataValue), and the
    /// classic group rebalances. Applied in memory now; the caller stores the records and
    /// undoes it if that fails.
    fn downgrade(
        &self,
        inner: &mut Inner,
        group_id: &str,
        leaving: &str,
        topics: &Topics,
        now: Now,
    ) -> Option<Downgrade> {
        let group = inner.consumer_groups.shift_remove(group_id)?;
        let classic = inner
            .groups
            .entry(group_id.to_string())
            .or_insert_with(|| Group::new(group_id.to_string(), now));
        let value = group.downgrade_into(leaving, classic, topics, now);
        classic.rebalance_after_downgrade(self.limits, now);
        classic.metadata_dirty = false;
        let mut writes: Vec<(Bytes, Option<Bytes>)> =
            group.tombstones().iter().map(records::encode).collect();
        writes.push((
            records::group_key(group_id),
            Some(records::group_value(&value)),
        ));
        Some(Downgrade { writes, group })
    }

    /// Stores a downgrade's records (the caller holds the write lock) and answers the
    /// leaving member; a failed write puts the consumer group back.
    async fn finish_downgrade(
        &self,
        broker: &Broker,
        group_id: &str,
        Downgrade { writes, group }: Downgrade,
        leaving: String,
        settings: &consumer::Settings,
    ) -> HeartbeatResult {
        if let Err(code) = self.append(broker, group_id, writes).await {
            tracing::warn!(group = %group_id, error = ?code, "could not store the downgrade");
            let now = self.now();
            let mut inner = self.lock();
            if let Some(classic) = inner.groups.get_mut(group_id) {
                classic.hand_over_members(now);
            }
            inner.consumer_groups.insert(group_id.to_string(), group);
            return HeartbeatResult::error(code, "The coordinator could not store the group.");
        }
        tracing::info!(group = %group_id, member = %leaving, "downgraded consumer group to classic group (KIP-848)");
        HeartbeatResult {
            member_id: leaving,
            member_epoch: consumer::LEAVE_GROUP_MEMBER_EPOCH,
            heartbeat_interval_ms: settings.heartbeat_interval_ms,
            ..Default::default()
        }
    }

    /// Appends KIP-848 group records (the caller holds the write lock).
    async fn store_consumer_records(
        &self,
        broker: &Broker,
        group_id: &str,
        records: &[OffsetsRecord],
    ) -> Result<(), ResponseError> {
        if records.is_empty() {
            return Ok(());
        }
        let write = records.iter().map(records::encode).collect();
        self.append(broker, group_id, write)
            .await
            .inspect_err(|code| {
                tracing::warn!(group = %group_id, error = ?code, "could not store consumer group");
            })
    }

    /// Puts a consumer group back as it was stored (None: it did not exist), and the classic
    /// group's members if this change was their upgrade.
    fn restore_consumer_group(
        &self,
        group_id: &str,
        before: Option<ConsumerGroup>,
        upgraded: Option<GroupMetadataValue>,
    ) {
        let now = self.now();
        let mut inner = self.lock();
        match before {
            Some(g) => {
                inner.consumer_groups.insert(group_id.to_string(), g);
            }
            None => {
                inner.consumer_groups.shift_remove(group_id);
            }
        }
        if let (Some(value), Some(classic)) = (upgraded, inner.groups.get_mut(group_id)) {
            // As a restarted coordinator would see the group: Stable with its members.
            classic.apply_metadata_value(value, now);
        }
    }

    /// ConsumerGroupDescribe of one group: GROUP_ID_NOT_FOUND (with Kafka's message) for an
    /// unknown group or one of the classic protocol.
    pub fn describe_consumer_group(
        &self,
        group_id: &str,
    ) -> Result<ConsumerGroupDescription, (ResponseError, String)> {
        let inner = self.lock();
        let Some(g) = inner.consumer_groups.get(group_id) else {
            let message = if inner.groups.contains_key(group_id) {
                format!("Group {group_id} is not a consumer group.")
            } else {
                format!("Group {group_id} not found.")
            };
            return Err((ResponseError::GroupIdNotFound, message));
        };
        Ok(ConsumerGroupDescription {
            state: g.state(),
            group_epoch: g.group_epoch,
            assignment_epoch: g.assignment_epoch,
            assignor: g.assignor.name(),
            members: g.members.values().cloned().collect(),
            target: g.target.clone(),
        })
    }

    /// Whether the id names a KIP-848 consumer group (DescribeGroups answers it "not a classic
    /// group", as Kafka 4.x).
    pub fn is_consumer_group(&self, group_id: &str) -> bool {
        self.lock().is_consumer(group_id)
    }

    /// OffsetFetch v9+ of a consumer group checks the member and its epoch (KIP-848); other
    /// groups, and requests without a member, are not checked.
    pub fn validate_offset_fetch(
        &self,
        group_id: &str,
        member_id: Option<&str>,
        member_epoch: i32,
    ) -> Option<ResponseError> {
        let inner = self.lock();
        let g = inner.consumer_groups.get(group_id)?;
        g.validate_fetch(member_id, member_epoch).err()
    }

    /// SyncGroup: the leader's assignment is stored in __consumer_offsets before anyone
    /// gets it, so a restarted coordinator hands out the same assignment.
    pub async fn sync(&self, broker: &Broker, group_id: &str, req: SyncRequest) -> SyncResult {
        let now = self.now();
        let topics = topics_of(broker);
        let outcome = {
            let mut inner = self.lock();
            if inner.live_consumer_group(group_id) {
                return match inner.consumer_groups.get_mut(group_id) {
                    Some(g) => g.classic_sync(&req, &topics, now.mono_ms),
                    None => SyncResult::error(ResponseError::UnknownMemberId),
                };
            }
            match inner.groups.get_mut(group_id) {
                None => return SyncResult::error(ResponseError::UnknownMemberId),
                Some(group) => group.sync(req, now),
            }
        };
        let rx = match outcome {
            SyncOutcome::Now(result) => return result,
            SyncOutcome::Wait(rx) => rx,
            SyncOutcome::LeaderAssigned { rx, generation_id } => {
                self.store_assignment(broker, group_id, generation_id).await;
                rx
            }
        };
        tokio::select! {
            result = rx => result.unwrap_or_else(|_| SyncResult::error(ResponseError::CoordinatorNotAvailable)),
            _ = broker.shutdown.cancelled() => SyncResult::error(ResponseError::CoordinatorNotAvailable),
        }
    }

    async fn store_assignment(&self, broker: &Broker, group_id: &str, generation_id: i32) {
        let _write = self.write_lock.lock().await;
        let value = {
            let inner = self.lock();
            match inner.groups.get(group_id) {
                Some(g) if g.generation_id == generation_id => g.to_metadata_value(),
                _ => return,
            }
        };
        let stored = self
            .append(
                broker,
                group_id,
                vec![(
                    records::group_key(group_id),
                    Some(records::group_value(&value)),
                )],
            )
            .await;
        let now = self.now();
        let mut inner = self.lock();
        if let Some(group) = inner.groups.get_mut(group_id) {
            match stored {
                Ok(()) => group.complete_sync(generation_id, now),
                Err(code) => group.fail_sync(generation_id, code, self.limits, now),
            }
        }
    }

    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
    ) -> Option<ResponseError> {
        let now = self.now();
        let mut inner = self.lock();
        if inner.live_consumer_group(group_id) {
            return match inner.consumer_groups.get_mut(group_id) {
                Some(g) => g.classic_heartbeat(member_id, instance_id, generation_id, now.mono_ms),
                None => Some(ResponseError::UnknownMemberId),
            };
        }
        match inner.groups.get_mut(group_id) {
            None => Some(ResponseError::UnknownMemberId),
            Some(g) => g.heartbeat(member_id, instance_id, generation_id, now),
        }
    }

    /// LeaveGroup of several members: one error per member, or one for the whole request.
    pub async fn leave(
        &self,
        broker: &Broker,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> Result<Vec<Option<ResponseError>>, ResponseError> {
        if self.lock().live_consumer_group(group_id) {
            return self.leave_consumer_group(broker, group_id, members).await;
        }
        let now = self.now();
        let results = {
            let mut inner = self.lock();
            let Some(group) = inner.groups.get_mut(group_id) else {
                return Err(ResponseError::UnknownMemberId);
            };
            if group.state == GroupState::Dead {
                return Err(ResponseError::CoordinatorNotAvailable);
            }
            members
                .iter()
                .map(|(member_id, instance)| {
                    group.leave(member_id, instance.as_deref(), self.limits, now)
                })
                .collect()
        };
        self.store_dirty_groups(broker).await;
        Ok(results)
    }

    /// LeaveGroup of classic members of a consumer group: removed at once, stored before the
    /// answer (Kafka's classicGroupLeaveToConsumerGroup).
    async fn leave_consumer_group(
        &self,
        broker: &Broker,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> Result<Vec<Option<ResponseError>>, ResponseError> {
        let _write = self.write_lock.lock().await;
        let (results, before, writes) = {
            let mut inner = self.lock();
            let Some(group) = inner.consumer_groups.get_mut(group_id) else {
                return Err(ResponseError::UnknownMemberId);
            };
            let before = group.clone();
            let results: Vec<Option<ResponseError>> = members
                .iter()
                .map(|(member_id, instance)| {
                    group.classic_leave(member_id, instance.as_deref()).err()
                })
                .collect();
            let writes = group.records_since(Some(&before));
            (results, before, writes)
        };
        if let Err(code) = self.store_consumer_records(broker, group_id, &writes).await {
            self.restore_consumer_group(group_id, Some(before), None);
            return Err(code);
        }
        Ok(results)
    }

    /// OffsetCommit: validated as Kafka's classic group does, then written to the log and
    /// applied. Returns one error per partition in request order.
    #[allow(clippy::too_many_arguments)]
    pub async fn commit_offsets(
        &self,
        broker: &Broker,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        instance_id: Option<&str>,
        commits: &[OffsetCommit],
        api_version: i16,
    ) -> Vec<Option<ResponseError>> {
        let all = |e: ResponseError| vec![Some(e); commits.len()];
        if group_id.is_empty() {
            return all(ResponseError::InvalidGroupId);
        }
        let _write = self.write_lock.lock().await;
        let now = self.now();
        {
            let mut inner = self.lock();
            if let Some(g) = inner.consumer_groups.get(group_id) {
                // KIP-848: the member epoch instead of the generation.
                if let Err(e) = g.validate_commit(member_id, generation_id, api_version) {
                    return all(e);
                }
                if !inner.groups.contains_key(group_id) {
                    let holder = Group::new(group_id.to_string(), now);
                    inner.groups.insert(group_id.to_string(), holder);
                }
            } else if !inner.groups.contains_key(group_id) {
                if generation_id >= 0 {
                    // v9+ says the group is unknown; older versions keep ILLEGAL_GENERATION.
                    return all(if api_version >= 9 {
                        ResponseError::GroupIdNotFound
                    } else {
                        ResponseError::IllegalGeneration
                    });
                }
                // A "simple" group: commits from admin tools or assign()-only consumers.
                inner
                    .groups
                    .insert(group_id.to_string(), Group::new(group_id.to_string(), now));
            }
            let Some(group) = inner.groups.get(group_id) else {
                return all(ResponseError::CoordinatorNotAvailable);
            };
            if !inner.consumer_groups.contains_key(group_id) {
                if let Err(e) = group.validate_commit(member_id, instance_id, generation_id) {
                    return all(e);
                }
            }
        }
        let mut results = Vec::with_capacity(commits.len());
        let mut writes = Vec::new();
        let mut accepted = Vec::new();
        for c in commits {
            let metadata = c.metadata.clone().unwrap_or_default();
            if metadata.len() > self.offset_metadata_max_bytes {
                results.push(Some(ResponseError::OffsetMetadataTooLarge));
                continue;
            }
            let value = OffsetCommitValue {
                offset: c.offset,
                leader_epoch: c.leader_epoch,
                metadata,
                commit_timestamp_ms: now.wall_ms,
            };
            writes.push((
                records::offset_key(group_id, &c.topic, c.partition),
                Some(records::offset_value(&value)),
            ));
            accepted.push((c.topic.clone(), c.partition, value));
            results.push(None);
        }
        if writes.is_empty() {
            return results;
        }
        if let Err(code) = self.append(broker, group_id, writes).await {
            return results.into_iter().map(|r| r.or(Some(code))).collect();
        }
        let mut inner = self.lock();
        if let Some(group) = inner.groups.get_mut(group_id) {
            for (topic, partition, v) in accepted {
                group.offsets.insert(
                    (topic, partition),
                    CommittedOffset {
                        offset: v.offset,
                        leader_epoch: v.leader_epoch,
                        metadata: v.metadata,
                        commit_timestamp_ms: v.commit_timestamp_ms,
                    },
                );
            }
        }
        results
    }

    /// OffsetFetch of one group: the requested partitions (or, with `None`, every committed
    /// one), a missing offset as `None`.
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        topics: Option<&[(String, Vec<i32>)]>,
    ) -> FetchedOffsets {
        let inner = self.lock();
        let group = inner.groups.get(group_id);
        match topics {
            Some(topics) => topics
                .iter()
                .map(|(topic, partitions)| {
                    let found = partitions
                        .iter()
                        .map(|p| {
                            let committed = group
                                .and_then(|g| g.offsets.get(&(topic.clone(), *p)))
                                .cloned();
                            (*p, committed)
                        })
                        .collect();
                    (topic.clone(), found)
                })
                .collect(),
            None => {
                let mut by_topic: BTreeMap<String, Vec<(i32, Option<CommittedOffset>)>> =
                    BTreeMap::new();
                if let Some(g) = group {
                    for ((topic, p), c) in &g.offsets {
                        by_topic
                            .entry(topic.clone())
                            .or_default()
                            .push((*p, Some(c.clone())));
                    }
                }
                for partitions in by_topic.values_mut() {
                    partitions.sort_by_key(|(p, _)| *p);
                }
                by_topic.into_iter().collect()
            }
        }
    }

    pub fn list_groups(&self) -> Vec<GroupListing> {
        let inner = self.lock();
        // A consumer group's id may also hold an Empty classic entry (its offsets): the
        // consumer group is listed unless the classic group has members.
        let consumer = |id: &str| inner.is_consumer(id);
        let classic = inner
            .groups
            .values()
            .filter(|g| g.state != GroupState::Dead && !consumer(&g.group_id))
            .map(|g| GroupListing {
                group_id: g.group_id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                state: g.state.name(),
                group_type: "classic",
            });
        let consumer_groups = inner
            .consumer_groups
            .values()
            .filter(|g| consumer(&g.group_id))
            .map(|g| GroupListing {
                group_id: g.group_id.clone(),
                protocol_type: "consumer".to_string(),
                state: g.state().name(),
                group_type: "consumer",
            });
        classic.chain(consumer_groups).collect()
    }

    pub fn describe_group(&self, group_id: &str) -> Option<GroupDescription> {
        let inner = self.lock();
        let g = inner.groups.get(group_id)?;
        let stable = g.state == GroupState::Stable;
        let protocol = g.protocol_name.clone().unwrap_or_default();
        let members = g
            .members
            .values()
            .map(|m| MemberDescription {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: if stable {
                    m.protocols
                        .iter()
                        .find(|(n, _)| *n == protocol)
                        .map(|(_, b)| b.clone())
                        .unwrap_or_default()
                } else {
                    Bytes::new()
                },
                assignment: if stable {
                    m.assignment.clone()
                } else {
                    Bytes::new()
                },
            })
            .collect();
        Some(GroupDescription {
            state: g.state,
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            protocol_data: if stable { protocol } else { String::new() },
            members,
        })
    }

    /// DeleteGroups: only Empty groups; their offsets and metadata get tombstones.
    pub async fn delete_group(&self, broker: &Broker, group_id: &str) -> Option<ResponseError> {
        if group_id.is_empty() {
            return Some(ResponseError::InvalidGroupId);
        }
        let _write = self.write_lock.lock().await;
        let tombstones = {
            let inner = self.lock();
            let consumer = inner.consumer_groups.get(group_id);
            if consumer.is_some_and(|g| !g.members.is_empty()) {
                return Some(ResponseError::NonEmptyGroup);
            }
            let consumer_tombstones: Vec<(Bytes, Option<Bytes>)> = consumer
                .map(|g| g.tombstones().iter().map(records::encode).collect())
                .unwrap_or_default();
            match inner.groups.get(group_id) {
                // A consumer group that never committed has no classic entry.
                None if consumer_tombstones.is_empty() => {
                    return Some(ResponseError::GroupIdNotFound)
                }
                None => consumer_tombstones,
                Some(g) => {
                    match g.state {
                        GroupState::Dead => return Some(ResponseError::GroupIdNotFound),
                        GroupState::Empty => {}
                        _ => return Some(ResponseError::NonEmptyGroup),
                    }
                    let mut t: Vec<(Bytes, Option<Bytes>)> = g
                        .offsets
                        .keys()
                        .map(|(topic, p)| (records::offset_key(group_id, topic, *p), None))
                        .collect();
                    t.push((records::group_key(group_id), None));
                    t.extend(consumer_tombstones);
                    t
                }
            }
        };
        if let Err(code) = self.append(broker, group_id, tombstones).await {
            return Some(code);
        }
        let now = self.now();
        let mut inner = self.lock();
        inner.consumer_groups.shift_remove(group_id);
        if let Some(mut g) = inner.groups.shift_remove(group_id) {
            g.mark_dead(now);
        }
        None
    }

    /// OffsetDelete: the group-level error, or one error per (topic, partition).
    pub async fn delete_offsets(
        &self,
        broker: &Broker,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> Result<Vec<Option<ResponseError>>, ResponseError> {
        let _write = self.write_lock.lock().await;
        let (results, tombstones) = {
            let inner = self.lock();
            let Some(g) = inner.groups.get(group_id) else {
                return Err(ResponseError::GroupIdNotFound);
            };
            match g.state {
                GroupState::Dead => return Err(ResponseError::GroupIdNotFound),
                GroupState::Empty => {}
                _ if g.protocol_type.as_deref() != Some("consumer") => {
                    return Err(ResponseError::NonEmptyGroup)
                }
                _ => {}
            }
            let subscribed = match inner.consumer_groups.get(group_id) {
                Some(cg) => Some(cg.subscribed_topic_names(&topics_of(broker))),
                None => g.subscribed_topics(),
            };
            let mut results = Vec::new();
            let mut tombstones = Vec::new();
            for (topic, p) in partitions {
                let is_subscribed = subscribed.as_ref().is_none_or(|s| s.contains(topic));
                if is_subscribed {
                    results.push(Some(ResponseError::GroupSubscribedToTopic));
                    continue;
                }
                if g.offsets.contains_key(&(topic.clone(), *p)) {
                    tombstones.push((records::offset_key(group_id, topic, *p), None));
                }
                results.push(None);
            }
            (results, tombstones)
        };
        if !tombstones.is_empty() {
            self.append(broker, group_id, tombstones.clone()).await?;
            let mut inner = self.lock();
            if let Some(g) = inner.groups.get_mut(group_id) {
                for ((topic, p), r) in partitions.iter().zip(&results) {
                    if r.is_none() {
                        g.offsets.shift_remove(&(topic.clone(), *p));
                    }
                }
            }
        }
        Ok(results)
    }

    /// Committed offset, log end (high watermark) and lag of every committed partition of
    /// every group, for the metrics endpoint.
    pub fn lag(&self, broker: &Broker) -> Vec<PartitionLag> {
        let committed: Vec<(String, String, i32, i64)> = {
            let inner = self.lock();
            inner
                .groups
                .values()
                .flat_map(|g| {
                    g.offsets
                        .iter()
                        .map(|((t, p), c)| (g.group_id.clone(), t.clone(), *p, c.offset))
                })
                .collect()
        };
        let image = broker.image();
        committed
            .into_iter()
            .map(|(group_id, topic, partition, committed_offset)| {
                let log_end_offset = image
                    .topic(&topic)
                    .and_then(|t| broker.partition(t, partition).ok())
                    .map(|p| p.high_watermark())
                    .unwrap_or(-1);
                let lag = if log_end_offset < 0 || committed_offset < 0 {
                    -1
                } else {
                    (log_end_offset - committed_offset).max(0)
                };
                PartitionLag {
                    group_id,
                    topic,
                    partition,
                    committed_offset,
                    log_end_offset,
                    lag,
                }
            })
            .collect()
    }

    /// Session, rebalance and sync deadlines of every group.
    pub async fn tick(&self, broker: &Broker) {
        let now = self.now();
        {
            let mut inner = self.lock();
            for g in inner.groups.values_mut() {
                g.tick(self.limits, now);
            }
        }
        self.store_dirty_groups(broker).await;
        // KIP-848 session and revocation timeouts: the removals are stored like a
        // heartbeat's changes; one that cannot be is undone and retried at the next tick.
        let _write = self.write_lock.lock().await;
        let topics = topics_of(broker);
        let mut expired: Vec<(String, ConsumerGroup, Vec<OffsetsRecord>)> = Vec::new();
        let mut downgrades = Vec::new();
        {
            let mut inner = self.lock();
            let ids: Vec<String> = inner
                .consumer_groups
                .values()
                .filter(|g| !g.expired_members(now.mono_ms).is_empty())
                .map(|g| g.group_id.clone())
                .collect();
            for id in ids {
                let Some(g) = inner.consumer_groups.get_mut(&id) else {
                    continue;
                };
                let gone = g.expired_members(now.mono_ms);
                if let [leaving] = gone.as_slice() {
                    // The last consumer-protocol member fenced: the classic members take
                    // the group back (Kafka's consumerGroupFenceMember).
                    let leaving = leaving.clone();
                    if self.can_downgrade(g, &leaving) {
                        if let Some(d) = self.downgrade(&mut inner, &id, &leaving, &topics, now) {
                            tracing::info!(group = %id, member = %leaving, "consumer group member expired");
                            downgrades.push((id, d, leaving));
                        }
                        continue;
                    }
                }
                let before = g.clone();
                for member in g.tick(now.mono_ms) {
                    tracing::info!(group = %g.group_id, member = %member, "consumer group member expired");
                }
                let writes = g.records_since(Some(&before));
                expired.push((id, before, writes));
            }
        }
        for (group_id, before, writes) in expired {
            if self
                .store_consumer_records(broker, &group_id, &writes)
                .await
                .is_err()
            {
                self.restore_consumer_group(&group_id, Some(before), None);
            }
        }
        for (group_id, downgrade, leaving) in downgrades {
            let settings = self.consumer_settings.clone();
            self.finish_downgrade(broker, &group_id, downgrade, leaving, &settings)
                .await;
        }
    }

    /// offsets.retention.minutes: offsets of an Empty group expire that long after the group
    /// became Empty (or after their commit, if later); a group left with neither members nor
    /// offsets is removed with a tombstone.
    pub async fn expire_offsets(&self, broker: &Broker) {
        let _write = self.write_lock.lock().await;
        let now = self.now();
        let expired: Vec<Expired> = {
            let inner = self.lock();
            inner
                .groups
                .values()
                .filter(|g| !inner.live_consumer_group(&g.group_id))
                .filter_map(|g| {
                    let keys = g.expired_offsets(now.wall_ms, self.retention_ms);
                    // A group with members keeps its metadata even when all its offsets
                    // expired (KIP-496 expiry of unsubscribed topics).
                    let drop_group = keys.len() == g.offsets.len() && g.state == GroupState::Empty;
                    (!keys.is_empty()).then(|| Expired {
                        group_id: g.group_id.clone(),
                        keys,
                        drop_group,
                    })
                })
                .collect()
        };
        for Expired {
            group_id,
            keys,
            drop_group,
        } in expired
        {
            let mut tombstones: Vec<(Bytes, Option<Bytes>)> = keys
                .iter()
                .map(|(t, p)| (records::offset_key(&group_id, t, *p), None))
                .collect();
            if drop_group {
                tombstones.push((records::group_key(&group_id), None));
            }
            if self.append(broker, &group_id, tombstones).await.is_err() {
                continue;
            }
            tracing::info!(group = %group_id, offsets = keys.len(), "expired committed offsets");
            let mut inner = self.lock();
            if let Some(g) = inner.groups.get_mut(&group_id) {
                for k in &keys {
                    g.offsets.shift_remove(k);
                }
                if drop_group && g.offsets.is_empty() && g.members.is_empty() {
                    inner.groups.shift_remove(&group_id);
                }
            }
        }
    }

    /// Writes the metadata of groups whose state changed in a way Kafka stores (a generation
    /// ending Empty, a static member replaced).
    async fn store_dirty_groups(&self, broker: &Broker) {
        let dirty: Vec<(String, GroupMetadataValue)> = {
            let mut inner = self.lock();
            inner
                .groups
                .values_mut()
                .filter(|g| g.metadata_dirty)
                .map(|g| {
                    g.metadata_dirty = false;
                    (g.group_id.clone(), g.to_metadata_value())
                })
                .collect()
        };
        if dirty.is_empty() {
            return;
        }
        let _write = self.write_lock.lock().await;
        for (group_id, value) in dirty {
            let write = vec![(
                records::group_key(&group_id),
                Some(records::group_value(&value)),
            )];
            if let Err(code) = self.append(broker, &group_id, write).await {
                tracing::warn!(group = %group_id, error = ?code, "could not store group metadata");
            }
        }
    }

    /// Appends records to the group's partition of __consumer_offsets and waits until they
    /// are durable (acks=-1 on one node: fsynced), creating the topic on first use.
    async fn append(
        &self,
        broker: &Broker,
        group_id: &str,
        records: Vec<(Bytes, Option<Bytes>)>,
    ) -> Result<(), ResponseError> {
        let topic = ensure_offsets_topic(broker).await.map_err(|e| {
            tracing::warn!(error = %e, "could not create {OFFSETS_TOPIC}");
            ResponseError::CoordinatorNotAvailable
        })?;
        let index = partition_for(group_id, topic.partitions.len() as i32);
        // Only the leader of the group's partition coordinates it (Kafka's NOT_COORDINATOR).
        let partition = broker
            .leader(&topic, index)
            .map_err(|_| ResponseError::NotCoordinator)?;
        let batch = encode_batch(records, self.clock.wall_ms())
            .map_err(|_| ResponseError::CoordinatorNotAvailable)?;
        let unavailable = |e: Error| {
            tracing::warn!(error = %e, "could not write to {OFFSETS_TOPIC}");
            ResponseError::CoordinatorNotAvailable
        };
        let max_bytes = partition.log.config().max_message_bytes;
        let validated = validate_records(&batch, max_bytes).map_err(|e| match e {
            Error::MessageTooLarge { .. } | Error::RecordListTooLarge { .. } => {
                ResponseError::InvalidCommitOffsetSize
            }
            e => unavailable(e),
        })?;
        // acks=all, as Kafka's coordinators write (offsets.commit.timeout.ms bounds it).
        broker
            .replicas
            .append_records(
                &partition,
                batch,
                &validated,
                crate::replication::ACKS_ALL,
                std::time::Duration::from_millis(
                    broker.config.offsets_commit_timeout_ms.max(1) as u64
                ),
            )
            .await
            .map_err(unavailable)?;
        broker.notify_appended();
        Ok(())
    }

    /// Rebuilds every group and committed offset by replaying __consumer_offsets.
    pub async fn load(&self, broker: &Broker) -> crate::error::Result<()> {
        let image = broker.image();
        let Some(topic) = image.topic(OFFSETS_TOPIC) else {
            return Ok(());
        };
        let now = self.now();
        let mut replayed = 0usize;
        let mut skipped = 0usize;
        let mut loading: IndexMap<String, consumer::LoadedGroup> = IndexMap::new();
        for index in 0..topic.partitions.len() as i32 {
            // Only partitions this broker hosts hold groups it can load.
            let partition = match broker.partition(topic, index) {
                Ok(p) => p,
                Err(Error::NotLeaderOrFollower(_)) => continue,
                Err(e) => return Err(e),
            };
            let mut offset = partition.log_start_offset();
            let end = partition.log_end_offset();
            while offset < end {
                let mut bytes = partition.read(offset, 1 << 20, true, end)?;
                if bytes.is_empty() {
                    break;
                }
                let mut next = offset;
                while !bytes.is_empty() {
                    // The log cleaner leaves empty batches (the last of a segment); their
                    // last offset still moves the replay on.
                    if let Ok(h) = crate::protocol::record_batch::parse_header(&bytes) {
                        next = next.max(h.last_offset() + 1);
                    }
                    let set = RecordBatchDecoder::decode(&mut bytes)
                        .map_err(|e| Error::CorruptMessage(format!("{OFFSETS_TOPIC}: {e}")))?;
                    for record in set.records {
                        next = next.max(record.offset + 1);
                        if record.offset < offset {
                            continue;
                        }
                        let Some(key) = &record.key else { continue };
                        match records::decode(key, record.value.as_deref()) {
                            Some(r) => {
                                self.apply_loaded(r, now, &mut loading);
                                replayed += 1;
                            }
                            None => skipped += 1,
                        }
                    }
                }
                if next <= offset {
                    break;
                }
                offset = next;
            }
        }
        if skipped > 0 {
            // A newer Kafka's record types (share or streams groups) or damaged records.
            tracing::warn!(
                records = skipped,
                "skipped {OFFSETS_TOPIC} records this broker cannot decode"
            );
        }
        let mut inner = self.lock();
        for (group_id, loaded) in loading {
            let members = loaded.members.len();
            let settings = self.settings_for(broker, &group_id);
            let group =
                ConsumerGroup::from_loaded(group_id.clone(), loaded, &settings, now.mono_ms);
            tracing::info!(group = %group_id, members, epoch = group.group_epoch, "loaded consumer group");
            inner.consumer_groups.insert(group_id, group);
        }
        tracing::info!(
            records = replayed,
            groups = inner.groups.len(),
            consumer_groups = inner.consumer_groups.len(),
            "loaded {OFFSETS_TOPIC}"
        );
        Ok(())
    }

    /// Applies one replayed record; KIP-848 groups are gathered in `loading` and built once
    /// the whole topic is read.
    fn apply_loaded(
        &self,
        record: OffsetsRecord,
        now: Now,
        loading: &mut IndexMap<String, consumer::LoadedGroup>,
    ) {
        let mut inner = self.lock();
        match record {
            OffsetsRecord::Offset {
                group_id,
                topic,
                partition,
                value,
            } => {
                let group = inner
                    .groups
                    .entry(group_id.clone())
                    .or_insert_with(|| Group::new(group_id, now));
                match value {
                    Some(v) => {
                        group.offsets.insert(
                            (topic, partition),
                            CommittedOffset {
                                offset: v.offset,
                                leader_epoch: v.leader_epoch,
                                metadata: v.metadata,
                                commit_timestamp_ms: v.commit_timestamp_ms,
                            },
                        );
                    }
                    None => {
                        group.offsets.shift_remove(&(topic, partition));
                    }
                }
            }
            OffsetsRecord::Group { group_id, value } => match value {
                Some(v) => {
                    if !v.members.is_empty() {
                        // The id went back to the classic protocol after this consumer group.
                        loading.shift_remove(&group_id);
                    }
                    let group = inner
                        .groups
                        .entry(group_id.clone())
                        .or_insert_with(|| Group::new(group_id, now));
                    group.apply_metadata_value(v, now);
                }
                None => {
                    // The group's metadata goes, not its offsets: they have records of their
                    // own (with their own tombstones), and an upgrade to a consumer group
                    // (KIP-848) writes this tombstone while the offsets stay the group's.
                    let keep = inner.groups.get_mut(&group_id).is_some_and(|g| {
                        g.hand_over_members(now);
                        !g.offsets.is_empty()
                    });
                    if !keep {
                        inner.groups.shift_remove(&group_id);
                    }
                }
            },
            OffsetsRecord::ConsumerGroupMetadata {
                group_id,
                value: None,
            } => {
                loading.shift_remove(&group_id);
            }
            OffsetsRecord::ConsumerGroupPartitionMetadata { .. } => {
                // Deprecated by KIP-1101; never written by this broker.
            }
            OffsetsRecord::ConsumerGroupMetadata { ref group_id, .. }
            | OffsetsRecord::ConsumerGroupMemberMetadata { ref group_id, .. }
            | OffsetsRecord::ConsumerGroupTargetAssignmentMetadata { ref group_id, .. }
            | OffsetsRecord::ConsumerGroupTargetAssignmentMember { ref group_id, .. }
            | OffsetsRecord::ConsumerGroupCurrentMemberAssignment { ref group_id, .. } => {
                // A tombstone of a group not (or no longer) loaded has nothing to remove.
                if record.is_tombstone() {
                    if let Some(g) = loading.get_mut(group_id) {
                        g.apply(record);
                    }
                } else {
                    loading.entry(group_id.clone()).or_default().apply(record);
                }
            }
        }
    }
}

/// The topics a consumer group's subscriptions resolve against.
fn topics_of(broker: &Broker) -> Topics {
    let image = broker.image();
    Topics {
        by_name: image
            .topics
            .values()
            .map(|t| (t.name.clone(), (t.topic_id, t.partitions.len() as i32)))
            .collect(),
    }
}

/// The __consumer_offsets topic, created through the metadata quorum on first use (as Kafka
/// does when a coordinator is first looked up).
pub async fn ensure_offsets_topic(broker: &Broker) -> crate::error::Result<Arc<TopicImage>> {
    if let Some(t) = broker.image().topics.get(OFFSETS_TOPIC) {
        return Ok(t.clone());
    }
    let mut configs = IndexMap::new();
    configs.insert("cleanup.policy".to_string(), "compact".to_string());
    configs.insert(
        "segment.bytes".to_string(),
        broker.config.offsets_topic_segment_bytes.to_string(),
    );
    let created = broker
        .create_topic(CreateTopic {
            name: OFFSETS_TOPIC.to_string(),
            num_partitions: broker.config.offsets_topic_num_partitions.max(1),
            replication_factor: broker.config.offsets_topic_replication_factor,
            configs,
            validate_only: false,
        })
        .await;
    match created {
        Ok(_) | Err(Error::TopicAlreadyExists(_)) => {}
        Err(e) => return Err(e),
    }
    broker
        .image()
        .topics
        .get(OFFSETS_TOPIC)
        .cloned()
        .ok_or(Error::UnknownTopicOrPartition)
}

fn encode_batch(records: Vec<(Bytes, Option<Bytes>)>, now_ms: i64) -> Result<BytesMut, ()> {
    let records: Vec<Record> = records
        .into_iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // kafka-protocol starts a new batch where offset - sequence changes; one batch
            // is one atomic append, so keep the difference constant.
            sequence: i as i32,
            timestamp: now_ms,
            key: Some(key),
            value,
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|_| ())?;
    Ok(buf)
}

/// Drives the coordinator's timers and the offsets expiry until shutdown.
pub async fn run_timers(broker: Arc<Broker>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(TIMER_TICK_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let retention_check_ms = broker.config.offsets_retention_check_interval_ms.max(1) as u64;
    let mut expiry = tokio::time::interval(std::time::Duration::from_millis(retention_check_ms));
    expiry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = broker.shutdown.cancelled() => return,
            _ = tick.tick() => broker.groups.tick(&broker).await,
            _ = expiry.tick() => broker.groups.expire_offsets(&broker).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_for_matches_kafkas_java_hash() {
        // Java: "my-group".hashCode() == 1252210426... computed by the same recurrence; the
        // values below are what Kafka's coordinator picks with 50 partitions.
        assert_eq!(partition_for("", 50), 0);
        assert_eq!(partition_for("a", 50), 97 % 50);
        // "polygenelubricants".hashCode() == Integer.MIN_VALUE: Utils.abs maps it to 0.
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        // Negative hash codes use their absolute value: "test-group-ÿ" style inputs.
        let h = "console-consumer-12345"
            .encode_utf16()
            .fold(0i32, |h, u| h.wrapping_mul(31).wrapping_add(u as i32));
        assert_eq!(
            partition_for("console-consumer-12345", 50),
            h.wrapping_abs() % 50
        );
    }
}
