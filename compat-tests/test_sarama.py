"""Sarama 1.22 (Debian's golang-github-shopify-sarama-dev, built offline in GOPATH mode): a client
of the era that sends JoinGroup v1, which Kafka 4.0 dropped and 4.0.1/4.1 restored (KAFKA-19444).
compat-tests/sarama/main.go is the program; the broker's request counters
(sluice_server_requests_total{api, version}) prove which versions were served."""

import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import TopicPartition

import cf
from test_ops import parse, value
from workload import count, topic_name

HERE = Path(__file__).resolve().parent
SRC = HERE / "sarama" / "main.go"
BUILD_DIR = HERE / "sarama" / ".build"
DEBIAN_GOPATH = Path("/usr/share/gocode")
SARAMA_SRC = DEBIAN_GOPATH / "src" / "github.com" / "Shopify" / "sarama"
PARTITIONS = 4


def go_env(gopath):
    env = dict(os.environ)
    # No module proxy is reachable: GOPATH mode over Debian's packaged sources only.
    env.update(GO111MODULE="off", GOPATH=f"{gopath}:{DEBIAN_GOPATH}", GOPROXY="off", GOFLAGS="",
               GOCACHE=str(BUILD_DIR / "cache"))
    return env


@pytest.fixture(scope="session")
def sarama_bin():
    """The program, built once per source (and Go, and Sarama) version."""
    missing = [what for what, ok in (("go (golang-go)", shutil.which("go")),
                                     (f"Sarama ({SARAMA_SRC})", SARAMA_SRC.is_dir())) if not ok]
    if missing:
        msg = f"{' and '.join(missing)} not installed: apt-get install golang-go golang-github-shopify-sarama-dev"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{msg} (.ci/run installs them)", pytrace=False)
        pytest.skip(msg)
    go_version = subprocess.run(["go", "version"], capture_output=True, text=True, check=True).stdout
    # Debian's package version names the Sarama release (its sources carry none in GOPATH mode).
    sarama_version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "golang-github-shopify-sarama-dev"],
                                    capture_output=True, text=True).stdout if shutil.which("dpkg-query") else ""
    digest = hashlib.sha256(f"{go_version}\n{sarama_version}\n".encode() + SRC.read_bytes()).hexdigest()[:16]
    binary = BUILD_DIR / f"sarama-compat-{digest}"
    if not binary.is_file():
        BUILD_DIR.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=BUILD_DIR) as gopath:
            tmp = Path(gopath) / "sarama-compat"
            r = subprocess.run(["go", "build", "-o", str(tmp), str(SRC)], cwd=SRC.parent, env=go_env(gopath),
                               capture_output=True, text=True, timeout=600)
            assert r.returncode == 0, f"go build failed:\n{r.stderr[-6000:]}"
            tmp.rename(binary)
    return binary


def run(binary, *args, timeout=120):
    r = subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"sarama-compat {args[0]} failed ({r.returncode}):\n{r.stdout}\n{r.stderr[-6000:]}"
    return r.stdout


class Member:
    """One `member` process: its printed events, read by a thread as they come."""

    def __init__(self, binary, bootstrap, group, topic, name):
        self.name = name
        self.lines = []
        self.cond = threading.Condition()
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([str(binary), "member", bootstrap, group, topic], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()

    def records(self):
        """[(partition, offset, value)] in the order consumed."""
        with self.cond:
            return [(int(p), int(o), v) for _, p, o, _k, v, _seq in
                    (line.split(" ") for line in self.lines if line.startswith("record "))]

    def assignment(self):
        """The partitions of the latest generation this member joined (None before any)."""
        with self.cond:
            last = [line for line in self.lines if line.startswith("assigned ")]
        if not last:
            return None
        parts = last[-1].split("partitions=", 1)[1]
        return sorted(int(tp.rsplit("/", 1)[1]) for tp in parts.split(",") if tp)

    def errors(self):
        with self.cond:
            return [line for line in self.lines if line.startswith("error ")]

    def output(self):
        self.stderr.seek(0)
        with self.cond:
            return "\n".join(self.lines[-60:]) + "\n--- stderr ---\n" + self.stderr.read().decode(errors="replace")[-4000:]

    def leave(self, timeout_s=60):
        """Closes stdin: the member cancels its session (final commit) and sends LeaveGroup."""
        self.proc.stdin.close()
        rc = self.proc.wait(timeout=timeout_s)
        self.reader.join(timeout=5)
        assert rc == 0 and self.lines[-1:] == ["left"], f"{self.name} did not leave cleanly ({rc}):\n{self.output()}"

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def wait_until(what, predicate, members, timeout_s=90):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}:\n" + "\n".join(f"== {m.name}\n{m.output()}" for m in members),
                pytrace=False)


def requests(broker, api):
    """{version: served requests} of one API."""
    samples = parse(broker.metrics()).get("sluice_server_requests_total", {})
    out = {}
    for labels, v in samples.items():
        labels = dict(labels)
        if labels.get("api") == api and v:
            out[int(labels["version"])] = out.get(int(labels["version"]), 0) + v
    return out


