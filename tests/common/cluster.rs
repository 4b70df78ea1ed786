//! A cluster of in-process brokers on 127.0.0.1 for black-box tests: each node combines the
//! broker and controller roles, as `process.roles=broker,controller` does, with its own data
//! directory, an ephemeral client listener and a controller listener on a port picked before
//! start (the voters must name each other's ports in `controller.quorum.voters`). Each node's
//! storage is formatted first, as `sluice format` would: several voters need formatted dirs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sluice::clock::SystemClock;
use sluice::config::Config;
use sluice::format::{FormatOptions, QuorumOption};
use sluice::log::disk::FsDisk;
use sluice::server::Server;

use super::Client;

/// One node of a [`Cluster`]; `server` is `None` while it is stopped.
pub struct Node {
    pub node_id: i32,
    pub dir: tempfile::TempDir,
    pub config: Config,
    pub server: Option<Server>,
}

impl Node {
    pub fn addr(&self) -> SocketAddr {
        self.server.as_ref().expect("node running").local_addr
    }

    pub async fn client(&self) -> Client {
        Client::connect(self.addr()).await
    }
}

pub struct Cluster {
    pub nodes: Vec<Node>,
}

/// A free port on 127.0.0.1 (bound once and released: the voters need fixed ports).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

impl Cluster {
    /// Starts `size` nodes (ids 1..=size) of one cluster and waits until each has started,
    /// which needs the quorum to have elected a leader. `adjust` sees each node's config.
    pub async fn start(size: i32, adjust: impl Fn(&mut Config)) -> Cluster {
        super::init_tracing();
        let ports: Vec<u16> = (0..size).map(|_| free_port()).collect();
        let voters = ports
            .iter()
            .enumerate()
            .map(|(i, port)| format!("{}@127.0.0.1:{port}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let mut nodes = Vec::new();
        for (i, port) in ports.iter().enumerate() {
            let node_id = i as i32 + 1;
            let dir = tempfile::tempdir().expect("temp dir");
            let node_id_value = node_id.to_string();
            let listeners = format!("PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:{port}");
            let mut config = Config::for_test_with(
                dir.path(),
                &[
                    ("node.id", &node_id_value),
                    ("listeners", &listeners),
                    ("advertised.listeners", "PLAINTEXT://127.0.0.1:0"),
                    ("controller.listener.names", "CONTROLLER"),
                    ("controller.quorum.voters", &voters),
                ],
            );
            config.cluster_id = Some("sluice-test-cluster-0A".to_string());
            config.unreplicated_quorum_for_tests = true;
            adjust(&mut config);
            let options = FormatOptions {
                cluster_id: config.cluster_id.clone().expect("cluster id"),
                ignore_formatted: false,
                release_version: None,
                quorum: QuorumOption::None,
            };
            sluice::format::format(&config, &options).expect("sluice format");
            nodes.push(Node {
                node_id,
                dir,
                config,
                server: None,
            });
        }
        let mut cluster = Cluster { nodes };
        let indexes: Vec<usize> = (0..cluster.nodes.len()).collect();
        cluster.start_nodes(&indexes).await;
        cluster
    }

    /// Starts the stopped nodes at `indexes` together (a quorum forms only with a majority).
    pub async fn start_nodes(&mut self, indexes: &[usize]) {
        let mut starts = tokio::task::JoinSet::new();
        for &i in indexes {
            let config = self.nodes[i].config.clone();
            starts.spawn(async move {
                let started = tokio::time::timeout(
                    Duration::from_secs(90),
                    Server::start_with(config, Arc::new(FsDisk::new()), Arc::new(SystemClock)),
                )
                .await;
                (i, started)
            });
        }
        while let Some(joined) = starts.join_next().await {
            let (i, started) = joined.expect("start task");
            let server = started
                .unwrap_or_else(|_| panic!("node {} did not start within 90 s", i + 1))
                .unwrap_or_else(|e| panic!("node {} failed to start: {e}", i + 1));
            self.nodes[i].server = Some(server);
        }
    }

    /// Stops node `index` as SIGKILL would (nothing more is flushed).
    pub async fn kill(&mut self, index: usize) {
        if let Some(server) = self.nodes[index].server.take() {
            server.abort().await;
        }
    }

    /// The active controller as node `index`'s image tells it (-1: none known).
    pub fn controller_seen_by(&self, index: usize) -> i32 {
        self.nodes[index]
            .server
            .as_ref()
            .expect("node running")
            .broker
            .image()
            .controller_id
    }

    pub fn running(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.server.is_some())
    }

    /// Stops every running node cleanly, all at once: each one's controlled shutdown needs the
    /// metadata quorum, which stopping them one by one would take away from the last ones.
    pub async fn shutdown(mut self) {
        let mut stops = tokio::task::JoinSet::new();
        for node in &mut self.nodes {
            if let Some(server) = node.server.take() {
                stops.spawn(server.shutdown());
            }
        }
        while stops.join_next().await.is_some() {}
    }
}

/// Polls `check` every 50 ms until it holds or `within` has passed.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {within:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
