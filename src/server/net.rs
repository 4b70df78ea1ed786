//! The broker's listeners: binds every listener of `listeners` and the HTTP listener on the
//! socket seam of [`crate::net`], and names each accepted connection's listener.

use std::sync::Arc;

use crate::config::Config;
use crate::error::{Error, Result};
pub use crate::net::{configure, Listener, Stream};

/// Which listener a connection was accepted on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerInfo {
    /// Upper-cased listener name, as requests' contexts and metric labels carry it.
    pub name: Arc<str>,
    /// A controller listener (`controller.listener.names`) serves only the controller's APIs.
    pub controller: bool,
}

/// One bound listener of `listeners`.
#[derive(Debug)]
pub struct BoundListener {
    pub socket: Listener,
    pub info: ListenerInfo,
}

/// Binds every listener of `listeners`, in order, as Kafka's SocketServer does: the client
/// listeners and the controller listener. A failure names the listener as configured
/// (`listeners=PLAINTEXT://:9092`) and the OS's cause; what was bound before it is dropped.
pub async fn bind_all(config: &Config) -> Result<Vec<BoundListener>> {
    if !config
        .listeners
        .iter()
        .any(|l| !config.controller_listener_names.contains(&l.name))
    {
        return Err(Error::InvalidConfig(format!(
            "listeners={} names no client listener (each is in controller.listener.names)",
            config
                .entry("listeners")
                .and_then(|e| e.value.as_deref())
                .unwrap_or("")
        )));
    }
    let mut bound = Vec::with_capacity(config.listeners.len());
    for listener in &config.listeners {
        let socket = bind_address(&listener.host, listener.port)
            .await
            .map_err(|e| Error::bind("listeners", listener, e))?;
        bound.push(BoundListener {
            socket,
            info: ListenerInfo {
                name: Arc::from(listener.name.as_str()),
                controller: config.controller_listener_names.contains(&listener.name),
            },
        });
    }
    Ok(bound)
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
    crate::net::bind(host, port).await
}
