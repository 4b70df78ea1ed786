//! DescribeGroups: state, protocol and members of classic groups.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::server::dispatch::{RequestContext, Versions};

/// v0-v6. v3 authorized operations (KIP-430; no authorizer, so -2^31 "not requested" or
/// all), v4 group_instance_id, v6 GROUP_ID_NOT_FOUND for a group that does not exist
/// (KIP-1043) where older versions answer it Dead with no error.
pub const VERSIONS: Versions = Versions::new(0, 6);

/// Kafka's AclOperation bits a group supports: DELETE, DESCRIBE, READ.
const GROUP_OPERATIONS_ALL: i32 = (1 << 3) | (1 << 6) | (1 << 8);

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let groups = request
        .groups
        .into_iter()
        .map(|group_id| {
            let operations = if request.include_authorized_operations {
                GROUP_OPERATIONS_ALL
            } else {
                i32::MIN
            };
            let described = DescribedGroup::default().with_authorized_operations(operations);
            // Kafka 4.x: a consumer-protocol group is Dead to DescribeGroups, and v6 says why.
            let consumer = broker.groups.is_consumer_group(&group_id);
            let found = if consumer {
                None
            } else {
                broker.groups.describe_group(&group_id)
            };
            match found {
                None => {
                    let message = if consumer {
                        format!("Group {} is not a classic group.", &*group_id)
                    } else {
                        format!("Group {} not found.", &*group_id)
                    };
                    let mut d = described
                        .with_group_id(group_id.clone())
                        .with_group_state(StrBytes::from_static_str("Dead"));
                    if ctx.api_version >= 6 {
                        d.error_code = ResponseError::GroupIdNotFound.code();
                        d.error_message = Some(StrBytes::from_string(message));
                    }
                    d
                }
                Some(g) => described
                    .with_group_id(group_id)
                    .with_group_state(StrBytes::from_static_str(g.state.name()))
                    .with_protocol_type(StrBytes::from_string(g.protocol_type))
                    .with_protocol_data(StrBytes::from_string(g.protocol_data))
                    .with_members(
                        g.members
                            .into_iter()
                            .map(|m| {
                                let mut member = DescribedGroupMember::default()
                                    .with_member_id(StrBytes::from_string(m.member_id))
                                    .with_client_id(StrBytes::from_string(m.client_id))
                                    .with_client_host(StrBytes::from_string(m.client_host))
                                    .with_member_metadata(m.metadata)
                                    .with_member_assignment(m.assignment);
                                if ctx.api_version >= 4 {
                                    member.group_instance_id =
                                        m.group_instance_id.map(StrBytes::from_string);
                                }
                                member
                            })
                            .collect(),
                    ),
            }
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}
