"""``GET /healthz`` and ``GET /readyz`` on a running proxy: ready when the store and the
upstream answer, else 503 with an OpenAI error body naming what is down."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from guard.config import RouteConfig, Settings
from guard.server import create_app
from guard.store import SQLiteStore
from guard.testing.fake_upstream import FakeUpstreamState, SimulatedResponder, create_fake_upstream
from guard.testing.servers import serve_in_thread


@pytest.fixture
def upstream() -> Iterator[str]:
    with serve_in_thread(create_fake_upstream(FakeUpstreamState(SimulatedResponder()))) as up:
        yield f"{up}/v1"


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections (bound, never listening) for the test."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


def get(settings: Settings, path: str, **kw: Any) -> httpx.Response:
    with serve_in_thread(create_app(settings, **kw)) as proxy:
        return httpx.get(f"{proxy}{path}", timeout=30)


def settings(tmp_path: Path, upstream: str, **kw: Any) -> Settings:
    return Settings(upstream=upstream, store=f"sqlite:///{tmp_path / 'r.db'}", max_attempts=1, **kw)


def test_healthz_is_alive_and_names_the_process(tmp_path: Path, upstream: str) -> None:
    body = get(settings(tmp_path, upstream), "/healthz").json()
    assert body["status"] == "ok"
    assert isinstance(body["pid"], int)


def test_ready_when_the_store_and_the_upstream_answer(tmp_path: Path, upstream: str) -> None:
    r = get(settings(tmp_path, upstream), "/readyz")
    assert r.status_code == 200
    assert r.json() == {
        "status": "ready",
        "checks": {"store": {"ok": True}, "upstream": {"ok": True, "status": 200}},
    }


def test_not_ready_when_the_upstream_is_down(tmp_path: Path, closed_port: int) -> None:
    r = get(settings(tmp_path, f"http://127.0.0.1:{closed_port}/v1"), "/readyz")
    assert r.status_code == 503
    body = r.json()
    assert body["error"]["type"] == "service_unavailable"
    assert body["error"]["message"].startswith("not ready — upstream: ")
    assert body["checks"]["store"] == {"ok": True}
    assert body["checks"]["upstream"]["ok"] is False


class _BrokenStore(SQLiteStore):
    def ping(self) -> None:
        raise OSError("disk gone")


def test_not_ready_when_the_store_fails(tmp_path: Path, upstream: str) -> None:
    broken = _BrokenStore(tmp_path / "b.db")
    try:
        r = get(settings(tmp_path, upstream), "/readyz", store=broken)
    finally:
        broken.close()
    assert r.status_code == 503
    assert "store: OSError: disk gone" in r.json()["error"]["message"]
    assert r.json()["checks"]["upstream"]["ok"] is True


@pytest.mark.parametrize(
    ("status", "named"),
    [
        (401, "upstream: GET /models answered 401"),
        (503, "upstream: GET /models answered 503"),
    ],
)
def test_an_upstream_that_rejects_the_key_or_fails_is_down(
    tmp_path: Path, status: int, named: str
) -> None:
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    app = FastAPI()

    @app.get("/v1/models")
    async def models() -> JSONResponse:
        return JSONResponse({"error": {"message": "no"}}, status_code=status)

    with serve_in_thread(app) as up:
        r = get(settings(tmp_path, f"{up}/v1"), "/readyz")
    assert r.status_code == 503
    assert named in r.json()["error"]["message"]


def test_routes_with_their_own_provider_need_no_upstream(tmp_path: Path) -> None:
    s = Settings(
        store=f"sqlite:///{tmp_path / 'r.db'}", routes={"m": RouteConfig(provider="litellm")}
    )
    r = get(s, "/readyz")
    assert r.status_code == 200
    assert r.json()["checks"] == {"store": {"ok": True}}
