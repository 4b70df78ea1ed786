//! Raft transport of the metadata quorum: openraft's RPCs to the other voters, over TCP to
//! their controller listeners (`controller.quorum.voters`), framed as [`crate::metadata::rpc`]
//! describes. A quorum of one never asks for a client.

use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;

use crate::metadata::rpc::{RpcBody, RpcConnection, RpcReply, RpcRequest};
use crate::metadata::types::{NodeId, TypeConfig};

/// Makes one connection per peer and purpose (openraft asks for one per replication stream
/// and per election).
#[derive(Clone, Debug)]
pub struct QuorumNetwork {
    pub cluster_id: String,
    pub node_id: i32,
}

/// A connection to one voter.
#[derive(Debug)]
pub struct PeerClient {
    target: NodeId,
    cluster_id: String,
    node_id: i32,
    connection: RpcConnection,
}

impl RaftNetworkFactory<TypeConfig> for QuorumNetwork {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient {
        PeerClient {
            target,
            cluster_id: self.cluster_id.clone(),
            node_id: self.node_id,
            connection: RpcConnection::new(node.addr.clone()),
        }
    }
}

type Failure<E> = RPCError<NodeId, BasicNode, RaftError<NodeId, E>>;

impl PeerClient {
    /// Sends one RPC; a peer that cannot be reached is `Unreachable` (openraft backs off), a
    /// refusal (another cluster, still starting) a network error.
    async fn send<E: std::error::Error>(
        &mut self,
        body: RpcBody,
        option: &RPCOption,
    ) -> Result<RpcReply, Failure<E>> {
        let request = RpcRequest {
            cluster_id: self.cluster_id.clone(),
            from: self.node_id,
            body,
        };
        // At least a second: a busy 2-core machine must not turn a slow peer into a lost one.
        let timeout = option.hard_ttl().max(Duration::from_secs(1));
        match self.connection.call(&request, timeout).await {
            Ok(RpcReply::Refused(reason)) => {
                tracing::warn!(target = self.target, addr = self.connection.addr(), %reason,
                    "metadata quorum peer refused a request");
                Err(RPCError::Network(NetworkError::new(
                    &std::io::Error::other(reason),
                )))
            }
            Ok(reply) => Ok(reply),
            Err(e) => {
                tracing::debug!(target = self.target, addr = self.connection.addr(), error = %e,
                    "metadata quorum peer unreachable");
                Err(RPCError::Unreachable(Unreachable::new(&e)))
            }
        }
    }

    fn unexpected<E: std::error::Error>(&self, reply: &RpcReply) -> Failure<E> {
        let reason = format!("unexpected reply from node {}: {reply:?}", self.target);
        RPCError::Network(NetworkError::new(&std::io::Error::other(reason)))
    }

    fn remote<E: std::error::Error>(&self, e: RaftError<NodeId, E>) -> Failure<E> {
        RPCError::RemoteError(RemoteError::new(self.target, e))
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        match self.send(RpcBody::AppendEntries(rpc), &option).await? {
            RpcReply::AppendEntries(Ok(response)) => Ok(response),
            RpcReply::AppendEntries(Err(e)) => Err(self.remote(e)),
            other => Err(self.unexpected(&other)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        match self.send(RpcBody::InstallSnapshot(rpc), &option).await? {
            RpcReply::InstallSnapshot(Ok(response)) => Ok(response),
            RpcReply::InstallSnapshot(Err(e)) => Err(self.remote(e)),
            other => Err(self.unexpected(&other)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        match self.send(RpcBody::Vote(rpc), &option).await? {
            RpcReply::Vote(Ok(response)) => Ok(response),
            RpcReply::Vote(Err(e)) => Err(self.remote(e)),
            other => Err(self.unexpected(&other)),
        }
    }
}
