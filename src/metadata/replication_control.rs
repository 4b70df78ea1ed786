//! Where partitions live and who leads them, decided on the active controller from its image:
//! replica placement for new partitions (rack-aware, as Kafka's assignment spreads replicas
//! over racks) and leader election with ISR changes as PartitionChange records (Kafka's
//! ReplicationControlManager and PartitionChangeBuilder, without eligible leader replicas:
//! `eligible.leader.replicas.version=0`).

use std::collections::BTreeSet;

use uuid::Uuid;

use crate::error::{Error, Result};
use crate::metadata::image::{MetadataImage, PartitionImage};
use crate::metadata::records::MetadataRecord;

/// Kafka's `LeaderConstants.NO_LEADER`.
pub const NO_LEADER: i32 = -1;

/// The brokers new replicas may go to: registered, unfenced and not shutting down, by id, with
/// their racks.
pub fn usable_brokers(image: &MetadataImage) -> Vec<(i32, Option<String>)> {
    let mut brokers: Vec<(i32, Option<String>)> = image
        .brokers
        .values()
        .filter(|b| b.usable())
        .map(|b| (b.node_id, b.rack.clone()))
        .collect();
    brokers.sort_unstable_by_key(|(id, _)| *id);
    brokers
}

/// Kafka's message when a replication factor exceeds the usable brokers.
pub fn replication_factor_error(rf: usize, brokers: usize) -> Error {
    Error::InvalidReplicationFactor(format!(
        "Unable to replicate the partition {rf} time(s): The target replication factor of {rf} \
         cannot be reached because only {brokers} broker(s) are registered."
    ))
}

/// Where the randomness of one placement comes from: the first replica of partition 0 and the
/// shift between a partition's replicas (Kafka's `startIndex` and `nextReplicaShift`).
#[derive(Clone, Copy, Debug)]
pub struct PlacementSeed {
    pub start: usize,
    pub shift: usize,
}

/// Replica lists for partitions `first..first + count` with `rf` replicas each over `brokers`,
/// as Kafka's (AdminUtils) assignment: the first replica of each partition walks the broker
/// list round-robin from `seed.start`, the others follow at a shift that grows every full
/// round so that followers spread too. With racks, the broker list alternates racks and a
/// follower skips brokers whose rack (or itself) already holds a replica of the partition
/// while another rack (or broker) is still free, so replicas span as many racks as possible.
pub fn place(
    brokers: &[(i32, Option<String>)],
    first: usize,
    count: usize,
    rf: usize,
    seed: PlacementSeed,
) -> Result<Vec<Vec<i32>>> {
    let n = brokers.len();
    if rf == 0 || rf > n {
        return Err(replication_factor_error(rf, n));
    }
    let racked = brokers.iter().any(|(_, rack)| rack.is_some());
    let arranged: Vec<(i32, Option<String>)> = if racked {
        rack_alternated(brokers)
    } else {
        brokers.to_vec()
    };
    // Brokers without a rack count as one rack of their own (KRaft's placer does the same).
    let racks = arranged
        .iter()
        .map(|(_, r)| r.as_deref())
        .collect::<BTreeSet<Option<&str>>>()
        .len();
    let start = seed.start % n;
    let mut shift = seed.shift % n;
    let mut out = Vec::with_capacity(count);
    for partition in first..first + count {
        if partition > 0 && partition % n == 0 {
            shift += 1;
        }
        let first_index = (partition + start) % n;
        let mut replicas = vec![arranged[first_index].0];
        let mut used_racks = BTreeSet::from([arranged[first_index].1.as_deref()]);
        let rack_shift = if racked { shift * racks } else { shift };
        let mut k = 0;
        while replicas.len() < rf {
            let (id, rack) = &arranged[replica_index(first_index, rack_shift + k, n)];
            k += 1;
            // A broker on a rack that holds no replica yet, until every rack holds one.
            let rack_free =
                !racked || !used_racks.contains(&rack.as_deref()) || used_racks.len() == racks;
            if rack_free && !replicas.contains(id) {
                used_racks.insert(rack.as_deref());
                replicas.push(*id);
            }
        }
        out.push(replicas);
    }
    Ok(out)
}

/// Kafka's `replicaIndex`: the j-th follower of a partition whose first replica is at
/// `first`, shifted so that it never lands on the first replica.
fn replica_index(first: usize, shift_plus_j: usize, n: usize) -> usize {
    if n == 1 {
        return first;
    }
    (first + 1 + shift_plus_j % (n - 1)) % n
}

