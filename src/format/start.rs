//! What the broker reads back at start from what `sluice format` wrote: the metadata quorum's
//! voters ([`quorum_voters`], handed to `ControllerConfig::voters` by `Broker::start`) and
//! whether storage had to be formatted first.
//!
//! - `controller.quorum.voters`: the static quorum (kraft.version 0), as before. With several
//!   voters every directory must hold `meta.properties` (Kafka's KafkaRaftServer: "No
//!   `meta.properties` found in ... (have you run `kafka-storage.sh` to format the
//!   directory?)"), so that no node invents a cluster id of its own.
//! - `controller.quorum.bootstrap.servers` with a voter set formatted by `--standalone` or
//!   `--initial-controllers` (KIP-853): those voters, used exactly as the static ones.
//! - A node that would join as an observer and be added with AddRaftVoter (formatted with
//!   `--no-initial-controllers`, or not in the formatted set) stops the start: not served yet.
//! - Zero config, one voter, or bootstrap servers naming only this node on storage without a
//!   voter set: a quorum of this node alone, whose storage formats itself on first start.

use std::path::PathBuf;

use crate::config::{served, Config};
use crate::error::{Error, Result};
use crate::log::log_manager::{read_meta_properties, META_PROPERTIES};

use super::storage_dirs;
use super::voters::{initial_voters_path, read_initial_voters, DynamicVoter, InitialVoters};

/// The voters of the metadata quorum this node starts with, each as (node id, `host:port` of
/// its controller listener); empty for a quorum of this node alone. Errs, naming the setting
/// and the fix, when the storage or the voter set cannot be started on.
pub fn quorum_voters(config: &Config) -> Result<Vec<(i32, String)>> {
    let storage = Storage::read(config)?;
    let metadata_dir = config.metadata_log_dir();
    let formatted = read_initial_voters(metadata_dir).map_err(Error::InvalidConfig)?;
    let voters_value = setting(config, "controller.quorum.voters");
    match (&formatted, config.controller_quorum_voters.as_slice()) {
        (Some(_), [_, ..]) => Err(Error::InvalidConfig(format!(
            "controller.quorum.voters={voters_value}: the storage was formatted for KIP-853's \
             dynamic quorum ({}); remove controller.quorum.voters and set \
             controller.quorum.bootstrap.servers instead",
            initial_voters_path(metadata_dir).display()
        ))),
        (None, static_voters) => {
            if static_voters.len() > 1 {
                storage.require_formatted(&format!("controller.quorum.voters={voters_value}"))?;
            }
            // Bootstrap servers naming other nodes (only the cluster's own tests get this far)
            // with no voter set formatted: this node would have to be added to their quorum.
            if static_voters.is_empty()
                && !config.controller_quorum_bootstrap_servers.is_empty()
                && !served::bootstrap_names_only_this_node(config)
            {
                return Err(observer(config, "no initial voter set was formatted"));
            }
            Ok(static_voters.iter().map(|v| (v.id, v.address())).collect())
        }
        (Some(InitialVoters::NoInitialControllers), []) => Err(observer(
            config,
            "the storage was formatted with --no-initial-controllers",
        )),
        (Some(InitialVoters::Voters(voters)), []) => formatted_voters(config, &storage, voters),
    }
}

/// The voter set of `--standalone` / `--initial-controllers`, checked as
/// `controller.quorum.voters` is (`config::served`): several voters only in the cluster's own
/// tests until partitions are replicated.
fn formatted_voters(
    config: &Config,
    storage: &Storage,
    voters: &[DynamicVoter],
) -> Result<Vec<(i32, String)>> {
    let listed = voters
        .iter()
        .map(|v| format!("{}@{}", v.node_id, v.address()))
        .collect::<Vec<_>>()
        .join(",");
    if !voters.iter().any(|v| v.node_id == config.node_id) {
        return Err(observer(
            config,
            &format!("this node is not one of the formatted initial voters {listed}"),
        ));
    }
    let path = initial_voters_path(config.metadata_log_dir());
    let subject = format!(
        "the initial voters {listed} formatted in {}",
        path.display()
    );
    let ids: Vec<i32> = voters.iter().map(|v| v.node_id).collect();
    if let Some(reason) = served::voter_set_problem(config, &ids, "format with --standalone") {
        return Err(Error::InvalidConfig(format!("{subject}: {reason}")));
    }
    if voters.len() > 1 {
        storage.require_formatted(&subject)?;
    }
    tracing::info!(voters = %listed, file = %path.display(),
        "metadata quorum voters from the formatted initial voter set (KIP-853)");
    Ok(voters.iter().map(|v| (v.node_id, v.address())).collect())
}

