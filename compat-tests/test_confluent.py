"""confluent-kafka (librdkafka 2.x, the C client most Kafka clients wrap) against Sluice."""

import time

import pytest
from confluent_kafka import KafkaException, Producer, TopicPartition

import cf
from workload import CODECS, PARTITIONS, check_partitions, count, make_records, topic_name


@pytest.mark.parametrize("codec", CODECS)
def test_produce_consume_keyed_with_headers_every_codec(broker, codec):
    topic = topic_name(f"cf-{codec}")
    cf.create_topic(broker.bootstrap, topic)
    n = count(100_000)
    records = make_records(n, f"cf-{codec}")
    results = cf.produce(broker.bootstrap, topic, records, codec)
    expected = cf.expected_by_partition(records, results)
    assert len(expected) == PARTITIONS, f"keys landed on {len(expected)} partitions only"
    consumed, offsets = cf.consume_all(broker.bootstrap, topic, expected_total=n)
    check_partitions(expected, consumed)
    # Offsets are dense from 0 in a fresh topic.
    for p, offs in offsets.items():
        assert offs == list(range(len(offs))), f"partition {p}: offsets not dense from 0"


def test_metadata_describe_cluster_and_watermarks(broker):
    a = cf.admin(broker.bootstrap)
    topic = topic_name("cf-meta")
    cf.create_topic(broker.bootstrap, topic)
    md = a.list_topics(timeout=10)
    assert topic in md.topics
    assert list(md.brokers) == [1], f"brokers: {md.brokers}"
    b = md.brokers[1]
    assert (b.host, b.port) == ("127.0.0.1", broker.port)
    assert md.controller_id in (1, -1)

    desc = a.describe_cluster(request_timeout=10).result(timeout=15)
    assert [n.id for n in desc.nodes] == [1]
    assert desc.cluster_id, "DescribeCluster returned no cluster id"
    assert desc.cluster_id == md.cluster_id

    records = make_records(500, "wm")
    cf.produce(broker.bootstrap, topic, records, partition=3)
    c = cf.consumer(broker.bootstrap)
    try:
        assert c.get_watermark_offsets(TopicPartition(topic, 3), timeout=10) == (0, 500)
        assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (0, 0)
    finally:
        c.close()


def test_create_existing_and_delete_topic(broker):
    a = cf.admin(broker.bootstrap)
    topic = topic_name("cf-del")
    cf.create_topic(broker.bootstrap, topic, partitions=2)
    from confluent_kafka.admin import NewTopic

    fs = a.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)], request_timeout=10)
    with pytest.raises(KafkaException) as e:
        fs[topic].result(timeout=15)
    assert e.value.args[0].name() == "TOPIC_ALREADY_EXISTS"

    a.delete_topics([topic], request_timeout=10)[topic].result(timeout=15)
    deadline = time.monotonic() + 15
    while topic in a.list_topics(timeout=10).topics:
        assert time.monotonic() < deadline, "deleted topic still in metadata after 15 s"
        time.sleep(0.2)


def test_offsets_for_times(broker):
    topic = topic_name("cf-times")
    cf.create_topic(broker.bootstrap, topic, partitions=2)
    base = int(time.time() * 1000) - 3_600_000
    n = 1000
    records = make_records(n, "times")
    timestamps = [base + 10 * i for i in range(n)]
    results = cf.produce(broker.bootstrap, topic, records, partition=1, timestamps=timestamps)
    assert [o for _, o in results] == list(range(n))
    c = cf.consumer(broker.bootstrap)
    try:
        def lookup(ts):
            r = c.offsets_for_times([TopicPartition(topic, 1, ts)], timeout=10)
            assert r[0].error is None, r[0].error
            return r[0].offset

        assert lookup(base - 1000) == 0
        assert lookup(base) == 0
        assert lookup(base + 10 * 500) == 500
        assert lookup(base + 10 * 500 + 1) == 501  # first record with timestamp >= target
        assert lookup(base + 10 * (n - 1)) == n - 1
        assert lookup(base + 10 * n) == -1  # later than every record: no offset (-1)

        # The timestamps read back are the producer's CreateTime.
        c.assign([TopicPartition(topic, 1, 500)])
        msgs = []
        while len(msgs) < 3:
            msgs += [m for m in c.consume(3, timeout=5) if m.error() is None]
        assert [m.timestamp()[1] for m in msgs[:3]] == timestamps[500:503]
    finally:
        c.close()


def test_transactional_producer_fails_fast(broker):
    """No transactions yet (InitProducerId serves idempotent producers only): init_transactions
    must fail clearly, not hang."""
    p = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": "compat-txn"})
    start = time.monotonic()
    with pytest.raises(KafkaException) as e:
        p.init_transactions(30)
    elapsed = time.monotonic() - start
    assert elapsed < 10, f"init_transactions took {elapsed:.1f}s: not failing fast"
    err = e.value.args[0]
    # A timeout would mean the broker left the client hanging; anything else is a clear answer.
    assert err.name() not in ("_TIMED_OUT",), f"init_transactions timed out: {err}"
    print(f"init_transactions failed after {elapsed:.1f}s with {err.name()}: {err.str()}")


def test_idempotent_producer_delivers(broker):
    """enable.idempotence=true: InitProducerId is served, so the produce is delivered (no fatal
    _UNSUPPORTED_FEATURE, no hang). Duplicates under retries: test_idempotence.py."""
    topic = topic_name("cf-idem")
    cf.create_topic(broker.bootstrap, topic, partitions=1)
    p = Producer({
        "bootstrap.servers": broker.bootstrap,
        "enable.idempotence": True,
        "message.timeout.ms": 10000,
    })
    delivered = []
    p.produce(topic, b"v", on_delivery=lambda err, msg: delivered.append((err, msg.offset())))
    p.flush(30)
    assert delivered == [(None, 0)], delivered
