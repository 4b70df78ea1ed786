//! The networking seam: every socket the broker opens goes through here, so a simulator
//! (turmoil) can replace these types without touching the rest (DESIGN.md).

use tokio::net::{TcpListener, TcpStream};

use crate::config::Config;
use crate::error::{Error, Result};

pub type Listener = TcpListener;
pub type Stream = TcpStream;

/// Binds the client listener: the first of `listeners` that is not a controller listener.
/// A stock KRaft server.properties also names CONTROLLER://:9093; this broker's controller
/// quorum has no network yet (a quorum of one), so that listener is not opened. A failure
/// names the listener as configured (`listeners=PLAINTEXT://:9092`) and the OS's cause.
pub async fn bind(config: &Config) -> Result<Listener> {
    let listener = client_listener(config).ok_or_else(|| {
        Error::InvalidConfig(format!(
            "listeners={} names no client listener (each is in controller.listener.names)",
            config
                .entry("listeners")
                .and_then(|e| e.value.as_deref())
                .unwrap_or("")
        ))
    })?;
    bind_address(&listener.host, listener.port)
        .await
        .map_err(|e| Error::bind("listeners", listener, e))
}
/// The listener clients connect to: the first of `listeners` that is not a controller listener.
pub fn client_listener(config: &Config) -> Option<&crate::config::Listener> {
    config
        .listeners
        .iter()
        .find(|l| !config.controller_listener_names.contains(&l.name))
}

/// The client listener's name, for metric labels and request spans.
pub fn client_listener_name(config: &Config) -> &str {
    client_listener(config).map_or("", |l| l.name.as_str())
}

/// Binds the operations HTTP listener (`sluice.http.listener`), if enabled; an empty host
/// binds all interfaces, as for Kafka listeners.
pub async fn bind_http(config: &Config) -> Result<Option<Listener>> {
    let Some((host, port)) = &config.http_listener else {
        return Ok(None);
    };
    bind_address(host, *port).await.map(Some).map_err(|e| {
        Error::bind(
            crate::config::HTTP_LISTENER,
            config.http_listener_setting(),
            e,
        )
    })
}

async fn bind_address(host: &str, port: u16) -> std::io::Result<Listener> {
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    TcpListener::bind((host, port)).await
}

/// Disables Nagle: Kafka responses are written whole and latency matters more than packing.
pub fn configure(stream: &Stream) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "could not set TCP_NODELAY");
    }
}