/// Kafka's `getRackAlternatedBrokerList`: brokers ordered so consecutive ones are on
/// different racks (racks in name order, brokers of each rack in id order, one from each rack
/// in turn); brokers without a rack form their own group.
fn rack_alternated(brokers: &[(i32, Option<String>)]) -> Vec<(i32, Option<String>)> {
    let mut by_rack: std::collections::BTreeMap<Option<&str>, Vec<&(i32, Option<String>)>> =
        std::collections::BTreeMap::new();
    for b in brokers {
        by_rack.entry(b.1.as_deref()).or_default().push(b);
    }
    let mut out = Vec::with_capacity(brokers.len());
    let mut round = 0;
    while out.len() < brokers.len() {
        for members in by_rack.values() {
            if let Some(b) = members.get(round) {
                out.push((*b).clone());
            }
        }
        round += 1;
    }
    out
}

/// The change one partition needs, as PartitionChangeBuilder decides it with ONLINE (or
/// UNCLEAN) election and no ELR: `remove` leaves the ISR (never emptying it: the last member
/// stays, so it can lead again once it returns) and can no longer lead; `add` may lead even
/// though the image still shows it fenced (it is being unfenced in the same batch). The
/// current leader stays if it is still acceptable; otherwise the first replica in assignment
/// order that is in the new ISR and acceptable leads; failing that, with unclean election,
/// the first acceptable replica, whose ISR becomes itself alone; else no leader (-1).
pub fn partition_change(
    image: &MetadataImage,
    topic_id: Uuid,
    p: &PartitionImage,
    remove: Option<i32>,
    add: Option<i32>,
    unclean: bool,
) -> Option<MetadataRecord> {
    let acceptable = |r: i32| Some(r) != remove && (Some(r) == add || image.is_usable_leader(r));
    let mut target_isr: Vec<i32> = p
        .isr
        .iter()
        .copied()
        .filter(|r| Some(*r) != remove)
        .collect();
    if target_isr.is_empty() {
        target_isr = p.isr.clone();
    }
    let valid = |r: i32| target_isr.contains(&r) && acceptable(r);
    let mut isr_change = None;
    let leader = if valid(p.leader) {
        p.leader
    } else if let Some(r) = p.replicas.iter().copied().find(|r| valid(*r)) {
        r
    } else if let Some(r) = p
        .replicas
        .iter()
        .copied()
        .find(|r| unclean && acceptable(*r))
    {
        tracing::warn!(%topic_id, partition = p.partition, leader = r,
            "unclean leader election: records only the old ISR had may be lost");
        isr_change = Some(vec![r]);
        r
    } else {
        NO_LEADER
    };
    if isr_change.is_none() && target_isr != p.isr {
        isr_change = Some(target_isr);
    }
    let leader_change = (leader != p.leader).then_some(leader);
    if leader_change.is_none() && isr_change.is_none() {
        return None;
    }
    Some(MetadataRecord::PartitionChange {
        topic_id,
        partition: p.partition,
        leader: leader_change,
        isr: isr_change,
    })
}

/// Kafka's generateLeaderAndIsrUpdates over every partition that `remove` is in the ISR of
/// (fencing, controlled shutdown) or, for `add` (unfencing), every partition without a leader
/// that it could lead. `unclean(topic)` says whether the topic allows unclean election.
pub fn leader_and_isr_updates(
    image: &MetadataImage,
    remove: Option<i32>,
    add: Option<i32>,
    unclean: impl Fn(&str) -> bool,
) -> Vec<MetadataRecord> {
    let mut records = Vec::new();
    for topic in image.topics.values() {
        let topic_unclean = unclean(&topic.name);
        for p in &topic.partitions {
            let concerned = remove.is_some_and(|r| p.isr.contains(&r) || p.leader == r)
                || add.is_some_and(|a| p.leader == NO_LEADER && p.replicas.contains(&a));
            if !concerned {
                continue;
            }
            if let Some(record) =
                partition_change(image, topic.topic_id, p, remove, add, topic_unclean)
            {
                records.push(record);
            }
        }
    }
    records
}

/// One partition of an AlterPartition request (Kafka API 56, KIP-497): the leader asks the
/// controller to change the ISR, naming the epochs its view was taken at.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AlterPartition {
    pub broker_id: i32,
    pub broker_epoch: i64,
    pub topic_id: Uuid,
    pub partition: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub new_isr: Vec<i32>,
}

