//! The metadata controller: the operations handlers call to change cluster facts (register
//! brokers, create and delete topics, set configs). Each operation runs on the active
//! controller (the quorum's leader; another node forwards it there, as Kafka forwards admin
//! requests, KIP-590), validates against that node's image, turns into one batch of records
//! and is proposed to the metadata quorum; the state machine re-checks the batch when applying
//! it, so concurrent operations cannot both win. A forwarding node answers only once its own
//! image has applied the result, so a client never misses its own change.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::{BasicNode, ServerState};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::metadata::cluster_control::{
    fence_records, heartbeat_records, register_records, BrokerHeartbeat, BrokerSessions,
    HeartbeatReply,
};
use crate::metadata::files;
use crate::metadata::image::{validate_topic_name, MetadataImage, RejectReason};
use crate::metadata::log_store::LogStore;
use crate::metadata::network::QuorumNetwork;
use crate::metadata::records::{
    BrokerRegistration, ConfigResourceType, MetadataBatch, MetadataRecord,
};
use crate::metadata::replication_control::{
    alter_partition_record, place, replication_factor_error, usable_brokers, AlterPartition,
    PlacementSeed,
};
use crate::metadata::rpc::{
    ControllerWrite, RpcBody, RpcConnection, RpcReply, RpcRequest, WireError, WriteOutput,
    WriteReply,
};
pub use crate::metadata::rpc::{CreatePartitions, CreateTopic};
use crate::metadata::state_machine::{ImageSender, StateMachineStore};
use crate::metadata::types::{NodeId, Raft};

/// Identity of the metadata directory, checked on every start (Kafka's meta.properties role).
const QUORUM_META_FILE: &str = "quorum-meta.json";
/// Kafka's Topic.CLUSTER_METADATA_TOPIC_NAME: the KRaft metadata log, never a user topic.
pub const CLUSTER_METADATA_TOPIC: &str = "__cluster_metadata";
/// Kafka's QuorumController.MAX_RECORDS_PER_USER_OP: no operation writes a bigger batch.
pub const RECORDS_PER_OPERATION_MAX: usize = 10_000;
/// How long start waits for the quorum to have a leader and this node to apply its log.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a write waits for an active controller to take it and for this node's image to
/// apply it (Kafka's controller request timeout is the client's request.timeout.ms, 30 s).
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause before a forwarded write is retried on a new or recovering controller.
const WRITE_RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// Where and as whom the controller runs.
#[derive(Clone, Debug, Default)]
pub struct ControllerConfig {
    /// Kafka's `node.id`.
    pub node_id: i32,
    /// Directory of the metadata log, e.g. `<log.dirs[0]>/__cluster_metadata-0/`.
    pub dir: PathBuf,
    pub cluster_id: String,
    /// `controller.quorum.voters`: each voter's node id and the `host:port` of its controller
    /// listener. Empty, or this node alone: a quorum of one.
    pub voters: Vec<(i32, String)>,
    pub timing: QuorumTiming,
    pub brokers: BrokerLifecycleConfig,
}

/// What the active controller needs to decide about brokers and their partitions.
#[derive(Clone, Copy, Debug)]
pub struct BrokerLifecycleConfig {
    /// `broker.session.timeout.ms` (9000): a broker silent this long is fenced.
    pub session_timeout_ms: u64,
    /// The static `unclean.leader.election.enable` (false), under topic and dynamic configs.
    pub unclean_leader_election_enable: bool,
}

impl Default for BrokerLifecycleConfig {
    fn default() -> Self {
        BrokerLifecycleConfig {
            session_timeout_ms: 9000,
            unclean_leader_election_enable: false,
        }
    }
}

/// Kafka's `controller.quorum.*` timeouts, in milliseconds.
#[derive(Clone, Copy, Debug)]
pub struct QuorumTiming {
    /// `controller.quorum.fetch.timeout.ms` (2000): how long a voter goes without hearing from
    /// the leader before it stands for election.
    pub fetch_timeout_ms: u64,
    /// `controller.quorum.election.backoff.max.ms` (1000): the random spread of elections.
    pub election_backoff_max_ms: u64,
    /// `controller.quorum.request.timeout.ms` (2000): one RPC's deadline.
    pub request_timeout_ms: u64,
}

impl Default for QuorumTiming {
    fn default() -> Self {
        QuorumTiming {
            fetch_timeout_ms: 2000,
            election_backoff_max_ms: 1000,
            request_timeout_ms: 2000,
        }
    }
}

impl ControllerConfig {
    /// Whether other voters take part: a quorum of one needs no network.
    fn multi_voter(&self) -> bool {
        self.voters.iter().any(|(id, _)| *id != self.node_id)
    }
}

#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
struct QuorumMeta {
    cluster_id: String,
    node_id: i32,
}

impl std::fmt::Debug for MetadataController {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetadataController")
            .field("node_id", &self.node_id)
            .field(
                "last_applied_offset",
                &self.image_rx.borrow().last_applied_offset,
            )
            .finish_non_exhaustive()
    }
}

/// The metadata quorum member of this node, shared as `Arc`.
pub struct MetadataController {
    node_id: i32,
    cluster_id: String,
    raft: Raft,
    image_rx: watch::Receiver<Arc<MetadataImage>>,
    rng: Mutex<ChaCha20Rng>,
    /// Held until [`MetadataController::wait_ready`] hands it to the leader watch.
    image_tx: Mutex<Option<ImageSender>>,
    rng_seed: u64,
    dir: PathBuf,
    voters: Vec<(i32, String)>,
    leader_watch: Mutex<Option<JoinHandle<()>>>,
    /// Fences brokers whose session ran out, while this node is the active controller.
    session_watch: Mutex<Option<JoinHandle<()>>>,
    shut_down: AtomicBool,
    /// Serializes the writes run on this node as the active controller, as Kafka's controller
    /// runs one event at a time: each reads the image and proposes records computed from it,
    /// so two of them (ISR changes of one partition, two growths of one topic) must not be
    /// computed from the same image.
    control_lock: tokio::sync::Mutex<()>,
    /// Broker heartbeat sessions (meaningful while this node is the active controller).
    sessions: BrokerSessions,
    /// The raft term in which `sessions` were last granted afresh (Kafka's activation).
    sessions_term: Mutex<Option<u64>>,
    lifecycle: BrokerLifecycleConfig,
    /// This process's RegisterBrokerRecord.IncarnationId, drawn once the log is read (see
    /// [`MetadataController::wait_ready`]).
    incarnation_id: std::sync::OnceLock<Uuid>,
}

fn unavailable(e: impl std::fmt::Display) -> Error {
    Error::MetadataUnavailable(e.to_string())
}

fn unexpected(output: WriteOutput) -> Error {
    unavailable(format!(
        "the controller answered {output:?} to another write"
    ))
}

