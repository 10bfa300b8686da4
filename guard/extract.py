"""Reading a distribution over option IDs (or label words) out of an upstream response.

From logprobs: the first generated position whose top_logprobs hold any form of any ID is read;
token variants count for their ID ("B", " B", "(B", "B)", "B."), and an ID missing from the top-k
is bounded by the smallest logprob returned (:func:`calibrators.label_scores.label_scores`).
Without logprobs: sampled answers are parsed ("B", "(B)", "The answer is B.") and counted, with
add-half smoothing so that no option gets probability zero.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from calibrators.label_scores import label_scores

FloatArray = npt.NDArray[np.float64]


def id_forms(ident: str) -> tuple[str, ...]:
    """Tokens that stand for an option ID."""
    core = (ident, f"({ident}", f"{ident})", f"{ident}.", f"({ident})", f"{ident}:")
    return tuple(dict.fromkeys(f for c in core for f in (c, " " + c)))


def _positions(choice: Mapping[str, Any]) -> list[list[tuple[str, float]]]:
    lp = choice.get("logprobs") or {}
    content = lp.get("content")
    if content:  # chat completions
        return [
            [(t["token"], float(t["logprob"])) for t in pos.get("top_logprobs") or []]
            for pos in content
        ]
    top = lp.get("top_logprobs")  # legacy completions: a list of {token: logprob}
    if top:
        return [[(k, float(v)) for k, v in pos.items()] for pos in top if pos]
    return []


def distribution_from_logprobs(
    choice: Mapping[str, Any], labels: Mapping[str, Sequence[str]]
) -> FloatArray | None:
    """Normalised distribution over ``labels`` (label -> its token forms), or None when the
    response carries no logprobs that mention any label."""
    owner = {f: i for i, forms in enumerate(labels.values()) for f in forms}
    for pairs in _positions(choice):
        if any(tok in owner for tok, _ in pairs):
            scores = label_scores(pairs, dict(labels)).logprobs
            p = np.exp(scores - scores.max())
            return p / p.sum()  # type: ignore[no-any-return]
    return None


def parse_answer(text: str, ids: Sequence[str]) -> int | None:
    """The option a free-text answer names, or None: "B", "(B)", "B.", "The answer is (B)."."""
    alt = "|".join(re.escape(i) for i in sorted(ids, key=len, reverse=True))
    t = text.strip()
    m = re.fullmatch(rf"\(?({alt})\)?[.):]?", t)
    if m is None:
        m = re.search(rf"answer(?: is|:)?\s*(?:option\s*)?\(?({alt})\)?(?![\w])", t, re.IGNORECASE)
    if m is None:
        m = re.match(rf"\(?({alt})\)?(?:[.):]|\s|$)", t)
    return list(ids).index(m.group(1)) if m else None


def distribution_from_samples(texts: Sequence[str], ids: Sequence[str]) -> FloatArray:
    """Answer frequencies over ``ids`` with add-half smoothing (unparseable answers ignored)."""
    counts = np.full(len(ids), 0.5)
    for t in texts:
        i = parse_answer(t, ids)
        if i is not None:
            counts[i] += 1.0
    return counts / counts.sum()  # type: ignore[no-any-return]