def test_sarama_consumer_group_joins_with_v1_shares_partitions_and_hands_over_at_commits(sarama_bin, broker):
    """Two Sarama members (JoinGroup v1) split 4 partitions and read every record once with
    commits; when one leaves (LeaveGroup v0) the other takes all 4 and reads new records from
    the committed offsets, with nothing read twice."""
    topic, group = topic_name("sarama"), topic_name("sarama-group")
    cf.create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    a = Member(sarama_bin, broker.bootstrap, group, topic, "a")
    b = Member(sarama_bin, broker.bootstrap, group, topic, "b")
    members = [a, b]
    try:
        # Records go in once both share the group, so no record is read before a rebalance.
        wait_until("both members assigned two partitions each",
                   lambda: a.assignment() and b.assignment()
                   and sorted(a.assignment() + b.assignment()) == list(range(PARTITIONS)), members)
        n = count(1000)
        assert f"produced {n} over {PARTITIONS} partitions" in run(sarama_bin, "produce", broker.bootstrap, topic, "0", str(n))
        wait_until(f"{n} records consumed", lambda: len(a.records()) + len(b.records()) >= n, members)
        # Each consumed only its own partitions.
        for m in members:
            assert {p for p, _, _ in m.records()} <= set(m.assignment()), m.output()
        assert a.records() and b.records(), "one member consumed nothing"

        a.leave()
        wait_until("b assigned every partition", lambda: b.assignment() == list(range(PARTITIONS)), members)
        more = count(300)
        run(sarama_bin, "produce", broker.bootstrap, topic, str(n), str(more))
        wait_until(f"{n + more} records consumed",
                   lambda: len(a.records()) + len(b.records()) >= n + more, members)
        # A moment for a re-delivery to show up, were there one.
        time.sleep(1.0)
        b.leave()

        consumed = [v for m in members for _, _, v in m.records()]
        assert len(consumed) == n + more, f"{len(consumed) - len(set(consumed))} records read twice"
        assert sorted(consumed) == sorted(f"v-{i}" for i in range(n + more))
        for m in members:
            offsets = {}
            for p, o, _ in m.records():
                assert o > offsets.get(p, -1), f"{m.name}: partition {p} went back to offset {o}"
                offsets[p] = o
            assert not m.errors(), m.output()
    finally:
        for m in members:
            m.kill()

    join = requests(broker, "JoinGroup")
    assert join.get(1, 0) >= 3, f"JoinGroup by version: {join}"  # a, b, then b alone at least
    assert set(join) == {1}, f"Sarama at V2_1_0_0 sends JoinGroup v1 only: {join}"
    # The rest of the group protocol at the versions Sarama 1.22 picks for V2_1_0_0.
    for api, version in (("SyncGroup", 0), ("Heartbeat", 0), ("LeaveGroup", 0), ("OffsetFetch", 1),
                         ("OffsetCommit", 2), ("FindCoordinator", 0), ("Fetch", 4), ("Produce", 3)):
        served = requests(broker, api)
        assert served.get(version), f"{api} v{version} not served: {served}"

    # The group's committed offsets are the log end offsets: nothing left unread or uncommitted.
    c = cf.consumer(broker.bootstrap, **{"group.id": group})
    try:
        committed = c.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=10)
        ends = [c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(PARTITIONS)]
    finally:
        c.close()
    assert [tp.offset for tp in committed] == ends


def test_sarama_join_group_v0_by_hand(sarama_bin, broker):
    """JoinGroup v0 (no rebalance timeout) through Sarama's own encoder and decoder, then the
    rest of a generation: SyncGroup v0, Heartbeat v0, OffsetCommit v2, OffsetFetch v1,
    DescribeGroups v0. A second v0 member then joins while the first only heartbeats: the join
    completes after the first one's session timeout (6 s), v0's rebalance timeout, without it."""
    topic, group = topic_name("sarama-v0"), topic_name("sarama-v0-group")
    cf.create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    out = run(sarama_bin, "join-v0", broker.bootstrap, group, topic)
    assert "joined v0 generation=1 " in out
    assert f"synced {PARTITIONS} partitions" in out
    assert f"committed and fetched {PARTITIONS} offsets" in out
    assert "described Stable protocol=range members=1" in out
    second = next(line for line in out.splitlines() if line.startswith("second member joined"))
    assert second.startswith("second member joined v0 generation=2 members=1 after "), out
    waited = float(second.rsplit(" ", 1)[1].rstrip("s"))
    assert 5.0 <= waited <= 12.0, f"the join waited {waited}s, not the first member's 6 s session timeout"
    # Kept alive by heartbeats through the rebalance, then dropped from the group it did not rejoin.
    hb = next(line for line in out.splitlines() if line.startswith("first member's heartbeats: "))
    # NONE while stable, REBALANCE_IN_PROGRESS (27) through the rebalance, then UNKNOWN_MEMBER_ID (25).
    assert hb.split(": ", 1)[1] == "0,27,25", out
    assert out.splitlines()[-1] == "left"
    assert requests(broker, "JoinGroup") == {0: 2}