impl WriteOutput {
    fn done(self) -> Result<()> {
        match self {
            WriteOutput::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }
}

/// Refuses to start on a directory written for another cluster or node (as Kafka does with
/// meta.properties); records the identity on first start.
fn check_identity(cfg: &ControllerConfig) -> Result<()> {
    let want = QuorumMeta {
        cluster_id: cfg.cluster_id.clone(),
        node_id: cfg.node_id,
    };
    match files::read_json::<QuorumMeta>(&cfg.dir, QUORUM_META_FILE)? {
        Some(found) if found == want => Ok(()),
        Some(found) => Err(Error::InvalidConfig(format!(
            "metadata directory {} belongs to cluster.id {} node.id {}, not cluster.id {} node.id {}",
            cfg.dir.display(),
            found.cluster_id,
            found.node_id,
            want.cluster_id,
            want.node_id
        ))),
        None => Ok(files::write_json(&cfg.dir, QUORUM_META_FILE, &want, true)?),
    }
}

/// openraft's timing. A quorum of one elects itself at once on start, so short timeouts cost
/// nothing there. Several voters map Kafka's settings: a follower stands for election after
/// `controller.quorum.fetch.timeout.ms` without the leader, spread over
/// `controller.quorum.election.backoff.max.ms` so that voters rarely stand at once, and the
/// leader's heartbeat comes four times per fetch timeout, so one late heartbeat on a busy
/// machine never starts an election.
fn raft_config(cfg: &ControllerConfig) -> Result<Arc<openraft::Config>> {
    let t = cfg.timing;
    let config = if cfg.multi_voter() {
        let election_min = t.fetch_timeout_ms.max(200);
        openraft::Config {
            cluster_name: "sluice-metadata".into(),
            heartbeat_interval: (election_min / 4).max(50),
            election_timeout_min: election_min,
            election_timeout_max: election_min + t.election_backoff_max_ms.max(1),
            install_snapshot_timeout: t.request_timeout_ms.max(1000),
            ..Default::default()
        }
    } else {
        openraft::Config {
            cluster_name: "sluice-metadata".into(),
            heartbeat_interval: 50,
            election_timeout_min: 150,
            election_timeout_max: 300,
            ..Default::default()
        }
    };
    Ok(Arc::new(config.validate().map_err(unavailable)?))
}

impl MetadataController {
    /// Opens the stores in `cfg.dir`, forms a single-voter quorum on first start, and returns
    /// once this node leads and has applied its whole log. Topic ids come from an RNG seeded
    /// from the OS; [`MetadataController::start_with_seed`] is the deterministic variant.
    pub async fn start(cfg: ControllerConfig) -> Result<Arc<Self>> {
        Self::start_with_seed(cfg, rand::rngs::OsRng.next_u64()).await
    }

    /// [`MetadataController::start`] with the seed of the controller's RNG (topic ids) given,
    /// for tests and the simulator.
    pub async fn start_with_seed(cfg: ControllerConfig, rng_seed: u64) -> Result<Arc<Self>> {
        let controller = Self::open_with_seed(cfg, rng_seed).await?;
        if let Err(e) = controller.wait_ready().await {
            controller.shutdown().await;
            return Err(e);
        }
        Ok(controller)
    }

    /// [`MetadataController::open_with_seed`] with a seed from the OS.
    pub async fn open(cfg: ControllerConfig) -> Result<Arc<Self>> {
        Self::open_with_seed(cfg, rand::rngs::OsRng.next_u64()).await
    }

    /// Opens the stores in `cfg.dir` and starts the quorum member, without waiting for a
    /// leader: from here on it answers its peers' RPCs ([`MetadataController::handle_rpc`]),
    /// which a quorum of several needs before any of them can elect one.
    pub async fn open_with_seed(cfg: ControllerConfig, rng_seed: u64) -> Result<Arc<Self>> {
        let raft_id = NodeId::try_from(cfg.node_id)
            .map_err(|_| Error::InvalidConfig(format!("node.id {} is negative", cfg.node_id)))?;
        std::fs::create_dir_all(&cfg.dir)?;
        check_identity(&cfg)?;
        let log_store = LogStore::open(&cfg.dir)?;
        let state_machine = StateMachineStore::open(&cfg.dir, &cfg.cluster_id)?;
        let image_tx = state_machine.image_sender();
        let image_rx = image_tx.subscribe();
        let network = QuorumNetwork {
            cluster_id: cfg.cluster_id.clone(),
            node_id: cfg.node_id,
        };
        let raft = Raft::new(
            raft_id,
            raft_config(&cfg)?,
            network,
            log_store,
            state_machine,
        )
        .await
        .map_err(unavailable)?;
        let controller = Arc::new(Self {
            node_id: cfg.node_id,
            cluster_id: cfg.cluster_id.clone(),
            raft,
            image_rx,
            image_tx: Mutex::new(Some(image_tx)),
            rng: Mutex::new(ChaCha20Rng::seed_from_u64(rng_seed)),
            rng_seed,
            dir: cfg.dir.clone(),
            voters: cfg.voters.clone(),
            leader_watch: Mutex::new(None),
            session_watch: Mutex::new(None),
            shut_down: AtomicBool::new(false),
            control_lock: tokio::sync::Mutex::new(()),
            sessions_term: Mutex::new(None),
            sessions: BrokerSessions::new(Duration::from_millis(cfg.brokers.session_timeout_ms)),
            lifecycle: cfg.brokers,
            incarnation_id: std::sync::OnceLock::new(),
        });
        let weak = Arc::downgrade(&controller);
        *controller
            .session_watch
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(tokio::spawn(session_watch(
            weak,
            Duration::from_millis(cfg.brokers.session_timeout_ms),
        )));
        Ok(controller)
    }

    /// Forms the quorum on first start (every voter proposes the same membership, which
    /// openraft allows) and waits until it has a leader and this node has applied its log up
    /// to that leader's first entry.
    pub async fn wait_ready(&self) -> Result<()> {
        let raft_id = self.node_id as NodeId;
        let members: BTreeMap<NodeId, BasicNode> = if self.voters.is_empty() {
            BTreeMap::from([(raft_id, BasicNode::default())])
        } else {
            self.voters
                .iter()
                .map(|(id, addr)| (*id as NodeId, BasicNode::new(addr)))
                .collect()
        };
        if self.raft.is_initialized().await.map_err(unavailable)? {
            self.check_membership(&members)?;
            if !self.multi_voter() {
                // Restart: do not wait for an election timeout to notice there is no leader.
                self.raft.trigger().elect().await.map_err(unavailable)?;
            }
        } else {
            match self.raft.initialize(members).await {
                Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                Err(e) => return Err(unavailable(e)),
            }
        }
        if self.multi_voter() {
            tracing::info!(node_id = self.node_id, voters = ?self.voters,
                "waiting for the metadata quorum to elect a leader");
        }
        self.raft
            .wait(Some(STARTUP_TIMEOUT))
            .metrics(
                |m| {
                    m.current_leader.is_some()
                        // An entry of the leader's term is applied: so is all before it.
                        && m.last_applied.is_some_and(|l| l.leader_id.term == m.current_term)
                        && m.last_applied.map(|l| l.index) == m.last_log_index
                },
                "metadata quorum leader with this node's log applied",
            )
            .await
            .map_err(|e| {
                Error::MetadataUnavailable(format!(
                    "no metadata quorum leader within {}s (controller.quorum.voters={}): {e}",
                    STARTUP_TIMEOUT.as_secs(),
                    self.voters
                        .iter()
                        .map(|(id, addr)| format!("{id}@{addr}"))
                        .collect::<Vec<_>>()
                        .join(",")
                ))
            })?;

        let last_applied_offset = self.image_rx.borrow().last_applied_offset;
        // Mix the log position into the seed so that a restart with the same seed does not
        // hand out the topic ids of the previous run again.
        let seed = self.rng_seed ^ (last_applied_offset as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        // Drawn after the reseed: the same seed on a restart still gives a new incarnation,
        // since the log has grown by the previous registration.
        let mut bytes = [0u8; 16];
        rng.fill_bytes(&mut bytes);
        let _ = self
            .incarnation_id
            .set(uuid::Builder::from_random_bytes(bytes).into_uuid());
        *self.rng.lock().unwrap_or_else(|e| e.into_inner()) = rng;
        if let Some(image_tx) = self
            .image_tx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            // Publish the leader before returning; the watch keeps it current.
            let leader = self.raft.metrics().borrow().current_leader;
            set_controller_id(&image_tx, leader.map_or(-1, |l| l as i32));
            *self.leader_watch.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(spawn_leader_watch(&self.raft, image_tx));
        }
        tracing::info!(
            node_id = self.node_id,
            dir = %self.dir.display(),
            last_applied_offset,
            leader = ?self.raft.metrics().borrow().current_leader,
            "metadata controller started"
        );
        Ok(())
    }

