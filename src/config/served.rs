//! The configurations Sluice can honour today: a valid Kafka config that asks for what Sluice
//! does not serve yet (a controller quorum of several nodes, a broker-only or controller-only
//! node, a listener with TLS or SASL) stops the start with a message naming the key, instead of
//! silently running as a cluster of one or serving plaintext where security was asked for.

use super::{Config, ConfigError, SecurityProtocol};

/// Hosts that name this machine's loopback interface, as `controller.quorum.bootstrap.servers`
/// of Kafka's shipped single-node `server.properties` (`localhost:9093`) does.
const LOOPBACK_HOSTS: &[&str] = &["localhost", "127.0.0.1", "::1", "[::1]", ""];

/// Errs when `config` asks for something a single combined node cannot honour.
pub fn check(config: &Config) -> Result<(), ConfigError> {
    check_listener_protocols(config)?;
    check_roles(config)?;
    check_voters(config)?;
    check_bootstrap_servers(config)
}

fn not_served(config: &Config, key: &str, reason: String) -> ConfigError {
    let value = config
        .entry(key)
        .and_then(|e| e.value.clone())
        .unwrap_or_default();
    ConfigError::Invalid(format!("{key}={value}: {reason}"))
}

/// Every listener is bound and served as its security protocol says, so one whose protocol is
/// not PLAINTEXT cannot be served until TLS and SASL exist: never as plaintext.
fn check_listener_protocols(config: &Config) -> Result<(), ConfigError> {
    let Some(listener) = config
        .listeners
        .iter()
        .find(|l| l.security_protocol != SecurityProtocol::Plaintext)
    else {
        return Ok(());
    };
    let mapped = if listener.name == listener.security_protocol.name() {
        String::new()
    } else {
        format!(
            " (listener.security.protocol.map maps {} to it)",
            listener.name
        )
    };
    Err(not_served(
        config,
        "listeners",
        format!(
            "listener {} uses security protocol {}{mapped}, which is not served yet: TLS and \
             SASL are not implemented, and a listener is never served as plaintext in their \
             place; use PLAINTEXT listeners",
            listener.name, listener.security_protocol
        ),
    ))
}

fn check_roles(config: &Config) -> Result<(), ConfigError> {
    let roles = config.process_roles;
    if roles.broker && roles.controller {
        return Ok(());
    }
    Err(not_served(
        config,
        "process.roles",
        "a broker-only or controller-only node is not served yet; Sluice runs combined \
         broker,controller nodes"
            .to_string(),
    ))
}

fn check_voters(config: &Config) -> Result<(), ConfigError> {
    let ids: Vec<i32> = config
        .controller_quorum_voters
        .iter()
        .map(|v| v.id)
        .collect();
    let alone = format!("one voter, {}@host:port, or leave it unset", config.node_id);
    match voter_set_problem(config, &ids, &alone) {
        None => Ok(()),
        Some(reason) => Err(not_served(config, "controller.quorum.voters", reason)),
    }
}

/// Why this node cannot serve a quorum of the voters `ids` (`controller.quorum.voters`, or the
/// initial voters `sluice format` recorded for KIP-853's dynamic quorum), if it cannot;
/// `alone` says how to configure a quorum of this node alone instead.
pub fn voter_set_problem(config: &Config, ids: &[i32], alone: &str) -> Option<String> {
    match ids {
        [] => None,
        [only] if *only == config.node_id => None,
        [only] => Some(format!(
            "the only voter is node {only}, not this node (node.id={}): this node would not be \
             in its own quorum",
            config.node_id
        )),
        voters if !voters.contains(&config.node_id) => Some(format!(
            "this node (node.id={}) is not one of the voters: a broker-only node is not served \
             yet",
            config.node_id
        )),
        // The quorum itself runs over the network; the partitions of its brokers are not
        // replicated yet, so only the cluster's own tests may start one.
        _ if config.unreplicated_quorum_for_tests => None,
        voters => Some(format!(
            "a cluster of {} nodes is not served yet (its partitions are not replicated); \
             Sluice runs a quorum of this node alone ({alone})",
            voters.len(),
        )),
    }
}

/// True when `controller.quorum.bootstrap.servers` names only this node's own controller
/// listener (on loopback or its own listener host), as Kafka 4's shipped single-node
/// `server.properties` does (`localhost:9093`).
pub fn bootstrap_names_only_this_node(config: &Config) -> bool {
    let own = |host: &str, port: u16| {
        config.listeners.iter().any(|l| {
            config.controller_listener_names.contains(&l.name)
                && l.port == port
                && (LOOPBACK_HOSTS.contains(&host) || l.host == host)
        })
    };
    matches!(
        config.controller_quorum_bootstrap_servers.as_slice(),
        [(host, port)] if own(host, *port)
    )
}

