//! Unit tests of `sluice format`: command line, cluster id, quorum options against the config,
//! and the directories it writes or refuses, with kafka-storage.sh's messages.

use super::*;

pub(super) const CLUSTER: &str = "MkU3OEVBNTcwNTJENDM2Qg";

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn usage_error(list: &[&str]) -> String {
    match parse_format_args(args(list)) {
        Err(FormatError::Usage(m)) => m,
        other => panic!("usage error expected for {list:?}, got {other:?}"),
    }
}

/// A node config with a controller listener, shared with `start.rs`'s tests.
pub(super) fn config(dir: &Path, extra: &[(&str, &str)]) -> Config {
    let mut overrides = vec![
        ("listeners", "PLAINTEXT://127.0.0.1:0,CONTROLLER://:19093"),
        ("controller.listener.names", "CONTROLLER"),
    ];
    overrides.extend_from_slice(extra);
    Config::for_test_with(dir, &overrides)
}

pub(super) fn options(quorum: QuorumOption) -> FormatOptions {
    FormatOptions {
        cluster_id: CLUSTER.to_string(),
        ignore_formatted: false,
        release_version: None,
        quorum,
    }
}

fn refusal(config: &Config, options: &FormatOptions) -> String {
    match format(config, options) {
        Err(FormatError::Failed(m)) => m,
        other => panic!("refusal expected, got {other:?}"),
    }
}

const BOOTSTRAP: (&str, &str) = ("controller.quorum.bootstrap.servers", "localhost:19093");

#[test]
fn kafka_storage_flags_parse_long_short_and_inline_with_overrides_for_the_config() {
    let command = parse_format_args(args(&[
        "-c",
        "server.properties",
        "--cluster-id=abc",
        "-g",
        "--override",
        "node.id=3",
        "--release-version",
        "4.1",
        "-s",
    ]))
    .expect("parses");
    assert_eq!(
        command.config_args,
        args(&["server.properties", "--override", "node.id=3"])
    );
    assert_eq!(
        command.options,
        FormatOptions {
            cluster_id: "abc".into(),
            ignore_formatted: true,
            release_version: Some("4.1".into()),
            quorum: QuorumOption::Standalone,
        }
    );
    let command = parse_format_args(args(&["-t", "abc", "-N"])).expect("parses");
    assert!(
        command.config_args.is_empty(),
        "the config file is optional"
    );
    assert_eq!(command.options.quorum, QuorumOption::NoInitialControllers);
}

#[test]
fn missing_cluster_id_exclusive_quorum_options_and_unknown_flags_are_usage_errors() {
    assert_eq!(
        usage_error(&["--standalone"]),
        "argument --cluster-id/-t is required"
    );
    assert_eq!(
        usage_error(&["-t", "x", "--standalone", "-N"]),
        "argument --no-initial-controllers/-N: not allowed with argument --standalone/-s"
    );
    assert_eq!(
        usage_error(&["-t", "x", "--cluster-id"]),
        "argument --cluster-id/-t: expected one argument"
    );
    assert_eq!(
        usage_error(&["-t", "x", "--bogus"]),
        "unrecognized argument '--bogus'"
    );
    assert!(usage_error(&["-t", "x", "-I", "1@h:9093"])
        .starts_with("--initial-controllers=1@h:9093: No colon following port"));
    assert!(
        usage_error(&["-t", "x", "--add-scram", "SCRAM-SHA-256=[name=a]"]).contains("not served")
    );
}

#[test]
fn cluster_ids_must_be_base64_uuids_and_random_uuid_makes_one() {
    assert!(validate_cluster_id(CLUSTER).is_ok());
    let message = validate_cluster_id("my-cluster").unwrap_err();
    assert!(
        message.starts_with("Cluster ID string my-cluster does not appear to be a valid UUID"),
        "{message}"
    );
    assert!(validate_cluster_id("MkU3OEVBNTcwNTJENDM2Q!").is_err());
    for _ in 0..100 {
        let id = random_uuid();
        assert!(validate_cluster_id(&id).is_ok(), "{id}");
        assert!(!id.starts_with('-'), "{id}");
    }
}

#[test]
fn format_writes_meta_properties_into_every_log_dir_and_the_metadata_dir() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (a, b, meta) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("meta"),
    );
    let dirs = format!("{},{}", a.display(), b.display());
    let mut config = config(
        dir.path(),
        &[("metadata.log.dir", &meta.display().to_string())],
    );
    config.log_dirs = vec![a.clone(), b.clone()];
    let lines = format(&config, &options(QuorumOption::None)).expect("formats");
    assert_eq!(lines.len(), 3, "{lines:?} for {dirs}");
    assert!(lines.contains(&format!(
        "Formatting metadata directory {} with metadata.version 4.1-IV1.",
        meta.display()
    )));
    assert!(lines.contains(&format!(
        "Formatting data directory {} with metadata.version 4.1-IV1.",
        a.display()
    )));
    let mut directory_ids = BTreeSet::new();
    for d in [&a, &b, &meta] {
        let text = std::fs::read_to_string(d.join(META_PROPERTIES)).expect("meta.properties");
        assert!(text.contains(&format!("cluster.id={CLUSTER}\n")), "{text}");
        assert!(
            text.contains("node.id=1\n") && text.contains("version=1\n"),
            "{text}"
        );
        let id = text
            .lines()
            .find_map(|l| l.strip_prefix("directory.id="))
            .expect("directory.id");
        directory_ids.insert(id.to_string());
    }
    assert_eq!(directory_ids.len(), 3, "each directory has its own id");
    assert!(
        !voters::initial_voters_path(&meta).exists(),
        "a static quorum records no voters"
    );
}

