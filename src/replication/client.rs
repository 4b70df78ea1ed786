//! A Kafka-protocol client for one broker-to-broker connection: the follower's fetcher speaks
//! real Fetch and ListOffsets to the leader over its inter-broker listener, as Kafka's
//! replica fetcher does, so the leader serves followers through its ordinary handlers.

use std::io;
use std::time::Duration;

use bytes::BytesMut;
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

use crate::net::Stream;
use crate::protocol::frame::{read_frame, write_frame};

/// A response bigger than this is treated as a broken connection (Kafka bounds follower
/// fetches by replica.fetch.response.max.bytes; this leaves room for the frame around it).
const RESPONSE_BYTES_MAX: usize = 256 * 1024 * 1024;

/// One connection to one broker, opened on first use and again after an error.
#[derive(Debug)]
pub struct BrokerClient {
    addr: String,
    client_id: String,
    stream: Option<Stream>,
    correlation_id: i32,
}

impl BrokerClient {
    pub fn new(addr: String, client_id: String) -> Self {
        BrokerClient {
            addr,
            client_id,
            stream: None,
            correlation_id: 0,
        }
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Points the client at another address; the old connection is dropped.
    pub fn set_addr(&mut self, addr: String) {
        if addr != self.addr {
            self.addr = addr;
            self.stream = None;
        }
    }

    /// Sends `request` at `version` and waits for its response within `timeout`. Any error
    /// closes the connection, so the next call starts on a fresh one.
    pub async fn call<R: Request>(
        &mut self,
        version: i16,
        request: &R,
        timeout: Duration,
    ) -> io::Result<R::Response> {
        let result = tokio::time::timeout(timeout, self.exchange(version, request)).await;
        let result = match result {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no response from {} within {timeout:?}", self.addr),
            )),
        };
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    async fn exchange<R: Request>(&mut self, version: i16, request: &R) -> io::Result<R::Response> {
        if self.stream.is_none() {
            self.stream = Some(crate::net::connect(&self.addr, Duration::from_secs(10)).await?);
        }
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_string(self.client_id.clone())));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, R::header_version(version))
            .map_err(io::Error::other)?;
        request
            .encode(&mut body, version)
            .map_err(io::Error::other)?;
        let stream = self
            .stream
            .as_mut()
            .ok_or_else(|| io::Error::other("not connected"))?;
        write_frame(stream, &[body.freeze()]).await?;
        let mut frame = read_frame(stream, RESPONSE_BYTES_MAX)
            .await
            .map_err(io::Error::other)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"))?;
        let header = ResponseHeader::decode(
            &mut frame,
            <R::Response as HeaderVersion>::header_version(version),
        )
        .map_err(io::Error::other)?;
        if header.correlation_id != self.correlation_id {
            return Err(io::Error::other(format!(
                "response correlation id {} for request {}",
                header.correlation_id, self.correlation_id
            )));
        }
        R::Response::decode(&mut frame, version).map_err(io::Error::other)
    }
}
