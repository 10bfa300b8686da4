"""A route with ``provider: litellm``: calls go through ``litellm.acompletion`` (here its
OpenAI provider, pointed at the fake upstream on 127.0.0.1), with the same calibration."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from guard.app import create_app
from guard.config import RouteConfig, Settings
from guard.fake_upstream import FakeUpstreamState, SimulatedResponder, create_fake_upstream
from guard.servers import free_port, serve_in_thread

QUESTION = "Question: Which is 2 + 2?\nOptions:\nA. three\nB. four\nC. five\nD. six\nAnswer:"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[openai.OpenAI, FakeUpstreamState]]:
    state = FakeUpstreamState(SimulatedResponder())
    with serve_in_thread(create_fake_upstream(state)) as up:
        route = RouteConfig(
            provider="litellm", upstream_model="openai/sim-biased-llm", api_base=f"{up}/v1"
        )
        settings = Settings(
            upstream=f"http://127.0.0.1:{free_port()}/v1",  # never used
            upstream_key="k",
            store=f"sqlite:///{tmp_path / 'l.db'}",
            routes={"via-litellm": route},
        )
        with (
            serve_in_thread(create_app(settings)) as proxy,
            openai.OpenAI(base_url=f"{proxy}/v1", api_key="t", max_retries=0) as c,
        ):
            yield c, state


def test_litellm_route_passes_through_and_calibrates(
    client: tuple[openai.OpenAI, FakeUpstreamState],
) -> None:
    c, state = client
    r = c.chat.completions.create(
        model="via-litellm", messages=[{"role": "user", "content": "hello"}]
    )
    assert r.choices[0].message.content == "echo: hello"
    assert state.requests[-1]["model"] == "sim-biased-llm"  # LiteLLM stripped its prefix
    r = c.chat.completions.create(
        model="via-litellm",
        messages=[{"role": "user", "content": QUESTION}],
        extra_body={"guard": {"calibration": "cyclic"}},
    )
    g = (r.model_extra or {})["guard"]
    assert r.choices[0].message.content == g["answer"]
    assert g["upstream_calls"] == 4
    assert state.requests[-1]["logprobs"] is True
