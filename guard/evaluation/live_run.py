"""Driving a live endpoint for ``calguard eval``: every item once per calibration, through
calguard's pipeline (in-process with :func:`guard.wrap`, or a running calguard proxy).

Items are asked in arrival order by ``concurrency`` workers (one worker: strictly in order, so a
run is reproducible). Each answer is appended to the :class:`ResultLog` as it arrives; the first
error that survives the SDK's own retries stops the run, everything answered so far being kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import openai

from guard.errors import CalguardError
from guard.evaluation.live_data import Dataset, McqItem
from guard.evaluation.live_log import Answer, ResultLog

Via = Literal["inprocess", "proxy"]
Ask = Callable[[int, str], Awaitable[Answer]]
Tick = Callable[[str], None]


class EvalRunError(RuntimeError):
    """An item could not be answered; what was answered before is in the log."""


@dataclass(frozen=True)
class Endpoint:
    base_url: str
    model: str
    api_key: str
    via: Via = "inprocess"
    max_retries: int = 2  # the SDK's retries, with its backoff
    store: str = "sqlite:///calguard-eval.db"  # in-process: where the learned priors live
    budget: float | None = None  # MCQ: calls per question for adaptive (the route's otherwise)


def make_client(ep: Endpoint) -> Any:
    """An ``AsyncOpenAI`` client: wrapped by calguard in-process, or talking to a proxy."""
    client = openai.AsyncOpenAI(
        base_url=ep.base_url, api_key=ep.api_key, max_retries=ep.max_retries
    )
    if ep.via == "proxy":
        return client
    import guard

    return guard.wrap(client, store=ep.store)


def guard_options(ds: Dataset, i: int, calibration: str, key: str) -> dict[str, Any]:
    """The request's ``guard`` object for item ``i`` of ``ds``. An MCQ's options are given
    (``guard.options``), not found again in the prompt: found, an option over two lines made
    a question of another shape, which the key refused on this run and every rerun."""
    opts: dict[str, Any] = {"task": ds.kind, "calibration": calibration, "key": key}
    item = ds.items[i]
    if ds.kind == "classify":
        opts["labels"] = list(ds.labels)
    elif isinstance(item, McqItem):
        opts["options"] = list(item.options)
    return opts


async def ask_item(
    client: Any, ds: Dataset, ep: Endpoint, i: int, guard: dict[str, Any]
) -> tuple[Any, dict[str, Any]]:
    """One calibrated request for item ``i`` (MCQ: adaptive's budget, if the run sets one):
    the reply and its ``guard`` evidence."""
    if ds.kind == "mcq" and ep.budget is not None:
        guard = {**guard, "budget": ep.budget}
    r = await client.chat.completions.create(
        model=ep.model,
        messages=[{"role": "user", "content": ds.prompt(i)}],
        extra_body={"guard": guard},
    )
    evidence = (r.model_extra or {}).get("guard")
    if not isinstance(evidence, dict) or evidence.get("index") is None:
        raise EvalRunError(
            f"item {i}: the reply carries no calibrated answer ('guard' evidence); with "
            "--via proxy, --base-url must be a calguard proxy (for a plain endpoint: "
            "--via inprocess)"
        )
    return r, evidence


def asker(client: Any, ds: Dataset, ep: Endpoint, run_id: str) -> Ask:
    """``ask(item, calibration)``: one calibrated request and what it cost."""

    async def ask(i: int, calibration: str) -> Answer:
        # One key per run and calibration: a new run learns its priors from scratch, a resumed
        # one continues them.
        key = f"eval/{run_id}/{calibration}/{ds.n_classes}"
        r, evidence = await ask_item(client, ds, ep, i, guard_options(ds, i, calibration, key))
        usage = getattr(r, "usage", None)
        return Answer(
            calibration,
            i,
            ds.gold(i),
            int(evidence["index"]),
            [float(x) for x in evidence.get("probs") or []],
            int(evidence.get("upstream_calls", 0)),
            int(getattr(usage, "total_tokens", 0) or 0),
        )

    return ask


async def ask_each(
    todo: Iterable[int], concurrency: int, ask: Callable[[int], Awaitable[None]], what: str = ""
) -> None:
    """``ask(i)`` for each item of ``todo``, taken in order by ``concurrency`` workers; raise
    :class:`EvalRunError` on the first failure (after the workers in flight have finished)."""
    items = iter(todo)
    failures: list[tuple[int, BaseException]] = []

    async def worker() -> None:
        for i in items:  # shared: each item is taken by one worker, in arrival order
            if failures:
                return
            try:
                await ask(i)
            except (openai.OpenAIError, CalguardError, EvalRunError) as exc:
                failures.append((i, exc))
                return

    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    if failures:
        i, exc = failures[0]
        if isinstance(exc, EvalRunError):
            raise exc
        raise EvalRunError(f"item {i}{what}: {type(exc).__name__}: {exc}") from exc


async def run_calibration(
    ask: Ask,
    log: ResultLog,
    calibration: str,
    order: Sequence[int],
    concurrency: int,
    tick: Tick = lambda _: None,
) -> None:
    """Ask every item of ``order`` not yet in ``log``; raise :class:`EvalRunError` on the first
    failure (after the workers in flight have finished)."""
    done = log.done(calibration)

    async def one(i: int) -> None:
        log.append(await ask(i, calibration))
        tick(calibration)

    await ask_each([i for i in order if i not in done], concurrency, one, f" ({calibration})")
