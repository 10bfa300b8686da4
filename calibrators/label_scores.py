"""Label scores from an API's top log-probabilities: surface forms and missing labels.

APIs return vocabulary-level log-probabilities (``top_logprobs``: token -> logprob) that may miss a
label (outside the top-k) and may hold several surface forms of one (" Positive", "positive").
:func:`label_scores` and :func:`fill_missing` turn them into one score per label, bounding each
missing label explicitly and saying which were bounded.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class LabelScores:
    """Label log-scores, (L,) or (N, L), and a same-shaped mask that is True where the label was
    not returned by the API and its score is the bound rather than an observed value."""

    logprobs: FloatArray
    bounded: BoolArray


def surface_forms(word: str) -> tuple[str, ...]:
    """The tokens a label word may come back as: the word as given, lower case, Capitalised and
    UPPER case, each without and with a leading space ("positive", " Positive", ...)."""
    w = word.strip()
    if not w:
        raise ValueError("a label word must not be empty or blank")
    cases = dict.fromkeys((w, w.lower(), w.capitalize(), w.upper()))
    return tuple(dict.fromkeys(f for c in cases for f in (c, " " + c)))


def _label_forms(labels: Sequence[str] | Mapping[str, Sequence[str]]) -> list[tuple[str, ...]]:
    if isinstance(labels, str):
        raise TypeError("labels must be a list of label words, not a single string")
    if isinstance(labels, Mapping):
        forms = [tuple(labels[k]) for k in labels]
        if not all(forms):
            raise ValueError(f"every label needs at least one surface form, got {dict(labels)!r}")
    else:
        forms = [surface_forms(w) for w in labels]
    if len(forms) < 2:
        raise ValueError(f"a classification needs at least 2 labels, got {len(forms)}")
    owner: dict[str, int] = {}
    for i, fs in enumerate(forms):
        for f in fs:
            if owner.setdefault(f, i) != i:
                raise ValueError(
                    f"surface form {f!r} belongs to labels {owner[f]} and {i}; "
                    "pass labels as a mapping label -> forms to disambiguate"
                )
    return forms


def label_scores(
    top_logprobs: Mapping[str, float] | Iterable[tuple[str, float]],
    labels: Sequence[str] | Mapping[str, Sequence[str]],
    *,
    floor: float | None = None,
) -> LabelScores:
    """Per-label log-scores (L,) from one position's ``top_logprobs`` (token -> logprob).

    ``labels`` is a list of label words (their :func:`surface_forms` are matched) or a mapping
    label -> the exact tokens that count for it (needed when a label word is split into several
    tokens: the API shows only the first). A label's score is the logsumexp over its forms
    present. A label with no form present is scored ``floor`` if given, else the smallest logprob
    returned: it was not in the top-k, so each of its forms is at most that likely. Repeated
    tokens in a list of pairs (distinct token ids that decode alike) are summed.
    """
    forms = _label_forms(labels)
    owner = {f: i for i, fs in enumerate(forms) for f in fs}
    pairs = list(top_logprobs.items() if isinstance(top_logprobs, Mapping) else top_logprobs)
    found: list[list[float]] = [[] for _ in forms]
    for token, value in pairs:
        v = float(value)
        if not math.isfinite(v):
            raise ValueError(f"logprob of {token!r} is {v}; expected a finite number")
        if token in owner:
            found[owner[token]].append(v)
    if floor is None and not pairs:
        raise ValueError("no top_logprobs were returned; pass floor= to bound the missing labels")
    bound = float(floor) if floor is not None else min(float(v) for _, v in pairs)
    out = [float(np.logaddexp.reduce(f)) if f else bound for f in found]
    return LabelScores(np.array(out), np.array([not f for f in found]))


def fill_missing(logprobs: npt.ArrayLike, floor: npt.ArrayLike | None = None) -> LabelScores:
    """Bound the missing entries (NaN) of an (N, L) array of extracted label log-scores.

    ``floor`` is a number or one per row (e.g. the smallest top-k logprob of that row). Without
    it a row's bound is its smallest label score present: a missing label ranked below every
    returned token, so this is a valid, if loose, upper bound.
    """
    a = np.asarray(logprobs, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] < 2:
        raise ValueError(f"logprobs must be (N, L) with N >= 1 and L >= 2, got shape {a.shape}")
    if np.any(np.isinf(a)):
        raise ValueError("logprobs holds infinite values; mark missing labels with NaN")
    missing = np.isnan(a)
    if floor is None:
        empty = np.flatnonzero(missing.all(axis=1))
        if empty.size:
            raise ValueError(f"rows {empty[:5].tolist()} have no label score; pass floor=")
        bound = np.where(missing, np.inf, a).min(axis=1)
    else:
        f = np.asarray(floor, dtype=np.float64)
        if f.shape not in ((), (a.shape[0],)) or not np.all(np.isfinite(f)):
            raise ValueError(f"floor must be a number or one per row ({a.shape[0]}), got {f!r}")
        bound = np.broadcast_to(f, (a.shape[0],))
    return LabelScores(np.where(missing, bound[:, None], a), missing)
