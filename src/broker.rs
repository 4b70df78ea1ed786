//! The shared state every handler reads: config, metadata image, partition logs, clock, metrics.
//!
//! Handlers never hold a lock of this struct across an await: the metadata image is an
//! immutable `Arc` swapped by the controller, and each partition owns its own state.

use indexmap::IndexMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::group::GroupCoordinator;
use crate::log::disk::Disk;
use crate::log::log_manager::LogManager;
use crate::log::partition::PartitionLog;
use crate::log::LogConfig;
use crate::metadata::broker_lifecycle::BrokerLifecycle;
use crate::metadata::controller::{
    BrokerLifecycleConfig, ControllerConfig, CreateTopic, MetadataController, QuorumTiming,
};
use crate::metadata::image::{BrokerEndpoint, BrokerRegistration, MetadataImage, TopicImage};
use crate::metrics::Metrics;
use crate::replication::{FetcherConfig, ReplicaManager};

/// How long start waits for the controller to unfence this broker after registering.
const UNFENCE_TIMEOUT: Duration = Duration::from_secs(60);

/// One broker: what `sluice` runs, and what each black-box test starts on 127.0.0.1:0.
#[derive(Debug)]
pub struct Broker {
    pub config: Config,
    pub node_id: i32,
    pub cluster_id: String,
    /// Where clients are told to connect, one per broker listener (advertised.listeners, with
    /// wildcard hosts and port 0 resolved to what was bound).
    pub endpoints: Vec<BrokerEndpoint>,
    pub metadata: Arc<MetadataController>,
    /// Registration, heartbeats and controlled shutdown with the active controller.
    pub lifecycle: BrokerLifecycle,
    pub logs: Arc<LogManager>,
    /// The partitions this broker hosts, as leader or follower (replication/).
    pub replicas: Arc<ReplicaManager>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Metrics,
    /// Bumped on every append so long-polling fetches wake and re-read (see handlers/fetch.rs).
    pub appended: watch::Sender<u64>,
    /// Cancelled once at shutdown; long polls and connections watch it.
    pub shutdown: CancellationToken,
    /// The broker's own tasks (the metadata applier), which end at `shutdown`.
    pub background: tokio_util::task::TaskTracker,
    /// Producer id blocks for InitProducerId (KIP-98).
    pub producer_ids: crate::txn::ProducerIdManager,
    /// Consumer groups and committed offsets (group/).
    pub groups: GroupCoordinator,
    /// `config` with the dynamic broker configs of the metadata image laid over it (KIP-226);
    /// replaced by [`Broker::apply_dynamic_configs`], read through [`Broker::effective_config`].
    effective_config: Mutex<Arc<Config>>,
}

impl Broker {
    /// This broker's advertised endpoint on `listener`, if that listener is advertised.
    pub fn endpoint(&self, listener: &str) -> Option<&BrokerEndpoint> {
        self.endpoints.iter().find(|e| e.name == listener)
    }

    /// The advertised endpoints for the log, `NAME://host:port` comma-separated.
    pub fn advertised_endpoints(&self) -> String {
        let all: Vec<String> = self.endpoints.iter().map(|e| e.to_string()).collect();
        all.join(",")
    }

