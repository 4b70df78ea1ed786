#!/usr/bin/env bash
# Runs librdkafka's own test suite (tests/test-runner of the librdkafka bundled in the rdkafka-sys
# crate) against Sluice, for the tests in tests.allow.
#
# Usage: compat-tests/librdkafka/run.sh [--bootstrap HOST:PORT] [--list FILE] [TEST_NAME ...]
#   --bootstrap  use a running broker (default: start target/release/sluice on a temp dir)
#   --list       allow-list file (default: tests.allow next to this script); lines are
#                "<test name> <quick|full> <timeout seconds> [SUBTESTS=<substring>]", # starts a
#                comment; SUBTESTS runs only the sub-tests whose name contains the substring
#                (librdkafka's own SUBTESTS filter), so a test can be listed by its parts
#   TEST_NAME    run only these (e.g. to try a candidate: 0031_get_offsets full 120 is implied)
#
# Rules (each one closes a way for the suite to look greener than it is):
# - Broker tests only (-L): local/mock tests need no broker and prove nothing about Sluice.
# - TEST_KAFKA_VERSION is explicit (see below), never the runner's default.
# - One test per test-runner process, each with its own timeout: a hang fails that test only.
# - TESTS=<number> is a substring match, so it also selects variants sharing the number (e.g.
#   "_mock" ones); only the exact allow-listed name is judged, and -L skips the mock variants.
# - Quick mode (-Q) only where the allow-list says so, i.e. for tests that do not skip under it.
# - Only PASSED counts. SKIPPED (e.g. version gates) is reported as not passed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=../../scripts/lib/librdkafka.sh
source "$root/scripts/lib/librdkafka.sh"
# shellcheck source=../../scripts/lib/sluice.sh
source "$root/scripts/lib/sluice.sh"

# Why 3.9.0: Sluice's ApiVersions (the table in ARCHITECTURE.md) covers what Kafka 3.9 offers
# for the APIs these tests use, with Kafka 4.0's raised minimums (KIP-896). librdkafka's tests
# gate sub-cases on this version: 3.9.0 enables everything up to message format v2, headers,
# zstd, offsetsForTimes and DescribeCluster, and runs group tests with the classic protocol.
# TEST_KAFKA_VERSION=4.0.0 TEST_CONSUMER_GROUP_PROTOCOL=consumer runs them with KIP-848 (see
# FINDINGS.md for what passes that way). Override with TEST_KAFKA_VERSION to explore.
export TEST_KAFKA_VERSION="${TEST_KAFKA_VERSION:-3.9.0}"

bootstrap=""
list="$here/tests.allow"
only=()
while [ $# -gt 0 ]; do
    case "$1" in
    --bootstrap) bootstrap="$2"; shift 2 ;;
    --list) list="$2"; shift 2 ;;
    -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
    *) only+=("$1"); shift ;;
    esac
done

librdkafka_build
runner="$LIBRDKAFKA_DIR/tests/test-runner"
# The runner links the freshly built shared librdkafka/librdkafka++, not any system copy.
export LD_LIBRARY_PATH="$LIBRDKAFKA_DIR/src:$LIBRDKAFKA_DIR/src-cpp${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

work="$(mktemp -d "${TMPDIR:-/tmp}/sluice-librdkafka.XXXXXX")"
own_broker=0
cleanup() {
    local rc=$?
    if [ "$own_broker" = 1 ]; then
        sluice_stop || rc=1
    fi
    if [ "$rc" = 0 ] && [ -z "${SLUICE_KEEP_LOGS:-}" ]; then rm -rf "$work"; else echo "logs kept in $work" >&2; fi
    exit "$rc"
}
trap cleanup EXIT

if [ -z "$bootstrap" ]; then
    # librdkafka's own test clusters (trivup) run with num.partitions=4: tests such as 0012 and
    # 0054 produce to partitions 0..3 of auto-created topics.
    sluice_start "$work/broker" num.partitions=4
    own_broker=1
    bootstrap="$SLUICE_BOOTSTRAP"
fi

cat >"$work/test.conf" <<EOF
bootstrap.servers=$bootstrap
# Random topic names: reruns against the same broker never see an earlier run's topics.
test.topic.random=true
EOF
export RDKAFKA_TEST_CONF="$work/test.conf"
# Tests that shell out to Kafka's CLI (test_kafka_topics: 0045's partition-change and topic
# removal parts, 0052, 0077) run kafka-shim/bin/kafka-topics.sh (admin requests to this broker).
export KAFKA_PATH="$here/kafka-shim" BROKERS="$bootstrap"

