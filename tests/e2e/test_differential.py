"""Differential, the answer's way: what a client gets through calguard against what it gets
from the upstream itself, byte for byte (transparent by default).

The upstream is raw HTTP on 127.0.0.1 (:mod:`tests.e2e.raw_upstream`): it answers exactly the
bytes a case gives it, and records the exact bytes it was sent. Each case sends one request as
exact bytes to it and to a real calguard in front of it (:mod:`tests.e2e.differential`), and
compares the two. The request's way: ``test_differential_requests.py``.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator

import pytest

from guard.config import RouteConfig
from tests.e2e.differential import (
    ASK,
    ASK_STREAM,
    CHAT,
    CHUNK,
    FRAMING,
    KEY,
    SSE,
    Pair,
    calguard_in_front,
    gz,
)
from tests.e2e.raw_upstream import (
    CLOSE,
    JSON,
    chunked,
    differs,
    exchange,
    request,
    response,
)

# -- content types: as the upstream said them ------------------------------------------------

TYPED = [
    ("text/plain", b"text/plain", b"hello\n"),
    ("text/html", b"text/html", b"<h1>boom</h1>"),
    ("text/csv; header=present", b"text/csv; header=present", b"a,b\n1,2\n"),
    ("application/jsonl", b"application/jsonl", b'{"a":1}\n{"b":2}\n'),
    ("application/octet-stream", b"application/octet-stream", bytes(range(256))),
]


@pytest.mark.parametrize(
    ("ctype", "body"), [(t, b) for _, t, b in TYPED], ids=[n for n, *_ in TYPED]
)
@pytest.mark.parametrize("status", [b"200 OK", b"500 Internal Server Error"])
def test_a_relayed_content_type_is_the_upstreams(
    pair: Pair, ctype: bytes, body: bytes, status: bytes
) -> None:
    """Before: ``text/plain`` came out as ``text/plain; charset=utf-8`` (Starlette adds one)."""
    direct, via = pair.both(
        request(b"GET", b"/v1/files/f-1/content"),
        response(status, [(b"content-type", ctype)], body),
    )
    assert differs(direct, via) == []


def test_a_pass_through_error_keeps_its_content_type(pair: Pair) -> None:
    answer = response(b"500 Internal Server Error", [(b"content-type", b"text/plain")], b"oops\n")
    direct, via = pair.both(request(b"POST", b"/v1/chat/completions", [JSON], ASK), answer)
    assert via.header(b"content-type") == b"text/plain"
    assert differs(direct, via) == []


@pytest.mark.parametrize("path", [b"/v1/chat/completions", b"/v1/threads/t/runs"])
def test_a_stream_keeps_its_content_type(pair: Pair, path: bytes) -> None:
    """The pipeline's pass-through stream and a relayed one (an Assistants run)."""
    answer = chunked(b"200 OK", [SSE], [b"data: " + CHUNK + b"\n\n", b"data: [DONE]\n\n"])
    direct, via = pair.both(request(b"POST", path, [JSON], ASK_STREAM), answer)
    assert via.header(b"content-type") == b"text/event-stream"
    assert differs(direct, via) == []


NO_TYPE = [
    ("no content type", request(b"GET", b"/v1/files/n/content"), response(b"200 OK", [], b"x")),
    ("204", request(b"DELETE", b"/v1/files/d"), response(b"204 No Content", [])),
    (
        "304",
        request(b"GET", b"/v1/files/c", [(b"if-none-match", b'"e1"')]),
        response(b"304 Not Modified", [(b"etag", b'"e1"')]),
    ),
    (
        "307",
        request(b"POST", b"/v1/chat/completions", [JSON], ASK),
        response(b"307 Temporary Redirect", [(b"location", b"/v2/chat/completions")]),
    ),
    (
        "chat 204",
        request(b"POST", b"/v1/chat/completions", [JSON], ASK),
        response(b"204 No Content", []),
    ),
]


