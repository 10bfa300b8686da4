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
from openai.types.chat import ChatCompletionUserMessageParam

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


def _messages(
    rec: McqRecords, questions: Sequence[str], q: int
) -> list[ChatCompletionUserMessageParam]:
    return [{"role": "user", "content": arc_prompt(questions[q], rec.options[q])}]


def _score(rec: McqRecords, order: Sequence[int], evidence: Sequence[dict[str, Any]]) -> RunScore:
    """Scores over the questions asked (``order``), from each one's ``guard`` evidence."""
    asked = np.asarray(order, dtype=np.int64)
    pred = np.array([int(g["index"]) for g in evidence], dtype=np.int64)
    gold = rec.gold[asked]
    calls = sum(int(g["upstream_calls"]) for g in evidence)
    return RunScore(accuracy(pred, gold), rstd(pred, gold, rec.n_options), calls / len(asked))


def replay_through_proxy(
    client: openai.OpenAI,
    rec: McqRecords,
    questions: Sequence[str],
    order: Sequence[int],
    guard: dict[str, Any],
    model: str = "replay",
) -> RunScore:
    """Send the questions in ``order``; score the proxy's answers and count upstream calls."""
    evidence = []
    for q in order:
        r = client.chat.completions.create(
            model=model, messages=_messages(rec, questions, q), extra_body={"guard": guard}
        )
        evidence.append((r.model_extra or {})["guard"])
    return _score(rec, order, evidence)


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
    sent as a slot frees, in ``order``); also returns each question's ``guard`` evidence, in
    ``order``."""
    slots = asyncio.Semaphore(concurrency)

    async def ask(q: int) -> dict[str, Any]:
        async with slots:
            r = await client.chat.completions.create(
                model=model, messages=_messages(rec, questions, q), extra_body={"guard": guard}
            )
        return dict((r.model_extra or {})["guard"])

    evidence = list(await asyncio.gather(*(ask(int(q)) for q in order)))
    return _score(rec, order, evidence), evidence
