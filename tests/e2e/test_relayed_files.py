"""A relayed answer too large to hold (a file's content) streams through, scrubbed across its
chunks; a small one is read whole, as before. A real calguard in front of a raw upstream."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.differential import KEY, Pair, calguard_in_front, gz
from tests.e2e.raw_upstream import CLOSE, chunked, exchange, request, response

LIMIT = 1_000_000  # max_answer_bytes: what calguard would read whole at most
OCTETS = (b"content-type", b"application/octet-stream")
SAME_LENGTH = (b"[REDACTED]" + b"*" * len(KEY))[: len(KEY)]  # a key where the length was said


@pytest.fixture(scope="module")
def small_limit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    with calguard_in_front(
        tmp_path_factory.mktemp("files") / "f.db", max_answer_bytes=LIMIT
    ) as both:
        yield both


def content(size: int) -> bytes:
    """Bytes of every value, with the upstream key at places a 64 kB read would cut."""
    body = bytearray(random.Random(size).randbytes(size))
    for at in range(65536 - 10, size - 100, 65536 * 3):
        body[at : at + len(KEY)] = KEY.encode()
    return bytes(body)


def test_a_file_larger_than_the_limit_streams_through_scrubbed(small_limit: Pair) -> None:
    """Before: read whole, so over max_answer_bytes it was a 502 upstream_too_large (and until
    today held whole in memory, whatever its size)."""
    body = content(3_000_000)
    small_limit.up.answers[b"/files/big/content"] = response(b"200 OK", [OCTETS], body)
    via = exchange(small_limit.calguard, request(b"GET", b"/v1/files/big/content"), 60)
    assert via.status == 200
    assert via.header(b"content-type") == b"application/octet-stream"
    assert via.header(b"content-length") == b"3000000"  # a download's progress keeps its total
    assert via.header(b"transfer-encoding") is None
    assert KEY.encode() not in via.body
    assert via.body == body.replace(KEY.encode(), SAME_LENGTH)


def test_a_file_of_no_said_length_streams_through(small_limit: Pair) -> None:
    body = content(2_500_000)
    parts = [body[i : i + 100_003] for i in range(0, len(body), 100_003)]
    small_limit.up.answers[b"/files/chunked/content"] = chunked(b"200 OK", [OCTETS], parts)
    via = exchange(small_limit.calguard, request(b"GET", b"/v1/files/chunked/content"), 60)
    assert via.status == 200
    assert via.body == body.replace(KEY.encode(), b"[REDACTED]")


def test_a_small_answer_is_still_read_whole(small_limit: Pair) -> None:
    body = b'{"id":"file-1","key":"' + KEY.encode() + b'"}'
    small_limit.up.answers[b"/files/file-1"] = response(
        b"200 OK", [(b"content-type", b"application/json")], body
    )
    via = exchange(small_limit.calguard, request(b"GET", b"/v1/files/file-1"))
    assert via.status == 200
    assert via.header(b"content-length") == str(len(via.body)).encode()  # framed whole
    assert via.body == body.replace(KEY.encode(), b"[REDACTED]")


def test_a_compressed_file_streams_through_decoded(small_limit: Pair) -> None:
    """Its length as sent says nothing of its size decoded: it streams, a piece at a time."""
    body = b"x" * 20_000_000  # 20 times the limit, 20 kB compressed twice
    small_limit.up.answers[b"/files/packed/content"] = response(
        b"200 OK", [OCTETS, (b"content-encoding", b"gzip, gzip")], gz(gz(body))
    )
    via = exchange(small_limit.calguard, request(b"GET", b"/v1/files/packed/content"), 60)
    assert via.status == 200
    assert via.header(b"content-encoding") is None
    assert len(via.body) == len(body)
    assert via.body == body


def test_a_file_cut_upstream_is_cut_for_the_client_with_one_line_in_the_log(
    small_limit: Pair, caplog: pytest.LogCaptureFixture
) -> None:
    """Never a file that looks whole; and the log says why in a line. Before: a traceback
    ('Caught handled exception, but response already started')."""
    head = response(b"200 OK", [OCTETS, (b"content-length", b"3000000")], length=False)
    small_limit.up.answers[b"/files/cut/content"] = [head, b"x" * 1_500_000, CLOSE]
    uvicorn_log = logging.getLogger("uvicorn.error")  # it does not propagate to the root
    uvicorn_log.addHandler(caplog.handler)
    try:
        with (
            caplog.at_level(logging.WARNING),
            httpx.Client(base_url=small_limit.calguard, timeout=30) as client,
            pytest.raises(httpx.RemoteProtocolError),
        ):
            client.get("/v1/files/cut/content").read()
        for _ in range(100):  # bounded: the server logs once it has closed the connection
            if any("without completing" in r.getMessage() for r in caplog.records):
                break
            time.sleep(0.05)
    finally:
        uvicorn_log.removeHandler(caplog.handler)
    assert any("cut after it began" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.exc_info]  # no traceback
