"""Log compaction (cleanup.policy=compact) seen by a real client: confluent-kafka produces many
updates to few keys, the log cleaner runs, and a consumer from the beginning reads exactly the
latest record of each key at the offset it was acknowledged with, also after a restart."""

import os
import re
import time

from confluent_kafka.admin import NewTopic

import cf
from workload import topic_name

KEYS = 20
ROUNDS = 150
FILLERS = 200


def metric(broker, name):
    m = re.search(rf"^{name} (\S+)$", broker.metrics(), re.M)
    return float(m.group(1)) if m else 0.0


def create_compacted(bootstrap, topic):
    a = cf.admin(bootstrap)
    config = {
        "cleanup.policy": "compact",
        "segment.bytes": "2048",
        "min.cleanable.dirty.ratio": "0.01",
    }
    fs = a.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1, config=config)])
    fs[topic].result(timeout=30)
    cf.wait_for_partitions(bootstrap, topic, 1)


def read_back(bootstrap, topic, expected_total):
    consumed, offsets = cf.consume_all(bootstrap, topic, partitions=1, expected_total=expected_total)
    return [(off, k, v) for off, (k, v, _) in zip(offsets.get(0, []), consumed.get(0, []))]


def read_back_kafka_python(bootstrap, topic, expected_total, timeout_s=60):
    from kafka import KafkaConsumer, TopicPartition

    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        tp = TopicPartition(topic, 0)
        c.assign([tp])
        c.seek_to_beginning(tp)
        out = []
        deadline = time.monotonic() + timeout_s
        while len(out) < expected_total and time.monotonic() < deadline:
            for msgs in c.poll(timeout_ms=500).values():
                out.extend((m.offset, m.key, m.value) for m in msgs)
        return out
    finally:
        c.close()


def test_compacted_topic_keeps_the_latest_record_of_each_key(broker_factory):
    b = broker_factory({"log.cleaner.backoff.ms": "100"})
    topic = topic_name("compact")
    create_compacted(b.bootstrap, topic)
    records = []
    for r in range(ROUNDS):
        for k in range(KEYS):
            value = None if (k == KEYS - 1 and r == ROUNDS - 1) else f"v{r}-{k}".encode()
            records.append((f"k{k}".encode(), value, None))
    # Distinct keys after the last round roll it out of the active segment (never cleaned).
    records += [(f"filler-{i}".encode(), os.urandom(30).hex().encode(), None) for i in range(FILLERS)]
    # Small batches so that segments of 2 KiB roll often.
    results = cf.produce(b.bootstrap, topic, records, "lz4", partition=0, **{"batch.size": 500})
    latest = {}
    for (k, v, _), (_, off) in zip(records, results):
        latest[k] = (off, k, v)
    expected = sorted(latest.values())

    removed = KEYS * (ROUNDS - 1)
    deadline = time.monotonic() + 60
    while metric(b, "sluice_log_cleaner_removed_records_total") < removed:
        assert time.monotonic() < deadline, b.metrics()
        time.sleep(0.2)
    assert metric(b, "sluice_log_cleaner_passes_total") >= 1
    assert metric(b, "sluice_log_cleaner_written_bytes_total") > 0

    got = read_back(b.bootstrap, topic, len(expected))
    # Exactly the latest record per key (the last one of k19 a tombstone, kept within
    # delete.retention.ms), each at the offset its produce was acknowledged with.
    assert got == expected

    # kafka-python reads the cleaned log (with its gaps and empty batches) the same way.
    assert read_back_kafka_python(b.bootstrap, topic, len(expected)) == expected

    b.restart()
    cf.wait_for_partitions(b.bootstrap, topic, 1)
    assert read_back(b.bootstrap, topic, len(expected)) == expected
    # Appends go on after the last offset.
    more = cf.produce(b.bootstrap, topic, [(b"k0", b"after", None)], partition=0)
    assert more[0][1] == results[-1][1] + 1
