"""Stand-in for Apache Kafka's kafka-topics.sh (tools/.../TopicCommand.java in Kafka 4.x).

librdkafka's tests 0045 (topic removal, partition change), 0052 and 0077 run
`$KAFKA_PATH/bin/kafka-topics.sh --bootstrap-server $BROKERS ...` and judge only its exit code.
This implements the options they use with TopicCommand's semantics, on confluent-kafka's
AdminClient (so every operation is a real admin request to the broker under test):

  --create  --topic T [--partitions N] [--replication-factor R] [--config k=v ...] [--if-not-exists]
  --alter   --topic T --partitions N [--if-exists]       (CreatePartitions)
  --delete  --topic T [--if-exists]                      (DeleteTopics)
  --describe [--topic T] [--if-exists]                   (Metadata + DescribeConfigs)
  --list    [--topic T]

As in Kafka: --topic is a regex matched against whole names (',' means '|') for every action
but --create; an action on no matching topic fails unless --if-exists; exactly one action;
--config only with --create (kafka-configs.sh alters configs); a failed request prints
"Error while executing topic command : <message>" on stdout; any failure exits 1.
Options it does not implement (--replica-assignment, --command-config, report filters) are
refused with exit 1 rather than ignored.
"""

import argparse
import re
import sys

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic

TIMEOUT_S = 30.0


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    # TopicCommand's CommandLineUtils.printUsageAndExit exits 1, not argparse's 2.
    def error(self, message):
        raise UsageError(message)


def parse(argv):
    p = Parser(prog="kafka-topics.sh", add_help=False)
    for action in ("create", "alter", "delete", "describe", "list"):
        p.add_argument("--" + action, action="store_true")
    p.add_argument("--bootstrap-server")
    p.add_argument("--topic")
    p.add_argument("--partitions", type=int)
    p.add_argument("--replication-factor", type=int)
    p.add_argument("--config", action="append", default=[])
    p.add_argument("--if-exists", action="store_true")
    p.add_argument("--if-not-exists", action="store_true")
    p.add_argument("--exclude-internal", action="store_true")
    opts = p.parse_args(argv)
    actions = [a for a in ("create", "alter", "delete", "describe", "list") if getattr(opts, a)]
    if len(actions) != 1:
        raise UsageError(
            "Command must include exactly one action: --list, --describe, --create, --alter or --delete"
        )
    opts.action = actions[0]
    if not opts.bootstrap_server:
        raise UsageError("--bootstrap-server must be specified")
    if opts.action in ("create", "alter", "delete") and opts.topic is None:
        raise UsageError("Missing required argument \"[topic]\"")
    if opts.config and opts.action != "create":
        hint = " (To alter topic configurations, the kafka-configs tool can be used.)"
        raise UsageError(f'Option "[config]" can\'t be used with option "[{opts.action}]"{hint}')
    if opts.action == "alter" and opts.partitions is None:
        raise UsageError("Missing required argument \"[partitions]\"")
    if opts.partitions is not None and opts.action not in ("create", "alter"):
        raise UsageError(f'Option "[partitions]" can\'t be used with option "[{opts.action}]"')
    if opts.replication_factor is not None and opts.action != "create":
        raise UsageError(f'Option "[replication-factor]" can\'t be used with option "[{opts.action}]"')
    return opts


def topic_configs(pairs):
    configs = {}
    for pair in pairs:
        kv = re.split(r"\s*=\s*", pair)
        if len(kv) != 2:
            raise ValueError(
                'requirement failed: Invalid topic config: all configs to be added must be in the format "key=val".'
            )
        configs[kv[0].strip()] = kv[1].strip()
    return configs


def matching_topics(admin, pattern, exclude_internal):
    names = sorted(admin.list_topics(timeout=TIMEOUT_S).topics)
    if exclude_internal:
        names = [n for n in names if not n.startswith("__")]
    if pattern is None:
        return names
    # TopicFilter: trim, ',' -> '|', spaces and surrounding quotes dropped; whole-name match.
    regex = re.sub(r"""^["']+|["']+$""", "", pattern.strip().replace(",", "|").replace(" ", ""))
    return [n for n in names if re.fullmatch(regex, n)]


