//! Listeners, connections, dispatch and handlers: from an accepted socket to a typed handler.
//!
//! `Server::start` binds the listener, starts the [`Broker`](crate::broker::Broker) and runs the
//! accept loop; [`connection`] turns frames into requests and responses; [`dispatch`] is the one
//! place that maps an API key to its handler and the registry ApiVersions is derived from.

pub mod connection;
pub mod controller_listener;
pub mod dispatch;
pub mod fetch_session;
pub mod handlers;
pub mod http;
pub mod metrics_scrape;
pub mod net;
pub mod request_metrics;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::sync::{oneshot, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::broker::Broker;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::log::disk::{Disk, FsDisk};
use crate::log::log_manager::prepare_dir;
use crate::server::fetch_session::FetchSessionCache;

/// A running broker with its accept loop.
#[derive(Debug)]
pub struct Server {
    pub broker: Arc<Broker>,
    /// Incremental fetch sessions (KIP-227), bounded by
    /// `max.incremental.fetch.session.cache.slots`: shared by every broker listener's
    /// connections and handed to each request in its context.
    pub fetch_sessions: Arc<Mutex<FetchSessionCache>>,
    /// The first client listener's address (what single-listener tests connect to).
    pub local_addr: SocketAddr,
    /// Every listener of `listeners` with the address it is bound to, in configured order.
    pub listener_addrs: Vec<(Arc<str>, SocketAddr)>,
    /// Where the operations HTTP listener is bound (`sluice.http.listener`), if enabled.
    pub http_addr: Option<SocketAddr>,
    http: Arc<http::HttpState>,
    http_shutdown: CancellationToken,
    tasks: TaskTracker,
}

/// Test hooks into [`Server::start_hooked`].
#[derive(Debug, Default)]
pub struct StartHooks {
    /// Receives the HTTP listener's address as soon as it is bound, before recovery.
    pub http_bound: Option<oneshot::Sender<SocketAddr>>,
    /// Storage recovery waits for this, so a test can observe the broker not yet ready.
    pub hold_recovery: Option<oneshot::Receiver<()>>,
}

/// Cancels the HTTP listener if a start fails half-way.
struct CancelOnDrop(Option<CancellationToken>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(token) = self.0.take() {
            token.cancel();
        }
    }
}

impl Server {
    /// Starts a broker on the real file system and clock.
    pub async fn start(config: Config) -> Result<Server> {
        Self::start_with(config, Arc::new(FsDisk::new()), Arc::new(SystemClock)).await
    }

    /// Starts a broker on the given disk and clock (tests pass a simulated disk).
    pub async fn start_with(
        config: Config,
        disk: Arc<dyn Disk>,
        clock: Arc<dyn Clock>,
    ) -> Result<Server> {
        Self::start_hooked(config, disk, clock, StartHooks::default()).await
    }

