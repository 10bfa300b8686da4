"""Differential, the request's way: what the upstream gets from a client through calguard
against what it gets from the client itself (path, method, headers, body bytes), and what
calguard answers on its own paths. The answer's way: ``test_differential.py``.
"""

from __future__ import annotations

import pytest

from tests.e2e.differential import (
    Pair,
    gz,
)
from tests.e2e.raw_upstream import (
    JSON,
    Got,
    differs,
    exchange,
    request,
    response,
)

# -- methods: HEAD and OPTIONS are relayed as the others ----------------------------------------

PREFLIGHT = [
    (b"origin", b"https://app.example"),
    (b"access-control-request-method", b"POST"),
    (b"access-control-request-headers", b"authorization,content-type,x-stainless-os"),
]
ALLOWED = [
    (b"access-control-allow-origin", b"https://app.example"),
    (b"access-control-allow-methods", b"POST, GET"),
    (b"access-control-allow-headers", b"authorization, content-type, x-stainless-os"),
    (b"access-control-max-age", b"600"),
    (b"vary", b"Origin"),
]


@pytest.mark.parametrize("path", [b"/v1/chat/completions", b"/v1/files", b"/v1/models"])
def test_a_cors_preflight_reaches_the_upstream(pair: Pair, path: bytes) -> None:
    """A browser SDK asks ``OPTIONS`` before its POST. Before: a 405 from calguard."""
    direct, via = pair.both(
        request(b"OPTIONS", path, PREFLIGHT), response(b"204 No Content", ALLOWED)
    )
    assert via.status == 204
    assert differs(direct, via) == []
    got = pair.up.got[-1]
    assert (got.method, got.target) == (b"OPTIONS", path)
    assert got.header(b"access-control-request-headers") == PREFLIGHT[2][1]


@pytest.mark.parametrize("path", [b"/v1/files/file-1/content", b"/v1/models", b"/v1/models/m-1"])
def test_head_is_relayed_with_the_length_a_get_would_get(pair: Pair, path: bytes) -> None:
    """Before: a 405 (or, for the model routes, a GET sent upstream)."""
    body = b'{"id":"file-1","object":"file"}'
    answer = response(b"200 OK", [JSON, (b"etag", b'"v1"')], body)
    direct, via = pair.both(request(b"HEAD", path), answer)
    assert (via.status, via.body, via.header(b"content-length")) == (200, b"", b"%d" % len(body))
    assert differs(direct, via) == []
    assert (pair.up.got[-1].method, pair.up.got[-1].target) == (b"HEAD", path)


def test_head_to_a_missing_file_is_the_upstreams_404(pair: Pair) -> None:
    answer = response(b"404 Not Found", [JSON], b'{"error":{"message":"no such file"}}')
    direct, via = pair.both(request(b"HEAD", b"/v1/files/nope"), answer)
    assert via.status == 404
    assert differs(direct, via) == []


# -- paths: as the client wrote them ------------------------------------------------------------

WRITTEN = [
    b"/v1/models/org%2Fmodel",  # a model id with a slash: one segment, not two
    b"/v1/models/meta-llama%2FLlama-3-8B%3Afree",
    b"/v1/models/a:b",
    b"/v1/models/%C3%A9t%c3%a9",  # unicode, escapes in either case
    b"/v1/models/a%7Eb~c",
    b"/v1/files/file-abc%2Fdef/content",
    b"/v1/threads/t/messages/m%21",
]


@pytest.mark.parametrize("path", WRITTEN)
def test_a_relayed_path_reaches_the_upstream_as_written(pair: Pair, path: bytes) -> None:
    """Before: ``org%2Fmodel`` arrived as ``org/model`` (another path upstream), ``%c3%a9`` as
    ``%C3%A9`` and ``%7E`` as ``~``. (Escapes that are not UTF-8 go as the path calguard
    checked: ``test_review_round3.py``.)"""
    pair.both(request(b"GET", path + b"?limit=2&x=%2F"))
    direct, via = pair.up.got[-2:]
    assert via.target == direct.target == path + b"?limit=2&x=%2F"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        (b"POST", b"/v1/Chat%2FCompletions"),  # the text endpoint, around the policies
        (b"POST", b"/v1/embeddings%2F"),
        (b"GET", b"/v1/models%2F..%2Ffiles"),  # dot segments once decoded
        (b"GET", b"/v1/models/x%2F%2E%2E%2F..%2Ffiles"),
        (b"GET", b"/v1/files%3Fpurpose=x"),
        (b"GET", b"/v1/files%2523"),  # encoded twice
        (b"GET", b"/v1/files%5C..%5Cx"),
    ],
)
def test_an_escaped_path_is_still_checked_as_decoded(
    pair: Pair, method: bytes, path: bytes
) -> None:
    before = len(pair.up.got)
    via = exchange(pair.calguard, request(method, path, [JSON], b"{}"))
    assert via.status == 404
    assert b'"not_found_error"' in via.body
    assert len(pair.up.got) == before  # nothing went upstream


