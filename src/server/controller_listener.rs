//! Connections on the controller listener (`controller.listener.names`): the other voters'
//! quorum RPCs ([`crate::metadata::rpc`]) and Kafka clients' ApiVersions. Served from the
//! moment the listener is bound, before this node's broker has started, since the quorum must
//! elect a leader before any broker of it can finish starting.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::metadata::rpc::{self, RpcReply, RPC_FRAME_BYTES_MAX};
use crate::metadata::MetadataController;
use crate::protocol::frame::{read_frame, write_frame};
use crate::server::dispatch::{self, encode_response, DispatchError};
use crate::server::handlers::api_versions;
use crate::server::net::{self, BoundListener, ListenerInfo, Stream};

/// The controller of this node once it is open; `None` while the node starts.
pub type ControllerSlot = watch::Receiver<Option<Arc<MetadataController>>>;

/// What every controller-listener connection shares.
#[derive(Clone)]
pub struct ControllerListener {
    pub controller: ControllerSlot,
    pub shutdown: CancellationToken,
    /// `connections.max.idle.ms`.
    pub idle: Duration,
    /// `max.connections` and `max.connections.per.ip`, counted with every other listener's.
    pub(super) limits: super::ConnectionLimits,
    pub max_connections_per_ip: i32,
}

/// Accepts connections on a controller listener until shutdown.
pub async fn accept_loop(listener: BoundListener, shared: ControllerListener, tasks: TaskTracker) {
    loop {
        let accepted = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            accepted = listener.socket.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = shared.limits.connections.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "max.connections reached; closing new controller connection");
            continue;
        };
        let Some(ip_guard) = super::PerIpGuard::acquire(
            &shared.limits.per_ip,
            peer.ip(),
            shared.max_connections_per_ip,
        ) else {
            tracing::warn!(%peer, "max.connections.per.ip reached; closing new controller connection");
            continue;
        };
        let shared = shared.clone();
        let info = listener.info.clone();
        tasks.spawn(async move {
            let _permit = permit;
            let _ip_guard = ip_guard;
            serve(shared, stream, peer, info).await;
        });
    }
}

/// Serves one connection: requests one at a time, in order, as on every listener.
async fn serve(shared: ControllerListener, stream: Stream, peer: SocketAddr, info: ListenerInfo) {
    net::configure(&stream);
    let (read_half, write_half) = stream.into_split();
    let mut reader = BufReader::new(read_half);
    let mut writer = BufWriter::new(write_half);
    loop {
        let read = tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            read = tokio::time::timeout(shared.idle, read_frame(&mut reader, RPC_FRAME_BYTES_MAX)) => read,
        };
        let frame = match read {
            Err(_) => break,
            Ok(Ok(Some(frame))) => frame,
            Ok(Ok(None)) => break,
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "controller connection read failed");
                break;
            }
        };
        let response = if rpc::is_rpc(&frame) {
            match rpc::decode_request(&frame) {
                Ok((correlation_id, request)) => {
                    let controller = shared.controller.borrow().clone();
                    let reply = match controller {
                        Some(controller) => controller.handle_rpc(request).await,
                        None => RpcReply::Refused("this node is still starting".into()),
                    };
                    Ok(vec![rpc::encode_reply(correlation_id, &reply)])
                }
                Err(reason) => {
                    tracing::warn!(%peer, %reason, "closing controller connection");
                    break;
                }
            }
        } else {
            kafka_request(frame, peer, &info)
        };
        match response {
            Ok(parts) => {
                if write_frame(&mut writer, &parts).await.is_err() || writer.flush().await.is_err()
                {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(%peer, error = %e, "closing connection");
                break;
            }
        }
    }
}

/// A Kafka request on the controller listener: ApiVersions is answered, anything else closes
/// the connection (the listener serves only the controller's APIs).
fn kafka_request(
    mut frame: Bytes,
    peer: SocketAddr,
    info: &ListenerInfo,
) -> Result<Vec<Bytes>, DispatchError> {
    let (ctx, supported) = dispatch::request_context(&mut frame, peer, info)?;
    if ctx.api_key != ApiKey::ApiVersions {
        return Err(DispatchError::NotOnListener {
            api_key: ctx.api_key,
            listener: info.name.clone(),
        });
    }
    if !supported.contains(ctx.api_version) {
        return api_versions::unsupported_version_response(&ctx);
    }
    encode_response(&ctx, &api_versions::response(&ctx))
}