    /// A static quorum's voters are fixed (kraft.version 0): a restart with another
    /// `controller.quorum.voters` than the log was formed with would split the quorum.
    fn check_membership(&self, configured: &BTreeMap<NodeId, BasicNode>) -> Result<()> {
        let stored: BTreeSet<NodeId> = self
            .raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .voter_ids()
            .collect();
        let wanted: BTreeSet<NodeId> = configured.keys().copied().collect();
        if stored == wanted {
            return Ok(());
        }
        Err(Error::InvalidConfig(format!(
            "controller.quorum.voters names voters {wanted:?} but the metadata log in {} was \
             formed by voters {stored:?}; a static quorum cannot change its voters",
            self.dir.display()
        )))
    }

    /// This node's id.
    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    /// The quorum's state for metrics: (current term, last log index, last applied index,
    /// leader node id). openraft 0.9 reports the applied index, not the commit index; on one
    /// node they differ only while an entry is being applied.
    pub fn raft_status(&self) -> (u64, Option<u64>, Option<u64>, Option<u64>) {
        let m = self.raft.metrics().borrow().clone();
        (
            m.current_term,
            m.last_log_index,
            m.last_applied.map(|l| l.index),
            m.current_leader,
        )
    }

    /// The current image.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.image_rx.borrow().clone()
    }

