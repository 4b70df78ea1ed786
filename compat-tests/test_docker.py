"""docker/compose.yaml with the image scripts/docker-image builds: produce and consume from the
host, restart the container, find the data still there, tear down with its volume.

Mandatory wherever `docker info` succeeds; skipped, with the reason shown, where no engine
runs (pytest.ini's -ra prints skip reasons)."""

import os
import shutil
import subprocess
import time
import uuid

import pytest

import cf
from harness import REPO_ROOT, free_port, sluice_binary
from workload import make_records

COMPOSE_FILE = REPO_ROOT / "docker" / "compose.yaml"


def docker_available():
    if shutil.which("docker") is None:
        return False, "no docker command"
    r = subprocess.run(["docker", "info"], capture_output=True, timeout=30)
    if r.returncode != 0:
        return False, "docker info failed: " + r.stderr.decode(errors="replace").strip()[:200]
    return True, ""


def compose_command():
    """`docker compose` (v2 plugin) where installed, else Debian's `docker-compose` (v1)."""
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail("docker runs but neither `docker compose` nor `docker-compose` is installed")


def wait_ready(http_port, timeout_s=60):
    import urllib.request

    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/health/ready", timeout=2) as r:
                if r.status == 200:
                    return
        except Exception as e:  # noqa: BLE001 - any failure means not ready yet
            last = e
        time.sleep(0.3)
    raise AssertionError(f"container not ready in {timeout_s}s: {last}")


def test_compose_single_node_keeps_data_across_container_restart():
    ok, why = docker_available()
    if not ok:
        pytest.skip(f"compose test skipped: no container engine ({why})")
    tag = f"sluice:test-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        [str(REPO_ROOT / "scripts" / "docker-image"), tag],
        check=True,
        env={**os.environ, "SLUICE_BIN": str(sluice_binary())},
        timeout=300,
    )
    compose = compose_command()
    project = f"sluicetest{uuid.uuid4().hex[:8]}"
    kafka_port, http_port = free_port(), free_port()
    env = {
        **os.environ,
        "SLUICE_IMAGE": tag,
        "SLUICE_KAFKA_PORT": str(kafka_port),
        "SLUICE_HTTP_PORT": str(http_port),
    }
    base = compose + ["-f", str(COMPOSE_FILE), "-p", project]

    def run(*args, timeout=120):
        return subprocess.run(base + list(args), check=True, env=env, timeout=timeout, capture_output=True)

    bootstrap = f"127.0.0.1:{kafka_port}"
    try:
        run("up", "-d")
        wait_ready(http_port)
        container = run("ps", "-q", "sluice").stdout.decode().strip()
        # The image's HEALTHCHECK (`sluice healthcheck`, every 5 s) reports healthy.
        deadline = time.monotonic() + 30
        while True:
            health = subprocess.run(
                ["docker", "inspect", "-f", "{{.State.Health.Status}}", container],
                capture_output=True, timeout=30,
            ).stdout.decode().strip()
            if health == "healthy":
                break
            assert time.monotonic() < deadline, f"container health is {health!r} after 30 s"
            time.sleep(0.5)
        topic = "compose-restart"
        cf.create_topic(bootstrap, topic, partitions=1)
        records = make_records(200, "compose")
        offsets = cf.produce(bootstrap, topic, records, "lz4", partition=0)
        assert [o for _, o in offsets] == list(range(200))

        run("restart")
        wait_ready(http_port)
        cf.wait_for_partitions(bootstrap, topic, 1)
        consumed, _ = cf.consume_all(bootstrap, topic, partitions=1, expected_total=200)
        assert consumed[0] == records
        logs = subprocess.run(base + ["logs", "--no-color"], env=env, capture_output=True, timeout=60)
        text = logs.stdout.decode(errors="replace") + logs.stderr.decode(errors="replace")
        assert "previous shutdown was clean" in text, text[-3000:]
        assert " ERROR " not in text, text[-3000:]
    finally:
        subprocess.run(base + ["down", "-v", "--timeout", "10"], env=env, capture_output=True, timeout=120)
        subprocess.run(["docker", "image", "rm", "-f", tag], capture_output=True, timeout=60)