/// KIP-853's dynamic quorum: a single node may name itself (its own controller listener, on
/// loopback or its own listener host); any other server means a quorum of several nodes, which
/// only the cluster's own tests start (their voter set is the one `sluice format` recorded).
fn check_bootstrap_servers(config: &Config) -> Result<(), ConfigError> {
    if config.controller_quorum_bootstrap_servers.is_empty()
        || bootstrap_names_only_this_node(config)
        || config.unreplicated_quorum_for_tests
    {
        return Ok(());
    }
    Err(not_served(
        config,
        "controller.quorum.bootstrap.servers",
        "a controller quorum with other nodes is not served yet; Sluice runs a quorum of this \
         node alone (name only its own controller listener, or leave it unset)"
            .to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_args;

    fn load(overrides: &[&str]) -> Config {
        let args = overrides
            .iter()
            .flat_map(|kv| ["--override".to_string(), kv.to_string()]);
        parse_args(args, &[]).expect("valid Kafka config").config
    }

    fn refusal(config: Config) -> String {
        check(&config).expect_err("must not start").to_string()
    }

    /// Kafka 4's single-node layout (a client and a controller listener) plus `extra`.
    fn standalone(extra: &str) -> Config {
        load(&[
            "listeners=PLAINTEXT://:9092,CONTROLLER://:9093",
            "controller.listener.names=CONTROLLER",
            extra,
        ])
    }

    #[test]
    fn zero_config_and_a_quorum_of_this_node_alone_are_served() {
        assert!(check(&load(&[])).is_ok());
        assert!(check(&standalone("controller.quorum.voters=1@localhost:9093")).is_ok());
        // Kafka 4's shipped server.properties.
        assert!(check(&standalone(
            "controller.quorum.bootstrap.servers=localhost:9093"
        ))
        .is_ok());
    }

    #[test]
    fn three_voters_stop_the_start_naming_the_key() {
        let message = refusal(standalone(
            "controller.quorum.voters=1@a:9093,2@b:9093,3@c:9093",
        ));
        assert!(
            message.contains("controller.quorum.voters=1@a:9093,2@b:9093,3@c:9093"),
            "{message}"
        );
        assert!(message.contains("cluster of 3 nodes"), "{message}");
        // A broker that is not one of the voters is a broker-only node: not served either.
        let message = refusal(standalone("controller.quorum.voters=2@a:9093,3@b:9093"));
        assert!(message.contains("not one of the voters"), "{message}");
    }

    #[test]
    fn a_quorum_without_this_node_or_with_other_servers_is_refused() {
        assert!(
            refusal(standalone("controller.quorum.voters=2@localhost:9093")).contains("node.id=1")
        );
        assert!(refusal(standalone(
            "controller.quorum.bootstrap.servers=localhost:9093,b:9093"
        ))
        .contains("controller.quorum.bootstrap.servers="));
        assert!(refusal(standalone(
            "controller.quorum.bootstrap.servers=other-host:9093"
        ))
        .contains("controller.quorum.bootstrap.servers="));
    }

    #[test]
    fn broker_only_and_controller_only_roles_are_refused() {
        let message = refusal(load(&[
            "process.roles=broker",
            "controller.listener.names=CONTROLLER",
            "controller.quorum.voters=1@c1:9093",
        ]));
        assert!(message.starts_with("Invalid configuration: process.roles=broker:"));
    }

    #[test]
    fn a_tls_or_sasl_listener_is_refused_never_served_as_plaintext() {
        let message = refusal(load(&["listeners=PLAINTEXT://:9092,SSL://:9093"]));
        assert!(
            message.contains(
                "listeners=PLAINTEXT://:9092,SSL://:9093: listener SSL uses security protocol SSL"
            ),
            "{message}"
        );
        let message = refusal(load(&[
            "listeners=PLAINTEXT://:9092,SECURE://:9094",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SECURE:SASL_SSL",
        ]));
        assert!(
            message.contains("listener SECURE uses security protocol SASL_SSL (listener.security.protocol.map maps SECURE to it)"),
            "{message}"
        );
        // The apache/kafka image's layout: every listener PLAINTEXT.
        assert!(check(&load(&[
            "listeners=CONTROLLER://:29093,PLAINTEXT_HOST://:9092,PLAINTEXT://:19092",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT_HOST:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "advertised.listeners=PLAINTEXT_HOST://localhost:9092,PLAINTEXT://broker:19092",
            "controller.listener.names=CONTROLLER",
        ]))
        .is_ok());
    }
}
