//! One hosted partition's replication state over its log: role (leader or follower), leader
//! and partition epochs, replicas and ISR as the metadata image last gave them, and, on the
//! leader, each follower's log end offset, from which the high watermark advances (Kafka's
//! `cluster.Partition` with its `Replica` states).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::BytesMut;
use tokio::sync::watch;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::log::{AppendInfo, PartitionLog};
use crate::metadata::image::PartitionImage;
use crate::protocol::record_batch::ValidatedRecords;
use crate::topic_partition::TopicPartition;

/// Kafka's `LeaderConstants.NO_LEADER`.
const NO_LEADER: i32 = -1;

/// What this broker is for the partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Leader,
    /// Follows `leader` (-1: the partition has no leader; nothing to fetch from).
    Follower {
        leader: i32,
    },
}

/// The leader's view of one follower (Kafka's ReplicaState).
#[derive(Clone, Copy, Debug)]
struct FollowerState {
    /// -1 until the follower's first fetch in this leader epoch.
    log_end_offset: i64,
    /// The last time the follower had everything the leader had (Kafka's lastCaughtUpTimeMs).
    last_caught_up_ms: i64,
    /// The leader's log end offset at the follower's previous fetch, and that fetch's time.
    last_fetch_leader_log_end_offset: i64,
    last_fetch_ms: i64,
}

#[derive(Debug)]
struct ReplicaState {
    role: Role,
    leader_epoch: i32,
    partition_epoch: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
    /// Followers of this leader by broker id (empty on a follower).
    followers: BTreeMap<i32, FollowerState>,
    /// Where this leader's epoch began in the log.
    leader_epoch_start_offset: i64,
    /// An AlterPartition is on its way; no other is sent until the image answers it.
    isr_change_pending: bool,
    /// The partition left this broker (deleted, reassigned): every wait ends.
    removed: bool,
}

/// What applying a partition's image changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    None,
    /// Became leader at a new leader epoch.
    Leader,
    /// Follows a (new) leader at a new leader epoch.
    Follower {
        leader: i32,
    },
    /// Same role and leader epoch; the ISR or replicas changed.
    Updated,
}

/// An ISR change the leader asks the controller for (Kafka's AlterPartition, KIP-497).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsrChange {
    pub topic_id: Uuid,
    pub partition: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub new_isr: Vec<i32>,
}

/// One partition this broker is a replica of.
#[derive(Debug)]
pub struct Partition {
    pub tp: TopicPartition,
    pub topic_id: Uuid,
    pub log: Arc<PartitionLog>,
    node_id: i32,
    state: Mutex<ReplicaState>,
    /// Bumped whenever the high watermark moves or the role changes, so acks=all waits
    /// (this partition's delayed produces) wake, and only they.
    changed: watch::Sender<u64>,
}

