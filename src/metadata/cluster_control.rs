//! The brokers' lifecycle as the active controller sees it (Kafka's ClusterControlManager and
//! BrokerHeartbeatManager): registration with incarnation ids and broker epochs, heartbeats
//! and their sessions, and the records that fence, unfence and shut a broker down, each with
//! the leader and ISR changes it implies.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::metadata::image::MetadataImage;
use crate::metadata::records::{BrokerRegistration, MetadataRecord};
use crate::metadata::replication_control::leader_and_isr_updates;

/// Kafka's `unclean.leader.election.enable`.
pub const UNCLEAN_LEADER_ELECTION_ENABLE: &str = "unclean.leader.election.enable";

/// One BrokerHeartbeat (Kafka API 63): who, which registration, how far its image is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerHeartbeat {
    pub broker_id: i32,
    pub broker_epoch: i64,
    /// The broker's applied metadata offset: it is unfenced once this reaches its broker
    /// epoch, the offset it registered at.
    pub current_metadata_offset: i64,
    pub want_fence: bool,
    pub want_shutdown: bool,
}

/// BrokerHeartbeatResponse's state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatReply {
    pub is_caught_up: bool,
    pub is_fenced: bool,
    pub should_shutdown: bool,
}

/// When each broker was last heard from, on the active controller only (Kafka keeps this in
/// memory too: a new active controller starts every unfenced broker with a fresh session).
#[derive(Debug)]
pub struct BrokerSessions {
    session_timeout: Duration,
    contacts: Mutex<HashMap<i32, Contact>>,
}

#[derive(Clone, Copy, Debug)]
struct Contact {
    at: Instant,
    /// A heartbeat was received (not just a session granted on activation).
    heard: bool,
}

impl BrokerSessions {
    /// Sessions lasting `broker.session.timeout.ms`.
    pub fn new(session_timeout: Duration) -> Self {
        Self {
            session_timeout,
            contacts: Mutex::new(HashMap::new()),
        }
    }

    fn contacts(&self) -> std::sync::MutexGuard<'_, HashMap<i32, Contact>> {
        self.contacts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// This node just became the active controller: every registered broker gets a full
    /// session from now, so a controller failover fences nobody who keeps heartbeating.
    pub fn activate(&self, image: &MetadataImage, now: Instant) {
        let mut contacts = self.contacts();
        contacts.clear();
        for id in image.brokers.keys() {
            contacts.insert(
                *id,
                Contact {
                    at: now,
                    heard: false,
                },
            );
        }
    }

    fn touch(&self, broker_id: i32, now: Instant) {
        self.contacts().insert(
            broker_id,
            Contact {
                at: now,
                heard: true,
            },
        );
    }

    /// Whether a heartbeat from `broker_id` arrived within the session timeout: then another
    /// process registering that id is a duplicate, not a restart.
    fn heard_recently(&self, broker_id: i32, now: Instant) -> bool {
        self.contacts()
            .get(&broker_id)
            .is_some_and(|c| c.heard && now.saturating_duration_since(c.at) <= self.session_timeout)
    }

    /// Unfenced brokers whose session has run out (Kafka's fenceStaleBrokers), by id.
    pub fn expired(&self, image: &MetadataImage, now: Instant) -> Vec<i32> {
        let contacts = self.contacts();
        let mut out: Vec<i32> = image
            .brokers
            .values()
            .filter(|b| !b.fenced)
            .filter(|b| {
                contacts
                    .get(&b.node_id)
                    .is_none_or(|c| now.saturating_duration_since(c.at) > self.session_timeout)
            })
            .map(|b| b.node_id)
            .collect();
        out.sort_unstable();
        out
    }
}

/// Whether a topic allows unclean leader election: its own config, else the dynamic cluster
/// default, else the static `default`.
pub fn unclean_leader_election(image: &MetadataImage, topic: &str, default: bool) -> bool {
    let configured = image
        .topic(topic)
        .and_then(|t| t.configs.get(UNCLEAN_LEADER_ELECTION_ENABLE))
        .or_else(|| {
            image
                .broker_config("")
                .and_then(|c| c.get(UNCLEAN_LEADER_ELECTION_ENABLE))
        });
    configured.map_or(default, |v| v.trim().eq_ignore_ascii_case("true"))
}