    /// A receiver that sees every new image.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.image_rx.clone()
    }

    /// This process's incarnation id (nil before [`MetadataController::wait_ready`]).
    pub fn incarnation_id(&self) -> Uuid {
        self.incarnation_id.get().copied().unwrap_or_default()
    }

    /// Registers a broker (Kafka's BrokerRegistration) and returns its broker epoch. The same
    /// incarnation registering again keeps its epoch (new endpoints are recorded); a new one
    /// registers fenced with a new epoch, unfenced by a heartbeat once caught up.
    pub async fn register_broker(&self, reg: BrokerRegistration) -> Result<i64> {
        match self.write(ControllerWrite::RegisterBroker(reg)).await? {
            WriteOutput::BrokerEpoch(epoch) => Ok(epoch),
            other => Err(unexpected(other)),
        }
    }

    async fn register_broker_local(&self, reg: BrokerRegistration) -> Result<i64> {
        let node_id = reg.node_id;
        let records = register_records(&self.image(), &self.sessions, reg, Instant::now())?;
        if !records.is_empty() {
            self.propose(records).await?;
        }
        self.image()
            .broker(node_id)
            .map(|b| b.broker_epoch)
            .ok_or(Error::BrokerIdNotRegistered(node_id))
    }

    /// One BrokerHeartbeat to the active controller (Kafka API 63): keeps the broker's
    /// session, unfences it once caught up, runs its controlled shutdown.
    pub async fn broker_heartbeat(&self, heartbeat: BrokerHeartbeat) -> Result<HeartbeatReply> {
        match self
            .write(ControllerWrite::BrokerHeartbeat(heartbeat))
            .await?
        {
            WriteOutput::Heartbeat(reply) => Ok(reply),
            other => Err(unexpected(other)),
        }
    }

    async fn broker_heartbeat_local(&self, heartbeat: BrokerHeartbeat) -> Result<HeartbeatReply> {
        let (records, reply) = heartbeat_records(
            &self.image(),
            &self.sessions,
            &heartbeat,
            self.lifecycle.unclean_leader_election_enable,
            Instant::now(),
        )?;
        if !records.is_empty() {
            self.propose(records).await?;
        }
        Ok(reply)
    }

    /// On the active controller: grants every broker a fresh session when this node has just
    /// become it, else fences the brokers whose session ran out (Kafka's fenceStaleBrokers).
    async fn fence_stale_brokers(&self) {
        if !self.is_active() {
            return;
        }
        let term = self.raft.metrics().borrow().current_term;
        let _serial = self.control_lock.lock().await;
        let fresh = {
            let mut active = self.sessions_term.lock().unwrap_or_else(|e| e.into_inner());
            let fresh = *active != Some(term);
            *active = Some(term);
            fresh
        };
        if fresh {
            self.sessions.activate(&self.image(), Instant::now());
            return;
        }
        for broker_id in self.sessions.expired(&self.image(), Instant::now()) {
            let records = fence_records(
                &self.image(),
                broker_id,
                self.lifecycle.unclean_leader_election_enable,
            );
            tracing::warn!(
                broker_id,
                partitions_changed = records.len().saturating_sub(1),
                "fencing a broker: no heartbeat within broker.session.timeout.ms"
            );
            if let Err(e) = self.propose(records).await {
                tracing::warn!(broker_id, error = %e, "could not fence a broker");
                return;
            }
        }
    }

    /// AlterPartition (KIP-497): the leader's ISR change, validated on the partition epoch.
    /// Returns once this node's image has it, so the leader sees its new ISR on return.
    pub async fn alter_partition(&self, req: AlterPartition) -> Result<()> {
        match self.write(ControllerWrite::AlterPartition(req)).await? {
            WriteOutput::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Creates a topic and returns its new topic id (for `validate_only`, the id it would get).
    pub async fn create_topic(&self, req: CreateTopic) -> Result<Uuid> {
        match self.write(ControllerWrite::CreateTopic(req)).await? {
            WriteOutput::TopicId(id) => Ok(id),
            other => Err(unexpected(other)),
        }
    }

    async fn create_topic_local(&self, req: CreateTopic) -> Result<Uuid> {
        let image = self.image();
        validate_topic_name(&req.name).map_err(Error::InvalidTopic)?;
        if req.name == CLUSTER_METADATA_TOPIC {
            // Kafka's ControllerApis refuses it: its partition directory is the metadata log.
            return Err(Error::InvalidRequest(format!(
                "Creation of internal topic {CLUSTER_METADATA_TOPIC} is prohibited."
            )));
        }
        if image.topic(&req.name).is_some() {
            return Err(RejectReason::TopicAlreadyExists { name: req.name }.into());
        }
        if let Some(existing) = image.colliding_topic(&req.name) {
            return Err(RejectReason::TopicCollision {
                name: req.name.clone(),
                existing: existing.to_string(),
            }
            .into());
        }
        if req.num_partitions < 1 {
            return Err(Error::InvalidPartitions(
                "Number of partitions was set to an invalid non-positive value.".into(),
            ));
        }
        if req.replication_factor < 1 {
            return Err(Error::InvalidReplicationFactor(
                "Replication factor must be larger than 0, or -1 to use the default value.".into(),
            ));
        }
        let rf = req.replication_factor as usize;
        let brokers = usable_brokers(&image);
        if rf > brokers.len() {
            return Err(replication_factor_error(rf, brokers.len()));
        }
        let partitions = req.num_partitions as usize;
        if partitions + req.configs.len() + 1 > RECORDS_PER_OPERATION_MAX {
            // Kafka answers POLICY_VIOLATION here (BoundedListTooLongException).
            return Err(Error::InvalidRequest(
                "Unable to perform excessively large batch operation.".into(),
            ));
        }
        let (topic_id, seed) = self.fresh_topic_id(&image, brokers.len());
        let assignments = place(&brokers, 0, partitions, rf, seed)?;
        if req.validate_only {
            return Ok(topic_id);
        }
        let mut records = Vec::with_capacity(1 + partitions + req.configs.len());
        records.push(MetadataRecord::Topic {
            name: req.name.clone(),
            topic_id,
        });
        for (p, replicas) in assignments.into_iter().enumerate() {
            records.push(MetadataRecord::Partition {
                topic_id,
                partition: p as i32,
                isr: replicas.clone(),
                leader: replicas[0],
                replicas,
                leader_epoch: 0,
                partition_epoch: 0,
            });
        }
        for (name, value) in req.configs {
            records.push(MetadataRecord::ConfigRecord {
                resource_type: ConfigResourceType::Topic,
                resource_name: req.name.clone(),
                name,
                value: Some(value),
            });
        }
        self.propose(records).await?;
        tracing::info!(topic = %req.name, %topic_id, partitions, "created topic");
        Ok(topic_id)
    }

    /// CreatePartitions (KIP-195): grows each topic to its new count, all in one batch, as
    /// Kafka's ReplicationControlManager does. Returns one result per request entry, in order.
    /// Serialized by `control_lock`: a Partition record whose index is below the count
    /// replaces that partition, so two racing growths from one image must not both be proposed.
    pub async fn create_partitions(
        &self,
        topics: Vec<CreatePartitions>,
        validate_only: bool,
    ) -> Result<Vec<Result<()>>> {
        let write = ControllerWrite::CreatePartitions {
            topics,
            validate_only,
        };
        match self.write(write).await? {
            WriteOutput::PartitionResults(results) => Ok(results
                .into_iter()
                .map(|r| r.map_err(Error::from))
                .collect()),
            other => Err(unexpected(other)),
        }
    }

    async fn create_partitions_local(
        &self,
        topics: Vec<CreatePartitions>,
        validate_only: bool,
    ) -> Result<Vec<Result<()>>> {
        let image = self.image();
        let mut records = Vec::new();
        let mut results = Vec::with_capacity(topics.len());
        for topic in &topics {
            let result = partition_records(&image, topic, records.len());
            results.push(result.map(|mut new| records.append(&mut new)));
        }
        if !validate_only && !records.is_empty() {
            self.propose(records).await?;
            for (topic, result) in topics.iter().zip(&results) {
                if result.is_ok() {
                    tracing::info!(topic = %topic.name, count = topic.count, "created partitions");
                }
            }
        }
        Ok(results)
    }

    /// Deletes a topic by name; returns its topic id.
    pub async fn delete_topic(&self, name: &str) -> Result<Uuid> {
        match self
            .write(ControllerWrite::DeleteTopic(name.to_string()))
            .await?
        {
            WriteOutput::TopicId(id) => Ok(id),
            other => Err(unexpected(other)),
        }
    }

    async fn delete_topic_local(&self, name: &str) -> Result<Uuid> {
        let topic_id = self
            .image()
            .topic(name)
            .map(|t| t.topic_id)
            .ok_or(Error::UnknownTopicOrPartition)?;
        match self.remove_topic(topic_id).await {
            // Deleted concurrently by someone else: by name, it is simply unknown now.
            Err(Error::UnknownTopicId) => Err(Error::UnknownTopicOrPartition),
            other => other.map(|()| topic_id),
        }
    }

    /// Deletes a topic by id; returns the id.
    pub async fn delete_topic_by_id(&self, topic_id: Uuid) -> Result<Uuid> {
        match self
            .write(ControllerWrite::DeleteTopicById(topic_id))
            .await?
        {
            WriteOutput::TopicId(id) => Ok(id),
            other => Err(unexpected(other)),
        }
    }

    async fn delete_topic_by_id_local(&self, topic_id: Uuid) -> Result<Uuid> {
        if self.image().topic_by_id(&topic_id).is_none() {
            return Err(Error::UnknownTopicId);
        }
        self.remove_topic(topic_id).await.map(|()| topic_id)
    }

    async fn remove_topic(&self, topic_id: Uuid) -> Result<()> {
        self.propose(vec![MetadataRecord::RemoveTopic { topic_id }])
            .await?;
        tracing::info!(%topic_id, "deleted topic");
        Ok(())
    }

    /// Sets (`Some`) or deletes (`None`) dynamic configs of a resource, atomically: a topic
    /// (which must exist), a broker ("" = cluster default, "<id>" = one broker) or a consumer
    /// group (KIP-848 group configs). Values are validated by the caller.
    pub async fn set_configs(
        &self,
        resource_type: ConfigResourceType,
        resource_name: &str,
        changes: Vec<(String, Option<String>)>,
    ) -> Result<()> {
        self.write(ControllerWrite::SetConfigs {
            resource_type,
            resource_name: resource_name.to_string(),
            changes,
        })
        .await?
        .done()
    }

    async fn set_configs_local(
        &self,
        resource_type: ConfigResourceType,
        resource_name: &str,
        changes: Vec<(String, Option<String>)>,
    ) -> Result<()> {
        if resource_type == ConfigResourceType::Topic && self.image().topic(resource_name).is_none()
        {
            return Err(Error::UnknownTopicOrPartition);
        }
        if changes.is_empty() {
            return Ok(());
        }
        if changes.len() > RECORDS_PER_OPERATION_MAX {
            return Err(Error::InvalidRequest(
                "Unable to perform excessively large batch operation.".into(),
            ));
        }
        let records = changes
            .into_iter()
            .map(|(name, value)| MetadataRecord::ConfigRecord {
                resource_type,
                resource_name: resource_name.to_string(),
                name,
                value,
            })
            .collect();
        self.propose(records).await
    }

    /// Takes the next block of `block_size` producer ids for `broker_id` (Kafka's
    /// AllocateProducerIds, one ProducerIdsRecord per block) and returns its first id. The
    /// caller serializes allocations; a concurrent one is refused by the state machine rather
    /// than handing out an id twice.
    pub async fn allocate_producer_ids(&self, broker_id: i32, block_size: i64) -> Result<i64> {
        let write = ControllerWrite::AllocateProducerIds {
            broker_id,
            block_size,
        };
        match self.write(write).await? {
            WriteOutput::ProducerIdStart(start) => Ok(start),
            other => Err(unexpected(other)),
        }
    }

    async fn allocate_producer_ids_local(&self, broker_id: i32, block_size: i64) -> Result<i64> {
        let start = self.image().next_producer_id;
        let next_producer_id = start
            .checked_add(block_size)
            .ok_or_else(|| unavailable("producer ids are exhausted"))?;
        self.propose(vec![MetadataRecord::ProducerIds {
            broker_id,
            broker_epoch: 0,
            next_producer_id,
        }])
        .await?;
        Ok(start)
    }

    /// Stops the quorum member; later operations fail with MetadataUnavailable.
    pub async fn shutdown(&self) {
        if self.shut_down.swap(true, Ordering::SeqCst) {
            return;
        }
        let watch = self
            .leader_watch
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(handle) = watch {
            handle.abort();
        }
        let sessions = self
            .session_watch
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(handle) = sessions {
            handle.abort();
        }
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "metadata quorum shut down with an error");
        }
        tracing::info!(node_id = self.node_id, "metadata controller stopped");
    }

    /// A random topic id that is neither the zero id nor in use, and where its replica
    /// placement starts.
    fn fresh_topic_id(&self, image: &MetadataImage, brokers: usize) -> (Uuid, PlacementSeed) {
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        let topic_id = loop {
            let mut bytes = [0u8; 16];
            rng.fill_bytes(&mut bytes);
            let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
            if !id.is_nil() && !image.topic_ids.contains_key(&id) {
                break id;
            }
        };
        let n = brokers.max(1) as u64;
        let start = (rng.next_u64() % n) as usize;
        let shift = (rng.next_u64() % n) as usize;
        (topic_id, PlacementSeed { start, shift })
    }

    /// Whether other voters take part (see [`ControllerConfig`]).
    fn multi_voter(&self) -> bool {
        self.voters.iter().any(|(id, _)| *id != self.node_id)
    }

    /// Whether this node is the active controller now.
    pub fn is_active(&self) -> bool {
        let m = self.raft.metrics();
        let m = m.borrow();
        m.state == ServerState::Leader && m.current_leader == Some(self.node_id as NodeId)
    }

    /// Runs `write` on the active controller: here if this node is it, else forwarded to it.
    /// A controller that moves meanwhile is followed, within [`WRITE_TIMEOUT`]. After a
    /// forwarded write, waits until this node's image has applied it.
    async fn write(&self, write: ControllerWrite) -> Result<WriteOutput> {
        let deadline = tokio::time::Instant::now() + WRITE_TIMEOUT;
        loop {
            let leader = self.wait_for_leader(deadline).await?;
            let outcome = if leader == self.node_id {
                self.run_local(write.clone()).await.0
            } else {
                self.forward(leader, &write, deadline).await
            };
            match outcome {
                Err(Error::NotController(reason)) => {
                    if tokio::time::Instant::now() + WRITE_RETRY_BACKOFF >= deadline {
                        return Err(unavailable(format!(
                            "no active controller took the write within {}s: {reason}",
                            WRITE_TIMEOUT.as_secs()
                        )));
                    }
                    tracing::debug!(%reason, "retrying a controller write");
                    tokio::time::sleep(WRITE_RETRY_BACKOFF).await;
                }
                other => return other,
            }
        }
    }

    /// Runs a write on this node, which must be the active controller; returns its result and
    /// the metadata offset that includes it.
    async fn run_local(&self, write: ControllerWrite) -> (Result<WriteOutput>, i64) {
        if !self.is_active() {
            return (
                Err(Error::NotController(format!(
                    "node {} is not the active controller",
                    self.node_id
                ))),
                -1,
            );
        }
        let _serial = self.control_lock.lock().await;
        let result = match write {
            ControllerWrite::RegisterBroker(reg) => self
                .register_broker_local(reg)
                .await
                .map(WriteOutput::BrokerEpoch),
            ControllerWrite::BrokerHeartbeat(heartbeat) => self
                .broker_heartbeat_local(heartbeat)
                .await
                .map(WriteOutput::Heartbeat),
            ControllerWrite::CreateTopic(req) => {
                self.create_topic_local(req).await.map(WriteOutput::TopicId)
            }
            ControllerWrite::CreatePartitions {
                topics,
                validate_only,
            } => self
                .create_partitions_local(topics, validate_only)
                .await
                .map(|results| {
                    WriteOutput::PartitionResults(
                        results
                            .into_iter()
                            .map(|r| r.map_err(WireError::from))
                            .collect(),
                    )
                }),
            ControllerWrite::DeleteTopic(name) => self
                .delete_topic_local(&name)
                .await
                .map(WriteOutput::TopicId),
            ControllerWrite::DeleteTopicById(id) => self
                .delete_topic_by_id_local(id)
                .await
                .map(WriteOutput::TopicId),
            ControllerWrite::SetConfigs {
                resource_type,
                resource_name,
                changes,
            } => self
                .set_configs_local(resource_type, &resource_name, changes)
                .await
                .map(|()| WriteOutput::Done),
            ControllerWrite::AllocateProducerIds {
                broker_id,
                block_size,
            } => self
                .allocate_producer_ids_local(broker_id, block_size)
                .await
                .map(WriteOutput::ProducerIdStart),
            ControllerWrite::AlterPartition(req) => {
                match alter_partition_record(&self.image(), &req) {
                    Ok(Some(record)) => {
                        self.propose(vec![record]).await.map(|()| WriteOutput::Done)
                    }
                    Ok(None) => Ok(WriteOutput::Done),
                    Err(e) => Err(e),
                }
            }
        };
        // The leader's image has applied everything it acknowledged: its offset covers this.
        (result, self.image_rx.borrow().last_applied_offset)
    }

    /// Sends a write to the active controller `leader` and waits for this node's image to
    /// reach the offset it was applied at.
    async fn forward(
        &self,
        leader: i32,
        write: &ControllerWrite,
        deadline: tokio::time::Instant,
    ) -> Result<WriteOutput> {
        let Some((_, addr)) = self.voters.iter().find(|(id, _)| *id == leader) else {
            return Err(Error::NotController(format!(
                "the active controller {leader} is not in controller.quorum.voters"
            )));
        };
        let request = RpcRequest {
            cluster_id: self.cluster_id.clone(),
            from: self.node_id,
            body: RpcBody::Write(write.clone()),
        };
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let mut connection = RpcConnection::new(addr.clone());
        let reply = match connection.call(&request, left).await {
            Ok(RpcReply::Write(reply)) => reply,
            Ok(RpcReply::Refused(reason)) => return Err(Error::NotController(reason)),
            Ok(other) => return Err(unavailable(format!("unexpected reply {other:?}"))),
            // Never reached the controller: safe to retry. Anything later may have been
            // applied, and a retry could apply it twice (Kafka's clients see the same).
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                return Err(Error::NotController(format!(
                    "controller {leader} at {addr}: {e}"
                )))
            }
            Err(e) => return Err(unavailable(format!("controller {leader} at {addr}: {e}"))),
        };
        let WriteReply { result, offset } = reply;
        if offset >= 0 {
            self.wait_applied(offset, deadline).await?;
        }
        result.map_err(Error::from)
    }

    /// Waits until the quorum has a leader; returns its node id.
    async fn wait_for_leader(&self, deadline: tokio::time::Instant) -> Result<i32> {
        if self.shut_down.load(Ordering::SeqCst) {
            return Err(unavailable("the metadata controller is shut down"));
        }
        let mut metrics = self.raft.metrics();
        loop {
            if let Some(leader) = metrics.borrow_and_update().current_leader {
                return Ok(leader as i32);
            }
            match tokio::time::timeout_at(deadline, metrics.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(unavailable("the metadata quorum stopped")),
                Err(_) => return Err(unavailable("the metadata quorum has no leader")),
            }
        }
    }

    /// Waits until this node's image has applied metadata offset `offset`.
    async fn wait_applied(&self, offset: i64, deadline: tokio::time::Instant) -> Result<()> {
        let mut images = self.image_rx.clone();
        let reached = tokio::time::timeout_at(
            deadline,
            images.wait_for(|image| image.last_applied_offset >= offset),
        )
        .await;
        match reached {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(unavailable("the metadata quorum stopped")),
            Err(_) => Err(unavailable(format!(
                "this node did not apply metadata offset {offset} in time"
            ))),
        }
    }

    /// Serves one RPC from another voter (the controller listener hands them here).
    pub async fn handle_rpc(&self, request: RpcRequest) -> RpcReply {
        if request.cluster_id != self.cluster_id {
            // Kafka's INCONSISTENT_CLUSTER_ID: two clusters must never share a quorum.
            tracing::warn!(from = request.from, their_cluster_id = %request.cluster_id,
                cluster_id = %self.cluster_id, "refused a controller RPC from another cluster");
            return RpcReply::Refused(format!(
                "INCONSISTENT_CLUSTER_ID: node {} belongs to cluster {}, not {}",
                self.node_id, self.cluster_id, request.cluster_id
            ));
        }
        if self.shut_down.load(Ordering::SeqCst) {
            return RpcReply::Refused(format!("node {} is shutting down", self.node_id));
        }
        match request.body {
            RpcBody::AppendEntries(rpc) => {
                RpcReply::AppendEntries(self.raft.append_entries(rpc).await)
            }
            RpcBody::Vote(rpc) => RpcReply::Vote(self.raft.vote(rpc).await),
            RpcBody::InstallSnapshot(rpc) => {
                RpcReply::InstallSnapshot(self.raft.install_snapshot(rpc).await)
            }
            RpcBody::Write(write) => {
                let (result, offset) = self.run_local(write).await;
                RpcReply::Write(WriteReply {
                    result: result.map_err(WireError::from),
                    offset,
                })
            }
        }
    }

    /// Proposes one batch and waits until it is applied; a batch the state machine refused
    /// comes back as its error.
    async fn propose(&self, records: Vec<MetadataRecord>) -> Result<()> {
        if self.shut_down.load(Ordering::SeqCst) {
            return Err(unavailable("the metadata controller is shut down"));
        }
        let response = self
            .raft
            .client_write(MetadataBatch::new(records))
            .await
            .map_err(|e| match e {
                RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
                    Error::NotController(format!(
                        "this node is not the active controller (leader: {:?})",
                        f.leader_id
                    ))
                }
                e => unavailable(e),
            })?;
        match response.data.rejected {
            None => Ok(()),
            Some(reason) => Err(reason.into()),
        }
    }
}

