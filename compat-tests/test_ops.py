"""Operations with real clients: /metrics scraped while confluent-kafka produces and consumes
(format checked with prometheus_client's parser plus promtool's naming lint rules), the health
endpoints and `sluice healthcheck`, the Grafana dashboard's metric names, and SIGTERM under
load."""

import json
import re
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

from confluent_kafka import Producer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

import cf
from harness import REPO_ROOT, encode_request, recv_response, sluice_binary
from workload import PARTITIONS, count, make_records, topic_name

DASHBOARD = REPO_ROOT / "docker" / "grafana-dashboard.json"


def parse(scrape):
    """{sample name: {frozenset(labels): value}} after checking the exposition and promtool's
    lint rules (HELP on every family, `_total` exactly on counters, base units)."""
    samples = {}
    families = list(text_string_to_metric_families(scrape))
    assert families, "empty scrape"
    for family in families:
        assert family.documentation, f"{family.name} has no HELP"
        assert family.name.startswith("sluice_"), family.name
        assert not re.search(r"_(milliseconds|ms|microseconds|kilobytes|megabytes)\b", family.name), family.name
        for s in family.samples:
            if family.type == "counter":
                assert s.name.endswith(("_total", "_created")), f"counter sample {s.name} lacks _total"
            else:
                assert not s.name.endswith("_total"), f"{family.type} {s.name} ends in _total"
            samples.setdefault(s.name, {})[frozenset(s.labels.items())] = s.value
    # Each family is declared once (TYPE lines).
    types = re.findall(r"^# TYPE (\S+) ", scrape, re.M)
    assert len(types) == len(set(types)), "duplicate TYPE lines"
    return samples


def value(samples, name, **labels):
    want = set(labels.items())
    return sum(v for k, v in samples.get(name, {}).items() if want <= set(k))


def test_metrics_move_while_clients_produce_and_consume(broker):
    topic = topic_name("scraped")
    cf.create_topic(broker.bootstrap, topic)
    before = parse(broker.metrics())
    n = count(5000)
    records = make_records(n, "scraped")
    cf.produce(broker.bootstrap, topic, records, "lz4")
    mid = parse(broker.metrics())
    consumed, _ = cf.consume_all(broker.bootstrap, topic, expected_total=n)
    after = parse(broker.metrics())

    produce_before = value(before, "sluice_server_requests_total", api="Produce")
    assert value(mid, "sluice_server_requests_total", api="Produce") > produce_before
    assert value(after, "sluice_server_requests_total", api="Fetch") > value(mid, "sluice_server_requests_total", api="Fetch")
    assert value(mid, "sluice_topic_records_in_total", topic=topic) == n
    assert value(mid, "sluice_topic_bytes_in_total", topic=topic) > 0
    assert value(after, "sluice_topic_records_out_total", topic=topic) >= n
    assert value(after, "sluice_topic_bytes_out_total", topic=topic) >= value(mid, "sluice_topic_bytes_in_total", topic=topic)
    assert value(after, "sluice_partition_log_end_offset", topic=topic) == n
    assert value(after, "sluice_partition_high_watermark", topic=topic) == n
    assert len([k for k in after["sluice_partition_segments"] if ("topic", topic) in k]) == PARTITIONS
    assert value(after, "sluice_partition_size_bytes", topic=topic) > 0
    assert value(after, "sluice_server_request_processing_seconds_count", api="Produce") > 0
    assert value(after, "sluice_server_response_send_seconds_count", api="Fetch") > 0
    assert value(after, "sluice_server_connections_accepted_total") > value(before, "sluice_server_connections_accepted_total")
    assert value(after, "sluice_log_appended_batches_total") > 0
    assert value(after, "sluice_metadata_raft_leader_id") == 1
    assert value(after, "sluice_metadata_raft_term") >= 1
    assert value(after, "sluice_process_resident_memory_bytes") > 0
    assert value(after, "sluice_process_open_fds") > 0
    # The process collector counts whole CPU seconds: present, maybe still 0.
    assert "sluice_process_cpu_seconds_total" in after
    assert sum(len(r) for r in consumed.values()) == n


