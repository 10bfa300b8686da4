"""Defects a third review found in the transparent-proxy and in-process changes, each failing
before its fix: calguard's key reaching the client in the upstream's ``Content-Type``, and a
relayed path whose escapes are not UTF-8 (an overlong ``%c0%ae``) sent on as written although
calguard checked another path, and the wrapped client's ``with_raw_response`` /
``with_streaming_response`` without the resource's other methods."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

import guard
from guard.testing.servers import serve_in_thread
from tests.e2e.differential import ASK, ASK_STREAM, CHAT, CHUNK, KEY, SSE, Pair
from tests.e2e.raw_upstream import JSON, chunked, exchange, request, response
from tests.e2e.scripted_upstream import Script, create_scripted_upstream

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
        # (ending in /chat/completions it would be a 404: a text endpoint under another path)
        (b"/v1/files/%c0%ae%c0%ae/content", b"/v1/files/" + b"%EF%BF%BD" * 4 + b"/content"),
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


# -- the wrapped client's raw and streaming resources ------------------------------------------


@pytest.fixture
def clients(tmp_path: Path) -> Iterator[tuple[Any, Any, Script]]:
    script = Script()
    with serve_in_thread(create_scripted_upstream(script)) as url:
        plain = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-x", max_retries=0)
        inner = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-x", max_retries=0)
        wrapped = guard.wrap(inner, store=f"sqlite:///{tmp_path / 'w.db'}")
        yield plain, wrapped, script
        plain.close()
        wrapped.close()


RAW_CALLS = [
    ("retrieve", lambda c: c.chat.completions.with_raw_response.retrieve("chatcmpl-s").parse()),
    ("list", lambda c: c.chat.completions.with_raw_response.list().parse().data),
    ("messages", lambda c: c.chat.completions.messages.with_raw_response.list("chatcmpl-s")
     .parse().data),
    ("delete", lambda c: c.responses.with_raw_response.delete("resp_s").parse()),
    ("input items", lambda c: c.responses.input_items.with_raw_response.list("resp_s")
     .parse().data),
]  # fmt: skip


def _streamed_retrieve(c: Any) -> Any:
    with c.chat.completions.with_streaming_response.retrieve("chatcmpl-s") as r:
        return r.parse()


@pytest.mark.parametrize(
    "call",
    [c for _, c in RAW_CALLS] + [_streamed_retrieve],
    ids=[n for n, _ in RAW_CALLS] + ["streaming retrieve"],
)
def test_with_raw_response_has_the_resources_other_methods(
    clients: tuple[Any, Any, Script], call: Any
) -> None:
    """Before: ``wrapped.chat.completions.with_raw_response.retrieve`` was an AttributeError
    (only ``create`` was there), though ``wrapped.chat.completions.retrieve`` is the client's."""
    plain, wrapped, _ = clients
    assert call(wrapped) == call(plain)


@pytest.mark.parametrize("name", ["parse", "stream", "connect", "compact"])
@pytest.mark.parametrize("way", ["with_raw_response", "with_streaming_response"])
def test_a_raw_way_to_the_model_around_the_pipeline_is_refused(
    clients: tuple[Any, Any, Script], way: str, name: str
) -> None:
    """What would ask the model without the pipeline is not handed out by delegation."""
    _, wrapped, _ = clients
    with pytest.raises(AttributeError, match="around its policies"):
        getattr(getattr(wrapped.responses, way), name)


# -- path parameters (;) that some servers drop before routing ---------------------------------


