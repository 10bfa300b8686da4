"""A relayed request body larger than ``max_body_bytes`` (a file upload: OpenAI takes files of
up to 512 MB, audio of 25 MB) streams through to the upstream as it comes, with the length the
client said, instead of a 413; it is asked once (it cannot be sent again). A body up to the
limit is read whole and retried as before. A real calguard in front of a raw upstream."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from guard.config import Settings
from guard.server import create_app
from guard.testing.servers import serve_in_thread
from tests.e2e.differential import KEY, Pair
from tests.e2e.raw_upstream import JSON, Got, exchange, raw_upstream, response

LIMIT = 100_000  # max_body_bytes
FILE = (
    b'{"id":"file-1","object":"file","bytes":1,"created_at":1,"filename":"b.jsonl",'
    b'"purpose":"batch","status":"processed"}'
)
LINE = b'{"custom_id":"1","method":"POST","url":"/v1/chat/completions","body":{}}\n'
OURS = {b"host", b"authorization", b"accept-encoding", b"connection", b"content-type"}


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """calguard that reads bodies of 100 kB at most, and retries (three attempts)."""
    with raw_upstream() as up:
        db = tmp_path_factory.mktemp("uploads") / "u.db"
        settings = Settings(
            upstream=f"{up.url}/v1", upstream_key=KEY, max_body_bytes=LIMIT, max_attempts=3,
            retry_max_wait_s=0.01, store=f"sqlite:///{db}",
        )  # fmt: skip
        with serve_in_thread(create_app(settings)) as url:
            yield Pair(up, url)


def test_an_upload_over_the_limit_reaches_the_upstream_as_the_sdk_sent_it(pair: Pair) -> None:
    """Before: a 413 ``request body is over the limit``, for a file OpenAI takes."""
    pair.up.answers[b"/files"] = response(b"200 OK", [JSON], FILE)
    data = LINE * (3 * LIMIT // len(LINE))
    got = []
    for base in (pair.up.url, pair.calguard):
        with openai.OpenAI(base_url=f"{base}/v1", api_key="sk-client", max_retries=0) as c:
            made = c.files.with_raw_response.create(file=("b.jsonl", data), purpose="batch")
        assert made.status_code == 200
        assert made.parse().id == "file-1"
        got.append(pair.up.got[-1])
    direct, via = got
    assert via.body.count(data) == 1
    assert via.body.replace(boundary(via), boundary(direct)) == direct.body  # the SDK's own
    assert via.header(b"content-length") == b"%d" % len(via.body)  # not re-framed as chunked
    assert via.header(b"transfer-encoding") is None
    assert via.header(b"authorization") == b"Bearer " + KEY.encode()
    assert lines(via) == lines(direct)


def boundary(got: Got) -> bytes:
    """The multipart boundary the SDK drew for this request (a new one each time)."""
    return (got.header(b"content-type") or b"").partition(b"boundary=")[2]


def lines(got: Got) -> list[tuple[bytes, bytes]]:
    """The header lines but those about the connection and the key (and the boundary)."""
    return sorted(h for h in got.headers if h[0] not in OURS)


def test_an_upload_of_no_said_length_goes_as_it_came(pair: Pair) -> None:
    pair.up.answers[b"/uploads/u/parts"] = response(b"200 OK", [JSON], b'{"id":"part-1"}')
    parts = [bytes([i]) * 30_000 for i in range(10)]
    r = httpx.post(
        f"{pair.calguard}/v1/uploads/u/parts",
        content=iter(parts),
        headers={"content-type": "application/octet-stream"},
        timeout=30,
    )
    assert (r.status_code, r.json()) == (200, {"id": "part-1"})
    got = pair.up.got[-1]
    assert got.body == b"".join(parts)
    assert got.header(b"transfer-encoding") == b"chunked"
    assert got.header(b"content-type") == b"application/octet-stream"


def test_a_streamed_upload_is_asked_once_and_its_answer_passed_back(pair: Pair) -> None:
    """It cannot be sent again: the upstream's 503 goes back (the client's SDK retries)."""
    pair.up.answers[b"/files"] = response(
        b"503 Service Unavailable", [JSON], b'{"error":{"message":"busy"}}'
    )
    before = len(pair.up.got)
    r = httpx.post(f"{pair.calguard}/v1/files", content=b"x" * (LIMIT + 1), timeout=30)
    assert r.status_code == 503
    assert r.json() == {"error": {"message": "busy"}}
    assert len(pair.up.got) - before == 1
    before = len(pair.up.got)  # one within the limit is read whole, and retried
    r = httpx.post(f"{pair.calguard}/v1/files", content=b"x" * LIMIT, timeout=30)
    assert r.status_code == 503
    assert len(pair.up.got) - before == 3


def test_the_text_endpoints_keep_the_limit(pair: Pair) -> None:
    r = httpx.post(
        f"{pair.calguard}/v1/chat/completions",
        content=b'{"model":"m","messages":[{"role":"user","content":"' + b"x" * LIMIT + b'"}]}',
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert r.status_code == 413
    assert r.json()["error"]["type"] == "invalid_request_error"


def test_a_length_said_beside_chunks_is_not_passed_on(pair: Pair) -> None:
    """A body framed by its chunks goes as it came, whatever Content-Length the client also
    said (RFC 9112, 6.3: Transfer-Encoding wins, and a proxy removes the length). Before: the
    length went on beside the streamed body, and the upstream got its first 200,000 bytes of
    300,000, as if whole (a longer length would have left it waiting for bytes never sent)."""
    pair.up.answers[b"/uploads/u/parts"] = response(b"200 OK", [JSON], b'{"id":"part-1"}')
    parts = [bytes([i]) * LIMIT for i in range(3)]
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    got = exchange(
        pair.calguard,
        b"POST /v1/uploads/u/parts HTTP/1.1\r\nhost: x\r\nconnection: close\r\n"
        b"content-length: %d\r\ntransfer-encoding: chunked\r\n\r\n" % (2 * LIMIT) + chunked,
    )
    assert (got.status, got.body) == (200, b'{"id":"part-1"}')
    sent = pair.up.got[-1]
    assert sent.body == b"".join(parts)
    assert sent.header(b"transfer-encoding") == b"chunked"
    assert sent.header(b"content-length") is None