/// The Partition records that grow `req.name` to `req.count`, checked as Kafka checks them
/// (ReplicationControlManager.createPartitions); `pending` records are already in the batch.
fn partition_records(
    image: &MetadataImage,
    req: &CreatePartitions,
    pending: usize,
) -> Result<Vec<MetadataRecord>> {
    let topic = image
        .topic(&req.name)
        .ok_or(Error::UnknownTopicOrPartition)?;
    let current = topic.partitions.len();
    let count = usize::try_from(req.count).unwrap_or(0);
    if count == current {
        return Err(Error::InvalidPartitions(format!(
            "Topic already has {current} partition(s)."
        )));
    }
    if count < current {
        return Err(Error::InvalidPartitions(format!(
            "The topic {} currently has {current} partition(s); {} would not be an increase.",
            req.name, req.count
        )));
    }
    let additional = count - current;
    if pending + additional > RECORDS_PER_OPERATION_MAX {
        return Err(Error::InvalidRequest(
            "Unable to perform excessively large batch operation.".into(),
        ));
    }
    let replication = topic.partitions.first().map_or(1, |p| p.replicas.len());
    let assignments: Vec<Vec<i32>> = match &req.assignments {
        Some(given) => {
            if given.len() != additional {
                return Err(Error::InvalidReplicaAssignment(format!(
                    "Attempted to add {additional} additional partition(s), but only {} \
                     assignment(s) were specified.",
                    given.len()
                )));
            }
            for replicas in given {
                validate_manual_assignment(image, replicas, replication)?;
            }
            given.clone()
        }
        // Placed from where the existing partitions left off.
        None => place(
            &usable_brokers(image),
            current,
            additional,
            replication,
            PlacementSeed { start: 0, shift: 0 },
        )?,
    };
    Ok(assignments
        .into_iter()
        .zip(current..count)
        .map(|(replicas, partition)| MetadataRecord::Partition {
            topic_id: topic.topic_id,
            partition: partition as i32,
            isr: replicas.clone(),
            leader: replicas[0],
            replicas,
            leader_epoch: 0,
            partition_epoch: 0,
        })
        .collect())
}

