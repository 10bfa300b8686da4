"""``guard.wrap`` and ``@guard.calibrated``: the proxy's pipeline in-process."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

import guard
from guard.config import Settings
from guard.server import create_app
from guard.tasks.prompt_text import find_options
from guard.testing.fake_upstream import FakeUpstreamState, SimulatedResponder, create_fake_upstream
from guard.testing.servers import serve_in_thread

QUESTION = "Question: Which is 2 + 2?\nOptions:\nA. three\nB. four\nC. five\nD. six\nAnswer:"
MESSAGES = [{"role": "user", "content": QUESTION}]


@pytest.fixture
def upstream() -> Iterator[tuple[str, FakeUpstreamState]]:
    state = FakeUpstreamState(SimulatedResponder())
    with serve_in_thread(create_fake_upstream(state)) as url:
        yield f"{url}/v1", state


def test_wrapped_sync_client_calibrates_and_delegates(
    upstream: tuple[str, FakeUpstreamState], tmp_path: Path
) -> None:
    url, state = upstream
    client = guard.wrap(
        openai.OpenAI(base_url=url, api_key="x", max_retries=0),
        store=f"sqlite:///{tmp_path / 'w.db'}",
    )
    r = client.chat.completions.create(
        model="m", messages=MESSAGES, extra_body={"guard": {"calibration": "cyclic"}}
    )
    g = r.model_extra["guard"]  # type: ignore[index]
    assert r.choices[0].message.content == g["answer"]
    assert g["upstream_calls"] == 4
    # No task: the wrapped client answers as it would have, and no guard field goes upstream.
    r2 = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], guard={"task": "none"}
    )
    assert r2.choices[0].message.content == "echo: hi"
    assert "guard" not in state.requests[-1]
    assert client.models.list().data[0].id == "sim-biased-llm"  # delegated
    client.close()  # delegated too


def test_wrapped_async_client(upstream: tuple[str, FakeUpstreamState], tmp_path: Path) -> None:
    url, _ = upstream

    async def go() -> Any:
        raw = openai.AsyncOpenAI(base_url=url, api_key="x", max_retries=0)
        client = guard.wrap(raw, store=f"sqlite:///{tmp_path / 'w.db'}")
        try:
            return await client.chat.completions.create(
                model="m", messages=MESSAGES, extra_body={"guard": {"calibration": "pride"}}
            )
        finally:
            await raw.close()

    r = asyncio.run(go())
    assert r.model_extra["guard"]["role"] == "warmup"


def test_wrapper_and_proxy_share_one_store(
    upstream: tuple[str, FakeUpstreamState], tmp_path: Path
) -> None:
    url, _ = upstream
    db = f"sqlite:///{tmp_path / 'shared.db'}"
    pride = {"guard": {"calibration": "pride"}}
    with (
        serve_in_thread(create_app(Settings(upstream=url, store=db))) as proxy,
        openai.OpenAI(base_url=f"{proxy}/v1", api_key="x", max_retries=0) as via_proxy,
    ):
        for _ in range(4):  # the warm-up happens through the proxy
            via_proxy.chat.completions.create(model="m", messages=MESSAGES, extra_body=pride)
    with openai.OpenAI(base_url=url, api_key="x", max_retries=0) as raw:
        r = guard.wrap(raw, store=db).chat.completions.create(
            model="m", messages=MESSAGES, extra_body=pride
        )
    g = r.model_extra["guard"]
    assert (g["role"], g["upstream_calls"]) == ("single", 1)


def _always_four(messages: list[dict[str, str]]) -> str:
    """A 'model' that always names the option whose text is 'four', as text, no logprobs."""
    prompt = find_options(messages[-1]["content"])
    assert prompt is not None
    return f"The answer is ({prompt.ids[prompt.options.index('four')]})."


def test_calibrated_bare_on_a_text_function(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the default store is ./calguard.db
    ask = guard.calibrated(_always_four)
    assert ask(MESSAGES, guard={"calibration": "cyclic"}) == "B"
    assert (tmp_path / "calguard.db").exists()


def test_calibrated_with_arguments_on_an_async_function(tmp_path: Path) -> None:
    calls: list[str] = []

    @guard.calibrated(calibration="cyclic", store=f"sqlite:///{tmp_path / 'd.db'}")
    async def ask(messages: list[dict[str, str]], **kw: Any) -> str:
        calls.append(messages[-1]["content"])
        return _always_four(messages)

    assert asyncio.run(ask(MESSAGES)) == "B"
    # 4 cyclic orders, sampled 8 times each (text answers carry no logprobs), plus the first
    # attempt at each order that asked for logprobs.
    assert len({c for c in calls}) == 4
    assert len(calls) == 4 * (1 + 8)