fn lock(m: &Mutex<ReplicaState>) -> MutexGuard<'_, ReplicaState> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Partition {
    pub fn new(tp: TopicPartition, topic_id: Uuid, log: Arc<PartitionLog>, node_id: i32) -> Self {
        Partition {
            tp,
            topic_id,
            log,
            node_id,
            state: Mutex::new(ReplicaState {
                role: Role::Follower { leader: NO_LEADER },
                leader_epoch: -1,
                partition_epoch: -1,
                replicas: Vec::new(),
                isr: Vec::new(),
                followers: BTreeMap::new(),
                leader_epoch_start_offset: 0,
                isr_change_pending: false,
                removed: false,
            }),
            changed: watch::Sender::new(0),
        }
    }

    fn wake(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn role(&self) -> Role {
        lock(&self.state).role
    }

    pub fn leader_epoch(&self) -> i32 {
        lock(&self.state).leader_epoch
    }

    pub fn partition_epoch(&self) -> i32 {
        lock(&self.state).partition_epoch
    }

    pub fn isr(&self) -> Vec<i32> {
        lock(&self.state).isr.clone()
    }

    pub fn is_leader(&self) -> bool {
        lock(&self.state).role == Role::Leader
    }

    /// Applies the image's view of the partition (Kafka's makeLeader / makeFollower). Only a
    /// newer partition epoch changes anything, so an image applied twice, or an older one
    /// after a newer one, is a no-op.
    pub fn apply(&self, image: &PartitionImage, now_ms: i64) -> Result<Transition> {
        let mut st = lock(&self.state);
        if image.partition_epoch <= st.partition_epoch && image.leader_epoch <= st.leader_epoch {
            return Ok(Transition::None);
        }
        let new_epoch = image.leader_epoch != st.leader_epoch;
        let role = if image.leader == self.node_id {
            Role::Leader
        } else {
            Role::Follower {
                leader: image.leader,
            }
        };
        let transition = match role {
            Role::Leader if new_epoch || st.role != Role::Leader => {
                st.leader_epoch_start_offset = self.log.assign_leader_epoch(image.leader_epoch)?;
                // Followers start unknown; those in the ISR count as caught up now, so none
                // is dropped before it had the chance to fetch (Kafka resets them the same).
                st.followers = image
                    .replicas
                    .iter()
                    .filter(|r| **r != self.node_id)
                    .map(|r| {
                        let caught_up = if image.isr.contains(r) { now_ms } else { 0 };
                        (
                            *r,
                            FollowerState {
                                log_end_offset: -1,
                                last_caught_up_ms: caught_up,
                                last_fetch_leader_log_end_offset: -1,
                                last_fetch_ms: 0,
                            },
                        )
                    })
                    .collect();
                Transition::Leader
            }
            Role::Follower { leader } if new_epoch || st.role != role => {
                st.followers.clear();
                Transition::Follower { leader }
            }
            _ => Transition::Updated,
        };
        if role == Role::Leader {
            // A replica added by reassignment gets a follower state too.
            for r in image.replicas.iter().filter(|r| **r != self.node_id) {
                st.followers.entry(*r).or_insert(FollowerState {
                    log_end_offset: -1,
                    last_caught_up_ms: 0,
                    last_fetch_leader_log_end_offset: -1,
                    last_fetch_ms: 0,
                });
            }
        }
        st.role = role;
        st.leader_epoch = image.leader_epoch;
        st.partition_epoch = image.partition_epoch;
        st.replicas = image.replicas.clone();
        st.isr = image.isr.clone();
        st.isr_change_pending = false;
        if role == Role::Leader {
            self.maybe_advance_high_watermark(&st);
        }
        drop(st);
        self.wake();
        Ok(transition)
    }

    /// The partition left this broker: waits end with NOT_LEADER_OR_FOLLOWER.
    pub fn mark_removed(&self) {
        lock(&self.state).removed = true;
        self.wake();
    }

    /// Kafka's maybeIncrementLeaderHW: the smallest log end offset over the ISR (the leader's
    /// own included); a member whose offset is unknown holds it where it is.
    fn maybe_advance_high_watermark(&self, st: &ReplicaState) -> bool {
        let mut hw = self.log.log_end_offset();
        for r in st.isr.iter().filter(|r| **r != self.node_id) {
            match st.followers.get(r) {
                Some(f) if f.log_end_offset >= 0 => hw = hw.min(f.log_end_offset),
                _ => return false,
            }
        }
        let moved = self.log.advance_high_watermark(hw);
        if moved {
            self.wake();
        }
        moved
    }

    /// The checks before a leader appends: leader at `expected_epoch` (-1: any), and with
    /// acks=all an ISR of at least min.insync.replicas (Kafka's NOT_ENOUGH_REPLICAS).
    fn check_leader(&self, st: &ReplicaState, acks_all: bool) -> Result<()> {
        if st.role != Role::Leader || st.removed {
            return Err(Error::NotLeaderOrFollower(format!(
                "broker {} is not the leader of {}",
                self.node_id, self.tp
            )));
        }
        let min_isr = self.log.config().min_insync_replicas;
        if acks_all && st.isr.len() < min_isr {
            return Err(Error::NotEnoughReplicas(format!(
                "The size of the current ISR {:?} is insufficient to satisfy the min.isr \
                 requirement of {min_isr} for partition {}",
                st.isr, self.tp
            )));
        }
        Ok(())
    }

    /// Appends as the leader, stamping the leader epoch. acks=all waits afterwards with
    /// [`Partition::wait_replicated`].
    pub async fn append_as_leader(
        &self,
        records: BytesMut,
        validated: &ValidatedRecords,
        acks_all: bool,
    ) -> Result<AppendInfo> {
        let epoch = {
            let st = lock(&self.state);
            self.check_leader(&st, acks_all)?;
            st.leader_epoch
        };
        let info = self.log.append(records, validated, epoch).await?;
        let st = lock(&self.state);
        if st.role == Role::Leader {
            self.maybe_advance_high_watermark(&st);
        }
        Ok(info)
    }

    /// acks=all (Kafka's DelayedProduce): waits until the high watermark passes
    /// `last_offset`. A leader alone in its ISR makes the records durable first, as one node
    /// always has. Ends with NOT_ENOUGH_REPLICAS_AFTER_APPEND when the ISR shrank below
    /// min.insync.replicas meanwhile, NOT_LEADER_OR_FOLLOWER when leadership moved, and
    /// REQUEST_TIMED_OUT after `timeout`.
    pub async fn wait_replicated(&self, last_offset: i64, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        let alone = lock(&self.state).isr == [self.node_id];
        if alone {
            match tokio::time::timeout_at(deadline, self.log.flush_to(last_offset)).await {
                Ok(result) => result?,
                Err(_) => return Err(Error::RequestTimedOut),
            }
        }
        let epoch = self.leader_epoch();
        let mut changed = self.changed.subscribe();
        loop {
            changed.mark_unchanged();
            {
                let st = lock(&self.state);
                if st.removed || st.role != Role::Leader || st.leader_epoch != epoch {
                    return Err(Error::NotLeaderOrFollower(format!(
                        "leadership of {} moved while the append waited for replication",
                        self.tp
                    )));
                }
                if self.log.high_watermark() > last_offset {
                    let min_isr = self.log.config().min_insync_replicas;
                    if st.isr.len() < min_isr {
                        return Err(Error::NotEnoughReplicasAfterAppend(format!(
                            "The ISR {:?} of {} shrank below min.insync.replicas {min_isr}",
                            st.isr, self.tp
                        )));
                    }
                    return Ok(());
                }
            }
            match tokio::time::timeout_at(deadline, changed.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return Err(Error::RequestTimedOut),
            }
        }
    }

    /// A follower's fetch reached the leader (Kafka's updateFollowerFetchState): records its
    /// log end offset (`fetch_offset`), whether it is caught up, and advances the high
    /// watermark. Returns the ISR expansion to ask for when the follower has caught up while
    /// outside the ISR.
    pub fn update_follower(
        &self,
        replica_id: i32,
        fetch_offset: i64,
        now_ms: i64,
    ) -> Result<Option<IsrChange>> {
        let mut st = lock(&self.state);
        if st.role != Role::Leader || st.removed {
            return Err(Error::NotLeaderOrFollower(format!(
                "broker {} is not the leader of {}",
                self.node_id, self.tp
            )));
        }
        let leader_end = self.log.log_end_offset();
        let Some(f) = st.followers.get_mut(&replica_id) else {
            return Err(Error::NotLeaderOrFollower(format!(
                "broker {replica_id} is not a replica of {}",
                self.tp
            )));
        };
        if fetch_offset >= leader_end {
            f.last_caught_up_ms = now_ms;
        } else if fetch_offset >= f.last_fetch_leader_log_end_offset
            && f.last_fetch_leader_log_end_offset >= 0
        {
            f.last_caught_up_ms = f.last_caught_up_ms.max(f.last_fetch_ms);
        }
        f.log_end_offset = fetch_offset;
        f.last_fetch_leader_log_end_offset = leader_end;
        f.last_fetch_ms = now_ms;
        self.maybe_advance_high_watermark(&st);
        // Kafka's isFollowerInSync for expansion: at or past the high watermark and inside
        // this leader's epoch.
        let joins = !st.isr.contains(&replica_id)
            && !st.isr_change_pending
            && fetch_offset >= self.log.high_watermark()
            && fetch_offset >= st.leader_epoch_start_offset;
        if !joins {
            return Ok(None);
        }
        let mut new_isr = st.isr.clone();
        new_isr.push(replica_id);
        new_isr.sort_unstable_by_key(|r| st.replicas.iter().position(|x| x == r));
        st.isr_change_pending = true;
        Ok(Some(self.isr_change(&st, new_isr)))
    }

    fn isr_change(&self, st: &ReplicaState, new_isr: Vec<i32>) -> IsrChange {
        IsrChange {
            topic_id: self.topic_id,
            partition: self.tp.partition,
            leader_epoch: st.leader_epoch,
            partition_epoch: st.partition_epoch,
            new_isr,
        }
    }

    /// Kafka's maybeShrinkIsr: followers in the ISR that have not caught up within
    /// `replica.lag.time.max.ms` leave it (the leader always stays).
    pub fn isr_shrink(&self, now_ms: i64, lag_max_ms: i64) -> Option<IsrChange> {
        let mut st = lock(&self.state);
        if st.role != Role::Leader || st.isr_change_pending || st.removed {
            return None;
        }
        let lagging = |r: &i32| {
            *r != self.node_id
                && st
                    .followers
                    .get(r)
                    .is_none_or(|f| now_ms - f.last_caught_up_ms > lag_max_ms)
        };
        if !st.isr.iter().any(lagging) {
            return None;
        }
        let new_isr: Vec<i32> = st.isr.iter().copied().filter(|r| !lagging(r)).collect();
        st.isr_change_pending = true;
        Some(self.isr_change(&st, new_isr))
    }

    /// The AlterPartition failed: a later check may ask again.
    pub fn isr_change_failed(&self) {
        lock(&self.state).isr_change_pending = false;
    }

    /// The leader epoch a follower fetches with, if it still follows `leader` at `epoch`.
    pub fn follows(&self, leader: i32, epoch: i32) -> bool {
        let st = lock(&self.state);
        !st.removed && st.role == (Role::Follower { leader }) && st.leader_epoch == epoch
    }

    /// A follower's high watermark and log start from the leader's fetch response: its own
    /// high watermark is the leader's, capped at what it has.
    pub fn follower_learned(&self, leader_high_watermark: i64, leader_log_start_offset: i64) {
        self.log.advance_high_watermark(leader_high_watermark);
        let start = leader_log_start_offset.min(self.log.high_watermark());
        if start > self.log.log_start_offset() {
            if let Err(e) = self.log.delete_records_before(start) {
                tracing::debug!(partition = %self.tp, error = %e, "log start not moved");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::log::disk::FsDisk;
    use crate::log::partition::PartitionId;
    use crate::log::LogConfig;
    use crate::metrics::Metrics;
    use crate::protocol::record_batch::validate_records;

    fn open(dir: &std::path::Path, node_id: i32, min_isr: usize) -> Partition {
        let log = PartitionLog::open(
            PartitionId {
                topic: "t".into(),
                partition: 0,
                topic_id: Uuid::from_u128(7),
            },
            dir.join("t-0"),
            LogConfig {
                min_insync_replicas: min_isr,
                ..LogConfig::default()
            },
            Arc::new(FsDisk),
            Arc::new(SystemClock),
            Metrics::new(),
            false,
        )
        .expect("open");
        Partition::new(
            TopicPartition::new("t", 0),
            Uuid::from_u128(7),
            Arc::new(log),
            node_id,
        )
    }

    fn image(leader: i32, epoch: i32, pe: i32, isr: &[i32]) -> PartitionImage {
        PartitionImage {
            partition: 0,
            leader,
            leader_epoch: epoch,
            partition_epoch: pe,
            replicas: vec![1, 2, 3],
            isr: isr.to_vec(),
        }
    }

    async fn produce(p: &Partition, acks_all: bool) -> Result<AppendInfo> {
        let batch = crate::protocol::record_batch::tests::batch_with(
            1,
            0,
            kafka_protocol::records::Compression::None,
        );
        let validated = validate_records(&batch, 1 << 20).expect("valid");
        p.append_as_leader(BytesMut::from(&batch[..]), &validated, acks_all)
            .await
    }

    #[tokio::test]
    async fn high_watermark_follows_the_slowest_in_sync_replica() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = open(dir.path(), 1, 1);
        assert_eq!(
            p.apply(&image(1, 1, 1, &[1, 2, 3]), 0).unwrap(),
            Transition::Leader
        );
        produce(&p, false).await.expect("append");
        produce(&p, false).await.expect("append");
        // Followers unknown: the high watermark stays.
        assert_eq!(p.log.high_watermark(), 0);
        p.update_follower(2, 2, 10).expect("fetch");
        assert_eq!(p.log.high_watermark(), 0, "replica 3 still unknown");
        p.update_follower(3, 1, 10).expect("fetch");
        assert_eq!(p.log.high_watermark(), 1);
        p.update_follower(3, 2, 11).expect("fetch");
        assert_eq!(p.log.high_watermark(), 2);
        // Replica 3 leaves the ISR: only 1 and 2 count.
        p.apply(&image(1, 1, 2, &[1, 2]), 12).unwrap();
        produce(&p, false).await.expect("append");
        p.update_follower(2, 3, 13).expect("fetch");
        assert_eq!(p.log.high_watermark(), 3);
    }

    #[tokio::test]
    async fn acks_all_needs_min_isr_and_waits_for_the_high_watermark() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = Arc::new(open(dir.path(), 1, 2));
        p.apply(&image(1, 1, 1, &[1]), 0).unwrap();
        let err = produce(&p, true).await.unwrap_err();
        assert!(matches!(err, Error::NotEnoughReplicas(_)), "{err}");
        p.apply(&image(1, 1, 2, &[1, 2]), 0).unwrap();
        let info = produce(&p, true).await.expect("append");
        let waiting = {
            let p = p.clone();
            tokio::spawn(async move {
                p.wait_replicated(info.last_offset, Duration::from_secs(5))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !waiting.is_finished(),
            "answered before the follower had it"
        );
        p.update_follower(2, info.last_offset + 1, 5)
            .expect("fetch");
        waiting.await.expect("join").expect("replicated");
        let timed_out = p.wait_replicated(info.last_offset + 5, Duration::from_millis(30));
        assert!(matches!(timed_out.await, Err(Error::RequestTimedOut)));
    }

    #[tokio::test]
    async fn a_caught_up_follower_asks_to_join_and_a_lagging_one_to_leave() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = open(dir.path(), 1, 1);
        p.apply(&image(1, 1, 1, &[1, 2]), 0).unwrap();
        produce(&p, false).await.expect("append");
        p.update_follower(2, 1, 1).unwrap();
        assert_eq!(p.log.high_watermark(), 1);
        assert_eq!(p.update_follower(3, 0, 1).unwrap(), None, "behind");
        let join = p.update_follower(3, 1, 2).unwrap().expect("joins");
        assert_eq!((join.new_isr, join.partition_epoch), (vec![1, 2, 3], 1));
        assert_eq!(
            p.update_follower(3, 1, 3).unwrap(),
            None,
            "one change at a time"
        );
        p.isr_change_failed();
        // Replica 2 has not caught up for longer than the lag limit.
        let shrink = p.isr_shrink(40_000, 30_000).expect("shrinks");
        assert_eq!(shrink.new_isr, vec![1]);
        // A follower is refused leader work; a newer image only.
        assert_eq!(
            p.apply(&image(2, 2, 3, &[1, 2]), 0).unwrap(),
            Transition::Follower { leader: 2 }
        );
        assert_eq!(
            p.apply(&image(2, 2, 3, &[1, 2]), 0).unwrap(),
            Transition::None
        );
        assert!(matches!(
            produce(&p, false).await,
            Err(Error::NotLeaderOrFollower(_))
        ));
    }
}
