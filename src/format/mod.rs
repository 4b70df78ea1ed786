//! `sluice format` and `sluice random-uuid`: Kafka's `kafka-storage.sh` (StorageTool and its
//! Formatter) over the server's own config loading; [`start`] is what the broker reads back.
//!
//! `format` writes `meta.properties` (node.id, directory.id, version=1, cluster.id) into every
//! `log.dirs` entry and `metadata.log.dir`, refusing formatted ones unless
//! `--ignore-formatted`, and with `--standalone` / `--initial-controllers` records KIP-853's
//! initial voter set in the metadata log dir ([`voters`]). A single node does not need it: the
//! broker formats an empty dir on its first start. A quorum of several voters must be
//! formatted, so that every node starts with the same cluster id.

pub mod start;
pub mod voters;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use uuid::Uuid;

use crate::config::{self, Config};
use crate::log::log_manager::{
    read_meta_properties, uuid_from_base64, uuid_to_base64, write_meta_properties, META_PROPERTIES,
};
use voters::{parse_dynamic_voters, write_initial_voters, DynamicVoter, InitialVoters};

/// Usage text of `sluice format --help`.
pub const FORMAT_USAGE: &str = "\
USAGE: sluice format --cluster-id ID [--config server.properties] [--override key=value]*
                     [--standalone | --initial-controllers id@host:port:dirid,... |
                      --no-initial-controllers] [--ignore-formatted] [--release-version 4.1]

Formats this node's log directories as kafka-storage.sh format does: meta.properties with the
cluster id in every log.dirs entry and metadata.log.dir.

  --config, -c FILE                  broker config file (optional, as for `sluice`)
  --override key=value               override one property (repeatable)
  --cluster-id, -t ID                the cluster id (22-character base64 UUID; see
                                     `sluice random-uuid`), the same on every node
  --standalone, -s                   a dynamic quorum (KIP-853) of this node alone
  --initial-controllers, -I VOTERS   a dynamic quorum of these voters, the same on every node
  --no-initial-controllers, -N       join a dynamic quorum later (AddRaftVoter; not served yet)
  --ignore-formatted, -g             skip formatted directories instead of failing
  --release-version, -r VERSION      only 4.1 (the Kafka release Sluice answers as)

The three quorum options need controller.quorum.bootstrap.servers, not
controller.quorum.voters. Exit 0 on success, 1 when formatting fails, 2 on a usage error.";

/// The `metadata.version` Sluice formats with: Kafka 4.1's, whose APIs it answers with.
pub const METADATA_VERSION: &str = "4.1-IV1";

/// `--release-version` values naming the release Sluice serves (Kafka's short form picks that
/// release's latest metadata.version).
const SERVED_RELEASE_VERSIONS: &[&str] = &["4.1", METADATA_VERSION];

/// How the dynamic quorum (KIP-853) is set up, if it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuorumOption {
    /// No quorum option: a static quorum (`controller.quorum.voters`) or a single node.
    None,
    /// `--standalone`: this node alone, at its controller listener.
    Standalone,
    /// `--initial-controllers`.
    InitialControllers(Vec<DynamicVoter>),
    /// `--no-initial-controllers`.
    NoInitialControllers,
}

/// What `sluice format` is asked to do, apart from the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatOptions {
    pub cluster_id: String,
    pub ignore_formatted: bool,
    pub release_version: Option<String>,
    pub quorum: QuorumOption,
}

/// A parsed `sluice format` command line: the arguments the config is loaded from (as the
/// server takes them: `[file] --override k=v ...`) and the options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatCommand {
    pub config_args: Vec<String>,
    pub options: FormatOptions,
}

/// A failed `sluice format`: a usage error (exit 2, as the server's) or a refusal (exit 1,
/// as kafka-storage.sh's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatError {
    Usage(String),
    Failed(String),
}

impl std::fmt::Display for FormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FormatError::Usage(m) | FormatError::Failed(m) => f.write_str(m),
        }
    }
}

fn failed(message: impl Into<String>) -> FormatError {
    FormatError::Failed(message.into())
}