@pytest.mark.parametrize(("name", "req", "answer"), NO_TYPE, ids=[n for n, *_ in NO_TYPE])
def test_no_content_type_where_the_upstream_gave_none(
    pair: Pair, name: str, req: bytes, answer: bytes
) -> None:
    """Before: each came with ``content-type: application/json``."""
    direct, via = pair.both(req, answer)
    assert via.header(b"content-type") is None, name
    assert differs(direct, via) == []


# -- response header values: as their bytes came ---------------------------------------------

ODD_VALUES = [
    (b"x-title", "Café — 東京".encode()),  # UTF-8
    (b"x-legacy", b"caf\xe9"),  # Latin-1 bytes (obs-text)
    (b"content-disposition", b'attachment; filename="r\xc3\xa9sum\xc3\xa9.jsonl"'),
]
ODD_ANSWERS = [
    ("relayed", request(b"GET", b"/v1/files/f-odd"),
     response(b"200 OK", [JSON, *ODD_VALUES], b"{}")),
    ("relayed 404", request(b"GET", b"/v1/files/f-gone"),
     response(b"404 Not Found", [JSON, *ODD_VALUES], b'{"error":{"message":"gone"}}')),
    ("chat", request(b"POST", b"/v1/chat/completions", [JSON], ASK),
     response(b"200 OK", [JSON, *ODD_VALUES], CHAT)),
    ("chat 429", request(b"POST", b"/v1/chat/completions", [JSON], ASK),
     response(b"429 Too Many Requests", [JSON, *ODD_VALUES], b'{"error":{"message":"slow"}}')),
    ("chat stream", request(b"POST", b"/v1/chat/completions", [JSON], ASK_STREAM),
     chunked(b"200 OK", [SSE, *ODD_VALUES], [b"data: " + CHUNK + b"\n\n", b"data: [DONE]\n\n"])),
]  # fmt: skip


@pytest.mark.parametrize(("name", "req", "answer"), ODD_ANSWERS, ids=[n for n, *_ in ODD_ANSWERS])
def test_a_header_value_that_is_not_ascii_goes_out_as_its_bytes(
    pair: Pair, name: str, req: bytes, answer: bytes | list[bytes]
) -> None:
    """Before: a 500 ``internal error (UnicodeEncodeError)`` for the first two (calguard read
    the value as UTF-8 and wrote it as Latin-1), ``é`` as one byte for the third."""
    direct, via = pair.both(req, answer)
    assert via.status == direct.status, name
    for field, value in ODD_VALUES:
        assert via.header(field) == value, name
    assert differs(direct, via, *FRAMING) == []


def test_the_key_is_scrubbed_from_a_header_value_that_is_not_ascii(pair: Pair) -> None:
    echoed = b"caf\xc3\xa9 Bearer " + KEY.encode() + b" \xe9"
    pair.up.answers[b"/files/echo"] = response(b"200 OK", [JSON, (b"x-echo", echoed)], b"{}")
    via = exchange(pair.calguard, request(b"GET", b"/v1/files/echo"))
    assert via.header(b"x-echo") == b"caf\xc3\xa9 Bearer [REDACTED] \xe9"


# -- content codings: every layer undone, or nothing passed on unread -------------------------


STACKED = [
    ("gzip, gzip", lambda b: gz(gz(b))),
    ("deflate, gzip", lambda b: gz(zlib.compress(b))),
    ("x-gzip", gz),
    ("identity, gzip", gz),
    ("GZIP", gz),  # aiohttp's own
]


