//! The operations HTTP listener (`sluice.http.listener`): `/metrics` in the Prometheus text
//! format, `/health/live` and `/health/ready`.
//!
//! It is bound before storage recovery starts, so an orchestrator sees the process live but
//! not ready while logs are recovered; readiness turns true once storage is recovered, the
//! metadata image is loaded and the Kafka listener is bound, and false again at shutdown.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::broker::Broker;
use crate::server::fetch_session::FetchSessionCache;
use crate::server::metrics_scrape;
use crate::server::net::Listener;

/// Most concurrent HTTP connections (scrapers and probes are few; this bounds a flood).
const HTTP_CONNECTIONS_MAX: usize = 64;
/// An HTTP connection is closed after this long, whatever it is doing.
const HTTP_CONNECTION_MS_MAX: u64 = 60_000;
/// The Prometheus text exposition format's content type.
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the HTTP listener reports: readiness, and once the broker has started, the broker
/// and its server's fetch sessions (what a scrape reads).
#[derive(Debug, Default)]
pub struct HttpState {
    ready: AtomicBool,
    scraped: OnceLock<(Arc<Broker>, Arc<Mutex<FetchSessionCache>>)>,
}

impl HttpState {
    /// The broker has recovered storage, loaded metadata and bound its Kafka listener.
    pub fn set_ready(&self, broker: Arc<Broker>, fetch_sessions: Arc<Mutex<FetchSessionCache>>) {
        let _ = self.scraped.set((broker, fetch_sessions));
        self.ready.store(true, Ordering::SeqCst);
    }

    /// The broker is shutting down: probes should stop sending traffic.
    pub fn set_not_ready(&self) {
        self.ready.store(false, Ordering::SeqCst);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }
}

/// Serves HTTP connections on `listener` until `shutdown` is cancelled.
pub async fn serve(listener: Listener, state: Arc<HttpState>, shutdown: CancellationToken) {
    let tasks = TaskTracker::new();
    let permits = Arc::new(Semaphore::new(HTTP_CONNECTIONS_MAX));
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "http accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            continue;
        };
        let state = state.clone();
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            let _permit = permit;
            serve_connection(stream, state, shutdown).await;
        });
    }
    tasks.close();
    let _ = tokio::time::timeout(Duration::from_secs(1), tasks.wait()).await;
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    state: Arc<HttpState>,
    shutdown: CancellationToken,
) {
    let service = hyper::service::service_fn(move |request| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(respond(&state, &request)) }
    });
    let connection =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let limit = tokio::time::sleep(Duration::from_millis(HTTP_CONNECTION_MS_MAX));
    tokio::pin!(limit);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "http connection failed");
            }
        }
        _ = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(1), connection).await;
        }
        _ = &mut limit => {}
    }
}

fn respond(state: &HttpState, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
    }
    match request.uri().path() {
        "/health/live" => text(StatusCode::OK, "live\n"),
        "/health/ready" if state.is_ready() => text(StatusCode::OK, "ready\n"),
        "/health/ready" => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
        "/metrics" => match state.scraped.get() {
            Some((broker, fetch_sessions)) => {
                let body = metrics_scrape::render(broker, fetch_sessions);
                let mut response = Response::new(Full::new(Bytes::from(body)));
                response.headers_mut().insert(
                    hyper::header::CONTENT_TYPE,
                    hyper::header::HeaderValue::from_static(METRICS_CONTENT_TYPE),
                );
                response
            }
            None => text(StatusCode::SERVICE_UNAVAILABLE, "broker starting\n"),
        },
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
}

/// `sluice healthcheck [host:port]`: a blocking GET of /health/ready for container
/// HEALTHCHECKs (a scratch image has no curl). Returns whether it answered 200.
pub fn probe_ready(address: &str, timeout: Duration) -> Result<bool, String> {
    use std::io::{Read, Write};
    use std::net::ToSocketAddrs;
    let target = address
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {address}: {e}"))?
        .next()
        .ok_or_else(|| format!("cannot resolve {address}"))?;
    let mut stream = std::net::TcpStream::connect_timeout(&target, timeout)
        .map_err(|e| format!("cannot connect to {address}: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| e.to_string())?;
    let request =
        format!("GET /health/ready HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("cannot send to {address}: {e}"))?;
    let mut head = [0u8; 64];
    let mut read = 0;
    while read < 12 {
        match stream.read(&mut head[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) => return Err(format!("no answer from {address}: {e}")),
        }
    }
    let status_line = String::from_utf8_lossy(&head[..read]);
    Ok(status_line.starts_with("HTTP/1.1 200") || status_line.starts_with("HTTP/1.0 200"))
}