    /// Opens storage (locking log.dirs, reading or writing meta.properties), starts the
    /// metadata quorum, and registers this broker in it. The controller is handed to
    /// `controller_slot` as soon as it is open, before the quorum has a leader: the controller
    /// listener serves the other voters' RPCs from it, without which no leader is elected.
    pub async fn start(
        config: Config,
        bound: &[(Arc<str>, SocketAddr)],
        disk: Arc<dyn Disk>,
        clock: Arc<dyn Clock>,
        controller_slot: &watch::Sender<Option<Arc<MetadataController>>>,
    ) -> Result<Arc<Broker>> {
        let metrics = Metrics::with_series_max(config.metrics_series_max);
        let node_id = config.node_id;
        // Before LogManager::open, which formats empty dirs: several voters need formatted ones.
        let voters = crate::format::start::quorum_voters(&config)?;
        let logs = Arc::new(LogManager::open(
            config.log_dirs.clone(),
            disk,
            clock.clone(),
            metrics.clone(),
            node_id,
            config.cluster_id.clone(),
        )?);
        let cluster_id = logs.cluster_id().to_string();
        let metadata_dir = config.metadata_log_dir().join("__cluster_metadata-0");
        let metadata = MetadataController::open(ControllerConfig {
            node_id,
            dir: metadata_dir,
            cluster_id: cluster_id.clone(),
            voters,
            timing: QuorumTiming {
                fetch_timeout_ms: config.controller_quorum_fetch_timeout_ms,
                election_backoff_max_ms: config.controller_quorum_election_backoff_max_ms,
                request_timeout_ms: config.controller_quorum_request_timeout_ms,
            },
            brokers: BrokerLifecycleConfig {
                session_timeout_ms: config.broker_session_timeout_ms.max(1) as u64,
                unclean_leader_election_enable: config.unclean_leader_election_enable,
            },
        })
        .await?;
        controller_slot.send_replace(Some(metadata.clone()));
        let endpoints = advertised_endpoints(&config, bound);
        let registered = async {
            metadata.wait_ready().await?;
            let lifecycle = BrokerLifecycle::start(
                metadata.clone(),
                // Incarnation, epoch and fencing are the lifecycle's and the controller's.
                BrokerRegistration {
                    node_id,
                    endpoints: endpoints.clone(),
                    rack: config.broker_rack.clone(),
                    ..Default::default()
                },
                Duration::from_millis(config.broker_heartbeat_interval_ms.max(1) as u64),
            )
            .await?;
            // Kafka's broker serves once the controller has unfenced it: it has caught up
            // with the metadata log, and leads the partitions it can.
            lifecycle.wait_unfenced(UNFENCE_TIMEOUT).await?;
            Ok::<_, Error>(lifecycle)
        };
        let lifecycle = match registered.await {
            Ok(lifecycle) => lifecycle,
            Err(e) => {
                metadata.shutdown().await;
                return Err(e);
            }
        };
        let groups = GroupCoordinator::new(&config, clock.clone());
        let replicas = Arc::new(ReplicaManager::new(
            node_id,
            logs.clone(),
            clock.clone(),
            metadata.clone(),
            Arc::new(lifecycle.broker_epoch_source()),
            fetcher_config(&config),
        ));
        let broker = Arc::new(Broker {
            replicas,
            groups,
            effective_config: Mutex::new(Arc::new(config.clone())),
            config,
            node_id,
            cluster_id,
            endpoints,
            metadata,
            lifecycle,
            logs,
            clock,
            metrics,
            appended: watch::Sender::new(0),
            shutdown: CancellationToken::new(),
            background: tokio_util::task::TaskTracker::new(),
            producer_ids: crate::txn::ProducerIdManager::new(),
        });
        broker.drop_logs_of_deleted_topics();
        // Partitions loaded from disk get their topic's configs (and the dynamic broker
        // defaults) now rather than on first use, so retention applies them from the start.
        broker.apply_dynamic_configs();
        // Every hosted partition takes its role before the first request, then each image
        // change is applied as it comes.
        let first = broker.image();
        broker.apply_image(None, first.clone()).await;
        broker
            .background
            .spawn(broker.clone().follow_metadata(first));
        broker
            .replicas
            .start_isr_expiration(broker.config.replica_lag_time_max_ms);
        broker.groups.load(&broker).await?;
        // Created at start (not on first FindCoordinator) so that a group's first commit
        // never waits for 50 partitions to be created.
        if let Err(e) = crate::group::ensure_offsets_topic(&broker).await {
            tracing::warn!(error = %e, "could not create __consumer_offsets; retried on first use");
        }
        Ok(broker)
    }