/// Kafka's ReplicationControlManager.alterPartition for one partition: the request must come
/// from the current leader at the current leader and partition epochs (so two concurrent ISR
/// changes cannot both apply), the new ISR must hold the leader and only replicas, and every
/// member must be an unfenced broker not shutting down. `None` when the ISR is already that.
pub fn alter_partition_record(
    image: &MetadataImage,
    req: &AlterPartition,
) -> Result<Option<MetadataRecord>> {
    match image.broker(req.broker_id) {
        Some(b) if b.broker_epoch == req.broker_epoch => {}
        _ => {
            return Err(Error::StaleBrokerEpoch(format!(
                "broker {} is not registered with epoch {}",
                req.broker_id, req.broker_epoch
            )))
        }
    }
    let topic = image
        .topic_by_id(&req.topic_id)
        .ok_or(Error::UnknownTopicId)?;
    let p = topic
        .partition(req.partition)
        .ok_or(Error::UnknownTopicOrPartition)?;
    if p.leader != req.broker_id {
        return Err(Error::NotLeaderOrFollower(format!(
            "broker {} is not the leader of {}-{} (leader {})",
            req.broker_id, topic.name, req.partition, p.leader
        )));
    }
    if req.leader_epoch != p.leader_epoch {
        return Err(Error::FencedLeaderEpoch(format!(
            "leader epoch {} is not the current {}",
            req.leader_epoch, p.leader_epoch
        )));
    }
    if req.partition_epoch != p.partition_epoch {
        return Err(Error::InvalidUpdateVersion(format!(
            "partition epoch {} is not the current {}",
            req.partition_epoch, p.partition_epoch
        )));
    }
    let distinct: BTreeSet<i32> = req.new_isr.iter().copied().collect();
    let valid = distinct.len() == req.new_isr.len()
        && req.new_isr.contains(&p.leader)
        && req.new_isr.iter().all(|r| p.replicas.contains(r));
    if !valid {
        return Err(Error::InvalidRequest(format!(
            "ISR {:?} must hold the leader {} and only replicas of {:?}",
            req.new_isr, p.leader, p.replicas
        )));
    }
    if let Some(r) = req
        .new_isr
        .iter()
        .find(|r| !image.broker(**r).is_some_and(|b| b.usable()))
    {
        return Err(Error::IneligibleReplica(format!(
            "replica {r} is fenced or shutting down and cannot join the ISR"
        )));
    }
    if req.new_isr == p.isr {
        return Ok(None);
    }
    Ok(Some(MetadataRecord::PartitionChange {
        topic_id: req.topic_id,
        partition: req.partition,
        leader: None,
        isr: Some(req.new_isr.clone()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::records::BrokerRegistration;

    fn seed(start: usize, shift: usize) -> PlacementSeed {
        PlacementSeed { start, shift }
    }

    fn plain(ids: &[i32]) -> Vec<(i32, Option<String>)> {
        ids.iter().map(|id| (*id, None)).collect()
    }

    #[test]
    fn replicas_are_distinct_and_leaders_spread_evenly() {
        let brokers = plain(&[1, 2, 3]);
        let placed = place(&brokers, 0, 6, 3, seed(0, 0)).expect("place");
        for replicas in &placed {
            let distinct: BTreeSet<_> = replicas.iter().collect();
            assert_eq!(distinct.len(), 3, "{replicas:?}");
        }
        let leaders: Vec<i32> = placed.iter().map(|r| r[0]).collect();
        assert_eq!(leaders, vec![1, 2, 3, 1, 2, 3]);
        // The second round shifts the followers, as Kafka's nextReplicaShift does.
        assert_ne!(placed[0], placed[3]);
    }

    #[test]
    fn rf_above_the_usable_brokers_is_invalid_replication_factor() {
        let e = place(&plain(&[1, 2]), 0, 1, 3, seed(0, 0)).expect_err("too few");
        assert!(
            matches!(e, Error::InvalidReplicationFactor(ref m)
            if m.contains("only 2 broker(s) are registered")),
            "{e}"
        );
    }

    #[test]
    fn replicas_span_racks_before_sharing_one() {
        // Two racks, uneven: every partition with RF 2 must use both racks.
        let brokers = vec![
            (1, Some("a".to_string())),
            (2, Some("a".to_string())),
            (3, Some("a".to_string())),
            (4, Some("b".to_string())),
        ];
        for start in 0..4 {
            for shift in 0..4 {
                let placed = place(&brokers, 0, 8, 2, seed(start, shift)).expect("place");
                for replicas in placed {
                    let racks: BTreeSet<bool> = replicas.iter().map(|id| *id == 4).collect();
                    assert_eq!(racks.len(), 2, "{replicas:?} start {start} shift {shift}");
                }
            }
        }
        // RF 3 over two racks: all three brokers distinct, both racks used.
        let placed = place(&brokers, 0, 4, 3, seed(1, 2)).expect("place");
        for replicas in placed {
            let distinct: BTreeSet<_> = replicas.iter().collect();
            assert_eq!(distinct.len(), 3);
            assert!(replicas.contains(&4), "{replicas:?}");
        }
    }

    fn image_with(brokers: &[(i32, bool)], p: PartitionImage) -> (MetadataImage, Uuid) {
        let topic_id = Uuid::from_u128(7);
        let mut records: Vec<MetadataRecord> = brokers
            .iter()
            .map(|(id, _)| {
                MetadataRecord::RegisterBroker(BrokerRegistration {
                    node_id: *id,
                    incarnation_id: Uuid::from_u128(*id as u128),
                    broker_epoch: 0,
                    endpoints: vec![],
                    rack: None,
                    fenced: false,
                    in_controlled_shutdown: false,
                })
            })
            .collect();
        records.push(MetadataRecord::Topic {
            name: "t".into(),
            topic_id,
        });
        records.push(MetadataRecord::Partition {
            topic_id,
            partition: 0,
            replicas: p.replicas.clone(),
            isr: p.isr.clone(),
            leader: p.leader,
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
        });
        let mut image = MetadataImage::empty("c")
            .try_apply(&records)
            .expect("apply");
        for (id, fenced) in brokers {
            if let Some(b) = image.brokers.get_mut(id) {
                b.fenced = *fenced;
            }
        }
        (image, topic_id)
    }

    fn partition(replicas: &[i32], isr: &[i32], leader: i32) -> PartitionImage {
        PartitionImage {
            partition: 0,
            leader,
            leader_epoch: 3,
            partition_epoch: 5,
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
        }
    }

    fn change_of(topic_id: Uuid, leader: Option<i32>, isr: Option<Vec<i32>>) -> MetadataRecord {
        MetadataRecord::PartitionChange {
            topic_id,
            partition: 0,
            leader,
            isr,
        }
    }

    #[test]
    fn fencing_the_leader_elects_the_next_isr_member_in_assignment_order() {
        let p = partition(&[1, 2, 3], &[1, 2, 3], 1);
        let (image, id) = image_with(&[(1, false), (2, false), (3, false)], p.clone());
        let change = partition_change(&image, id, &p, Some(1), None, false);
        assert_eq!(change, Some(change_of(id, Some(2), Some(vec![2, 3]))));
        let next = image.try_apply(&[change.unwrap()]).expect("apply");
        let after = &next.topic("t").unwrap().partitions[0];
        assert_eq!((after.leader_epoch, after.partition_epoch), (4, 6));
    }

    #[test]
    fn fencing_a_follower_shrinks_the_isr_without_a_leader_epoch_bump() {
        let p = partition(&[1, 2, 3], &[1, 2, 3], 1);
        let (image, id) = image_with(&[(1, false), (2, false), (3, false)], p.clone());
        let change = partition_change(&image, id, &p, Some(3), None, false).expect("change");
        let next = image.try_apply(&[change]).expect("apply");
        let after = &next.topic("t").unwrap().partitions[0];
        assert_eq!(after.leader, 1);
        assert_eq!(after.isr, vec![1, 2]);
        assert_eq!((after.leader_epoch, after.partition_epoch), (3, 6));
    }

    #[test]
    fn the_last_isr_member_stays_and_the_partition_goes_offline_until_it_returns() {
        let p = partition(&[1, 2], &[1], 1);
        let (image, id) = image_with(&[(1, false), (2, false)], p.clone());
        let change = partition_change(&image, id, &p, Some(1), None, false);
        assert_eq!(
            change,
            Some(change_of(id, Some(NO_LEADER), None)),
            "broker 2 is out of the ISR: no clean leader, and the ISR keeps broker 1"
        );
        let offline = image.try_apply(&[change.unwrap()]).expect("apply");
        let p = offline.topic("t").unwrap().partitions[0].clone();
        // Broker 1 comes back (unfenced in the same batch): it leads again, one epoch later.
        let back = leader_and_isr_updates(&offline, None, Some(1), |_| false);
        assert_eq!(back, vec![change_of(id, Some(1), None)]);
        assert_eq!(p.leader, NO_LEADER);
    }

    #[test]
    fn unclean_election_takes_a_live_replica_outside_the_isr() {
        let p = partition(&[1, 2], &[1], 1);
        let (image, id) = image_with(&[(1, false), (2, false)], p.clone());
        let change = partition_change(&image, id, &p, Some(1), None, true);
        assert_eq!(change, Some(change_of(id, Some(2), Some(vec![2]))));
    }

    #[test]
    fn a_fenced_broker_is_never_elected() {
        let p = partition(&[1, 2, 3], &[1, 2, 3], 1);
        let (image, id) = image_with(&[(1, false), (2, true), (3, false)], p.clone());
        let change = partition_change(&image, id, &p, Some(1), None, false).expect("change");
        assert!(
            matches!(
                change,
                MetadataRecord::PartitionChange {
                    leader: Some(3),
                    ..
                }
            ),
            "{change}"
        );
    }
}
