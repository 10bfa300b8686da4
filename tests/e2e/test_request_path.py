"""Issue 7's defects, each on the wire: every endpoint and both faces go through one pipeline.

The proxy runs under uvicorn on 127.0.0.1 with the real ``openai`` client; the wrapper wraps a
real ``openai`` client pointed at the same fake upstream."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

import guard
from guard.config import RouteConfig, Settings
from guard.server import create_app
from guard.store import SQLiteStore
from guard.testing.fake_upstream import FakeUpstreamState, SimulatedResponder, create_fake_upstream
from guard.testing.servers import serve_in_thread

PII_BOTH = [{"type": "pii", "action": "redact"}]
DENY_PROMPT_FLAG = [
    {"type": "denylist", "params": {"words": ["ducks"]}, "action": "flag", "on": "prompt"}
]
DENY_BLOCK = [{"type": "denylist", "params": {"words": ["forbidden"]}, "action": "block"}]
DENY_ANSWER = [
    {"type": "denylist", "params": {"words": ["forbidden"]}, "action": "block", "on": "response"}
]
DENY_QUESTION = [
    {"type": "denylist", "params": {"words": ["badprompt"]}, "action": "block", "on": "prompt"}
]
DENY_REDACT = [{"type": "regex", "params": {"patterns": [r"\bcode-\d{4}\b"]}, "action": "redact"}]


def scripted(text: str) -> dict[str, float] | None:
    return {text[5:]: 1.0} if text.startswith("say: ") else None


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@pytest.fixture
def upstream() -> Iterator[tuple[str, FakeUpstreamState]]:
    state = FakeUpstreamState(SimulatedResponder(), text_responder=scripted)
    with serve_in_thread(create_fake_upstream(state)) as url:
        yield f"{url}/v1", state


@pytest.fixture
def proxy(upstream: tuple[str, FakeUpstreamState], tmp_path: Path) -> Iterator[Any]:
    url, _ = upstream
    routes = {
        "pii": RouteConfig(upstream_model="sim", policies=PII_BOTH),
        "prompt-flag": RouteConfig(upstream_model="sim", policies=DENY_PROMPT_FLAG),
        "deny": RouteConfig(upstream_model="sim", policies=DENY_BLOCK),
        "redact": RouteConfig(upstream_model="sim", policies=DENY_REDACT),
    }
    settings = Settings(upstream=url, store=f"sqlite:///{tmp_path / 'p.db'}", routes=routes)
    with (
        serve_in_thread(create_app(settings)) as proxy_url,
        openai.OpenAI(base_url=f"{proxy_url}/v1", api_key="k", max_retries=0) as client,
    ):
        yield client


def records(tmp_path: Path, name: str = "p.db") -> list[dict[str, Any]]:
    store = SQLiteStore(tmp_path / name)
    try:
        return store.flags()
    finally:
        store.close()


def streamed(chunks: Any) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


# -- the proxy -----------------------------------------------------------------------------


def test_a_prompt_redaction_does_not_block_a_clean_streamed_answer(
    proxy: openai.OpenAI, upstream: tuple[str, FakeUpstreamState]
) -> None:
    _, state = upstream
    text = streamed(
        proxy.chat.completions.create(
            model="pii", messages=user("say: write to bob@example.com please"), stream=True
        )
    )
    assert text == "write to [REDACTED] please"  # the upstream only ever saw the redacted text
    assert "bob@example.com" not in str(state.requests[-1])


def test_a_stream_with_only_prompt_side_policies_writes_its_flag_record(
    proxy: openai.OpenAI, tmp_path: Path
) -> None:
    raw = proxy.chat.completions.with_raw_response.create(
        model="prompt-flag", messages=user("say: ducks are fine"), stream=True
    )
    assert streamed(raw.parse()) == "ducks are fine"
    assert raw.headers["x-calguard-flags"] == "denylist"
    (rec,) = records(tmp_path)
    assert rec["policies"] == ["denylist"]


def test_completions_run_prompt_and_response_policies(
    proxy: openai.OpenAI, upstream: tuple[str, FakeUpstreamState], tmp_path: Path
) -> None:
    _, state = upstream
    n = len(state.requests)
    with pytest.raises(openai.BadRequestError) as exc:
        proxy.completions.create(model="deny", prompt="a forbidden prompt")
    assert exc.value.code == "denylist"
    assert len(state.requests) == n  # blocked before the upstream
    r = proxy.completions.create(model="redact", prompt=["tell code-1234"])
    assert "code-1234" not in r.choices[0].text
    assert "code-1234" not in str(state.requests[-1])
    text = "".join(
        c.choices[0].text
        for c in proxy.completions.create(model="redact", prompt="code-9876 x", stream=True)
    )
    assert "code-9876" not in text
    assert [r["policies"] for r in records(tmp_path)] == [["denylist"], ["regex"], ["regex"]]


# -- the in-process face ---------------------------------------------------------------------


@pytest.fixture
def wrapped(upstream: tuple[str, FakeUpstreamState], tmp_path: Path) -> Iterator[Any]:
    url, _ = upstream
    route = RouteConfig(policies=DENY_ANSWER + DENY_QUESTION + DENY_REDACT)
    client = guard.wrap(
        openai.OpenAI(base_url=url, api_key="x", max_retries=0),
        store=f"sqlite:///{tmp_path / 'w.db'}",
        route=route,
    )
    yield client
    client.close()


def test_the_wrapper_calls_the_model_once_and_returns_the_checked_answer(
    wrapped: Any, upstream: tuple[str, FakeUpstreamState], tmp_path: Path
) -> None:
    _, state = upstream
    n = len(state.requests)
    r = wrapped.chat.completions.create(model="m", messages=user("say: use code-4321 now"))
    assert len(state.requests) == n + 1
    assert r.choices[0].message.content == "use [REDACTED] now"
    assert [f["policy"] for f in r.model_extra["guard"]["flags"]] == ["regex"]
    assert len(records(tmp_path, "w.db")) == 1


def test_the_wrapper_passes_an_untouched_answer_as_the_clients_own_object(
    wrapped: Any, upstream: tuple[str, FakeUpstreamState]
) -> None:
    _, state = upstream
    n = len(state.requests)
    r = wrapped.chat.completions.create(model="m", messages=user("say: hello"), temperature=0)
    assert len(state.requests) == n + 1  # once: the checked answer is the one returned
    assert r.choices[0].message.content == "hello"
    assert state.requests[-1]["temperature"] == 0
    assert "guard" not in (r.model_extra or {})


def test_the_wrappers_streaming_pass_through_runs_response_policies(
    wrapped: Any, upstream: tuple[str, FakeUpstreamState]
) -> None:
    _, state = upstream
    with pytest.raises(openai.APIError):
        streamed(
            wrapped.chat.completions.create(
                model="m", messages=user("say: this is forbidden"), stream=True
            )
        )
    clean = wrapped.chat.completions.create(model="m", messages=user("say: all good"), stream=True)
    assert streamed(clean) == "all good"
    assert state.requests[-1]["stream"] is True


def test_the_wrapper_blocks_a_prompt_before_the_model(
    wrapped: Any, upstream: tuple[str, FakeUpstreamState]
) -> None:
    _, state = upstream
    n = len(state.requests)
    with pytest.raises(guard.PolicyViolationError):
        wrapped.chat.completions.create(model="m", messages=user("a badprompt question"))
    assert len(state.requests) == n


def test_with_raw_response_on_the_wrapper(wrapped: Any) -> None:
    raw = wrapped.chat.completions.with_raw_response.create(
        model="m", messages=user("say: code-1111")
    )
    assert raw.status_code == 200
    assert raw.headers["x-calguard-flags"] == "regex"
    assert raw.headers["x-calguard-request-id"].startswith("cg-")
    assert raw.parse().choices[0].message.content == "[REDACTED]"
    assert raw.json()["guard"]["flags"][0]["policy"] == "regex"


def test_the_wrappers_legacy_completions_run_policies(wrapped: Any) -> None:
    with pytest.raises(guard.PolicyViolationError):
        wrapped.completions.create(model="m", prompt="badprompt")
    assert (
        "code-2222" not in wrapped.completions.create(model="m", prompt="code-2222").choices[0].text
    )


def test_the_async_wrapper_streams_through_the_pipeline(
    upstream: tuple[str, FakeUpstreamState], tmp_path: Path
) -> None:
    import asyncio

    url, _ = upstream

    async def go() -> tuple[str, bool]:
        raw = openai.AsyncOpenAI(base_url=url, api_key="x", max_retries=0)
        client = guard.wrap(
            raw, store=f"sqlite:///{tmp_path / 'a.db'}", route=RouteConfig(policies=DENY_ANSWER)
        )
        stream = await client.chat.completions.create(
            model="m", messages=user("say: fine words"), stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        blocked = False
        try:
            stream = await client.chat.completions.create(
                model="m", messages=user("say: forbidden words"), stream=True
            )
            async for _ in stream:
                pass
        except openai.APIError:
            blocked = True
        await raw.close()
        return text, blocked

    assert asyncio.run(go()) == ("fine words", True)


def test_the_wrapper_cannot_be_walked_around(
    wrapped: Any, upstream: tuple[str, FakeUpstreamState]
) -> None:
    _, state = upstream
    n = len(state.requests)
    with pytest.raises(guard.PolicyViolationError):  # with_options keeps the pipeline
        wrapped.with_options(timeout=5).chat.completions.create(
            model="m", messages=user("a badprompt question")
        )
    with pytest.raises(AttributeError, match="around its policies"):
        wrapped.beta.chat.completions.parse  # noqa: B018
    with pytest.raises(AttributeError, match="around its policies"):
        wrapped.post  # noqa: B018
    assert len(state.requests) == n
    stream = wrapped.chat.completions.create(model="m", messages=user("say: a b"), stream=True)
    first = next(stream)  # an iterator, as the SDK's Stream is
    assert first.choices[0].delta.role == "assistant"
    stream.close()


def test_the_wrapper_closes_what_it_opened(
    upstream: tuple[str, FakeUpstreamState], tmp_path: Path
) -> None:
    import threading

    url, _ = upstream
    before = threading.active_count()
    for _ in range(5):
        with guard.wrap(
            openai.OpenAI(base_url=url, api_key="x", max_retries=0),
            store=f"sqlite:///{tmp_path / 'c.db'}",
        ) as client:
            client.chat.completions.create(model="m", messages=user("say: hi"))
    for _ in range(100):  # portal threads end once their loop stops
        if threading.active_count() <= before + 1:
            break
        threading.Event().wait(0.02)
    assert threading.active_count() <= before + 1


def test_the_wrapper_samples_when_the_sdk_refuses_logprobs(tmp_path: Path) -> None:
    state = FakeUpstreamState(SimulatedResponder(), refuse_logprobs=True)
    with (
        serve_in_thread(create_fake_upstream(state)) as up,
        guard.wrap(
            openai.OpenAI(base_url=f"{up}/v1", api_key="x", max_retries=0),
            store=f"sqlite:///{tmp_path / 's.db'}",
        ) as client,
    ):
        q = "Question: Which is 2 + 2?\nOptions:\nA. three\nB. four\nC. five\nD. six\nAnswer:"
        r = client.chat.completions.create(
            model="m", messages=user(q), extra_body={"guard": {"calibration": "none"}}
        )
    assert r.choices[0].message.content in "ABCD"
    assert sum(1 for b in state.requests if b.get("logprobs")) == 1


def test_the_wrapper_raises_what_the_sdk_would_and_calguards_own_class(
    wrapped: Any, upstream: tuple[str, FakeUpstreamState]
) -> None:
    with pytest.raises(openai.BadRequestError) as exc:  # as the proxy gives the SDK
        wrapped.chat.completions.create(model="m", messages=user("a badprompt question"))
    assert isinstance(exc.value, guard.PolicyViolationError)
    assert (exc.value.status_code, exc.value.code) == (400, "denylist")
    assert exc.value.body["type"] == "policy_violation"  # type: ignore[index]
