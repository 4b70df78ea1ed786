"""kafka-python (pure-Python client, its own protocol code) against Sluice."""

import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient

from workload import CODECS, PARTITIONS, check_partitions, count, make_records, norm_headers, topic_name


def admin(bootstrap):
    return KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=20000)


def create_topic(bootstrap, topic, partitions=PARTITIONS):
    a = admin(bootstrap)
    try:
        a.create_topics({topic: {"num_partitions": partitions, "replication_factor": 1}}, timeout_ms=20000)
    finally:
        a.close()
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    try:
        deadline = time.monotonic() + 30
        while (c.partitions_for_topic(topic) or set()) != set(range(partitions)):
            assert time.monotonic() < deadline, f"topic {topic} not visible with {partitions} partitions"
            time.sleep(0.2)
    finally:
        c.close()


def produce(bootstrap, topic, records, codec, partition=None, timestamps=None):
    p = KafkaProducer(
        bootstrap_servers=bootstrap,
        # kafka-python's default: idempotence on (InitProducerId, sequence-checked batches).
        acks="all",
        compression_type=None if codec == "none" else codec,
        linger_ms=5,
        request_timeout_ms=30000,
    )
    try:
        futures = []
        for i, (k, v, h) in enumerate(records):
            futures.append(p.send(
                topic, key=k, value=v, headers=h, partition=partition,
                timestamp_ms=None if timestamps is None else timestamps[i],
            ))
        p.flush(timeout=120)
        return [(md.partition, md.offset) for md in (f.get(timeout=60) for f in futures)]
    finally:
        p.close(timeout=10)


def consume_all(bootstrap, topic, expected_total, partitions=PARTITIONS, timeout_s=120):
    c = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,  # no group: assign() only
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        out = {}
        total = 0
        deadline = time.monotonic() + timeout_s
        while total < expected_total:
            assert time.monotonic() < deadline, f"consumed only {total}/{expected_total} in {timeout_s}s"
            batch = c.poll(timeout_ms=1000, max_records=5000)
            for tp, msgs in batch.items():
                for m in msgs:
                    out.setdefault(tp.partition, []).append((m.offset, (m.key, m.value, norm_headers(m.headers))))
                    total += 1
        # Nothing beyond: end offsets equal what was read.
        end = c.end_offsets(tps)
        assert sum(end.values()) == expected_total, f"end offsets {end} != {expected_total} records"
        result = {}
        for p, lst in out.items():
            offs = [o for o, _ in lst]
            assert offs == sorted(offs), f"partition {p}: offsets out of order"
            result[p] = [r for _, r in lst]
        return result
    finally:
        c.close()


def expected_by_partition(records, results):
    per = {}
    for rec, (p, off) in zip(records, results):
        per.setdefault(p, []).append((off, rec))
    out = {}
    for p, lst in per.items():
        offs = [o for o, _ in lst]
        assert offs == sorted(offs), f"partition {p}: acked offsets not in produce order"
        out[p] = [(k, v, norm_headers(h)) for _, (k, v, h) in lst]
    return out


@pytest.mark.parametrize("codec", CODECS)
def test_produce_consume_keyed_with_headers_every_codec(broker, codec):
    topic = topic_name(f"kp-{codec}")
    create_topic(broker.bootstrap, topic)
    n = count(20_000)
    records = make_records(n, f"kp-{codec}")
    results = produce(broker.bootstrap, topic, records, codec)
    expected = expected_by_partition(records, results)
    assert len(expected) == PARTITIONS
    consumed = consume_all(broker.bootstrap, topic, n)
    check_partitions(expected, consumed)


def test_offsets_for_times_and_metadata(broker):
    topic = topic_name("kp-times")
    create_topic(broker.bootstrap, topic, partitions=2)
    base = int(time.time() * 1000) - 3_600_000
    n = 300
    records = make_records(n, "kp-times")
    results = produce(broker.bootstrap, topic, records, "none", partition=0,
                      timestamps=[base + 10 * i for i in range(n)])
    assert [o for _, o in results] == list(range(n))
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None)
    try:
        tp = TopicPartition(topic, 0)
        r = c.offsets_for_times({tp: base + 10 * 100})
        assert r[tp].offset == 100 and r[tp].timestamp == base + 1000
        r = c.offsets_for_times({tp: base + 10 * 100 + 5})
        assert r[tp].offset == 101
        r = c.offsets_for_times({tp: base + 10 * n})
        assert r[tp] is None
        assert c.beginning_offsets([tp]) == {tp: 0}
        assert c.end_offsets([tp]) == {tp: n}
    finally:
        c.close()
    a = admin(broker.bootstrap)
    try:
        cluster = a.describe_cluster()
        assert [b.get("broker_id", b.get("node_id")) for b in cluster["brokers"]] == [1], cluster
        assert topic in a.list_topics()
        a.delete_topics([topic], timeout_ms=20000)
        deadline = time.monotonic() + 15
        while topic in a.list_topics():
            assert time.monotonic() < deadline, "deleted topic still listed"
            time.sleep(0.2)
    finally:
        a.close()
