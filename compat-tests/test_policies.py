"""Produce-side topic policies (Kafka's LogValidator) seen by real clients: LogAppendTime,
compression.type recompression, keys on compacted topics, max.message.bytes and
message.timestamp.before.max.ms (KIP-937). Topic configs are set at CreateTopics time."""

import asyncio
import struct
import time

import pytest
from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME, KafkaError, Producer
from confluent_kafka.admin import NewTopic
from aiokafka import AIOKafkaConsumer
from aiokafka import TopicPartition as AioTopicPartition
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

import cf
from workload import topic_name


def create(broker, topic, config):
    a = cf.admin(broker.bootstrap)
    fs = a.create_topics(
        [NewTopic(topic, num_partitions=1, replication_factor=1, config=config)],
        operation_timeout=30,
        request_timeout=30,
    )
    fs[topic].result(timeout=30)
    cf.wait_for_partitions(broker.bootstrap, topic, 1)


def deliver(broker, topic, messages, **conf):
    """Produces (key, value, timestamp_ms or None) with confluent-kafka; returns the delivery
    report of each as (error or None, message)."""
    p = Producer(cf.producer_conf(broker.bootstrap, **conf))
    reports = [None] * len(messages)

    def on_delivery(i):
        def cb(err, msg):
            reports[i] = (err, msg)

        return cb

    for i, (key, value, ts) in enumerate(messages):
        kwargs = {"key": key, "value": value, "on_delivery": on_delivery(i)}
        if ts is not None:
            kwargs["timestamp"] = ts
        p.produce(topic, **kwargs)
    assert p.flush(60) == 0, "delivery reports missing"
    return reports


def stored_batches(broker, topic):
    """(attributes, batch length) of each batch in the partition's first segment file."""
    data = (broker.log_dir / "data" / f"{topic}-0" / f"{0:020d}.log").read_bytes()
    out = []
    pos = 0
    while pos + 61 <= len(data):
        (length,) = struct.unpack_from(">i", data, pos + 8)
        (attributes,) = struct.unpack_from(">h", data, pos + 21)
        out.append((attributes, 12 + length))
        pos += 12 + length
    return out


def test_log_append_time_topic_gives_consumers_the_append_time(broker):
    topic = topic_name("pol-lat")
    create(broker, topic, {"message.timestamp.type": "LogAppendTime"})
    before = int(time.time() * 1000)
    # A CreateTime from 1970 is replaced, not checked, on a LogAppendTime topic.
    reports = deliver(broker, topic, [(b"k%d" % i, b"v%d" % i, 1000 + i) for i in range(5)])
    after = int(time.time() * 1000)
    assert all(err is None for err, _ in reports), reports
    # The delivery report carries the Produce response's log_append_time_ms.
    ts_type, ts = reports[0][1].timestamp()
    assert ts_type == TIMESTAMP_LOG_APPEND_TIME and before <= ts <= after, (ts_type, ts)
    c = cf.consumer(broker.bootstrap)
    try:
        from confluent_kafka import TopicPartition as CfTopicPartition

        c.assign([CfTopicPartition(topic, 0, -2)])
        got = []
        deadline = time.monotonic() + 30
        while len(got) < 5 and time.monotonic() < deadline:
            m = c.poll(1.0)
            if m is None or m.error():
                continue
            got.append(m)
    finally:
        c.close()
    assert [m.value() for m in got] == [b"v%d" % i for i in range(5)]
    for m in got:
        ts_type, ts = m.timestamp()
        assert ts_type == TIMESTAMP_LOG_APPEND_TIME, ts_type
        assert before <= ts <= after, (before, ts, after)
    # A second client, kafka-python, reads the same append times (timestamp_type 1).
    records = read_kafka_python(broker.bootstrap, topic, 5)
    assert [r.value for r in records] == [b"v%d" % i for i in range(5)]
    assert [r.timestamp for r in records] == [m.timestamp()[1] for m in got]
    assert all(r.timestamp_type == 1 for r in records), [r.timestamp_type for r in records]


