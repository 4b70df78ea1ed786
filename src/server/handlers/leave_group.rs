//! LeaveGroup: members leave at once instead of waiting out their session.

use std::sync::Arc;

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use crate::broker::Broker;
use crate::server::dispatch::{RequestContext, Versions};

/// v0-v5. v3 batches members, by member id or group instance id (KIP-345), v5 reason
/// (KIP-800).
pub const VERSIONS: Versions = Versions::new(0, 5);

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: LeaveGroupRequest,
) -> LeaveGroupResponse {
    let members: Vec<(String, Option<String>)> = if ctx.api_version >= 3 {
        request
            .members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|s| s.to_string()),
                )
            })
            .collect()
    } else {
        vec![(request.member_id.to_string(), None)]
    };
    let result = broker
        .groups
        .leave(broker, &request.group_id, &members)
        .await;
    let code = |e: Option<kafka_protocol::error::ResponseError>| e.map(|e| e.code()).unwrap_or(0);
    match result {
        Err(e) => LeaveGroupResponse::default().with_error_code(e.code()),
        Ok(errors) if ctx.api_version < 3 => {
            LeaveGroupResponse::default().with_error_code(code(errors.first().copied().flatten()))
        }
        Ok(errors) => LeaveGroupResponse::default().with_members(
            request
                .members
                .into_iter()
                .zip(errors)
                .map(|(m, e)| {
                    MemberResponse::default()
                        .with_member_id(m.member_id)
                        .with_group_instance_id(m.group_instance_id)
                        .with_error_code(code(e))
                })
                .collect(),
        ),
    }
}
