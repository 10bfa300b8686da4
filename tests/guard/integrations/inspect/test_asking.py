"""SampleAsker: calguard's distribution reader driving inspect's own model API (a mockllm model
whose outputs the test writes, no eval needed)."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from inspect_ai.model import (
    ChatMessage,
    ChatMessageSystem,
    ChatMessageUser,
    GenerateConfig,
    ModelOutput,
    get_model,
)

from guard.integrations.inspect.asking import NO_LOGPROBS, SampleAsker
from guard.testing.inspect_provider import model_output

pytestmark = pytest.mark.usefixtures("settled_gc")  # see tests/conftest.py

Seen = list[tuple[list[ChatMessage], GenerateConfig]]


def logprob_output(top: dict[str, float]) -> ModelOutput:
    best = max(top, key=lambda t: top[t])
    tops = [{"token": t, "logprob": lp} for t, lp in top.items()]
    content = [{"token": best, "logprob": top[best], "top_logprobs": tops}]
    return model_output(
        {"choices": [{"message": {"content": best}, "logprobs": {"content": content}}]}
    )


def text_output(*texts: str) -> ModelOutput:
    usage = {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11}
    return model_output({"choices": [{"message": {"content": t}} for t in texts], "usage": usage})


def asker(reply: Any, seen: Seen, memory: dict[str, Any] | None = None) -> SampleAsker:
    def outputs(
        input: list[ChatMessage], tools: Any, tool_choice: Any, config: GenerateConfig
    ) -> ModelOutput:
        seen.append((input, config))
        return reply(config)  # type: ignore[no-any-return]

    model = get_model("mockllm/model", custom_outputs=outputs)
    messages = [ChatMessageSystem(content="be brief"), ChatMessageUser(content="the question")]
    return SampleAsker(model, messages, 1, 20, {} if memory is None else memory)


def test_logprobs_over_the_letters_through_the_model_api() -> None:
    seen: Seen = []
    a = asker(lambda c: logprob_output({"B": -0.1, " A": -2.5, "Hello": -3.0}), seen)
    p, out = asyncio.run(a.distribution("shown prompt", ["A", "B", "C"]))
    # " A" counts for A; C, missing from the top-k, is bounded by the smallest logprob sent.
    want = np.exp([-2.5, -0.1, -3.0])
    assert p == pytest.approx(want / want.sum())
    assert out.completion == "B"
    assert a.calls == 1
    [(messages, config)] = seen
    assert [m.text for m in messages] == ["be brief", "shown prompt"]  # only the prompt replaced
    assert a.messages[1].text == "the question"  # the sample's own messages untouched
    assert (config.logprobs, config.top_logprobs, config.max_tokens) == (True, 20, 2)


def test_a_model_without_logprobs_is_sampled_and_remembered() -> None:
    seen: Seen = []
    memory: dict[str, Any] = {}
    replies = lambda c: text_output("ANSWER: C", "C", "(C)", "ANSWER: A", "B", "C.", "C", "C")  # noqa: E731
    a = asker(replies, seen, memory)
    p, _ = asyncio.run(a.distribution("q", ["A", "B", "C"]))
    assert p == pytest.approx(np.array([1.5, 1.5, 6.5]) / 9.5)  # counts + 0.5 each
    assert memory[NO_LOGPROBS] is True
    assert [c.logprobs for _, c in seen] == [True, None]
    assert seen[1][1].num_choices == 8
    again = asker(replies, seen, memory)  # the next sample goes straight to sampling
    asyncio.run(again.distribution("q", ["A", "B", "C"]))
    assert again.calls == 1
    assert seen[-1][1].logprobs is None


def test_a_provider_that_ignores_n_is_asked_until_it_gave_eight_answers() -> None:
    seen: Seen = []
    a = asker(lambda c: text_output("ANSWER: B"), seen, {NO_LOGPROBS: True})
    p, _ = asyncio.run(a.distribution("q", ["A", "B"]))
    assert a.calls == 8
    assert p == pytest.approx(np.array([0.5, 8.5]) / 9.0)
    assert a.usage is not None
    assert a.usage.total_tokens == 8 * 11
