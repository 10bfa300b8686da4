"""Defects a third review found in the transparent-proxy and in-process changes, each failing
before its fix: calguard's key reaching the client in the upstream's ``Content-Type``, and a
relayed path whose escapes are not UTF-8 (an overlong ``%c0%ae``) sent on as written although
calguard checked another path."""

from __future__ import annotations

import pytest

from tests.e2e.differential import ASK, ASK_STREAM, CHAT, CHUNK, KEY, SSE, Pair
from tests.e2e.raw_upstream import JSON, chunked, exchange, request, response

# -- calguard's key in the upstream's Content-Type -------------------------------------------

TYPED = b"; k=" + KEY.encode()
LEAKS = [
    ("relayed", request(b"GET", b"/v1/files/f/content"),
     response(b"200 OK", [(b"content-type", b"text/plain" + TYPED)], b"x")),
    ("relayed stream", request(b"POST", b"/v1/threads/t/runs", [JSON], ASK_STREAM),
     chunked(b"200 OK", [(SSE[0], SSE[1] + TYPED)], [b"data: {}\n\n"])),
    ("chat", request(b"POST", b"/v1/chat/completions", [JSON], ASK),
     response(b"200 OK", [(b"content-type", b"application/json" + TYPED)], CHAT)),
    ("chat stream", request(b"POST", b"/v1/chat/completions", [JSON], ASK_STREAM),
     chunked(b"200 OK", [(SSE[0], SSE[1] + TYPED)], [b"data: " + CHUNK + b"\n\n"])),
    ("chat error", request(b"POST", b"/v1/chat/completions", [JSON], ASK),
     response(b"400 Bad Request", [(b"content-type", b"application/json" + TYPED)], b"{}")),
]  # fmt: skip


@pytest.mark.parametrize(("name", "req", "answer"), LEAKS, ids=[n for n, *_ in LEAKS])
def test_a_content_type_never_carries_calguards_key(
    pair: Pair, name: str, req: bytes, answer: bytes | list[bytes]
) -> None:
    """Before: every header value was scrubbed but the content type, which went out as the
    upstream wrote it (the reply's media type, not among its headers)."""
    target = req.split(b" ")[1].removeprefix(b"/v1")
    pair.up.answers[target] = answer
    via = exchange(pair.calguard, req)
    assert via.status in (200, 400), name
    assert not [h for h in via.headers if KEY.encode() in h[0] + h[1]]
    assert via.header(b"content-type") is not None
    assert KEY.encode() not in via.body


# -- a relayed path whose escapes are not UTF-8 ------------------------------------------------


@pytest.mark.parametrize(
    ("written", "checked"),
    [
        # overlong UTF-8 for "..": a lenient decoder upstream reads files/../chat/completions
        (b"/v1/files/%c0%ae%c0%ae/chat/completions",
         b"/v1/files/" + b"%EF%BF%BD" * 4 + b"/chat/completions"),
        (b"/v1/files/a%c0%afb", b"/v1/files/a%EF%BF%BD%EF%BF%BDb"),  # overlong "/"
        (b"/v1/models/%ed%a0%80", b"/v1/models/%EF%BF%BD%EF%BF%BD%EF%BF%BD"),  # a surrogate
        (b"/v1/models/%ff", b"/v1/models/%EF%BF%BD"),
    ],
)  # fmt: skip
def test_a_path_that_is_not_utf8_goes_as_the_path_checked(
    pair: Pair, written: bytes, checked: bytes
) -> None:
    """calguard checks the path decoded as UTF-8, where bytes that are not UTF-8 become
    U+FFFD. Before: the path went on as written, so what the upstream decoded (an overlong
    ``%c0%ae`` is ``.`` to a lenient decoder) was not what calguard had checked."""
    before = len(pair.up.got)
    exchange(pair.calguard, request(b"POST", written, [JSON], b"{}"))
    assert [g.target for g in pair.up.got[before:]] == [checked]
