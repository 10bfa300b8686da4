"""A browser's CORS preflight through a proxy with ``api_keys``: browsers send no key with one,
so it is relayed without one, and without calguard's upstream key; the upstream's CORS answer
reaches the browser. Anything else still needs a key."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.differential import ASK, CHAT, KEY, Pair, calguard_in_front
from tests.e2e.raw_upstream import JSON, exchange, request, response

PROXY_KEY = "sk-proxy-cors-0123456789"
PREFLIGHT = [
    (b"origin", b"https://app.example"),
    (b"access-control-request-method", b"POST"),
    (b"access-control-request-headers", b"authorization, content-type"),
]
ALLOWED = [
    (b"access-control-allow-origin", b"https://app.example"),
    (b"access-control-allow-methods", b"POST, GET"),
    (b"access-control-allow-headers", b"authorization, content-type"),
]


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    with calguard_in_front(
        tmp_path_factory.mktemp("cors") / "c.db",
        api_keys=[PROXY_KEY],
        passthrough_paths=["/files*"],
    ) as both:
        yield both


@pytest.mark.parametrize("path", [b"/v1/chat/completions", b"/v1/files", b"/v1/responses"])
def test_a_preflight_without_a_key_gets_the_upstreams_cors_answer(keyed: Pair, path: bytes) -> None:
    """Before: a 401, so no browser could call a proxy that has keys."""
    keyed.up.answers[path.removeprefix(b"/v1")] = response(b"204 No Content", ALLOWED, b"")
    before = len(keyed.up.got)
    via = exchange(keyed.calguard, request(b"OPTIONS", path, PREFLIGHT))
    assert via.status == 204
    for field, value in ALLOWED:
        assert via.header(field) == value
    (got,) = keyed.up.got[before:]
    assert got.method == b"OPTIONS"
    assert got.header(b"origin") == b"https://app.example"
    assert got.header(b"authorization") is None  # calguard's upstream key stays home
    assert KEY.encode() not in got.head


def test_what_is_not_a_preflight_still_needs_a_key(keyed: Pair) -> None:
    before = len(keyed.up.got)
    for method, headers, body in [
        (b"OPTIONS", [(b"origin", b"https://app.example")], b""),  # names no method
        (b"OPTIONS", [(b"access-control-request-method", b"POST")], b""),  # no origin
        (b"OPTIONS", [JSON, *PREFLIGHT], ASK),  # a preflight has no body
        (b"POST", [JSON, *PREFLIGHT], ASK),  # a POST that looks like one
        (b"GET", PREFLIGHT, b""),
    ]:
        via = exchange(keyed.calguard, request(method, b"/v1/files", headers, body))
        assert via.status == 401, method
    assert len(keyed.up.got) == before


def test_the_call_after_the_preflight_goes_with_the_key_and_gets_cors_headers(keyed: Pair) -> None:
    keyed.up.answers[b"/chat/completions"] = response(b"200 OK", [JSON, ALLOWED[0]], CHAT)
    headers = [JSON, (b"authorization", b"Bearer " + PROXY_KEY.encode()), PREFLIGHT[0]]
    via = exchange(keyed.calguard, request(b"POST", b"/v1/chat/completions", headers, ASK))
    assert via.status == 200
    assert via.header(b"access-control-allow-origin") == b"https://app.example"
    assert keyed.up.got[-1].header(b"authorization") == b"Bearer " + KEY.encode()


def test_a_preflight_for_a_path_the_allow_list_shuts_is_a_404(keyed: Pair) -> None:
    via = exchange(keyed.calguard, request(b"OPTIONS", b"/v1/batches", PREFLIGHT))
    assert via.status == 404
