//! JoinGroup: a member enters (or re-enters) a classic group and waits for the rebalance.

use std::sync::Arc;

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::group::classic::JoinRequest;
use crate::server::dispatch::{RequestContext, Versions};

/// v0-v9. Kafka 4.0 removed v0-v1 (KIP-896) and 4.0.1/4.1 restored them (KAFKA-19444) because
/// sarama-era clients still send v1; v0 has no rebalance timeout (the session timeout serves,
/// as Kafka's JoinGroupRequest does), v1 adds it. v4 makes new members learn their id first
/// (MEMBER_ID_REQUIRED, KIP-394), v5 group_instance_id (KIP-345), v7 protocol type and name
/// in the response, v8 reason (KIP-800), v9 skip_assignment for a static leader rejoining a
/// stable group (KIP-814).
pub const VERSIONS: Versions = Versions::new(0, 9);

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: JoinGroupRequest,
) -> JoinGroupResponse {
    let req = JoinRequest {
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.map(|s| s.to_string()),
        client_id: ctx.client_id.as_deref().unwrap_or("").to_string(),
        client_host: format!("/{}", ctx.peer.ip()),
        session_timeout_ms: request.session_timeout_ms,
        rebalance_timeout_ms: if ctx.api_version == 0 {
            request.session_timeout_ms
        } else {
            request.rebalance_timeout_ms
        },
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), p.metadata))
            .collect(),
        api_version: ctx.api_version,
        new_member_id: String::new(),
    };
    let result = broker.groups.join(broker, &request.group_id, req).await;
    let mut response = JoinGroupResponse::default()
        .with_error_code(result.error.map(|e| e.code()).unwrap_or(0))
        .with_generation_id(result.generation_id)
        .with_leader(StrBytes::from_string(result.leader))
        .with_member_id(StrBytes::from_string(result.member_id))
        .with_members(
            result
                .members
                .into_iter()
                .map(|(member_id, instance, metadata)| {
                    JoinGroupResponseMember::default()
                        .with_member_id(StrBytes::from_string(member_id))
                        .with_group_instance_id(instance.map(StrBytes::from_string))
                        .with_metadata(metadata)
                })
                .collect(),
        );
    if ctx.api_version >= 7 {
        response.protocol_type = result.protocol_type.map(StrBytes::from_string);
        response.protocol_name = result.protocol_name.map(StrBytes::from_string);
    } else {
        // Not nullable before v7: an error answer carries "".
        response.protocol_name = Some(StrBytes::from_string(
            result.protocol_name.unwrap_or_default(),
        ));
    }
    if ctx.api_version >= 9 {
        response.skip_assignment = result.skip_assignment;
    }
    response
}
