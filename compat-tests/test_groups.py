"""Consumer groups (classic protocol) with real clients: confluent-kafka, kafka-python, aiokafka
and kcat. Each test gets its own broker; topics have 6 partitions."""

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

import cf
from workload import PARTITIONS, count, make_records, topic_name

SESSION_MS = 6000  # group.min.session.timeout.ms: detection of a dead member is quickest here


def group_name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def group_consumer(bootstrap, group, **extra):
    conf = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": SESSION_MS,
        "heartbeat.interval.ms": 500,
        "topic.metadata.refresh.interval.ms": 2000,
    }
    conf.update(extra)
    return Consumer(conf)


class Member(threading.Thread):
    """A confluent-kafka group member polling in a thread: records, assignment and callbacks."""

    def __init__(self, bootstrap, group, topic, commit=True, **extra):
        super().__init__(daemon=True)
        self.consumer = group_consumer(bootstrap, group, **extra)
        self.topic = topic
        self.commit = commit
        self.records = []  # (partition, offset, value)
        self.assignment = set()
        self.assign_events = []
        self.revoke_events = []
        self.errors = []
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.cooperative = extra.get("partition.assignment.strategy") == "cooperative-sticky"

    def on_assign(self, c, parts):
        with self.lock:
            ps = {p.partition for p in parts}
            self.assign_events.append(ps)
            if self.cooperative:
                self.assignment |= ps
                c.incremental_assign(parts)
            else:
                self.assignment = ps
                c.assign(parts)

    def on_revoke(self, c, parts):
        with self.lock:
            ps = {p.partition for p in parts}
            self.revoke_events.append(ps)
            if self.commit and self.assignment:
                try:
                    c.commit(asynchronous=False)
                except KafkaException:
                    pass
            if self.cooperative:
                self.assignment -= ps
                c.incremental_unassign(parts)
            else:
                self.assignment = set()
                c.unassign()

    def run(self):
        c = self.consumer
        c.subscribe([self.topic], on_assign=self.on_assign, on_revoke=self.on_revoke)
        while not self.stop_flag.is_set():
            msgs = c.consume(500, timeout=0.2)
            for m in msgs:
                if m.error() is not None:
                    if m.error().fatal():
                        self.errors.append(m.error())
                    continue
                with self.lock:
                    self.records.append((m.partition(), m.offset(), m.value()))
            if msgs and self.commit:
                try:
                    c.commit(asynchronous=False)
                except KafkaException as e:
                    # A commit racing a rebalance is refused (REBALANCE_IN_PROGRESS et al.);
                    # the records are re-delivered to the partition's next owner.
                    if e.args[0].code() not in (
                        KafkaError.REBALANCE_IN_PROGRESS,
                        KafkaError.ILLEGAL_GENERATION,
                        KafkaError.UNKNOWN_MEMBER_ID,
                        KafkaError._NO_OFFSET,
                        KafkaError._STATE,
                    ):
                        self.errors.append(e.args[0])

    def stop(self, close=True):
        self.stop_flag.set()
        self.join(30)
        if close:
            self.consumer.close()

    def current(self):
        with self.lock:
            return set(self.assignment)


def wait_until(pred, timeout_s=60, what="condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def partitioned(members):
    """Every partition owned by exactly one member."""
    sets = [m.current() for m in members]
    union = set().union(*sets)
    return union == set(range(PARTITIONS)) and sum(len(s) for s in sets) == PARTITIONS


def setup_topic(bootstrap, prefix, n):
    topic = topic_name(prefix)
    cf.create_topic(bootstrap, topic)
    records = make_records(n, prefix)
    cf.produce(bootstrap, topic, records)
    return topic, records


def committed(bootstrap, group, topic):
    c = group_consumer(bootstrap, group)
    try:
        parts = c.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=20)
        return {p.partition: p.offset for p in parts}
    finally:
        c.close()


def end_offsets(bootstrap, topic):
    c = group_consumer(bootstrap, group_name("probe"))
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=20)[1] for p in range(PARTITIONS)}
    finally:
        c.close()


def test_three_consumers_share_partitions_and_consume_each_record_once(broker):
    n = count(6000)
    topic, records = setup_topic(broker.bootstrap, "grp3", n)
    group = group_name("g3")
    members = [Member(broker.bootstrap, group, topic) for _ in range(3)]
    for m in members:
        m.start()
    try:
        wait_until(lambda: sum(len(m.records) for m in members) >= n, 120, "all records consumed")
        wait_until(lambda: partitioned(members), 60, "a stable assignment")
        for m in members:
            assert m.current(), "every member owns partitions"
            assert not m.errors, m.errors
        seen = [(p, o) for m in members for p, o, _ in m.records]
        # Exactly once: the group never rebalanced after consuming began in this test, so no
        # record is delivered twice; and none is missing.
        assert len(seen) == n and len(set(seen)) == n, f"{len(seen)} deliveries, {len(set(seen))} distinct of {n}"
        assert sorted(v for m in members for _, _, v in m.records) == sorted(v for _, v, _ in records)
    finally:
        for m in members:
            m.stop()
    assert committed(broker.bootstrap, group, topic) == end_offsets(broker.bootstrap, topic)


