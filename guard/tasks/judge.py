"""A calibrated judge request: ask with the candidates in every order (position swap), map each
verdict back to the original candidates, aggregate (balanced position calibration), and flag a
verdict that changed with the order."""

from __future__ import annotations

import asyncio

from calibrators.position import aggregate_scores, judge_orders
from guard.errors import InvalidRequestError, UpstreamError
from guard.request import JudgeOptions
from guard.tasks.candidate_spans import candidate_spans
from guard.tasks.distribution import check_forms, id_forms
from guard.tasks.job import Job, Outcome
from guard.tasks.prompt_text import LETTERS, McqPrompt


def locate_candidates(text: str, candidates: list[str], ids: list[str]) -> McqPrompt:
    """Where each candidate is shown, in order (:mod:`guard.tasks.candidate_spans`)."""
    spans = candidate_spans(text, candidates)
    if spans is None:
        raise InvalidRequestError(
            "the candidates are not all in the last user message, in order; guard.candidates "
            "must be the responses exactly as shown, in order",
            param="guard.candidates",
        )
    return McqPrompt(text, tuple(ids), tuple(spans))


async def run(job: Job) -> Outcome:
    opts = job.opts
    assert isinstance(opts, JudgeOptions)
    text = job.text
    method = opts.calibration or job.route.judge
    cands = opts.candidates
    if not cands:
        raise InvalidRequestError(
            "task 'judge' needs guard.candidates (the responses compared)", param="guard.candidates"
        )
    k = len(cands)
    ids = list(opts.labels or LETTERS[:k])
    if len(ids) != k:
        raise InvalidRequestError(
            f"guard.labels names {len(ids)} verdict IDs for {k} candidates", param="guard.labels"
        )
    if len(set(ids)) != k:
        raise InvalidRequestError("guard.labels must be distinct", param="guard.labels")
    forms = {i: id_forms(i) for i in ids}
    check_forms(forms, "guard.labels")
    prompt = locate_candidates(text, cands, ids)
    orders = judge_orders(k) if method == "swap" else [tuple(range(k))]
    answers = await asyncio.gather(
        *(job.distribution(prompt.permuted(o), forms) for o in orders),
        return_exceptions=True,
    )
    ok = [(o, a) for o, a in zip(orders, answers, strict=True) if not isinstance(a, BaseException)]
    if not ok:
        first = answers[0]
        raise first if isinstance(first, Exception) else UpstreamError("no judge call succeeded")
    res = aggregate_scores([(o, a[0]) for o, a in ok], normalise_each=True)
    raw = ok[0][1][0]
    flags = []
    answered = len(ok) == len(orders)
    if not answered:  # the rest cannot show whether the verdict holds in every order
        failed = [
            f"{type(a).__name__} {getattr(a, 'status', '')}".strip()
            for a in answers
            if isinstance(a, BaseException)
        ]
        flags.append(
            {
                "policy": "order_consistency",
                "action": "flag",
                "score": 1.0,
                "reason": f"only {len(ok)} of {len(orders)} orders were answered, so the "
                f"verdict is not position-calibrated (the others: {', '.join(failed)})",
            }
        )
    elif not res.consistent:
        flags.append(
            {
                "policy": "order_consistency",
                "action": "flag",
                "score": 1.0,
                "reason": f"the verdict changed with the order of the candidates: "
                f"{[ids[w] if w is not None else 'tie' for w in res.order_winners]}",
            }
        )
    answer = ids[res.winner] if res.winner is not None else "tie"
    evidence = {
        "task": "judge",
        "calibration": method,
        "answer": answer,
        "index": res.winner,
        "probs": [round(float(x), 6) for x in res.scores],
        "raw_probs": [round(float(x), 6) for x in raw],
        "prior": None,
        "upstream_calls": job.calls,
        "flags": flags,
        "consistent": res.consistent if answered else None,  # None: not every order answered
        "order_winners": list(res.order_winners),
        "first_position_rate": res.first_position_rate,
        "answers_from": "samples" if job.sampled else "logprobs",
    }
    return Outcome(answer, evidence, ok[0][1][1], job.usage)
