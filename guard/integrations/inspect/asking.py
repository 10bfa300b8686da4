"""One sample's questions to the task's model, through inspect_ai's own model API.

:class:`SampleAsker` plays the upstream of :func:`guard.tasks.distribution.ask_distribution`,
the function the proxy reads every option-ID distribution with: logprobs first
(``top_logprobs`` over the option letters), else sampled answers counted. Each request becomes
a ``Model.generate()`` call on the conversation so far with the user prompt replaced, so inspect
applies its own retries, connection limits, caching, sample limits and transcript.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inspect_ai.model import ChatMessage, GenerateConfig, Model, ModelOutput, ModelUsage

from calibrators.permutation import FloatArray
from guard.tasks.distribution import ask_distribution, id_forms

NO_LOGPROBS = "no-logprobs"  # a model that gave no logprobs when asked: sampled from then on


class SampleAsker:
    """Asks ``model`` with ``messages[index]`` (a user message) replaced by each prompt.

    ``memory`` is shared by the samples of a run (one per model): once the model answers a
    logprobs request without any, or refuses one, later questions go straight to sampling.
    """

    def __init__(
        self,
        model: Model,
        messages: Sequence[ChatMessage],
        index: int,
        top_logprobs: int,
        memory: dict[str, Any],
    ) -> None:
        self.model = model
        self.messages = list(messages)
        self.index = index
        self.top_logprobs = top_logprobs
        self.memory = memory
        self.calls = 0  # every generate() call made, a wasted logprobs attempt included
        self.usage: ModelUsage | None = None

    async def distribution(
        self, content: str, ids: Sequence[str]
    ) -> tuple[FloatArray, ModelOutput]:
        """The model's distribution over ``ids`` with ``content`` as the user prompt, and the
        first output it came from."""
        p, resp = await ask_distribution(
            self._ask,
            {"messages": [{"role": "user", "content": ""}]},
            0,
            content,
            {i: id_forms(i) for i in ids},
            self.top_logprobs,
            logprobs=not self.memory.get(NO_LOGPROBS),
            on_refusal=lambda: self.memory.__setitem__(NO_LOGPROBS, True),
        )
        output = resp["output"]
        assert isinstance(output, ModelOutput)
        return p, output

    async def _ask(self, req: dict[str, Any]) -> dict[str, Any]:
        prompt = self.messages[self.index].model_copy(deep=True)
        prompt.text = str(req["messages"][0]["content"])
        messages = [*self.messages[: self.index], prompt, *self.messages[self.index + 1 :]]
        config = GenerateConfig(
            max_tokens=req.get("max_tokens"),
            logprobs=req.get("logprobs"),
            top_logprobs=req.get("top_logprobs"),
            num_choices=req.get("n"),
        )
        self.calls += 1
        out = await self.model.generate(messages, config=config)
        if out.usage is not None:
            self.usage = out.usage if self.usage is None else self.usage + out.usage
        if req.get("logprobs") and out.choices and all(c.logprobs is None for c in out.choices):
            self.memory[NO_LOGPROBS] = True  # the provider ignores the request: stop asking
        return {
            "choices": [
                {
                    "message": {"content": c.message.text},
                    "logprobs": None if c.logprobs is None else c.logprobs.model_dump(),
                }
                for c in out.choices
            ],
            "output": out,
        }