# Read the list: name mode timeout
names=() modes=() timeouts=() subs=()
while read -r name mode tmo sub _rest; do
    case "$name" in '' | '#'*) continue ;; esac
    if [ ${#only[@]} -gt 0 ]; then
        keep=0
        for o in "${only[@]}"; do [ "$o" = "$name" ] && keep=1; done
        [ "$keep" = 1 ] || continue
    fi
    case "$sub" in SUBTESTS=?*) sub="${sub#SUBTESTS=}" ;; *) sub="" ;; esac
    names+=("$name") modes+=("${mode:-full}") timeouts+=("${tmo:-120}") subs+=("$sub")
done < <(sed 's/#.*//' "$list")
# Names given on the command line but not in the list: run them too (full mode, 180 s).
for o in "${only[@]}"; do
    found=0
    for n in "${names[@]}"; do [ "$n" = "$o" ] && found=1; done
    [ "$found" = 1 ] || { names+=("$o"); modes+=(full); timeouts+=(180); subs+=(""); }
done
if [ ${#names[@]} -eq 0 ]; then
    echo "no librdkafka tests selected" >&2
    exit 1
fi

echo "librdkafka $LIBRDKAFKA_VERSION test-runner against $bootstrap (TEST_KAFKA_VERSION=$TEST_KAFKA_VERSION)"
passed=0 failed=0
failures=()
for i in "${!names[@]}"; do
    name="${names[$i]}" mode="${modes[$i]}" tmo="${timeouts[$i]}" sub="${subs[$i]}"
    num="${name%%_*}"
    label="$name${sub:+[$sub]}"
    args=(-L -p1)
    [ "$mode" = quick ] && args+=(-Q)
    report="$work/$i-$name.json"
    log="$work/$i-$name.log"
    start=$(date +%s)
    set +e
    # The outer redirection swallows bash's "Aborted" notice when a failing test aborts.
    (env -C "$work" TESTS="$num" SUBTESTS="$sub" TEST_REPORT="$report" timeout -k 10 "$tmo" "$runner" "${args[@]}" >"$log" 2>&1; exit $?) 2>/dev/null
    rc=$?
    set -e
    secs=$(($(date +%s) - start))
    state="$(python3 - "$report" "$name" "$log" <<'EOF'
import json, re, sys
report, name, log = sys.argv[1:4]
try:
    with open(report) as f:
        print(json.load(f)["tests"][name]["state"])
        sys.exit(0)
except Exception:
    pass
# The report may be missing (killed by timeout) or unparsable: fall back to the summary table.
try:
    text = re.sub(r"\x1b\[[0-9;]*m", "", open(log, errors="replace").read())
    m = re.findall(r"\|\s*" + re.escape(name) + r"\s*\|\s*(\w+)\s*\|", text)
    print(m[-1] if m else "UNKNOWN")
except OSError:
    print("UNKNOWN")
EOF
)"
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then state="TIMEOUT(${tmo}s)"; fi
    if [ "$state" = PASSED ] && [ "$rc" = 0 ]; then
        passed=$((passed + 1))
        printf '  %-28s %-6s PASSED   %4ss\n' "$label" "$mode" "$secs"
    else
        failed=$((failed + 1))
        # librdkafka prints '### Test "<name>" failed at <file:line> ... ###' then the message.
        reason="$(sed 's/\x1b\[[0-9;]*m//g' "$log" | sed -n '/^### Test/{n;p}' | sort -u | head -3 | cut -c1-300)"
        printf '  %-28s %-6s %-8s %4ss (exit %s)\n' "$label" "$mode" "$state" "$secs" "$rc"
        [ -n "$reason" ] && echo "$reason" | sed 's/^/      /'
        failures+=("$label")
    fi
done

if [ "$own_broker" = 1 ]; then
    # Judge the broker before the summary line: a panic/ERROR fails the suite.
    own_broker=0
    if ! sluice_stop; then
        echo "librdkafka: broker logged panics/ERROR lines"
        failed=$((failed + 1))
    fi
fi
echo "librdkafka: $passed passed, $failed failed"
[ "$failed" = 0 ]
