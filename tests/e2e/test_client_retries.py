"""Retries, as the clients people point at calguard see them: one layer retries, not two.

calguard retries what the OpenAI SDK retries (429, 409, 5xx, timeouts). The SDK, and LiteLLM
and LangChain on top of it, retry those too: without a word from calguard, each of the client's
3 attempts was 3 of calguard's, 9 upstream calls for one ``create()`` (3 directly). An answer
calguard retried until its retries ran out now says ``x-should-retry: false``; asked once
(``max_attempts: 1``), the client retries as it would directly. The exception the client
raises is the one it raises directly: class, status and body."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest

from guard.config import Settings
from guard.server import create_app
from guard.testing.servers import serve_in_thread
from tests.e2e.scripted_upstream import Script, create_scripted_upstream

MESSAGES = [{"role": "user", "content": "hi"}]
SOON = {"retry-after-ms": "1"}  # the SDK's own retries wait 1 ms, not its back-off


@dataclass
class Stack:
    script: Script
    direct: str
    retrying: str  # calguard, max_attempts 3 (the default)
    once: str  # calguard, max_attempts 1

    slow: str  # calguard, max_attempts 3, timeout_s 0.5
    cut: str  # calguard, max_attempts 3, timeout_s 0.5, a request deadline of 1.8 s

    def asked(self, base: str, call: Callable[[str], Any], status: int = 0) -> tuple[Any, int]:
        """What ``call(base)`` raised (every answer a ``status``, if given), and the upstream
        calls it made."""
        self.script.faults[:] = [(status, SOON)] * 30 if status else []
        before = len(self.script.requests)
        try:
            call(base)
        except Exception as exc:
            return exc, len(self.script.requests) - before
        finally:
            self.script.faults.clear()
        pytest.fail("no error raised")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    script = Script()
    db = tmp_path_factory.mktemp("retries")
    with serve_in_thread(create_scripted_upstream(script)) as up:

        def calguard(name: str, **kw: Any) -> Any:
            s = Settings(upstream=f"{up}/v1", upstream_key="sk-up",
                         store=f"sqlite:///{db / name}.db", **kw)  # fmt: skip
            return serve_in_thread(create_app(s))

        # Every attempt of `slow` waits out its 0.5 s, and a wait between two is at most 1 s:
        # its 3 attempts end within 3.5 s, and its request deadline (10 s) leaves them room on
        # a loaded machine (the default deadline, 3.5 s here, cut them short now and then).
        # `cut`'s deadline falls in its second or third attempt.
        with (
            calguard("retrying", retry_max_wait_s=0, timeout_s=30) as retrying,
            calguard("once", max_attempts=1) as once,
            calguard("slow", retry_max_wait_s=1, timeout_s=0.5, deadline_s=10) as slow,
            calguard("cut", retry_max_wait_s=1, timeout_s=0.5, deadline_s=1.8) as cut,
        ):
            yield Stack(script, up, retrying, once, slow, cut)


def _sdk(base: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1", api_key="sk-up")  # the SDK's 2 retries


def chat(base: str) -> Any:
    with _sdk(base) as c:
        return c.chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]


def chat_stream(base: str) -> Any:
    with _sdk(base) as c:
        return list(c.chat.completions.create(model="m", messages=MESSAGES, stream=True))  # type: ignore[arg-type]


def responses_stream(base: str) -> Any:
    with _sdk(base) as c, c.responses.stream(model="m", input="hi") as s:
        return list(s)


def embeddings(base: str) -> Any:
    with _sdk(base) as c:
        return c.embeddings.create(model="e", input="hi")


def relayed(base: str) -> Any:
    with _sdk(base) as c:
        return c.files.retrieve("file-1")


async def _async_chat(base: str) -> Any:
    async with openai.AsyncOpenAI(base_url=f"{base}/v1", api_key="sk-up") as c:
        return await c.chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]


def async_chat(base: str) -> Any:
    import asyncio

    return asyncio.run(_async_chat(base))


def litellm_completion(base: str) -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    litellm = pytest.importorskip("litellm")
    with _sdk(base) as client:  # not LiteLLM's cached one, which it keeps until the process ends
        return litellm.completion(model="openai/m", messages=MESSAGES, api_base=f"{base}/v1",
                                  api_key="sk-up", client=client)  # fmt: skip


def langchain_invoke(base: str) -> Any:
    lc = pytest.importorskip("langchain_openai")
    with httpx.Client() as http:  # not LangChain's own, which it keeps until the process ends
        llm = lc.ChatOpenAI(model="m", base_url=f"{base}/v1", api_key="sk-up", http_client=http)
        return llm.invoke("hi")


CALLS = [chat, chat_stream, responses_stream, embeddings, relayed, async_chat,
         litellm_completion, langchain_invoke]  # fmt: skip


def _seen(exc: Any) -> tuple[Any, ...]:
    return type(exc), getattr(exc, "status_code", None), getattr(exc, "body", None)


@pytest.mark.parametrize("status", [429, 500, 409])
@pytest.mark.parametrize("call", CALLS, ids=[c.__name__ for c in CALLS])
def test_an_answer_calguard_retried_is_not_retried_again_by_the_client(
    stack: Stack, call: Callable[[str], Any], status: int
) -> None:
    """Before: 9 upstream calls through calguard, 3 directly."""
    direct, direct_calls = stack.asked(stack.direct, call, status)
    via, via_calls = stack.asked(stack.retrying, call, status)
    assert direct_calls == 3  # the client's 2 retries
    assert via_calls == 3  # calguard's 3 attempts, and no more
    assert _seen(via) == _seen(direct)
    if call is not litellm_completion:  # LiteLLM's exception carries a response of its own
        assert via.response.headers["x-should-retry"] == "false"
        assert via.response.headers["retry-after-ms"] == "1"  # the upstream's, kept


@pytest.mark.parametrize("call", [chat, chat_stream, relayed], ids=["chat", "stream", "relayed"])
def test_asked_once_calguard_leaves_the_retries_to_the_client(
    stack: Stack, call: Callable[[str], Any]
) -> None:
    direct, direct_calls = stack.asked(stack.direct, call, 429)
    via, via_calls = stack.asked(stack.once, call, 429)
    assert via_calls == direct_calls == 3
    assert _seen(via) == _seen(direct)
    assert "x-should-retry" not in via.response.headers


def test_a_timeout_calguard_retried_is_one_504_not_three(stack: Stack) -> None:
    """The upstream answers after calguard's ``timeout_s``: calguard's 3 attempts, then a 504
    the SDK does not ask again (before: 9 upstream calls, each waited out)."""
    stack.script.delay_s = 1.5
    try:
        via, calls = stack.asked(stack.slow, chat)
    finally:
        stack.script.delay_s = 0
    assert isinstance(via, openai.InternalServerError)
    assert via.status_code == 504
    assert via.response.headers["x-should-retry"] == "false"
    assert calls == 3


def test_a_request_deadline_is_one_504_not_three(stack: Stack) -> None:
    """The request's deadline passes while calguard is still retrying: its 504
    (``deadline_exceeded``) comes after calguard spent the time of all its attempts, so the
    SDK must not ask again. Before, it did, twice: each time calguard's attempts again (9
    upstream calls instead of 3; seen in a full run, where a loaded machine let the default
    deadline cut the test above short)."""
    stack.script.delay_s = 1.5
    try:
        via, calls = stack.asked(stack.cut, chat)
    finally:
        stack.script.delay_s = 0
    assert isinstance(via, openai.InternalServerError)
    assert via.status_code == 504
    assert via.body["code"] == "deadline_exceeded"  # type: ignore[index]
    assert via.response.headers["x-should-retry"] == "false"
    assert 1 <= calls <= 3  # one request's attempts: the SDK asked once