def test_member_joining_and_leaving_rebalances_the_group(broker):
    topic, _ = setup_topic(broker.bootstrap, "grpjl", count(600))
    group = group_name("gjl")
    a = Member(broker.bootstrap, group, topic)
    a.start()
    b = None
    try:
        wait_until(lambda: a.current() == set(range(PARTITIONS)), 60, "a owns everything")
        b = Member(broker.bootstrap, group, topic)
        b.start()
        wait_until(lambda: partitioned([a, b]) and a.current() and b.current(), 60, "a and b share")
        assert len(a.current()) == 3 and len(b.current()) == 3
        b.stop()
        b = None
        wait_until(lambda: a.current() == set(range(PARTITIONS)), 60, "a owns everything again")
    finally:
        a.stop()
        if b is not None:
            b.stop()


KILLED_MEMBER = textwrap.dedent(
    """
    import sys, time
    from confluent_kafka import Consumer
    c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": sys.argv[2],
                  "session.timeout.ms": int(sys.argv[4]), "heartbeat.interval.ms": 500,
                  "auto.offset.reset": "earliest"})
    def on_assign(c, parts):
        print("ASSIGNED", ",".join(str(p.partition) for p in parts), flush=True)
        c.assign(parts)
    c.subscribe([sys.argv[3]], on_assign=on_assign)
    while True:
        c.poll(0.2)
    """
)


def test_consumer_killed_with_sigkill_loses_partitions_after_session_timeout(broker):
    topic, _ = setup_topic(broker.bootstrap, "grpkill", count(600))
    group = group_name("gkill")
    a = Member(broker.bootstrap, group, topic)
    a.start()
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_MEMBER, broker.bootstrap, group, topic, str(SESSION_MS)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: len(a.current()) == 3, 60, "the subprocess takes half the partitions")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed_at = time.monotonic()
        wait_until(lambda: a.current() == set(range(PARTITIONS)), 60, "reassignment after the session timeout")
        took = time.monotonic() - killed_at
        # Not before the session timeout (no LeaveGroup was sent), and not much after it.
        assert took >= SESSION_MS / 1000 - 1.5, f"reassigned after {took:.1f}s"
        assert took <= SESSION_MS / 1000 + 15, f"reassigned only after {took:.1f}s"
    finally:
        if proc.poll() is None:
            proc.kill()
        a.stop()


@pytest.mark.parametrize("strategy", ["range", "roundrobin", "cooperative-sticky"])
def test_assignors(broker, strategy):
    topic, _ = setup_topic(broker.bootstrap, f"grp-{strategy}", count(600))
    group = group_name(strategy)
    a = Member(broker.bootstrap, group, topic, **{"partition.assignment.strategy": strategy})
    a.start()
    b = None
    try:
        wait_until(lambda: a.current() == set(range(PARTITIONS)), 60, "a owns everything")
        b = Member(broker.bootstrap, group, topic, **{"partition.assignment.strategy": strategy})
        b.start()
        wait_until(lambda: partitioned([a, b]) and a.current() and b.current(), 60, "a and b share")
        if strategy == "range":
            assert sorted(map(sorted, [a.current(), b.current()])) == [[0, 1, 2], [3, 4, 5]]
        if strategy == "cooperative-sticky":
            # KIP-429: a keeps what it can; it only ever gives partitions up, never all at
            # once, and b's partitions come in a second (incremental) round.
            assert all(len(r) < PARTITIONS for r in a.revoke_events), a.revoke_events
            assert a.current() <= set(range(PARTITIONS)) and len(a.current()) == 3
    finally:
        a.stop()
        if b is not None:
            b.stop()


def test_static_member_restart_keeps_assignment_without_rebalance(broker):
    topic, _ = setup_topic(broker.bootstrap, "grpstatic", count(600))
    group = group_name("gstatic")
    extra = {"session.timeout.ms": 30000}
    a = Member(broker.bootstrap, group, topic, **{"group.instance.id": "a", **extra})
    b = Member(broker.bootstrap, group, topic, **{"group.instance.id": "b", **extra})
    a.start()
    b.start()
    a2 = None
    try:
        wait_until(lambda: partitioned([a, b]) and a.current() and b.current(), 60, "a and b share")
        a_parts = a.current()
        revokes_b = len(b.revoke_events)
        assigns_b = len(b.assign_events)
        a.stop()  # a static member's close sends no LeaveGroup
        a2 = Member(broker.bootstrap, group, topic, **{"group.instance.id": "a", **extra})
        a2.start()
        wait_until(lambda: a2.current() == a_parts, 60, "a's restart gets a's partitions back")
        time.sleep(2)
        assert len(b.revoke_events) == revokes_b and len(b.assign_events) == assigns_b, "b was not rebalanced"
    finally:
        for m in (a2, b):
            if m is not None:
                m.stop()


