"""Findings of the second review of Dec 1 (relayed files, CORS preflights), each on the wire:
a real calguard in front of a raw upstream."""

from __future__ import annotations

from pathlib import Path

from guard.config import Settings
from guard.server import create_app
from guard.testing.servers import serve_in_thread
from tests.e2e.raw_upstream import JSON, exchange, raw_upstream, request, response

PROXY_KEY = "sk-proxy-review2-0123456789"
PREFLIGHT = [(b"origin", b"https://app.example"), (b"access-control-request-method", b"POST")]


def test_a_preflight_goes_without_the_password_of_the_upstream_url(tmp_path: Path) -> None:
    """An upstream given as http://user:password@host/v1 (its password is one of calguard's
    secrets, scrubbed like a key): a keyless preflight went with 'Authorization: Basic ...' of
    that password, calguard's credentials used for a caller that has none."""
    with raw_upstream() as up:
        host = up.url.removeprefix("http://")
        settings = Settings(
            upstream=f"http://calguard:url-password-0123456789@{host}/v1",
            api_keys=[PROXY_KEY],
            max_attempts=1,
            store=f"sqlite:///{tmp_path / 'p.db'}",
        )
        with serve_in_thread(create_app(settings)) as url:
            via = exchange(url, request(b"OPTIONS", b"/v1/files", PREFLIGHT))
            assert via.status == 200
            assert up.got[-1].method == b"OPTIONS"
            assert up.got[-1].header(b"authorization") is None
            # what carries a key still goes with the URL's credentials
            keyed = [(b"authorization", b"Bearer " + PROXY_KEY.encode())]
            assert exchange(url, request(b"GET", b"/v1/files", keyed)).status == 200
            assert up.got[-1].header(b"authorization") is not None


def test_a_key_echoed_with_its_slashes_escaped_is_masked(tmp_path: Path) -> None:
    """JSON may write "/" as "\\/" (PHP's json_encode does, by default): the scrubber's
    escaped forms said they covered it, but json.dumps leaves "/" as it is, so an upstream
    that echoed its Authorization so handed calguard's key (one with a "/") to the client."""
    key = "sk-up/stream-review2-0123456789"
    echoed = b'{"error":{"message":"bad key: Bearer ' + key.replace("/", "\\/").encode() + b'"}}'
    with raw_upstream() as up:
        up.answers[b"/files"] = response(b"401 Unauthorized", [JSON], echoed)
        up.answers[b"/files/f/content"] = response(b"200 OK", [JSON], echoed * 40_000)
        settings = Settings(
            upstream=f"{up.url}/v1",
            upstream_key=key,
            max_attempts=1,
            store=f"sqlite:///{tmp_path / 'e.db'}",
        )
        with serve_in_thread(create_app(settings)) as url:
            for path in (b"/v1/files", b"/v1/files/f/content"):  # read whole, streamed
                via = exchange(url, request(b"GET", path), 30)
                assert b"stream-review2" not in via.body, path
                assert b"[REDACTED]" in via.body


def test_an_options_that_says_it_has_a_body_needs_a_key_before_it_is_read(
    tmp_path: Path,
) -> None:
    """Before: a keyless OPTIONS that looked like a preflight had its body read first (up to
    max_body_bytes), so one over the limit was a 413, not a 401: the key was asked for after
    calguard had read what the caller sent."""
    with raw_upstream() as up:
        settings = Settings(
            upstream=f"{up.url}/v1",
            api_keys=[PROXY_KEY],
            max_attempts=1,
            max_body_bytes=1000,
            store=f"sqlite:///{tmp_path / 'b.db'}",
        )
        with serve_in_thread(create_app(settings)) as url:
            for body in (b"x" * 10, b"x" * 5000):
                via = exchange(url, request(b"OPTIONS", b"/v1/files", PREFLIGHT, body))
                assert via.status == 401, len(body)
            assert exchange(url, request(b"OPTIONS", b"/v1/files", PREFLIGHT)).status == 200
            assert len(up.got) == 1