/// `sluice format ...` / `sluice random-uuid`: what `main` calls with the arguments after the
/// command; prints as kafka-storage.sh does (results on stdout, the failure on stderr).
pub fn main(command: &str, args: Vec<String>) -> ExitCode {
    if command == "random-uuid" {
        if let Some(extra) = args.first() {
            eprintln!("sluice random-uuid: unrecognized argument '{extra}'");
            return ExitCode::from(2);
        }
        println!("{}", random_uuid());
        return ExitCode::SUCCESS;
    }
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{FORMAT_USAGE}");
        return ExitCode::SUCCESS;
    }
    let result = parse_format_args(args).and_then(|command| {
        let loaded = config::parse_args(command.config_args, &config::process_env())
            .map_err(|e| FormatError::Usage(e.to_string()))?;
        format(&loaded.config, &command.options)
    });
    match result {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sluice format: {e}");
            ExitCode::from(match e {
                FormatError::Usage(_) => 2,
                FormatError::Failed(_) => 1,
            })
        }
    }
}

/// A random cluster id as Kafka's `Uuid.randomUuid` makes one: never the reserved all-zero or
/// one values, never starting with `-` (it would read as a command-line flag).
pub fn random_uuid() -> String {
    loop {
        let id = Uuid::new_v4();
        let text = uuid_to_base64(id);
        if id.as_u128() > 1 && !text.starts_with('-') {
            return text;
        }
    }
}

