"""Restarts, crashes (kill -9) and torn segment tails, checked with confluent-kafka."""

import os
import random
import threading
import time

from confluent_kafka import Producer

import cf
from workload import PARTITIONS, check_partitions, count, make_records, topic_name


def test_clean_restart_keeps_topics_and_records(broker):
    topic = topic_name("restart")
    cf.create_topic(broker.bootstrap, topic)
    n = count(50_000)
    records = make_records(n, "restart")
    expected = cf.expected_by_partition(records, cf.produce(broker.bootstrap, topic, records, "lz4"))

    broker.restart()

    cf.wait_for_partitions(broker.bootstrap, topic, PARTITIONS)
    consumed, _ = cf.consume_all(broker.bootstrap, topic, expected_total=n)
    check_partitions(expected, consumed)
    # New records continue the offsets where they stopped.
    more = make_records(100, "restart-more", seed=1)
    results = cf.produce(broker.bootstrap, topic, more, partition=0)
    assert [o for _, o in results] == list(range(len(expected[0]), len(expected[0]) + 100))


def test_kill_9_during_produce_keeps_every_acknowledged_record(broker_factory):
    b = broker_factory({"log.flush.interval.messages": "1"})
    topic = topic_name("kill9")
    cf.create_topic(b.bootstrap, topic)
    acked = {}  # (partition, offset) -> record
    lock = threading.Lock()
    stop = threading.Event()
    produced = [0]

    def run():
        p = Producer(cf.producer_conf(b.bootstrap, "none", **{
            "linger.ms": 1, "acks": "all", "message.timeout.ms": 5000, "retries": 0,
        }))
        i = 0
        while not stop.is_set():
            rec = (f"k{i % 97}".encode(), f"kill9-{i}".encode() + b"z" * (i % 300), [("seq", str(i).encode())])

            def cb(err, msg, rec=rec):
                if err is None:
                    with lock:
                        acked[(msg.partition(), msg.offset())] = rec

            try:
                p.produce(topic, key=rec[0], value=rec[1], headers=rec[2], on_delivery=cb)
                i += 1
            except BufferError:
                pass
            p.poll(0.0005 if i % 50 else 0.001)
        p.poll(0)
        p.purge()
        p.flush(10)
        produced[0] = i

    t = threading.Thread(target=run)
    t.start()
    deadline = time.monotonic() + 60
    while len(acked) < count(20_000):
        assert time.monotonic() < deadline, f"only {len(acked)} acks in 60 s"
        time.sleep(0.05)
    b.kill()  # SIGKILL mid-stream: records in flight may be lost, acknowledged ones may not
    stop.set()
    t.join(30)
    assert not t.is_alive()
    with lock:
        snapshot = dict(acked)

    b.start()
    cf.wait_for_partitions(b.bootstrap, topic, PARTITIONS)
    consumed, offsets = cf.consume_all(b.bootstrap, topic)
    on_disk = {}
    for p, recs in consumed.items():
        for off, rec in zip(offsets[p], recs):
            on_disk[(p, off)] = rec
    missing = [k for k in snapshot if k not in on_disk]
    assert not missing, f"{len(missing)} of {len(snapshot)} acknowledged records lost, e.g. {sorted(missing)[:5]}"
    wrong = [k for k, rec in snapshot.items() if on_disk[k] != rec]
    assert not wrong, f"{len(wrong)} acknowledged records differ after restart, e.g. {wrong[:3]}"
    print(f"{len(snapshot)} acked of {produced[0]} produced; {len(on_disk)} on disk after kill -9")


def _tear_and_check(broker, tail: bytes, tag):
    topic = topic_name(f"torn-{tag}")
    cf.create_topic(broker.bootstrap, topic, partitions=2)
    n = count(3000)
    records = make_records(n, f"torn-{tag}")
    results = cf.produce(broker.bootstrap, topic, records, "none", partition=0)
    assert [o for _, o in results] == list(range(n))
    broker.stop()

    seg = broker.partition_dir(topic, 0) / "00000000000000000000.log"
    assert seg.is_file(), f"expected segment file {seg} (Kafka layout <log.dirs>/<topic>-<p>/<base offset>.log)"
    size = seg.stat().st_size
    with open(seg, "ab") as f:
        f.write(tail)

    broker.start()
    cf.wait_for_partitions(broker.bootstrap, topic, 2)
    consumed, offsets = cf.consume_all(broker.bootstrap, topic, partitions=2, expected_total=n)
    check_partitions({0: [(k, v, h) for k, v, h in records]}, {p: r for p, r in consumed.items() if r})
    assert offsets[0] == list(range(n))
    # Recovery truncated the garbage: the log accepts appends again at offset n.
    more = make_records(10, f"torn-{tag}-after", seed=2)
    assert [o for _, o in cf.produce(broker.bootstrap, topic, more, partition=0)] == list(range(n, n + 10))
    consumed, _ = cf.consume_all(broker.bootstrap, topic, partitions=2, expected_total=n + 10)
    assert consumed[0][-10:] == more
    print(f"segment was {size} bytes; appended {len(tail)} garbage bytes; recovered")


def test_torn_tail_of_random_garbage_is_truncated_at_restart(broker):
    _tear_and_check(broker, random.Random(1).randbytes(777), "random")


def test_torn_tail_of_partial_batch_is_truncated_at_restart(broker):
    # A batch header that promises 4000 bytes, then stops: what a crash mid-write leaves.
    base_offset = (10**6).to_bytes(8, "big")
    batch_length = (4000).to_bytes(4, "big")
    tail = base_offset + batch_length + b"\x00\x00\x00\x00" + b"\x02" + os.urandom(40)
    _tear_and_check(broker, tail, "partial")


def test_torn_tail_of_zeros_is_truncated_at_restart(broker):
    # Preallocated-but-unwritten space reads as zeros.
    _tear_and_check(broker, b"\x00" * 4096, "zeros")
