"""Routes that all have their own provider (a LiteLLM ``model_list``, or routes with their own
``api_base``) beside a configured ``upstream``: a model no route names goes to ``upstream`` on
the text endpoints, ``/readyz`` checks it, and so the relayed paths and ``GET /v1/models`` use
it too. Before, they answered 404 "this proxy has no default upstream to relay to" and listed
the routes only, while a chat request to the same proxy reached that upstream."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from guard.config import RouteConfig, Settings
from guard.server import create_app
from guard.testing.fake_upstream import FakeUpstreamState, SimulatedResponder, create_fake_upstream
from guard.testing.servers import serve_in_thread

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[str]:
    state = FakeUpstreamState(SimulatedResponder())
    with serve_in_thread(create_fake_upstream(state)) as up:
        own = RouteConfig(upstream_model="sim-biased-llm", api_base=f"{up}/v1", api_key="r")
        settings = Settings(
            upstream=f"{up}/v1",
            store=f"sqlite:///{tmp_path / 'd.db'}",
            routes={"own-route": own},
        )
        with serve_in_thread(create_app(settings)) as url:
            yield url


def test_a_configured_upstream_is_the_default_for_relays_too(proxy: str) -> None:
    chat = httpx.post(f"{proxy}/v1/chat/completions", json={"model": "other", "messages": HI})
    assert chat.status_code == 200, chat.text  # the default route reaches `upstream`
    assert httpx.get(f"{proxy}/readyz").json()["checks"]["upstream"]["ok"]
    listed = httpx.get(f"{proxy}/v1/models").json()
    assert {m["id"] for m in listed["data"]} == {"sim-biased-llm", "own-route"}
    relayed = httpx.get(f"{proxy}/v1/files")  # the fake serves no files: its own 404
    assert relayed.status_code == 404
    assert relayed.json() == {"detail": "Not Found"}, relayed.text  # not "no default upstream"
