"""``debiased_choice()``: inspect_ai's multiple-choice solver with the option-ID bias removed.

For each sample with choices, calguard's planner (:class:`calibrators.planner.PermutationPlanner`,
the one the proxy and ``calguard eval-offline`` drive) says which orders of the options to ask;
each order is asked through inspect's own model API (:class:`SampleAsker`: logprobs over the
option letters, or sampled answers where the provider gives none) by
:func:`guard.tasks.mcq.ask_orders`, the proxy's own loop. The planner maps the answers back to
the sample's order and debiases them; the solver marks the answer in ``state.choices`` (the
convention of inspect's ``choice()`` scorer) and leaves the evidence in
``state.metadata["calguard"]``. One planner per run (eval), model and number of options: the
prior is learned across the samples of the run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar, cast

import anyio
from inspect_ai.model import Model, ModelOutput, get_model
from inspect_ai.solver import Generate, Solver, TaskState, solver
from inspect_ai.util import LimitExceededError, collect, span

from calibrators.permutation import FloatArray, Perm, apply_permutation
from calibrators.planner import PermutationPlanner
from calibrators.planner_settings import METHODS, Method
from calibrators.referential import ReferentialCheck, check_referential
from guard.integrations.inspect.asking import NO_LOGPROBS, SampleAsker
from guard.tasks.mcq import ask_orders, floats

T = TypeVar("T")
EVIDENCE = "calguard"  # the key of the evidence in the sample's metadata

DEFAULT_TEMPLATE = (
    "Answer the following multiple choice question with the letter of the correct option "
    "({letters}) and nothing else.\n\n{question}\n\n{choices}"
)


def letters(n: int) -> list[str]:
    """The option IDs inspect shows: ``A`` to ``Z``, then ``1``, ``2``, ... (its
    ``answer_character``)."""
    return [chr(ord("A") + i) if i < 26 else str(i - 25) for i in range(n)]


def format_prompt(template: str, question: str, options: Sequence[str]) -> str:
    """The question with ``options`` in the order given, written as inspect's
    ``multiple_choice()`` writes them (``A) text``)."""
    ids = letters(len(options))
    choices = "\n".join(f"{i}) {text}" for i, text in zip(ids, options, strict=True))
    return template.format(question=question, choices=choices, letters=",".join(ids))


async def _gather(aws: list[Awaitable[T]]) -> list[T | BaseException]:
    """inspect's ``collect()`` (works under asyncio and trio), with a failed call handed back
    as its error, as ``asyncio.gather(return_exceptions=True)`` does; a sample limit stops the
    sample at once."""

    async def caught(aw: Awaitable[T]) -> T | BaseException:
        try:
            return await aw
        except LimitExceededError:
            raise
        except Exception as exc:
            return exc

    return await collect(*(caught(aw) for aw in aws))


def run_id() -> str:
    """The eval this sample belongs to: a Task evaluated again starts with a fresh planner.
    inspect keeps it on its active sample (not public API: "" where that is gone)."""
    try:
        from inspect_ai.log._samples import sample_active
    except ImportError:  # pragma: no cover - a later inspect_ai moved it
        return ""
    active = sample_active()
    return str(getattr(active, "eval_id", "")) if active is not None else ""


@solver
def debiased_choice(
    calibration: str = "adaptive",
    budget: float = 2.0,
    template: str | None = None,
    top_logprobs: int = 20,
) -> Solver:
    """Multiple choice with the option-ID bias removed by calguard (use with samples that have
    ``choices``, in place of ``multiple_choice()``; score with ``choice()`` or
    :func:`~guard.integrations.inspect.choice_with_bias`).

    Args:
      calibration: ``adaptive`` (extra orders where the answer is uncertain, ``budget`` calls
        per sample on average), ``pride`` (the learned prior divided out, about one call),
        ``cyclic`` (every cyclic order, n calls), ``full`` (every order) or ``none``.
      budget: ``adaptive`` only: mean model calls per sample to stay at or under.
      template: the prompt, with ``{question}``, ``{choices}`` and optionally ``{letters}``.
        The model must answer with the option letter first: the letter's logprobs are read at
        the first generated position that holds one.
      top_logprobs: how many top logprobs to ask for (calguard's proxy asks 20).
    """
    if calibration not in METHODS:
        raise ValueError(f"unknown calibration {calibration!r}; choose one of {', '.join(METHODS)}")
    tpl = template or DEFAULT_TEMPLATE
    if "{question}" not in tpl or "{choices}" not in tpl:
        raise ValueError("the template must contain {question} and {choices}")
    method = cast(Method, calibration)
    PermutationPlanner(4, method, budget=budget)  # a bad budget fails here, not mid-run
    planners: dict[tuple[str, str, int], tuple[PermutationPlanner, anyio.Lock]] = {}
    memory: dict[str, dict[str, Any]] = {}  # per model: what its provider does not offer

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        n = len(state.choices)
        if n < 2:
            raise ValueError("debiased_choice needs samples with at least two choices")
        model = get_model()
        key = (run_id(), str(model), n)
        if key not in planners:
            planners[key] = (PermutationPlanner(n, method, budget=budget), anyio.Lock())
        planner, gate = planners[key]
        options = [c.value for c in state.choices]
        ref = check_referential(options, letters(n))
        # While the key warms up, its samples go one at a time, as in a sequential run
        # (PermutationPlanner.warming); after the warm-up, concurrently.
        if planner.warming(ref.handling):
            async with gate:
                if planner.warming(ref.handling):
                    return await answer(state, model, planner, options, ref)
        return await answer(state, model, planner, options, ref)

    async def answer(
        state: TaskState,
        model: Model,
        planner: PermutationPlanner,
        options: list[str],
        ref: ReferentialCheck,
    ) -> TaskState:
        n = len(options)
        ids = letters(n)
        question = state.user_prompt.text
        index = next(i for i, m in enumerate(state.messages) if m is state.user_prompt)
        asker = SampleAsker(
            model, state.messages, index, top_logprobs, memory.setdefault(str(model), {})
        )

        async def ask(perm: Perm) -> tuple[FloatArray, ModelOutput]:
            async with span(f"order {''.join(ids[i] for i in perm)}"):
                text = format_prompt(tpl, question, apply_permutation(options, perm))
                return await asker.distribution(text, ids)

        run = planner.start(ref.handling, ref.fixed)
        kept, errors = await ask_orders(run, ask, _gather)
        if not kept:
            raise errors[0] if errors else RuntimeError("no order of this question was asked")
        res = run.result()
        letter = ids[res.index]
        for i in range(n):
            state.choices.mark_choice(i, i == res.index)
        state.user_prompt.text = format_prompt(tpl, question, options)
        state.output = ModelOutput.from_content(kept[0].model, f"ANSWER: {letter}")
        state.output.usage = asker.usage
        state.messages.append(state.output.message)
        state.metadata[EVIDENCE] = {
            "calibration": calibration,
            "answer": letter,
            "index": res.index,
            "probs": floats(res.probs),
            "raw_probs": floats(res.raw_probs),
            "prior": floats(res.prior),
            "orders": [list(p) for p in res.orders],
            "order_answers": list(res.order_answers),
            "order_probs": [floats(p) for p in res.order_probs],
            "calls": asker.calls,
            "role": res.role,
            "handling": res.handling,
            "answers_from": "samples" if asker.memory.get(NO_LOGPROBS) else "logprobs",
            "errors": [f"{type(e).__name__}: {e}" for e in errors],
        }
        return state

    return solve
