"""An upstream answer larger than ``max_answer_bytes`` once decoded is a 502, however small it
came (a gzip "bomb"), on every way an answer is read whole; one under it passes whole. (A
relayed successful answer is not read whole when it may be large: it streams through,
``tests/e2e/test_relayed_files.py``.)"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import pytest

from tests.e2e.differential import ASK, ASK_STREAM, KEY, Pair, calguard_in_front, gz
from tests.e2e.raw_upstream import JSON, exchange, request, response

LIMIT = 1_000_000


@functools.cache
def bomb(layers: int) -> bytes:
    """50 MB of JSON-looking bytes, compressed ``layers`` times: a few hundred kB or less."""
    body = b'{"k":"' + b"a" * 50_000_000 + b'"}'
    for _ in range(layers):
        body = gz(body)
    return body


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    with calguard_in_front(
        tmp_path_factory.mktemp("size") / "s.db", max_answer_bytes=LIMIT
    ) as both:
        yield both


CASES = {  # (where, status, coding): (method, path, body)
    "chat": (b"POST", b"/v1/chat/completions", ASK),
    "relayed 400": (b"POST", b"/v1/files", ASK),
    "stream answered whole": (b"POST", b"/v1/chat/completions", ASK_STREAM),
}


@pytest.mark.parametrize("coding", ["gzip", "gzip, gzip"])
@pytest.mark.parametrize("where", CASES)
def test_an_answer_over_the_limit_is_a_502_not_read_to_its_end(
    small: Pair, where: str, coding: str
) -> None:
    """Before: read and decoded whole, whatever its size (a relayed 'gzip, gzip' bomb of 50 MB
    reached the client whole; the chat one was a 502 only after all of it was in memory)."""
    method, path, body = CASES[where]
    status = b"400 Bad Request" if where == "relayed 400" else b"200 OK"
    layers = coding.count("gzip")
    small.up.answers[path.removeprefix(b"/v1")] = response(
        status, [JSON, (b"content-encoding", coding.encode())], bomb(layers)
    )
    via = exchange(small.calguard, request(method, path, [JSON] if body else [], body))
    assert via.status == 502, via.body[:300]
    assert b'"upstream_too_large"' in via.body
    assert b"max_answer_bytes" in via.body
    assert KEY.encode() not in via.body


def test_an_answer_under_the_limit_passes_whole(small: Pair) -> None:
    plain = b'{"k":"' + bytes(range(32, 127)) * 10_000 + b'"}'  # 950 kB: many pieces
    small.up.answers[b"/chat/completions"] = response(
        b"200 OK", [JSON, (b"content-encoding", b"gzip, gzip")], gz(gz(plain))
    )
    via = exchange(small.calguard, request(b"POST", b"/v1/chat/completions", [JSON], ASK))
    assert via.status == 200
    assert via.body == plain


@pytest.mark.parametrize("path", [b"/v1/chat/completions", b"/v1/threads/t/runs"])
def test_a_stream_event_over_the_limit_cuts_the_stream_there(small: Pair, path: bytes) -> None:
    """Before: the event was gathered whatever its size, its buffer searched again from its
    start at every chunk (a 10 MB event: 5 s of the event loop, every request stalled)."""
    first = b'data: {"id":"c1","object":"chat.completion.chunk","choices":[]}\n\n'
    huge = b'data: {"k":"' + b"a" * 3_000_000 + b'"}\n\n'
    small.up.answers[path.removeprefix(b"/v1")] = response(
        b"200 OK", [(b"content-type", b"text/event-stream")], first + huge + b"data: [DONE]\n\n"
    )
    via = exchange(small.calguard, request(b"POST", path, [JSON], ASK_STREAM))
    assert via.status == 200
    assert b"a" * 1000 not in via.body
    assert b"[DONE]" not in via.body
    assert via.body.startswith(first)  # what came before it went on
    last = via.body.removeprefix(first)
    assert last.startswith(b'data: {"error":')
    assert last.endswith(b"\n\n")
    assert b'"code":"upstream_too_large"' in last
