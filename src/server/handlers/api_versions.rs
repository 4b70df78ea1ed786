//! ApiVersions: the versions of every API this broker serves, derived from the dispatch registry.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};

use crate::broker::Broker;
use crate::server::dispatch::{
    encode_response_version, served_on, DispatchError, RequestContext, Versions,
};

/// v0-v4. v3 adds the flexible encoding and the client software fields (KIP-511); v4 only
/// allows a 0 min version in supported features (KAFKA-17011).
pub const VERSIONS: Versions = Versions::new(0, 4);

pub async fn handle(
    _broker: &Arc<Broker>,
    ctx: &RequestContext,
    _request: ApiVersionsRequest,
) -> ApiVersionsResponse {
    response(ctx)
}

/// What ApiVersions answers on the listener of `ctx`; the controller listener answers it
/// before the broker has started (server/controller_listener.rs).
pub fn response(ctx: &RequestContext) -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(0)
        .with_api_keys(advertised(ctx))
}

/// KIP-511: a client that asks with a version newer than ours gets UNSUPPORTED_VERSION and
/// our list, encoded as v0 (whose layout every client can read), and then retries.
pub fn unsupported_version_response(ctx: &RequestContext) -> Result<Vec<Bytes>, DispatchError> {
    let response = ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(advertised(ctx));
    encode_response_version(ctx, &response, 0)
}

/// What the request's listener serves (a controller listener serves only the controller's).
fn advertised(ctx: &RequestContext) -> Vec<ApiVersion> {
    served_on(&ctx.listener)
        .map(|(key, versions)| {
            ApiVersion::default()
                .with_api_key(*key as i16)
                .with_min_version(versions.advertised_min)
                .with_max_version(versions.max)
        })
        .collect()
}
