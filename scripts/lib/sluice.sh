# shellcheck shell=bash
# Starts and stops a local Sluice broker for scripts (librdkafka suite, bench).
#
#   sluice_start <workdir> [key=value ...]  -> SLUICE_PID, SLUICE_PORT, SLUICE_BOOTSTRAP, SLUICE_STDERR,
#                                              SLUICE_HTTP (host:port of /metrics and /health)
#   sluice_stop                             -> SIGTERM, then SIGKILL after 20 s; returns 1 if the
#                                              broker's stderr shows a panic or an ERROR line
#
# The broker is $SLUICE_BIN or target/release/sluice, configured with Kafka's property names.

_sluice_root() { cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd; }

sluice_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

sluice_start() {
    local workdir="$1"
    shift
    local bin="${SLUICE_BIN:-$(_sluice_root)/target/release/sluice}"
    if [ ! -x "$bin" ]; then
        echo "broker binary $bin not found (cargo build --release)" >&2
        return 1
    fi
    mkdir -p "$workdir/data"
    SLUICE_PORT="$(sluice_free_port)"
    SLUICE_BOOTSTRAP="127.0.0.1:$SLUICE_PORT"
    SLUICE_STDERR="$workdir/sluice.stderr"
    # Its own free port for the HTTP listener, so brokers of parallel runs do not collide on 9644.
    SLUICE_HTTP="127.0.0.1:$(sluice_free_port)"
    local args=(
        --override "listeners=PLAINTEXT://$SLUICE_BOOTSTRAP"
        --override "advertised.listeners=PLAINTEXT://$SLUICE_BOOTSTRAP"
        --override "log.dirs=$workdir/data"
        --override "node.id=1"
        --override "sluice.http.listener=$SLUICE_HTTP"
    )
    local kv
    for kv in "$@"; do args+=(--override "$kv"); done
    NO_COLOR=1 RUST_LOG="${RUST_LOG:-info}" "$bin" "${args[@]}" </dev/null >"$SLUICE_STDERR" 2>&1 &
    SLUICE_PID=$!
    local i
    for i in $(seq 1 300); do
        if ! kill -0 "$SLUICE_PID" 2>/dev/null; then
            echo "sluice exited during startup:" >&2
            tail -50 "$SLUICE_STDERR" >&2
            return 1
        fi
        if (exec 3<>"/dev/tcp/127.0.0.1/$SLUICE_PORT") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "sluice did not listen on $SLUICE_BOOTSTRAP within 30 s" >&2
    kill -KILL "$SLUICE_PID" 2>/dev/null || true
    return 1
}

# Lines of the broker's stderr that mean the broker is broken (DESIGN.md: ERROR = broker bug).
sluice_problems() {
    sed 's/\x1b\[[0-9;]*[A-Za-z]//g' "$SLUICE_STDERR" | grep -E '(^|[[:space:]])ERROR([[:space:]]|:|$)|panicked at' || true
}

sluice_stop() {
    [ -n "${SLUICE_PID:-}" ] || return 0
    kill -TERM "$SLUICE_PID" 2>/dev/null || true
    local i
    for i in $(seq 1 200); do
        kill -0 "$SLUICE_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$SLUICE_PID" 2>/dev/null; then
        echo "sluice did not exit within 20 s of SIGTERM; killing" >&2
        kill -KILL "$SLUICE_PID" 2>/dev/null || true
    fi
    wait "$SLUICE_PID" 2>/dev/null || true
    SLUICE_PID=""
    local problems
    problems="$(sluice_problems)"
    if [ -n "$problems" ]; then
        echo "broker stderr shows panics/ERROR lines:" >&2
        echo "$problems" | head -20 >&2
        return 1
    fi
}
