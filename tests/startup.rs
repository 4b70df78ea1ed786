//! Black-box: the real `sluice` binary refuses a setting it cannot use (a port in use, an
//! address that is not local, a path that is a file, under a file, unwritable or locked) with a
//! non-zero exit within seconds and one `sluice: ` line naming the key, the value and the cause;
//! and `sluice format` (kafka-storage.sh format) prepares the storage a start then uses.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A refused start must end within this; a broker that half-started and hangs does not.
const EXIT_WITHIN: Duration = Duration::from_secs(5);
/// `nobody`: the unwritable-directory case runs the broker as this user when the test runs as
/// root, since root writes through permission bits.
const NOBODY: u32 = 65534;

/// A temporary directory any user can enter (tempfile makes 0700 directories).
fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod temp dir");
    dir
}

/// A start of the binary with the harness's flags (compat-tests/harness.py `command()`):
/// ephemeral ports on 127.0.0.1 and `work/data` as log.dirs, `overrides` replacing or adding.
struct Start<'a> {
    work: &'a Path,
    overrides: Vec<(String, String)>,
    uid: Option<u32>,
    env: Vec<(String, String)>,
}

impl<'a> Start<'a> {
    fn new(work: &'a Path) -> Self {
        let base = [
            ("listeners", "PLAINTEXT://127.0.0.1:0".to_string()),
            ("log.dirs", work.join("data").display().to_string()),
            ("node.id", "1".to_string()),
            ("sluice.http.listener", "127.0.0.1:0".to_string()),
        ];
        Start {
            work,
            overrides: base.map(|(k, v)| (k.to_string(), v)).to_vec(),
            uid: None,
            env: Vec::new(),
        }
    }

    fn set(mut self, key: &str, value: impl ToString) -> Self {
        let value = value.to_string();
        match self.overrides.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value,
            None => self.overrides.push((key.to_string(), value)),
        }
        self
    }

    fn without(mut self, key: &str) -> Self {
        self.overrides.retain(|(k, _)| k != key);
        self
    }

    fn spawn(&self, stderr_file: &Path) -> Child {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
        for (k, v) in &self.overrides {
            command.arg("--override").arg(format!("{k}={v}"));
        }
        let stderr = std::fs::File::create(stderr_file).expect("stderr file");
        command
            .current_dir(self.work)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        if let Some(uid) = self.uid {
            command.uid(uid).gid(uid);
        }
        command.spawn().expect("spawn sluice")
    }

    /// Runs the broker to its exit, which must come within [`EXIT_WITHIN`], and returns its
    /// failure line after checking the refusal: non-zero exit, no panic, one `sluice: ` line.
    fn refused(&self) -> String {
        let stderr_file = self.work.join(format!("stderr-{}", rand_suffix()));
        let mut child = self.spawn(&stderr_file);
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if started.elapsed() > EXIT_WITHIN {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "sluice still running after {EXIT_WITHIN:?} with {:?}:\n{}",
                    self.overrides,
                    std::fs::read_to_string(&stderr_file).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stderr = std::fs::read_to_string(&stderr_file).expect("stderr");
        assert!(
            status.code().is_some_and(|c| c != 0),
            "exit {status} for {:?}:\n{stderr}",
            self.overrides
        );
        assert!(!stderr.contains("panicked"), "panic:\n{stderr}");
        let failures: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("sluice: "))
            .collect();
        assert_eq!(failures.len(), 1, "one failure line expected:\n{stderr}");
        failures[0].to_string()
    }
}

/// A file name part unique within this test process.
fn rand_suffix() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
}

fn assert_names(line: &str, key: &str, value: &str, cause: &str) {
    let setting = format!("{key}={value}");
    assert!(line.contains(&setting), "{setting} in {line:?}");
    assert!(line.contains(cause), "{cause:?} in {line:?}");
}

/// A start with `key=value` that must be refused naming both and `cause`; its failure line.
fn refuses(work: &Path, key: &str, value: &str, cause: &str) -> String {
    let line = Start::new(work).set(key, value).refused();
    assert_names(&line, key, value, cause);
    line
}

/// A port held by this test for as long as the returned listener lives.
fn occupied_port() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    (listener, port)
}

/// A regular file in `dir`.
fn regular_file(dir: &Path) -> PathBuf {
    let file = dir.join("a-file");
    std::fs::write(&file, b"not a directory").expect("write file");
    file
}

#[test]
fn kafka_listener_on_a_port_in_use_is_refused_naming_listeners() {
    let work = workdir();
    let (_held, port) = occupied_port();
    let value = format!("PLAINTEXT://127.0.0.1:{port}");
    // The HTTP listener binds first: the failure after it must still end the process.
    let line = refuses(work.path(), "listeners", &value, "address already in use");
    assert!(line.starts_with("sluice: cannot bind listeners="), "{line}");
}

