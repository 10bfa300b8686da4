"""A request uvicorn cannot parse gets calguard's OpenAI-style 400, on a real ``calguard serve``
process, as bytes on a socket (no HTTP client would send them)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from tests.e2e.serve_process import fake_upstream_served

CHAT = b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
BODY = b'{"model":"m","messages":[{"role":"user","content":"hi"}]}'

MALFORMED = {
    "a request line that is not one": b"GARBAGE\r\n\r\n",
    "two Content-Length headers that disagree": CHAT
    + b"Content-Type: application/json\r\nContent-Length: 5\r\nContent-Length: 9\r\n\r\n"
    + BODY,
    "two Host headers": b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "a header line without a colon": CHAT + b"X-Broken\r\nContent-Length: 0\r\n\r\n",
    "a chunked body with a bad chunk size": CHAT
    + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with fake_upstream_served(tmp_path_factory.mktemp("bad-http")) as url:
        yield url


def exchange(url: str, raw: bytes) -> bytes:
    """What the server wrote before it closed the connection."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(raw)
        got = b""
        while chunk := s.recv(65536):
            got += chunk
    return got


@pytest.mark.parametrize("raw", MALFORMED.values(), ids=MALFORMED.keys())
def test_an_unparseable_request_gets_an_openai_style_400(served: str, raw: bytes) -> None:
    head, _, body = exchange(served, raw).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0] == "HTTP/1.1 400 Bad Request"
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    assert headers["content-type"] == "application/json"
    assert int(headers["content-length"]) == len(body)
    error = json.loads(body)["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        "bad_http",
        None,
    )
    assert error["message"].startswith("calguard could not parse this HTTP request")


def test_a_well_formed_request_on_the_same_server_is_answered(served: str) -> None:
    raw = CHAT + b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(BODY)
    head, _, _ = exchange(served, raw + b"Connection: close\r\n\r\n" + BODY).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
