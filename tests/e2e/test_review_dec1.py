"""Review of the 1 December changes (bad_http 400, request Content-Encoding), on the wire: a
real ``calguard serve`` process or calguard in front of a raw upstream, raw bytes on a socket."""

from __future__ import annotations

import json
import socket
import time
import zlib
from collections.abc import Iterator

import pytest

from tests.e2e.differential import ASK, CHAT, Pair, calguard_in_front, gz
from tests.e2e.raw_upstream import JSON, exchange, request, response
from tests.e2e.serve_process import fake_upstream_served


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with fake_upstream_served(tmp_path_factory.mktemp("review-dec1")) as url:
        yield url


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _one_answer(s: socket.socket) -> tuple[bytes, bytes, bytes]:
    """(head, body, what came after it) of the first answer on ``s`` (one with a length)."""
    got = b""
    deadline = time.monotonic() + 10
    while b"\r\n\r\n" not in got and time.monotonic() < deadline:
        got += s.recv(65536)
    head, _, body = got.partition(b"\r\n\r\n")
    length = int(
        next(
            line.split(b":", 1)[1]
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
    )
    while len(body) < length and (chunk := s.recv(65536)):
        body += chunk
    return head, body[:length], body[length:]


def _read_to_close(s: socket.socket) -> bytes:
    got = b""
    while chunk := s.recv(65536):
        got += chunk
    return got


UPGRADES = {
    "a WebSocket upgrade without its key": b"Connection: Upgrade\r\nUpgrade: websocket\r\n",
    "a whole WebSocket handshake": b"Connection: Upgrade\r\nUpgrade: websocket\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
}


@pytest.mark.parametrize("upgrade", UPGRADES.values(), ids=UPGRADES.keys())
def test_a_websocket_upgrade_is_answered_in_json_not_plain_text(
    served: str, upgrade: bytes
) -> None:
    """Before: the WebSocket library uvicorn finds installed answered it itself, in plain
    text ('Failed to open a WebSocket connection: missing Sec-WebSocket-Key header.'), or
    with an empty text/plain 403 (calguard has no WebSocket route)."""
    with _connect(served) as s:
        s.sendall(b"GET /v1/models HTTP/1.1\r\nHost: a\r\n" + upgrade + b"\r\n")
        head, body, _ = _one_answer(s)
    headers = dict(line.lower().split(": ", 1) for line in head.decode("latin-1").split("\r\n")[1:])
    assert headers.get("content-type") == "application/json", head + b"\r\n\r\n" + body
    assert json.loads(body)


def test_a_bad_body_after_the_answer_gets_no_second_answer(served: str) -> None:
    """A request answered before its (chunked) body has all come, whose body then turns out
    bad, has had its answer: the connection closes. Before: a 400 bad_http followed, an
    answer to no request, which a client reusing the connection reads as its next one's."""
    with _connect(served) as s:
        s.sendall(b"GET /nowhere HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
        head, _, after = _one_answer(s)
        assert head.startswith(b"HTTP/1.1 404 ")
        s.sendall(b"zz\r\nhello\r\n0\r\n\r\n")  # not a chunk size
        rest = after + _read_to_close(s)
    assert rest == b"", rest


# -- a compressed request body -----------------------------------------------------------------


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    deny = [
        {"type": "regex", "on": "prompt", "action": "block", "params": {"patterns": ["forbidden"]}}
    ]
    with calguard_in_front(
        tmp_path_factory.mktemp("review-dec1-enc") / "r.db",
        max_body_bytes=100_000,
        default_route={"policies": deny},
    ) as both:
        yield both


def post(pair: Pair, body: bytes, *codings: bytes) -> tuple[int, bytes, list[bytes]]:
    pair.up.answers[b"/chat/completions"] = response(b"200 OK", [JSON], CHAT)
    before = len(pair.up.got)
    headers = [JSON, *((b"content-encoding", c) for c in codings)]
    via = exchange(pair.calguard, request(b"POST", b"/v1/chat/completions", headers, body))
    return via.status, via.body, [g.body for g in pair.up.got[before:]]


LINES = {
    "gzip, gzip on two lines": ((b"gzip", b"gzip"), lambda b: gz(gz(b))),
    "identity, gzip on two lines": ((b"identity", b"gzip"), gz),
}


@pytest.mark.parametrize(("codings", "encode"), LINES.values(), ids=LINES.keys())
def test_content_encoding_on_several_lines_is_the_list_of_them_all(
    guarded: Pair, codings: tuple[bytes, ...], encode: object
) -> None:
    """HTTP: a field on several lines is the comma-joined list of them (RFC 9110, 5.3).
    Before: only the first line was read, and a well-formed body was a 400 invalid_json
    ("'utf-8' codec can't decode byte 0x8b")."""
    assert callable(encode)
    status, body, sent = post(guarded, encode(ASK), *codings)
    assert status == 200, body[:300]
    assert sent == [ASK]


def test_a_gzip_body_of_several_members_is_read_whole(guarded: Pair) -> None:
    """A gzip file may hold several members, one after another (RFC 1952, 2.2; ``cat a.gz
    b.gz``); gunzip reads them all. Before: the first member only, here a 400 invalid_json."""
    status, body, sent = post(guarded, gz(ASK[:20]) + gz(ASK[20:]), b"gzip")
    assert status == 200, body[:300]
    assert sent == [ASK]


@pytest.mark.parametrize(
    ("coding", "encoded"),
    [(b"gzip", gz(ASK) + b"JUNK"), (b"deflate", zlib.compress(ASK) + b"JUNK")],
    ids=["gzip", "deflate"],
)
def test_bytes_after_the_compressed_body_are_a_400(
    guarded: Pair, coding: bytes, encoded: bytes
) -> None:
    """A body that does not decode as its Content-Encoding says is a 400
    invalid_content_encoding. Before: what followed the compressed stream was dropped
    silently, and what was left went on as if it were the whole body."""
    status, body, sent = post(guarded, encoded, coding)
    assert status == 400, body[:300]
    assert json.loads(body)["error"]["code"] == "invalid_content_encoding"
    assert sent == []


def test_a_request_before_a_bad_one_on_the_same_connection_is_answered(served: str) -> None:
    """Pipelined: a good request, then bytes that do not parse. The good one gets its answer,
    then the 400 bad_http. Before, where httptools is installed (uvicorn[standard]), the
    protocol calguard picked: the 400 alone, as the answer to the good request."""
    with _connect(served) as s:
        s.sendall(b"GET /nowhere HTTP/1.1\r\nHost: a\r\n\r\nGARBAGE\r\n\r\n")
        head, _, after = _one_answer(s)
        rest = after + _read_to_close(s)
    assert head.startswith(b"HTTP/1.1 404 "), head
    assert rest.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b'"code": "bad_http"' in rest


# -- an answer over max_answer_bytes ----------------------------------------------------------


@pytest.mark.parametrize(
    ("coding", "body", "code"),
    [
        (b"gzip", gz(b'{"k":"' + b"a" * 3_000_000 + b'"}'), "upstream_too_large"),
        (b"br", b"\x1b\x03\x00", "upstream_encoding"),  # a coding calguard never asks for
        (b"x-custom, gzip", gz(b"{}"), "upstream_encoding"),
    ],
)
def test_an_answer_calguard_cannot_read_is_not_asked_for_again_by_the_openai_client(
    tmp_path_factory: pytest.TempPathFactory, coding: bytes, body: bytes, code: str
) -> None:
    """The same request gets the same answer calguard cannot read: ``x-should-retry: false``
    tells the SDK so. Before: the SDK retried its 502 twice, so the upstream answered (and
    billed) the completion three times (a too-large one read up to the limit each time)."""
    import openai

    with calguard_in_front(
        tmp_path_factory.mktemp("unreadable") / "t.db", max_answer_bytes=1_000_000
    ) as pair:
        pair.up.answers[b"/chat/completions"] = response(
            b"200 OK", [JSON, (b"content-encoding", coding)], body
        )
        with (
            openai.OpenAI(base_url=f"{pair.calguard}/v1", api_key="sk-client") as client,
            pytest.raises(openai.InternalServerError) as caught,
        ):
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        assert caught.value.code == code
        assert caught.value.response.headers.get("x-should-retry") == "false"
        assert len(pair.up.got) == 1


def test_a_204_that_names_codings_is_a_204(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Before: a 502 upstream_encoding ('the body ends inside a compressed stream') for an
    answer that has no body at all."""
    with calguard_in_front(tmp_path_factory.mktemp("no-body") / "n.db") as pair:
        pair.up.answers[b"/files/f-gone"] = response(
            b"204 No Content", [(b"content-encoding", b"gzip, gzip")], b""
        )
        via = exchange(pair.calguard, request(b"DELETE", b"/v1/files/f-gone"))
    assert via.status == 204
    assert via.body == b""