#[test]
fn a_formatted_dir_is_refused_unless_ignore_formatted_and_never_for_another_cluster() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let mut config = config(dir.path(), &[]);
    config.log_dirs = vec![a.clone()];
    format(&config, &options(QuorumOption::None)).expect("first format");
    assert_eq!(
        refusal(&config, &options(QuorumOption::None)),
        format!(
            "Log directory {} is already formatted. Use --ignore-formatted to ignore this \
             directory and format the others.",
            a.display()
        )
    );
    let ignore = FormatOptions {
        ignore_formatted: true,
        ..options(QuorumOption::None)
    };
    assert_eq!(
        format(&config, &ignore).expect("nothing to do"),
        ["All of the log directories are already formatted."]
    );
    config.log_dirs = vec![a.clone(), b.clone()];
    let lines = format(&config, &ignore).expect("formats the new dir");
    assert_eq!(
        lines,
        [format!(
            "Formatting data directory {} with metadata.version 4.1-IV1.",
            b.display()
        )]
    );
    let other = FormatOptions {
        cluster_id: "AAAAAAAAAAAAAAAAAAAAAA".into(),
        ..ignore.clone()
    };
    assert!(refusal(&config, &other).starts_with("Invalid cluster.id in: "));
    let mut node2 = config.clone();
    node2.node_id = 2;
    assert!(
        refusal(&node2, &ignore).starts_with("Stored node id 1 doesn't match previous node id 2")
    );
}

#[test]
fn quorum_options_need_bootstrap_servers_and_not_static_voters() {
    let dir = tempfile::tempdir().expect("temp dir");
    let voters = config(
        dir.path(),
        &[("controller.quorum.voters", "1@localhost:19093")],
    );
    assert!(refusal(&voters, &options(QuorumOption::Standalone))
        .starts_with("You cannot specify controller.quorum.voters and format the node"));
    // --no-initial-controllers has nothing to skip in a static quorum.
    assert!(format(&voters, &options(QuorumOption::NoInitialControllers)).is_ok());

    let dir = tempfile::tempdir().expect("temp dir");
    let bootstrap = config(dir.path(), &[BOOTSTRAP]);
    assert_eq!(
        refusal(&bootstrap, &options(QuorumOption::None)),
        "Because controller.quorum.voters is not set on this controller, you must specify one \
         of the following: --standalone, --initial-controllers, or --no-initial-controllers."
    );
    let zero_config = config(dir.path(), &[]);
    assert!(refusal(&zero_config, &options(QuorumOption::Standalone))
        .contains("needs controller.quorum.bootstrap.servers"));
}

#[test]
fn standalone_records_this_node_at_its_controller_listener_with_the_dirs_directory_id() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config(dir.path(), &[BOOTSTRAP]);
    let lines = format(&config, &options(QuorumOption::Standalone)).expect("formats");
    assert_eq!(
        lines,
        [format!(
            "Formatting dynamic metadata voter directory {} with metadata.version 4.1-IV1.",
            dir.path().display()
        )]
    );
    let Some(InitialVoters::Voters(voters)) =
        voters::read_initial_voters(dir.path()).expect("readable")
    else {
        panic!("a voter set");
    };
    assert_eq!(voters.len(), 1);
    assert_eq!(
        (voters[0].node_id, voters[0].address().as_str()),
        (1, "127.0.0.1:19093")
    );
    let text = std::fs::read_to_string(dir.path().join(META_PROPERTIES)).expect("meta");
    let directory_id = format!("directory.id={}\n", uuid_to_base64(voters[0].directory_id));
    assert!(text.contains(&directory_id), "{text}");
}

#[test]
fn initial_controllers_give_this_voter_its_listed_directory_id() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config(dir.path(), &[BOOTSTRAP]);
    let set = "1@127.0.0.1:19093:JEXY6aqzQY-32P5TStzaFg,2@b:9093:MvDxzVmcRsaTz33bUuRU6A";
    let voters = voters::parse_dynamic_voters(set).expect("set");
    format(&config, &options(QuorumOption::InitialControllers(voters))).expect("formats");
    let text = std::fs::read_to_string(dir.path().join(META_PROPERTIES)).expect("meta");
    assert!(
        text.contains("directory.id=JEXY6aqzQY-32P5TStzaFg\n"),
        "{text}"
    );
}

#[test]
fn only_the_release_sluice_serves_is_accepted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config(dir.path(), &[]);
    let old = FormatOptions {
        release_version: Some("3.9".into()),
        ..options(QuorumOption::None)
    };
    assert!(refusal(&config, &old).starts_with("--release-version=3.9: Sluice serves only"));
    let served = FormatOptions {
        release_version: Some("4.1".into()),
        ..options(QuorumOption::None)
    };
    assert!(format(&config, &served).is_ok());
}