/// A node that would join the quorum as an observer, to be added with AddRaftVoter.
fn observer(config: &Config, why: &str) -> Error {
    Error::InvalidConfig(format!(
        "controller.quorum.bootstrap.servers={}: {why}, so this node would join the quorum as \
         an observer; adding a controller to the quorum (AddRaftVoter, KIP-853) is not served \
         yet: format with --standalone or --initial-controllers naming this node",
        setting(config, "controller.quorum.bootstrap.servers")
    ))
}

fn setting(config: &Config, key: &str) -> String {
    config
        .entry(key)
        .and_then(|e| e.value.clone())
        .unwrap_or_default()
}

/// The `meta.properties` state of every directory (`log.dirs` and `metadata.log.dir`).
struct Storage {
    /// Directories without `meta.properties`.
    unformatted: Vec<PathBuf>,
}

impl Storage {
    /// Reads every directory's `meta.properties` and checks them against each other and the
    /// config, as Kafka's `MetaPropertiesEnsemble.verify` does at start: one cluster id (and
    /// `CLUSTER_ID`, when set, the same), and this node's id.
    fn read(config: &Config) -> Result<Storage> {
        let mut cluster_id: Option<(String, String)> = config
            .cluster_id
            .clone()
            .map(|id| (id, "the CLUSTER_ID environment variable".to_string()));
        let mut unformatted = Vec::new();
        for dir in storage_dirs(config) {
            let Some(meta) = read_meta_properties(&dir)? else {
                unformatted.push(dir);
                continue;
            };
            let path = dir.join(META_PROPERTIES);
            if let Some(found) = meta.node_id.filter(|n| *n != config.node_id) {
                return Err(Error::InvalidConfig(format!(
                    "node.id={}: stored node id {found} in {} does not match; if you moved your \
                     data, make sure your configured node id matches",
                    config.node_id,
                    path.display()
                )));
            }
            let Some(found) = meta.cluster_id else {
                continue;
            };
            match &cluster_id {
                Some((want, from)) if *want != found => {
                    return Err(Error::InvalidConfig(format!(
                        "cluster.id {found} in {} does not match cluster.id {want} of {from}: \
                         every node and directory of a cluster has the one cluster id its \
                         storage was formatted with (sluice format --cluster-id)",
                        path.display()
                    )));
                }
                Some(_) => {}
                None => cluster_id = Some((found, path.display().to_string())),
            }
        }
        Ok(Storage { unformatted })
    }

