//! Black-box: the real `sluice` binary refuses a setting it cannot use (a port in use, an
//! address that is not local, a path that is a file, under a file, unwritable or locked) with a
//! non-zero exit within seconds and one `sluice: ` line naming the key, the value and the cause.

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
