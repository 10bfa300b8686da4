"""The spool's default folder belongs to one store. Two proxies started in one working directory
with two different PostgreSQL databases (two tenants) both default to ``./calguard-spool``: a
record one of them spooled while its database was down must reach that database, never the
other tenant's flag log."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import openai
import pytest

from guard.config import RouteConfig, Settings
from guard.server import create_app
from guard.testing.fake_upstream import FakeUpstreamState, SimulatedResponder, create_fake_upstream
from guard.testing.servers import serve_in_thread
from guard.testing.tcp_proxy import TcpProxy
from tests.conftest import fresh_database

FLAGGED = [{"type": "max_length", "params": {"max_chars": 5}, "action": "flag", "on": "response"}]
ADMIN = {"authorization": "Bearer sk-admin"}
HELLO = [{"role": "user", "content": "tenant one's secret plan"}]


@pytest.fixture
def upstream() -> Iterator[str]:
    with serve_in_thread(create_fake_upstream(FakeUpstreamState(SimulatedResponder()))) as up:
        yield f"{up}/v1"


@pytest.fixture
def other_pg_url(pg_admin: str) -> Iterator[str]:
    """A second fresh database (the other tenant's)."""
    with fresh_database(pg_admin) as url:
        yield url


def settings(upstream: str, store: str) -> Settings:
    return Settings(upstream=upstream, store=store, admin_key="sk-admin",
                    default_route=RouteConfig(policies=FLAGGED))  # type: ignore[arg-type]  # fmt: skip


def flag_log(base: str) -> list[dict[str, object]]:
    got = httpx.get(f"{base}/v1/guard/flags", headers=ADMIN, timeout=30)
    assert got.status_code == 200
    data: list[dict[str, object]] = got.json()["data"]
    return data


def spooled(base: str) -> object:
    return httpx.get(f"{base}/readyz", timeout=30).json()["checks"]["store"].get("spooled")


def test_a_record_spooled_for_one_database_never_goes_into_another(
    upstream: str,
    pg_url: str,
    other_pg_url: str,
    tmp_path: object,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # type: ignore[arg-type]  # both proxies' ./calguard-spool
    parts = urlsplit(pg_url)
    proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5432)).start()
    via = parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}").geturl()
    one = settings(upstream, f"{via}?timeout_s=1")
    try:
        with serve_in_thread(create_app(one)) as base:
            proxy.stop()  # tenant one's database is down: its stream's record is spooled
            with openai.OpenAI(base_url=f"{base}/v1", api_key="x", max_retries=0) as c:
                stream = c.chat.completions.create(model="m", messages=HELLO, stream=True)  # type: ignore[arg-type]
                text = "".join(ev.choices[0].delta.content or "" for ev in stream if ev.choices)
            assert text == "echo: tenant one's secret plan"
            assert spooled(base) == 1
        # Tenant two's proxy starts in the same directory, its own database up.
        with serve_in_thread(create_app(settings(upstream, other_pg_url))) as base:
            deadline = time.monotonic() + 30
            while spooled(base):  # it has nothing of its own to move in
                assert time.monotonic() < deadline, "the spooled record stayed"
                time.sleep(0.05)
            assert flag_log(base) == []  # tenant one's record is not in tenant two's log
        proxy.start()
        with serve_in_thread(create_app(one)) as base:  # tenant one's proxy, started again
            deadline = time.monotonic() + 60
            while not (log := flag_log(base)):
                assert time.monotonic() < deadline, "tenant one's record never went in"
                time.sleep(0.1)
            assert [r["response"] for r in log] == [
                {"streamed_text": {"0": "echo: tenant one's secret plan"}}
            ]
    finally:
        proxy.stop()
