"""Findings of the second review of Dec 1 (relayed files, CORS preflights), each on the wire:
a real calguard in front of a raw upstream."""

from __future__ import annotations

from pathlib import Path

from guard.config import Settings
from guard.server import create_app
from guard.testing.servers import serve_in_thread
from tests.e2e.raw_upstream import exchange, raw_upstream, request

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
