//! Black-box: every listener of `listeners` is bound, and each tells its clients the endpoints
//! advertised for it (Metadata, FindCoordinator, DescribeCluster), as Kafka's listeners do; a
//! controller listener serves only the controller's APIs.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use common::{Client, TestBroker};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use sluice::config::Config;
use sluice::log::disk::FsDisk;

/// A broker with two client listeners and a controller listener on ephemeral ports: clients
/// inside are told `localhost`, outside `127.0.0.1` (as the apache/kafka image's
/// PLAINTEXT_HOST and PLAINTEXT listeners tell host and container clients apart).
async fn three_listeners() -> (TestBroker, Vec<(String, SocketAddr)>) {
    common::init_tracing();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = Config::for_test_with(
        dir.path(),
        &[
            (
                "listeners",
                "PLAINTEXT_HOST://127.0.0.1:0,INTERNAL://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
            ),
            (
                "advertised.listeners",
                "PLAINTEXT_HOST://127.0.0.1:0,INTERNAL://localhost:0",
            ),
            (
                "listener.security.protocol.map",
                "PLAINTEXT_HOST:PLAINTEXT,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
            ),
            ("inter.broker.listener.name", "INTERNAL"),
            ("controller.listener.names", "CONTROLLER"),
        ],
    );
    let broker = TestBroker::start_on(Arc::new(FsDisk::new()), dir, config).await;
    let addrs = broker
        .server
        .as_ref()
        .expect("running")
        .listener_addrs
        .iter()
        .map(|(name, addr)| (name.to_string(), *addr))
        .collect();
    (broker, addrs)
}

fn addr(addrs: &[(String, SocketAddr)], name: &str) -> SocketAddr {
    addrs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, a)| *a)
        .unwrap_or_else(|| panic!("listener {name} bound: {addrs:?}"))
}

#[tokio::test]
async fn every_listener_is_bound_and_tells_its_own_advertised_endpoint() {
    let (_broker, addrs) = three_listeners().await;
    assert_eq!(
        addrs.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["PLAINTEXT_HOST", "INTERNAL", "CONTROLLER"]
    );
    for (listener, host) in [("PLAINTEXT_HOST", "127.0.0.1"), ("INTERNAL", "localhost")] {
        let bound = addr(&addrs, listener);
        let mut client = Client::connect(bound).await;
        let metadata = client
            .call(12, &MetadataRequest::default().with_topics(Some(vec![])))
            .await;
        assert_eq!(metadata.brokers.len(), 1, "{listener}: {metadata:?}");
        assert_eq!(metadata.brokers[0].host.as_str(), host, "{listener}");
        assert_eq!(
            metadata.brokers[0].port,
            i32::from(bound.port()),
            "{listener}"
        );

        let coordinator = client
            .call(
                3,
                &FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("g")),
            )
            .await;
        assert_eq!(coordinator.error_code, 0, "{coordinator:?}");
        assert_eq!(coordinator.host.as_str(), host, "{listener}");
        assert_eq!(coordinator.port, i32::from(bound.port()), "{listener}");

        let cluster = client.call(0, &DescribeClusterRequest::default()).await;
        assert_eq!(cluster.brokers[0].host.as_str(), host, "{listener}");
        assert_eq!(
            cluster.brokers[0].port,
            i32::from(bound.port()),
            "{listener}"
        );
    }
}

#[tokio::test]
async fn the_controller_listener_serves_only_api_versions() {
    let (_broker, addrs) = three_listeners().await;
    let mut client = Client::connect(addr(&addrs, "CONTROLLER")).await;
    let versions = client
        .call(
            3,
            &ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("sluice-test"))
                .with_client_software_version(StrBytes::from_static_str("1.0")),
        )
        .await;
    assert_eq!(versions.error_code, 0);
    let keys: Vec<i16> = versions.api_keys.iter().map(|k| k.api_key).collect();
    assert_eq!(keys, [ApiKey::ApiVersions as i16]);
    // A client API on the controller listener closes the connection (one WARN line), as a
    // request for an API the listener does not serve does in Kafka.
    client
        .send(12, &MetadataRequest::default().with_topics(Some(vec![])))
        .await;
    assert!(client.is_closed().await);
    // The client listeners still serve everything.
    let mut client = Client::connect(addr(&addrs, "INTERNAL")).await;
    let versions = client.call(0, &ApiVersionsRequest::default()).await;
    assert!(versions.api_keys.len() > 20, "{versions:?}");
}