/// The records of a BrokerRegistration: none for a repeat of the registration in force; the
/// new endpoints for the same incarnation; for a new incarnation (a restart) a fenced
/// registration, which gets a new broker epoch. A new incarnation while the registered one
/// still heartbeats is another process with the same node.id: DUPLICATE_BROKER_REGISTRATION.
pub fn register_records(
    image: &MetadataImage,
    sessions: &BrokerSessions,
    mut reg: BrokerRegistration,
    now: Instant,
) -> Result<Vec<MetadataRecord>> {
    match image.broker(reg.node_id) {
        Some(old) if old.incarnation_id == reg.incarnation_id => {
            reg.broker_epoch = old.broker_epoch;
            reg.fenced = old.fenced;
            reg.in_controlled_shutdown = old.in_controlled_shutdown;
            if *old == reg {
                return Ok(vec![]);
            }
        }
        Some(old) if !old.fenced && sessions.heard_recently(reg.node_id, now) => {
            return Err(Error::DuplicateBrokerRegistration(format!(
                "Another broker is registered with that broker id ({}).",
                reg.node_id
            )));
        }
        _ => {
            reg.fenced = true;
            reg.in_controlled_shutdown = false;
        }
    }
    Ok(vec![MetadataRecord::RegisterBroker(reg)])
}

/// The records and reply of one heartbeat (Kafka's BrokerHeartbeatManager state machine):
/// a fenced broker that has caught up is unfenced and leads the leaderless partitions it can;
/// an unfenced one asking to stop enters controlled shutdown, which moves its leaderships to
/// other ISR members; once it leads nothing it is fenced and told to shut down.
pub fn heartbeat_records(
    image: &MetadataImage,
    sessions: &BrokerSessions,
    hb: &BrokerHeartbeat,
    unclean_default: bool,
    now: Instant,
) -> Result<(Vec<MetadataRecord>, HeartbeatReply)> {
    let reg = image
        .broker(hb.broker_id)
        .ok_or(Error::BrokerIdNotRegistered(hb.broker_id))?;
    if reg.broker_epoch != hb.broker_epoch {
        return Err(Error::StaleBrokerEpoch(format!(
            "broker {} heartbeats with epoch {} but is registered with epoch {}",
            hb.broker_id, hb.broker_epoch, reg.broker_epoch
        )));
    }
    sessions.touch(hb.broker_id, now);
    let is_caught_up = hb.current_metadata_offset >= reg.broker_epoch;
    let unclean = |topic: &str| unclean_leader_election(image, topic, unclean_default);
    let change = |fenced: Option<bool>, in_controlled_shutdown: Option<bool>| {
        MetadataRecord::BrokerRegistrationChange {
            broker_id: hb.broker_id,
            broker_epoch: reg.broker_epoch,
            fenced,
            in_controlled_shutdown,
        }
    };
    // Scanned only for a broker asking to stop, not on every heartbeat.
    let leads_any = || {
        image
            .topics
            .values()
            .any(|t| t.partitions.iter().any(|p| p.leader == hb.broker_id))
    };
    let mut reply = HeartbeatReply {
        is_caught_up,
        is_fenced: reg.fenced,
        should_shutdown: false,
    };
    let mut records = Vec::new();
    if reg.fenced {
        if hb.want_shutdown {
            reply.should_shutdown = true;
        } else if is_caught_up && !hb.want_fence {
            records = leader_and_isr_updates(image, None, Some(hb.broker_id), unclean);
            records.push(change(Some(false), None));
            reply.is_fenced = false;
        }
    } else if hb.want_fence || (hb.want_shutdown && (reg.in_controlled_shutdown || !leads_any())) {
        // Fenced: by its own wish, or at the end of a controlled shutdown.
        records = fence_records(image, hb.broker_id, unclean_default);
        reply.is_fenced = true;
        reply.should_shutdown = hb.want_shutdown;
    } else if hb.want_shutdown {
        records.push(change(None, Some(true)));
        records.extend(leader_and_isr_updates(
            image,
            Some(hb.broker_id),
            None,
            unclean,
        ));
    }
    Ok((records, reply))
}

