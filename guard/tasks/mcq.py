"""A calibrated multiple-choice request: plan orders, ask the upstream, calibrate, answer.

The planner state of a calibration key lives in the store; this process keeps a snapshot of it
per key and plans each question on that snapshot. When the question is answered, one store
transaction reads the key's state, adopts the question into it
(:meth:`calibrators.planner.PermutationPlanner.adopt`) and writes it back: one round trip per
question, and several workers share a key without losing updates; the same write counts the
key's traffic (:mod:`guard.tasks.traffic`) and, now and then, the store adds a history point of
its prior. The orders of one step are asked concurrently.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from calibrators.permutation import FloatArray, Perm
from calibrators.planner import PermutationPlanner, QuestionRun
from calibrators.referential import ReferentialCheck, check_referential
from guard.errors import InvalidRequestError, UpstreamError
from guard.request import McqOptions
from guard.store import State
from guard.store.threads import in_store_thread
from guard.tasks.distribution import id_forms
from guard.tasks.job import Job, Outcome
from guard.tasks.prompt_text import McqPrompt, find_options, locate_options
from guard.tasks.traffic import counted

T = TypeVar("T")
Answer = TypeVar("Answer")


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


def _prompt(job: Job, opts: McqOptions) -> McqPrompt:
    if opts.options is not None:
        try:
            return locate_options(job.text, opts.options)
        except ValueError as exc:
            raise InvalidRequestError(str(exc), param="guard.options") from exc
    found = job.detected if isinstance(job.detected, McqPrompt) else find_options(job.text)
    if found is None:
        raise InvalidRequestError(
            "task is 'mcq' but no options were found in the last user message: write them "
            "one per line as 'A. text' / 'B) text' / '(C) text', or pass guard.options",
            param="guard.options",
        )
    return found


def _new_planner(job: Job, method: str, n: int) -> PermutationPlanner:
    kwargs: dict[str, Any] = {"budget": job.route.budget}
    if job.route.warmup is not None:
        kwargs["warmup"] = job.route.warmup
    if job.route.alpha is not None:
        kwargs["alpha"] = job.route.alpha
    if job.route.pooling is not None:
        kwargs["pooling"] = job.route.pooling
    if job.route.drift_check is not None:
        kwargs["drift_check"] = job.route.drift_check
    try:
        return PermutationPlanner(n, method, **kwargs)  # type: ignore[arg-type]
    except ValueError as exc:
        if method != "adaptive":
            raise
        raise ValueError(
            f"the route of model {job.route_name!r} sets budget {job.route.budget:g}: {exc} "
            "(a setting of this calguard, not of the request)"
        ) from exc


def _stored(job: Job, state: State | None, method: str, n: int) -> PermutationPlanner:
    saved = (state or {}).get(method)
    return PermutationPlanner.from_dict(saved) if saved else _new_planner(job, method, n)


async def _snapshot(job: Job, key: str, method: str, n: int) -> PermutationPlanner:
    planner: PermutationPlanner | None = job.cache.get((key, method))
    if planner is None:
        state = await in_store_thread(job.store.load, key)
        # Another question of the key may have cached its snapshot while this one loaded.
        planner = job.cache.get((key, method)) or _stored(job, state, method, n)
        job.cache[(key, method)] = planner
    if planner.n != n:
        raise InvalidRequestError(
            f"calibration key {key!r} is for questions with {planner.n} options; this one has "
            f"{n}: use another guard.key",
            param="guard.key",
        )
    return planner


Gather = Callable[[list[Awaitable[Answer]]], Awaitable[list[Answer | BaseException]]]


async def _gather(aws: list[Awaitable[Answer]]) -> list[Answer | BaseException]:
    return await asyncio.gather(*aws, return_exceptions=True)


async def ask_orders(
    run: QuestionRun,
    ask: Callable[[Perm], Awaitable[tuple[FloatArray, T]]],
    gather: Gather[tuple[FloatArray, T]] = _gather,
) -> tuple[list[T], list[BaseException]]:
    """Ask every order the planner hands out for ``run``, a step at a time (the orders of one
    step concurrently, through ``gather``); ``ask(perm)`` gives the distribution over the
    displayed IDs and whatever else the caller keeps. An order whose call fails is dropped: the
    answer rests on the others. Returns what each answered order gave (in the order answered)
    and the errors; when nothing was answered, ``run.result()`` cannot be taken.

    The proxy and the inspect_ai solver (:mod:`guard.integrations.inspect`) both drive a
    question through this function."""
    kept: list[T] = []
    errors: list[BaseException] = []
    try:
        while batch := run.pending():
            answers = await gather([ask(p) for p in batch])
            for perm, a in zip(batch, answers, strict=True):
                if isinstance(a, BaseException):
                    errors.append(a)
                    run.drop(perm)
                    continue
                kept.append(a[1])
                run.observe(perm, a[0])
    finally:
        run.release()  # stopped (cancelled, a sample limit) or finished: no more orders
    return kept, errors


async def _ask_all(job: Job, run: QuestionRun, prompt: McqPrompt) -> dict[str, Any]:
    ids = {i: id_forms(i) for i in prompt.ids}
    kept, errors = await ask_orders(run, lambda perm: job.distribution(prompt.permuted(perm), ids))
    if not kept:
        first = errors[0] if errors else None
        if isinstance(first, Exception):  # calguard's, or a wrapped client's own (unchanged)
            raise first
        raise UpstreamError(f"no upstream call for this question succeeded: {first!r}")
    return kept[0]


@contextmanager
def _calibration_settings() -> Iterator[None]:
    """A planner that cannot be made for this request ('full' on too many options; a route
    budget below the refresh's cost) is a 400 naming ``guard.calibration``, not a 500. (A
    request's own ``guard.budget`` is taken as given: 1.0 means no extra orders.)"""
    try:
        yield
    except ValueError as exc:
        raise InvalidRequestError(str(exc), param="guard.calibration") from exc


async def run(job: Job) -> Outcome:
    opts = job.opts
    assert isinstance(opts, McqOptions)
    method = opts.calibration or job.route.mcq
    prompt = _prompt(job, opts)
    ref = check_referential(prompt.options, prompt.ids)
    key = job.client_key(opts.key) or calibration_key(
        job.upstream_model, job.body, job.msg_index, prompt
    )
    with _calibration_settings():
        warming = (await _snapshot(job, key, method, prompt.n)).warming(ref.handling)
    if warming:
        async with _one_at_a_time(job, key, method):
            # The warm-up may have ended while this question waited: then it goes at once.
            if (await _snapshot(job, key, method, prompt.n)).warming(ref.handling):
                return await _answer(job, key, method, prompt, ref)
    return await _answer(job, key, method, prompt, ref)


@dataclass
class Flight:
    """This process's questions of one key in flight: the warm-up gate, the lock that makes
    its adoptions one at a time, and the runs planned but not yet adopted into the store."""

    gate: asyncio.Lock = field(default_factory=asyncio.Lock)
    adopting: asyncio.Lock = field(default_factory=asyncio.Lock)
    runs: set[QuestionRun] = field(default_factory=set)


def _flight(job: Job, key: str, method: str) -> Flight:
    # asyncio locks belong to one event loop: one record per key and loop.
    name = ("in flight", key, method, id(asyncio.get_running_loop()))
    flight: Flight | None = job.cache.get(name)
    if flight is None:
        flight = job.cache[name] = Flight()
    return flight


@asynccontextmanager
async def _one_at_a_time(job: Job, key: str, method: str) -> AsyncIterator[None]:
    """While a key's warm-up lasts, its questions go one at a time in this process
    (:meth:`PermutationPlanner.warming`): each is planned on the state its predecessors left.
    A question that waited ``job.patience`` seconds (a quarter of the request deadline) goes
    ahead anyway, planned on the state as it is then, so that a slow upstream turns a burst
    into a shorter warm-up, not timeouts.
    (Workers do not wait for each other: each one's questions go one at a time.)"""
    gate = _flight(job, key, method).gate
    try:
        async with asyncio.timeout(job.patience):
            await gate.acquire()
        held = True
    except TimeoutError:
        held = False
    try:
        yield
    finally:
        if held:
            gate.release()


async def _answer(
    job: Job, key: str, method: str, prompt: McqPrompt, ref: ReferentialCheck
) -> Outcome:
    opts = job.opts
    assert isinstance(opts, McqOptions)
    with _calibration_settings():
        planner = await _snapshot(job, key, method, prompt.n)
        if opts.budget is not None and opts.budget != planner.budget:
            planner = PermutationPlanner.from_dict(planner.to_dict())  # this request only
            planner.budget = opts.budget
        question = planner.start(ref.handling, ref.fixed)
    flight = _flight(job, key, method)
    shared = planner is job.cache.get((key, method))  # not a this-request-only budget
    if shared:
        flight.runs.add(question)
    try:
        template = await _ask_all(job, question, prompt)
        res = question.result()
        async with flight.adopting:
            await _adopt(job, key, method, prompt.n, question, flight)
    finally:
        flight.runs.discard(question)
    answer = prompt.ids[res.index]
    evidence = {
        "task": "mcq",
        "calibration": method,
        "answer": answer,
        "index": res.index,
        "probs": floats(res.probs),
        "raw_probs": floats(res.raw_probs),
        "prior": floats(res.prior),
        "upstream_calls": job.calls,  # every call asked (its retries inside: once)
        "flags": [],
        "key": key,
        "handling": res.handling,
        "role": res.role,
        "orders": [list(p) for p in res.orders],
        "order_answers": list(res.order_answers),
        "order_probs": [floats(p) for p in res.order_probs],
        "answers_from": "samples" if job.sampled else "logprobs",
    }
    return Outcome(answer, evidence, template, job.usage)


async def _adopt(
    job: Job, key: str, method: str, n: int, question: QuestionRun, flight: Flight
) -> None:
    """One store transaction: the key's state, with ``question`` adopted into it, written
    back; the process's snapshot is then that state with this process's other questions in
    flight reserved on it, so that it counts what they were charged."""

    def finish(state: State | None) -> tuple[State, PermutationPlanner]:
        fresh = _stored(job, state, method, n)
        fresh.adopt(question)
        return counted({**(state or {}), method: fresh.to_dict()}, method, job.calls), fresh

    try:
        fresh = await in_store_thread(job.store.update, key, finish)
    except ValueError as exc:  # another question of another shape made the key first
        raise InvalidRequestError(
            f"calibration key {key!r} is for questions of another shape ({exc}): use another "
            "guard.key",
            param="guard.key",
        ) from exc
    flight.runs.discard(question)
    for other in flight.runs:
        if other.n == fresh.n:  # one of another shape gets its 400 when it is written back
            fresh.reserve(other)
    job.cache[(key, method)] = fresh


def floats(x: Any) -> list[float] | None:
    return None if x is None else [round(float(v), 6) for v in x]
