"""A route with ``provider: litellm``: calls go through ``litellm.acompletion`` (here its
OpenAI provider, pointed at the fake upstream on 127.0.0.1), with the same calibration."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from guard.config import RouteConfig, Settings
from guard.server import create_app
from guard.testing.fake_upstream import FakeUpstreamState, SimulatedResponder, create_fake_upstream
from guard.testing.servers import free_port, serve_in_thread

QUESTION = "Question: Which is 2 + 2?\nOptions:\nA. three\nB. four\nC. five\nD. six\nAnswer:"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[openai.OpenAI, FakeUpstreamState]]:
    state = FakeUpstreamState(SimulatedResponder())
    with serve_in_thread(create_fake_upstream(state)) as up:
        route = RouteConfig(
            provider="litellm",
            upstream_model="openai/sim-biased-llm",
            api_base=f"{up}/v1",
            api_key="route-key",
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


def test_litellm_routes_keep_their_own_base_and_key_and_never_get_the_upstream_key(
    tmp_path: Path,
) -> None:
    """Defect: two litellm routes shared the first one's api_base, and the OpenAI upstream key
    went to every LiteLLM provider."""
    one, two = FakeUpstreamState(SimulatedResponder()), FakeUpstreamState(SimulatedResponder())
    with (
        serve_in_thread(create_fake_upstream(one)) as a,
        serve_in_thread(create_fake_upstream(two)) as b,
    ):
        routes = {
            "first": RouteConfig(
                provider="litellm", upstream_model="openai/m", api_base=f"{a}/v1", api_key="ka"
            ),
            "second": RouteConfig(
                provider="litellm", upstream_model="openai/m", api_base=f"{b}/v1", api_key="kb"
            ),
            "keyless": RouteConfig(
                provider="litellm", upstream_model="openai/m", api_base=f"{b}/v1"
            ),
        }
        settings = Settings(
            upstream=f"{a}/v1",
            upstream_key="sk-upstream-secret",
            store=f"sqlite:///{tmp_path / 'l.db'}",
            routes=routes,
        )
        with (
            serve_in_thread(create_app(settings)) as proxy,
            openai.OpenAI(base_url=f"{proxy}/v1", api_key="t", max_retries=0) as c,
        ):
            for model in ("first", "second"):
                c.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}])
            with pytest.raises(openai.APIStatusError):  # no key of its own: LiteLLM refuses
                c.chat.completions.create(
                    model="keyless", messages=[{"role": "user", "content": "x"}]
                )
    assert [h["authorization"] for h in one.headers] == ["Bearer ka"]
    assert [h["authorization"] for h in two.headers] == ["Bearer kb"]
