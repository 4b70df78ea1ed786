"""The Java client (kafka-clients 3.9.1, the reference implementation) with its defaults:
compat-tests/java/setup.sh fetches the jars and compiles SluiceCompat.java; each test runs one
of its scenarios against a fresh broker. The Java client negotiates every API version from our
ApiVersions, so a version we advertise but cannot serve fails these runs."""

import subprocess
import time
from pathlib import Path

import pytest

import cf
from test_idempotence import check_exactly_once_in_order
from workload import PARTITIONS, count, topic_name

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def java_classpath():
    out = subprocess.run([str(HERE / "java" / "setup.sh")], check=True, capture_output=True, text=True,
                         timeout=600)
    return out.stdout.strip().splitlines()[-1]


def run_java(classpath, *args, timeout=300):
    r = subprocess.run(["java", "-cp", classpath, "SluiceCompat", *args], capture_output=True, text=True,
                       timeout=timeout)
    print(r.stdout)
    assert r.returncode == 0, f"java {args[0]} failed ({r.returncode}):\n{r.stdout}\n{r.stderr[-6000:]}"
    # A client-side protocol mismatch shows up as a logged error even when calls still succeed.
    for bad in ("UnsupportedVersionException", "Unexpected error", "CorruptRecordException"):
        assert bad not in r.stderr, f"{bad} in the Java client's output:\n{r.stderr[-6000:]}"
    return r.stdout


def test_java_default_producer_and_group_consumer_with_commits_every_codec(broker, java_classpath):
    out = run_java(java_classpath, "produce-consume", broker.bootstrap, topic_name("java-pc"), str(count(20_000)))
    assert "exactly once" in out and "committed to the end" in out
    assert "deleted" in out.splitlines()[-1]


def test_java_admin_client(broker, java_classpath):
    out = run_java(java_classpath, "admin", broker.bootstrap, topic_name("java-admin"))
    assert "by topic id" in out.splitlines()[-1]


def test_java_admin_partitions_and_records(broker, java_classpath):
    out = run_java(java_classpath, "partitions", broker.bootstrap, topic_name("java-parts"))
    assert "log dirs described" in out


def test_java_seek_with_leader_epoch_is_validated(broker, java_classpath):
    out = run_java(java_classpath, "leader-epoch", broker.bootstrap, topic_name("java-epoch"))
    assert "truncation detected at 10" in out


def test_java_consumer_group_protocol_kip_848(broker, java_classpath):
    out = run_java(java_classpath, "group-consumer-protocol", broker.bootstrap, topic_name("java-848"))
    assert "described a Consumer group, Stable, 2 members" in out
    assert "commits at the end" in out.splitlines()[-1]


def test_java_admin_configs(broker, java_classpath):
    out = run_java(java_classpath, "configs", broker.bootstrap, topic_name("java-configs"))
    assert "followed by the topic" in out


def test_java_negotiates_a_usable_version_of_every_advertised_api(broker, java_classpath):
    out = run_java(java_classpath, "versions", broker.bootstrap)
    assert "negotiated" in out
    assert "INIT_PRODUCER_ID" in out


def test_java_default_producer_through_kill_9_has_no_duplicates(broker, java_classpath):
    """The Java producer's defaults (idempotence, acks=all, unbounded retries): the broker is
    killed (-9) and restarted twice while it sends; every record ends up in the log once, in
    send order per partition."""
    topic = topic_name("java-idem")
    cf.create_topic(broker.bootstrap, topic)
    n = count(200_000)
    proc = subprocess.Popen(["java", "-cp", java_classpath, "SluiceCompat", "produce-paced", broker.bootstrap,
                             topic, str(n)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "started", proc.stderr.read()
        for _ in range(2):
            time.sleep(1.0)
            broker.kill()
            time.sleep(0.3)
            broker.start()
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, f"java producer failed:\n{out}\n{err[-6000:]}"
    assert f"produced {n}" in out
    cf.wait_for_partitions(broker.bootstrap, topic, PARTITIONS)
    consumed, _ = cf.consume_all(broker.bootstrap, topic, expected_total=n)
    check_exactly_once_in_order(consumed, n, "java")
