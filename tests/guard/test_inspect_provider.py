"""The fake upstream as an inspect model provider: the recorded rows for every cyclic order,
the simulated model's greedy and sampled answers, and the datasets it comes with."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from inspect_ai.model import GenerateConfig, Model, ModelOutput, get_model

from calibrators.permutation import cyclic_shift
from guard.evaluation.recorded import McqRecords
from guard.integrations.inspect.solver import DEFAULT_TEMPLATE, format_prompt
from guard.testing.fake_upstream import FakeUpstreamState, SimulatedResponder, complete
from guard.testing.inspect_provider import recorded_samples, simulated_samples

pytestmark = pytest.mark.usefixtures("settled_gc")  # see tests/conftest.py

ARC = "arc_0s_Llama-2-13b-chat-hf.jsonl"


def ask(model: Model, prompt: str, **config: object) -> ModelOutput:
    return asyncio.run(model.generate(prompt, config=GenerateConfig(**config)))  # type: ignore[arg-type]


def test_the_replay_answers_every_cyclic_order_with_its_recorded_row(
    arc: McqRecords, recorded: Callable[[str], Path]
) -> None:
    model = get_model("calguard-fake/replay", recorded=str(recorded(ARC)), memoize=False)
    assert arc.questions is not None
    q = 5
    for k in range(4):
        shown = [arc.options[q][i] for i in cyclic_shift(4, k)]
        out = ask(model, format_prompt(DEFAULT_TEMPLATE, arc.questions[q], shown),
                  logprobs=True, top_logprobs=4)  # fmt: skip
        assert out.choices[0].logprobs is not None
        tops = {t.token: t.logprob for t in out.choices[0].logprobs.content[0].top_logprobs or []}
        got = np.exp([tops[c] for c in "ABCD"])
        row = arc.probs_cyclic[q][k]
        assert got == pytest.approx(row, rel=1e-9)


def test_the_simulated_model_answers_greedily_at_temperature_zero() -> None:
    dataset, key = simulated_samples(3)
    model = get_model("calguard-fake/simulated", answers=key, memoize=False)
    sample = dataset[0]
    prompt = format_prompt("{question}\n{choices}", str(sample.input), sample.choices or [])
    p = ask(model, prompt, logprobs=True, top_logprobs=4).choices[0].logprobs
    assert p is not None
    best = max(p.content[0].top_logprobs or [], key=lambda t: t.logprob).token
    greedy = ask(model, prompt, temperature=0, num_choices=5)
    assert [c.message.text for c in greedy.choices] == [f"ANSWER: {best}"] * 5
    sampled = ask(model, prompt, num_choices=40)
    assert len({c.message.text for c in sampled.choices}) > 1


def test_the_http_fake_is_greedy_at_temperature_zero_too() -> None:
    state = FakeUpstreamState(SimulatedResponder(), logprobs=False)
    body = {"messages": [{"role": "user", "content": "Q?\nA. x\nB. y\nC. z"}], "n": 30}
    texts = {
        c["message"]["content"] for c in complete(state, {**body, "temperature": 0})["choices"]
    }
    assert len(texts) == 1


def test_unknown_models_and_arguments_say_what_exists() -> None:
    with pytest.raises(ValueError, match="'simulated' and 'replay'"):
        get_model("calguard-fake/other", memoize=False)
    with pytest.raises(ValueError, match="needs model_args recorded="):
        get_model("calguard-fake/replay", memoize=False)
    with pytest.raises(ValueError, match=r"unknown model_args \['temprature'\]"):
        get_model("calguard-fake/simulated", temprature=1, memoize=False)


def test_recorded_samples_follow_the_arrival_order(arc: McqRecords) -> None:
    ds = recorded_samples(arc, [3, 0, 2])
    assert [s.id for s in ds] == [3, 0, 2]
    s = ds[0]
    assert arc.questions is not None
    assert s.input == arc.questions[3]
    assert s.choices == list(arc.options[3])
    assert s.target == "ABCD"[int(arc.gold[3])]


def test_simulated_samples_come_with_their_answer_key() -> None:
    ds, key = simulated_samples(40, seed=1)
    assert len(ds) == 40 == len(key)
    for s in ds:
        assert key[str(s.input)] == (s.choices or [])["ABCD".index(str(s.target))]
    assert len({str(s.target) for s in ds}) == 4
