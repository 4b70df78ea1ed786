//! One client connection: read a frame, dispatch it, write the response, in request order.
//!
//! Requests of one connection are handled one at a time, as Kafka's socket server does (it
//! mutes a channel until its response is sent), so responses leave in correlation-id order and
//! appends from one connection reach the log in the order they were sent. Connections run
//! concurrently with each other. Responses to pipelined requests are batched into one write:
//! the writer is flushed only when no further request is already buffered.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader, BufWriter};

use crate::broker::Broker;
use crate::protocol::frame::{read_frame, write_frame, FrameError};
use crate::server::dispatch;
use crate::server::fetch_session::FetchSessionCache;
use crate::server::net::{self, ListenerInfo, Stream};

/// Socket buffer sizes for reading requests and writing responses.
const READ_BUFFER_BYTES: usize = 64 * 1024;
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// Serves one connection until the client closes it, it idles past connections.max.idle.ms,
/// it sends something the broker cannot serve (logged once at WARN), or the broker stops.
pub async fn serve(
    broker: Arc<Broker>,
    fetch_sessions: Arc<Mutex<FetchSessionCache>>,
    stream: Stream,
    peer: SocketAddr,
    listener: ListenerInfo,
) {
    net::configure(&stream);
    let (read_half, write_half) = stream.into_split();
    let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, read_half);
    let mut writer = BufWriter::with_capacity(WRITE_BUFFER_BYTES, write_half);
    let idle = Duration::from_millis(broker.config.connections_max_idle_ms.max(1) as u64);
    let max_frame = broker.config.socket_request_max_bytes;
    loop {
        if reader.buffer().is_empty() {
            if let Err(e) = writer.flush().await {
                tracing::debug!(%peer, error = %e, "write failed; closing connection");
                return;
            }
        }
        let read = tokio::select! {
            _ = broker.shutdown.cancelled() => break,
            read = tokio::time::timeout(idle, read_frame(&mut reader, max_frame)) => read,
        };
        let frame = match read {
            Err(_) => {
                tracing::debug!(%peer, "connections.max.idle.ms passed; closing connection");
                break;
            }
            Ok(Ok(Some(frame))) => frame,
            Ok(Ok(None)) => break,
            Ok(Err(FrameError::Io(e))) => {
                tracing::debug!(%peer, error = %e, "read failed; closing connection");
                break;
            }
            Ok(Err(e)) => {
                tracing::warn!(%peer, error = %e, "closing connection");
                break;
            }
        };
        let api_key = frame.get(0..2).map(|b| i16::from_be_bytes([b[0], b[1]]));
        match dispatch::handle_frame(&broker, &fetch_sessions, frame, peer, &listener).await {
            Ok(Some(parts)) => {
                // Response-send time: into the write buffer, and onto the socket when the
                // response outgrows it. Queue time is not measured: a connection handles one
                // request at a time, so a request waits in no queue once read.
                let started = broker.clock.now();
                if let Err(e) = write_frame(&mut writer, &parts).await {
                    tracing::debug!(%peer, error = %e, "write failed; closing connection");
                    return;
                }
                observe_send(&broker, api_key, started);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(%peer, error = %e, "closing connection");
                break;
            }
        }
    }
    let _ = writer.flush().await;
}

fn observe_send(broker: &Broker, api_key: Option<i16>, started: tokio::time::Instant) {
    let Some(api_key) = api_key.and_then(|k| kafka_protocol::messages::ApiKey::try_from(k).ok())
    else {
        return;
    };
    let elapsed = broker.clock.now().saturating_duration_since(started);
    broker
        .metrics
        .api(api_key)
        .response_send_seconds
        .observe(elapsed.as_secs_f64());
}
