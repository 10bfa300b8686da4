"""The fake upstream as an inspect_ai model provider, for tests and the examples — never a model.

``calguard-fake/simulated`` is the seeded simulated biased LLM
(:class:`~guard.testing.fake_upstream.SimulatedResponder`; give it the answer key with
``model_args={"answers": {question: right option text}}``); ``calguard-fake/replay`` serves a
recording of ``shared/data/recorded`` (``model_args={"recorded": path}``) for whatever cyclic
order is asked, as ``calguard replay-upstream`` does. Both answer through
:func:`guard.testing.fake_upstream.complete`, the HTTP fake's own function, read back into
inspect's ``ModelOutput``: logprobs over the option IDs when asked (``logprobs``,
``top_logprobs``), else ``num_choices`` sampled answers "ANSWER: X" (greedy at temperature 0).
``model_args={"logprobs": False}`` plays a provider that gives no logprobs.

Importing this module registers the provider (``@modelapi``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import (
    ChatCompletionChoice,
    ChatMessage,
    ChatMessageAssistant,
    GenerateConfig,
    Logprobs,
    ModelAPI,
    ModelCall,
    ModelOutput,
    ModelUsage,
    modelapi,
)
from inspect_ai.tool import ToolChoice, ToolInfo

from guard.evaluation.recorded import ID_LETTERS, McqRecords, load_recorded
from guard.testing.fake_upstream import (
    FakeUpstreamState,
    FloatArray,
    SimulatedResponder,
    complete,
)
from guard.testing.replay import replay_state
from guard.testing.simulated import DEFAULT_PRIOR, SimulatedMcqModel

PROVIDER = "calguard-fake"
ANSWER_TEXT = "ANSWER: {}"  # how inspect's multiple_choice() templates ask for the answer


class KeyedResponder(SimulatedResponder):
    """The simulated model, each question seeded by its own text (the key's question), not by
    the whole prompt before the options: two solvers with different prompt templates then face
    the same model knowledge."""

    def __call__(self, prefix: str, shown: Sequence[str]) -> FloatArray | None:
        question = next((q for q in self.answers if q in prefix), prefix)
        return super().__call__(question, shown)


class FakeMcqModel(ModelAPI):
    """``calguard-fake/simulated`` or ``calguard-fake/replay`` (see the module docstring)."""

    def __init__(
        self,
        model_name: str,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig = GenerateConfig(),  # noqa: B008 (inspect's own signature)
        *,
        answers: dict[str, str] | None = None,
        recorded: str | None = None,
        logprobs: bool = True,
        strength: float = 2.0,
        prior: Sequence[float] | None = None,
        seed: int = 0,
        **model_args: Any,
    ) -> None:
        super().__init__(model_name, base_url, api_key, [], config)
        if model_args:
            raise ValueError(f"{PROVIDER}: unknown model_args {sorted(model_args)}")
        if model_name == "simulated":
            sim = SimulatedMcqModel(
                prior=tuple(prior or DEFAULT_PRIOR), strength=strength, seed=seed
            )
            self.state = FakeUpstreamState(KeyedResponder(sim, dict(answers or {})))
        elif model_name == "replay":
            if recorded is None:
                raise ValueError(f"{PROVIDER}/replay needs model_args recorded=<a recorded file>")
            self.state = replay_state([recorded])
        else:
            raise ValueError(f"{PROVIDER}/{model_name}: the models are 'simulated' and 'replay'")
        self.state.logprobs = logprobs

    async def generate(
        self,
        input: list[ChatMessage],
        tools: list[ToolInfo],
        tool_choice: ToolChoice,
        config: GenerateConfig,
    ) -> tuple[ModelOutput, ModelCall]:
        body: dict[str, Any] = {
            "model": self.model_name,
            "messages": [{"role": m.role, "content": m.text} for m in input],
            "logprobs": bool(config.logprobs),
            "top_logprobs": config.top_logprobs,
            "n": config.num_choices,
            "temperature": config.temperature,
        }
        resp = complete(self.state, body, ANSWER_TEXT)
        return model_output(resp), ModelCall.create(body, resp)


def model_output(resp: dict[str, Any]) -> ModelOutput:
    """An OpenAI chat completion (a dict) as inspect's ``ModelOutput``: what inspect's own
    ``model_output_from_openai`` gives for these fields, without its per-call version check."""
    usage = resp.get("usage") or {}
    return ModelOutput(
        model=str(resp.get("model", "")),
        choices=[
            ChatCompletionChoice(
                message=ChatMessageAssistant(
                    content=c["message"]["content"], model=resp.get("model"), source="generate"
                ),
                stop_reason="stop",
                logprobs=None if c.get("logprobs") is None else Logprobs(**c["logprobs"]),
            )
            for c in resp["choices"]
        ],
        usage=ModelUsage(
            input_tokens=int(usage.get("prompt_tokens", 0)),
            output_tokens=int(usage.get("completion_tokens", 0)),
            total_tokens=int(usage.get("total_tokens", 0)),
        ),
    )


@modelapi(name=PROVIDER)
def calguard_fake() -> type[ModelAPI]:
    return FakeMcqModel


def recorded_samples(rec: McqRecords, order: Iterable[int] | None = None) -> MemoryDataset:
    """A recording's questions as inspect samples (id = the question's index), in ``order``
    (the arrival order; default: as recorded). The target is the gold letter."""
    if rec.questions is None:
        raise ValueError(f"{rec.name}: the recording holds no question texts")
    questions = rec.questions
    idx = range(len(rec)) if order is None else [int(q) for q in order]
    return MemoryDataset(
        [
            Sample(
                input=questions[q],
                choices=list(rec.options[q]),
                target=ID_LETTERS[int(rec.gold[q])],
                id=q,
            )
            for q in idx
        ],
        name=rec.name,
    )


def load_mcq(path: str | Path) -> McqRecords:
    rec = load_recorded(path)
    if not isinstance(rec, McqRecords):
        raise ValueError(f"{path}: not an MCQ recording")
    return rec


def simulated_samples(n: int, seed: int = 0) -> tuple[MemoryDataset, dict[str, str]]:
    """``n`` made-up four-option questions and their answer key (question -> right option), for
    ``calguard-fake/simulated``: the right option is drawn at random, so the gold positions
    are balanced in expectation and any skew in the answers is the model's."""
    rng = np.random.default_rng(seed)
    samples, key = [], {}
    for q in range(n):
        question = f"Simulated question {q}: which option is right?"
        options = [f"option {q}-{k}" for k in range(4)]
        gold = int(rng.integers(4))
        key[question] = options[gold]
        samples.append(Sample(input=question, choices=options, target="ABCD"[gold], id=q))
    return MemoryDataset(samples, name="simulated"), key