    /// Errs when a directory is not formatted: a quorum of several voters needs every node
    /// formatted with the cluster's one id, never one its storage made up on first start.
    fn require_formatted(&self, subject: &str) -> Result<()> {
        let Some(dir) = self.unformatted.first() else {
            return Ok(());
        };
        Err(Error::InvalidConfig(format!(
            "{subject}: No meta.properties found in {} (have you run `sluice format` to format \
             the directory?); a quorum of several voters starts only on storage formatted on \
             every node with one cluster id: `sluice format --config server.properties \
             --cluster-id <id>` (`sluice random-uuid` makes an id)",
            dir.display()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::tests::{config, options, CLUSTER};
    use crate::format::{format, QuorumOption};
    use crate::log::log_manager::write_meta_properties;

    fn refusal(config: &Config) -> String {
        quorum_voters(config).expect_err("refused").to_string()
    }

    #[test]
    fn zero_config_and_one_voter_start_unformatted_as_a_quorum_of_this_node() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(quorum_voters(&config(dir.path(), &[])).expect("voters"), []);
        let one = config(
            dir.path(),
            &[("controller.quorum.voters", "1@127.0.0.1:19093")],
        );
        assert_eq!(
            quorum_voters(&one).expect("voters"),
            [(1, "127.0.0.1:19093".to_string())]
        );
        let bootstrap = config(
            dir.path(),
            &[("controller.quorum.bootstrap.servers", "localhost:19093")],
        );
        assert_eq!(quorum_voters(&bootstrap).expect("voters"), []);
    }

    #[test]
    fn several_static_voters_on_unformatted_storage_are_refused_naming_sluice_format() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut three = config(
            dir.path(),
            &[("controller.quorum.voters", "1@a:9093,2@b:9093,3@c:9093")],
        );
        three.unreplicated_quorum_for_tests = true;
        let message = refusal(&three);
        assert!(message.contains("controller.quorum.voters=1@a:9093,2@b:9093,3@c:9093"));
        assert!(
            message.contains("have you run `sluice format`"),
            "{message}"
        );
        format(&three, &options(QuorumOption::None)).expect("format");
        assert_eq!(quorum_voters(&three).expect("formatted").len(), 3);
    }

    #[test]
    fn a_standalone_formatted_node_is_its_own_quorum_at_its_controller_listener() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = config(
            dir.path(),
            &[("controller.quorum.bootstrap.servers", "localhost:19093")],
        );
        format(&config, &options(QuorumOption::Standalone)).expect("format");
        assert_eq!(
            quorum_voters(&config).expect("voters"),
            [(1, "127.0.0.1:19093".to_string())]
        );
    }

    #[test]
    fn observers_and_a_formatted_set_of_several_voters_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let bootstrap = [("controller.quorum.bootstrap.servers", "localhost:19093")];
        let config_n = config(dir.path(), &bootstrap);
        format(&config_n, &options(QuorumOption::NoInitialControllers)).expect("format");
        assert!(refusal(&config_n).contains("AddRaftVoter, KIP-853) is not served yet"));

        let dir = tempfile::tempdir().expect("temp dir");
        let mut config3 = config(dir.path(), &bootstrap);
        let set = "1@127.0.0.1:19093:JEXY6aqzQY-32P5TStzaFg,2@b:9093:MvDxzVmcRsaTz33bUuRU6A";
        let voters = crate::format::voters::parse_dynamic_voters(set).expect("set");
        format(&config3, &options(QuorumOption::InitialControllers(voters))).expect("format");
        let message = refusal(&config3);
        assert!(
            message.contains("a cluster of 2 nodes is not served yet"),
            "{message}"
        );
        assert!(
            message.contains("initial voters 1@127.0.0.1:19093,2@b:9093"),
            "{message}"
        );
        config3.unreplicated_quorum_for_tests = true;
        assert_eq!(quorum_voters(&config3).expect("test escape").len(), 2);
        // The formatted set does not go with controller.quorum.voters.
        let static_too = Config {
            controller_quorum_voters: config(
                dir.path(),
                &[("controller.quorum.voters", "1@127.0.0.1:19093")],
            )
            .controller_quorum_voters,
            ..config3
        };
        assert!(refusal(&static_too).contains("remove controller.quorum.voters"));
    }

    #[test]
    fn a_cluster_id_other_than_the_formatted_one_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("mkdir");
        let mut config = config(dir.path(), &[]);
        config.log_dirs = vec![data.clone()];
        write_meta_properties(&data, CLUSTER, 1, uuid::Uuid::new_v4()).expect("meta");
        config.cluster_id = Some("AAAAAAAAAAAAAAAAAAAAAA".to_string());
        let message = refusal(&config);
        assert!(
            message.contains(&format!("cluster.id {CLUSTER} in")),
            "{message}"
        );
        assert!(message.contains("CLUSTER_ID"), "{message}");
        config.cluster_id = Some(CLUSTER.to_string());
        assert!(quorum_voters(&config).is_ok());
    }
}
