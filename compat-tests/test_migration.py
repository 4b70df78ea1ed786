"""KIP-848 online migration with a real client: confluent-kafka (librdkafka) consumers with
group.protocol=classic and group.protocol=consumer in one group. A rolling switch replaces
three classic members one at a time by consumer-protocol members (the group is upgraded when
the first one joins), then replaces those one at a time by classic members again (the group is
downgraded when the last consumer-protocol member leaves), while a producer writes throughout.

Members commit synchronously when partitions are revoked (and on close), never otherwise, so
every record delivered twice must lie past the last commit of its partition by the member that
gave it up; and no produced record may be skipped. The counts are printed (pytest -s)."""

import threading
import time
import uuid

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

import cf
from workload import PARTITIONS, topic_name

OVERRIDES = {
    "group.consumer.heartbeat.interval.ms": "500",
    "group.consumer.min.heartbeat.interval.ms": "500",
    "group.initial.rebalance.delay.ms": "500",
}
MEMBERS = 3
CLASSIC = {
    "group.protocol": "classic",
    "session.timeout.ms": 10000,
    "heartbeat.interval.ms": 500,
    "max.poll.interval.ms": 20000,
}
CONSUMER = {"group.protocol": "consumer"}


class Member(threading.Thread):
    """One consumer polling in a thread. It commits only in its revoke callback (the
    partitions given up, at the next offset it would have read) and records every record it
    got and every commit that succeeded, with the time."""

    def __init__(self, name, bootstrap, group, topic, log, protocol):
        super().__init__(daemon=True)
        conf = {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "topic.metadata.refresh.interval.ms": 1000,
        }
        conf.update(protocol)
        self.name = name
        self.protocol = protocol["group.protocol"]
        self.consumer = Consumer(conf)
        self.topic = topic
        self.log = log
        self.position = {}  # partition -> next offset to read
        self.errors = []
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()

    def assignment(self):
        with self.lock:
            return {tp.partition for tp in self.consumer.assignment()}

    def on_revoke(self, consumer, partitions):
        offsets = [
            TopicPartition(self.topic, tp.partition, self.position[tp.partition])
            for tp in partitions
            if tp.partition in self.position
        ]
        if not offsets:
            return
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as e:
            self.errors.append(("commit", e))
            return
        now = time.monotonic()
        for tp in offsets:
            self.log.commits.append((self.name, tp.partition, tp.offset, now))
        for tp in partitions:
            self.position.pop(tp.partition, None)

    def run(self):
        self.consumer.subscribe([self.topic], on_revoke=self.on_revoke, on_lost=self.on_lost)
        while not self.stop_flag.is_set():
            with self.lock:
                m = self.consumer.poll(0.1)
                if m is None:
                    continue
                if m.error() is not None:
                    self.errors.append(("poll", m.error()))
                    continue
                self.position[m.partition()] = m.offset() + 1
                self.log.consumed.append((m.partition(), m.offset(), self.name, time.monotonic()))
        with self.lock:
            self.consumer.close()  # revokes (and so commits), then leaves the group

    def on_lost(self, consumer, partitions):
        # Lost partitions cannot be committed; what was read past the last commit may come
        # again, which the duplicate check allows.
        self.errors.append(("lost", [tp.partition for tp in partitions]))
        for tp in partitions:
            self.position.pop(tp.partition, None)

    def stop(self):
        self.stop_flag.set()
        self.join(60)
        assert not self.is_alive(), f"{self.name} did not close"


class Log:
    def __init__(self):
        self.consumed = []  # (partition, offset, member, t)
        self.commits = []  # (member, partition, committed next offset, t)


class Writer(threading.Thread):
    """A producer writing throughout the switch; keeps every delivered (partition, offset)."""

    def __init__(self, bootstrap, topic):
        super().__init__(daemon=True)
        self.producer = Producer(cf.producer_conf(bootstrap))
        self.topic = topic
        self.delivered = []
        self.errors = []
        self.stop_flag = threading.Event()

    def on_delivery(self, err, msg):
        if err is not None:
            self.errors.append(err)
        else:
            self.delivered.append((msg.partition(), msg.offset()))

    def run(self):
        i = 0
        while not self.stop_flag.is_set():
            self.producer.produce(
                self.topic, key=f"k{i % 97}".encode(), value=f"v{i}".encode(),
                on_delivery=self.on_delivery,
            )
            i += 1
            self.producer.poll(0)
            time.sleep(0.004)
        assert self.producer.flush(60) == 0

    def stop(self):
        self.stop_flag.set()
        self.join(90)