# -- request headers: the client's, and none calguard's HTTP client makes up -------------------

OURS = {b"host", b"content-length", b"accept-encoding", b"authorization", b"connection"}


def sent_on(got: list[Got]) -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
    """The header lines the upstream got directly and through calguard, but those about the
    connection and calguard's own key."""
    direct, via = got[-2:]
    return (sorted(h for h in direct.headers if h[0] not in OURS),
            sorted(h for h in via.headers if h[0] not in OURS))  # fmt: skip


BARE = [
    (b"POST", b"/v1/files", [], b"raw upload"),
    (b"PUT", b"/v1/vector_stores/vs_1", [(b"x-custom", b"1")], b"{}"),
    (b"GET", b"/v1/files", [], b""),
    (b"DELETE", b"/v1/files/f-1", [(b"user-agent", b"my-app/1")], b""),
    (b"POST", b"/v1/uploads/u/parts", [(b"content-type", b"multipart/form-data; boundary=x")],
     b"--x\r\ncontent-disposition: form-data; name=data\r\n\r\nabc\r\n--x--\r\n"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "headers", "body"), BARE)
def test_a_relayed_request_gets_no_header_the_client_did_not_send(
    pair: Pair, method: bytes, path: bytes, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    """Before: ``content-type: application/octet-stream`` on a body sent without one, and
    ``accept: */*`` on every request without an Accept (aiohttp's defaults)."""
    pair.both(request(method, path, headers, body))
    direct, via = sent_on(pair.up.got)
    assert via == direct
    assert pair.up.got[-1].body == pair.up.got[-2].body == body


def test_a_header_the_clients_connection_names_is_not_forwarded(pair: Pair) -> None:
    """``Connection: x-hop`` makes ``x-hop`` about that connection only (RFC 9110, 7.6.1).
    Before: forwarded."""
    hop = [(b"x-hop", b"1"), (b"x-kept", b"2")]
    req = request(b"GET", b"/v1/files", hop)
    exchange(pair.calguard, req.replace(b"connection: close", b"connection: close, X-Hop", 1))
    names = [k for k, _ in pair.up.got[-1].headers]
    assert b"x-kept" in names
    assert b"x-hop" not in names


def test_a_header_the_upstreams_connection_names_does_not_reach_the_client(pair: Pair) -> None:
    hop = [JSON, (b"connection", b"X-Backend-Hop"), (b"x-backend-hop", b"10.0.0.7")]
    via = pair.both(request(b"GET", b"/v1/files/f-hop"), response(b"200 OK", hop, b"{}"))[1]
    assert via.status == 200
    assert via.header(b"x-backend-hop") is None


def test_a_relayed_body_keeps_its_content_encoding(pair: Pair) -> None:
    """A compressed upload goes on as its bytes, so with the coding that reads them. Before:
    gzip bytes went upstream said to be plain JSON (``Content-Encoding`` dropped)."""
    body = gz(b'{"purpose": "batch"}')
    coded = [JSON, (b"content-encoding", b"gzip")]
    pair.both(request(b"POST", b"/v1/files", coded, body))
    direct, via = sent_on(pair.up.got)
    assert via == direct
    assert (b"content-encoding", b"gzip") in via
    assert pair.up.got[-1].body == body


# -- calguard's own paths -------------------------------------------------------------------


@pytest.mark.parametrize("path", [b"/v1", b"/healthz/", b"/metrics/"])
def test_a_path_with_or_without_its_slash_is_an_openai_404_not_a_redirect(
    pair: Pair, path: bytes
) -> None:
    """Before: an empty 307 to the path with (or without) a slash."""
    via = exchange(pair.calguard, request(b"GET", path))
    assert via.status == 404
    assert b'"not_found_error"' in via.body


def test_head_to_the_flag_log_is_calguards_not_relayed(pair: Pair) -> None:
    """The flag log is calguard's (off here: no admin key), for a HEAD as for a GET."""
    before = len(pair.up.got)
    get = exchange(pair.calguard, request(b"GET", b"/v1/guard/flags"))
    head = exchange(pair.calguard, request(b"HEAD", b"/v1/guard/flags"))
    assert get.status == head.status == 404
    assert head.body == b""
    assert len(pair.up.got) == before


@pytest.mark.parametrize("method", [b"POST", b"PUT", b"PATCH", b"DELETE", b"OPTIONS"])
def test_another_method_to_the_flag_log_is_calguards_405_not_relayed(
    pair: Pair, method: bytes
) -> None:
    """Before: relayed to the upstream (with calguard's key), whose 404 or 405 came back."""
    before = len(pair.up.got)
    via = exchange(pair.calguard, request(method, b"/v1/guard/flags", [JSON], b"{}"))
    assert via.status == 405
    assert via.header(b"allow") == b"GET, HEAD"
    assert b'"invalid_request_error"' in via.body
    assert len(pair.up.got) == before