@pytest.mark.parametrize(("coding", "encode"), STACKED, ids=[c for c, _ in STACKED])
@pytest.mark.parametrize("where", ["relayed", "chat", "chat stream", "relayed 400"])
def test_a_body_in_several_codings_reaches_the_client_decoded(
    pair: Pair, coding: str, encode: Callable[[bytes], bytes], where: str
) -> None:
    """Before: aiohttp reads one coding only; the others reached the client as compressed
    bytes, their Content-Encoding dropped (unreadable, and the key could not be scrubbed)."""
    plain = {"relayed": b'{"k":"' + KEY.encode() + b'"}', "chat": CHAT,
             "chat stream": b"data: " + CHUNK + b"\n\ndata: [DONE]\n\n",
             "relayed 400": b'{"error":{"message":"bad"}}'}[where]  # fmt: skip
    status = b"400 Bad Request" if where == "relayed 400" else b"200 OK"
    ctype = SSE if where == "chat stream" else JSON
    answer = response(status, [ctype, (b"content-encoding", coding.encode())], encode(plain))
    path = b"/v1/files/f-z" if where.startswith("relayed") else b"/v1/chat/completions"
    body = ASK_STREAM if where == "chat stream" else ASK
    direct, via = pair.both(request(b"POST", path, [JSON], body), answer)
    assert via.status == direct.status
    assert via.header(b"content-encoding") is None
    assert via.body == plain.replace(KEY.encode(), b"[REDACTED]")


@pytest.mark.parametrize(
    "coding", [b"x-custom", b"compress", b"gzip, x-custom", b"caf\xe9", KEY.encode()]
)
@pytest.mark.parametrize("path", [b"/v1/files/f-custom", b"/v1/chat/completions"])
def test_a_coding_calguard_cannot_read_is_a_502_not_bytes_passed_on_unread(
    pair: Pair, coding: bytes, path: bytes
) -> None:
    """Before: the bytes went out with no Content-Encoding, the key inside them unscrubbed."""
    answer = response(
        b"200 OK", [JSON, (b"content-encoding", coding)], b'{"k":"' + KEY.encode() + b'"}'
    )
    via = pair.both(request(b"POST", path, [JSON], ASK), answer)[1]
    assert via.status == 502
    assert b'"upstream_encoding"' in via.body
    assert KEY.encode() not in via.body


def test_a_body_that_does_not_decode_as_said_is_a_502(pair: Pair) -> None:
    answer = response(b"200 OK", [JSON, (b"content-encoding", b"gzip, gzip")], gz(b"not twice"))
    via = pair.both(request(b"GET", b"/v1/files/f-bad"), answer)[1]
    assert via.status == 502
    assert b'"upstream_encoding"' in via.body


# -- secrets: never in a header, names included -----------------------------------------------


def test_a_header_named_after_the_key_does_not_reach_the_client(pair: Pair) -> None:
    """Before: ``x-<key>: 1`` reached the client, the key in it lower-cased (only values were
    scrubbed)."""
    named = [JSON, (b"x-" + KEY.encode(), b"1"), (b"x-" + KEY.upper().encode(), b"2")]
    for path in (b"/v1/files/f-named", b"/v1/chat/completions"):
        answer = response(b"200 OK", named, CHAT)
        via = pair.both(request(b"POST", path, [JSON], ASK), answer)[1]
        assert via.status == 200
        everything = b"".join(k + v for k, v in via.headers) + via.body
        assert KEY.lower().encode() not in everything.lower()


# -- the sweep: cases that already crossed as they were, kept so ------------------------------

EVENTS = [
    b": keep-alive\n\n",
    b"retry: 3000\n\n",
    b"id: 7\ndata: " + CHUNK + b"\n\n",
    b"event: ping\r\ndata: " + CHUNK + b"\r\n\r\n",  # CRLF line ends
    b"da",  # an event split across chunks
    b"ta: " + CHUNK[:40],
    CHUNK[40:] + b"\n\n",
    b"data: [DONE]\n\n",
]
REPEATED = [JSON, (b"set-cookie", b"a=1; Path=/"), (b"set-cookie", b"b=2"), (b"vary", b"Origin"),
            (b"vary", b"Accept-Encoding"), (b"x-ratelimit-remaining-requests", b"59")]  # fmt: skip
