"""calguard as a drop-in for other clients: the LiteLLM SDK and LangChain's ChatOpenAI
(including ``with_structured_output``), streaming and not, with a guarded route."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from guard.config import RouteConfig, Settings
from guard.server import create_app
from guard.testing.fake_upstream import FakeUpstreamState, SimulatedResponder, create_fake_upstream
from guard.testing.servers import serve_in_thread

BLOCK = [{"type": "denylist", "params": {"words": ["forbidden"]}, "action": "block"}]


def scripted(text: str) -> dict[str, float] | None:
    return {text[5:]: 1.0} if text.startswith("say: ") else None


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[tuple[str, FakeUpstreamState]]:
    state = FakeUpstreamState(SimulatedResponder(), text_responder=scripted)
    with serve_in_thread(create_fake_upstream(state)) as up:
        settings = Settings(
            upstream=f"{up}/v1",
            store=f"sqlite:///{tmp_path / 'o.db'}",
            routes={"guarded": RouteConfig(upstream_model="m", policies=BLOCK)},
        )
        with serve_in_thread(create_app(settings)) as url:
            yield f"{url}/v1", state


# litellm's own types trip a pydantic warning the first time they are built (not calguard's).
def test_the_litellm_sdk_as_a_client(proxy: tuple[str, FakeUpstreamState]) -> None:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    base, state = proxy
    kw = {"api_base": base, "api_key": "sk-x", "num_retries": 0}
    r = litellm.completion(
        model="openai/m", messages=[{"role": "user", "content": "say: hi there"}], **kw
    )
    assert r.choices[0].message.content == "hi there"
    chunks = litellm.completion(
        model="openai/m", messages=[{"role": "user", "content": "say: streamed"}], stream=True, **kw
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "streamed"
    with pytest.raises(litellm.BadRequestError):
        litellm.completion(
            model="openai/guarded", messages=[{"role": "user", "content": "forbidden"}], **kw
        )
    assert all("guard" not in b for b in state.requests)


class Person(BaseModel):
    name: str
    age: int


def test_langchain_chat_openai_and_structured_output(
    proxy: tuple[str, FakeUpstreamState],
) -> None:
    from langchain_openai import ChatOpenAI

    base, state = proxy
    llm = ChatOpenAI(model="m", base_url=base, api_key="sk-x", max_retries=0)  # type: ignore[arg-type]
    assert llm.invoke("say: hello").content == "hello"
    assert "".join(str(c.content) for c in llm.stream("say: stream me")) == "stream me"
    structured = llm.with_structured_output(Person)
    person = structured.invoke('say: {"name": "Ada", "age": 36}')
    assert person == Person(name="Ada", age=36)
    assert state.requests[-1]["response_format"]["type"] == "json_schema"  # untouched
    guarded = ChatOpenAI(model="guarded", base_url=base, api_key="sk-x", max_retries=0)  # type: ignore[arg-type]
    import openai

    with pytest.raises(openai.BadRequestError):
        guarded.invoke("a forbidden question")
