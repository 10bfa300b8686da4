"""One upstream question and the distribution over a set of answers (option IDs, label words,
candidate IDs) read back from its response.

From logprobs: the first generated position whose top_logprobs hold any form of any ID is read;
token variants count for their ID ("B", " B", "(B", "B)", "B."), and an ID missing from the top-k
is bounded by the smallest logprob returned (:func:`calibrators.label_scores.label_scores`).
Without logprobs: sampled answers are parsed ("B", "(B)", "The answer is B.") and counted, with
add-half smoothing so that no option gets probability zero.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from calibrators.label_scores import label_scores
from guard.errors import InvalidRequestError, UpstreamError

FloatArray = npt.NDArray[np.float64]
Ask = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
SAMPLES = 8  # answers sampled when the upstream offers no logprobs


def id_forms(ident: str) -> tuple[str, ...]:
    """Tokens that stand for an option ID."""
    core = (ident, f"({ident}", f"{ident})", f"{ident}.", f"({ident})", f"{ident}:")
    return tuple(dict.fromkeys(f for c in core for f in (c, " " + c)))


def check_forms(forms: Mapping[str, Sequence[str]], param: str) -> None:
    """A 400 naming ``param`` for answers (answer -> its token forms) that cannot be told apart:
    a blank one, or two that share a token form ("Positive" and "positive", "A" and " A")."""
    owner: dict[str, str] = {}
    for name, fs in forms.items():
        if not name.strip():
            raise InvalidRequestError(f"{param} holds a blank entry ({name!r})", param=param)
        for f in fs:
            other = owner.setdefault(f, name)
            if other != name:
                raise InvalidRequestError(
                    f"{param}: {other!r} and {name!r} are read from the same token {f!r} (they "
                    "differ only in case, spaces or punctuation); give answers that differ",
                    param=param,
                )


def _finite(pairs: Iterable[tuple[Any, Any]]) -> list[tuple[str, float]]:
    """(token, logprob) pairs an upstream sent, without the malformed ones (NaN, missing)."""
    out = []
    for tok, lp in pairs:
        try:
            value = float(lp)
        except (TypeError, ValueError, OverflowError):  # OverflowError: an integer of 400 digits
            continue
        if isinstance(tok, str) and math.isfinite(value) and value <= 0.0:
            out.append((tok, value))
    return out


def _list(value: Any) -> list[Any]:
    """``value`` if the upstream sent a list there, else nothing (an int, a string, an object)."""
    return value if isinstance(value, list) else []


def _positions(choice: Mapping[str, Any]) -> list[list[tuple[str, float]]]:
    lp = choice.get("logprobs") or {}
    if not isinstance(lp, Mapping):
        return []
    content = lp.get("content")
    if isinstance(content, list) and content:  # chat completions
        return [
            _finite(
                (t.get("token"), t.get("logprob"))
                for t in _list(pos.get("top_logprobs"))
                if isinstance(t, Mapping)
            )
            for pos in content
            if isinstance(pos, Mapping)
        ]
    top = lp.get("top_logprobs")  # legacy completions: a list of {token: logprob}
    if isinstance(top, list) and top:
        return [_finite(pos.items()) for pos in top if isinstance(pos, Mapping) and pos]
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


def spellings(forms: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Each token form of ``forms`` (answer -> its token forms), without its leading space, as the
    index of its answer: a label word is read in every case its surface forms have."""
    return {f.strip(): i for i, fs in enumerate(forms.values()) for f in fs if f.strip()}


def parse_answer(
    text: str, ids: Sequence[str], aliases: Mapping[str, int] | None = None
) -> int | None:
    """The option a free-text answer names, or None: "B", "(B)", "B.", "The answer is (B).".
    ``aliases`` (another spelling -> the index of its ID) are read too."""
    names = {**(aliases or {}), **{ident: i for i, ident in enumerate(ids)}}
    alt = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    t = text.strip()
    m = re.fullmatch(rf"\(?({alt})\)?[.):]?", t)
    if m is None:
        # "Answer" in any case, the ID as it is: "the answer is a toss-up" names no option A
        m = re.search(rf"(?i:answer(?: is|:)?\s*(?:option\s*)?)\(?({alt})\)?(?![\w])", t)
    if m is None:
        m = re.match(rf"\(?({alt})\)?(?:[.):]|\s|$)", t)
    return names[m.group(1)] if m else None