/// Kafka's validateManualPartitionAssignment: non-empty, registered brokers, each once, and as
/// many replicas as the topic's existing partitions have.
fn validate_manual_assignment(
    image: &MetadataImage,
    replicas: &[i32],
    replication: usize,
) -> Result<()> {
    if replicas.is_empty() {
        return Err(Error::InvalidReplicaAssignment(
            "The manual partition assignment includes an empty replica list.".into(),
        ));
    }
    let mut sorted = replicas.to_vec();
    sorted.sort_unstable();
    for (i, broker) in sorted.iter().enumerate() {
        if image.broker(*broker).is_none() {
            return Err(Error::InvalidReplicaAssignment(format!(
                "The manual partition assignment includes broker {broker}, but no such broker \
                 is registered."
            )));
        }
        if i > 0 && sorted[i - 1] == *broker {
            return Err(Error::InvalidReplicaAssignment(format!(
                "The manual partition assignment includes the broker {broker} more than once."
            )));
        }
    }
    if sorted.len() != replication {
        return Err(Error::InvalidReplicaAssignment(format!(
            "The manual partition assignment includes a partition with {} replica(s), but this \
             is not consistent with previous partitions, which have {replication} replica(s).",
            sorted.len()
        )));
    }
    Ok(())
}

/// Checks broker sessions a few times per session timeout while the controller lives.
async fn session_watch(controller: std::sync::Weak<MetadataController>, session_timeout: Duration) {
    let tick = (session_timeout / 8).clamp(Duration::from_millis(50), Duration::from_secs(1));
    loop {
        tokio::time::sleep(tick).await;
        let Some(controller) = controller.upgrade() else {
            return;
        };
        if controller.shut_down.load(Ordering::SeqCst) {
            return;
        }
        controller.fence_stale_brokers().await;
    }
}

fn set_controller_id(image_tx: &ImageSender, controller_id: i32) {
    image_tx.send_if_modified(|image| {
        if image.controller_id == controller_id {
            return false;
        }
        Arc::make_mut(image).controller_id = controller_id;
        true
    });
}

