//! DescribeCluster: the cluster id, controller and brokers (KIP-700), as the AdminClient's
//! describeCluster reads them.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::server::dispatch::{RequestContext, Versions};
use crate::server::handlers::metadata::CLUSTER_OPERATIONS_ALL;

/// v0-v2. v1 adds endpoint_type (KIP-919: brokers, or controllers for clients bootstrapping
/// from the controller quorum), v2 include_fenced_brokers (KIP-1073).
pub const VERSIONS: Versions = Versions::new(0, 2);

/// endpoint_type values.
const ENDPOINT_BROKERS: i8 = 1;
const ENDPOINT_CONTROLLERS: i8 = 2;

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let mut response = DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(broker.cluster_id.clone()));
    if ctx.api_version >= 1 {
        response.endpoint_type = request.endpoint_type;
        // This broker's controller has no client-reachable listener: a client bootstrapping
        // from controllers is talking to the wrong port (Kafka answers the same way).
        if request.endpoint_type == ENDPOINT_CONTROLLERS {
            return response
                .with_error_code(ResponseError::UnsupportedEndpointType.code())
                .with_error_message(Some(StrBytes::from_static_str(
                    "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER",
                )));
        }
        if request.endpoint_type != ENDPOINT_BROKERS {
            return response.with_error_code(ResponseError::UnsupportedEndpointType.code());
        }
    }
    let image = broker.image();
    let listener = &ctx.listener.name;
    let registered: Vec<_> = if request.include_fenced_brokers {
        image.brokers_on_including_fenced(listener).collect()
    } else {
        image.brokers_on(listener).collect()
    };
    let brokers = registered
        .into_iter()
        .map(|(b, endpoint)| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(b.node_id))
                .with_host(StrBytes::from_string(endpoint.host.clone()))
                .with_port(endpoint.port)
                .with_rack(b.rack.clone().map(StrBytes::from_string))
                .with_is_fenced(b.fenced)
        })
        .collect();
    response
        .with_controller_id(BrokerId(image.controller_id))
        .with_brokers(brokers)
        .with_cluster_authorized_operations(if request.include_cluster_authorized_operations {
            CLUSTER_OPERATIONS_ALL
        } else {
            i32::MIN
        })
}
