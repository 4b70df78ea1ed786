//! Operations black-box tests: the HTTP listener's health endpoints and /metrics scrapes while
//! the wire protocol is driven.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{batch, init_tracing, name, TestBroker};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    BrokerId, CreateTopicsRequest, FetchRequest, GroupId, HeartbeatRequest, OffsetCommitRequest,
    ProduceRequest,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use sluice::clock::SystemClock;
use sluice::config::Config;
use sluice::log::disk::FsDisk;
use sluice::server::{Server, StartHooks};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A GET over a fresh connection; returns (status code, body).
async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .expect("answer in time")
        .expect("read");
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The value of the sample `name{labels}` in a scrape (labels as rendered, in order).
fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape.lines().find_map(|line| {
        let (key, value) = line.rsplit_once(' ')?;
        (key == series).then(|| value.parse().ok())?
    })
}

/// `sluice healthcheck`'s blocking probe, off the test's runtime thread.
async fn probe(addr: std::net::SocketAddr) -> Result<bool, String> {
    tokio::task::spawn_blocking(move || {
        sluice::server::http::probe_ready(&addr.to_string(), Duration::from_secs(2))
    })
    .await
    .expect("probe task")
}

#[tokio::test]
async fn readiness_is_false_while_recovery_is_held_and_true_after() {
    init_tracing();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = Config::for_test(dir.path());
    let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
    let (release_tx, release_rx) = tokio::sync::oneshot::channel();
    let hooks = StartHooks {
        http_bound: Some(bound_tx),
        hold_recovery: Some(release_rx),
    };
    let starting = tokio::spawn(Server::start_hooked(
        config,
        Arc::new(FsDisk::new()),
        Arc::new(SystemClock),
        hooks,
    ));
    let http = bound_rx.await.expect("http listener bound");
    assert_eq!(get(http, "/health/live").await.0, 200);
    assert_eq!(get(http, "/health/ready").await.0, 503);
    assert_eq!(get(http, "/metrics").await.0, 503);
    assert!(!probe(http).await.expect("answers"));
    release_tx.send(()).expect("start waits");
    let server = starting.await.expect("task").expect("broker starts");
    assert_eq!(get(http, "/health/ready").await.0, 200);
    assert!(probe(http).await.expect("answers"));
    let (status, body) = get(http, "/metrics").await;
    assert_eq!(status, 200);
    assert!(body.contains("sluice_metadata_raft_leader_id 1"), "{body}");
    assert_eq!(get(http, "/nope").await.0, 404);
    server.shutdown().await;
    assert!(probe(http).await.is_err());
}

