"""Starts and stops a real Sluice broker process for the compatibility tests.

The broker is target/release/sluice (or $SLUICE_BIN), started with Kafka's property names as
--override flags on a free 127.0.0.1 port and a temporary log.dirs. Its stderr goes to a file that
the tests scan: a panic or an ERROR line fails the test (DESIGN.md: ERROR means the broker itself
is broken; a client's bad input is WARN at most).
"""

import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# tracing-subscriber's fmt layer prints "<timestamp>  ERROR <target>: <message>".
ERROR_LINE = re.compile(r"(^|\s)ERROR(\s|:|$)")
PANIC_LINE = re.compile(r"panicked at|RUST_BACKTRACE|stack backtrace:")


def sluice_binary() -> Path:
    path = Path(os.environ.get("SLUICE_BIN", REPO_ROOT / "target" / "release" / "sluice"))
    if not path.is_file():
        raise RuntimeError(
            f"broker binary {path} not found: run `cargo build --release` (scripts/test does)"
        )
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """One Sluice process; can be stopped, killed and restarted on the same log.dirs and port."""

    def __init__(self, overrides=None, log_dir=None, port=None):
        self.binary = sluice_binary()
        self.port = port or free_port()
        # The operations HTTP listener (sluice.http.listener): /metrics and /health/*.
        self.http_port = free_port()
        self._own_dir = log_dir is None
        self.log_dir = Path(log_dir or tempfile.mkdtemp(prefix="sluice-compat-"))
        self.overrides = dict(overrides or {})
        self.proc = None
        self.starts = 0
        self.stderr_paths = []
        extra = os.environ.get("SLUICE_EXTRA_OVERRIDES", "").split()
        for kv in extra:
            k, _, v = kv.partition("=")
            self.overrides.setdefault(k, v)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self):
        props = {
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "log.dirs": str(self.log_dir / "data"),
            "node.id": "1",
            "sluice.http.listener": f"127.0.0.1:{self.http_port}",
        }
        props.update(self.overrides)
        cmd = [str(self.binary)]
        for k, v in props.items():
            cmd += ["--override", f"{k}={v}"]
        return cmd

    @property
    def data_dir(self) -> Path:
        return self.log_dir / "data"

    def start(self, timeout_s=30.0):
        assert self.proc is None, "broker already running"
        self.starts += 1
        stderr_path = self.log_dir / f"broker-{self.starts}.stderr"
        self.stderr_paths.append(stderr_path)
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "info")
        env["NO_COLOR"] = "1"
        env.setdefault("RUST_BACKTRACE", "1")
        self._stderr = open(stderr_path, "wb")
        self.proc = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=self._stderr,
            stderr=self._stderr,
            env=env,
            cwd=str(self.log_dir),
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"broker exited with {self.proc.returncode} during startup:\n{self.stderr_text()}"
                )
            # Ready: storage recovered, metadata loaded, Kafka listener bound (/health/ready).
            try:
                if self.http_get("/health/ready", timeout_s=0.5)[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"broker did not listen on {self.bootstrap} in {timeout_s}s:\n{self.stderr_text()}")

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def http_get(self, path, timeout_s=10.0):
        """(status, body) of a GET on the broker's HTTP listener."""
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(self.http + path, timeout=timeout_s) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def metrics(self) -> str:
        status, body = self.http_get("/metrics")
        assert status == 200, f"/metrics answered {status}: {body}"
        return body

    def stop(self, timeout_s=20.0):
        """SIGTERM, wait; SIGKILL if it does not exit. Returns the exit code."""
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
            self._close()
            raise RuntimeError(f"broker did not exit within {timeout_s}s of SIGTERM")
        self._close()
        return rc

    def kill(self):
        """SIGKILL: a crash. Nothing is flushed or closed by the broker."""
        if self.proc is None:
            return
        self.proc.kill()
        self.proc.wait()
        self._close()

    def restart(self):
        self.stop()
        return self.start()

    def _close(self):
        self.proc = None
        self._stderr.close()

    def stderr_text(self) -> str:
        out = []
        for p in self.stderr_paths:
            try:
                out.append(p.read_text(errors="replace"))
            except OSError:
                pass
        return "".join(out)

    def problems(self):
        """Lines of the broker's stderr that mean the broker is broken: panics and ERROR logs."""
        bad = []
        for line in self.stderr_text().splitlines():
            clean = ANSI_ESCAPE.sub("", line)
            if PANIC_LINE.search(clean) or ERROR_LINE.search(clean):
                bad.append(clean)
        return bad

    def cleanup(self):
        if self.proc is not None:
            try:
                self.stop()
            except RuntimeError:
                pass
        if self._own_dir and not os.environ.get("SLUICE_KEEP_LOGS"):
            shutil.rmtree(self.log_dir, ignore_errors=True)

    def partition_dir(self, topic, partition) -> Path:
        return self.data_dir / f"{topic}-{partition}"


# --- raw Kafka protocol helpers for the bad-input tests -------------------------------------


def encode_request(api_key, api_version, correlation_id, body=b"", client_id="compat", flexible=False):
    """A request frame. Header v1: api_key, api_version, correlation_id, nullable client_id;
    header v2 (flexible versions) adds an empty tagged-field section."""
    cid = client_id.encode()
    header = struct.pack(">hhih", api_key, api_version, correlation_id, len(cid)) + cid
    if flexible:
        header += b"\x00"  # no tagged fields
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def recv_response(sock):
    (size,) = struct.unpack(">i", recv_exact(sock, 4))
    return recv_exact(sock, size)


def _uvarint(buf, pos):
    shift = value = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def api_versions(bootstrap, api_version=0, correlation_id=7, timeout_s=10.0):
    """Sends ApiVersions at api_version and returns (correlation_id, error_code, n_apis).

    v3+ is a flexible version (header v2; body: compact client software name and version).
    The response header is always v0 (KIP-511). An UNSUPPORTED_VERSION answer is a v0 body."""
    flexible = api_version >= 3
    body = b""
    if flexible:
        name, ver = b"sluice-compat", b"1.0"
        body = bytes([len(name) + 1]) + name + bytes([len(ver) + 1]) + ver + b"\x00"
    host, port = bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout_s) as s:
        s.sendall(encode_request(18, api_version, correlation_id, body, flexible=flexible))
        resp = recv_response(s)
    corr, err = struct.unpack(">ih", resp[:6])
    if flexible and err == 0:
        n_plus_1, _ = _uvarint(resp, 6)
        return corr, err, n_plus_1 - 1
    (n,) = struct.unpack(">i", resp[6:10])
    return corr, err, n


def api_versions_v0(bootstrap, timeout_s=10.0, api_version=0, correlation_id=7):
    return api_versions(bootstrap, api_version, correlation_id, timeout_s)
