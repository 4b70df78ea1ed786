//! The socket seam: every TCP socket Sluice opens or accepts is of these types and made here,
//! so a simulator (turmoil) can replace them without touching the rest (DESIGN.md). A leaf:
//! the metadata quorum's transport and the server's listeners both build on it.

use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

pub type Listener = TcpListener;
pub type Stream = TcpStream;

/// Binds `host:port`; an empty host binds all interfaces, as for Kafka listeners.
pub async fn bind(host: &str, port: u16) -> std::io::Result<Listener> {
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    TcpListener::bind((host, port)).await
}

/// Connects to `addr` (`host:port`) within `timeout`, configured as every connection is.
pub async fn connect(addr: &str, timeout: Duration) -> std::io::Result<Stream> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("connecting to {addr} timed out"),
            )
        })??;
    configure(&stream);
    Ok(stream)
}

/// Disables Nagle: Kafka frames are written whole and latency matters more than packing.
pub fn configure(stream: &Stream) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "could not set TCP_NODELAY");
    }
}
