"""Config admin with real clients: DescribeConfigs, AlterConfigs and IncrementalAlterConfigs on
topics, brokers and consumer groups (confluent-kafka AdminClient, kafka-python
KafkaAdminClient), and a lowered retention.ms taking effect on a live topic."""

import time

import pytest
from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import (
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewTopic,
    ResourceType,
)

import cf
from workload import make_records, topic_name

TIMEOUT = 15


def create_with_configs(bootstrap, topic, config, partitions=1):
    a = cf.admin(bootstrap)
    fs = a.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1, config=config)],
        request_timeout=TIMEOUT,
    )
    fs[topic].result(timeout=TIMEOUT)
    cf.wait_for_partitions(bootstrap, topic, partitions)


def describe(a, resource, **kwargs):
    fs = a.describe_configs([resource], request_timeout=TIMEOUT, **kwargs)
    return list(fs.values())[0].result(timeout=TIMEOUT)


def incremental(a, resource):
    fs = a.incremental_alter_configs([resource], request_timeout=TIMEOUT)
    return list(fs.values())[0].result(timeout=TIMEOUT)


def test_cf_describe_topic_and_broker_configs(broker):
    a = cf.admin(broker.bootstrap)
    topic = topic_name("cf-describe")
    create_with_configs(broker.bootstrap, topic, {"retention.ms": "1000"})

    # librdkafka always asks for synonyms (DescribeConfigs v1+).
    entries = describe(a, ConfigResource(ResourceType.TOPIC, topic))
    retention = entries["retention.ms"]
    assert retention.value == "1000"
    assert retention.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert not retention.is_read_only and not retention.is_sensitive
    assert [(s.name, s.value) for s in retention.synonyms.values()] == [
        ("retention.ms", "1000"),
        ("log.retention.hours", "168"),
    ]
    segment = entries["segment.bytes"]
    assert segment.value == "1073741824"
    assert segment.source == ConfigSource.DEFAULT_CONFIG.value
    assert entries["cleanup.policy"].value == "delete"

    entries = describe(a, ConfigResource(ResourceType.BROKER, "1"))
    hours = entries["log.retention.hours"]
    assert hours.value == "168" and hours.is_read_only
    assert not entries["log.retention.ms"].is_read_only
    assert entries["listeners"].source == ConfigSource.STATIC_BROKER_CONFIG.value

    with pytest.raises(KafkaException) as e:
        describe(a, ConfigResource(ResourceType.TOPIC, topic_name("cf-missing")))
    assert e.value.args[0].name() == "UNKNOWN_TOPIC_OR_PART"