/// Parses the arguments after `format`, with kafka-storage.sh's flag names (long and short,
/// `--flag value` or `--flag=value`) plus the server's `--override`.
pub fn parse_format_args(args: Vec<String>) -> Result<FormatCommand, FormatError> {
    let usage = |m: String| FormatError::Usage(m);
    let mut config_file = None;
    let mut overrides = Vec::new();
    let mut cluster_id = None;
    let mut ignore_formatted = false;
    let mut release_version = None;
    let mut quorum: Option<(&'static str, QuorumOption)> = None;
    let mut iter = args.into_iter();
    while let Some(arg) = iter.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_string(), Some(value.to_string()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| match inline.clone().or_else(|| iter.next()) {
            Some(v) => Ok(v),
            None => Err(usage(format!("argument {name}: expected one argument"))),
        };
        let chosen = match flag.as_str() {
            "--config" | "-c" => {
                config_file = Some(value("--config/-c")?);
                None
            }
            "--override" => {
                overrides.push(value("--override")?);
                None
            }
            "--cluster-id" | "-t" => {
                cluster_id = Some(value("--cluster-id/-t")?);
                None
            }
            "--ignore-formatted" | "-g" => {
                ignore_formatted = true;
                None
            }
            "--release-version" | "-r" => {
                release_version = Some(value("--release-version/-r")?);
                None
            }
            "--standalone" | "-s" => Some(("--standalone/-s", QuorumOption::Standalone)),
            "--no-initial-controllers" | "-N" => Some((
                "--no-initial-controllers/-N",
                QuorumOption::NoInitialControllers,
            )),
            "--initial-controllers" | "-I" => {
                let v = value("--initial-controllers/-I")?;
                let voters = parse_dynamic_voters(&v)
                    .map_err(|why| usage(format!("--initial-controllers={v}: {why}")))?;
                Some((
                    "--initial-controllers/-I",
                    QuorumOption::InitialControllers(voters),
                ))
            }
            "--feature" | "-f" => {
                return Err(usage(
                    "--feature is not served: Sluice has no feature levels to choose (it runs \
                     metadata.version 4.1-IV1 with kraft.version set by the quorum options)"
                        .into(),
                ))
            }
            "--add-scram" | "-S" => {
                return Err(usage(
                    "--add-scram is not served yet: SASL/SCRAM is not implemented".into(),
                ))
            }
            other => return Err(usage(format!("unrecognized argument '{other}'"))),
        };
        if let Some((name, option)) = chosen {
            // argparse4j's wording for Kafka's mutually exclusive group.
            if let Some((previous, _)) = &quorum {
                return Err(usage(format!(
                    "argument {name}: not allowed with argument {previous}"
                )));
            }
            quorum = Some((name, option));
        }
    }
    let cluster_id =
        cluster_id.ok_or_else(|| usage("argument --cluster-id/-t is required".into()))?;
    let mut config_args: Vec<String> = config_file.into_iter().collect();
    for kv in overrides {
        config_args.push("--override".into());
        config_args.push(kv);
    }
    Ok(FormatCommand {
        config_args,
        options: FormatOptions {
            cluster_id,
            ignore_formatted,
            release_version,
            quorum: quorum.map_or(QuorumOption::None, |(_, q)| q),
        },
    })
}

/// Checks a cluster id as Kafka's `Uuid.fromString` reads one: 16 bytes in URL-safe base64
/// without padding (22 characters), the form `sluice random-uuid` prints.
pub fn validate_cluster_id(cluster_id: &str) -> Result<(), String> {
    if uuid_from_base64(cluster_id).is_some() {
        return Ok(());
    }
    Err(format!(
        "Cluster ID string {cluster_id} does not appear to be a valid UUID: a cluster id is 16 \
         bytes in URL-safe base64 without padding, 22 characters (`sluice random-uuid` makes one)"
    ))
}

fn check_release_version(release_version: Option<&str>) -> Result<(), FormatError> {
    match release_version {
        None => Ok(()),
        Some(v) if SERVED_RELEASE_VERSIONS.contains(&v) => Ok(()),
        Some(v) => Err(failed(format!(
            "--release-version={v}: Sluice serves only Kafka 4.1's metadata.version \
             ({METADATA_VERSION}); use --release-version 4.1 or leave it out"
        ))),
    }
}

/// The directories Kafka's StorageTool formats: `log.dirs` and `metadata.log.dir`, sorted and
/// without repeats.
pub fn storage_dirs(config: &Config) -> Vec<PathBuf> {
    let mut dirs: BTreeSet<PathBuf> = config.log_dirs.iter().cloned().collect();
    dirs.insert(config.metadata_log_dir().to_path_buf());
    dirs.into_iter().collect()
}

/// The initial voter set the options ask for, checked against the config as Kafka's
/// StorageTool does: `None` for a static quorum or a single node.
fn initial_voters(
    config: &Config,
    quorum: &QuorumOption,
) -> Result<Option<InitialVoters>, FormatError> {
    let voters_set = !config.controller_quorum_voters.is_empty();
    let bootstrap_set = !config.controller_quorum_bootstrap_servers.is_empty();
    let flag = match quorum {
        QuorumOption::None if bootstrap_set && !voters_set && config.process_roles.controller => {
            return Err(failed(
                "Because controller.quorum.voters is not set on this controller, you must \
                 specify one of the following: --standalone, --initial-controllers, or \
                 --no-initial-controllers.",
            ))
        }
        QuorumOption::None => return Ok(None),
        // A static quorum has no initial voter set to skip: nothing to record.
        QuorumOption::NoInitialControllers if voters_set => return Ok(None),
        QuorumOption::NoInitialControllers => "--no-initial-controllers",
        QuorumOption::Standalone => "--standalone",
        QuorumOption::InitialControllers(_) => "--initial-controllers",
    };
    if voters_set {
        return Err(failed(
            "You cannot specify controller.quorum.voters and format the node with \
             --initial-controllers or --standalone. If you want to use dynamic quorum, please \
             remove controller.quorum.voters and specify controller.quorum.bootstrap.servers \
             instead.",
        ));
    }
    if !bootstrap_set {
        // Kafka's config requires one of the two keys; Sluice's zero config has neither and
        // runs a quorum of this node alone, which needs no voter set.
        return Err(failed(format!(
            "{flag} sets up KIP-853's dynamic quorum, which needs \
             controller.quorum.bootstrap.servers (this node's controller listener for \
             --standalone); it is not set"
        )));
    }
    match quorum {
        QuorumOption::Standalone => {
            Ok(Some(InitialVoters::Voters(vec![standalone_voter(config)?])))
        }
        QuorumOption::InitialControllers(voters) => Ok(Some(InitialVoters::Voters(voters.clone()))),
        _ => Ok(Some(InitialVoters::NoInitialControllers)),
    }
}

/// `--standalone`'s voter, as Kafka's `createStandaloneDynamicVoters`: this node at its first
/// controller listener as advertised, with a new directory id.
fn standalone_voter(config: &Config) -> Result<DynamicVoter, FormatError> {
    if !config.process_roles.controller {
        return Err(failed("You can only use --standalone on a controller."));
    }
    let listener = config
        .controller_listener_names
        .first()
        .and_then(|name| {
            let advertised = config.advertised_listeners.iter().find(|l| &l.name == name);
            advertised.or_else(|| config.listeners.iter().find(|l| &l.name == name))
        })
        .ok_or_else(|| {
            failed(
                "No controller listeners found: --standalone names this node at the first \
                 listener of controller.listener.names",
            )
        })?;
    if listener.port == 0 {
        return Err(failed(format!(
            "--standalone: controller listener {listener} has port 0; the voter set records a \
             fixed port"
        )));
    }
    // Sluice advertises a wildcard host as 127.0.0.1 (config::DEFAULT_ADVERTISED_HOST).
    let host = if listener.is_wildcard_host() {
        config::DEFAULT_ADVERTISED_HOST.to_string()
    } else {
        listener.host.clone()
    };
    Ok(DynamicVoter {
        node_id: config.node_id,
        host,
        port: listener.port,
        directory_id: Uuid::new_v4(),
    })
}

/// Kafka's Formatter directory types, as its messages name them.
fn directory_type(dir: &Path, config: &Config, voters: Option<&InitialVoters>) -> &'static str {
    if dir != config.metadata_log_dir() {
        return "data directory";
    }
    match voters {
        Some(InitialVoters::Voters(v)) if v.iter().any(|v| v.node_id == config.node_id) => {
            "dynamic metadata voter directory"
        }
        Some(InitialVoters::Voters(_)) => "dynamic metadata directory",
        _ => "metadata directory",
    }
}

