"""confluent-kafka (librdkafka) helpers shared by the tests: create topics, produce, consume."""

import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from workload import PARTITIONS, norm_headers


def admin(bootstrap):
    return AdminClient({"bootstrap.servers": bootstrap})


def create_topic(bootstrap, topic, partitions=PARTITIONS, timeout_s=30):
    a = admin(bootstrap)  # must outlive the futures: destroying it fails them with _DESTROY
    fs = a.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1)],
        operation_timeout=timeout_s,
        request_timeout=timeout_s,
    )
    fs[topic].result(timeout=timeout_s)
    wait_for_partitions(bootstrap, topic, partitions)


def wait_for_partitions(bootstrap, topic, partitions, timeout_s=30):
    a = admin(bootstrap)
    deadline = time.monotonic() + timeout_s
    while True:
        md = a.list_topics(topic=topic, timeout=10)
        t = md.topics.get(topic)
        if t is not None and t.error is None and len(t.partitions) == partitions:
            if all(p.leader >= 0 for p in t.partitions.values()):
                return md
        if time.monotonic() > deadline:
            raise AssertionError(f"topic {topic} not ready with {partitions} partitions: {t and t.partitions}")
        time.sleep(0.2)


def producer_conf(bootstrap, codec="none", **extra):
    conf = {
        "bootstrap.servers": bootstrap,
        "compression.type": codec,
        "linger.ms": 5,
        "acks": "all",
        "message.timeout.ms": 60000,
    }
    conf.update(extra)
    return conf


def produce(bootstrap, topic, records, codec="none", partition=None, timestamps=None, **extra):
    """Produces records (key, value, headers) and waits for every delivery report.

    Returns [(partition, offset)] per record, in produce order; raises on any delivery error."""
    p = Producer(producer_conf(bootstrap, codec, **extra))
    results = [None] * len(records)
    errors = []

    def on_delivery(i):
        def cb(err, msg):
            if err is not None:
                errors.append((i, err))
            else:
                results[i] = (msg.partition(), msg.offset())

        return cb

    for i, (k, v, h) in enumerate(records):
        kwargs = {"key": k, "value": v, "headers": h, "on_delivery": on_delivery(i)}
        if partition is not None:
            kwargs["partition"] = partition
        if timestamps is not None:
            kwargs["timestamp"] = timestamps[i]
        while True:
            try:
                p.produce(topic, **kwargs)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    remaining = p.flush(120)
    assert remaining == 0, f"{remaining} messages not delivered within 120 s"
    assert not errors, f"{len(errors)} delivery errors, first: {errors[:3]}"
    return results


def expected_by_partition(records, results):
    """Log order per partition from delivery reports; asserts offsets follow produce order."""
    per = {}
    for rec, (part, off) in zip(records, results):
        per.setdefault(part, []).append((off, rec))
    out = {}
    for part, lst in per.items():
        offs = [o for o, _ in lst]
        assert offs == sorted(offs), f"partition {part}: offsets not in produce order"
        assert len(set(offs)) == len(offs), f"partition {part}: duplicate offsets in acks"
        out[part] = [r for _, r in lst]
    return out


def consumer(bootstrap, **extra):
    conf = {
        "bootstrap.servers": bootstrap,
        # confluent-kafka's Python Consumer refuses to start without a group.id; with assign()
        # and no commits the group is never joined (no JoinGroup/SyncGroup/OffsetCommit sent).
        "group.id": "compat-assign-only",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": True,
    }
    conf.update(extra)
    return Consumer(conf)


def consume_all(bootstrap, topic, partitions=PARTITIONS, expected_total=None, timeout_s=120, **extra):
    """assign() every partition from the beginning; read until EOF on all of them (and at least
    expected_total records). Returns {partition: [(key, value, headers)]} in log order, plus
    {partition: [offset]}."""
    c = consumer(bootstrap, **extra)
    try:
        c.assign([TopicPartition(topic, p, -2) for p in range(partitions)])  # -2: OFFSET_BEGINNING
        out = {}
        offsets = {}
        eof = set()
        total = 0
        deadline = time.monotonic() + timeout_s
        while True:
            if len(eof) == partitions and (expected_total is None or total >= expected_total):
                break
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"consume timed out after {timeout_s}s: {total} records, eof on {sorted(eof)}"
                )
            for m in c.consume(1000, timeout=1.0):
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        eof.add(m.partition())
                        continue
                    if err.fatal() or (not err.retriable() and err.code() not in _IGNORED_CONSUMER_ERRORS):
                        raise KafkaException(err)
                    continue
                eof.discard(m.partition())
                out.setdefault(m.partition(), []).append((m.key(), m.value(), norm_headers(m.headers())))
                offsets.setdefault(m.partition(), []).append(m.offset())
                total += 1
        for p, offs in offsets.items():
            assert offs == sorted(offs) and len(set(offs)) == len(offs), f"partition {p}: offsets out of order"
        return out, offsets
    finally:
        c.close()


# Errors a consumer with a group.id but no group use can report from its idle group machinery;
# they do not concern fetching from assigned partitions.
_IGNORED_CONSUMER_ERRORS = {
    KafkaError._TRANSPORT,
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.NOT_COORDINATOR,
    KafkaError._UNSUPPORTED_FEATURE,
}
