//! ConsumerGroupDescribe (KIP-848): state, epochs, assignor and members of consumer-protocol
//! groups, with each member's current and target assignment.

use std::sync::Arc;

use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::group::assignor;
use crate::server::dispatch::{RequestContext, Versions};
use crate::server::handlers::topic_name;

/// v0-v1. v1 (KIP-1099) adds each member's type: 0 for a classic member (one that joined
/// with JoinGroup, KIP-848 migration), 1 for a consumer-protocol member.
pub const VERSIONS: Versions = Versions::new(0, 1);

/// Kafka's AclOperation bits a group supports: DELETE, DESCRIBE, READ.
const GROUP_OPERATIONS_ALL: i32 = (1 << 3) | (1 << 6) | (1 << 8);
/// ConsumerGroupDescribe v1 member types (KIP-1099).
const MEMBER_TYPE_CLASSIC: i8 = 0;
const MEMBER_TYPE_CONSUMER: i8 = 1;

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let image = broker.image();
    let describe = |a: &assignor::Assignment| {
        Assignment::default().with_topic_partitions(
            a.iter()
                .filter(|(_, ps)| !ps.is_empty())
                .map(|(id, ps)| {
                    let name = image.topic_by_id(id).map(|t| t.name.as_str()).unwrap_or("");
                    TopicPartitions::default()
                        .with_topic_id(*id)
                        .with_topic_name(topic_name(name))
                        .with_partitions(ps.iter().copied().collect())
                })
                .collect(),
        )
    };
    let operations = if request.include_authorized_operations {
        GROUP_OPERATIONS_ALL
    } else {
        i32::MIN
    };
    let groups = request
        .group_ids
        .into_iter()
        .map(|group_id| {
            let described = DescribedGroup::default().with_authorized_operations(operations);
            match broker.groups.describe_consumer_group(&group_id) {
                Err((error, message)) => described
                    .with_group_id(group_id)
                    .with_error_code(error.code())
                    .with_error_message(Some(StrBytes::from_string(message))),
                Ok(g) => described
                    .with_group_id(group_id)
                    .with_group_state(StrBytes::from_static_str(g.state.name()))
                    .with_group_epoch(g.group_epoch)
                    .with_assignment_epoch(g.assignment_epoch)
                    .with_assignor_name(StrBytes::from_static_str(g.assignor))
                    .with_members(
                        g.members
                            .iter()
                            .map(|m| {
                                let target =
                                    g.target.get(&m.member_id).cloned().unwrap_or_default();
                                let mut member = Member::default()
                                    .with_member_id(StrBytes::from_string(m.member_id.clone()))
                                    .with_instance_id(
                                        m.instance_id.clone().map(StrBytes::from_string),
                                    )
                                    .with_rack_id(m.rack_id.clone().map(StrBytes::from_string))
                                    .with_member_epoch(m.member_epoch)
                                    .with_client_id(StrBytes::from_string(m.client_id.clone()))
                                    .with_client_host(StrBytes::from_string(m.client_host.clone()))
                                    .with_subscribed_topic_names(
                                        m.subscribed_topic_names
                                            .iter()
                                            .map(|n| topic_name(n))
                                            .collect(),
                                    )
                                    .with_subscribed_topic_regex(
                                        m.subscribed_topic_regex.clone().map(StrBytes::from_string),
                                    )
                                    .with_assignment(describe(&m.assigned))
                                    .with_target_assignment(describe(&target));
                                if ctx.api_version >= 1 {
                                    member.member_type = if m.uses_classic_protocol() {
                                        MEMBER_TYPE_CLASSIC
                                    } else {
                                        MEMBER_TYPE_CONSUMER
                                    };
                                }
                                member
                            })
                            .collect(),
                    ),
            }
        })
        .collect();
    ConsumerGroupDescribeResponse::default().with_groups(groups)
}