/// Kafka's handleBrokerFenced: the broker leaves every ISR (never emptying one), its
/// leaderships move, and it is marked fenced.
pub fn fence_records(
    image: &MetadataImage,
    broker_id: i32,
    unclean_default: bool,
) -> Vec<MetadataRecord> {
    let Some(reg) = image.broker(broker_id) else {
        return vec![];
    };
    let mut records = leader_and_isr_updates(image, Some(broker_id), None, |topic| {
        unclean_leader_election(image, topic, unclean_default)
    });
    records.push(MetadataRecord::BrokerRegistrationChange {
        broker_id,
        broker_epoch: reg.broker_epoch,
        fenced: Some(true),
        in_controlled_shutdown: None,
    });
    records
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::records::ConfigResourceType;
    use uuid::Uuid;

    fn reg(id: i32, incarnation: u128) -> BrokerRegistration {
        BrokerRegistration {
            node_id: id,
            incarnation_id: Uuid::from_u128(incarnation),
            broker_epoch: 0,
            endpoints: vec![],
            rack: None,
            fenced: false,
            in_controlled_shutdown: false,
        }
    }

    /// Applies `records` as the batch at `offset`.
    fn at(image: &MetadataImage, offset: i64, records: &[MetadataRecord]) -> MetadataImage {
        let mut base = image.clone();
        base.last_applied_offset = offset;
        base.try_apply(records).expect("apply")
    }

    fn heartbeat(id: i32, epoch: i64, offset: i64) -> BrokerHeartbeat {
        BrokerHeartbeat {
            broker_id: id,
            broker_epoch: epoch,
            current_metadata_offset: offset,
            want_fence: false,
            want_shutdown: false,
        }
    }

    /// Brokers `ids`, each registered at offset `id` and unfenced at offset `10 + id`.
    fn unfenced(sessions: &BrokerSessions, ids: &[i32], now: Instant) -> MetadataImage {
        let mut image = MetadataImage::empty("c");
        for &id in ids {
            let records = register_records(&image, sessions, reg(id, id as u128), now).unwrap();
            image = at(&image, id as i64, &records);
            let hb = heartbeat(id, id as i64, id as i64);
            let (records, _) = heartbeat_records(&image, sessions, &hb, false, now).unwrap();
            image = at(&image, 10 + id as i64, &records);
        }
        image
    }

    #[test]
    fn a_broker_registers_fenced_and_is_unfenced_once_caught_up() {
        let sessions = BrokerSessions::new(Duration::from_secs(9));
        let now = Instant::now();
        let empty = MetadataImage::empty("c");
        let records = register_records(&empty, &sessions, reg(1, 1), now).expect("register");
        let image = at(&empty, 5, &records);
        let b = image.broker(1).unwrap();
        assert!(b.fenced);
        assert_eq!(
            b.broker_epoch, 5,
            "the broker epoch is the registration's offset"
        );

        let (records, reply) =
            heartbeat_records(&image, &sessions, &heartbeat(1, 5, 4), false, now).expect("hb");
        assert!(records.is_empty() && reply.is_fenced && !reply.is_caught_up);
        let (records, reply) =
            heartbeat_records(&image, &sessions, &heartbeat(1, 5, 5), false, now).expect("hb");
        assert!(!reply.is_fenced && reply.is_caught_up);
        let image = at(&image, 6, &records);
        assert!(!image.broker(1).unwrap().fenced);

        // The same incarnation registering again changes nothing; a stale epoch is refused.
        assert!(register_records(&image, &sessions, reg(1, 1), now)
            .unwrap()
            .is_empty());
        let stale = heartbeat_records(&image, &sessions, &heartbeat(1, 4, 6), false, now);
        assert!(matches!(stale, Err(Error::StaleBrokerEpoch(_))));
        let unknown = heartbeat_records(&image, &sessions, &heartbeat(2, 4, 6), false, now);
        assert!(matches!(unknown, Err(Error::BrokerIdNotRegistered(2))));
    }

    #[test]
    fn a_second_live_process_with_the_same_id_is_a_duplicate_a_restart_is_not() {
        let sessions = BrokerSessions::new(Duration::from_secs(9));
        let now = Instant::now();
        let empty = MetadataImage::empty("c");
        let image = at(
            &empty,
            1,
            &register_records(&empty, &sessions, reg(1, 1), now).unwrap(),
        );
        let (records, _) =
            heartbeat_records(&image, &sessions, &heartbeat(1, 1, 1), false, now).unwrap();
        let image = at(&image, 2, &records);
        let duplicate = register_records(&image, &sessions, reg(1, 2), now);
        assert!(matches!(
            duplicate,
            Err(Error::DuplicateBrokerRegistration(_))
        ));
        // After the session ran out, the new incarnation is a restart: fenced, new epoch.
        let later = now + Duration::from_secs(10);
        let records = register_records(&image, &sessions, reg(1, 2), later).expect("restart");
        let image = at(&image, 3, &records);
        let b = image.broker(1).unwrap();
        assert!(b.fenced);
        assert_eq!(b.broker_epoch, 3);
        // A controller that just became active grants sessions but heard nobody: a restart
        // right after a failover is not refused.
        sessions.activate(&image, later);
        assert!(register_records(&image, &sessions, reg(1, 3), later).is_ok());
    }

    #[test]
    fn sessions_expire_only_for_silent_unfenced_brokers() {
        let sessions = BrokerSessions::new(Duration::from_secs(9));
        let now = Instant::now();
        let image = unfenced(&sessions, &[1, 2, 3], now);
        sessions.activate(&image, now);
        let later = now + Duration::from_secs(5);
        heartbeat_records(&image, &sessions, &heartbeat(1, 1, 20), false, later).unwrap();
        heartbeat_records(&image, &sessions, &heartbeat(2, 2, 20), false, later).unwrap();
        assert!(sessions.expired(&image, later).is_empty());
        assert_eq!(
            sessions.expired(&image, now + Duration::from_secs(10)),
            vec![3]
        );
        let image = at(&image, 30, &fence_records(&image, 3, false));
        assert!(image.broker(3).unwrap().fenced);
        assert!(sessions.expired(&image, now + Duration::from_secs(60)) == vec![1, 2]);
    }

    #[test]
    fn controlled_shutdown_moves_leaderships_then_fences_and_lets_go() {
        let sessions = BrokerSessions::new(Duration::from_secs(9));
        let now = Instant::now();
        let mut image = unfenced(&sessions, &[1, 2], now);
        let topic_id = Uuid::from_u128(9);
        image = at(
            &image,
            20,
            &[
                MetadataRecord::Topic {
                    name: "t".into(),
                    topic_id,
                },
                MetadataRecord::Partition {
                    topic_id,
                    partition: 0,
                    replicas: vec![1, 2],
                    isr: vec![1, 2],
                    leader: 1,
                    leader_epoch: 0,
                    partition_epoch: 0,
                },
            ],
        );
        let stop = BrokerHeartbeat {
            want_shutdown: true,
            ..heartbeat(1, 1, 20)
        };
        let (records, reply) = heartbeat_records(&image, &sessions, &stop, false, now).unwrap();
        assert!(!reply.should_shutdown);
        image = at(&image, 21, &records);
        let p = &image.topic("t").unwrap().partitions[0];
        assert_eq!((p.leader, p.leader_epoch, p.isr.clone()), (2, 1, vec![2]));
        assert!(image.broker(1).unwrap().in_controlled_shutdown);

        let (records, reply) = heartbeat_records(&image, &sessions, &stop, false, now).unwrap();
        assert!(reply.should_shutdown && reply.is_fenced);
        image = at(&image, 22, &records);
        assert!(image.broker(1).unwrap().fenced);

        // Broker 2, the last ISR member, stops too: the partition goes offline, ISR kept.
        let stop2 = BrokerHeartbeat {
            want_shutdown: true,
            ..heartbeat(2, 2, 22)
        };
        let (records, _) = heartbeat_records(&image, &sessions, &stop2, false, now).unwrap();
        image = at(&image, 23, &records);
        let p = &image.topic("t").unwrap().partitions[0];
        assert_eq!((p.leader, p.isr.clone()), (-1, vec![2]));
    }

    #[test]
    fn unclean_election_follows_topic_then_cluster_then_static_config() {
        let topic_id = Uuid::from_u128(1);
        let image = MetadataImage::empty("c")
            .try_apply(&[MetadataRecord::Topic {
                name: "t".into(),
                topic_id,
            }])
            .unwrap();
        assert!(!unclean_leader_election(&image, "t", false));
        assert!(unclean_leader_election(&image, "t", true));
        let config =
            |resource_type, resource_name: &str, value: &str| MetadataRecord::ConfigRecord {
                resource_type,
                resource_name: resource_name.into(),
                name: UNCLEAN_LEADER_ELECTION_ENABLE.into(),
                value: Some(value.into()),
            };
        let image = image
            .try_apply(&[config(ConfigResourceType::Broker, "", "true")])
            .unwrap();
        assert!(unclean_leader_election(&image, "t", false));
        let image = image
            .try_apply(&[config(ConfigResourceType::Topic, "t", "false")])
            .unwrap();
        assert!(!unclean_leader_election(&image, "t", true));
    }
}
