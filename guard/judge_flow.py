"""A calibrated judge request: ask with the candidates in every order (position swap), map each
verdict back to the original candidates, aggregate (balanced position calibration), and flag a
verdict that changed with the order."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from calibrators.position import aggregate_scores, judge_orders
from guard.asking import Ask, add_usage, ask_distribution
from guard.errors import InvalidRequestError, UpstreamError
from guard.extract import id_forms
from guard.mcq_text import LETTERS, McqPrompt
from guard.protocol import GuardOptions

JUDGE_CALIBRATIONS = ("swap", "none")


@dataclass(frozen=True)
class JudgeOutcome:
    answer: str  # the winner's ID, or "tie"
    index: int | None
    probs: list[float]
    raw_probs: list[float]
    consistent: bool
    order_winners: list[int | None]
    first_position_rate: float
    calls: int
    method: str
    template: dict[str, Any]
    usage: dict[str, int]
    flags: list[dict[str, Any]]


def locate_candidates(text: str, candidates: list[str], ids: list[str]) -> McqPrompt:
    spans: list[tuple[int, int]] = []
    pos = 0
    for i, cand in enumerate(candidates):
        at = text.find(cand, pos)
        if at < 0 or not cand:
            raise InvalidRequestError(
                f"candidate {i} is not in the last user message (after the previous one); "
                "guard.candidates must be the responses exactly as shown, in order",
                param="guard.candidates",
            )
        spans.append((at, at + len(cand)))
        pos = at + len(cand)
    return McqPrompt(text, tuple(ids), tuple(spans))


async def run_judge(
    *,
    ask: Ask,
    body: dict[str, Any],
    msg_index: int,
    text: str,
    opts: GuardOptions,
    method: str,
    top_logprobs: int,
) -> JudgeOutcome:
    cands = opts.candidates
    if not cands:
        raise InvalidRequestError(
            "task 'judge' needs guard.candidates (the responses compared)", param="guard.candidates"
        )
    if method not in JUDGE_CALIBRATIONS:
        raise InvalidRequestError(
            f"calibration {method!r} is not one for task judge; use one of "
            f"{', '.join(JUDGE_CALIBRATIONS)}",
            param="guard.calibration",
        )
    k = len(cands)
    ids = list(opts.labels or LETTERS[:k])
    if len(ids) != k:
        raise InvalidRequestError(
            f"guard.labels names {len(ids)} verdict IDs for {k} candidates", param="guard.labels"
        )
    prompt = locate_candidates(text, cands, ids)
    orders = judge_orders(k) if method == "swap" else [tuple(range(k))]
    forms = {i: id_forms(i) for i in ids}
    answers = await asyncio.gather(
        *(
            ask_distribution(ask, body, msg_index, prompt.permuted(o), forms, top_logprobs)
            for o in orders
        ),
        return_exceptions=True,
    )
    ok = [(o, a) for o, a in zip(orders, answers, strict=True) if not isinstance(a, BaseException)]
    if not ok:
        first = answers[0]
        raise first if isinstance(first, Exception) else UpstreamError("no judge call succeeded")
    usage: dict[str, int] = {}
    for _, (_, resp) in ok:
        add_usage(usage, resp)
    res = aggregate_scores([(o, a[0]) for o, a in ok], normalise_each=True)
    raw = ok[0][1][0]
    flags = []
    if not res.consistent:
        flags.append(
            {
                "policy": "order_consistency",
                "action": "flag",
                "score": 1.0,
                "reason": f"the verdict changed with the order of the candidates: "
                f"{[ids[w] if w is not None else 'tie' for w in res.order_winners]}",
            }
        )
    return JudgeOutcome(
        ids[res.winner] if res.winner is not None else "tie",
        res.winner,
        [round(float(x), 6) for x in res.scores],
        [round(float(x), 6) for x in raw],
        res.consistent,
        list(res.order_winners),
        res.first_position_rate,
        len(orders),
        method,
        ok[0][1][1],
        usage,
        flags,
    )