SWEEP = [
    ("PATCH", request(b"PATCH", b"/v1/fine_tuning/jobs/ft-1", [JSON], b'{"a": 1}'), None),
    ("PUT", request(b"PUT", b"/v1/vector_stores/vs_1", [JSON], b'{"a": 1}\n'), None),
    ("assistants", request(b"GET", b"/v1/assistants/asst_1?order=desc&limit=2",
                           [(b"openai-beta", b"assistants=v2")]), None),
    ("batch", request(b"POST", b"/v1/batches", [JSON],
                      b'{"input_file_id": "file-1", "endpoint": "/v1/chat/completions"}'), None),
    ("repeated fields", request(b"GET", b"/v1/files/f-rep"), response(b"200 OK", REPEATED, b"{}")),
    ("chunked jsonl", request(b"GET", b"/v1/files/f-ch/content"),
     chunked(b"200 OK", [(b"content-type", b"application/jsonl")], [b'{"a":1}\n', b'{"b":2}\n'])),
    ("100 continue", request(b"GET", b"/v1/files/f-100"),
     b"HTTP/1.1 100 Continue\r\n\r\n" + response(b"200 OK", [JSON], b"{}")),
    ("302", request(b"GET", b"/v1/files/f-302/content"),
     response(b"302 Found", [(b"location", b"https://cdn.example/f?sig=a%2Fb")], b"")),
    ("409 text", request(b"POST", b"/v1/batches/b/cancel", [JSON], b""),
     response(b"409 Conflict", [(b"content-type", b"text/plain")], b"already cancelled\n")),
    ("503", request(b"GET", b"/v1/files/f-503"),
     response(b"503 Service Unavailable", [JSON, (b"x-should-retry", b"false")], b'{"error":{}}')),
    ("chat, trailing white space both ways",
     request(b"POST", b"/v1/chat/completions", [JSON], ASK + b"  \n\n"),
     response(b"200 OK", REPEATED, CHAT + b"\n  \r\n")),
    ("chat error, white space", request(b"POST", b"/v1/chat/completions", [JSON], ASK),
     response(b"400 Bad Request", [JSON], b'{ "error" : { "message" : "no" } }\n')),
    ("chat stream: comments, retry, id, CRLF, split",
     request(b"POST", b"/v1/chat/completions", [JSON], ASK_STREAM),
     chunked(b"200 OK", [SSE, (b"x-request-id", b"req_1")], EVENTS)),
    ("relayed stream: comments, retry, id, CRLF, split",
     request(b"POST", b"/v1/threads/t/runs", [JSON], b'{"stream": true}'),
     chunked(b"200 OK", [SSE], EVENTS)),
    ("completions", request(b"POST", b"/v1/completions", [JSON], b'{"model":"m","prompt":"x"}\n'),
     response(b"200 OK", [JSON], b'{"id":"c","object":"text_completion","choices":[]}\n')),
    ("embeddings", request(b"POST", b"/v1/embeddings", [JSON], b'{"model":"m","input":"x"}'),
     response(b"200 OK", [JSON], b'{"object":"list","data":[],"model":"m"}  ')),
]  # fmt: skip


@pytest.mark.parametrize(("name", "req", "answer"), SWEEP, ids=[n for n, *_ in SWEEP])
def test_what_calguard_does_not_act_on_crosses_as_it_was(
    pair: Pair, name: str, req: bytes, answer: bytes | list[bytes] | None
) -> None:
    direct, via = pair.both(req, answer)
    assert differs(direct, via, *FRAMING) == [], name
    sent_direct, sent_via = pair.up.got[-2:]
    assert (sent_via.method, sent_via.target, sent_via.body) == (
        sent_direct.method, sent_direct.target, sent_direct.body), name  # fmt: skip


CUT = [
    [response(b"200 OK", [JSON, (b"content-length", b"100")], b'{"partial', length=False), CLOSE],
    [chunked(b"200 OK", [(b"content-type", b"application/jsonl")], [])[0],
     b"8\r\n{\"a\":1}\n\r\n", CLOSE],
]  # fmt: skip


@pytest.mark.parametrize("answer", CUT, ids=["content-length", "chunked"])
def test_a_body_cut_short_is_a_502_not_a_short_200(pair: Pair, answer: list[bytes]) -> None:
    """Directly, the client gets a 200 and a short body; calguard reads the whole body before
    its status goes out, and says what happened."""
    via = pair.both(request(b"GET", b"/v1/files/f-cut/content"), answer)[1]
    assert via.status == 502
    assert b'"upstream_error"' in via.body


