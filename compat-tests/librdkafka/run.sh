#!/usr/bin/env bash
# Runs librdkafka's own test suite (tests/test-runner of the librdkafka bundled in the rdkafka-sys
# crate) against Sluice, for the tests in tests.allow.
#
# Usage: compat-tests/librdkafka/run.sh [--bootstrap HOST:PORT] [--list FILE] [--jobs N] [TEST_NAME ...]
#   --bootstrap  use a running broker (default: start target/release/sluice on a temp dir)
#   --list       allow-list file (default: tests.allow next to this script); lines are
#                "<test name> <quick|full> <timeout seconds> [KEY=VALUE ...]", # starts a
#                comment. KEY=VALUE pairs are that test's environment: SUBTESTS=<substring>
#                runs only the sub-tests whose name contains it (librdkafka's own filter), so a
#                test can be listed by its parts. A line "@env KEY=VALUE ..." sets environment
#                for every line after it, up to the next "@env" line (an empty one clears it):
#                that is how the group tests run a second time with the KIP-848 protocol.
#   --jobs N     tests run at once against the broker (default: $LIBRDKAFKA_JOBS or 5). They
#                use random topic and group names, and most of their time is spent waiting.
#   TEST_NAME    run only these (e.g. to try a candidate: 0031_get_offsets full 180 is implied);
#                a name listed several times (by parts, or per protocol) runs every listing
#
# Rules (each one closes a way for the suite to look greener than it is):
# - Broker tests only (-L): local/mock tests need no broker and prove nothing about Sluice.
# - TEST_KAFKA_VERSION is explicit (see below), never the runner's default.
# - One test per test-runner process, each with its own timeout, work dir and report: a hang
#   fails that test only, and tests running at once (--jobs) do not share files.
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
# The "@env TEST_KAFKA_VERSION=4.0.0 TEST_CONSUMER_GROUP_PROTOCOL=consumer" section of
# tests.allow runs group tests again with KIP-848. Override with TEST_KAFKA_VERSION to explore.
export TEST_KAFKA_VERSION="${TEST_KAFKA_VERSION:-3.9.0}"

bootstrap=""
list="$here/tests.allow"
jobs="${LIBRDKAFKA_JOBS:-5}"
only=()
while [ $# -gt 0 ]; do
    case "$1" in
    --bootstrap) bootstrap="$2"; shift 2 ;;
    --list) list="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    -h | --help) sed -n '2,27p' "$0"; exit 0 ;;
    *) only+=("$1"); shift ;;
    esac
done
case "$jobs" in '' | *[!0-9]* | 0) echo "--jobs wants a positive number, not '$jobs'" >&2; exit 2 ;; esac

librdkafka_build
runner="$LIBRDKAFKA_DIR/tests/test-runner"
# The runner links the freshly built shared librdkafka/librdkafka++, not any system copy.
export LD_LIBRARY_PATH="$LIBRDKAFKA_DIR/src:$LIBRDKAFKA_DIR/src-cpp${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

