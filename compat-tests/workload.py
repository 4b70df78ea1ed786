"""Deterministic keyed records with headers, and the checks every client's test applies."""

import os
import random
import uuid

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
PARTITIONS = 6

# COMPAT_SCALE shrinks (e.g. 0.1) or grows every record count, for quick local iterations.
SCALE = float(os.environ.get("COMPAT_SCALE", "1"))


def count(n):
    return max(10, int(n * SCALE))


def topic_name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def make_records(n, tag, seed=0):
    """n records (key, value, headers). Keys repeat (1000 distinct) so keyed partitioning
    spreads them over all partitions and several records share a partition per key; values are
    partly compressible text and partly random bytes; two headers, one binary, one per-record."""
    rng = random.Random(f"{tag}-{seed}")
    out = []
    for i in range(n):
        key = f"key-{i % 1000:04d}".encode()
        size = rng.randrange(0, 200)
        value = f"{tag}:{i}:".encode() + b"abcdefgh" * (size // 16) + rng.randbytes(size // 2)
        headers = [("seq", str(i).encode()), ("bin", bytes([i % 256, 0, 255]))]
        out.append((key, value, headers))
    return out


def norm_headers(headers):
    """[(str, bytes)] from any client's header representation (None -> [])."""
    if not headers:
        return []
    return [(k if isinstance(k, str) else k.decode(), bytes(v) if v is not None else None) for k, v in headers]


def check_partitions(expected, consumed):
    """expected/consumed: {partition: [(key, value, headers), ...]} in log order.

    Order within a partition must be the produce order; nothing may be missing or extra."""
    assert sorted(consumed) == sorted(expected), (
        f"partitions differ: expected {sorted(expected)}, consumed {sorted(consumed)}"
    )
    for p in sorted(expected):
        exp, got = expected[p], consumed[p]
        assert len(got) == len(exp), f"partition {p}: consumed {len(got)} records, expected {len(exp)}"
        for i, (e, g) in enumerate(zip(exp, got)):
            assert g == e, f"partition {p} record #{i}: consumed {g!r:.300} expected {e!r:.300}"


def by_partition(records_with_partition):
    out = {}
    for p, rec in records_with_partition:
        out.setdefault(p, []).append(rec)
    return out