CODEC_IDS = {"gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


@pytest.mark.parametrize("target", ["zstd", "lz4", "snappy", "gzip"])
def test_codec_topic_recompresses_kafka_python_batches_and_reads_back_intact(broker, target):
    topic = topic_name(f"pol-{target}")
    create(broker, topic, {"compression.type": target})
    sent = []
    sources = [c for c in (None, "gzip", "zstd") if c != target]
    for codec in sources:
        p = KafkaProducer(bootstrap_servers=broker.bootstrap, compression_type=codec, linger_ms=20)
        for i in range(200):
            key = f"{codec}-{i}".encode()
            value = (f"value {i} " * 20).encode()
            headers = [("h", str(i).encode())]
            p.send(topic, key=key, value=value, headers=headers, partition=0)
            sent.append((key, value, headers))
        p.flush(30)
        p.close()
    batches = stored_batches(broker, topic)
    assert batches, "nothing stored"
    assert all(attributes & 0x07 == CODEC_IDS[target] for attributes, _ in batches), batches
    # 200 bytes per value: stored compressed, far below the plain size.
    assert sum(size for _, size in batches) < len(sent) * 200 // 4
    got = read_kafka_python(broker.bootstrap, topic, len(sent))
    assert [r.offset for r in got] == list(range(len(sent)))
    assert [(r.key, r.value, list(r.headers)) for r in got] == sent
    # Every other client reads the recompressed batches too: confluent-kafka (librdkafka) and
    # aiokafka.
    consumed, offsets = cf.consume_all(broker.bootstrap, topic, partitions=1, expected_total=len(sent))
    assert offsets[0] == list(range(len(sent)))
    assert [(k, v) for k, v, _ in consumed[0]] == [(k, v) for k, v, _ in sent]
    assert asyncio.run(read_aiokafka(broker.bootstrap, topic, len(sent))) == [(k, v) for k, v, _ in sent]


def read_kafka_python(bootstrap, topic, n, timeout_s=30):
    """Records of partition 0 from the beginning, read with kafka-python."""
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, consumer_timeout_ms=5000)
    try:
        tp = TopicPartition(topic, 0)
        c.assign([tp])
        c.seek_to_beginning(tp)
        out = []
        deadline = time.monotonic() + timeout_s
        while len(out) < n and time.monotonic() < deadline:
            for records in c.poll(timeout_ms=1000).values():
                out.extend(records)
        return out
    finally:
        c.close()


async def read_aiokafka(bootstrap, topic, n, timeout_s=30):
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await c.start()
    try:
        tp = AioTopicPartition(topic, 0)
        c.assign([tp])
        await c.seek_to_beginning(tp)
        out = []
        deadline = time.monotonic() + timeout_s
        while len(out) < n and time.monotonic() < deadline:
            for records in (await c.getmany(timeout_ms=1000)).values():
                out.extend((r.key, r.value) for r in records)
        return out
    finally:
        await c.stop()


def test_keyless_record_to_compacted_topic_is_invalid_record(broker):
    topic = topic_name("pol-compact")
    create(broker, topic, {"cleanup.policy": "compact"})
    reports = deliver(broker, topic, [(None, b"no key", None)])
    err, _ = reports[0]
    assert err is not None and err.code() == KafkaError.INVALID_RECORD, err
    reports = deliver(broker, topic, [(b"key", b"with key", None)])
    assert reports[0][0] is None, reports[0][0]
    assert reports[0][1].offset() == 0


def test_record_over_max_message_bytes_is_msg_size_too_large(broker):
    topic = topic_name("pol-size")
    create(broker, topic, {"max.message.bytes": "2000"})
    reports = deliver(broker, topic, [(b"k", b"x" * 5000, None)])
    err, _ = reports[0]
    assert err is not None and err.code() == KafkaError.MSG_SIZE_TOO_LARGE, err
    reports = deliver(broker, topic, [(b"k", b"x" * 500, None)])
    assert reports[0][0] is None, reports[0][0]


def test_timestamp_too_far_in_the_past_is_invalid_timestamp(broker):
    topic = topic_name("pol-ts")
    create(broker, topic, {"message.timestamp.before.max.ms": "3600000"})
    old = int(time.time() * 1000) - 2 * 24 * 3600 * 1000
    reports = deliver(broker, topic, [(b"k", b"old", old)])
    err, _ = reports[0]
    assert err is not None and err.code() == KafkaError.INVALID_TIMESTAMP, err
    reports = deliver(broker, topic, [(b"k", b"recent", int(time.time() * 1000) - 60_000)])
    assert reports[0][0] is None, reports[0][0]
