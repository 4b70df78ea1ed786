"""Hostile bytes over a raw socket must cost only that connection; other clients keep working."""

import os
import socket
import struct
import time

import pytest

import cf
from harness import api_versions, api_versions_v0, encode_request, recv_response
from workload import make_records, topic_name


def connect(broker):
    s = socket.create_connection(("127.0.0.1", broker.port), timeout=10)
    s.settimeout(10)
    return s


def closed_by_broker(s, timeout_s=10):
    """True if the broker closes the connection (EOF or reset) within timeout_s."""
    s.settimeout(timeout_s)
    try:
        while True:
            data = s.recv(65536)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def still_serving(broker, topic):
    """A fresh raw ApiVersions plus a real client's produce+consume both work."""
    corr, err, n = api_versions_v0(broker.bootstrap)
    assert (corr, err) == (7, 0) and n > 5, f"ApiVersions after bad input: corr={corr} err={err} apis={n}"
    recs = make_records(20, topic)
    res = cf.produce(broker.bootstrap, topic, recs, partition=0)
    consumed, _ = cf.consume_all(broker.bootstrap, topic, partitions=1)
    assert consumed[0][-20:] == recs, "records produced after the bad input do not read back"
    return res


@pytest.fixture
def topic(broker):
    t = topic_name("bad")
    cf.create_topic(broker.bootstrap, t, partitions=1)
    return t


@pytest.mark.parametrize("size", [2**31 - 1, 2**31 - 2**30, -1, -(2**31)])
def test_huge_or_negative_size_header_closes_connection(broker, topic, size):
    s = connect(broker)
    # Keep a second bad connection open meanwhile: it must not block anyone.
    s.sendall(struct.pack(">i", size) + b"\x00" * 100)
    assert closed_by_broker(s), f"broker kept a connection that announced a {size}-byte frame"
    s.close()
    still_serving(broker, topic)


def test_random_bytes_close_connection(broker, topic):
    rnd = os.urandom(256 * 1024)
    for i in range(5):
        s = connect(broker)
        try:
            s.sendall(rnd[i * 1000:(i + 1) * 50_000])
        except (ConnectionResetError, BrokenPipeError):
            pass
        closed_by_broker(s, timeout_s=3)
        s.close()
    still_serving(broker, topic)


def test_truncated_frame_does_not_block_others(broker, topic):
    # Frame says 100 bytes, only 10 arrive; the connection stays open (a slow client).
    stuck = connect(broker)
    stuck.sendall(struct.pack(">i", 100) + b"\x00\x12\x00\x00\x00\x00\x00\x01\x00\x00")
    still_serving(broker, topic)
    # And one that hangs up mid-frame.
    s = connect(broker)
    s.sendall(encode_request(18, 3, 1)[:9])
    s.close()
    still_serving(broker, topic)
    stuck.close()


def test_unknown_api_key_closes_connection_only(broker, topic):
    s = connect(broker)
    s.sendall(encode_request(9999, 0, 42))
    try:
        # Kafka closes the connection on an unknown API key. A response is tolerated only if it
        # answers this correlation id.
        resp = recv_response(s)
        corr = struct.unpack(">i", resp[:4])[0]
        assert corr == 42, f"response to unknown api key has correlation id {corr}"
    except (ConnectionError, ConnectionResetError):
        pass
    s.close()
    still_serving(broker, topic)


@pytest.mark.parametrize("version", [0, 1, 2, 3, 4])
def test_api_versions_every_supported_version_answers(broker, version):
    corr, err, n = api_versions(broker.bootstrap, api_version=version, correlation_id=100 + version)
    assert (corr, err) == (100 + version, 0)
    assert n >= 8, f"ApiVersions v{version} lists {n} APIs"


@pytest.mark.parametrize("version", [5, 999])
def test_unsupported_api_versions_version_gets_v0_fallback(broker, version):
    """KIP-511: ApiVersions at a version the broker does not know is answered with
    UNSUPPORTED_VERSION (35) in a v0 body listing the supported ranges."""
    corr, err, n = api_versions(broker.bootstrap, api_version=version, correlation_id=77)
    assert corr == 77
    assert err == 35, f"error_code {err}, expected UNSUPPORTED_VERSION (35)"
    assert n >= 8


def test_many_idle_connections_and_bad_input_meanwhile(broker, topic):
    socks = [connect(broker) for _ in range(50)]
    bad = connect(broker)
    bad.sendall(os.urandom(4096))
    t0 = time.monotonic()
    still_serving(broker, topic)
    assert time.monotonic() - t0 < 30
    for s in socks + [bad]:
        s.close()