    /// The current metadata image.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.metadata.image()
    }

    /// The log of a partition this broker hosts (leader or follower); NOT_LEADER_OR_FOLLOWER
    /// when it is not one of its replicas.
    pub fn partition(&self, topic: &TopicImage, partition: i32) -> Result<Arc<PartitionLog>> {
        self.replica(topic, partition).map(|p| p.log.clone())
    }

    /// A partition this broker hosts, with its replication state.
    pub fn replica(
        &self,
        topic: &TopicImage,
        partition: i32,
    ) -> Result<Arc<crate::replication::Partition>> {
        self.replicas
            .hosted(topic, partition, || self.log_config(topic))
    }

    /// A partition this broker leads, else NOT_LEADER_OR_FOLLOWER: what every client-facing
    /// partition API serves from (Kafka's getPartitionOrError with leader checks).
    pub fn leader(
        &self,
        topic: &TopicImage,
        partition: i32,
    ) -> Result<Arc<crate::replication::Partition>> {
        self.replicas
            .leader(topic, partition, || self.log_config(topic))
    }

    /// Applies one metadata image to the replica layer (off the runtime's workers: it creates
    /// and deletes logs), and the broker configs when they changed.
    async fn apply_image(
        self: &Arc<Self>,
        prev: Option<Arc<MetadataImage>>,
        next: Arc<MetadataImage>,
    ) {
        let broker = self.clone();
        let configs_changed = prev.as_ref().is_none_or(|p| {
            let node = self.node_id.to_string();
            p.broker_config("") != next.broker_config("")
                || p.broker_config(&node) != next.broker_config(&node)
        });
        let applied = tokio::task::spawn_blocking(move || {
            if configs_changed && prev.is_some() {
                broker.apply_dynamic_configs();
            }
            broker
                .replicas
                .apply_image(prev.as_deref(), &next, &|t| broker.log_config(t));
        })
        .await;
        if let Err(e) = applied {
            tracing::error!(error = %e, "applying a metadata image to the replica layer failed");
        }
    }

    /// Applies each new image against the previous one until shutdown.
    async fn follow_metadata(self: Arc<Self>, mut prev: Arc<MetadataImage>) {
        let mut images = self.metadata.subscribe();
        loop {
            tokio::select! {
                changed = images.changed() => if changed.is_err() { return },
                _ = self.shutdown.cancelled() => return,
            }
            let next = images.borrow_and_update().clone();
            if Arc::ptr_eq(&next, &prev) {
                continue;
            }
            self.apply_image(Some(prev), next.clone()).await;
            prev = next;
        }
    }

    /// The effective log settings of a topic: its own configs over the broker's defaults
    /// (dynamic ones included).
    pub fn log_config(&self, topic: &TopicImage) -> LogConfig {
        let config = self.effective_config();
        let effective = config.effective_topic_config(&topic.configs);
        LogConfig {
            producer_id_expiration_ms: i64::from(config.producer_id_expiration_ms),
            producer_ids_max: config.producer_ids_max_per_partition,
            decompressed_batch_max_bytes: config.decompressed_batch_max_bytes,
            ..LogConfig::from_effective(&effective)
        }
    }

    /// The broker config in force now: static settings with the dynamic broker configs
    /// (AlterConfigs on resource "" or this node id) over them.
    pub fn effective_config(&self) -> Arc<Config> {
        self.effective_config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Recomputes the effective config from the current metadata image and gives every
    /// loaded partition its topic's effective log settings, so AlterConfigs takes effect on
    /// live partitions without a restart. Called at start and after each config change.
    pub fn apply_dynamic_configs(&self) {
        let image = self.image();
        let node = self.node_id.to_string();
        let (cluster_default, per_broker) = (image.broker_config(""), image.broker_config(&node));
        let dynamic = |c: Option<&IndexMap<String, String>>| c.is_some_and(|c| !c.is_empty());
        // Without dynamic configs the static config is the effective one as it is (rebuilding
        // it from its text entries would drop values set in code, as tests set them).
        let effective = if dynamic(cluster_default) || dynamic(per_broker) {
            self.config.with_dynamic(cluster_default, per_broker)
        } else {
            Ok(self.config.clone())
        };
        match effective {
            Ok(config) => {
                *self
                    .effective_config
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
            }
            // Values are validated before they reach the metadata log; one that no longer
            // validates (a newer broker's value after a downgrade) keeps the previous config.
            Err(e) => tracing::warn!(error = %e, "dynamic broker configs not applied"),
        }
        for partition in self.logs.partitions() {
            let topic = image
                .topic(partition.topic())
                .filter(|t| t.topic_id == partition.topic_id());
            if let Some(topic) = topic {
                partition.set_config(self.log_config(topic));
            }
        }
    }

    /// Creates a topic through the metadata quorum with the broker's defaults where the
    /// request says -1 (KIP-464), as auto-creation and CreateTopics both need.
    pub async fn create_topic(&self, request: CreateTopic) -> Result<uuid::Uuid> {
        let (name, validate_only) = (request.name.clone(), request.validate_only);
        let topic_id = self.metadata.create_topic(request).await?;
        // This broker's replicas of the new partitions exist before the answer (the applier
        // would create them moments later, on every broker).
        if !validate_only {
            if let Some(topic) = self.image().topics.get(&name).cloned() {
                self.replicas
                    .apply_topic(&topic, false, &|t| self.log_config(t));
            }
        }
        Ok(topic_id)
    }

    /// Deletes a topic from the metadata and then its logs. The order matters: once the image
    /// no longer has the topic no request can reach its partitions.
    pub async fn delete_topic(self: &Arc<Self>, name: &str) -> Result<uuid::Uuid> {
        let topic_id = self.metadata.delete_topic(name).await?;
        // Every replica's applier removes it; here at once (all its logs in one pass, then the
        // hosted partitions), so no request on this broker finds it after the answer.
        self.logs.delete_topic(name)?;
        self.apply_image(None, self.image()).await;
        Ok(topic_id)
    }

    /// Wakes long-polling fetches after an append.
    pub fn notify_appended(&self) {
        self.appended.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// At start, logs whose topic was deleted while the broker was down (or recreated with a
    /// new id) are removed so their data is never served under the new topic.
    fn drop_logs_of_deleted_topics(&self) {
        let image = self.image();
        for (topic, topic_id) in self.logs.topics() {
            let keep = image.topic(&topic).is_some_and(|t| t.topic_id == topic_id);
            if !keep {
                if let Err(e) = self.logs.delete_topic(&topic) {
                    tracing::warn!(topic, error = %e, "could not remove log of deleted topic");
                }
            }
        }
    }
}

/// Kafka's `replica.fetch.*` settings for the follower fetchers.
fn fetcher_config(config: &Config) -> FetcherConfig {
    FetcherConfig {
        node_id: config.node_id,
        listener: config.inter_broker_listener_name.clone(),
        max_wait_ms: config.replica_fetch_wait_max_ms,
        min_bytes: config.replica_fetch_min_bytes,
        response_max_bytes: config.replica_fetch_response_max_bytes,
        partition_max_bytes: config.replica_fetch_max_bytes,
        backoff_ms: config.replica_fetch_backoff_ms.max(0) as u64,
        request_timeout_ms: 30_000,
        fetchers_per_broker: config.num_replica_fetchers.max(1) as usize,
    }
}

/// advertised.listeners (or listeners) of the broker listeners, each with an unspecified host
/// or port 0 resolved to what its listener of the same name is bound to, so tests on
/// 127.0.0.1:0 advertise the real port.
fn advertised_endpoints(config: &Config, bound: &[(Arc<str>, SocketAddr)]) -> Vec<BrokerEndpoint> {
    config
        .advertised_broker_listeners()
        .map(|l| {
            let addr = bound
                .iter()
                .find(|(name, _)| **name == *l.name)
                .map(|(_, addr)| *addr);
            let host = match addr {
                Some(addr) if l.is_wildcard_host() && !addr.ip().is_unspecified() => {
                    addr.ip().to_string()
                }
                _ if l.is_wildcard_host() => "127.0.0.1".to_string(),
                _ => l.host.clone(),
            };
            let port = match addr {
                Some(addr) if l.port == 0 => addr.port(),
                _ => l.port,
            };
            BrokerEndpoint {
                name: l.name.clone(),
                host,
                port: i32::from(port),
                security_protocol: l.security_protocol.id(),
            }
        })
        .collect()
}