@pytest.mark.parametrize(
    "path",
    [
        b"/v1/chat/completions;x",  # Tomcat, Jetty, Spring: POST /v1/chat/completions
        b"/v1/chat;x/completions",
        b"/v1/embeddings;jsessionid=1",
        b"/v1/files/a/..;/..;/chat/completions",  # '..;' is '..' there
        b"/v1/files/;/x",  # an empty segment there
        b"/v1/files/a%3B/..%3B/b",
        b"/v1/chat/completions.",  # IIS drops a trailing dot: the text endpoint there
        b"/v1/threads/t/messages.",  # a thread's messages, which the policies read
    ],
)
def test_a_path_parameter_does_not_hide_a_text_endpoint_or_a_dot_segment(
    pair: Pair, path: bytes
) -> None:
    """Servers that take ``;`` as the start of a segment's parameters (RFC 3986, 3.3) route
    without them. Before: each of these was relayed as it came, a POST to the text endpoint
    around the policies (or out of an allow-list) for such an upstream."""
    before = len(pair.up.got)
    via = exchange(pair.calguard, request(b"POST", path, [JSON], ASK))
    assert via.status == 404
    assert len(pair.up.got) == before


# -- a relayed body's own type and coding: checked and sent as the other headers -------------


def test_a_relayed_content_type_goes_as_its_bytes(pair: Pair) -> None:
    """Before: the relayed Content-Type skipped the header checks: read one character per
    byte, a UTF-8 value went on re-encoded (``é`` as four bytes)."""
    ctype = "text/plain; name=café".encode()
    pair.both(request(b"POST", b"/v1/files", [(b"content-type", ctype)], b"x"))
    direct, via = pair.up.got[-2:]
    assert via.header(b"content-type") == direct.header(b"content-type") == ctype


@pytest.mark.parametrize("name", [b"content-type", b"content-encoding"])
def test_a_relayed_body_header_with_calguards_key_is_not_forwarded(pair: Pair, name: bytes) -> None:
    """As any other client header that holds one of calguard's keys (README, Security)."""
    before = len(pair.up.got)
    exchange(pair.calguard, request(b"POST", b"/v1/files", [(name, b"x; " + KEY.encode())], b"x"))
    assert [g.header(name) for g in pair.up.got[before:]] == [None]


@pytest.mark.parametrize(
    "name", [b"x-http-method-override", b"X-HTTP-Method", b"x-method-override"]
)
def test_a_method_override_header_is_not_forwarded(pair: Pair, name: bytes) -> None:
    """Once every client header went on, a PUT to a relayed path with ``X-HTTP-Method-Override:
    POST`` reached an upstream that honours it as a POST calguard never checked as one."""
    before = len(pair.up.got)
    req = request(b"PUT", b"/v1/files/f", [JSON, (name, b"POST"), (b"x-ok", b"1")], ASK)
    exchange(pair.calguard, req)
    got = pair.up.got[before:]
    assert [(g.header(name.lower()), g.header(b"x-ok")) for g in got] == [(None, b"1")]


# -- an answer that came but cannot be read: said so, not "cannot reach" -----------------------

UNREAD = [
    ("header over 8 KB", [(b"x-big", KEY.encode() + b"a" * 9000)], "larger headers", "unreadable"),
    ("200 headers", [(b"x-h%d" % i, b"1") for i in range(200)], "larger headers", "unreadable"),
    ("brotli", [(b"content-encoding", b"br")], "content coding", "encoding"),
    ("zstd", [(b"content-encoding", b"zstd")], "content coding", "encoding"),
]


@pytest.mark.parametrize(("name", "headers", "said", "code"), UNREAD, ids=[u[0] for u in UNREAD])
def test_an_answer_calguard_cannot_read_is_said_to_be_one(
    pair: Pair, name: str, headers: list[tuple[bytes, bytes]], said: str, code: str
) -> None:
    """Before: 'cannot reach the upstream ... ClientResponseError' (upstream_unreachable) for an
    upstream that did answer. The parser's own words are not passed on: they quote the bytes
    of the header (here one holding calguard's key)."""
    target = b"/files/unread-" + name.replace(" ", "-").encode()
    pair.up.answers[target] = response(b"200 OK", [JSON, *headers], b'{"ok":true}')
    via = exchange(pair.calguard, request(b"GET", b"/v1" + target))
    error = json.loads(via.body)["error"]
    assert via.status == 502
    assert error["code"] == f"upstream_{code}"
    assert said in error["message"]
    assert "cannot reach" not in error["message"]
    assert KEY.encode() not in via.body
    assert b"aaaa" not in via.body