    /// Starts a broker: every path setting checked, both listeners bound, the HTTP listener
    /// served (live, not ready), then storage recovery, metadata and the Kafka accept loop,
    /// then readiness. A setting that cannot be used fails the start before anything is served
    /// and names itself ([`Error::Setting`]).
    pub async fn start_hooked(
        config: Config,
        disk: Arc<dyn Disk>,
        clock: Arc<dyn Clock>,
        hooks: StartHooks,
    ) -> Result<Server> {
        crate::config::served::check(&config).map_err(|e| Error::InvalidConfig(e.to_string()))?;
        check_path_settings(&config)?;
        let http_listener = net::bind_http(&config).await?;
        let listeners = net::bind_all(&config).await?;
        let mut bound = Vec::with_capacity(listeners.len());
        for l in &listeners {
            bound.push((l.info.name.clone(), l.socket.local_addr()?));
        }
        let local_addr = listeners
            .iter()
            .zip(&bound)
            .find(|(l, _)| !l.info.controller)
            .map(|(_, (_, addr))| *addr)
            .expect("bind_all returns a client listener");
        let tasks = TaskTracker::new();
        let connections = ConnectionLimits::new(&config);
        let http_state = Arc::new(http::HttpState::default());
        let http_shutdown = CancellationToken::new();
        let mut cancel_http = CancelOnDrop(Some(http_shutdown.clone()));
        let http_addr = match http_listener {
            Some(http_listener) => {
                let addr = http_listener.local_addr()?;
                tasks.spawn(http::serve(
                    http_listener,
                    http_state.clone(),
                    http_shutdown.clone(),
                ));
                tracing::info!(%addr, "http listener (/metrics, /health/live, /health/ready) started");
                Some(addr)
            }
            None => None,
        };
        if let (Some(tx), Some(addr)) = (hooks.http_bound, http_addr) {
            let _ = tx.send(addr);
        }
        if let Some(hold) = hooks.hold_recovery {
            let _ = hold.await;
        }
        // The controller listener serves from now on: the other voters' RPCs reach this
        // node's controller as soon as it is open, which the quorum's election needs.
        let (controller_slot, controller_rx) = tokio::sync::watch::channel(None);
        let (controller_listeners, listeners): (Vec<_>, Vec<_>) =
            listeners.into_iter().partition(|l| l.info.controller);
        for listener in controller_listeners {
            tracing::info!(listener = %listener.info.name, addr = %listener.socket.local_addr()?,
                "controller listener serving");
            tasks.spawn(controller_listener::accept_loop(
                listener,
                controller_listener::ControllerListener {
                    controller: controller_rx.clone(),
                    shutdown: http_shutdown.clone(),
                    idle: std::time::Duration::from_millis(
                        config.connections_max_idle_ms.max(1) as u64
                    ),
                    limits: connections.clone(),
                    max_connections_per_ip: config.max_connections_per_ip,
                },
                tasks.clone(),
            ));
        }
        report_previous_shutdown(&config, disk.as_ref());
        let fetch_sessions = Arc::new(Mutex::new(FetchSessionCache::new(
            config.max_incremental_fetch_session_cache_slots,
        )));
        let (log_dirs_key, log_dirs_value) = config.log_dirs_setting();
        let broker = Broker::start(config, &bound, disk, clock, &controller_slot)
            .await
            .map_err(|e| match e {
                Error::LogDir { source, .. } => {
                    Error::dir_setting(log_dirs_key, &log_dirs_value, source)
                }
                e => e,
            })?;
        for listener in listeners {
            tracing::info!(
                listener = %listener.info.name,
                addr = %listener.socket.local_addr()?,
                controller = listener.info.controller,
                "listening"
            );
            tasks.spawn(accept_loop(
                listener,
                broker.clone(),
                fetch_sessions.clone(),
                connections.clone(),
                tasks.clone(),
            ));
        }
        tasks.spawn(log_scheduler(broker.clone()));
        if broker.config.log_cleaner_enable {
            tasks.spawn(log_cleaner(broker.clone()));
        }
        tasks.spawn(crate::group::run_timers(broker.clone()));
        http_state.set_ready(broker.clone(), fetch_sessions.clone());
        cancel_http.0 = None;
        tracing::info!(
            %local_addr,
            node_id = broker.node_id,
            cluster_id = %broker.cluster_id,
            advertised = %broker.advertised_endpoints(),
            "sluice broker started"
        );
        Ok(Server {
            broker,
            fetch_sessions,
            local_addr,
            listener_addrs: bound,
            http_addr,
            http: http_state,
            http_shutdown,
            tasks,
        })
    }

