//! The broker's side of its lifecycle (Kafka's BrokerLifecycleManager): it registers with the
//! active controller, heartbeats every `broker.heartbeat.interval.ms` with its applied
//! metadata offset, is unfenced once caught up, registers again if the controller lost its
//! registration, and on shutdown asks for a controlled shutdown so its leaderships move to
//! other in-sync replicas before it stops.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::metadata::cluster_control::BrokerHeartbeat;
use crate::metadata::controller::MetadataController;
use crate::metadata::records::BrokerRegistration;

/// How often a broker that waits for something (unfencing, its shutdown) asks again: Kafka's
/// lifecycle manager sends the next heartbeat at once in those states; a short pause keeps a
/// controller that answers "not yet" from being flooded.
const WAITING_HEARTBEAT: Duration = Duration::from_millis(100);

/// What the controller last said about this broker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LifecycleState {
    pub broker_epoch: i64,
    pub fenced: bool,
    pub should_shutdown: bool,
}

/// The running lifecycle of this broker.
#[derive(Debug)]
pub struct BrokerLifecycle {
    state: watch::Receiver<LifecycleState>,
    want_shutdown: Arc<AtomicBool>,
    wake: Arc<Notify>,
    task: JoinHandle<()>,
}

impl BrokerLifecycle {
    /// Registers `registration` (its incarnation id and epoch are filled in here) and starts
    /// heartbeating every `interval`.
    pub async fn start(
        controller: Arc<MetadataController>,
        mut registration: BrokerRegistration,
        interval: Duration,
    ) -> Result<BrokerLifecycle> {
        registration.incarnation_id = controller.incarnation_id();
        let broker_epoch = controller.register_broker(registration.clone()).await?;
        let (tx, rx) = watch::channel(LifecycleState {
            broker_epoch,
            fenced: true,
            should_shutdown: false,
        });
        let want_shutdown = Arc::new(AtomicBool::new(false));
        let wake = Arc::new(Notify::new());
        let task = tokio::spawn(heartbeat_loop(
            controller,
            registration,
            interval,
            tx,
            want_shutdown.clone(),
            wake.clone(),
        ));
        Ok(BrokerLifecycle {
            state: rx,
            want_shutdown,
            wake,
            task,
        })
    }

    /// The broker's current epoch, read where a closure is needed (fetchers, AlterPartition).
    pub fn broker_epoch_source(&self) -> impl Fn() -> i64 + Send + Sync + 'static {
        let state = self.state.clone();
        move || state.borrow().broker_epoch
    }

    /// The last state the controller gave.
    pub fn state(&self) -> LifecycleState {
        *self.state.borrow()
    }

    /// Waits until the controller has unfenced this broker (it caught up with the metadata
    /// log), at most `timeout`.
    pub async fn wait_unfenced(&self, timeout: Duration) -> Result<()> {
        let mut state = self.state.clone();
        let unfenced = tokio::time::timeout(timeout, state.wait_for(|s| !s.fenced))
            .await
            .map(|r| r.map(|_| ()));
        match unfenced {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Error::MetadataUnavailable(
                "the broker heartbeat stopped before the broker was unfenced".into(),
            )),
            Err(_) => Err(Error::MetadataUnavailable(format!(
                "the controller did not unfence this broker within {}s",
                timeout.as_secs()
            ))),
        }
    }

    /// Asks the controller for a controlled shutdown and waits, at most `timeout`, until it
    /// has moved this broker's leaderships away and lets it go; then stops heartbeating.
    pub async fn controlled_shutdown(&self, timeout: Duration) {
        self.want_shutdown.store(true, Ordering::SeqCst);
        self.wake.notify_one();
        let mut state = self.state.clone();
        let granted = tokio::time::timeout(timeout, state.wait_for(|s| s.should_shutdown))
            .await
            .map(|r| r.is_ok());
        match granted {
            Ok(true) => tracing::info!("controlled shutdown granted by the controller"),
            _ => tracing::warn!(
                timeout_ms = timeout.as_millis() as u64,
                "controlled shutdown not granted in time; stopping anyway"
            ),
        }
        self.task.abort();
    }
}

impl Drop for BrokerLifecycle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn heartbeat_loop(
    controller: Arc<MetadataController>,
    registration: BrokerRegistration,
    interval: Duration,
    state: watch::Sender<LifecycleState>,
    want_shutdown: Arc<AtomicBool>,
    wake: Arc<Notify>,
) {
    let mut failures = 0u32;
    loop {
        let current = *state.borrow();
        let shutting_down = want_shutdown.load(Ordering::SeqCst);
        let heartbeat = BrokerHeartbeat {
            broker_id: registration.node_id,
            broker_epoch: current.broker_epoch,
            current_metadata_offset: controller.image().last_applied_offset,
            want_fence: false,
            want_shutdown: shutting_down,
        };
        match controller.broker_heartbeat(heartbeat).await {
            Ok(reply) => {
                failures = 0;
                let next = LifecycleState {
                    broker_epoch: current.broker_epoch,
                    fenced: reply.is_fenced,
                    should_shutdown: reply.should_shutdown,
                };
                if next.fenced != current.fenced {
                    tracing::info!(
                        broker_id = registration.node_id,
                        broker_epoch = next.broker_epoch,
                        fenced = next.fenced,
                        "broker fencing changed"
                    );
                }
                state.send_replace(next);
                if next.should_shutdown {
                    return;
                }
            }
            // The controller no longer knows this registration (a restart of ours it saw,
            // a fence by a new controller that lost it): register again, with a new epoch.
            Err(Error::StaleBrokerEpoch(_)) | Err(Error::BrokerIdNotRegistered(_)) => {
                match controller.register_broker(registration.clone()).await {
                    Ok(broker_epoch) => {
                        tracing::info!(
                            broker_id = registration.node_id,
                            broker_epoch,
                            "registered again with the controller"
                        );
                        state.send_replace(LifecycleState {
                            broker_epoch,
                            fenced: true,
                            should_shutdown: false,
                        });
                    }
                    Err(e) => tracing::warn!(error = %e, "broker registration failed"),
                }
            }
            Err(e) => {
                failures += 1;
                // One line per run of failures, then every tenth: the controller may be
                // electing, and the broker keeps trying.
                if failures == 1 || failures.is_multiple_of(10) {
                    tracing::warn!(error = %e, failures, "broker heartbeat failed");
                }
            }
        }
        let waiting = state.borrow().fenced || want_shutdown.load(Ordering::SeqCst);
        let pause = if waiting {
            WAITING_HEARTBEAT.min(interval)
        } else {
            interval
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = wake.notified() => {}
        }
    }
}