#[test]
fn a_tls_listener_is_refused_never_served_as_plaintext() {
    let work = workdir();
    let value = "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0";
    let cause = "listener SSL uses security protocol SSL, which is not served yet";
    refuses(work.path(), "listeners", value, cause);
}

#[test]
fn http_listener_on_a_port_in_use_is_refused_naming_sluice_http_listener() {
    let work = workdir();
    let (_held, port) = occupied_port();
    let value = format!("127.0.0.1:{port}");
    let cause = "address already in use";
    refuses(work.path(), "sluice.http.listener", &value, cause);
}

#[test]
fn listeners_on_an_address_that_is_not_local_are_refused() {
    let work = workdir();
    // 192.0.2.0/24 is TEST-NET-1 (RFC 5737): never an address of this machine.
    let cause = "cannot assign requested address";
    refuses(
        work.path(),
        "listeners",
        "PLAINTEXT://192.0.2.1:9092",
        cause,
    );
    refuses(work.path(), "sluice.http.listener", "192.0.2.1:9644", cause);
}

#[test]
fn log_dirs_that_is_a_regular_file_is_refused() {
    let work = workdir();
    let value = regular_file(work.path()).display().to_string();
    refuses(work.path(), "log.dirs", &value, "is not a directory");
}

#[test]
fn log_dirs_under_a_regular_file_cannot_be_created() {
    let work = workdir();
    let value = regular_file(work.path()).join("data").display().to_string();
    let line = refuses(work.path(), "log.dirs", &value, "cannot create directory");
    assert!(line.contains("not a directory (os error 20)"), "{line}");
}

#[test]
fn log_dir_is_named_when_it_is_the_setting_used() {
    let work = workdir();
    let value = regular_file(work.path()).join("data").display().to_string();
    let line = Start::new(work.path())
        .without("log.dirs")
        .set("log.dir", &value)
        .refused();
    assert_names(&line, "log.dir", &value, "cannot create directory");
    assert!(!line.contains("log.dirs"), "{line}");
}

#[test]
fn second_of_two_log_dirs_is_named_in_the_whole_setting() {
    let work = workdir();
    let good = work.path().join("data");
    let bad = regular_file(work.path());
    let value = format!("{},{}", good.display(), bad.display());
    let cause = format!("{} is not a directory", bad.display());
    refuses(work.path(), "log.dirs", &value, &cause);
}

#[test]
fn metadata_log_dir_that_is_a_regular_file_is_refused() {
    let work = workdir();
    let value = regular_file(work.path()).display().to_string();
    refuses(
        work.path(),
        "metadata.log.dir",
        &value,
        "is not a directory",
    );
}

