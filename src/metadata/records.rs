//! Metadata log records: every cluster fact change is one of these, proposed to the metadata
//! quorum in atomic batches (KIP-631 `__cluster_metadata` records, named after Kafka's).
//!
//! Records are plain serde data: the log store and snapshots persist them, so a field added later
//! must carry `#[serde(default)]` to keep old logs readable.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A broker as registered with the controller (RegisterBrokerRecord).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    pub node_id: i32,
    /// Random per broker process (RegisterBrokerRecord.IncarnationId): a registration with a
    /// new one is a restart, which gets a new broker epoch. Nil in logs written before it.
    #[serde(default)]
    pub incarnation_id: Uuid,
    /// The metadata offset of the batch that registered this incarnation (KRaft's broker
    /// epoch, RegisterBrokerRecord.BrokerEpoch). Set by the image when the record is applied;
    /// what a proposed record carries is ignored.
    #[serde(default)]
    pub broker_epoch: i64,
    /// One advertised endpoint per broker listener (RegisterBrokerRecord.EndPoints): a client
    /// is told the endpoints of the listener its request arrived on. A registration written
    /// before listeners were recorded reads as none; every start registers again.
    #[serde(default)]
    pub endpoints: Vec<BrokerEndpoint>,
    pub rack: Option<String>,
    /// A fenced broker leads nothing and is not offered to clients (RegisterBrokerRecord.Fenced):
    /// a broker registers fenced and is unfenced once it has caught up with the metadata log.
    /// Logs written before fencing existed read as unfenced.
    #[serde(default)]
    pub fenced: bool,
    /// Set while the broker hands its leaderships over before it stops (KIP-631 controlled
    /// shutdown, RegisterBrokerRecord.InControlledShutdown).
    #[serde(default)]
    pub in_controlled_shutdown: bool,
}

impl BrokerRegistration {
    /// Whether new replicas and leaderships may go to this broker (Kafka's
    /// `BrokerRegistration.fenced() || inControlledShutdown()` excluded).
    pub fn usable(&self) -> bool {
        !self.fenced && !self.in_controlled_shutdown
    }

    /// The endpoint of the listener named `listener` (upper-cased, as Kafka normalises it).
    pub fn endpoint(&self, listener: &str) -> Option<&BrokerEndpoint> {
        self.endpoints.iter().find(|e| e.name == listener)
    }
}

/// One advertised listener of a broker (RegisterBrokerRecord's BrokerEndpoint).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerEndpoint {
    /// The listener name, upper-cased.
    pub name: String,
    /// Advertised host clients connect to.
    pub host: String,
    /// Advertised port (Metadata's INT32 port).
    pub port: i32,
    /// Kafka's security protocol id (`SecurityProtocol.id`: PLAINTEXT 0, SSL 1,
    /// SASL_PLAINTEXT 2, SASL_SSL 3).
    pub security_protocol: i16,
}

impl fmt::Display for BrokerEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.name, self.host, self.port)
    }
}

/// What a ConfigRecord applies to (ConfigRecord.ResourceType; Kafka's ConfigResource.Type).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConfigResourceType {
    /// Kafka id 2.
    Topic,
    /// Kafka id 4. Resource name "" is the cluster-wide default, "<id>" one broker.
    Broker,
    /// Kafka id 32: one consumer group's configs (KIP-848 group configs).
    Group,
}

impl ConfigResourceType {
    /// Kafka's numeric ConfigResource.Type id, as in DescribeConfigs.
    pub fn id(self) -> i8 {
        match self {
            ConfigResourceType::Topic => 2,
            ConfigResourceType::Broker => 4,
            ConfigResourceType::Group => 32,
        }
    }
}

/// One record of the metadata log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataRecord {
    /// RegisterBrokerRecord: registers or replaces a broker's registration.
    RegisterBroker(BrokerRegistration),
    /// TopicRecord: a new topic; its partitions follow as Partition records in the same batch.
    Topic { name: String, topic_id: Uuid },
    /// PartitionRecord: the full state of one partition. A partition id equal to the current
    /// count appends a partition; a smaller one replaces it.
    Partition {
        topic_id: Uuid,
        partition: i32,
        replicas: Vec<i32>,
        isr: Vec<i32>,
        leader: i32,
        leader_epoch: i32,
        partition_epoch: i32,
    },
    /// PartitionChangeRecord: changes the leader and/or the ISR of one partition. Every change
    /// bumps the partition epoch; one that sets the leader also bumps the leader epoch (Kafka's
    /// PartitionRegistration.merge).
    PartitionChange {
        topic_id: Uuid,
        partition: i32,
        /// The new leader (-1: none), or `None` for no leader change.
        leader: Option<i32>,
        /// The new ISR, or `None` for no change.
        isr: Option<Vec<i32>>,
    },
    /// BrokerRegistrationChangeRecord: fences or unfences a broker, or marks it in controlled
    /// shutdown; applies only to the registration of `broker_epoch`.
    BrokerRegistrationChange {
        broker_id: i32,
        broker_epoch: i64,
        fenced: Option<bool>,
        in_controlled_shutdown: Option<bool>,
    },
    /// RemoveTopicRecord: the topic, its partitions and its configs are gone.
    RemoveTopic { topic_id: Uuid },
    /// ConfigRecord: sets (`Some`) or deletes (`None`) one dynamic config.
    ConfigRecord {
        resource_type: ConfigResourceType,
        resource_name: String,
        name: String,
        value: Option<String>,
    },
    /// ProducerIdsRecord: a broker took the block of producer ids that ends just below
    /// `next_producer_id` (KIP-730); the next block starts there, across restarts.
    ProducerIds {
        broker_id: i32,
        broker_epoch: i64,
        next_producer_id: i64,
    },
}

