"""aiokafka (asyncio client, its own protocol code) against Sluice."""

import asyncio
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from workload import CODECS, PARTITIONS, check_partitions, count, make_records, norm_headers, topic_name


async def create_topic(bootstrap, topic, partitions=PARTITIONS):
    a = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=20000)
    await a.start()
    try:
        resp = await a.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
        errs = [t for t in resp.topic_errors if t[1] != 0]
        assert not errs, f"create_topics errors: {errs}"
        deadline = time.monotonic() + 30
        while True:
            topics = await a.describe_topics([topic])
            if topics and topics[0]["error_code"] == 0 and len(topics[0]["partitions"]) == partitions:
                return
            assert time.monotonic() < deadline, f"topic not ready: {topics}"
            await asyncio.sleep(0.2)
    finally:
        await a.close()


async def produce(bootstrap, topic, records, codec, partition=None, timestamps=None):
    p = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        compression_type=None if codec == "none" else codec,
        linger_ms=5,
        request_timeout_ms=30000,
    )
    await p.start()
    try:
        futs = []
        for i, (k, v, h) in enumerate(records):
            futs.append(await p.send(
                topic, key=k, value=v, headers=h, partition=partition,
                timestamp_ms=None if timestamps is None else timestamps[i],
            ))
        mds = await asyncio.gather(*futs)
        return [(md.partition, md.offset) for md in mds]
    finally:
        await p.stop()


async def consume_all(bootstrap, topic, expected_total, partitions=PARTITIONS, timeout_s=120):
    c = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,  # no group: assign() only
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await c.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        out = {}
        total = 0
        deadline = time.monotonic() + timeout_s
        while total < expected_total:
            assert time.monotonic() < deadline, f"consumed only {total}/{expected_total} in {timeout_s}s"
            batch = await c.getmany(timeout_ms=1000, max_records=5000)
            for tp, msgs in batch.items():
                for m in msgs:
                    out.setdefault(tp.partition, []).append((m.offset, (m.key, m.value, norm_headers(m.headers))))
                    total += 1
        end = await c.end_offsets(tps)
        assert sum(end.values()) == expected_total, f"end offsets {end} != {expected_total}"
        result = {}
        for p, lst in out.items():
            offs = [o for o, _ in lst]
            assert offs == sorted(offs), f"partition {p}: offsets out of order"
            result[p] = [r for _, r in lst]
        return result
    finally:
        await c.stop()


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
    async def run():
        topic = topic_name(f"aio-{codec}")
        await create_topic(broker.bootstrap, topic)
        n = count(20_000)
        records = make_records(n, f"aio-{codec}")
        results = await produce(broker.bootstrap, topic, records, codec)
        expected = expected_by_partition(records, results)
        assert len(expected) == PARTITIONS
        consumed = await consume_all(broker.bootstrap, topic, n)
        check_partitions(expected, consumed)

    asyncio.run(run())


def test_offsets_for_times_and_delete(broker):
    async def run():
        topic = topic_name("aio-times")
        await create_topic(broker.bootstrap, topic, partitions=1)
        base = int(time.time() * 1000) - 3_600_000
        n = 300
        records = make_records(n, "aio-times")
        results = await produce(broker.bootstrap, topic, records, "none", partition=0,
                                timestamps=[base + 10 * i for i in range(n)])
        assert [o for _, o in results] == list(range(n))
        c = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None)
        await c.start()
        try:
            tp = TopicPartition(topic, 0)
            r = await c.offsets_for_times({tp: base + 10 * 200})
            assert r[tp].offset == 200 and r[tp].timestamp == base + 2000
            r = await c.offsets_for_times({tp: base + 10 * n})
            assert r[tp] is None
            assert await c.beginning_offsets([tp]) == {tp: 0}
            assert await c.end_offsets([tp]) == {tp: n}
        finally:
            await c.stop()
        a = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
        await a.start()
        try:
            resp = await a.delete_topics([topic])
            assert all(e == 0 for _, e, *rest in resp.topic_error_codes), resp
            deadline = time.monotonic() + 15
            while topic in await a.list_topics():
                assert time.monotonic() < deadline, "deleted topic still listed"
                await asyncio.sleep(0.2)
        finally:
            await a.close()

    asyncio.run(run())


def test_aiokafka_admin_partitions_records_and_configs(broker):
    """aiokafka's admin client: describe cluster, CreatePartitions, DeleteRecords (the low
    watermark moves and consumers start there), DescribeConfigs of a topic and the broker, and
    legacy AlterConfigs whose value DescribeConfigs then reports as the topic's own."""
    from aiokafka.admin import NewPartitions, RecordsToDelete
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    topic = topic_name("aio-admin")

    async def run():
        await create_topic(broker.bootstrap, topic, partitions=1)
        a = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=20000)
        await a.start()
        try:
            cluster = await a.describe_cluster()
            assert [b["node_id"] for b in cluster["brokers"]] == [1], cluster
            await a.create_partitions({topic: NewPartitions(3)})
            deadline = time.monotonic() + 30
            while len((await a.describe_topics([topic]))[0]["partitions"]) != 3:
                assert time.monotonic() < deadline, "partitions not grown"
                await asyncio.sleep(0.2)
            records = make_records(10, topic)
            results = await produce(broker.bootstrap, topic, records, "none", partition=2)
            assert [o for _, o in results] == list(range(10))
            tp = TopicPartition(topic, 2)
            assert await a.delete_records({tp: RecordsToDelete(before_offset=4)}) == {tp: 4}

            described = await a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
            entries = {e[0]: e[1] for r in described for res in r.resources for e in res[4]}
            assert entries["retention.ms"] == "604800000" and entries["cleanup.policy"] == "delete"
            responses = await a.alter_configs(
                [ConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": "3600000"})]
            )
            assert all(res[0] == 0 for r in responses for res in r.resources), responses
            described = await a.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": None})]
            )
            assert [e[:2] for r in described for res in r.resources for e in res[4]] == [
                ("retention.ms", "3600000")
            ]
            described = await a.describe_configs([ConfigResource(ConfigResourceType.BROKER, "1")])
            broker_entries = {e[0]: e[1] for r in described for res in r.resources for e in res[4]}
            assert broker_entries["log.retention.hours"] == "168"
        finally:
            await a.close()
        c = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, auto_offset_reset="earliest")
        await c.start()
        try:
            c.assign([tp])
            await c.seek_to_beginning(tp)
            batch = await c.getmany(tp, timeout_ms=10000)
            assert [m.offset for m in batch.get(tp, [])][:1] == [4]
        finally:
            await c.stop()

    asyncio.run(run())
