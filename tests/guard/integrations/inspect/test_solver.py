"""debiased_choice: its arguments, its prompt, and what it does with failed and referential
orders (a mockllm model whose answers the test writes, inside real inspect evals)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from inspect_ai import Task, eval
from inspect_ai.dataset import Sample
from inspect_ai.log import EvalLog
from inspect_ai.model import ChatMessage, GenerateConfig, ModelOutput
from inspect_ai.util import LimitExceededError

from calibrators.planner import PermutationPlanner
from guard.integrations.inspect import EVIDENCE, choice_with_bias, debiased_choice
from guard.integrations.inspect.solver import _gather, format_prompt, letters
from guard.testing.inspect_provider import model_output

pytestmark = pytest.mark.usefixtures("settled_gc")  # see tests/conftest.py

BIAS = {"A": -2.0, "B": -0.2, "C": -2.5, "D": -3.0}  # a model that answers B, whatever is there


def test_the_prompt_writes_the_options_as_multiple_choice_does() -> None:
    text = format_prompt("{letters}|{question}|{choices}", "Which?", ["x", "y", "z"])
    assert text == "A,B,C|Which?|A) x\nB) y\nC) z"
    assert letters(3) == ["A", "B", "C"]
    assert letters(28)[24:] == ["Y", "Z", "1", "2"]  # inspect's own IDs past Z


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"calibration": "bogus"}, "unknown calibration 'bogus'"),
        ({"template": "{question} only"}, "must contain {question} and {choices}"),
        ({"calibration": "adaptive", "budget": 0.5}, "budget 0.5 is below"),
    ],
)
def test_bad_arguments_fail_when_the_task_is_built(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        debiased_choice(**kwargs)


def test_gather_hands_back_errors_but_a_sample_limit_stops_the_sample() -> None:
    async def ok() -> int:
        return 1

    async def boom() -> int:
        raise RuntimeError("upstream down")

    async def limit() -> int:
        raise LimitExceededError("token", value=10, limit=5)

    got = asyncio.run(_gather([ok(), boom()]))
    assert got[0] == 1
    assert isinstance(got[1], RuntimeError)
    with pytest.raises(LimitExceededError):
        asyncio.run(_gather([ok(), limit()]))


@pytest.mark.parametrize("method", ["pride", "adaptive"])
def test_questions_wait_for_each_other_only_until_the_warm_up_has_ended(method: str) -> None:
    planner = PermutationPlanner(4, method, warmup=2)  # type: ignore[arg-type]
    skewed = [0.1, 0.6, 0.2, 0.1]
    while planner.warming():
        run = planner.start()
        while batch := run.pending():
            for perm in batch:
                run.observe(perm, skewed)
        run.result()
    assert planner.warmed >= 2
    assert planner.after_warmup == 1
    assert not PermutationPlanner(4, "cyclic").warming()


def biased(fail_first_option: set[str]) -> Any:
    """A model that always prefers the letter B; it fails when the option shown first is one of
    ``fail_first_option``."""

    def outputs(
        input: list[ChatMessage], tools: Any, tool_choice: Any, config: GenerateConfig
    ) -> ModelOutput:
        first = re.search(r"^A\) (.*)$", input[-1].text, re.MULTILINE)
        if first is None or first.group(1) in fail_first_option:
            raise RuntimeError(f"cannot answer with {first and first.group(1)!r} first")
        tops = [{"token": t, "logprob": lp} for t, lp in BIAS.items()]
        content = [{"token": "B", "logprob": -0.2, "top_logprobs": tops}]
        return model_output(
            {"choices": [{"message": {"content": "B"}, "logprobs": {"content": content}}]}
        )

    return outputs


def run(samples: list[Sample], fail: set[str], tmp_path: Path, **kw: Any) -> EvalLog:
    task = Task(dataset=samples, solver=debiased_choice("cyclic"), scorer=choice_with_bias())
    [log] = eval(
        task, model="mockllm/model", model_args={"custom_outputs": biased(fail)},
        log_dir=str(tmp_path), display="none", log_realtime=False, max_samples=1, **kw,
    )  # fmt: skip
    return log


def test_a_failed_order_is_dropped_and_the_answer_rests_on_the_others(tmp_path: Path) -> None:
    samples = [Sample(input="Q1?", choices=["p", "q", "r", "s"], target="A")]
    log = run(samples, {"q"}, tmp_path)
    assert log.status == "success"
    assert log.samples is not None
    ev = log.samples[0].metadata[EVIDENCE]
    assert ev["calls"] == 4
    assert len(ev["orders"]) == 3
    assert [o[0] for o in ev["orders"]] == [0, 2, 3]
    assert ev["errors"] == ["RuntimeError: cannot answer with 'q' first"]
    # Averaged over the orders answered, of a model that always says B: the options shown at B
    # in them (q, s, p) lead; r, never shown at B, is last.
    p = ev["probs"]
    assert p[2] < min(p[0], p[1], p[3])


def test_an_option_that_refers_to_the_others_stays_in_place(tmp_path: Path) -> None:
    samples = [Sample(input="Q?", choices=["p", "q", "r", "All of the above"], target="D")]
    log = run(samples, set(), tmp_path)
    assert log.samples is not None
    ev = log.samples[0].metadata[EVIDENCE]
    assert ev["handling"] == "kept_in_place"
    assert ev["orders"]
    assert all(o[3] == 3 for o in ev["orders"])


def test_when_every_order_fails_the_sample_fails_with_the_error(tmp_path: Path) -> None:
    samples = [Sample(input="Q?", choices=["p", "q"], target="A")]
    log = run(samples, {"p", "q"}, tmp_path, fail_on_error=False)
    assert log.samples is not None
    error = log.samples[0].error
    assert error is not None
    assert "cannot answer with" in error.message


def test_the_answer_and_the_prompt_follow_choice_conventions(tmp_path: Path) -> None:
    samples = [Sample(input="Which?", choices=["p", "q", "r"], target="C", id=1)]
    log = run(samples, set(), tmp_path)
    assert log.samples is not None
    s = log.samples[0]
    ev = s.metadata[EVIDENCE]
    assert s.output.completion == f"ANSWER: {ev['answer']}"
    assert s.messages[0].text == format_prompt(
        "Answer the following multiple choice question with the letter of the correct option "
        "({letters}) and nothing else.\n\n{question}\n\n{choices}",
        "Which?",
        ["p", "q", "r"],
    )
    assert s.scores is not None
    assert s.scores["choice_with_bias"].answer == ev["answer"]


def test_a_task_evaluated_again_starts_with_a_fresh_planner(tmp_path: Path) -> None:
    from guard.testing.inspect_provider import simulated_samples

    dataset, key = simulated_samples(8)
    task = Task(dataset=dataset, solver=debiased_choice("pride"), scorer=choice_with_bias())
    roles = []
    for _ in range(2):
        [log] = eval(
            task, model="calguard-fake/simulated", model_args={"answers": key},
            log_dir=str(tmp_path), display="none", log_realtime=False, max_samples=1,
        )  # fmt: skip
        assert log.samples is not None
        roles.append([s.metadata[EVIDENCE]["role"] for s in log.samples])
    assert roles[0] == roles[1]
    assert roles[0].count("warmup") == 4
