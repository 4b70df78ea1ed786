"""kcat (the command-line tool on librdkafka, Debian's build) against Sluice."""

import shutil
import subprocess

import cramjam
import pytest

import cf
from workload import CODEC_IDS, CODECS, PARTITIONS, count, stored_batches, topic_name

KCAT = shutil.which("kcat") or shutil.which("kafkacat")


def kcat(*args, input_bytes=None, timeout_s=120):
    assert KCAT, "kcat not installed (apt-get install kcat; .ci/run does)"
    r = subprocess.run([KCAT, *args], input=input_bytes, capture_output=True, timeout=timeout_s)
    assert r.returncode == 0, f"kcat {' '.join(args)} exited {r.returncode}: {r.stderr.decode(errors='replace')[-2000:]}"
    return r.stdout


def test_kcat_metadata_list(broker):
    topic = topic_name("kcat-meta")
    cf.create_topic(broker.bootstrap, topic)
    out = kcat("-b", broker.bootstrap, "-L", "-t", topic).decode()
    assert "1 brokers:" in out and f"broker 1 at 127.0.0.1:{broker.port}" in out, out
    assert f'topic "{topic}" with {PARTITIONS} partitions:' in out, out
    for p in range(PARTITIONS):
        assert f"partition {p}, leader 1," in out, out
    js = kcat("-b", broker.bootstrap, "-L", "-J").decode()
    assert topic in js


@pytest.mark.parametrize("codec", CODECS)
def test_kcat_produce_consume_every_codec(broker, codec):
    topic = topic_name(f"kcat-{codec}")
    cf.create_topic(broker.bootstrap, topic)
    n = count(20_000)
    lines = [(f"key-{i % 500:03d}", f"{codec}-value-{i}-" + "x" * (i % 97)) for i in range(n)]
    data = "".join(f"{k}\t{v}\n" for k, v in lines).encode()
    # -K sets the key delimiter; -H adds a header to every message; -z the codec.
    kcat("-b", broker.bootstrap, "-P", "-t", topic, "-K", "\t", "-z", codec,
         "-H", "origin=kcat", "-H", f"codec={codec}",
         "-X", "linger.ms=5", input_bytes=data)
    out = kcat("-b", broker.bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q",
               "-f", "%p\t%o\t%k\t%s\t%h\n")
    rows = [r.split("\t") for r in out.decode().split("\n") if r]
    assert len(rows) == n, f"consumed {len(rows)} of {n}"
    # What is stored is what -z asked for: librdkafka before 2.11.1 (Debian's kcat has 2.0.2)
    # silently stops compressing when Produce is not advertised from v0 (librdkafka #4956).
    stored = stored_batches(broker.log_dir / "data", topic)
    assert stored, "no batches stored"
    codecs = [c for c, _ in stored]
    assert CODEC_IDS[codec] in codecs, f"-z {codec}: stored batch codecs {sorted(set(codecs))}"
    # librdkafka sends a batch uncompressed when compressing it does not make it smaller (a
    # small tail batch of short records under snappy, say): only such batches may be stored
    # uncompressed, and never most of them.
    shrinks = {"gzip": cramjam.gzip.compress, "snappy": cramjam.snappy.compress_raw,
               "lz4": cramjam.lz4.compress_block, "zstd": cramjam.zstd.compress}.get(codec)
    plain = [body for c, body in stored if c == 0]
    if codec == "none":
        assert set(codecs) == {0}, f"-z none: stored batch codecs {sorted(set(codecs))}"
    else:
        assert len(plain) * 10 <= len(stored), f"-z {codec}: {len(plain)} of {len(stored)} batches uncompressed"
        for body in plain:
            assert len(shrinks(body)) >= len(body) * 0.9, \
                f"-z {codec}: a {len(body)}-byte batch that compresses was stored uncompressed"
    parts = {}
    key_part = {}
    for p, o, k, v, h in rows:
        assert h == f"origin=kcat,codec={codec}", f"headers {h!r}"
        parts.setdefault(int(p), []).append((int(o), k, v))
        assert key_part.setdefault(k, int(p)) == int(p), f"key {k} on two partitions"
    assert len(parts) == PARTITIONS
    for p, lst in parts.items():
        assert [o for o, _, _ in lst] == list(range(len(lst))), f"partition {p}: offsets not dense"
    # Per partition, records are in produce order (input order restricted to that partition).
    for p, lst in parts.items():
        expected = [(k, v) for k, v in lines if key_part[k] == p]
        assert [(k, v) for _, k, v in lst] == expected, f"partition {p}: order/content differs"


def test_kcat_query_offset_by_timestamp(broker):
    topic = topic_name("kcat-q")
    cf.create_topic(broker.bootstrap, topic, partitions=1)
    data = "".join(f"v{i}\n" for i in range(100)).encode()
    kcat("-b", broker.bootstrap, "-P", "-t", topic, "-p", "0", input_bytes=data)
    # -Q: offsets for times (ListOffsets by timestamp). Timestamp 0 -> first offset.
    out = kcat("-b", broker.bootstrap, "-Q", "-t", f"{topic}:0:0").decode()
    assert f"{topic} [0] offset 0" in out, out
