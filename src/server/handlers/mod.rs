//! One file per Kafka API, snake_case of its name; each declares `VERSIONS` and `handle`.

pub mod alter_configs;
pub mod api_versions;
pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_topic_partitions;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod sync_group;

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::metadata::image::{MetadataImage, TopicImage};

/// Finds the topic a request names: by id from the versions that address topics by id
/// (KIP-516: Produce v13, Fetch v13), else by name. Unknown ids get UNKNOWN_TOPIC_ID.
pub fn resolve_topic(
    image: &Arc<MetadataImage>,
    name: &str,
    topic_id: Uuid,
    by_id: bool,
) -> Result<Arc<TopicImage>, ResponseError> {
    if by_id {
        image
            .topic_ids
            .get(&topic_id)
            .and_then(|name| image.topics.get(name))
            .cloned()
            .ok_or(ResponseError::UnknownTopicId)
    } else {
        image
            .topics
            .get(name)
            .cloned()
            .ok_or(ResponseError::UnknownTopicOrPartition)
    }
}

/// Kafka's Partition.checkCurrentLeaderEpoch: a client's view of the partition's leader epoch
/// (KIP-320, Fetch v9+, ListOffsets v4+, OffsetForLeaderEpoch v2+) older than the leader's is
/// FENCED_LEADER_EPOCH, newer is UNKNOWN_LEADER_EPOCH (this broker has not seen it yet); -1
/// means the client does not know it and is not checked.
pub fn check_leader_epoch(
    current_leader_epoch: i32,
    leader_epoch: i32,
) -> Result<(), ResponseError> {
    const NO_EPOCH: i32 = -1;
    if current_leader_epoch == NO_EPOCH || current_leader_epoch == leader_epoch {
        Ok(())
    } else if current_leader_epoch < leader_epoch {
        Err(ResponseError::FencedLeaderEpoch)
    } else {
        Err(ResponseError::UnknownLeaderEpoch)
    }
}

/// A leader's endpoint on the request's listener, for KIP-951's new-leader hints.
pub struct LeaderHint {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

/// The endpoints on `listener` of the live brokers among `leaders` (Produce v10+ and Fetch
/// v16+ NodeEndpoints).
pub fn leader_hints(
    broker: &crate::broker::Broker,
    listener: &str,
    leaders: &std::collections::BTreeSet<i32>,
) -> Vec<LeaderHint> {
    if leaders.is_empty() {
        return Vec::new();
    }
    let image = broker.image();
    image
        .brokers_on(listener)
        .filter(|(b, _)| leaders.contains(&b.node_id))
        .map(|(b, endpoint)| LeaderHint {
            node_id: b.node_id,
            host: endpoint.host.clone(),
            port: endpoint.port,
            rack: b.rack.clone(),
        })
        .collect()
}

/// A topic name for a response.
pub fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// The names a request gives more than once, in the order they first repeat. Kafka's
/// controller (ControllerApis) acts on none of them and answers each once with
/// INVALID_REQUEST "Duplicate topic name." (CreateTopics, CreatePartitions).
pub fn duplicate_names<'a>(names: impl IntoIterator<Item = &'a str>) -> indexmap::IndexSet<String> {
    let mut seen = std::collections::HashSet::new();
    names
        .into_iter()
        .filter(|n| !seen.insert(*n))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leader_epoch_check_fences_older_and_defers_newer_epochs() {
        assert_eq!(check_leader_epoch(-1, 4), Ok(()));
        assert_eq!(check_leader_epoch(4, 4), Ok(()));
        assert_eq!(
            check_leader_epoch(3, 4),
            Err(ResponseError::FencedLeaderEpoch)
        );
        assert_eq!(
            check_leader_epoch(5, 4),
            Err(ResponseError::UnknownLeaderEpoch)
        );
    }
}
