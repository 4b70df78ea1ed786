#!/usr/bin/env bash
# Stand-in for Apache Kafka's bin/kafka-topics.sh, for librdkafka tests that shell out to it
# through $KAFKA_PATH (test_kafka_topics in librdkafka's tests/test.c). See kafka_topics.py.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "$here/../../../.venv/bin/python" "$here/../kafka_topics.py" "$@"