def wait_until(cond, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def settled(members):
    """Every partition owned by exactly one live member, each member owning some."""
    owned = [m.assignment() for m in members]
    union = set().union(*owned)
    return (
        all(owned)
        and union == set(range(PARTITIONS))
        and sum(len(o) for o in owned) == PARTITIONS
    )


def group_stable(bootstrap, group):
    """The group is Stable as DescribeGroups or ConsumerGroupDescribe reports it: every member
    at the current generation or epoch, so a member may leave without others rejoining late."""
    admin = cf.admin(bootstrap)  # kept alive until the future completes
    described = admin.describe_consumer_groups([group])[group].result(timeout=30)
    return str(described.state).endswith("STABLE")


def describe_type(bootstrap, group):
    """The group's type as ListGroups reports it ("CONSUMER" or "CLASSIC")."""
    admin = cf.admin(bootstrap)
    listed = admin.list_consumer_groups().result(timeout=30)
    mine = [g for g in listed.valid if g.group_id == group]
    return str(mine[0].type).rsplit(".", 1)[-1] if mine else None


def check_duplicates(log):
    """Counts records delivered more than once; each must lie at or past the last commit its
    first reader made for the partition before the record was read again."""
    first = {}
    duplicates = []
    for p, o, member, t in log.consumed:
        if (p, o) in first:
            duplicates.append((p, o, first[(p, o)], (member, t)))
        else:
            first[(p, o)] = (member, t)
    for p, o, (first_member, _), (_, t_again) in duplicates:
        covered = [
            c for m, cp, c, tc in log.commits if m == first_member and cp == p and tc <= t_again
        ]
        last = max(covered, default=-1)
        assert o >= last, (
            f"partition {p} offset {o} read again although {first_member} had committed "
            f"{last} before"
        )
    return duplicates, first


def test_rolling_switch_classic_to_consumer_and_back(broker_factory):
    started = time.monotonic()
    broker = broker_factory(OVERRIDES)
    topic = topic_name("migration")
    cf.create_topic(broker.bootstrap, topic)
    group = f"migration-{uuid.uuid4().hex[:8]}"
    log = Log()
    writer = Writer(broker.bootstrap, topic)
    counter = iter(range(100))

    def member(protocol):
        kind = "classic" if protocol is CLASSIC else "consumer"
        m = Member(f"{kind}-{next(counter)}", broker.bootstrap, group, topic, log, protocol)
        m.start()
        return m

    live = [member(CLASSIC) for _ in range(MEMBERS)]
    everyone = list(live)
    writer.start()
    try:
        wait_until(
            lambda: settled(live) and group_stable(broker.bootstrap, group),
            60,
            "three classic members sharing the partitions",
        )
        assert describe_type(broker.bootstrap, group) == "CLASSIC"
        types = []
        # Upgrade: each classic member replaced by a consumer-protocol member; then back.
        for old_kind, new_protocol in (("classic", CONSUMER), ("consumer", CLASSIC)):
            for _ in range(MEMBERS):
                new = member(new_protocol)
                everyone.append(new)
                wait_until(
                    lambda: settled(live + [new]) and group_stable(broker.bootstrap, group),
                    60,
                    f"{new.name} getting partitions",
                )
                old = next(m for m in live if m.protocol == old_kind)
                old.stop()
                live.remove(old)
                live.append(new)
                wait_until(
                    lambda: settled(live) and group_stable(broker.bootstrap, group),
                    60,
                    f"the group settling without {old.name}",
                )
                types.append(describe_type(broker.bootstrap, group))
        # Upgraded at the first consumer-protocol member, downgraded at the last one leaving.
        assert types == ["CONSUMER"] * 3 + ["CONSUMER", "CONSUMER", "CLASSIC"], types
        time.sleep(1.0)
    finally:
        writer.stop()
    produced = set(writer.delivered)
    try:
        wait_until(lambda: produced <= {(p, o) for p, o, _, _ in log.consumed}, 60,
                   "every produced record consumed")
    finally:
        for m in live:
            m.stop()
    duplicates, first = check_duplicates(log)
    skipped = produced - set(first)
    print(
        f"\nmigration: produced={len(produced)} consumed={len(log.consumed)} "
        f"distinct={len(first)} duplicates={len(duplicates)} skipped={len(skipped)} "
        f"commits={len(log.commits)} members={len(everyone)} "
        f"seconds={time.monotonic() - started:.1f}"
    )
    for p, o, (fm, _), (sm, _) in duplicates[:10]:
        print(f"  duplicate partition={p} offset={o} first={fm} again={sm}")
    assert not writer.errors, writer.errors[:3]
    assert not skipped, f"{len(skipped)} records skipped, e.g. {sorted(skipped)[:5]}"
    errors = [(m.name, e) for m in everyone for e in m.errors]
    assert not errors, errors[:5]