def test_offsets_survive_a_broker_restart_and_consumers_resume_there(broker):
    n = count(1200)
    topic, _ = setup_topic(broker.bootstrap, "grprestart", n)
    group = group_name("grestart")
    c = group_consumer(broker.bootstrap, group)
    c.subscribe([topic])
    got = 0
    deadline = time.monotonic() + 60
    while got < n // 2 and time.monotonic() < deadline:
        for m in c.consume(100, timeout=0.5):
            if m.error() is None:
                got += 1
    c.commit(asynchronous=False)
    before = {p.partition: p.offset for p in c.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=20)}
    # Partition 0 may have had nothing consumed yet (committed -1001, which librdkafka refuses
    # to send); commit a real offset on it so metadata and leader epoch get a round trip.
    before[0] = max(before[0], 0)
    c.commit(offsets=[TopicPartition(topic, 0, before[0], metadata="note-0", leader_epoch=0)], asynchronous=False)
    c.close()
    broker.restart()
    after = committed(broker.bootstrap, group, topic)
    assert after == before
    c = group_consumer(broker.bootstrap, group)
    try:
        md = c.committed([TopicPartition(topic, 0)], timeout=20)[0]
        assert md.metadata == "note-0" and md.leader_epoch == 0
        c.subscribe([topic])
        first = {}
        rest = 0
        deadline = time.monotonic() + 60
        while rest < n - sum(max(o, 0) for o in before.values()) and time.monotonic() < deadline:
            for m in c.consume(100, timeout=0.5):
                if m.error() is None:
                    first.setdefault(m.partition(), m.offset())
                    rest += 1
        for p, o in first.items():
            assert o == max(before[p], 0), f"partition {p} resumed at {o}, committed {before[p]}"
        assert rest == n - sum(max(o, 0) for o in before.values())
    finally:
        c.close()


def test_admin_lists_describes_and_deletes_groups(broker):
    topic, _ = setup_topic(broker.bootstrap, "grpadmin", count(300))
    group = group_name("gadmin")
    a = Member(broker.bootstrap, group, topic)
    a.start()
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    try:
        wait_until(lambda: a.current() == set(range(PARTITIONS)) and a.records, 60, "a consumes")
        listed = admin.list_consumer_groups(request_timeout=20).result()
        ids = {g.group_id: g for g in listed.valid}
        assert group in ids and str(ids[group].state).endswith("STABLE"), ids
        desc = admin.describe_consumer_groups([group], request_timeout=20)[group].result()
        assert str(desc.state).endswith("STABLE")
        assert len(desc.members) == 1
        assert {tp.partition for tp in desc.members[0].assignment.topic_partitions} == set(range(PARTITIONS))
        assert desc.partition_assignor == "range" or desc.partition_assignor
        f = admin.delete_consumer_groups([group], request_timeout=20)[group]
        with pytest.raises(KafkaException) as e:
            f.result()
        assert e.value.args[0].code() == KafkaError.NON_EMPTY_GROUP
    finally:
        a.stop()
    admin.delete_consumer_groups([group], request_timeout=20)[group].result()
    listed = admin.list_consumer_groups(request_timeout=20).result()
    assert group not in {g.group_id for g in listed.valid}


def test_admin_alters_offsets_of_an_empty_group(broker):
    from confluent_kafka import ConsumerGroupTopicPartitions

    topic, _ = setup_topic(broker.bootstrap, "grpalter", count(300))
    group = group_name("galter")
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    req = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p, 5) for p in range(PARTITIONS)])
    admin.alter_consumer_group_offsets([req], request_timeout=20)[group].result()
    got = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)], request_timeout=20)[group].result()
    assert {tp.partition: tp.offset for tp in got.topic_partitions} == {p: 5 for p in range(PARTITIONS)}


def test_produce_to_consumer_offsets_is_refused(broker):
    topic, _ = setup_topic(broker.bootstrap, "grpint", 10)
    group = group_name("gint")
    c = group_consumer(broker.bootstrap, group)
    c.commit(offsets=[TopicPartition(topic, 0, 1)], asynchronous=False)
    c.close()
    md = cf.admin(broker.bootstrap).list_topics(timeout=10)
    assert "__consumer_offsets" in md.topics
    with pytest.raises(AssertionError):
        cf.produce(broker.bootstrap, "__consumer_offsets", [(b"k", b"v", [])], **{"message.timeout.ms": 5000})


