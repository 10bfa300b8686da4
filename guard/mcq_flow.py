"""A calibrated multiple-choice request: plan orders, ask the upstream, calibrate, answer.

The planner state of a calibration key lives in the store. Every step (start, each batch of
answers) is one store transaction on the freshly loaded state, so several workers share a key
without losing updates; the orders of one step are asked concurrently.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from calibrators.permutation import Perm
from calibrators.planner import McqResult, PermutationPlanner, QuestionRun
from calibrators.referential import check_referential
from guard.asking import Ask, add_usage, ask_distribution
from guard.config import RouteConfig
from guard.errors import CalguardError, InvalidRequestError, UpstreamError
from guard.extract import id_forms
from guard.mcq_text import McqPrompt
from guard.protocol import MCQ_CALIBRATIONS, GuardOptions
from guard.store import State, Store


@dataclass(frozen=True)
class McqOutcome:
    result: McqResult
    prompt: McqPrompt
    method: str
    key: str
    template: dict[str, Any]  # the first upstream response, for id / model / created
    usage: dict[str, int]


def calibration_key(
    upstream_model: str, body: dict[str, Any], msg_index: int, prompt: McqPrompt
) -> str:
    """(upstream model, task, n, ID style, template fingerprint). The fingerprint covers what
    stays the same across questions of one template: the system and earlier messages' roles,
    the system text, how option lines are written, and the text after the options."""
    messages = body["messages"]
    system = [m.get("content") for m in messages[:msg_index] if m.get("role") == "system"]
    text = prompt.text
    line_starts = [text[text.rfind("\n", 0, a) + 1 : a] for a, _ in prompt.spans]
    tail = text[prompt.spans[-1][1] :]
    fp = hashlib.sha1(
        json.dumps(
            [system, [m.get("role") for m in messages[:msg_index]], line_starts, tail]
        ).encode()
    ).hexdigest()[:12]
    return f"{upstream_model}|mcq|{prompt.n}|{prompt.id_style}|{fp}"


def _planner(
    state: State | None, method: str, n: int, route: RouteConfig, opts: GuardOptions
) -> PermutationPlanner:
    stored = (state or {}).get(method)
    if stored is None:
        planner = PermutationPlanner(
            n,
            method,  # type: ignore[arg-type]  # checked against MCQ_CALIBRATIONS by the caller
            warmup=route.warmup,
            alpha=route.alpha,
            budget=opts.budget or route.budget,
        )
    else:
        planner = PermutationPlanner.from_dict(stored)
    if opts.budget is not None:
        planner.budget = opts.budget
    return planner


async def run_mcq(
    *,
    ask: Ask,
    store: Store,
    body: dict[str, Any],
    msg_index: int,
    prompt: McqPrompt,
    route: RouteConfig,
    opts: GuardOptions,
    upstream_model: str,
    top_logprobs: int,
) -> McqOutcome:
    method = opts.calibration or route.mcq
    if method not in MCQ_CALIBRATIONS:
        raise InvalidRequestError(
            f"calibration {method!r} is not one for task mcq; use one of "
            f"{', '.join(MCQ_CALIBRATIONS)}",
            param="guard.calibration",
        )
    ref = check_referential(prompt.options, prompt.ids)
    key = opts.key or calibration_key(upstream_model, body, msg_index, prompt)

    def start(state: State | None) -> tuple[State, QuestionRun]:
        planner = _planner(state, method, prompt.n, route, opts)
        run = planner.start(ref.handling, ref.fixed)
        return {**(state or {}), method: planner.to_dict()}, run

    try:
        run = await asyncio.to_thread(store.update, key, start)
    except ValueError as exc:  # e.g. 'full' on too many options, a budget below the refresh
        raise InvalidRequestError(str(exc), param="guard.calibration") from exc
    batch = run.pending()
    template: dict[str, Any] | None = None
    usage: dict[str, int] = {}
    errors: list[BaseException] = []
    while batch:
        ids = {i: id_forms(i) for i in prompt.ids}
        answers = await asyncio.gather(
            *(
                ask_distribution(ask, body, msg_index, prompt.permuted(p), ids, top_logprobs)
                for p in batch
            ),
            return_exceptions=True,
        )
        for a in answers:
            if isinstance(a, BaseException):
                errors.append(a)
                continue
            template = template or a[1]
            add_usage(usage, a[1])

        def step(
            state: State | None, batch: tuple[Perm, ...] = batch, answers: list[Any] = answers
        ) -> tuple[State, tuple[Perm, ...]]:
            planner = _planner(state, method, prompt.n, route, opts)
            run.rebind(planner)
            for perm, a in zip(batch, answers, strict=True):
                if isinstance(a, BaseException):
                    run.drop(perm)
                else:
                    run.observe(perm, a[0])
            nxt = run.pending()
            if not nxt and run.done and run.answered:
                run.result()  # updates the planner (prior, threshold) inside this transaction
            return {**(state or {}), method: planner.to_dict()}, nxt

        batch = await asyncio.to_thread(store.update, key, step)
    if template is None:
        first = errors[0] if errors else None
        if isinstance(first, CalguardError):
            raise first
        raise UpstreamError(f"no upstream call for this question succeeded: {first!r}")
    return McqOutcome(run.result(), prompt, method, key, template, usage)