work="$(mktemp -d "${TMPDIR:-/tmp}/sluice-librdkafka.XXXXXX")"
own_broker=0
test_pids=() # running run_one jobs (the broker is a background job too: never wait for it)
cleanup() {
    local rc=$?
    # Tests still running (interrupted run) go first: they hold files in $work.
    if [ ${#test_pids[@]} -gt 0 ]; then
        kill "${test_pids[@]}" 2>/dev/null
        wait "${test_pids[@]}" 2>/dev/null
    fi
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
# Tests that shell out to Kafka's CLI (test_kafka_topics: 0052, 0077, 0045's noautocreate parts)
# get KAFKA_PATH (kafka-shim/bin/kafka-topics.sh, admin requests to this broker) only when their
# line says KAFKA_SHIM=1: with it, 0045_subscribe_update runs extra parts whose topics its
# concurrently running siblings' regex subscriptions match.

# Read the list: name mode timeout [KEY=VALUE ...], under the "@env" section in force.
names=() modes=() timeouts=() envs=()
section=""
while read -r name mode tmo rest; do
    case "$name" in '' | '#'*) continue ;; esac
    if [ "$name" = "@env" ]; then
        section="$mode $tmo $rest"
        continue
    fi
    if [ ${#only[@]} -gt 0 ]; then
        keep=0
        for o in "${only[@]}"; do [ "$o" = "$name" ] && keep=1; done
        [ "$keep" = 1 ] || continue
    fi
    # One KEY=VALUE per line; xargs honours quotes, so a value may hold spaces
    # (SUBTESTS="use_rebalance_cb: 1").
    env_lines="$(printf '%s\n' "$section $rest" | xargs -n1 printf '%s\n')"
    while IFS= read -r kv; do
        case "$kv" in '' | [A-Z_]*=*) ;; *) echo "$list: $name: '$kv' is not KEY=VALUE" >&2; exit 2 ;; esac
    done <<<"$env_lines"
    names+=("$name") modes+=("${mode:-full}") timeouts+=("${tmo:-120}") envs+=("$env_lines")
done < <(sed 's/#.*//' "$list")
# Names given on the command line but not in the list: run them too (full mode, 180 s).
for o in "${only[@]}"; do
    found=0
    for n in "${names[@]}"; do [ "$n" = "$o" ] && found=1; done
    [ "$found" = 1 ] || { names+=("$o"); modes+=(full); timeouts+=(180); envs+=(""); }
done
if [ ${#names[@]} -eq 0 ]; then
    echo "no librdkafka tests selected" >&2
    exit 1
fi

# test_state REPORT NAME LOG: the test's state from its JSON report, else from the log's table.
test_state() {
    python3 - "$@" <<'EOF'
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
}

# run_one I: runs the I-th selected test in its own test-runner process and work dir, prints
# its result line (with the failure reason) and writes PASSED or FAILED to $work/I/result.
run_one() {
    local i="$1"
    local name="${names[$i]}" mode="${modes[$i]}" tmo="${timeouts[$i]}"
    local num="${name%%_*}" sub="" tags="" kv label rc state reason start secs
    local -a env_args=() args=(-L -p1)
    while IFS= read -r kv; do
        [ -n "$kv" ] || continue
        env_args+=("$kv")
        case "$kv" in
        SUBTESTS=*) sub="${kv#SUBTESTS=}" ;;
        KAFKA_SHIM=1) env_args+=(KAFKA_PATH="$here/kafka-shim" BROKERS="$bootstrap") ;;
        TEST_CONSUMER_GROUP_PROTOCOL=*) tags="${tags:+$tags,}${kv#*=}" ;;
        esac
    done <<<"${envs[$i]}"
    label="$name${sub:+[$sub]}${tags:+ ($tags)}"
    [ "$mode" = quick ] && args+=(-Q)
    local dir="$work/$i"
    mkdir -p "$dir"
    start=$(date +%s)
    # The outer redirection swallows bash's "Aborted" notice when a failing test aborts.
    # TEST_SEED: the runner seeds rand(), which names random topics and groups, from a clock
    # that processes started together can share; a seed per test keeps their names apart. Seeds
    # apart still gave two 0113 parts the same "random" names once (one found the other's
    # 1-partition topic and waited for a second partition), so each test also gets its own
    # topic prefix (test.conf's test.topic.prefix), which makes its names its own.
    { cat "$work/test.conf"; echo "test.topic.prefix=rdkafkatest$i"; } >"$dir/test.conf"
    (env -C "$dir" TESTS="$num" SUBTESTS="" TEST_SEED=$((seed_base + i)) RDKAFKA_TEST_CONF="$dir/test.conf" "${env_args[@]}" TEST_REPORT="$dir/report.json" \
        timeout -k 10 "$tmo" "$runner" "${args[@]}" >"$dir/test.log" 2>&1; exit $?) 2>/dev/null
    rc=$?
    secs=$(($(date +%s) - start))
    state="$(test_state "$dir/report.json" "$name" "$dir/test.log")"
    if [ "$rc" = 124 ] || { [ "$rc" = 137 ] && [ "$secs" -ge "$tmo" ]; }; then state="TIMEOUT(${tmo}s)"; fi
    # A SUBTESTS filter that selects no sub-test leaves an empty test that PASSES: not a pass.
    # librdkafka prints "[ <sub-test name> ]" as each selected sub-test starts. (No grep -q: it
    # exits at the first match, the writer before it dies of SIGPIPE, and pipefail turned a
    # found sub-test into NO-SUBTEST on long logs.)
    if [ -n "$sub" ] && [ "$state" = PASSED ] &&
        ! sed 's/\x1b\[[0-9;]*m//g' "$dir/test.log" | grep -F -- "[ " | grep -F -- "$sub" >/dev/null; then
        state="NO-SUBTEST"
    fi
    if [ "$state" = PASSED ] && [ "$rc" = 0 ]; then
        printf '  %-44s %-5s PASSED   %4ss\n' "$label" "$mode" "$secs"
        echo PASSED >"$dir/result"
    else
        # librdkafka prints '### Test "<name>" failed at <file:line> ... ###' then the message.
        reason="$(sed 's/\x1b\[[0-9;]*m//g' "$dir/test.log" | sed -n '/^### Test/{n;p}' | sort -u | head -3 | cut -c1-300 | sed 's/^/      /')"
        # One printf per result keeps the lines of tests finishing together whole.
        printf '  %-44s %-5s %-8s %4ss (exit %s)\n%s' "$label" "$mode" "$state" "$secs" "$rc" "${reason:+$reason
}"
        echo "FAILED" >"$dir/result"
    fi
}

echo "librdkafka $LIBRDKAFKA_VERSION test-runner against $bootstrap (TEST_KAFKA_VERSION=$TEST_KAFKA_VERSION by default, $jobs at once)"
seed_base=$(((RANDOM << 15 | RANDOM) & 0x3fffffff))
set +e
# Longest first (the timeout stands for the expected time), so that the slow tests do not start
# last and leave the other slots idle at the end.
order="$(for i in "${!names[@]}"; do echo "${timeouts[$i]} $i"; done | sort -k1,1nr -k2,2n -s | cut -d' ' -f2)"
for i in $order; do
    while [ ${#test_pids[@]} -ge "$jobs" ]; do
        wait -n "${test_pids[@]}"
        alive=()
        for p in "${test_pids[@]}"; do kill -0 "$p" 2>/dev/null && alive+=("$p"); done
        test_pids=("${alive[@]}")
    done
    run_one "$i" &
    test_pids+=($!)
done
[ ${#test_pids[@]} -gt 0 ] && wait "${test_pids[@]}"
test_pids=()
set -e
passed=0 failed=0
for i in "${!names[@]}"; do
    if [ "$(cat "$work/$i/result" 2>/dev/null)" = PASSED ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
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
