"""One upstream question: the request with the last user message replaced, and the distribution
over a set of answers (option IDs, label words, candidate IDs) read back from it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from guard.extract import distribution_from_logprobs, distribution_from_samples

Ask = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
SAMPLES = 8  # answers sampled when the upstream offers no logprobs


async def ask_distribution(
    ask: Ask,
    body: dict[str, Any],
    msg_index: int,
    content: str,
    forms: Mapping[str, Sequence[str]],
    top_logprobs: int,
) -> tuple[npt.NDArray[np.float64], dict[str, Any]]:
    """(distribution over ``forms``' keys, the upstream response) for ``content`` as the message
    at ``msg_index``. Logprobs first; without them, ``SAMPLES`` sampled answers, parsed."""
    messages = list(body["messages"])
    messages[msg_index] = {**messages[msg_index], "content": content}
    req = {k: v for k, v in body.items() if k not in ("stream", "stream_options", "n")}
    req.update(messages=messages, logprobs=True, top_logprobs=top_logprobs)
    if "max_completion_tokens" not in req:
        req["max_tokens"] = 2
    resp = await ask(req)
    choices = resp.get("choices") or []
    p = distribution_from_logprobs(choices[0], forms) if choices else None
    if p is None:
        req.pop("logprobs")
        req.pop("top_logprobs")
        req.update(n=SAMPLES, max_tokens=16)
        resp = await ask(req)
        texts = [c.get("message", {}).get("content") or "" for c in resp.get("choices", [])]
        p = distribution_from_samples(texts, list(forms))
    return p, resp


def add_usage(total: dict[str, int], resp: Mapping[str, Any]) -> None:
    for k, v in (resp.get("usage") or {}).items():
        if isinstance(v, int):
            total[k] = total.get(k, 0) + v