    /// Stops accepting, lets in-flight requests finish within sluice.shutdown.timeout.ms,
    /// flushes every log (leaving the clean-shutdown marker) and stops the metadata quorum.
    pub async fn shutdown(self) {
        // Kafka's controlled shutdown: leaderships move to other in-sync replicas while this
        // broker still serves, bounded by the session timeout (after which the controller
        // would fence it anyway).
        let session = self.broker.config.broker_session_timeout_ms.max(0) as u64;
        self.broker
            .lifecycle
            .controlled_shutdown(std::time::Duration::from_millis(session))
            .await;
        self.stop_tasks().await;
        match self.broker.logs.flush_all().await {
            Ok(()) => tracing::info!("logs flushed; clean shutdown recorded"),
            Err(e) => tracing::error!(error = %e, "flushing logs at shutdown failed"),
        }
        self.broker.metadata.shutdown().await;
        tracing::info!("sluice broker stopped");
    }

    /// Stops as a `kill -9` would leave the logs: nothing more is flushed, so what survives is
    /// what the disk had made durable (crash tests run this on a simulated disk). The metadata
    /// quorum, which fsyncs every entry before acknowledging it, is stopped so a new broker can
    /// open the same directory in this process.
    pub async fn abort(self) {
        self.stop_tasks().await;
        self.broker.metadata.shutdown().await;
    }

    async fn stop_tasks(&self) {
        self.http.set_not_ready();
        self.broker.shutdown.cancel();
        self.http_shutdown.cancel();
        self.tasks.close();
        let bound_ms = self.broker.config.shutdown_timeout_ms.max(0) as u64;
        if tokio::time::timeout(
            std::time::Duration::from_millis(bound_ms),
            self.tasks.wait(),
        )
        .await
        .is_err()
        {
            tracing::warn!(
                timeout_ms = bound_ms,
                "in-flight requests did not finish within sluice.shutdown.timeout.ms; \
                 flushing the logs regardless"
            );
        }
        // Nothing may hold the logs past this point (a restart in this process locks them).
        self.broker.background.close();
        self.broker.background.wait().await;
        self.broker.replicas.shutdown().await;
    }
}

/// Creates and proves writable every directory a path setting names (`log.dirs` or
/// `log.dir`, `metadata.log.dir`) before any listener is bound, so that a bad path stops the
/// start with nothing half-served. The log manager checks its dirs again when it opens them.
fn check_path_settings(config: &Config) -> Result<()> {
    let (key, value) = config.log_dirs_setting();
    for dir in &config.log_dirs {
        prepare_dir(dir).map_err(|e| Error::dir_setting(key, &value, e))?;
    }
    if let Some(dir) = &config.metadata_log_dir {
        let value = dir.display().to_string();
        prepare_dir(dir).map_err(|e| Error::dir_setting("metadata.log.dir", &value, e))?;
    }
    Ok(())
}

/// Logs whether the previous run of each log dir ended with a clean shutdown (Kafka's
/// `.kafka_cleanshutdown` marker, written by `LogManager::flush_all`): after a clean one the
/// start needs no recovery scan of the active segments.
fn report_previous_shutdown(config: &Config, disk: &dyn Disk) {
    for dir in &config.log_dirs {
        if !disk.exists(&dir.join(crate::log::log_manager::META_PROPERTIES)) {
            continue;
        }
        if disk.exists(&dir.join(crate::log::log_manager::CLEAN_SHUTDOWN)) {
            tracing::info!(log_dir = %dir.display(), "previous shutdown was clean; no recovery needed");
        } else {
            tracing::warn!(log_dir = %dir.display(),
                "previous shutdown was not clean; recovering the active segments");
        }
    }
}

/// max.connections and max.connections.per.ip, shared by every listener as Kafka counts them.
#[derive(Clone)]
struct ConnectionLimits {
    connections: Arc<Semaphore>,
    per_ip: Arc<Mutex<HashMap<IpAddr, i32>>>,
}

impl ConnectionLimits {
    fn new(config: &Config) -> Self {
        let max_connections = usize::try_from(config.max_connections.max(1)).unwrap_or(1);
        ConnectionLimits {
            connections: Arc::new(Semaphore::new(max_connections.min(Semaphore::MAX_PERMITS))),
            per_ip: Arc::default(),
        }
    }
}

