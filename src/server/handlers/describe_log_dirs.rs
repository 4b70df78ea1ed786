//! DescribeLogDirs (KIP-113): each log dir with the size of every partition in it, and from
//! v4 the file system's total and usable bytes (KIP-827).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::server::dispatch::{RequestContext, Versions};
use crate::server::handlers::topic_name;

/// v1-v4, all Kafka 4 serves (KIP-896 removed v0). v2 flexible, v3 top-level error code, v4
/// total/usable bytes.
pub const VERSIONS: Versions = Versions::new(1, 4);

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    let image = broker.image();
    // The partitions asked for (None = every partition): each that the image knows is listed
    // under the dir holding its log, as Kafka lists the logs it has. A log not opened yet is
    // opened here, as Kafka creates logs with their topic.
    let wanted: Vec<(String, i32)> = match &request.topics {
        None => image
            .topics
            .values()
            .flat_map(|t| t.partitions.iter().map(|p| (t.name.clone(), p.partition)))
            .collect(),
        Some(topics) => topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| (t.topic.to_string(), *p)))
            .collect(),
    };
    // log dir -> topic -> partitions, in name order.
    let mut by_dir: BTreeMap<&Path, BTreeMap<String, Vec<DescribeLogDirsPartition>>> =
        BTreeMap::new();
    let mut logs = Vec::new();
    for (topic, partition) in wanted {
        let Some(t) = image
            .topic(&topic)
            .filter(|t| t.partition(partition).is_some())
        else {
            continue;
        };
        match broker.partition(t, partition) {
            Ok(log) => logs.push(log),
            Err(e) => tracing::warn!(topic, partition, error = %e, "cannot open log to describe"),
        }
    }
    for log in &logs {
        let Some(dir) = log.dir().parent() else {
            continue;
        };
        by_dir
            .entry(dir)
            .or_default()
            .entry(log.topic().to_string())
            .or_default()
            .push(
                DescribeLogDirsPartition::default()
                    .with_partition_index(log.partition())
                    .with_partition_size(log.size_bytes() as i64)
                    // One node: the log is its own leader, so no lag, and no future replica
                    // (no AlterReplicaLogDirs move is ever in progress).
                    .with_offset_lag(0)
                    .with_is_future_key(false),
            );
    }
    let results = broker
        .logs
        .log_dirs()
        .iter()
        .map(|dir| {
            let topics = by_dir
                .remove(dir.as_path())
                .unwrap_or_default()
                .into_iter()
                .map(|(name, partitions)| {
                    DescribeLogDirsTopic::default()
                        .with_name(topic_name(&name))
                        .with_partitions(partitions)
                })
                .collect();
            let mut result = DescribeLogDirsResult::default()
                .with_log_dir(StrBytes::from_string(absolute(dir)))
                .with_topics(topics);
            if ctx.api_version >= 4 {
                // Java's File.getTotalSpace / getUsableSpace: statvfs f_blocks and f_bavail.
                let (total, usable) = match fs4::statvfs(dir) {
                    Ok(s) => (s.total_space() as i64, s.available_space() as i64),
                    Err(e) => {
                        tracing::warn!(dir = %dir.display(), error = %e, "statvfs failed");
                        (-1, -1)
                    }
                };
                result.total_bytes = total;
                result.usable_bytes = usable;
            }
            result
        })
        .collect();
    DescribeLogDirsResponse::default().with_results(results)
}

/// The log dir as Kafka reports it (File.getAbsolutePath).
fn absolute(dir: &Path) -> String {
    std::path::absolute(dir)
        .unwrap_or_else(|_| dir.to_path_buf())
        .display()
        .to_string()
}
