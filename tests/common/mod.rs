//! Black-box test harness: a real broker on 127.0.0.1:0 and a minimal wire client.
#![allow(dead_code)]

pub mod cluster;

use std::path::Path;
use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use indexmap::IndexMap;
use kafka_protocol::messages::RequestHeader;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use sluice::clock::SystemClock;
use sluice::config::Config;
use sluice::log::disk::Disk;
use sluice::server::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A broker with its own temporary data directory, removed when dropped.
pub struct TestBroker {
    pub server: Option<Server>,
    pub dir: tempfile::TempDir,
    pub config: Config,
}

/// ERROR events logged by any broker in this test process: a broker logs ERROR only when it is
/// itself broken, so every test fails on one (DESIGN.md testing rules).
static ERRORS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

struct CountErrors;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountErrors {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if *event.metadata().level() == tracing::Level::ERROR {
            ERRORS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

/// Installs the log capture once per test process (RUST_LOG shows the broker's logs).
pub fn init_tracing() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
        let _ = tracing_subscriber::registry()
            .with(CountErrors)
            .with(
                tracing_subscriber::fmt::layer()
                    .with_test_writer()
                    .with_filter(filter),
            )
            .try_init();
    });
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        let errors = ERRORS.load(std::sync::atomic::Ordering::SeqCst);
        if errors > 0 && !std::thread::panicking() {
            panic!("the broker logged {errors} ERROR line(s)");
        }
    }
}

impl TestBroker {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts with a config adjusted by `adjust` (e.g. flush policy).
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        init_tracing();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::for_test(dir.path());
        adjust(&mut config);
        let server = Server::start(config.clone()).await.expect("broker starts");
        TestBroker {
            server: Some(server),
            dir,
            config,
        }
    }

    /// Starts on a given disk (a simulated one in crash tests).
    pub async fn start_on(disk: Arc<dyn Disk>, dir: tempfile::TempDir, config: Config) -> Self {
        init_tracing();
        let server = Server::start_with(config.clone(), disk, Arc::new(SystemClock))
            .await
            .expect("broker starts");
        TestBroker {
            server: Some(server),
            dir,
            config,
        }
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.as_ref().expect("running").local_addr
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub async fn client(&self) -> Client {
        Client::connect(self.addr()).await
    }

    /// A clean stop and a start on the same data directory.
    pub async fn restart(mut self) -> Self {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        let server = Server::start(self.config.clone())
            .await
            .expect("broker restarts");
        self.server = Some(server);
        self
    }

    /// A clean stop; the data directory stays for a later start.
    pub async fn stop(mut self) -> (tempfile::TempDir, Config) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"));
        (dir, self.config.clone())
    }
}

/// One connection speaking the Kafka protocol.
pub struct Client {
    pub stream: TcpStream,
    correlation_id: i32,
}

impl Client {
    pub async fn connect(addr: std::net::SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect");
        Client {
            stream,
            correlation_id: 0,
        }
    }

    /// Sends a request at `version` and decodes its response.
    pub async fn call<R: Request>(&mut self, version: i16, request: &R) -> R::Response {
        self.send(version, request).await;
        self.receive::<R>(version).await
    }

    pub async fn send<R: Request>(&mut self, version: i16, request: &R) {
        self.correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("sluice-test")));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, R::header_version(version))
            .expect("encode header");
        request.encode(&mut body, version).expect("encode request");
        self.send_raw(&body).await;
    }

    pub async fn receive<R: Request>(&mut self, version: i16) -> R::Response {
        let mut frame = self.read_frame().await.expect("response frame");
        let header = kafka_protocol::messages::ResponseHeader::decode(
            &mut frame,
            <R::Response as HeaderVersion>::header_version(version),
        )
        .expect("response header");
        assert_eq!(
            header.correlation_id, self.correlation_id,
            "responses in order"
        );
        R::Response::decode(&mut frame, version).expect("decode response")
    }

    /// Writes one frame with the given body.
    pub async fn send_raw(&mut self, body: &[u8]) {
        let mut frame = BytesMut::with_capacity(body.len() + 4);
        frame.put_i32(body.len() as i32);
        frame.put_slice(body);
        self.stream.write_all(&frame).await.expect("write");
    }

    /// Reads one frame; `None` when the broker closed the connection.
    pub async fn read_frame(&mut self) -> Option<Bytes> {
        let size = match self.stream.read_i32().await {
            Ok(size) => size,
            Err(_) => return None,
        };
        let mut buf = vec![0u8; size as usize];
        self.stream.read_exact(&mut buf).await.ok()?;
        Some(Bytes::from(buf))
    }

    /// True when the broker closed this connection (within 5 s).
    pub async fn is_closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(
            tokio::time::timeout(
                std::time::Duration::from_secs(5),
                self.stream.read(&mut byte)
            )
            .await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}

/// A record batch of `count` keyed records with one header each.
pub fn batch(count: usize, compression: Compression, timestamp: i64) -> Bytes {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // Per-record sequences make kafka-protocol write one batch (not one per record).
            sequence: i as i32,
            timestamp: timestamp + i as i64,
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(format!("value-{i}"))),
            headers: IndexMap::from([(
                StrBytes::from_static_str("h"),
                Some(Bytes::from_static(b"v")),
            )]),
        })
        .collect();
    encode(&records, compression)
}

/// One v2 batch of `records` (kafka-protocol writes one batch while offset - sequence stays
/// constant).
pub fn encode(records: &[Record], compression: Compression) -> Bytes {
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .expect("encode batch");
    buf.freeze()
}

/// Decodes every record in a fetch response's records field.
pub fn decode_records(records: &Bytes) -> Vec<Record> {
    let mut buf = records.clone();
    let mut out = Vec::new();
    while buf.remaining() > 0 {
        let set = RecordBatchDecoder::decode(&mut buf).expect("decode fetched batch");
        out.extend(set.records);
    }
    out
}

/// A topic name for a request.
pub fn name(s: &str) -> kafka_protocol::messages::TopicName {
    kafka_protocol::messages::TopicName(StrBytes::from_string(s.to_string()))
}

/// CreateTopics v7 of one topic with replication factor 1.
pub async fn create_topic(
    client: &mut Client,
    topic: &str,
    partitions: i32,
) -> kafka_protocol::messages::CreateTopicsResponse {
    create_topic_with_configs(client, topic, partitions, &[]).await
}

/// CreateTopics v7 of one topic with replication factor 1 and these topic configs.
pub async fn create_topic_with_configs(
    client: &mut Client,
    topic: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> kafka_protocol::messages::CreateTopicsResponse {
    use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
    let configs = configs
        .iter()
        .map(|(k, v)| {
            CreatableTopicConfig::default()
                .with_name(StrBytes::from_string(k.to_string()))
                .with_value(Some(StrBytes::from_string(v.to_string())))
        })
        .collect();
    let request = kafka_protocol::messages::CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(name(topic))
            .with_num_partitions(partitions)
            .with_replication_factor(1)
            .with_configs(configs)])
        .with_timeout_ms(5000);
    client.call(7, &request).await
}

/// A one-partition topic with these configs that must be created.
pub async fn create_with(client: &mut Client, topic: &str, configs: &[(&str, &str)]) {
    let response = create_topic_with_configs(client, topic, 1, configs).await;
    assert_eq!(
        response.topics[0].error_code, 0,
        "create {topic}: {response:?}"
    );
}

/// A one-partition topic that must be created.
pub async fn create(client: &mut Client, topic: &str) {
    let response = create_topic(client, topic, 1).await;
    assert_eq!(response.topics[0].error_code, 0);
}
