//! ConsumerGroupHeartbeat (KIP-848): the consumer rebalance protocol's one request; members
//! join, heartbeat, learn their assignment incrementally and leave through it.

use std::sync::Arc;

use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::group::assignor;
use crate::group::consumer::Heartbeat;
use crate::server::dispatch::{RequestContext, Versions};

/// v0-v1. v1 (KIP-1082): the client generates its member id, so every request carries one
/// (INVALID_REQUEST otherwise); v0 lets a joining member leave it to the broker.
pub const VERSIONS: Versions = Versions::new(0, 1);

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    let owned = request.topic_partitions.map(|tps| {
        let mut a = assignor::Assignment::new();
        for tp in tps {
            a.entry(tp.topic_id).or_default().extend(tp.partitions);
        }
        a
    });
    let req = Heartbeat {
        member_id: request.member_id.to_string(),
        member_epoch: request.member_epoch,
        instance_id: request.instance_id.map(|s| s.to_string()),
        rack_id: request.rack_id.map(|s| s.to_string()),
        rebalance_timeout_ms: request.rebalance_timeout_ms,
        subscribed_topic_names: request
            .subscribed_topic_names
            .map(|names| names.into_iter().map(|n| n.to_string()).collect()),
        subscribed_topic_regex: request.subscribed_topic_regex.map(|s| s.to_string()),
        server_assignor: request.server_assignor.map(|s| s.to_string()),
        owned,
        client_id: ctx.client_id.as_deref().unwrap_or("").to_string(),
        client_host: format!("/{}", ctx.peer.ip()),
    };
    let result = broker
        .groups
        .consumer_heartbeat(broker, &request.group_id, req, ctx.api_version)
        .await;
    let mut response = ConsumerGroupHeartbeatResponse::default()
        .with_error_code(result.error.map(|e| e.code()).unwrap_or(0))
        .with_error_message(result.message.map(StrBytes::from_string))
        .with_member_epoch(result.member_epoch)
        .with_heartbeat_interval_ms(result.heartbeat_interval_ms);
    if result.error.is_none() {
        response.member_id = Some(StrBytes::from_string(result.member_id));
        response.assignment = result.assignment.map(|a| {
            Assignment::default().with_topic_partitions(
                a.into_iter()
                    .filter(|(_, ps)| !ps.is_empty())
                    .map(|(topic_id, ps)| {
                        TopicPartitions::default()
                            .with_topic_id(topic_id)
                            .with_partitions(ps.into_iter().collect())
                    })
                    .collect(),
            )
        });
    }
    response
}
