"""Idempotent producers (KIP-98) with real clients: confluent-kafka with enable.idempotence=true,
kafka-python with its defaults (idempotence on) and aiokafka with enable_idempotence=True keep
producing while the broker is killed
(-9) and restarted; their retries of batches whose responses were lost must leave every record
in the log exactly once and in send order per partition."""

import asyncio
import threading
import time

from confluent_kafka import Producer
from kafka import KafkaProducer

import cf
from workload import PARTITIONS, count, topic_name


def check_exactly_once_in_order(consumed, n, tag):
    """Every value `tag:i` for i < n appears once, and per partition i only increases."""
    seen = {}
    for p, records in consumed.items():
        last = -1
        for _, value, _ in records:
            i = int(value.decode().split(":")[1])
            assert value.decode().startswith(f"{tag}:"), value
            assert i not in seen, f"record {i} twice (partitions {seen[i]} and {p}): a duplicate"
            assert i > last, f"partition {p}: record {i} after {last}: out of order"
            seen[i] = p
            last = i
    missing = sorted(set(range(n)) - set(seen))
    assert not missing, f"{len(missing)} records missing, first {missing[:10]}"


def produce_through_restarts(b, send, flush, n, restarts=2):
    """Calls send(i) for i < n from a thread while the broker is killed and started again
    `restarts` times; then flush()."""
    sent = [0]

    def run():
        for i in range(n):
            send(i)
            sent[0] = i + 1
        flush()

    t = threading.Thread(target=run)
    t.start()
    for r in range(restarts):
        target = n * (r + 1) // (restarts + 2)
        deadline = time.monotonic() + 60
        while sent[0] < target:
            assert time.monotonic() < deadline, f"only {sent[0]} sent in 60 s"
            time.sleep(0.01)
        b.kill()  # SIGKILL: responses of requests in flight are lost, the page cache is not
        time.sleep(0.3)
        b.start()
    t.join(180)
    assert not t.is_alive(), "producer did not finish"


def test_confluent_idempotent_producer_through_kill_9_has_no_duplicates(broker):
    topic = topic_name("idem-cf")
    tag = "cf"
    cf.create_topic(broker.bootstrap, topic)
    n = count(30_000)
    p = Producer({
        "bootstrap.servers": broker.bootstrap,
        "enable.idempotence": True,
        "linger.ms": 2,
        "message.timeout.ms": 120000,
    })
    errors = []

    def on_delivery(err, _msg):
        if err is not None:
            errors.append(err)

    def send(i):
        while True:
            try:
                p.produce(topic, key=f"key-{i % 1000:04d}".encode(), value=f"{tag}:{i}:".encode() + b"x" * (i % 50),
                          on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.01)
        p.poll(0)

    produce_through_restarts(broker, send, lambda: p.flush(150), n)
    assert not errors, f"delivery errors: {errors[:5]}"
    assert len(p) == 0, "undelivered messages"
    cf.wait_for_partitions(broker.bootstrap, topic, PARTITIONS)
    consumed, _ = cf.consume_all(broker.bootstrap, topic, expected_total=n)
    check_exactly_once_in_order(consumed, n, tag)


def test_kafka_python_default_producer_through_kill_9_has_no_duplicates(broker):
    topic = topic_name("idem-kp")
    tag = "kp"
    cf.create_topic(broker.bootstrap, topic)
    n = count(10_000)
    # Defaults: enable_idempotence=True, acks=all (kafka-python 3.x).
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=2, request_timeout_ms=10000,
                      delivery_timeout_ms=120000)
    futures = []

    def send(i):
        futures.append(p.send(topic, key=f"key-{i % 1000:04d}".encode(),
                              value=f"{tag}:{i}:".encode() + b"y" * (i % 50)))

    try:
        produce_through_restarts(broker, send, lambda: p.flush(timeout=150), n)
        failed = [f.exception for f in futures if f.failed()]
        assert not failed, f"{len(failed)} sends failed: {failed[:3]}"
        assert all(f.succeeded() for f in futures)
    finally:
        p.close(timeout=10)
    cf.wait_for_partitions(broker.bootstrap, topic, PARTITIONS)
    consumed, _ = cf.consume_all(broker.bootstrap, topic, expected_total=n)
    check_exactly_once_in_order(consumed, n, tag)


def test_aiokafka_idempotent_producer_through_kill_9_has_no_duplicates(broker):
    from aiokafka import AIOKafkaProducer

    topic = topic_name("idem-aio")
    tag = "aio"
    cf.create_topic(broker.bootstrap, topic)
    n = count(10_000)
    # One event loop, owned by the sending thread: send() and flush() both run there.
    state = {}
    futures = []

    def loop():
        if "loop" not in state:
            state["loop"] = asyncio.new_event_loop()

            async def start():
                p = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=True,
                                     linger_ms=2, request_timeout_ms=30000)
                await p.start()
                return p

            state["producer"] = state["loop"].run_until_complete(start())
        return state["loop"]

    def send(i):
        delivery = loop().run_until_complete(state["producer"].send(
            topic, key=f"key-{i % 1000:04d}".encode(), value=f"{tag}:{i}:".encode() + b"z" * (i % 50)))
        futures.append(delivery)

    def flush():
        async def finish():
            await state["producer"].flush()
            results = await asyncio.gather(*futures, return_exceptions=True)
            await state["producer"].stop()
            return results

        state["results"] = loop().run_until_complete(finish())
        loop().close()

    produce_through_restarts(broker, send, flush, n)
    failed = [r for r in state["results"] if isinstance(r, BaseException)]
    assert not failed, f"{len(failed)} sends failed: {failed[:3]}"
    cf.wait_for_partitions(broker.bootstrap, topic, PARTITIONS)
    consumed, _ = cf.consume_all(broker.bootstrap, topic, expected_total=n)
    check_exactly_once_in_order(consumed, n, tag)