def distribution_from_samples(
    texts: Sequence[str], ids: Sequence[str], aliases: Mapping[str, int] | None = None
) -> FloatArray:
    """Answer frequencies over ``ids`` with add-half smoothing (unparseable answers ignored)."""
    counts = np.full(len(ids), 0.5)
    for t in texts:
        i = parse_answer(t, ids, aliases)
        if i is not None:
            counts[i] += 1.0
    return counts / counts.sum()  # type: ignore[no-any-return]


def _text(choice: Mapping[str, Any]) -> str:
    message = choice.get("message")
    content = message.get("content") if isinstance(message, Mapping) else None
    return content if isinstance(content, str) else ""


def refuses_logprobs(exc: BaseException) -> bool:
    """An upstream's error that says it does not do logprobs (llama.cpp without logits_all
    answers 500 "logprobs is not supported"; others 400 or 422): calguard's own error, or the
    OpenAI SDK's (the in-process wrapper's upstream raises those)."""
    status = getattr(exc, "status", None) or getattr(exc, "status_code", None)
    body = getattr(exc, "body", None)
    text = json.dumps(body, default=str) if body is not None else str(exc)
    return status in (400, 404, 422, 500, 501) and "logprob" in text.lower()


async def ask_distribution(
    ask: Ask,
    body: dict[str, Any],
    msg_index: int,
    content: str,
    forms: Mapping[str, Sequence[str]],
    top_logprobs: int,
    *,
    logprobs: bool = True,
    on_refusal: Callable[[], None] | None = None,
    on_sampled: Callable[[], None] | None = None,
) -> tuple[npt.NDArray[np.float64], dict[str, Any]]:
    """(distribution over ``forms``' keys, the upstream response) for ``content`` as the message
    at ``msg_index``. Logprobs first (unless ``logprobs`` is off); without them, ``SAMPLES``
    sampled answers, parsed. An upstream that refuses logprobs gets sampled at once (and
    ``on_refusal`` is told, so the caller can stop asking); one that ignores ``n`` is asked
    again, up to ``SAMPLES`` calls, until it has given ``SAMPLES`` answers. ``on_sampled`` is
    told when the distribution is one of sampled answers."""
    messages = list(body["messages"])
    messages[msg_index] = {**messages[msg_index], "content": content}
    req = {k: v for k, v in body.items() if k not in ("stream", "stream_options", "n")}
    req["messages"] = messages
    if "max_completion_tokens" not in req:
        req["max_tokens"] = 2
    if logprobs:
        try:
            resp = await ask({**req, "logprobs": True, "top_logprobs": top_logprobs})
        except Exception as exc:
            if not refuses_logprobs(exc):
                raise
            if on_refusal is not None:
                on_refusal()
        else:
            choices = resp.get("choices") or []
            first_choice = choices[0] if isinstance(choices, list) and choices else None
            p = (
                distribution_from_logprobs(first_choice, forms)
                if isinstance(first_choice, Mapping)
                else None
            )
            if p is not None:
                return p, resp
    if on_sampled is not None:
        on_sampled()
    req["n"] = SAMPLES
    if "max_completion_tokens" not in req:  # OpenAI refuses both limits in one request
        req["max_tokens"] = 16
    texts: list[str] = []
    first: dict[str, Any] | None = None
    for _ in range(SAMPLES):
        resp = await ask(req)
        first = first or resp
        got = [_text(c) for c in _list(resp.get("choices")) if isinstance(c, Mapping)]
        texts += got
        if len(texts) >= SAMPLES or not got:
            break
    assert first is not None
    if not texts:  # not one choice in any answer: nothing to read, not a uniform guess
        raise UpstreamError(
            "the upstream answered with no choices, so there is no answer to calibrate",
            code="upstream_unreadable",
        )
    return distribution_from_samples(texts[:SAMPLES], list(forms), spellings(forms)), first


def add_usage(total: dict[str, Any], resp: Mapping[str, Any]) -> None:
    """``resp``'s usage added to ``total``, its details too (``prompt_tokens_details``,
    ``completion_tokens_details``: cached and reasoning tokens) and any cost (OpenRouter's and
    LiteLLM's ``cost``), as the client would count the calls it made."""
    _add_counts(total, resp.get("usage"))


def _add_counts(total: dict[str, Any], counts: Any) -> None:
    if not isinstance(counts, Mapping):
        return
    for k, v in counts.items():
        if isinstance(v, int | float) and not isinstance(v, bool):  # a count, or a cost
            if isinstance(total.get(k, 0), int | float):
                total[k] = total.get(k, 0) + v
        elif isinstance(v, Mapping) and isinstance(total.setdefault(k, {}), dict):
            _add_counts(total[k], v)