/// Formats this node's storage as `kafka-storage.sh format` does; returns the lines to print.
pub fn format(config: &Config, options: &FormatOptions) -> Result<Vec<String>, FormatError> {
    validate_cluster_id(&options.cluster_id).map_err(failed)?;
    check_release_version(options.release_version.as_deref())?;
    let voters = initial_voters(config, &options.quorum)?;
    let dirs = storage_dirs(config);
    let mut empty = Vec::new();
    let mut formatted = Vec::new();
    for dir in &dirs {
        let meta = read_meta_properties(dir).map_err(|e| failed(e.to_string()))?;
        match meta {
            None => empty.push(dir),
            Some(meta) => {
                // Kafka's MetaPropertiesEnsemble.verify: --ignore-formatted never skips a
                // directory of another cluster or node.
                let path = dir.join(META_PROPERTIES);
                if let Some(found) = meta.cluster_id.filter(|c| *c != options.cluster_id) {
                    return Err(failed(format!(
                        "Invalid cluster.id in: {}. Expected {}, but read {found}",
                        path.display(),
                        options.cluster_id
                    )));
                }
                if let Some(found) = meta.node_id.filter(|n| *n != config.node_id) {
                    return Err(failed(format!(
                        "Stored node id {found} doesn't match previous node id {} in {}. If you \
                         moved your data, make sure your configured node id matches. If you \
                         intend to create a new node, you should remove all data in your data \
                         directories.",
                        config.node_id,
                        path.display()
                    )));
                }
                formatted.push(dir);
            }
        }
    }
    if let (Some(first), false) = (formatted.first(), options.ignore_formatted) {
        return Err(failed(format!(
            "Log directory {} is already formatted. Use --ignore-formatted to ignore this \
             directory and format the others.",
            first.display()
        )));
    }
    if empty.is_empty() {
        return Ok(vec![
            "All of the log directories are already formatted.".to_string()
        ]);
    }
    let mut lines = Vec::new();
    for dir in empty {
        lines.push(format!(
            "Formatting {} {} with metadata.version {METADATA_VERSION}.",
            directory_type(dir, config, voters.as_ref()),
            dir.display()
        ));
        format_dir(dir, config, options, voters.as_ref())?;
    }
    Ok(lines)
}

/// Writes one directory: the voter set first (metadata dir only), then `meta.properties`, so
/// that a crash in between leaves a directory that is still unformatted and can be formatted
/// again.
fn format_dir(
    dir: &Path,
    config: &Config,
    options: &FormatOptions,
    voters: Option<&InitialVoters>,
) -> Result<(), FormatError> {
    let io_failed = |e: &dyn std::fmt::Display| {
        failed(format!(
            "Error while writing meta.properties file {}: {e}",
            dir.display()
        ))
    };
    std::fs::create_dir_all(dir).map_err(|e| io_failed(&e))?;
    let mut directory_id = Uuid::new_v4();
    if dir == config.metadata_log_dir() {
        if let Some(voters) = voters {
            let listener = config
                .controller_listener_names
                .first()
                .map_or("CONTROLLER", String::as_str);
            write_initial_voters(dir, voters, listener).map_err(|e| io_failed(&e))?;
            // A voter's metadata dir carries the directory id the voter set names it by.
            if let InitialVoters::Voters(v) = voters {
                if let Some(this) = v.iter().find(|v| v.node_id == config.node_id) {
                    directory_id = this.directory_id;
                }
            }
        }
    }
    write_meta_properties(dir, &options.cluster_id, config.node_id, directory_id)
        .map_err(|e| io_failed(&e))
}

#[cfg(test)]
mod tests;