def test_lag_of_a_stopped_consumer_equals_the_records_it_has_not_read(broker):
    topic = topic_name("lagged")
    cf.create_topic(broker.bootstrap, topic)
    n = count(2000)
    cf.produce(broker.bootstrap, topic, make_records(n, "lagged"))
    group = topic_name("lagged-group")
    c = cf.consumer(broker.bootstrap, **{"group.id": group, "enable.partition.eof": False})
    read = 0
    seen = set()
    try:
        c.subscribe([topic])
        deadline = time.monotonic() + 60
        # Lag exists for committed partitions only (as kafka-consumer-groups shows "-" for the
        # others): read from every partition, then stop.
        while (read < n // 3 or len(seen) < PARTITIONS) and time.monotonic() < deadline:
            for m in c.consume(50, timeout=0.5):
                if m.error() is None:
                    read += 1
                    seen.add(m.partition())
                    c.store_offsets(m)
        assert read >= n // 3, f"read {read} of {n}"
        c.commit(asynchronous=False)
    finally:
        c.close()
    # The consumer is gone; its committed offsets stay, and the records it has not read are
    # its lag, per partition and in total.
    samples = parse(broker.metrics())
    assert value(samples, "sluice_group_lag_records", group=group, topic=topic) == n - read
    assert len([k for k in samples["sluice_group_lag_records"] if ("group", group) in k]) >= 1
    assert value(samples, "sluice_group_state", group=group, state="Empty") == 1
    # More records arrive: the lag grows by exactly that many.
    cf.produce(broker.bootstrap, topic, make_records(100, "more"))
    samples = parse(broker.metrics())
    assert value(samples, "sluice_group_lag_records", group=group, topic=topic) == n - read + 100


def test_health_endpoints_and_healthcheck_subcommand(broker_factory):
    b = broker_factory()
    assert b.http_get("/health/live") == (200, "live\n")
    assert b.http_get("/health/ready") == (200, "ready\n")
    probe = [str(sluice_binary()), "healthcheck", f"127.0.0.1:{b.http_port}"]
    ok = subprocess.run(probe, capture_output=True, timeout=10)
    assert ok.returncode == 0, ok.stderr
    b.stop()
    down = subprocess.run(probe, capture_output=True, timeout=10)
    assert down.returncode == 1
    assert b"cannot connect" in down.stderr


def test_dashboard_uses_only_metrics_a_real_scrape_has(broker):
    topic = topic_name("dash")
    cf.create_topic(broker.bootstrap, topic, partitions=1)
    cf.produce(broker.bootstrap, topic, make_records(20, "dash"), partition=0)
    cf.consume_all(broker.bootstrap, topic, partitions=1, expected_total=20)
    # A group with a commit, for the group panels (lag, state).
    c = cf.consumer(broker.bootstrap, **{"group.id": topic_name("dash-group")})
    try:
        c.commit(offsets=[TopicPartition(topic, 0, 5)], asynchronous=False)
    finally:
        c.close()
    # An error code for sluice_server_request_errors_total: Metadata v1 for an illegal topic
    # name answers INVALID_TOPIC_EXCEPTION (17).
    name = b"no spaces allowed"
    body = struct.pack(">i", 1) + struct.pack(">h", len(name)) + name
    with socket.create_connection(("127.0.0.1", broker.port), timeout=10) as s:
        s.sendall(encode_request(3, 1, 7, body))
        recv_response(s)
    scrape = broker.metrics()
    assert 'error_code="17"' in scrape
    names = set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", scrape, re.M))
    dashboard = json.loads(DASHBOARD.read_text())
    used = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            used |= set(re.findall(r"\bsluice_[a-z0-9_]+", target["expr"]))
    assert len(used) > 15
    missing = sorted(u for u in used if u not in names)
    assert not missing, f"dashboard metrics absent from a real scrape: {missing}"


def test_sigterm_under_load_loses_no_acked_record_and_next_start_is_clean(broker_factory):
    b = broker_factory()
    topic = topic_name("sigterm")
    cf.create_topic(b.bootstrap, topic)
    acked = {}
    lock = threading.Lock()
    stop = threading.Event()

    def run():
        p = Producer(cf.producer_conf(b.bootstrap, "none", **{
            "linger.ms": 1, "acks": "all", "message.timeout.ms": 5000, "retries": 0,
        }))
        i = 0
        while not stop.is_set():
            rec = (f"k{i % 97}".encode(), f"sigterm-{i}".encode(), [("seq", str(i).encode())])

            def cb(err, msg, rec=rec):
                if err is None:
                    with lock:
                        acked[(msg.partition(), msg.offset())] = rec

            try:
                p.produce(topic, key=rec[0], value=rec[1], headers=rec[2], on_delivery=cb)
                i += 1
            except BufferError:
                pass
            p.poll(0.0005 if i % 50 else 0.001)
        p.poll(0)
        p.purge()
        p.flush(10)

    t = threading.Thread(target=run)
    t.start()
    deadline = time.monotonic() + 60
    while len(acked) < count(20_000):
        assert time.monotonic() < deadline, f"only {len(acked)} acks in 60 s"
        time.sleep(0.05)
    started = time.monotonic()
    rc = b.stop()  # SIGTERM while the producer is still sending
    stop_s = time.monotonic() - started
    stop.set()
    t.join(30)
    assert not t.is_alive()
    assert rc == 0
    with lock:
        snapshot = dict(acked)
    first_run = b.stderr_text()
    assert "clean shutdown recorded" in first_run

    b.start()
    second_run = b.stderr_paths[-1].read_text(errors="replace")
    assert "previous shutdown was clean" in second_run, second_run
    assert "not clean" not in second_run
    consumed, offsets = cf.consume_all(b.bootstrap, topic)
    on_disk = {}
    for p, recs in consumed.items():
        for off, rec in zip(offsets[p], recs):
            on_disk[(p, off)] = rec
    missing = [k for k in snapshot if on_disk.get(k) != snapshot[k]]
    assert not missing, f"{len(missing)} of {len(snapshot)} acknowledged records lost or changed"
    print(f"{len(snapshot)} acked; SIGTERM to exit {stop_s:.2f}s; {len(on_disk)} on disk after restart")


def test_json_logs_name_the_request_and_debug_adds_its_span(broker_factory):
    b = broker_factory({"sluice.log.format": "json", "sluice.request.slow.ms": "0"})
    cf.wait_for_partitions(b.bootstrap, topic_name("json"), 1)  # auto-created by Metadata
    b.stop()
    lines = [line for line in b.stderr_text().splitlines() if line.strip()]
    events = [json.loads(line) for line in lines]  # every line is one JSON object
    slow = [e["fields"] for e in events if e.get("fields", {}).get("message") == "slow request"]
    by_api = {f["api"]: f for f in slow}
    assert {"ApiVersions", "Metadata"} <= set(by_api), lines[:20]
    fields = by_api["Metadata"]
    assert {"version", "correlation_id", "client_id", "listener", "peer", "elapsed_ms"} <= set(fields), fields
    assert fields["listener"] == "PLAINTEXT"
    assert any("clean shutdown recorded" in e.get("fields", {}).get("message", "") for e in events)


def test_debug_level_puts_every_line_in_its_request_span(broker_factory, monkeypatch):
    monkeypatch.setenv("RUST_LOG", "info,sluice=debug")
    b = broker_factory({"sluice.log.format": "json", "sluice.request.slow.ms": "0"})
    cf.wait_for_partitions(b.bootstrap, topic_name("span"), 1)
    b.stop()
    events = [json.loads(line) for line in b.stderr_text().splitlines() if line.strip()]
    spans = [e["span"] for e in events if e.get("fields", {}).get("message") == "slow request"]
    assert spans and all(s["name"] == "request" for s in spans), spans[:3]
    assert {"api", "version", "correlation_id", "client_id", "listener", "peer"} <= set(spans[0])