impl fmt::Display for MetadataRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetadataRecord::RegisterBroker(reg) => {
                write!(
                    f,
                    "RegisterBroker(node_id={}, incarnation_id={}, endpoints=[",
                    reg.node_id, reg.incarnation_id
                )?;
                for (i, e) in reg.endpoints.iter().enumerate() {
                    write!(f, "{}{e}", if i == 0 { "" } else { "," })?;
                }
                write!(
                    f,
                    "], rack={:?}, fenced={}, in_controlled_shutdown={})",
                    reg.rack, reg.fenced, reg.in_controlled_shutdown
                )
            }
            MetadataRecord::PartitionChange {
                topic_id,
                partition,
                leader,
                isr,
            } => write!(
                f,
                "PartitionChange(topic_id={topic_id}, partition={partition}, leader={leader:?}, \
                 isr={isr:?})"
            ),
            MetadataRecord::BrokerRegistrationChange {
                broker_id,
                broker_epoch,
                fenced,
                in_controlled_shutdown,
            } => write!(
                f,
                "BrokerRegistrationChange(broker_id={broker_id}, broker_epoch={broker_epoch}, \
                 fenced={fenced:?}, in_controlled_shutdown={in_controlled_shutdown:?})"
            ),
            MetadataRecord::Topic { name, topic_id } => {
                write!(f, "Topic(name={name}, topic_id={topic_id})")
            }
            MetadataRecord::Partition {
                topic_id,
                partition,
                replicas,
                isr,
                leader,
                leader_epoch,
                partition_epoch,
            } => write!(
                f,
                "Partition(topic_id={topic_id}, partition={partition}, replicas={replicas:?}, \
                 isr={isr:?}, leader={leader}, leader_epoch={leader_epoch}, \
                 partition_epoch={partition_epoch})"
            ),
            MetadataRecord::RemoveTopic { topic_id } => {
                write!(f, "RemoveTopic(topic_id={topic_id})")
            }
            MetadataRecord::ConfigRecord {
                resource_type,
                resource_name,
                name,
                value,
            } => write!(
                f,
                "ConfigRecord({resource_type:?} '{resource_name}', {name}={})",
                value.as_deref().unwrap_or("<deleted>")
            ),
            MetadataRecord::ProducerIds {
                broker_id,
                broker_epoch,
                next_producer_id,
            } => write!(
                f,
                "ProducerIds(broker_id={broker_id}, broker_epoch={broker_epoch}, \
                 next_producer_id={next_producer_id})"
            ),
        }
    }
}

/// The command proposed to the metadata quorum: records applied all or nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataBatch {
    pub records: Vec<MetadataRecord>,
}

impl MetadataBatch {
    pub fn new(records: Vec<MetadataRecord>) -> Self {
        Self { records }
    }
}

impl fmt::Display for MetadataBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[")?;
        for (i, r) in self.records.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{r}")?;
        }
        write!(f, "]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_through_json() {
        let r = MetadataRecord::ConfigRecord {
            resource_type: ConfigResourceType::Topic,
            resource_name: "t".into(),
            name: "retention.ms".into(),
            value: None,
        };
        let json = serde_json::to_string(&r).expect("serialize");
        let back: MetadataRecord = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, r);
    }

    #[test]
    fn batch_display_lists_records_in_order() {
        let b = MetadataBatch::new(vec![
            MetadataRecord::Topic {
                name: "a".into(),
                topic_id: Uuid::from_u128(1),
            },
            MetadataRecord::RemoveTopic {
                topic_id: Uuid::from_u128(1),
            },
        ]);
        let s = b.to_string();
        assert!(s.starts_with("[Topic(name=a"), "{s}");
        assert!(s.contains("RemoveTopic("), "{s}");
    }

    #[test]
    fn a_registration_written_before_endpoints_reads_with_none() {
        // The shape of RegisterBroker before listeners were recorded: one host and port.
        let old = r#"{"RegisterBroker":{"node_id":1,"host":"localhost","port":9092,"rack":null}}"#;
        let back: MetadataRecord = serde_json::from_str(old).expect("old logs stay readable");
        assert_eq!(
            back,
            MetadataRecord::RegisterBroker(BrokerRegistration {
                node_id: 1,
                incarnation_id: Uuid::nil(),
                broker_epoch: 0,
                endpoints: vec![],
                rack: None,
                fenced: false,
                in_controlled_shutdown: false,
            })
        );
    }
}