@pytest.mark.parametrize("path", [b"/v1/chat/completions", b"/v1/threads/t/runs"])
def test_a_stream_cut_short_ends_with_an_error_event(pair: Pair, path: bytes) -> None:
    """The events that came reach the client as they were, then an error event of its own."""
    head, first = chunked(b"200 OK", [SSE], [b"data: " + CHUNK + b"\n\n"])[:2]
    direct, via = pair.both(request(b"POST", path, [JSON], ASK_STREAM), [head, first, CLOSE])
    assert via.status == direct.status == 200
    assert via.body.startswith(direct.body)
    assert via.body[len(direct.body) :].startswith(b'data: {"error":')


# -- media types are case-insensitive -------------------------------------------------------


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """calguard with a route whose answers a policy reads (``pii``, redact)."""
    pii = RouteConfig(policies=[{"type": "pii", "action": "redact", "on": "response"}])
    with calguard_in_front(tmp_path_factory.mktemp("checked") / "c.db", routes={"m": pii}) as both:
        yield both


@pytest.mark.parametrize("ctype", [b"Text/Event-Stream", b"TEXT/EVENT-STREAM; charset=UTF-8"])
@pytest.mark.parametrize("path", [b"/v1/chat/completions", b"/v1/threads/t/runs"])
def test_a_stream_is_a_stream_whatever_the_case_of_its_media_type(
    checked: Pair, ctype: bytes, path: bytes
) -> None:
    """Before: read as one JSON body; on a route with response policies a 502 'the upstream's
    answer is not a JSON object' (and, elsewhere, held until the stream ended)."""
    events = [b"data: " + CHUNK + b"\n\n", b"data: [DONE]\n\n"]
    answer = chunked(b"200 OK", [(b"content-type", ctype)], events)
    direct, via = checked.both(request(b"POST", path, [JSON], ASK_STREAM), answer)
    assert via.status == 200
    assert differs(direct, via) == []


# -- flag-only policies: what they cannot read goes as it came --------------------------------


@pytest.fixture(scope="module")
def flagging(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """calguard with a route whose answers a policy reads and only flags (``pii``)."""
    pii = RouteConfig(policies=[{"type": "pii", "action": "flag", "on": "response"}])
    db = tmp_path_factory.mktemp("flagging") / "f.db"
    with calguard_in_front(db, routes={"m": pii}) as both:
        yield both


def test_an_answer_flag_only_policies_cannot_read_goes_as_it_came(
    flagging: Pair, checked: Pair
) -> None:
    """Before: a 502 ``upstream_unreadable``, as where a policy may block or redact (which
    still fails closed), though a flag changes nothing."""
    answer = response(b"200 OK", [(b"content-type", b"text/plain")], b"hello bob@example.com\n")
    direct, via = flagging.both(request(b"POST", b"/v1/chat/completions", [JSON], ASK), answer)
    assert via.status == 200
    assert differs(direct, via) == []
    redacting = checked.both(request(b"POST", b"/v1/chat/completions", [JSON], ASK), answer)[1]
    assert redacting.status == 502
    assert b'"upstream_unreadable"' in redacting.body


def test_a_stream_event_flag_only_policies_cannot_read_goes_as_it_came(flagging: Pair) -> None:
    """Before: the stream ended there with an ``upstream_unreadable`` error event."""
    events = [b"data: " + CHUNK + b"\n\n", b"data: not json\n\n", b"data: " + CHUNK + b"\n\n",
              b"data: [DONE]\n\n"]  # fmt: skip
    answer = chunked(b"200 OK", [SSE], events)
    req = request(b"POST", b"/v1/chat/completions", [JSON], ASK_STREAM)
    direct, via = flagging.both(req, answer)
    assert differs(direct, via) == []
    assert via.body == b"".join(events)