def test_cf_incremental_alter_topic_and_broker_configs(broker):
    a = cf.admin(broker.bootstrap)
    topic = topic_name("cf-incr")
    cf.create_topic(broker.bootstrap, topic, partitions=1)
    resource = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND),
            ConfigEntry("retention.ms", "5000", incremental_operation=AlterConfigOpType.SET),
        ],
    )
    incremental(a, resource)
    entries = describe(a, ConfigResource(ResourceType.TOPIC, topic))
    assert entries["cleanup.policy"].value == "delete,compact"
    assert entries["retention.ms"].value == "5000"

    resource = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry("cleanup.policy", "delete", incremental_operation=AlterConfigOpType.SUBTRACT),
            ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE),
        ],
    )
    incremental(a, resource)
    entries = describe(a, ConfigResource(ResourceType.TOPIC, topic))
    assert entries["cleanup.policy"].value == "compact"
    assert entries["retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value

    # A dynamic broker value: topics without an override follow it. (The Python client refuses
    # an empty resource name, so the cluster-wide default "" is covered by tests/configs.rs.)
    incremental(
        a,
        ConfigResource(
            ResourceType.BROKER,
            "1",
            incremental_configs=[
                ConfigEntry("log.retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET)
            ],
        ),
    )
    entries = describe(a, ConfigResource(ResourceType.TOPIC, topic))
    assert entries["retention.ms"].value == "7200000"
    assert entries["retention.ms"].source == ConfigSource.DYNAMIC_BROKER_CONFIG.value

    # Read-only broker configs are refused as Kafka refuses them.
    with pytest.raises(KafkaException) as e:
        incremental(
            a,
            ConfigResource(
                ResourceType.BROKER,
                "1",
                incremental_configs=[
                    ConfigEntry("log.retention.hours", "1", incremental_operation=AlterConfigOpType.SET)
                ],
            ),
        )
    assert e.value.args[0].name() == "INVALID_REQUEST"
    with pytest.raises(KafkaException) as e:
        incremental(
            a,
            ConfigResource(
                ResourceType.TOPIC,
                topic,
                incremental_configs=[
                    ConfigEntry("segment.bytes", "13", incremental_operation=AlterConfigOpType.SET)
                ],
            ),
        )
    assert e.value.args[0].name() == "INVALID_CONFIG"


def test_cf_alter_configs_replaces_the_set(broker):
    a = cf.admin(broker.bootstrap)
    topic = topic_name("cf-alter")
    create_with_configs(broker.bootstrap, topic, {"retention.ms": "1000", "segment.ms": "60000"})
    fs = a.alter_configs(
        [ConfigResource(ResourceType.TOPIC, topic, set_config={"retention.bytes": "4096"})],
        request_timeout=TIMEOUT,
    )
    list(fs.values())[0].result(timeout=TIMEOUT)
    entries = describe(a, ConfigResource(ResourceType.TOPIC, topic))
    assert entries["retention.bytes"].value == "4096"
    assert entries["retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value
    assert entries["segment.ms"].source == ConfigSource.DEFAULT_CONFIG.value

    fs = a.alter_configs(
        [ConfigResource(ResourceType.BROKER, "1", set_config={"message.max.bytes": "2000000"})],
        request_timeout=TIMEOUT,
    )
    list(fs.values())[0].result(timeout=TIMEOUT)
    entries = describe(a, ConfigResource(ResourceType.BROKER, "1"))
    assert entries["message.max.bytes"].value == "2000000"
    assert entries["message.max.bytes"].source == ConfigSource.DYNAMIC_BROKER_CONFIG.value


def test_cf_lowered_retention_ms_deletes_old_segments_of_a_live_topic(broker_factory):
    broker = broker_factory({"log.retention.check.interval.ms": "200"})
    a = cf.admin(broker.bootstrap)
    topic = topic_name("cf-retention")
    create_with_configs(broker.bootstrap, topic, {"segment.bytes": "4096"})
    # Five separate produce calls (each flushed) make at least five batches, so the segments
    # roll at 4096 bytes whatever librdkafka's batching does within one call.
    rounds, per_round = 5, 200
    n = rounds * per_round
    for i in range(rounds):
        cf.produce(broker.bootstrap, topic, make_records(per_round, "ret", seed=i), partition=0)
    c = cf.consumer(broker.bootstrap)
    try:
        tp = TopicPartition(topic, 0)
        assert c.get_watermark_offsets(tp, timeout=10) == (0, n)
        time.sleep(0.5)
        assert c.get_watermark_offsets(tp, timeout=10)[0] == 0, "deleted before retention changed"
        incremental(
            a,
            ConfigResource(
                ResourceType.TOPIC,
                topic,
                incremental_configs=[
                    ConfigEntry("retention.ms", "100", incremental_operation=AlterConfigOpType.SET)
                ],
            ),
        )
        deadline = time.monotonic() + 15
        while True:
            low, high = c.get_watermark_offsets(tp, timeout=10, cached=False)
            if low > 0:
                break
            assert time.monotonic() < deadline, "retention.ms=100 deleted nothing within 15 s"
            time.sleep(0.2)
        # Only whole closed segments go: the active one (the newest records) stays.
        assert 0 < low < high == n
    finally:
        c.close()


def test_kafka_python_describe_and_alter_configs(broker):
    from kafka.admin import ConfigResource as KpResource
    from kafka.admin import ConfigResourceType, KafkaAdminClient

    topic = topic_name("kp-configs")
    cf.create_topic(broker.bootstrap, topic, partitions=1)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=20000)
    try:
        # Legacy AlterConfigs: the client fills in the other modified keys itself.
        result = admin.alter_configs(
            [KpResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": "2000"})],
            incremental=False,
        )
        assert result == {"topic": {topic: "OK"}}, result
        # IncrementalAlterConfigs (the default on brokers that advertise it).
        result = admin.alter_configs(
            [KpResource(ConfigResourceType.TOPIC, topic, configs={"retention.bytes": "8192"})]
        )
        assert result == {"topic": {topic: "OK"}}, result
        described = admin.describe_configs(
            [KpResource(ConfigResourceType.TOPIC, topic)], include_synonyms=True
        )
        modified = described["topic"][topic]
        assert {k: v["value"] for k, v in modified.items()} == {
            "retention.ms": "2000",
            "retention.bytes": "8192",
        }
        assert modified["retention.ms"]["config_source"] == "DYNAMIC_TOPIC_CONFIG"

        everything = admin.describe_configs(
            [KpResource(ConfigResourceType.BROKER, "1")], config_filter="all"
        )["broker"]["1"]
        assert everything["log.retention.hours"]["value"] == "168"
        assert everything["log.retention.hours"]["read_only"]
        result = admin.alter_configs(
            [KpResource(ConfigResourceType.BROKER, "1", configs={"log.cleaner.threads": "2"})]
        )
        assert result == {"broker": {"1": "OK"}}, result
        dynamic = admin.describe_configs(
            [KpResource(ConfigResourceType.BROKER, "1", configs=["log.cleaner.threads"])]
        )["broker"]["1"]
        assert dynamic["log.cleaner.threads"]["value"] == "2"
        assert dynamic["log.cleaner.threads"]["config_source"] == "DYNAMIC_BROKER_CONFIG"

        # Kafka 4.0 group configs on a GROUP resource (type 32).
        group = topic_name("kp-group")
        result = admin.alter_configs(
            [KpResource(ConfigResourceType.GROUP, group, configs={"consumer.heartbeat.interval.ms": "6000"})]
        )
        assert result == {"group": {group: "OK"}}, result
        described = admin.describe_configs(
            [KpResource(ConfigResourceType.GROUP, group)], config_filter="all"
        )["group"][group]
        heartbeat = described["consumer.heartbeat.interval.ms"]
        assert (heartbeat["value"], heartbeat["config_source"]) == ("6000", "DYNAMIC_GROUP_CONFIG")
        session = described["consumer.session.timeout.ms"]
        assert (session["value"], session["config_source"]) == ("45000", "DEFAULT_CONFIG")
    finally:
        admin.close()


def test_dynamic_configs_survive_a_restart(broker):
    a = cf.admin(broker.bootstrap)
    topic = topic_name("cf-restart")
    cf.create_topic(broker.bootstrap, topic, partitions=1)
    incremental(
        a,
        ConfigResource(
            ResourceType.TOPIC,
            topic,
            incremental_configs=[
                ConfigEntry("max.message.bytes", "100", incremental_operation=AlterConfigOpType.SET)
            ],
        ),
    )
    incremental(
        a,
        ConfigResource(
            ResourceType.BROKER,
            "1",
            incremental_configs=[
                ConfigEntry("log.segment.bytes", "2097152", incremental_operation=AlterConfigOpType.SET)
            ],
        ),
    )
    broker.restart()
    a = cf.admin(broker.bootstrap)
    entries = describe(a, ConfigResource(ResourceType.TOPIC, topic))
    assert entries["max.message.bytes"].value == "100"
    assert entries["segment.bytes"].value == "2097152"
    assert entries["segment.bytes"].source == ConfigSource.DYNAMIC_BROKER_CONFIG.value
    # The lowered topic limit still holds on the reopened partition.
    with pytest.raises(AssertionError) as e:
        cf.produce(broker.bootstrap, topic, [(b"k", b"x" * 500, [])], partition=0)
    assert "MSG_SIZE_TOO_LARGE" in str(e.value), str(e.value)


def test_cf_group_configs_kip_848(broker):
    """Kafka 4.0's group configs through confluent-kafka's AdminClient: a GROUP resource takes
    consumer.session.timeout.ms within the broker's bounds (INVALID_CONFIG outside them), is
    described with the group's source and the broker default for the rest, and DELETE restores
    the default."""
    a = cf.admin(broker.bootstrap)
    group = topic_name("cf-group-configs")
    resource = ConfigResource(ResourceType.GROUP, group, incremental_configs=[
        ConfigEntry("consumer.session.timeout.ms", "50000",
                    incremental_operation=AlterConfigOpType.SET)])
    incremental(a, resource)
    entries = describe(a, ConfigResource(ResourceType.GROUP, group))
    assert set(entries) == {"consumer.session.timeout.ms", "consumer.heartbeat.interval.ms"}
    session = entries["consumer.session.timeout.ms"]
    assert (session.value, session.source) == ("50000", ConfigSource.GROUP_CONFIG.value)
    heartbeat = entries["consumer.heartbeat.interval.ms"]
    assert (heartbeat.value, heartbeat.source) == ("5000", ConfigSource.DEFAULT_CONFIG.value)

    too_long = ConfigResource(ResourceType.GROUP, group, incremental_configs=[
        ConfigEntry("consumer.session.timeout.ms", "600000",
                    incremental_operation=AlterConfigOpType.SET)])
    with pytest.raises(KafkaException) as e:
        incremental(a, too_long)
    assert e.value.args[0].name() == "INVALID_CONFIG"

    incremental(a, ConfigResource(ResourceType.GROUP, group, incremental_configs=[
        ConfigEntry("consumer.session.timeout.ms", None,
                    incremental_operation=AlterConfigOpType.DELETE)]))
    session = describe(a, ConfigResource(ResourceType.GROUP, group))["consumer.session.timeout.ms"]
    assert (session.value, session.source) == ("45000", ConfigSource.DEFAULT_CONFIG.value)
