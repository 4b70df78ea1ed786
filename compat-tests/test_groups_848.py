"""KIP-848 consumer groups (group.protocol=consumer) with a real client: confluent-kafka
(librdkafka 2.12), which switches to ConsumerGroupHeartbeat when the broker advertises it and
OffsetCommit/OffsetFetch v9. Each test gets its own broker with a 500 ms heartbeat interval so
reconciliation steps take less than a second."""

import threading
import time
import uuid

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

import cf
from workload import PARTITIONS, make_records, topic_name

OVERRIDES = {
    "group.consumer.heartbeat.interval.ms": "500",
    "group.consumer.min.heartbeat.interval.ms": "500",
}


def group_name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def new_consumer(bootstrap, group, **extra):
    conf = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "group.protocol": "consumer",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "topic.metadata.refresh.interval.ms": 1000,
    }
    conf.update(extra)
    return Consumer(conf)


class Member(threading.Thread):
    """A consumer-protocol member polling in a thread; commits each record synchronously so a
    partition that moves is resumed exactly where it was left."""

    def __init__(self, bootstrap, group, subscription, **extra):
        super().__init__(daemon=True)
        self.consumer = new_consumer(bootstrap, group, **extra)
        self.subscription = subscription
        self.records = []  # (topic, partition, offset)
        self.errors = []
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()

    def assignment(self):
        with self.lock:
            return {(tp.topic, tp.partition) for tp in self.consumer.assignment()}

    def run(self):
        self.consumer.subscribe(self.subscription)
        while not self.stop_flag.is_set():
            with self.lock:
                m = self.consumer.poll(0.2)
                if m is None:
                    continue
                if m.error() is not None:
                    self.errors.append(m.error())
                    continue
                self.records.append((m.topic(), m.partition(), m.offset()))
                try:
                    self.consumer.commit(message=m, asynchronous=False)
                except KafkaException as e:
                    self.errors.append(e)
        with self.lock:
            self.consumer.close()  # ConsumerGroupHeartbeat with member epoch -1

    def stop(self):
        self.stop_flag.set()
        self.join(30)


def wait_until(cond, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def all_partitions(topic, n=PARTITIONS):
    return {(topic, p) for p in range(n)}


def test_two_members_share_partitions_then_one_leaves_and_the_other_gets_all(broker_factory):
    broker = broker_factory(OVERRIDES)
    topic = topic_name("kip848-share")
    cf.create_topic(broker.bootstrap, topic)
    group = group_name("g848")
    a = Member(broker.bootstrap, group, [topic])
    b = Member(broker.bootstrap, group, [topic])
    a.start()
    b.start()
    try:
        # Both get a share, together all partitions, no partition twice.
        wait_until(
            lambda: a.assignment() | b.assignment() == all_partitions(topic)
            and not a.assignment() & b.assignment()
            and a.assignment()
            and b.assignment(),
            60,
            "two members sharing all partitions",
        )
        assert len(a.assignment()) == len(b.assignment()) == PARTITIONS // 2
        results = cf.produce(broker.bootstrap, topic, make_records(300, "share"))
        produced = {(topic, p, o) for p, o in results}
        wait_until(lambda: len(a.records) + len(b.records) >= 300, 60, "all records consumed")
        consumed = a.records + b.records
        assert len(consumed) == len(set(consumed)), "a record was consumed twice"
        assert set(consumed) == produced
        assert a.records and b.records, "both members consumed"

        # The group as ListGroups and ConsumerGroupDescribe report it.
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        listed = admin.list_consumer_groups().result(timeout=30)
        mine = [g for g in listed.valid if g.group_id == group]
        assert len(mine) == 1
        assert str(mine[0].state).endswith("STABLE")
        assert str(mine[0].type).endswith("CONSUMER")
        described = admin.describe_consumer_groups([group])[group].result(timeout=30)
        assert str(described.state).endswith("STABLE")
        assert len(described.members) == 2
        assert str(described.type).endswith("CONSUMER")
        owned = [(tp.topic, tp.partition) for m in described.members for tp in m.assignment.topic_partitions]
        assert sorted(owned) == sorted(all_partitions(topic))

        # b leaves (epoch -1): a gets everything and resumes b's partitions at b's commits.
        b.stop()
        wait_until(lambda: a.assignment() == all_partitions(topic), 60, "a owning all partitions")
        before = len(a.records)
        results = cf.produce(broker.bootstrap, topic, make_records(120, "after"))
        wait_until(lambda: len(a.records) - before >= 120, 60, "records after the leave")
        consumed = a.records + b.records
        assert len(consumed) == len(set(consumed)), "a record was consumed twice after the leave"
        assert {(topic, p, o) for p, o in results} <= set(a.records[before:])
        assert not a.errors and not b.errors, (a.errors, b.errors)
    finally:
        a.stop()
        b.stop()


def test_commits_survive_a_restart_and_a_new_member_resumes(broker_factory):
    broker = broker_factory(OVERRIDES)
    topic = topic_name("kip848-resume")
    cf.create_topic(broker.bootstrap, topic)
    group = group_name("g848r")
    results = cf.produce(broker.bootstrap, topic, make_records(200, "first"))
    a = Member(broker.bootstrap, group, [topic])
    a.start()
    try:
        wait_until(lambda: len(a.records) >= 200, 60, "first records consumed")
    finally:
        a.stop()
    assert {(topic, p, o) for p, o in results} == set(a.records)
    broker.restart()
    results = cf.produce(broker.bootstrap, topic, make_records(100, "second"))
    b = Member(broker.bootstrap, group, [topic])
    b.start()
    try:
        wait_until(lambda: len(b.records) >= 100, 60, "records after the restart")
        time.sleep(1.0)
        # Only what was produced after the commits: nothing consumed twice.
        assert set(b.records) == {(topic, p, o) for p, o in results}
        assert len(b.records) == 100
    finally:
        b.stop()
    # OffsetFetch v9 through the client: the committed positions are the log ends.
    c = new_consumer(broker.bootstrap, group)
    try:
        committed = c.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=30)
        assert sum(tp.offset for tp in committed) == 300
    finally:
        c.close()


