"""Recorded MCQ questions sent through a running proxy, scored like the offline evaluation.

The prompt is the one the recording was made with (shared/data/README.md); a fake upstream with
a :class:`guard.fake_upstream.ReplayResponder` answers every order from the recorded rows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import numpy as np
import openai

from calibrators.metrics import accuracy, rstd
from guard.evaluation.mcq import RunScore
from guard.evaluation.recorded import ID_LETTERS, McqRecords


def arc_prompt(question: str, options: Sequence[str], subject: str = "arc") -> str:
    lines = [f"{ID_LETTERS[i]}. {o}" for i, o in enumerate(options)]
    return (
        f"The following are multiple choice questions about {subject}. You should directly "
        "answer the question by choosing the correct option.\n\n"
        f"Question: {question}\nOptions:\n" + "\n".join(lines) + "\nAnswer:"
    )


def replay_through_proxy(
    client: openai.OpenAI,
    rec: McqRecords,
    questions: Sequence[str],
    order: Sequence[int],
    guard: dict[str, Any],
    model: str = "replay",
) -> RunScore:
    """Send the questions in ``order``; score the proxy's answers and count upstream calls."""
    pred = np.empty(len(rec), dtype=np.int64)
    calls = 0
    for q in order:
        r = client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": arc_prompt(questions[q], rec.options[q])}],
            extra_body={"guard": guard},
        )
        g = (r.model_extra or {})["guard"]
        pred[q] = int(g["index"])
        calls += int(g["upstream_calls"])
    return RunScore(accuracy(pred, rec.gold), rstd(pred, rec.gold, rec.n_options), calls / len(rec))


async def replay_concurrently(
    client: openai.AsyncOpenAI,
    rec: McqRecords,
    questions: Sequence[str],
    order: Sequence[int],
    guard: dict[str, Any],
    concurrency: int,
    model: str = "replay",
) -> tuple[RunScore, list[dict[str, Any]]]:
    """As :func:`replay_through_proxy`, with ``concurrency`` questions in flight at once (each
    sent as a slot frees, in ``order``); also returns each question's ``guard`` evidence."""
    pred = np.empty(len(rec), dtype=np.int64)
    evidence: list[dict[str, Any]] = [{} for _ in range(len(rec))]
    slots = asyncio.Semaphore(concurrency)

    async def ask(q: int) -> None:
        async with slots:
            r = await client.chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": arc_prompt(questions[q], rec.options[q])}],
                extra_body={"guard": guard},
            )
        evidence[q] = dict((r.model_extra or {})["guard"])
        pred[q] = int(evidence[q]["index"])

    await asyncio.gather(*(ask(int(q)) for q in order))
    calls = sum(int(g["upstream_calls"]) for g in evidence)
    score = RunScore(
        accuracy(pred, rec.gold), rstd(pred, rec.gold, rec.n_options), calls / len(rec)
    )
    return score, evidence