/// Accepts connections on one listener until shutdown, bounded by max.connections and
/// max.connections.per.ip: a connection over a limit is closed at once with one log line.
async fn accept_loop(
    listener: net::BoundListener,
    broker: Arc<Broker>,
    fetch_sessions: Arc<Mutex<FetchSessionCache>>,
    limits: ConnectionLimits,
    tasks: TaskTracker,
) {
    let info = listener.info;
    let listener_name: &str = &info.name;
    loop {
        let accepted = tokio::select! {
            _ = broker.shutdown.cancelled() => return,
            accepted = listener.socket.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // EMFILE and the like: back off briefly rather than spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let rejected = |reason: &str| {
            broker
                .metrics
                .server_connections_rejected_total
                .with_label_values(&[listener_name, reason])
                .inc();
        };
        let Ok(permit) = limits.connections.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "max.connections reached; closing new connection");
            rejected("max.connections");
            continue;
        };
        let Some(ip_guard) = PerIpGuard::acquire(
            &limits.per_ip,
            peer.ip(),
            broker.config.max_connections_per_ip,
        ) else {
            tracing::warn!(%peer, "max.connections.per.ip reached; closing new connection");
            rejected("max.connections.per.ip");
            continue;
        };
        broker
            .metrics
            .server_connections_accepted_total
            .with_label_values(&[listener_name])
            .inc();
        let active = broker
            .metrics
            .server_active_connections
            .with_label_values(&[listener_name]);
        let broker = broker.clone();
        let fetch_sessions = fetch_sessions.clone();
        let info = info.clone();
        tasks.spawn(async move {
            let _permit = permit;
            let _ip_guard = ip_guard;
            active.inc();
            connection::serve(broker.clone(), fetch_sessions, stream, peer, info).await;
            active.dec();
        });
    }
}

/// Kafka's log flusher and retention check. The flusher checks every
/// log.flush.scheduler.interval.ms (at least every second, since a topic's flush.ms may ask
/// for more than the broker default) whether a partition's flush.ms has passed since its last
/// fsync; retention runs every log.retention.check.interval.ms and deletes whole segments past
/// retention.ms or retention.bytes.
async fn log_scheduler(broker: Arc<Broker>) {
    let flush_ms = broker
        .config
        .log_flush_scheduler_interval_ms
        .clamp(10, 1000) as u64;
    let retention_ms = broker.config.log_retention_check_interval_ms.max(1) as u64;
    let mut flush = tokio::time::interval(std::time::Duration::from_millis(flush_ms));
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut retention = tokio::time::interval(std::time::Duration::from_millis(retention_ms));
    retention.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // producer.id.expiration.check.interval.ms: idle producers' state goes (KIP-854).
    let expiry_ms = broker
        .config
        .producer_id_expiration_check_interval_ms
        .max(1) as u64;
    let mut expiry = tokio::time::interval(std::time::Duration::from_millis(expiry_ms));
    expiry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = broker.shutdown.cancelled() => return,
            _ = flush.tick() => flush_due(&broker).await,
            _ = retention.tick() => apply_retention(&broker),
            _ = expiry.tick() => expire_producers(&broker),
        }
    }
}

/// The cleaner's `log.cleaner.*` settings in force now (they are dynamic broker configs,
/// Kafka's LogCleaner.ReconfigurableConfigs), read before each pass.
fn cleaner_config(config: &crate::config::Config) -> crate::log::cleaner::CleanerConfig {
    crate::log::cleaner::CleanerConfig {
        dedupe_buffer_size: u64::try_from(config.log_cleaner_dedupe_buffer_size).unwrap_or(0),
        io_buffer_load_factor: config.log_cleaner_io_buffer_load_factor,
        threads: u64::try_from(config.log_cleaner_threads.max(1)).unwrap_or(1),
        io_max_bytes_per_second: config.log_cleaner_io_max_bytes_per_second,
    }
}