def ensure_found(found, opts):
    if opts.topic and not found and not opts.if_exists:
        raise ValueError(f"Topic 'Optional[{opts.topic}]' does not exist as expected")


def create(admin, opts):
    if opts.replication_factor is not None and not 1 <= opts.replication_factor <= 32767:
        raise ValueError("The replication factor must be between 1 and 32767 inclusive")
    if opts.partitions is not None and opts.partitions < 1:
        raise ValueError("The partitions must be greater than 0")
    if "." in opts.topic or "_" in opts.topic:
        print(
            "WARNING: Due to limitations in metric names, topics with a period ('.') or underscore ('_') "
            "could collide. To avoid issues it is best to use either, but not both."
        )
    topic = NewTopic(
        opts.topic,
        num_partitions=opts.partitions if opts.partitions is not None else -1,
        replication_factor=opts.replication_factor if opts.replication_factor is not None else -1,
        config=topic_configs(opts.config),
    )
    try:
        admin.create_topics([topic], operation_timeout=TIMEOUT_S)[opts.topic].result(TIMEOUT_S)
    except KafkaException as e:
        if opts.if_not_exists and e.args[0].name() == "TOPIC_ALREADY_EXISTS":
            return
        raise
    print(f"Created topic {opts.topic}.")


def alter(admin, opts):
    found = matching_topics(admin, opts.topic, opts.exclude_internal)
    ensure_found(found, opts)
    if found:
        futures = admin.create_partitions(
            [NewPartitions(t, opts.partitions) for t in found], operation_timeout=TIMEOUT_S
        )
        for f in futures.values():
            f.result(TIMEOUT_S)


def delete(admin, opts):
    found = matching_topics(admin, opts.topic, opts.exclude_internal)
    ensure_found(found, opts)
    if found:
        for f in admin.delete_topics(found, operation_timeout=TIMEOUT_S).values():
            f.result(TIMEOUT_S)


def describe(admin, opts):
    found = matching_topics(admin, opts.topic, opts.exclude_internal)
    ensure_found(found, opts)
    if not found:
        return
    metadata = admin.list_topics(timeout=TIMEOUT_S).topics
    resources = [ConfigResource(ConfigResource.Type.TOPIC, t) for t in found]
    configs = {r.name: f.result(TIMEOUT_S) for r, f in admin.describe_configs(resources).items()}
    for name in found:
        parts = sorted(metadata[name].partitions.values(), key=lambda p: p.id)
        overrides = ",".join(f"{e.name}={e.value}" for e in configs[name].values() if not e.is_default)
        rf = len(parts[0].replicas) if parts else 0
        print(f"Topic: {name}\tPartitionCount: {len(parts)}\tReplicationFactor: {rf}\tConfigs: {overrides}")
        for p in parts:
            leader = p.leader if p.leader >= 0 else "none"
            print(
                f"\tTopic: {name}\tPartition: {p.id}\tLeader: {leader}"
                f"\tReplicas: {','.join(map(str, p.replicas))}\tIsr: {','.join(map(str, p.isrs))}"
            )


def list_topics(admin, opts):
    print("\n".join(matching_topics(admin, opts.topic, opts.exclude_internal)))


def main(argv):
    try:
        opts = parse(argv)
    except UsageError as e:
        print(e, file=sys.stderr)
        return 1
    admin = AdminClient({"bootstrap.servers": opts.bootstrap_server})
    action = {"create": create, "alter": alter, "delete": delete, "describe": describe, "list": list_topics}
    try:
        action[opts.action](admin, opts)
    except KafkaException as e:
        print(f"Error while executing topic command : {e.args[0].str()}")
        return 1
    except (ValueError, re.error) as e:
        print(f"Error while executing topic command : {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
