"""Partition and record admin APIs through real clients' admin interfaces: CreatePartitions,
DeleteRecords, ListOffsets, DescribeTopics/DescribeTopicPartitions, DescribeLogDirs; and
OffsetForLeaderEpoch as librdkafka's consumer validates a seek with it."""

import time

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import NewPartitions, OffsetSpec
from kafka import TopicPartition as KTopicPartition
from kafka.admin import KafkaAdminClient

import cf
from test_ops import parse, value
from workload import make_records, topic_name


def kp_admin(bootstrap):
    return KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=20000)


def earliest_offsets(a, topic, partitions):
    fs = a.list_offsets({TopicPartition(topic, p): OffsetSpec.earliest() for p in range(partitions)},
                        request_timeout=20)
    return {tp.partition: f.result(timeout=20).offset for tp, f in fs.items()}


def next_message(c, timeout_s=30):
    """The next record a consumer polls; its error raised."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error() is not None:
            raise KafkaException(m.error())
        return m
    raise AssertionError(f"no message in {timeout_s}s")


def first_offset_consumed(bootstrap, topic, partition, timeout_s=30):
    """Offset of the first record a new group consumer with auto.offset.reset=earliest reads."""
    c = cf.consumer(bootstrap, **{"group.id": topic_name("g"), "enable.partition.eof": False})
    try:
        c.assign([TopicPartition(topic, partition)])  # no committed offset: the reset decides
        return next_message(c, timeout_s).offset()
    finally:
        c.close()


def test_confluent_create_partitions_then_produce_and_consume_the_new_partition(broker):
    topic = topic_name("grow")
    cf.create_topic(broker.bootstrap, topic, partitions=1)
    a = cf.admin(broker.bootstrap)
    a.create_partitions([NewPartitions(topic, 3)], request_timeout=20)[topic].result(timeout=20)
    cf.wait_for_partitions(broker.bootstrap, topic, 3)
    # Not an increase: INVALID_PARTITIONS, and validate_only leaves the count alone.
    with pytest.raises(KafkaException) as e:
        a.create_partitions([NewPartitions(topic, 2)], request_timeout=20)[topic].result(timeout=20)
    assert e.value.args[0].code() == KafkaError.INVALID_PARTITIONS
    a.create_partitions([NewPartitions(topic, 9)], validate_only=True, request_timeout=20)[topic].result(timeout=20)
    md = a.list_topics(topic=topic, timeout=10)
    assert len(md.topics[topic].partitions) == 3

    records = make_records(30, topic)
    results = cf.produce(broker.bootstrap, topic, records, partition=2)
    assert [o for _, o in results] == list(range(30))
    consumed, offsets = cf.consume_all(broker.bootstrap, topic, partitions=3)
    assert consumed.get(2) == records and offsets[2] == list(range(30))
    assert not consumed.get(0) and not consumed.get(1)


def test_confluent_seek_with_leader_epoch_is_validated_by_offset_for_leader_epoch(broker):
    """KIP-320: librdkafka validates a seek that carries a leader epoch with OffsetForLeaderEpoch
    before fetching. A seek past the end of epoch 0 is log truncation: the consumer moves to the
    epoch's end offset from the broker's answer (the log end, 10), not to auto.offset.reset's
    earliest (0), which is where a fetch out of range would have sent it."""
    topic = topic_name("epoch-seek")
    cf.create_topic(broker.bootstrap, topic, partitions=1)
    cf.produce(broker.bootstrap, topic, make_records(10, topic), partition=0)

    def validations():
        return value(parse(broker.metrics()), "sluice_server_requests_total", api="OffsetForLeaderEpoch")

    c = cf.consumer(broker.bootstrap, **{"group.id": topic_name("g"), "enable.partition.eof": False})
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        m = next_message(c)
        assert (m.offset(), m.leader_epoch()) == (0, 0)

        before = validations()
        c.seek(TopicPartition(topic, 0, 4, leader_epoch=0))
        assert next_message(c).offset() == 4
        assert validations() > before

        before = validations()
        c.seek(TopicPartition(topic, 0, 15, leader_epoch=0))
        deadline = time.monotonic() + 20
        while validations() == before:
            assert time.monotonic() < deadline, "the seek past the end was never validated"
            assert c.poll(0.2) is None
        # Only now write more: the validation answered with the log end as it was (10).
        cf.produce(broker.bootstrap, topic, make_records(3, topic + "-more"), partition=0)
        assert next_message(c).offset() == 10
    finally:
        c.close()


def test_confluent_delete_records_moves_earliest_and_survives_restart(broker):
    topic = topic_name("dr")
    cf.create_topic(broker.bootstrap, topic, partitions=2)
    cf.produce(broker.bootstrap, topic, make_records(50, topic), partition=0)
    cf.produce(broker.bootstrap, topic, make_records(10, topic), partition=1)
    a = cf.admin(broker.bootstrap)
    fs = a.delete_records([TopicPartition(topic, 0, 20), TopicPartition(topic, 1, -1)], request_timeout=20)
    low = {tp.partition: f.result(timeout=20).low_watermark for tp, f in fs.items()}
    assert low == {0: 20, 1: 10}
    assert earliest_offsets(a, topic, 2) == {0: 20, 1: 10}
    assert first_offset_consumed(broker.bootstrap, topic, 0) == 20
    # Beyond the high watermark: OFFSET_OUT_OF_RANGE.
    fs = a.delete_records([TopicPartition(topic, 0, 51)], request_timeout=20)
    with pytest.raises(KafkaException) as e:
        list(fs.values())[0].result(timeout=20)
    assert e.value.args[0].code() == KafkaError.OFFSET_OUT_OF_RANGE

    broker.kill()  # a crash: the start offset must already be on disk
    broker.start()
    a = cf.admin(broker.bootstrap)
    assert earliest_offsets(a, topic, 2) == {0: 20, 1: 10}
    assert first_offset_consumed(broker.bootstrap, topic, 0) == 20


def test_confluent_describe_topics_and_list_offsets(broker):
    from confluent_kafka import TopicCollection

    topic = topic_name("desc")
    cf.create_topic(broker.bootstrap, topic, partitions=3)
    cf.produce(broker.bootstrap, topic, make_records(7, topic), partition=1)
    a = cf.admin(broker.bootstrap)
    desc = a.describe_topics(TopicCollection([topic]), request_timeout=20)[topic].result(timeout=20)
    assert desc.name == topic and not desc.is_internal
    assert [p.id for p in desc.partitions] == [0, 1, 2]
    assert all(p.leader.id == 1 and [r.id for r in p.replicas] == [1] for p in desc.partitions)
    fs = a.list_offsets({TopicPartition(topic, 1): OffsetSpec.latest(),
                         TopicPartition(topic, 0): OffsetSpec.earliest()}, request_timeout=20)
    got = {tp.partition: f.result(timeout=20).offset for tp, f in fs.items()}
    assert got == {1: 7, 0: 0}


def test_kafka_python_create_partitions_and_delete_records(broker):
    topic = topic_name("kp")
    cf.create_topic(broker.bootstrap, topic, partitions=1)
    cf.produce(broker.bootstrap, topic, make_records(12, topic), partition=0)
    a = kp_admin(broker.bootstrap)
    try:
        a.create_partitions({topic: 4})
        cf.wait_for_partitions(broker.bootstrap, topic, 4)
        result = a.delete_records({KTopicPartition(topic, 0): 5})
        (meta,) = result.values()
        assert meta["low_watermark"] == 5, result
    finally:
        a.close()
    assert earliest_offsets(cf.admin(broker.bootstrap), topic, 1) == {0: 5}


def test_kafka_python_describe_log_dirs_and_topic_partitions_pages(broker):
    topic = topic_name("kpd")
    cf.create_topic(broker.bootstrap, topic, partitions=3)
    cf.produce(broker.bootstrap, topic, make_records(20, topic), partition=1)
    a = kp_admin(broker.bootstrap)
    try:
        (b,) = a.describe_log_dirs({topic: [0, 1, 2]})
        assert b["broker"] == 1
        (d,) = b["log_dirs"]
        assert d["error_code"] == 0 and d["log_dir"] == str(broker.data_dir)
        assert 0 < d["usable_bytes"] <= d["total_bytes"]
        (t,) = d["topics"]
        sizes = {p["partition_index"]: p["partition_size"] for p in t["partitions"]}
        assert sizes[0] == 0 and sizes[2] == 0 and sizes[1] > 0, sizes
        assert all(p["offset_lag"] == 0 and not p["is_future_key"] for p in t["partitions"])

        page = a.describe_topic_partitions([topic], response_partition_limit=2)
        assert [p["partition_index"] for p in page["topics"][0]["partitions"]] == [0, 1]
        assert page["next_cursor"] == {"topic_name": topic, "partition_index": 2}
        page = a.describe_topic_partitions([topic], response_partition_limit=2, cursor=page["next_cursor"])
        (t,) = page["topics"]
        assert [p["partition_index"] for p in t["partitions"]] == [2] and page["next_cursor"] is None
        assert t["partitions"][0]["leader_id"] == 1 and t["partitions"][0]["isr_nodes"] == [1]
    finally:
        a.close()