/// Kafka's log cleaner thread: cleans the dirtiest compacted log, again at once while one
/// needs it, otherwise waits `log.cleaner.backoff.ms`. A failed clean is logged and that
/// partition skipped until restart (Kafka marks it uncleanable). The chunk work of a pass
/// runs on the blocking pool, off the workers that serve requests.
async fn log_cleaner(broker: Arc<Broker>) {
    broker.logs.cleaner().set_offload_cpu(true);
    loop {
        let effective = broker.effective_config();
        let config = cleaner_config(&effective);
        let backoff = std::time::Duration::from_millis(
            u64::try_from(effective.log_cleaner_backoff_ms).unwrap_or(0),
        );
        // A throttled pass may sleep; shutdown does not wait for it (an interrupted pass
        // leaves at most a `.cleaned` copy, removed at the next open).
        let pass = tokio::select! {
            _ = broker.shutdown.cancelled() => return,
            pass = broker.logs.clean_once(&config) => pass,
        };
        let cleaned = match pass {
            Ok(done) => done.is_some(),
            Err(e) => {
                tracing::warn!(error = %e, "log cleaning failed; partition marked uncleanable");
                false
            }
        };
        if cleaned {
            tokio::task::yield_now().await;
            if broker.shutdown.is_cancelled() {
                return;
            }
            continue;
        }
        // Backoff in steps of at most a second, re-reading it, so that a dynamic change of
        // `log.cleaner.backoff.ms` applies soon (Kafka restarts its cleaner threads for it).
        let start = tokio::time::Instant::now();
        let mut backoff = backoff;
        while start.elapsed() < backoff {
            let step = (backoff - start.elapsed()).min(std::time::Duration::from_secs(1));
            tokio::select! {
                _ = broker.shutdown.cancelled() => return,
                _ = tokio::time::sleep(step) => {}
            }
            backoff = std::time::Duration::from_millis(
                u64::try_from(broker.effective_config().log_cleaner_backoff_ms).unwrap_or(0),
            );
        }
    }
}

async fn flush_due(broker: &Broker) {
    let now_ms = broker.clock.wall_ms();
    for partition in broker.logs.partitions() {
        if let Err(e) = partition.flush_if_due(now_ms).await {
            tracing::warn!(
                topic = partition.topic(),
                partition = partition.partition(),
                error = %e,
                "scheduled flush failed"
            );
        }
    }
}

fn apply_retention(broker: &Broker) {
    let now_ms = broker.clock.wall_ms();
    for partition in broker.logs.partitions() {
        match partition.apply_retention(now_ms) {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(
                topic = partition.topic(),
                partition = partition.partition(),
                deleted,
                log_start_offset = partition.log_start_offset(),
                "retention deleted segments"
            ),
            Err(e) => tracing::warn!(
                topic = partition.topic(),
                partition = partition.partition(),
                error = %e,
                "retention failed"
            ),
        }
    }
}

fn expire_producers(broker: &Broker) {
    let now_ms = broker.clock.wall_ms();
    for partition in broker.logs.partitions() {
        let expired = partition.expire_producers(now_ms);
        if expired > 0 {
            tracing::debug!(
                topic = partition.topic(),
                partition = partition.partition(),
                expired,
                "expired idle producer ids"
            );
        }
    }
}

/// One connection's share of its IP's count; released when the connection ends.
struct PerIpGuard {
    map: Arc<Mutex<HashMap<IpAddr, i32>>>,
    ip: IpAddr,
}

impl PerIpGuard {
    fn acquire(map: &Arc<Mutex<HashMap<IpAddr, i32>>>, ip: IpAddr, max: i32) -> Option<Self> {
        let mut counts = map.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(ip).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(PerIpGuard {
            map: map.clone(),
            ip,
        })
    }
}

impl Drop for PerIpGuard {
    fn drop(&mut self) {
        let mut counts = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = counts.get_mut(&self.ip) {
            *count -= 1;
            if *count <= 0 {
                counts.remove(&self.ip);
            }
        }
    }
}