/// Keeps the image's `controller_id` equal to the quorum leader (Kafka's active controller).
fn spawn_leader_watch(raft: &Raft, image_tx: ImageSender) -> JoinHandle<()> {
    let mut metrics = raft.server_metrics();
    tokio::spawn(async move {
        loop {
            let leader = metrics
                .borrow_and_update()
                .current_leader
                .and_then(|id| i32::try_from(id).ok())
                .unwrap_or(-1);
            set_controller_id(&image_tx, leader);
            if metrics.changed().await.is_err() {
                break;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::records::BrokerEndpoint;
    use std::path::Path;

    fn config(dir: &Path) -> ControllerConfig {
        ControllerConfig {
            node_id: 1,
            dir: dir.to_path_buf(),
            cluster_id: "test-cluster".into(),
            ..Default::default()
        }
    }

    fn broker(node_id: i32) -> BrokerRegistration {
        BrokerRegistration {
            node_id,
            endpoints: vec![BrokerEndpoint {
                name: "PLAINTEXT".into(),
                host: "localhost".into(),
                port: 9092,
                security_protocol: 0,
            }],
            rack: None,
            ..Default::default()
        }
    }

    fn create(name: &str, num_partitions: i32) -> CreateTopic {
        CreateTopic {
            name: name.into(),
            num_partitions,
            replication_factor: 1,
            ..Default::default()
        }
    }

    async fn started(dir: &Path) -> Arc<MetadataController> {
        let c = MetadataController::start(config(dir)).await.expect("start");
        register_unfenced(&c, broker(1)).await;
        c
    }

    /// Registers a broker and heartbeats it unfenced, as a starting broker does.
    async fn register_unfenced(c: &MetadataController, reg: BrokerRegistration) -> i64 {
        let node_id = reg.node_id;
        let broker_epoch = c.register_broker(reg).await.expect("register");
        let reply = c
            .broker_heartbeat(BrokerHeartbeat {
                broker_id: node_id,
                broker_epoch,
                current_metadata_offset: c.image().last_applied_offset,
                want_fence: false,
                want_shutdown: false,
            })
            .await
            .expect("heartbeat");
        assert!(!reply.is_fenced && reply.is_caught_up, "{reply:?}");
        broker_epoch
    }

    #[tokio::test]
    async fn topics_ids_partitions_configs_and_brokers_survive_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = started(dir.path()).await;
        let mut req = create("orders", 3);
        req.configs
            .insert("cleanup.policy".into(), "compact".into());
        let orders = c.create_topic(req).await.expect("create orders");
        let events = c
            .create_topic(create("events", 1))
            .await
            .expect("create events");
        let retention = vec![("retention.ms".into(), Some("1000".into()))];
        c.set_configs(ConfigResourceType::Topic, "events", retention)
            .await
            .expect("config");
        let default_retention = vec![("log.retention.ms".into(), Some("5".into()))];
        c.set_configs(ConfigResourceType::Broker, "", default_retention)
            .await
            .expect("broker config");
        let before = c.image();
        assert_eq!(before.controller_id, 1);
        c.shutdown().await;

        let c = MetadataController::start(config(dir.path()))
            .await
            .expect("restart");
        let after = c.image();
        let t = after.topic("orders").expect("orders after restart");
        assert_eq!(t.topic_id, orders);
        assert_eq!(t.partitions.len(), 3);
        assert!(t
            .partitions
            .iter()
            .enumerate()
            .all(|(i, p)| p.partition == i as i32
                && p.leader == 1
                && p.replicas == vec![1]
                && p.isr == vec![1]
                && p.leader_epoch == 0));
        assert_eq!(
            t.configs.get("cleanup.policy").map(String::as_str),
            Some("compact")
        );
        let e = after.topic_by_id(&events).expect("events by id");
        assert_eq!(
            e.configs.get("retention.ms").map(String::as_str),
            Some("1000")
        );
        assert_eq!(after.broker(1), before.broker(1));
        assert_eq!(
            after.broker(1).map(|b| &b.endpoints),
            Some(&broker(1).endpoints)
        );
        assert_eq!(
            after
                .broker_config("")
                .and_then(|m| m.get("log.retention.ms"))
                .map(String::as_str),
            Some("5")
        );
        assert_eq!(after.cluster_id, "test-cluster");
        assert_eq!(after.controller_id, 1);
        assert!(after.last_applied_offset >= before.last_applied_offset);
        c.shutdown().await;
    }

    #[tokio::test]
    async fn restart_after_snapshot_and_purge_restores_image() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = started(dir.path()).await;
        let a = c.create_topic(create("a", 2)).await.expect("create a");
        c.trigger_snapshot_and_purge().await;
        let b = c.create_topic(create("b", 1)).await.expect("create b");
        c.shutdown().await;

        let c = MetadataController::start(config(dir.path()))
            .await
            .expect("restart");
        let image = c.image();
        assert_eq!(
            image.topic("a").map(|t| (t.topic_id, t.partitions.len())),
            Some((a, 2))
        );
        assert_eq!(image.topic("b").map(|t| t.topic_id), Some(b));
        // Writes still work after a restart from a snapshot.
        c.create_topic(create("c", 1)).await.expect("create c");
        c.shutdown().await;
    }

    #[tokio::test]
    async fn delete_then_recreate_gives_a_new_topic_id() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = started(dir.path()).await;
        let first = c.create_topic(create("t", 1)).await.expect("create");
        assert_eq!(c.delete_topic("t").await.expect("delete"), first);
        assert!(c.image().topic("t").is_none());
        let second = c.create_topic(create("t", 1)).await.expect("recreate");
        assert_ne!(first, second);
        assert!(!second.is_nil());
        assert!(matches!(
            c.delete_topic("nope").await,
            Err(Error::UnknownTopicOrPartition)
        ));
        assert!(matches!(
            c.delete_topic_by_id(first).await,
            Err(Error::UnknownTopicId)
        ));
        assert_eq!(
            c.delete_topic_by_id(second).await.expect("delete by id"),
            second
        );
        c.shutdown().await;
    }

    #[tokio::test]
    async fn invalid_requests_are_rejected_with_kafka_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = started(dir.path()).await;
        for name in ["", ".", "..", "a b", "ü", &"x".repeat(250)] {
            match c.create_topic(create(name, 1)).await {
                Err(Error::InvalidTopic(m)) => {
                    assert!(m.starts_with("Topic name is invalid: "), "{m}")
                }
                other => panic!("{name:?}: {other:?}"),
            }
        }
        c.create_topic(create("a.b", 1)).await.expect("create a.b");
        match c.create_topic(create("a_b", 1)).await {
            Err(Error::InvalidTopic(m)) => {
                assert_eq!(m, "Topic 'a_b' collides with existing topic: a.b")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            c.create_topic(create("a.b", 1)).await,
            Err(Error::TopicAlreadyExists(n)) if n == "a.b"
        ));
        assert!(matches!(
            c.create_topic(create("p", 0)).await,
            Err(Error::InvalidPartitions(_))
        ));
        let mut rf0 = create("r", 1);
        rf0.replication_factor = 0;
        assert!(matches!(
            c.create_topic(rf0).await,
            Err(Error::InvalidReplicationFactor(_))
        ));
        let mut rf2 = create("r", 1);
        rf2.replication_factor = 2;
        match c.create_topic(rf2).await {
            Err(Error::InvalidReplicationFactor(m)) => assert!(
                m.ends_with("cannot be reached because only 1 broker(s) are registered."),
                "{m}"
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            c.create_topic(create("huge", i32::MAX)).await,
            Err(Error::InvalidRequest(_))
        ));
        let mut v = create("v", 1);
        v.validate_only = true;
        assert!(c.create_topic(v).await.is_ok());
        assert!(c.image().topic("v").is_none());
        c.shutdown().await;
    }

    #[tokio::test]
    async fn concurrent_creates_of_one_name_have_exactly_one_winner() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = started(dir.path()).await;
        for round in 0..5 {
            let name = format!("race-{round}");
            let tasks: Vec<_> = (0..8)
                .map(|_| {
                    let c = c.clone();
                    let req = create(&name, 2);
                    tokio::spawn(async move { c.create_topic(req).await })
                })
                .collect();
            let mut wins = Vec::new();
            for t in tasks {
                match t.await.expect("join") {
                    Ok(id) => wins.push(id),
                    Err(Error::TopicAlreadyExists(n)) => assert_eq!(n, name),
                    Err(e) => panic!("unexpected {e:?}"),
                }
            }
            assert_eq!(wins.len(), 1, "round {round}");
            assert_eq!(c.image().topic(&name).map(|t| t.topic_id), Some(wins[0]));
        }
        c.shutdown().await;
    }

    #[tokio::test]
    async fn state_machine_refuses_a_second_topic_record_that_passed_the_precheck() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = started(dir.path()).await;
        let topic = |n| {
            vec![MetadataRecord::Topic {
                name: "dup".into(),
                topic_id: Uuid::from_u128(n),
            }]
        };
        // Both proposals bypass create_topic's check against the image, as two racing
        // creates do; the state machine must still let only the first one in.
        let (first, second) = tokio::join!(c.propose(topic(1)), c.propose(topic(2)));
        assert!(first.is_ok());
        assert!(matches!(second, Err(Error::TopicAlreadyExists(n)) if n == "dup"));
        assert_eq!(
            c.image().topic("dup").map(|t| t.topic_id),
            Some(Uuid::from_u128(1))
        );
        // Same for deletes: the second RemoveTopic of one id is refused.
        let (a, b) = tokio::join!(
            c.delete_topic_by_id(Uuid::from_u128(1)),
            c.delete_topic_by_id(Uuid::from_u128(1))
        );
        assert_eq!([a.is_ok(), b.is_ok()].iter().filter(|ok| **ok).count(), 1);
        c.shutdown().await;
    }

    #[tokio::test]
    async fn register_broker_is_idempotent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = started(dir.path()).await;
        let offset = c.image().last_applied_offset;
        let epoch = c.image().broker(1).expect("registered").broker_epoch;
        c.register_broker(broker(1)).await.expect("again");
        assert_eq!(c.image().last_applied_offset, offset);
        let mut moved = broker(1);
        moved.endpoints[0].port = 9093;
        let again = c
            .register_broker(moved.clone())
            .await
            .expect("new endpoint");
        let registered = c.image().broker(1).cloned().expect("registered");
        assert_eq!(registered.endpoints, moved.endpoints);
        assert_eq!(again, epoch, "the same incarnation keeps its broker epoch");
        assert!(!registered.fenced, "new endpoints do not fence the broker");
        c.shutdown().await;
    }

    #[tokio::test]
    async fn subscribers_see_new_images() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = started(dir.path()).await;
        let mut rx = c.subscribe();
        rx.borrow_and_update();
        c.create_topic(create("t", 1)).await.expect("create");
        assert!(rx.has_changed().expect("alive"));
        assert!(rx.borrow_and_update().topic("t").is_some());
        c.shutdown().await;
    }

    #[tokio::test]
    async fn restart_is_fast() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = started(dir.path()).await;
        c.create_topic(create("t", 1)).await.expect("create");
        c.shutdown().await;
        // committed.json is not fsynced: losing it must not lose or delay anything.
        std::fs::remove_file(dir.path().join("committed.json")).expect("remove committed");
        let begin = std::time::Instant::now();
        let c = MetadataController::start(config(dir.path()))
            .await
            .expect("restart");
        let took = begin.elapsed();
        assert!(took < Duration::from_millis(1500), "restart took {took:?}");
        assert!(c.image().topic("t").is_some());
        c.shutdown().await;
    }

    #[tokio::test]
    async fn node_id_zero_starts_and_restarts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = ControllerConfig {
            node_id: 0,
            ..config(dir.path())
        };
        let c = MetadataController::start(cfg.clone()).await.expect("start");
        register_unfenced(&c, broker(0)).await;
        c.create_topic(create("t", 1)).await.expect("create");
        c.shutdown().await;
        let c = MetadataController::start(cfg).await.expect("restart");
        assert_eq!(c.image().controller_id, 0);
        assert_eq!(
            c.image().topic("t").map(|t| t.partitions[0].leader),
            Some(0)
        );
        c.shutdown().await;
    }

    #[tokio::test]
    async fn directory_of_another_cluster_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = started(dir.path()).await;
        c.shutdown().await;
        let mut other = config(dir.path());
        other.cluster_id = "other".into();
        assert!(matches!(
            MetadataController::start(other).await,
            Err(Error::InvalidConfig(_))
        ));
    }

    #[tokio::test]
    async fn operations_after_shutdown_fail_with_metadata_unavailable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = started(dir.path()).await;
        c.shutdown().await;
        assert!(matches!(
            c.create_topic(create("t", 1)).await,
            Err(Error::MetadataUnavailable(_))
        ));
    }

    impl MetadataController {
        /// Test hook: snapshot now and purge the log up to it.
        async fn trigger_snapshot_and_purge(&self) {
            let applied = self.image().last_applied_offset as u64;
            self.raft
                .trigger()
                .snapshot()
                .await
                .expect("trigger snapshot");
            self.raft
                .wait(Some(Duration::from_secs(5)))
                .metrics(
                    |m| m.snapshot.is_some_and(|s| s.index >= applied),
                    "snapshot",
                )
                .await
                .expect("snapshot built");
            self.raft.trigger().purge_log(applied).await.expect("purge");
            self.raft
                .wait(Some(Duration::from_secs(5)))
                .metrics(|m| m.purged.is_some_and(|p| p.index >= applied), "purged")
                .await
                .expect("purged");
        }
    }

    #[tokio::test]
    async fn a_request_from_another_cluster_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = started(dir.path()).await;
        let request = |cluster_id: &str| RpcRequest {
            cluster_id: cluster_id.into(),
            from: 2,
            body: RpcBody::Write(ControllerWrite::DeleteTopic("absent".into())),
        };
        match c.handle_rpc(request("other-cluster")).await {
            RpcReply::Refused(reason) => {
                assert!(reason.contains("INCONSISTENT_CLUSTER_ID"), "{reason}")
            }
            other => panic!("served a request of another cluster: {other:?}"),
        }
        match c.handle_rpc(request("test-cluster")).await {
            RpcReply::Write(reply) => {
                assert_eq!(reply.result, Err(WireError::UnknownTopicOrPartition))
            }
            other => panic!("{other:?}"),
        }
        c.shutdown().await;
    }
}