def test_kafka_python_group_consumer_subscribes_and_commits(broker):
    from kafka import KafkaConsumer
    from kafka.admin import KafkaAdminClient
    from kafka.structs import OffsetAndMetadata
    from kafka.structs import TopicPartition as KTP

    n = count(600)
    topic, _ = setup_topic(broker.bootstrap, "grpkp", n)
    group = group_name("gkp")
    c = KafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=SESSION_MS,
        heartbeat_interval_ms=500,
    )
    try:
        got = 0
        deadline = time.monotonic() + 60
        while got < n and time.monotonic() < deadline:
            for recs in c.poll(timeout_ms=500).values():
                got += len(recs)
        assert got == n
        c.commit()
        assert len(c.assignment()) == PARTITIONS
        ends = end_offsets(broker.bootstrap, topic)
        for p in range(PARTITIONS):
            assert c.committed(KTP(topic, p)) == ends[p]
        # kafka-python's admin client on the live group: listed, Stable with one member.
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=20000)
        assert group in [g["group_id"] for g in admin.list_groups()]
        described = admin.describe_groups([group])[group]
        assert (described["group_state"], len(described["members"])) == ("Stable", 1), described
    finally:
        c.close()
    try:
        # Empty now: its offsets are listed, altered (OffsetCommit from the admin client), and
        # the group is deleted with them.
        offsets = admin.list_group_offsets({group: None})[group]
        assert {tp.partition: m.offset for tp, m in offsets.items() if tp.topic == topic} == ends
        errors = admin.alter_group_offsets(group, {KTP(topic, 0): OffsetAndMetadata(1, "", -1)})
        assert [e.__name__ for e in errors.values()] == ["NoError"], errors
        assert admin.list_group_offsets({group: [KTP(topic, 0)]})[group][KTP(topic, 0)].offset == 1
        assert admin.delete_groups([group]) == {group: "OK"}
        assert group not in [g["group_id"] for g in admin.list_groups()]
    finally:
        admin.close()


def test_aiokafka_group_consumer_subscribes_and_commits(broker):
    from aiokafka import AIOKafkaConsumer
    from aiokafka.admin import AIOKafkaAdminClient

    n = count(600)
    topic, _ = setup_topic(broker.bootstrap, "grpaio", n)
    group = group_name("gaio")

    async def run():
        c = AIOKafkaConsumer(
            topic,
            bootstrap_servers=broker.bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=SESSION_MS,
            heartbeat_interval_ms=500,
        )
        await c.start()
        try:
            got = 0
            deadline = time.monotonic() + 60
            while got < n and time.monotonic() < deadline:
                for recs in (await c.getmany(timeout_ms=500)).values():
                    got += len(recs)
            assert got == n
            await c.commit()
            assert len(c.assignment()) == PARTITIONS
            admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=20000)
            await admin.start()
            try:
                # The admin client's view of the live group: listed, Stable with one member,
                # and the commits just made.
                assert group in [g[0] for g in await admin.list_consumer_groups()]
                described = await admin.describe_consumer_groups([group])
                groups = [g for r in described for g in r.groups]
                assert [(g[1], g[2], len(g[5])) for g in groups] == [(group, "Stable", 1)], groups
                offsets = await admin.list_consumer_group_offsets(group)
                return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}
            finally:
                await admin.close()
        finally:
            await c.stop()

    admin_offsets = asyncio.run(run())
    assert committed(broker.bootstrap, group, topic) == end_offsets(broker.bootstrap, topic)
    assert admin_offsets == committed(broker.bootstrap, group, topic)


KCAT = shutil.which("kcat") or shutil.which("kafkacat")


def test_kcat_balanced_consumer(broker):
    n = count(600)
    topic, _ = setup_topic(broker.bootstrap, "grpkcat", n)
    group = group_name("gkcat")
    r = subprocess.run(
        [KCAT, "-b", broker.bootstrap, "-G", group, "-o", "beginning", "-c", str(n), "-q",
         "-f", "%p %o\n", "-X", f"session.timeout.ms={SESSION_MS}", topic],
        capture_output=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-2000:]
    rows = {tuple(map(int, line.split())) for line in r.stdout.decode().splitlines() if line}
    assert len(rows) == n
    # kcat commits automatically (enable.auto.commit): the group's offsets are stored.
    wait_until(lambda: sum(max(o, 0) for o in committed(broker.bootstrap, group, topic).values()) > 0,
               30, "kcat's commits")
