"""Sluice's advertised API versions against a Kafka 4.1 broker's, and kafka-python pinned to
older Kafka releases (`api_version=(2, 8)` and so on, common in existing code): each pin sends
what that release supports, and every one must produce, consume by assignment and by group,
look up offsets by time and administer topics."""

import re
import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
from kafka.protocol.broker_version_data import BROKER_API_VERSIONS, BrokerVersionData
from kafka.protocol.consumer.fetch import FetchRequest
from kafka.protocol.consumer.group import JoinGroupRequest
from kafka.protocol.consumer.offsets import ListOffsetsRequest
from kafka.protocol.metadata.metadata import MetadataRequest
from kafka.protocol.producer.produce import ProduceRequest

from workload import make_records, norm_headers, topic_name

KAFKA_4_1 = (4, 1)
# None: kafka-python infers the release from ApiVersions (it must infer 4.1).
PINS = [None, (2, 8), (3, 4), (3, 9), (4, 0)]


def pin_id(pin):
    return "auto" if pin is None else ".".join(map(str, pin))


def test_advertised_versions_are_kafka_4_1s_exactly(broker):
    """Every API Sluice advertises has exactly Kafka 4.1's range, minimum included (the ranges
    as kafka-python 3.0 recorded them from a Kafka 4.1 broker); the only difference allowed is
    an API Sluice does not advertise at all."""
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=20000)
    try:
        advertised = {int(k): v for k, v in admin.api_versions().items()}
        inferred = admin.get_broker_version_data(1).broker_version
    finally:
        admin.close()
    kafka = BROKER_API_VERSIONS[KAFKA_4_1]
    differ = {
        key: (tuple(advertised[key]), kafka.get(key))
        for key in advertised
        if tuple(advertised[key]) != kafka.get(key)
    }
    assert not differ, f"api key: (Sluice's range, Kafka 4.1's) {differ}"
    assert inferred == KAFKA_4_1, f"kafka-python takes Sluice for Kafka {inferred}"


@pytest.fixture
def fast_groups_broker(broker_factory):
    # The first rebalance of an empty group waits group.initial.rebalance.delay.ms (3 s as
    # Kafka); nothing here needs it.
    return broker_factory({"group.initial.rebalance.delay.ms": "0"})


@pytest.mark.parametrize("pin", PINS, ids=pin_id)
def test_kafka_python_pinned_to_a_release(fast_groups_broker, pin):
    bootstrap = fast_groups_broker.bootstrap
    common = {"bootstrap_servers": bootstrap, "request_timeout_ms": 20000}
    if pin is not None:
        common["api_version"] = pin
    tag = f"pin-{pin_id(pin)}"
    topic = topic_name(tag)

    admin = KafkaAdminClient(**common)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)], timeout_ms=20000)
        deadline = time.monotonic() + 20
        while topic not in admin.list_topics():
            assert time.monotonic() < deadline, "created topic not listed"
            time.sleep(0.2)
        described = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="all"
        )["topic"][topic]
        assert described["cleanup.policy"]["value"] == "delete", described

        # Produce (gzip) with timestamps one second apart, all to partition 0.
        base = int(time.time() * 1000) - 600_000
        records = make_records(100, tag)
        producer = KafkaProducer(acks="all", compression_type="gzip", linger_ms=5, **common)
        try:
            futures = [
                producer.send(topic, key=k, value=v, headers=h, partition=0, timestamp_ms=base + 1000 * i)
                for i, (k, v, h) in enumerate(records)
            ]
            producer.flush(timeout=60)
            offsets = [f.get(timeout=30).offset for f in futures]
        finally:
            producer.close(timeout=10)
        assert offsets == list(range(100)), offsets[:10]

        # Consume by assignment, and offsets by time.
        tp = TopicPartition(topic, 0)
        consumer = KafkaConsumer(group_id=None, enable_auto_commit=False, auto_offset_reset="earliest", **common)
        try:
            consumer.assign([tp])
            got = poll_exactly(consumer, 100)
            assert [(m.key, m.value, norm_headers(m.headers)) for m in got] == [
                (k, v, norm_headers(h)) for k, v, h in records
            ]
            found = consumer.offsets_for_times({tp: base + 1000 * 40})
            assert found[tp].offset == 40 and found[tp].timestamp == base + 40_000, found
            assert consumer.beginning_offsets([tp]) == {tp: 0}
            assert consumer.end_offsets([tp]) == {tp: 100}
        finally:
            consumer.close()

        # Consume by group: the committed offset is where a second member of the group starts.
        group = f"{tag}-group"
        member = KafkaConsumer(topic, group_id=group, enable_auto_commit=False, auto_offset_reset="earliest", **common)
        try:
            got = poll_exactly(member, 100)
            assert sorted(m.offset for m in got) == list(range(100))
            member.commit({tp: offset_and_metadata(60)})
        finally:
            member.close()
        committed = admin.list_group_offsets({group: None})[group]
        assert committed[tp].offset == 60, committed
        member = KafkaConsumer(topic, group_id=group, enable_auto_commit=False, auto_offset_reset="earliest", **common)
        try:
            got = poll_exactly(member, 40)
            assert [m.offset for m in got] == list(range(60, 100))
        finally:
            member.close()
        listed = admin.list_groups()
        assert group in repr(listed), listed

        # The pin decided what was sent, as the broker counted it: ListOffsets and Metadata at
        # the highest version both kafka-python and the pinned release support (v9 under 3.9,
        # v10 and v13 under 4.0); Produce, Fetch and JoinGroup at most that (kafka-python 3.0
        # caps them lower itself: v9, v12, v7).
        release = BrokerVersionData(pin or KAFKA_4_1)
        used = versions_used(fast_groups_broker.metrics())
        for request, api in [(ListOffsetsRequest, "ListOffsets"), (MetadataRequest, "Metadata")]:
            assert max(used[api]) == release.api_version(request), (api, used[api])
        for request, api in [(ProduceRequest, "Produce"), (FetchRequest, "Fetch"), (JoinGroupRequest, "JoinGroup")]:
            assert max(used[api]) <= release.api_version(request), (api, used[api])

        admin.delete_topics([topic], timeout_ms=20000)
        deadline = time.monotonic() + 20
        while topic in admin.list_topics():
            assert time.monotonic() < deadline, "deleted topic still listed"
            time.sleep(0.2)
    finally:
        admin.close()


def versions_used(scrape):
    """{api: {version, ...}} from sluice_server_requests_total."""
    used = {}
    for m in re.finditer(r'^sluice_server_requests_total\{([^}]*)\} (\S+)$', scrape, re.M):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        if float(m.group(2)) > 0:
            used.setdefault(labels["api"], set()).add(int(labels["version"]))
    return used


def offset_and_metadata(offset):
    from kafka.structs import OffsetAndMetadata

    try:
        return OffsetAndMetadata(offset, "", -1)
    except TypeError:
        return OffsetAndMetadata(offset, "")


def poll_exactly(consumer, n, timeout_s=30):
    out = []
    deadline = time.monotonic() + timeout_s
    while len(out) < n:
        assert time.monotonic() < deadline, f"consumed {len(out)} of {n} in {timeout_s}s"
        for msgs in consumer.poll(timeout_ms=500).values():
            out.extend(msgs)
    assert len(out) == n, f"consumed {len(out)}, expected {n}"
    return out
