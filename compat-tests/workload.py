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


# The codec ids of a v2 record batch's attributes (bits 0-2), Kafka's CompressionType ids.
CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


def stored_batches(log_dir, topic):
    """(codec id, records section bytes) of every record batch stored for `topic`, read from its
    segment files (`<log.dirs>/<topic>-<p>/<base>.log`: v2 batch headers, baseOffset 8,
    batchLength 4, partitionLeaderEpoch 4, magic 1, crc 4, attributes 2, the records after the
    61-byte header), so a test sees what was stored, not what a consumer decodes."""
    import glob
    import struct

    codecs = []
    for path in sorted(glob.glob(os.path.join(str(log_dir), f"{topic}-*", "*.log"))):
        with open(path, "rb") as f:
            data = f.read()
        pos = 0
        while pos + 23 <= len(data):
            (length,) = struct.unpack_from(">i", data, pos + 8)
            if length <= 0:
                break
            magic = data[pos + 16]
            assert magic == 2, f"{path}@{pos}: magic {magic}"
            (attributes,) = struct.unpack_from(">h", data, pos + 21)
            codecs.append((attributes & 0x7, data[pos + 61 : pos + 12 + length]))
            pos += 12 + length
    return codecs