/// True when this process writes where permission bits say it may not (root).
fn bypasses_permissions(dir: &Path) -> bool {
    let probe_dir = dir.join("probe");
    std::fs::create_dir(&probe_dir).expect("mkdir");
    std::fs::set_permissions(&probe_dir, std::fs::Permissions::from_mode(0o555)).expect("chmod");
    let wrote = std::fs::write(probe_dir.join("f"), b"").is_ok();
    std::fs::set_permissions(&probe_dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    wrote
}

#[test]
fn log_dirs_that_is_not_writable_is_refused() {
    let work = workdir();
    let read_only = work.path().join("read-only");
    std::fs::create_dir(&read_only).expect("mkdir");
    let mut start = Start::new(work.path()).set("log.dirs", read_only.display());
    if bypasses_permissions(work.path()) {
        // Root writes through 0555: run the broker as nobody on a directory root owns (0755).
        start.uid = Some(NOBODY);
    } else {
        std::fs::set_permissions(&read_only, std::fs::Permissions::from_mode(0o555))
            .expect("chmod");
    }
    let line = start.refused();
    assert_names(
        &line,
        "log.dirs",
        &read_only.display().to_string(),
        "permission denied",
    );
    assert!(line.contains("cannot write in"), "{line}");
}

/// Waits until `path` exists (the first broker wrote meta.properties, so it holds the lock).
fn wait_for(path: &Path, child: &mut Child, stderr: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !path.exists() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "first broker exited with {status}:\n{}",
                std::fs::read_to_string(stderr).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills the child when dropped, so a failed assertion does not leave a broker running.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn log_dirs_locked_by_a_running_broker_is_refused_after_the_listeners_are_bound() {
    let work = workdir();
    let first = Start::new(work.path());
    let first_stderr = work.path().join("first.stderr");
    let mut running = Running(first.spawn(&first_stderr));
    let data = work.path().join("data");
    wait_for(&data.join("meta.properties"), &mut running.0, &first_stderr);
    // The second broker binds its own ephemeral listeners and serves HTTP before it opens
    // storage: it must still exit, non-zero, when the lock is refused.
    let line = Start::new(work.path()).refused();
    assert_names(
        &line,
        "log.dirs",
        &data.display().to_string(),
        "locked by another broker process",
    );
    assert!(
        running.0.try_wait().expect("wait").is_none(),
        "the first broker keeps running"
    );
}

/// The output of one run of `sluice <args>` (format, random-uuid) in `work`.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run_sluice(work: &Path, args: &[String]) -> Ran {
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .current_dir(work)
        .env_remove("CLUSTER_ID")
        .stdin(Stdio::null())
        .output()
        .expect("run sluice");
    Ran {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `sluice random-uuid`'s id.
fn random_uuid(work: &Path) -> String {
    let ran = run_sluice(work, &["random-uuid".to_string()]);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let id = ran.stdout.trim().to_string();
    assert_eq!(id.len(), 22, "{id:?}");
    id
}

impl Start<'_> {
    /// `sluice format <flags>` with this start's settings as `--override`s, as an operator
    /// formats with the server's own config.
    fn format(&self, flags: &[&str]) -> Ran {
        let mut args = vec!["format".to_string()];
        for (k, v) in &self.overrides {
            args.push("--override".into());
            args.push(format!("{k}={v}"));
        }
        args.extend(flags.iter().map(|f| f.to_string()));
        run_sluice(self.work, &args)
    }

    /// Starts the broker and waits until it logs that it started; the running broker (killed
    /// when dropped) and its log so far.
    fn started(&self) -> (Running, String) {
        let stderr_file = self.work.join(format!("stderr-{}", rand_suffix()));
        let mut running = Running(self.spawn(&stderr_file));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let stderr = std::fs::read_to_string(&stderr_file).unwrap_or_default();
            if stderr.contains("sluice broker started") {
                return (running, stderr);
            }
            if let Ok(Some(status)) = running.0.try_wait() {
                panic!("sluice exited with {status}:\n{stderr}");
            }
            assert!(Instant::now() < deadline, "no start within 30 s:\n{stderr}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kafka 4's single-node layout with a controller listener on a fixed port and
    /// `controller.quorum.bootstrap.servers` naming it (KIP-853's dynamic quorum).
    fn with_bootstrap_servers(self, port: u16) -> Self {
        self.set(
            "listeners",
            format!("PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:{port}"),
        )
        .set("controller.listener.names", "CONTROLLER")
        .set(
            "controller.quorum.bootstrap.servers",
            format!("127.0.0.1:{port}"),
        )
    }
}

#[test]
fn format_then_start_uses_the_formatted_cluster_id() {
    let work = workdir();
    let data = work.path().join("data");
    let cluster_id = random_uuid(work.path());
    // The same property file format as the server's.
    let properties = work.path().join("server.properties");
    let text = format!("node.id=1\nlog.dirs={}\n", data.display());
    std::fs::write(&properties, text).expect("write server.properties");
    let ran = run_sluice(
        work.path(),
        &[
            "format".into(),
            "--config".into(),
            properties.display().to_string(),
            "--cluster-id".into(),
            cluster_id.clone(),
        ],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert_eq!(
        ran.stdout.trim(),
        format!(
            "Formatting metadata directory {} with metadata.version 4.1-IV1.",
            data.display()
        )
    );
    let meta = std::fs::read_to_string(data.join("meta.properties")).expect("meta.properties");
    assert!(
        meta.contains(&format!("cluster.id={cluster_id}\n")),
        "{meta}"
    );
    let (_running, stderr) = Start::new(work.path()).started();
    assert!(
        stderr.contains(&format!("cluster_id={cluster_id}")),
        "the formatted cluster id:\n{stderr}"
    );
}

#[test]
fn a_second_format_is_refused_unless_ignore_formatted_which_formats_only_new_dirs() {
    let work = workdir();
    let start = Start::new(work.path());
    let cluster_id = random_uuid(work.path());
    assert_eq!(start.format(&["-t", &cluster_id]).code, Some(0));
    let again = start.format(&["-t", &cluster_id]);
    assert_eq!(again.code, Some(1), "{}", again.stderr);
    let data = work.path().join("data");
    assert_eq!(
        again.stderr.trim(),
        format!(
            "sluice format: Log directory {} is already formatted. Use --ignore-formatted to \
             ignore this directory and format the others.",
            data.display()
        )
    );
    let ignored = start.format(&["-t", &cluster_id, "--ignore-formatted"]);
    assert_eq!(ignored.code, Some(0), "{}", ignored.stderr);
    assert_eq!(
        ignored.stdout.trim(),
        "All of the log directories are already formatted."
    );
    let more = work.path().join("more");
    let two =
        Start::new(work.path()).set("log.dirs", format!("{},{}", data.display(), more.display()));
    let added = two.format(&["-t", &cluster_id, "-g"]);
    assert_eq!(added.code, Some(0), "{}", added.stderr);
    assert_eq!(
        added.stdout.trim(),
        format!(
            "Formatting data directory {} with metadata.version 4.1-IV1.",
            more.display()
        )
    );
    // Not even --ignore-formatted formats over another cluster's directory.
    let other = random_uuid(work.path());
    let refused = two.format(&["-t", &other, "-g"]);
    assert_eq!(refused.code, Some(1));
    assert!(
        refused.stderr.contains("Invalid cluster.id in: "),
        "{}",
        refused.stderr
    );
    // Nor is a cluster id that is not a base64 UUID accepted.
    let bad = Start::new(work.path()).set("log.dirs", work.path().join("x").display());
    let refused = bad.format(&["-t", "my-cluster"]);
    assert_eq!(refused.code, Some(1));
    assert!(
        refused
            .stderr
            .contains("Cluster ID string my-cluster does not appear to be a valid UUID"),
        "{}",
        refused.stderr
    );
}

#[test]
fn a_cluster_id_other_than_the_formatted_one_is_refused() {
    let work = workdir();
    let start = Start::new(work.path());
    let formatted = random_uuid(work.path());
    assert_eq!(start.format(&["--cluster-id", &formatted]).code, Some(0));
    let mut other = Start::new(work.path());
    let configured = random_uuid(work.path());
    other.env.push(("CLUSTER_ID".into(), configured.clone()));
    let line = other.refused();
    assert!(
        line.contains(&format!("cluster.id {formatted} in"))
            && line.contains(&format!("does not match cluster.id {configured}")),
        "{line}"
    );
}

#[test]
fn a_standalone_formatted_node_with_bootstrap_servers_starts_as_a_quorum_of_itself() {
    let work = workdir();
    let (held, port) = occupied_port();
    drop(held);
    let start = Start::new(work.path()).with_bootstrap_servers(port);
    let cluster_id = random_uuid(work.path());
    // KIP-853: bootstrap servers without a quorum option is Kafka's refusal.
    let ran = start.format(&["-t", &cluster_id]);
    assert_eq!(ran.code, Some(1));
    assert!(ran
        .stderr
        .contains("you must specify one of the following: --standalone"));
    let ran = start.format(&["-t", &cluster_id, "--standalone"]);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(
        ran.stdout
            .starts_with("Formatting dynamic metadata voter directory"),
        "{}",
        ran.stdout
    );
    let (_running, stderr) = start.started();
    assert!(
        stderr.contains("metadata quorum voters from the formatted initial voter set")
            && stderr.contains(&format!("voters=1@127.0.0.1:{port}")),
        "the quorum is this node alone:\n{stderr}"
    );
}

#[test]
fn a_node_formatted_to_join_the_quorum_later_is_refused_until_add_raft_voter_is_served() {
    let work = workdir();
    let (held, port) = occupied_port();
    drop(held);
    let start = Start::new(work.path()).with_bootstrap_servers(port);
    let cluster_id = random_uuid(work.path());
    let ran = start.format(&["-t", &cluster_id, "--no-initial-controllers"]);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let line = start.refused();
    assert!(
        line.contains(
            "adding a controller to the quorum (AddRaftVoter, KIP-853) is not served yet"
        ),
        "{line}"
    );
    // --standalone and controller.quorum.voters do not go together (Kafka's message).
    let voters = Start::new(work.path()).set("controller.quorum.voters", "1@127.0.0.1:9093");
    let ran = voters.format(&["-t", &cluster_id, "-s", "-g"]);
    assert_eq!(ran.code, Some(1));
    assert!(ran
        .stderr
        .contains("You cannot specify controller.quorum.voters"));
}

/// Several voters (only the cluster's own tests may start them, in process) on storage no
/// `sluice format` prepared stop the start before anything is written there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_voters_on_unformatted_storage_are_refused_naming_sluice_format() {
    let work = workdir();
    let data = work.path().join("data");
    let voters = "1@127.0.0.1:19093,2@127.0.0.1:19094,3@127.0.0.1:19095";
    let mut config = sluice::config::Config::for_test_with(
        &data,
        &[
            (
                "listeners",
                "PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
            ),
            ("controller.listener.names", "CONTROLLER"),
            ("controller.quorum.voters", voters),
        ],
    );
    config.unreplicated_quorum_for_tests = true;
    let Err(error) = sluice::server::Server::start(config).await else {
        panic!("several voters on unformatted storage started");
    };
    let error = error.to_string();
    assert!(
        error.contains(&format!("controller.quorum.voters={voters}"))
            && error.contains("have you run `sluice format` to format the directory?"),
        "{error}"
    );
    assert!(
        !data.join("meta.properties").exists(),
        "nothing formatted itself"
    );
}