def test_a_member_alive_across_a_restart_rejoins_and_keeps_consuming(broker_factory):
    broker = broker_factory(OVERRIDES)
    topic = topic_name("kip848-alive")
    cf.create_topic(broker.bootstrap, topic)
    group = group_name("g848a")
    a = Member(broker.bootstrap, group, [topic])
    a.start()
    try:
        wait_until(lambda: a.assignment() == all_partitions(topic), 60, "a owning all partitions")
        broker.restart()
        results = cf.produce(broker.bootstrap, topic, make_records(100, "alive"))
        # The restarted coordinator replays the member (epoch and assignment) from
        # __consumer_offsets: the member heartbeats on and consumes on.
        wait_until(lambda: len(a.records) >= 100, 90, "records after the restart")
        assert {(topic, p, o) for p, o in results} == set(a.records)
    finally:
        a.stop()


def described_members(bootstrap, group):
    """{member id: assigned (topic, partition)s} as confluent-kafka's AdminClient describes it."""
    admin = cf.admin(bootstrap)
    described = admin.describe_consumer_groups([group])[group].result(timeout=30)
    return {m.member_id: {(tp.topic, tp.partition) for tp in m.assignment.topic_partitions}
            for m in described.members}


def test_members_survive_kill_9_with_their_ids_and_assignments(broker_factory):
    """KIP-848 group state is fsynced before a member is answered: after kill -9 and a restart
    the AdminClient describes the same member ids with the same partitions, and both members
    consume on without a rebalance moving any partition."""
    broker = broker_factory(OVERRIDES)
    topic = topic_name("kip848-kill")
    cf.create_topic(broker.bootstrap, topic)
    group = group_name("g848k")
    a = Member(broker.bootstrap, group, [topic])
    b = Member(broker.bootstrap, group, [topic])
    a.start()
    b.start()
    try:
        def settled():
            mine = (a.assignment(), b.assignment())
            if not all(mine) or mine[0] & mine[1] or mine[0] | mine[1] != all_partitions(topic):
                return False
            return sorted(described_members(broker.bootstrap, group).values(), key=sorted) == \
                sorted(mine, key=sorted)
        wait_until(settled, 90, "two members sharing the partitions, as described")
        before = described_members(broker.bootstrap, group)
        broker.kill()
        broker.start()
        assert described_members(broker.bootstrap, group) == before
        results = cf.produce(broker.bootstrap, topic, make_records(100, "killed"))
        wait_until(lambda: len(a.records) + len(b.records) >= 100, 90, "records after the restart")
        assert set(a.records) | set(b.records) == {(topic, p, o) for p, o in results}
        assert len(a.records) + len(b.records) == 100
        assert described_members(broker.bootstrap, group) == before
    finally:
        a.stop()
        b.stop()


def test_regex_subscription_follows_matching_topics(broker_factory):
    broker = broker_factory(OVERRIDES)
    prefix = f"kip848-re-{uuid.uuid4().hex[:6]}"
    first, second, other = f"{prefix}-a", f"{prefix}-b", topic_name("kip848-other")
    for t in (first, other):
        cf.create_topic(broker.bootstrap, t, partitions=2)
    group = group_name("g848re")
    a = Member(broker.bootstrap, group, [f"^{prefix}-.*"])
    a.start()
    try:
        wait_until(lambda: a.assignment() == all_partitions(first, 2), 60, "the matching topic")
        # A topic created later that matches joins the subscription.
        cf.create_topic(broker.bootstrap, second, partitions=2)
        wait_until(
            lambda: a.assignment() == all_partitions(first, 2) | all_partitions(second, 2),
            60,
            "the new matching topic",
        )
        results = cf.produce(broker.bootstrap, second, make_records(20, "re"))
        cf.produce(broker.bootstrap, other, make_records(20, "other"))
        wait_until(lambda: len(a.records) >= 20, 60, "records of the new topic")
        time.sleep(1.0)
        assert set(a.records) == {(second, p, o) for p, o in results}
    finally:
        a.stop()