#[tokio::test]
async fn metrics_count_requests_errors_bytes_and_records_per_api_and_topic() {
    let broker = TestBroker::start_with(|c| c.request_slow_ms = 0).await;
    let http = broker.server.as_ref().unwrap().http_addr.expect("http on");
    let mut client = broker.client().await;
    let create = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(name("watched"))
            .with_num_partitions(1)
            .with_replication_factor(1)])
        .with_timeout_ms(5000);
    let created = client.call(7, &create).await;
    assert_eq!(created.topics[0].error_code, 0);
    let topic_id = created.topics[0].topic_id;
    let produce = |topic: &str, records: Bytes| {
        ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(name(topic))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(records))])])
    };
    for _ in 0..2 {
        let r = client
            .call(9, &produce("watched", batch(5, Compression::None, 0)))
            .await;
        assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    }
    // v13 names the topic by id only (KIP-516): still counted under its name.
    let by_id = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_topic_id(topic_id)
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch(4, Compression::None, 0)))])]);
    let r = client.call(13, &by_id).await;
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    // Partition 0 exists, partition 7 does not: UNKNOWN_TOPIC_OR_PARTITION (3).
    let bad = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name("watched"))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(7)
                .with_records(Some(batch(1, Compression::None, 0)))])]);
    let r = client.call(9, &bad).await;
    assert_eq!(r.responses[0].partition_responses[0].error_code, 3);
    let fetch = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(1024 * 1024)
        // Epoch 0 without a session id: a full fetch that opens a session (KIP-227).
        .with_session_epoch(0)
        .with_topics(vec![FetchTopic::default()
            .with_topic(name("watched"))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1024 * 1024)])]);
    let fetched = client.call(12, &fetch).await;
    let fetched_bytes = fetched.responses[0].partitions[0]
        .records
        .as_ref()
        .map_or(0, |r| r.len());
    assert!(fetched_bytes > 0);
    assert_ne!(fetched.session_id, 0, "a session was opened");
    // An admin commit (generation -1, no member) makes an Empty group that lags the log end
    // (14) by 4.
    let commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("lagging")))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(name("watched"))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(10)])]);
    let committed = client.call(8, &commit).await;
    assert_eq!(committed.topics[0].partitions[0].error_code, 0);
    // A group API's error code is counted too: a heartbeat from a member the coordinator does
    // not know gets UNKNOWN_MEMBER_ID (25).
    let heartbeat = HeartbeatRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("nobody-joined")))
        .with_generation_id(1)
        .with_member_id(StrBytes::from_static_str("ghost"));
    let r = client.call(4, &heartbeat).await;
    assert_eq!(r.error_code, 25);

    let (status, scrape) = get(http, "/metrics").await;
    assert_eq!(status, 200);
    let value = |series: &str| sample(&scrape, series).unwrap_or_else(|| panic!("{series}"));
    assert_eq!(
        value(r#"sluice_server_requests_total{api="Produce",version="9"}"#),
        3.0
    );
    assert_eq!(
        value(r#"sluice_server_requests_total{api="Fetch",version="12"}"#),
        1.0
    );
    assert_eq!(
        value(r#"sluice_server_request_errors_total{api="Produce",error_code="3",version="9"}"#),
        1.0
    );
    assert_eq!(
        value(r#"sluice_server_request_errors_total{api="Heartbeat",error_code="25",version="4"}"#),
        1.0
    );
    assert_eq!(
        value(r#"sluice_topic_records_in_total{topic="watched"}"#),
        14.0
    );
    assert_eq!(
        value(r#"sluice_topic_records_out_total{topic="watched"}"#),
        14.0
    );
    assert_eq!(
        value(r#"sluice_topic_bytes_out_total{topic="watched"}"#),
        fetched_bytes as f64
    );
    assert_eq!(
        value(r#"sluice_topic_bytes_in_total{topic="watched"}"#),
        fetched_bytes as f64
    );
    assert_eq!(
        value(r#"sluice_partition_log_end_offset{partition="0",topic="watched"}"#),
        14.0
    );
    assert_eq!(
        value(r#"sluice_partition_high_watermark{partition="0",topic="watched"}"#),
        14.0
    );
    assert_eq!(
        value(r#"sluice_partition_segments{partition="0",topic="watched"}"#),
        1.0
    );
    assert_eq!(
        value(r#"sluice_partition_size_bytes{partition="0",topic="watched"}"#),
        fetched_bytes as f64
    );
    assert_eq!(
        value(r#"sluice_server_active_connections{listener="PLAINTEXT"}"#),
        1.0
    );
    assert!(value(r#"sluice_server_request_processing_seconds_count{api="Produce"}"#) >= 3.0);
    assert!(value(r#"sluice_server_response_send_seconds_count{api="Fetch"}"#) >= 1.0);
    // sluice.request.slow.ms=0: every request is slow.
    assert!(value(r#"sluice_server_slow_requests_total{api="Produce"}"#) >= 3.0);
    assert!(value("sluice_metadata_raft_term") >= 1.0);
    assert_eq!(
        value(r#"sluice_server_inflight_requests{api="Produce"}"#),
        0.0
    );
    assert!(value("sluice_metadata_topics") >= 1.0);
    assert!(value("sluice_process_resident_memory_bytes") > 0.0);
    assert_eq!(value("sluice_server_fetch_sessions"), 1.0);
    assert_eq!(
        value(r#"sluice_group_lag_records{group="lagging",partition="0",topic="watched"}"#),
        4.0
    );
    assert_eq!(
        value(r#"sluice_group_state{group="lagging",state="Empty"}"#),
        1.0
    );
}

#[tokio::test]
async fn http_listener_can_be_disabled() {
    let broker = TestBroker::start_with(|c| c.http_listener = None).await;
    assert!(broker.server.as_ref().unwrap().http_addr.is_none());
}

#[tokio::test]
async fn a_parked_long_poll_fetch_shows_in_inflight_requests() {
    let broker = TestBroker::start().await;
    let http = broker.server.as_ref().unwrap().http_addr.expect("http on");
    let mut client = broker.client().await;
    let create = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(name("idle"))
            .with_num_partitions(1)
            .with_replication_factor(1)])
        .with_timeout_ms(5000);
    assert_eq!(client.call(7, &create).await.topics[0].error_code, 0);
    let fetch = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(1500)
        .with_min_bytes(1)
        .with_max_bytes(1024 * 1024)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(name("idle"))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1024 * 1024)])]);
    client.send(12, &fetch).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, scrape) = get(http, "/metrics").await;
    let series = r#"sluice_server_inflight_requests{api="Fetch"}"#;
    assert_eq!(sample(&scrape, series), Some(1.0), "{scrape}");
    let _ = client.receive::<FetchRequest>(12).await;
    let (_, scrape) = get(http, "/metrics").await;
    assert_eq!(sample(&scrape, series), Some(0.0));
    // The long poll waited its max_wait_ms: not a slow request.
    assert_eq!(
        sample(&scrape, r#"sluice_server_slow_requests_total{api="Fetch"}"#),
        Some(0.0)
    );
}
