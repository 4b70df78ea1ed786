//! DeleteGroups: removes Empty groups and their committed offsets.

use std::sync::Arc;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use crate::broker::Broker;
use crate::server::dispatch::{RequestContext, Versions};

/// v0-v2. v2 flexible.
pub const VERSIONS: Versions = Versions::new(0, 2);

pub async fn handle(
    broker: &Arc<Broker>,
    _ctx: &RequestContext,
    request: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(request.groups_names.len());
    for group_id in request.groups_names {
        let error = broker.groups.delete_group(broker, &group_id).await;
        results.push(
            DeletableGroupResult::default()
                .with_group_id(group_id)
                .with_error_code(error.map(|e| e.code()).unwrap_or(0)),
        );
    }
    DeleteGroupsResponse::default().with_results(results)
}
